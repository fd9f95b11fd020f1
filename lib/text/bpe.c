/* bpe.c - merging a text's symbols, best-scoring pair first (bpe.h). */
#include "base/utf8.h"
#include "base/util.h"
#include "text/bpe.h"

#include <stdlib.h>
#include <string.h>

struct bpe_merge {
    float score;
    int32_t left, right;
    uint32_t size; // bytes of the merged piece: tells a stale entry
};

/* ---- character pairs ---- */

static uint64_t pack_char(const char *s, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v << 8 | (uint8_t)s[i];
    return v;
}

static uint32_t bigram_slot(uint64_t key, uint32_t mask)
{
    return (uint32_t)((key * 0x9e3779b97f4a7c15ull) >> 32) & mask;
}

static bool bigram_has(const bigram_set *set, uint64_t key)
{
    if (key == 0)
        return set->zero;
    for (uint32_t i = bigram_slot(key, set->mask);; i = (i + 1) & set->mask) {
        if (set->slot[i] == key)
            return true;
        if (set->slot[i] == 0)
            return false;
    }
}

/* Counts, and when the set has slots adds, the pairs of adjacent symbols of a
 * piece cut into symbols the way a text is, the first symbol first_len bytes long. */
static size_t piece_bigrams(bigram_set *set, symbol_len_fn symbol_len, const char *s, size_t n, size_t first_len)
{
    size_t count = 0;
    for (size_t at = 0, a = first_len; at + a < n;) {
        size_t b = symbol_len(s + at + a, n - at - a);
        uint64_t key = pack_char(s + at, a) << 32 | pack_char(s + at + a, b);
        count++;
        if (set->slot && key == 0) {
            set->zero = true;
        } else if (set->slot) {
            uint32_t i = bigram_slot(key, set->mask);
            while (set->slot[i] != 0 && set->slot[i] != key)
                i = (i + 1) & set->mask;
            set->slot[i] = key;
        }
        at += a;
        a = b;
    }
    return count;
}

static size_t add_bigrams(bigram_set *set, const tokenizer *t, symbol_len_fn symbol_len, bool space_alone)
{
    size_t count = 0;
    for (int id = 0; id < t->n_vocab; id++) {
        size_t n;
        const char *s = piece_at(t, id, &n);
        if (n < 2 || piece_map_find(t, &t->mergeable, s, n) != id)
            continue;
        count += piece_bigrams(set, symbol_len, s, n, symbol_len(s, n));
        if (space_alone && s[0] == ' ' && utf8_is_continuation((uint8_t)s[1]))
            count += piece_bigrams(set, symbol_len, s, n, 1);
    }
    return count;
}

void bigrams_build(bigram_set *set, const tokenizer *t, symbol_len_fn symbol_len, bool space_alone)
{
    *set = (bigram_set){ 0 };
    size_t count = add_bigrams(set, t, symbol_len, space_alone), cap = 16;
    while (cap < 2 * count)
        cap *= 2;
    set->slot = xcalloc(cap, sizeof *set->slot);
    set->mask = (uint32_t)(cap - 1);
    add_bigrams(set, t, symbol_len, space_alone);
}

void bigrams_free(bigram_set *set)
{
    free(set->slot);
}

/* ---- the heap of candidate merges ---- */

static bool merge_before(const bpe_merge *a, const bpe_merge *b)
{
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static void heap_push(bpe *b, bpe_merge m)
{
    size_t i = b->n_heap++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!merge_before(&m, &b->heap[parent]))
            break;
        b->heap[i] = b->heap[parent];
        i = parent;
    }
    b->heap[i] = m;
}

static bpe_merge heap_pop(bpe *b)
{
    bpe_merge top = b->heap[0], last = b->heap[--b->n_heap];
    size_t i = 0, n = b->n_heap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && merge_before(&b->heap[c + 1], &b->heap[c]))
            c++;
        if (!merge_before(&b->heap[c], &last))
            break;
        b->heap[i] = b->heap[c];
        i = c;
    }
    if (n > 0)
        b->heap[i] = last;
    return top;
}

/* ---- merging ---- */

void bpe_init(bpe *b, const tokenizer *t, const bigram_set *pairs, const char *s, size_t m)
{
    *b = (bpe){ .t = t, .pairs = pairs, .s = s };
    b->sym = xmalloc(m * sizeof *b->sym);
    b->frozen = xcalloc(m, 1);
}

static void maybe_add_pair(bpe *b, int left, int right)
{
    if (left < 0 || right < 0 || b->frozen[left] || b->frozen[right])
        return;
    const tokenizer *t = b->t;
    const bpe_symbol *l = &b->sym[left], *r = &b->sym[right];
    uint32_t size = l->len + r->len;
    int id = piece_map_find(t, &t->mergeable, b->s + l->start, size);
    if (id < 0)
        return;
    if (b->score_floor && !(t->score[id] > -1e10f))
        return;
    heap_push(b, (bpe_merge){ t->score[id], left, right, size });
    if (b->rev && t->type[id] == PIECE_UNUSED)
        b->rev[id] = (bpe_formed){ l->start, l->len, size };
}

/* Whether no merge can ever join initial symbols i and i + 1. */
static bool is_cut(const bpe *b, size_t i)
{
    const bpe_symbol *l = &b->sym[i], *r = &b->sym[i + 1];
    if (b->frozen[i] || b->frozen[i + 1])
        return true;
    return !bigram_has(b->pairs, pack_char(b->s + l->start, l->len) << 32 | pack_char(b->s + r->start, r->len));
}

/* Merges the symbols [from, to), which no merge joins to anything outside. */
static void merge_part(bpe *b, size_t from, size_t to)
{
    b->n_heap = 0;
    for (size_t i = from + 1; i < to; i++)
        maybe_add_pair(b, (int)i - 1, (int)i);
    while (b->n_heap > 0) {
        bpe_merge top = heap_pop(b);
        bpe_symbol *l = &b->sym[top.left], *r = &b->sym[top.right];
        if (l->len == 0 || r->len == 0 || l->len + r->len != top.size)
            continue; // stale
        l->len += r->len;
        l->next = r->next;
        if (r->next >= 0)
            b->sym[r->next].prev = top.left;
        r->len = 0;
        if (l->prev >= (int32_t)from)
            maybe_add_pair(b, l->prev, top.left);
        if (l->next >= 0 && l->next < (int32_t)to)
            maybe_add_pair(b, top.left, l->next);
    }
}

/* bpe_model.cc's merge loop, one part between cuts at a time: the merges within
 * a part, and their order, are those of the whole text. */
void bpe_merge_all(bpe *b, bool record_unused)
{
    size_t n_sym = b->n_sym;
    for (size_t i = 0; i < n_sym; i++) {
        b->sym[i].prev = (int32_t)i - 1;
        b->sym[i].next = i + 1 < n_sym ? (int32_t)i + 1 : -1;
    }
    b->heap = xmalloc(3 * n_sym * sizeof *b->heap);
    if (record_unused)
        b->rev = xcalloc((size_t)b->t->n_vocab, sizeof *b->rev);
    for (size_t from = 0, to; from < n_sym; from = to) {
        for (to = from + 1; to < n_sym && !is_cut(b, to - 1);)
            to++;
        merge_part(b, from, to);
    }
}

void bpe_free(bpe *b)
{
    free(b->sym);
    free(b->frozen);
    free(b->heap);
    free(b->rev);
}
