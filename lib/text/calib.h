/* calib.h - calibration data for pare-score: the text of a file (plain text, JSON
 * lines or a JSON array of records; compressed or archived, through libarchive),
 * tokenized once with BOS, and random windows of the token stream drawn with a
 * seeded generator (LLM-Pruner: 10 windows of 64 tokens, seed 42).
 *
 * Letters: S samples (windows), T tokens per window. */
#ifndef PARE_CALIB_H
#define PARE_CALIB_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "text/tokenizer.h"

enum calib_format { CALIB_AUTO, CALIB_TEXT, CALIB_JSONL, CALIB_JSON };

const char *calib_format_name(enum calib_format f);
int calib_format_from_name(const char *s); /* -1 if unknown */

typedef struct {
    char *source;            /* the path as given */
    enum calib_format format;/* as detected */
    int64_t n_tokens;        /* tokens in the stream, BOS included */
    int samples, seq_len;    /* S, T */
    uint64_t seed;
    int64_t *starts;         /* (S) window starts, in draw order */
    int *ids;                /* (S, T) token ids of the windows */
    char xxh64[17];          /* XXH64 (seed 0) of ids as little-endian int32 */
} calib;

/* The text of a calibration file, NUL-terminated, *len set; *format gets the
 * format found (with CALIB_AUTO: a '[' that parses as a JSON array is json, a
 * first line '{...}' that parses as an object is jsonl, anything else text).
 * Records are joined with "\n\n"; a record is its "text" string, or (Alpaca)
 * its non-empty "instruction", "input" and "output" joined with "\n". Dies
 * naming the file (and line) on unreadable input or a record without text. */
char *calib_read_text(const char *path, enum calib_format *format, size_t *len);

/* S distinct window starts in [0, n_tokens - T], in draw order: the generator is
 * splitmix64 from seed (state += 0x9e3779b97f4a7c15, then the splitmix64 mix);
 * each draw is reduced to [0, R) with R = n_tokens - T + 1 by rejecting values at
 * or above the largest multiple of R, and a start already drawn is drawn again.
 * Dies naming source when the stream has fewer than S + T - 1 tokens. */
void calib_windows(int64_t n_tokens, int samples, int seq_len, uint64_t seed, const char *source, int64_t *starts);

/* Read, tokenize (once, BOS first) and draw the windows. */
void calib_load(calib *c, const char *path, enum calib_format format, const tokenizer *tok, int samples,
                int seq_len, uint64_t seed);
/* The same from token ids already in hand (tests): ids (n) are copied. */
void calib_from_ids(calib *c, const char *source, const int *ids, int64_t n, int samples, int seq_len,
                    uint64_t seed);
void calib_free(calib *c);

/* The description that goes into a scores header: source, format, samples,
 * seq_len, seed, tokens, starts, xxh64. New reference. */
json_t *calib_to_json(const calib *c);

/* Tokens (S', T) and targets (S', T) of the samples first, first + step, ... <
 * S (S' of them, returned): targets are the tokens shifted by one, the last
 * position of each window -1 (not scored). Arrays are allocated. */
int calib_batch(const calib *c, int first, int step, int **tokens, int **targets);

#endif
