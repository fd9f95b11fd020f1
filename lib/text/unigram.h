/* unigram.h - SentencePiece's unigram segmentation: the cut of a normalized text
 * into pieces whose scores sum highest (unigram_model.cc, Model::EncodeOptimized,
 * the encoder of SentencePiece 0.1.9x).
 *
 * The pieces that take part are the NORMAL, USER_DEFINED and UNUSED ones (types
 * as in tokenizer.h: 1 normal, 4 user-defined, 5 unused; the others are ignored).
 * A user-defined piece of L bytes scores L * max_score - 0.1 (max_score: the
 * highest NORMAL score, at least FLT_MIN), an UNUSED piece is never used, and a
 * character that starts no one-character piece may be covered by the unknown id
 * alone, scoring min_score - 10 (min_score: the lowest NORMAL score). Of equal
 * paths into a position, the one whose last piece starts leftmost wins. */
#ifndef PARE_UNIGRAM_H
#define PARE_UNIGRAM_H

#include <stddef.h>
#include <stdint.h>

typedef struct unigram unigram;

/* Piece i is text[off[i] .. off[i+1]), with score[i] and type[i], for i < n;
 * unk is the id an unknown character gets. Pieces must be distinct. */
unigram *unigram_new(int n, const char *text, const uint32_t *off, const float *score, const uint8_t *type, int unk);
void unigram_free(unigram *u);

/* Cuts s[0..n) into pieces: piece k starts at byte start[k] and has id id[k]
 * (start and id hold n entries at least). Returns the number of pieces. */
size_t unigram_segment(const unigram *u, const char *s, size_t n, uint32_t *start, int32_t *id);

#endif
