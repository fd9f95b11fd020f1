/* teacher.h - what a student learns from besides the data's next tokens: a
 * teacher model run forward beside it on every micro-batch (in the dtype it is
 * stored in, mapped as loaded, no gradient), or the teacher's top-k
 * distributions read from a logits stream (format/logits.h) that teacher_dump
 * wrote once.
 *
 * Letters: b samples of a micro-batch, T its longest sample, V vocabulary, k
 * kept tokens a position. */
#ifndef PARE_TEACHER_H
#define PARE_TEACHER_H

#include <jansson.h>

#include "compute/distill.h"
#include "model/model.h"
#include "text/instruct.h"
#include "text/tokenizer.h"

typedef struct teacher teacher;

/* Die unless the teacher t (its tokenizer ttok, may be NULL) shares the
 * student's vocabulary: as many tokens and, where both have a tokenizer, for
 * every id the same text (tokenizer_piece: a SentencePiece model and a llama2.c
 * tok*.bin of one vocabulary agree) or the same piece (tokenizer_piece_raw: an
 * added token a tokenizer.json shows, which the same tokenizer read back from
 * GGUF, where it can only be a control token, shows as nothing). name: the
 * teacher's path, for messages. */
void teacher_check_vocab(const model *student, const tokenizer *stok, const model *t, const tokenizer *ttok,
                         const char *name);

/* A live teacher: t forwards micro-batches of at most B samples of T tokens. */
teacher *teacher_live(const model *t, int B, int T);
/* The logits stream at path, read for the data d and a student of vocabulary V
 * (logits_read: dies unless it was made for them). */
teacher *teacher_from_logits(const char *path, const instruct_data *d, int V);
void teacher_free(teacher *t);

/* The temperature a logits stream's distributions are at, or 0 for a live
 * teacher (its logits serve any). */
double teacher_temperature(const teacher *t);
/* What the teacher is, for the state's identity and the training summary:
 * {"fingerprint", "from": "model" or "logits", and for logits "top_k" and
 * "temperature"}. New reference. */
json_t *teacher_json(const teacher *t);

/* The teacher's distributions of the rows of a micro-batch: the samples idx
 * (b) of d laid out as instruct_batch lays them, (b, T), tokens its tokens;
 * rows whose target is -1 are left undefined. Valid until the next call. */
const distill_teacher *teacher_batch(teacher *t, const instruct_data *d, const int *idx, int b, int T,
                                     const int *tokens);

/* Write m's top k distributions at temperature tau at every scored position of
 * every sample of d, micro-batches of b samples, as a logits stream to path
 * (pare-stream(5)), with progress on stderr. */
void teacher_dump(const model *m, const instruct_data *d, int k, double tau, int b, const char *path, int argc,
                  char **argv);

#endif
