/* rank_bpe.h - byte-pair encoding over bytes, as Hugging Face tokenizers' BPE model
 * applies it to a byte-level pre-token (models/bpe/model.rs, word.rs).
 *
 * Tokens are byte strings with ids; merges are pairs of tokens, ranked by the
 * order they are added in (a pair added twice keeps its later rank, as the
 * library's map does). A word (one pre-token's bytes) starts as one token per
 * byte; then, over and over, the adjacent pair of lowest rank is merged,
 * leftmost first among equal ranks, into the token its two halves spell.
 * Rank-ordered: a binary heap of candidate pairs over a linked list of symbols,
 * O(k log k) for a word of k bytes (a queued pair whose left symbol has changed
 * since is dropped when popped unless it still merges into the same token, the
 * library's own test). A byte with no token of its own becomes the unknown
 * token when there is one (adjacent ones fused into one when asked), else it is
 * dropped. With ignore_merges a word that is itself a token is that token.
 *
 * Letters: k bytes of a word. */
#ifndef PARE_RANK_BPE_H
#define PARE_RANK_BPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rank_bpe rank_bpe;

rank_bpe *rank_bpe_new(void);
void rank_bpe_free(rank_bpe *b);

/* Token id (>= 0) stands for the bytes s[0..n), n >= 1. When other bytes had
 * this id before, or these bytes another id, the later wins. */
void rank_bpe_add_token(rank_bpe *b, int id, const uint8_t *s, size_t n);
/* Id of the token with bytes s[0..n), -1 if none. */
int rank_bpe_token_id(const rank_bpe *b, const uint8_t *s, size_t n);

/* What rank_bpe_add_merge found wrong. */
enum { RANK_BPE_OK, RANK_BPE_NO_LEFT, RANK_BPE_NO_RIGHT, RANK_BPE_NO_RESULT };
/* The next merge (its rank is the count of merges added before it): the tokens
 * with bytes l[0..ln) and r[0..rn) into the token with their bytes joined. */
int rank_bpe_add_merge(rank_bpe *b, const uint8_t *l, size_t ln, const uint8_t *r, size_t rn);
int rank_bpe_merge_count(const rank_bpe *b);

void rank_bpe_set_unknown(rank_bpe *b, int unk_id, bool fuse);
void rank_bpe_set_ignore_merges(rank_bpe *b, bool ignore);

/* What one encoding pass keeps: scratch space and a cache of the words it has
 * seen (words up to 256 bytes), so that a text's repeated words are merged once.
 * Not shared between threads. */
typedef struct rank_bpe_pass rank_bpe_pass;
rank_bpe_pass *rank_bpe_pass_new(void);
void rank_bpe_pass_free(rank_bpe_pass *p);

/* The ids of word s[0..n) appended to *ids (count *n_ids, room *cap; grown with
 * xrealloc). Returns how many were appended. */
size_t rank_bpe_encode_word(const rank_bpe *b, rank_bpe_pass *p, const uint8_t *s, size_t n, int **ids, size_t *n_ids,
                       size_t *cap);

#endif
