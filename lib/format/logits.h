/* logits.h - the logits stream (pare-stream(5) "logits"): a teacher's next-token
 * distributions at every scored position of a training data set, top k of each
 * with the log of the rest's mass, written once (pare-lora --dump-logits) and
 * read by every later run (pare-lora --teacher-logits) instead of running the
 * teacher again.
 *
 * A sample's positions are its scored ones (target >= 0), in order; each is k
 * int32 token ids (by descending probability), k float32 log-probabilities at
 * the stream's temperature, and one float32: the log of the mass of the other
 * tokens (-inf when there is none), all little-endian: (2k + 1) * 4 bytes.
 *
 * Letters: S samples, k kept tokens of a position, V vocabulary. */
#ifndef PARE_LOGITS_H
#define PARE_LOGITS_H

#include <stdint.h>

#include "format/stream.h"
#include "model/model.h"
#include "model/tensor.h"
#include "text/instruct.h"

/* Bytes of one position's entry. */
static inline size_t logits_row_bytes(int k) { return (size_t)(2 * k + 1) * 4; }

/* Open the stream (path, "-" = stdout) and write its header: the teacher m's
 * fingerprint (fp) and config, the data d's description (its digest among it),
 * k, the temperature tau and the positions to come (d's scored targets). */
void logits_write_open(stream_writer *w, const char *path, int argc, char **argv, const model *m, const char *fp,
                       const instruct_data *d, int k, double tau);
/* One sample's record: its index and its positions' rows (positions * (2k+1)
 * 4-byte values, as above). */
void logits_write_sample(stream_writer *w, int sample, int positions, const void *rows, int k);

/* A logits stream read for a data set: mapped in place from a regular file,
 * read into memory from a pipe. */
typedef struct {
    char fingerprint[17];  /* the teacher's */
    int k;                 /* kept tokens a position */
    double temperature;
    int n;                 /* S */
    const uint8_t **rows;  /* [S] sample i's first row, NULL when it has no scored position */
    tensor_map *map;       /* the mapped file, or NULL */
    uint8_t **owned;       /* [S] rows read into memory (no map), else NULL */
} logits_file;

/* Read path for the data d and a student of vocabulary V: dies unless it is a
 * whole logits stream made for the same samples (d's digest, count and scored
 * positions), every position of every sample with a scored target present once,
 * with token ids distinct and inside V, log-probabilities finite and <= 0, and
 * the kept mass and the rest's adding up to 1 (within 1e-3). */
void logits_read(logits_file *f, const char *path, const instruct_data *d, int V);
/* Row p (0-based among the scored positions) of sample i into ids (k), logp
 * (k) and *rest. */
void logits_row(const logits_file *f, int sample, int64_t p, int32_t *ids, float *logp, float *rest);
void logits_free(logits_file *f);

#endif
