/* bpe.h - merging a text's symbols pair by pair, best-scoring pair first
 * (SentencePiece's bpe::Model::Encode), for the kinds of tokenizer that merge
 * (sentencepiece.c's BPE models, llama2c_tok.c).
 *
 * Letters: m bytes of the text the symbols point into, S symbols (m at most),
 * V vocabulary size.
 *
 * The kind cuts its text into symbols (bpe_push) and marks those that never
 * merge (frozen); bpe_merge keeps them in a doubly linked list, puts every
 * adjacent pair whose concatenation is a mergeable piece into a binary max-heap
 * ordered by (score, then leftmost), merges the best pair, pushes its new
 * neighbours, and skips stale entries when they are popped: O(S log S). Where
 * two adjacent characters occur together in no piece (the kind's bigram_set),
 * no merge can join them, so the text is cut there and each part merged alone
 * with a small heap (the same merges in the same order, but cache-friendly).
 * The kind then walks the list (sym[0], .next until -1) and emits ids. */
#ifndef PARE_BPE_H
#define PARE_BPE_H

#include "text/tokenizer_kind.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The pairs of adjacent characters inside any mergeable piece, packed as
 * (char << 32 | char), chars as their bytes big-endian. */
typedef struct {
    uint64_t *slot; // (mask + 1) 0 empty
    uint32_t mask;
    bool zero; // the key 0 is in the set
} bigram_set;

/* How a kind cuts text into symbols: the bytes of the symbol at s[0..n). */
typedef size_t (*symbol_len_fn)(const char *s, size_t n);

/* The pairs of every mergeable piece of t cut into symbols by symbol_len; with
 * space_alone, a piece starting with " " is also cut with the " " alone (a text
 * whose " " prefix is a symbol of its own). */
void bigrams_build(bigram_set *set, const tokenizer *t, symbol_len_fn symbol_len, bool space_alone);
void bigrams_free(bigram_set *set);

typedef struct {
    int32_t prev, next; // neighbours in the list, -1 at the ends
    uint32_t start, len; // bytes of the text; len 0 once merged into prev
} bpe_symbol;

typedef struct {
    uint32_t start, left_len, size; // size 0: never formed
} bpe_formed;

typedef struct bpe_merge bpe_merge;

typedef struct {
    const tokenizer *t;
    const bigram_set *pairs;
    bool score_floor; // merge only into pieces scoring above -1e10 (llama2.c)
    const char *s; // (m) the text
    bpe_symbol *sym; // (S)
    uint8_t *frozen; // (S) never merged
    size_t n_sym;
    bpe_merge *heap; // (3 S) max-heap of candidate merges
    size_t n_heap;
    bpe_formed *rev; // (V) or NULL: the pair each UNUSED piece was last formed from
} bpe;

/* Room for the symbols of s[0..m). */
void bpe_init(bpe *b, const tokenizer *t, const bigram_set *pairs, const char *s, size_t m);
/* The next symbol: s[start .. start + len); frozen ones never merge. */
static inline void bpe_push(bpe *b, size_t start, size_t len, bool frozen)
{
    b->frozen[b->n_sym] = frozen;
    b->sym[b->n_sym++] = (bpe_symbol){ 0, 0, (uint32_t)start, (uint32_t)len };
}
/* Merges the symbols pushed (at least one); with record_unused, rev notes the
 * pair each UNUSED piece was formed from. */
void bpe_merge_all(bpe *b, bool record_unused);
void bpe_free(bpe *b);

#endif
