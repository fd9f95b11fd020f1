/* rank_bpe.c - byte-pair encoding over bytes by merge rank (rank_bpe.h).
 *
 * Letters: V token ids, M merges, k bytes (and so at most k symbols) of a word. */
#include "text/rank_bpe.h"

#include "base/util.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

/* A merge: the pair (left id << 32 | right id), its rank and the token it makes. */
typedef struct {
    uint64_t pair;
    uint32_t rank; // UINT32_MAX: empty slot
    int32_t id;
} merge_slot;

struct rank_bpe {
    uint8_t *text; // every token's bytes, back to back
    size_t text_n, text_cap;
    size_t *off; // (V) token id's bytes are text[off .. off + len)
    uint32_t *len; // (V) 0: no such id
    int n_ids, ids_cap;

    int32_t *slot; // (mask + 1) open addressing by bytes: id, -1 empty
    uint32_t mask;
    int n_tokens;

    merge_slot *merges; // (merge_mask + 1)
    uint32_t merge_mask;
    int n_merges, n_merge_slots;

    int byte_id[256]; // the token of each single byte, -1 none
    int unk;
    bool fuse_unk, ignore_merges;
};

static uint64_t hash_bytes(const uint8_t *s, size_t n)
{
    return XXH3_64bits(s, n);
}

static uint64_t hash_pair(uint64_t pair)
{
    pair ^= pair >> 33;
    pair *= 0xff51afd7ed558ccdULL;
    pair ^= pair >> 33;
    return pair;
}

rank_bpe *rank_bpe_new(void)
{
    rank_bpe *b = xcalloc(1, sizeof *b);
    b->mask = 1023;
    b->slot = xmalloc((b->mask + 1) * sizeof *b->slot);
    memset(b->slot, 0xff, (b->mask + 1) * sizeof *b->slot);
    b->merge_mask = 1023;
    b->merges = xmalloc((b->merge_mask + 1) * sizeof *b->merges);
    for (uint32_t i = 0; i <= b->merge_mask; i++)
        b->merges[i].rank = UINT32_MAX;
    for (int i = 0; i < 256; i++)
        b->byte_id[i] = -1;
    b->unk = -1;
    return b;
}

void rank_bpe_free(rank_bpe *b)
{
    if (!b)
        return;
    free(b->text);
    free(b->off);
    free(b->len);
    free(b->slot);
    free(b->merges);
    free(b);
}

static bool same_bytes(const rank_bpe *b, int id, const uint8_t *s, size_t n)
{
    return b->len[id] == n && memcmp(b->text + b->off[id], s, n) == 0;
}

/* The slot that holds s[0..n), or the empty slot where it would go. */
static uint32_t find_slot(const rank_bpe *b, const uint8_t *s, size_t n)
{
    uint32_t i = (uint32_t)hash_bytes(s, n) & b->mask;
    while (b->slot[i] >= 0 && !same_bytes(b, b->slot[i], s, n))
        i = (i + 1) & b->mask;
    return i;
}

static void grow_token_map(rank_bpe *b)
{
    int32_t *old = b->slot;
    uint32_t old_mask = b->mask;
    b->mask = b->mask * 2 + 1;
    b->slot = xmalloc(((size_t)b->mask + 1) * sizeof *b->slot);
    memset(b->slot, 0xff, ((size_t)b->mask + 1) * sizeof *b->slot);
    for (uint32_t i = 0; i <= old_mask; i++) {
        int id = old[i];
        if (id >= 0 && b->len[id]) {
            uint32_t j = (uint32_t)hash_bytes(b->text + b->off[id], b->len[id]) & b->mask;
            while (b->slot[j] >= 0)
                j = (j + 1) & b->mask;
            b->slot[j] = id;
        }
    }
    free(old);
}

void rank_bpe_add_token(rank_bpe *b, int id, const uint8_t *s, size_t n)
{
    if (id < 0 || n == 0)
        die("rank_bpe_add_token: token %d of %zu bytes", id, n);
    if (id >= b->ids_cap) {
        int cap = b->ids_cap ? b->ids_cap : 1024;
        while (cap <= id)
            cap *= 2;
        b->off = xrealloc(b->off, (size_t)cap * sizeof *b->off);
        b->len = xrealloc(b->len, (size_t)cap * sizeof *b->len);
        memset(b->len + b->ids_cap, 0, (size_t)(cap - b->ids_cap) * sizeof *b->len);
        b->ids_cap = cap;
    }
    if (id >= b->n_ids)
        b->n_ids = id + 1;
    if (b->text_n + n > b->text_cap) {
        b->text_cap = (b->text_n + n) * 2;
        b->text = xrealloc(b->text, b->text_cap);
    }
    memcpy(b->text + b->text_n, s, n);
    b->off[id] = b->text_n;
    b->len[id] = (uint32_t)n;
    b->text_n += n;
    if ((uint64_t)(b->n_tokens + 1) * 2 > (uint64_t)b->mask + 1)
        grow_token_map(b);
    uint32_t i = find_slot(b, s, n);
    if (b->slot[i] < 0)
        b->n_tokens++;
    b->slot[i] = id;
    if (n == 1)
        b->byte_id[s[0]] = id;
}

int rank_bpe_token_id(const rank_bpe *b, const uint8_t *s, size_t n)
{
    if (n == 0)
        return -1;
    return b->slot[find_slot(b, s, n)];
}

static merge_slot *find_merge(const rank_bpe *b, uint64_t pair)
{
    uint32_t i = (uint32_t)hash_pair(pair) & b->merge_mask;
    while (b->merges[i].rank != UINT32_MAX && b->merges[i].pair != pair)
        i = (i + 1) & b->merge_mask;
    return &b->merges[i];
}

static void grow_merge_map(rank_bpe *b)
{
    merge_slot *old = b->merges;
    uint32_t old_mask = b->merge_mask;
    b->merge_mask = b->merge_mask * 2 + 1;
    b->merges = xmalloc(((size_t)b->merge_mask + 1) * sizeof *b->merges);
    for (uint32_t i = 0; i <= b->merge_mask; i++)
        b->merges[i].rank = UINT32_MAX;
    for (uint32_t i = 0; i <= old_mask; i++)
        if (old[i].rank != UINT32_MAX)
            *find_merge(b, old[i].pair) = old[i];
    free(old);
}

int rank_bpe_add_merge(rank_bpe *b, const uint8_t *l, size_t ln, const uint8_t *r, size_t rn)
{
    int left = rank_bpe_token_id(b, l, ln), right = rank_bpe_token_id(b, r, rn);
    if (left < 0)
        return RANK_BPE_NO_LEFT;
    if (right < 0)
        return RANK_BPE_NO_RIGHT;
    uint8_t small[256];
    uint8_t *joined = ln + rn <= sizeof small ? small : xmalloc(ln + rn);
    memcpy(joined, l, ln);
    memcpy(joined + ln, r, rn);
    int id = rank_bpe_token_id(b, joined, ln + rn);
    if (joined != small)
        free(joined);
    if (id < 0)
        return RANK_BPE_NO_RESULT;
    if ((uint64_t)(b->n_merge_slots + 1) * 2 > (uint64_t)b->merge_mask + 1)
        grow_merge_map(b);
    merge_slot *m = find_merge(b, (uint64_t)(uint32_t)left << 32 | (uint32_t)right);
    if (m->rank == UINT32_MAX)
        b->n_merge_slots++;
    *m = (merge_slot){(uint64_t)(uint32_t)left << 32 | (uint32_t)right, (uint32_t)b->n_merges++, id};
    return RANK_BPE_OK;
}

int rank_bpe_merge_count(const rank_bpe *b)
{
    return b->n_merges;
}

void rank_bpe_set_unknown(rank_bpe *b, int unk_id, bool fuse)
{
    b->unk = unk_id;
    b->fuse_unk = fuse;
}

void rank_bpe_set_ignore_merges(rank_bpe *b, bool ignore)
{
    b->ignore_merges = ignore;
}

/* ---- one encoding pass ---- */

typedef struct {
    uint32_t rank;
    int32_t pos; // the left symbol
    int32_t id; // what the pair merges into
} candidate;

typedef struct {
    size_t word_off, ids_off; // into the pass's word bytes and ids
    uint32_t word_len, n_ids;
} cached_word;

#define MAX_CACHED_WORD 256

struct rank_bpe_pass {
    int32_t *sym_id, *sym_prev, *sym_next, *sym_len; // (k) the word's symbols, a linked list
    candidate *heap; // a min-heap by (rank, pos)
    size_t sym_cap, heap_n, heap_cap;

    cached_word *words; // the cache
    size_t n_words, words_cap;
    int32_t *cache_slot; // (cache_mask + 1) index into words, -1 empty
    uint32_t cache_mask;
    bytes word_bytes; // every cached word's bytes
    int *cache_ids;
    size_t cache_ids_n, cache_ids_cap;
};

rank_bpe_pass *rank_bpe_pass_new(void)
{
    rank_bpe_pass *p = xcalloc(1, sizeof *p);
    p->cache_mask = 4095;
    p->cache_slot = xmalloc((p->cache_mask + 1) * sizeof *p->cache_slot);
    memset(p->cache_slot, 0xff, (p->cache_mask + 1) * sizeof *p->cache_slot);
    return p;
}

void rank_bpe_pass_free(rank_bpe_pass *p)
{
    if (!p)
        return;
    free(p->sym_id);
    free(p->sym_prev);
    free(p->sym_next);
    free(p->sym_len);
    free(p->heap);
    free(p->words);
    free(p->cache_slot);
    free(p->word_bytes.p);
    free(p->cache_ids);
    free(p);
}

static bool before(candidate a, candidate b)
{
    return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos);
}

static void heap_push(rank_bpe_pass *p, candidate c)
{
    GROW(p->heap, p->heap_cap, p->heap_n + 1, 64);
    size_t i = p->heap_n++;
    while (i > 0 && before(c, p->heap[(i - 1) / 2])) {
        p->heap[i] = p->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    p->heap[i] = c;
}

static candidate heap_pop(rank_bpe_pass *p)
{
    candidate top = p->heap[0], last = p->heap[--p->heap_n];
    size_t i = 0, n = p->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && before(p->heap[c + 1], p->heap[c]))
            c++;
        if (!before(p->heap[c], last))
            break;
        p->heap[i] = p->heap[c];
        i = c;
    }
    if (n)
        p->heap[i] = last;
    return top;
}

/* Queue the pair of symbols left and its next one, when the pair merges. */
static void queue_pair(const rank_bpe *b, rank_bpe_pass *p, int left)
{
    int right = p->sym_next[left];
    if (right < 0)
        return;
    const merge_slot *m = find_merge(b, (uint64_t)(uint32_t)p->sym_id[left] << 32 | (uint32_t)p->sym_id[right]);
    if (m->rank != UINT32_MAX)
        heap_push(p, (candidate){m->rank, left, m->id});
}

static void append_id(int **ids, size_t *n_ids, size_t *cap, int id)
{
    GROW(*ids, *cap, *n_ids + 1, 256);
    (*ids)[(*n_ids)++] = id;
}

/* The merged symbols of word s[0..k), appended to ids. */
static size_t merge_word(const rank_bpe *b, rank_bpe_pass *p, const uint8_t *s, size_t k, int **ids, size_t *n_ids,
                         size_t *cap)
{
    if (k > p->sym_cap) {
        p->sym_cap = k * 2;
        p->sym_id = xrealloc(p->sym_id, p->sym_cap * sizeof *p->sym_id);
        p->sym_prev = xrealloc(p->sym_prev, p->sym_cap * sizeof *p->sym_prev);
        p->sym_next = xrealloc(p->sym_next, p->sym_cap * sizeof *p->sym_next);
        p->sym_len = xrealloc(p->sym_len, p->sym_cap * sizeof *p->sym_len);
    }
    // One symbol per byte; bytes without a token become the unknown token
    // (runs of them one, when fused) or are dropped (model.rs merge_word).
    int n = 0;
    bool last_unk = false;
    for (size_t i = 0; i < k; i++) {
        int id = b->byte_id[s[i]];
        if (id < 0) {
            if (b->unk < 0)
                continue;
            if (last_unk && b->fuse_unk) {
                p->sym_len[n - 1]++;
                continue;
            }
            id = b->unk;
        }
        last_unk = id == b->unk && b->byte_id[s[i]] < 0;
        p->sym_id[n] = id;
        p->sym_len[n] = 1;
        p->sym_prev[n] = n - 1;
        p->sym_next[n] = n + 1;
        n++;
    }
    if (n == 0)
        return 0;
    p->sym_next[n - 1] = -1;
    p->heap_n = 0;
    for (int i = 0; i + 1 < n; i++)
        queue_pair(b, p, i);
    while (p->heap_n) {
        candidate top = heap_pop(p);
        int left = top.pos, right = p->sym_next[left];
        if (p->sym_len[left] == 0 || right < 0)
            continue;
        // a stale entry: the pair there now does not make this token
        const merge_slot *m = find_merge(b, (uint64_t)(uint32_t)p->sym_id[left] << 32 | (uint32_t)p->sym_id[right]);
        if (m->rank == UINT32_MAX || m->id != top.id)
            continue;
        p->sym_id[left] = top.id;
        p->sym_len[left] += p->sym_len[right];
        p->sym_len[right] = 0;
        p->sym_next[left] = p->sym_next[right];
        if (p->sym_next[right] >= 0)
            p->sym_prev[p->sym_next[right]] = left;
        if (p->sym_prev[left] >= 0)
            queue_pair(b, p, p->sym_prev[left]);
        queue_pair(b, p, left);
    }
    size_t count = 0;
    for (int i = 0; i >= 0; i = p->sym_next[i], count++)
        append_id(ids, n_ids, cap, p->sym_id[i]);
    return count;
}

static uint32_t cache_find(const rank_bpe_pass *p, const uint8_t *s, size_t k, uint64_t h)
{
    uint32_t i = (uint32_t)h & p->cache_mask;
    for (; p->cache_slot[i] >= 0; i = (i + 1) & p->cache_mask) {
        const cached_word *w = &p->words[p->cache_slot[i]];
        if (w->word_len == k && memcmp(p->word_bytes.p + w->word_off, s, k) == 0)
            break;
    }
    return i;
}

static void cache_grow(rank_bpe_pass *p)
{
    free(p->cache_slot);
    p->cache_mask = p->cache_mask * 2 + 1;
    p->cache_slot = xmalloc(((size_t)p->cache_mask + 1) * sizeof *p->cache_slot);
    memset(p->cache_slot, 0xff, ((size_t)p->cache_mask + 1) * sizeof *p->cache_slot);
    for (size_t w = 0; w < p->n_words; w++) {
        const uint8_t *s = p->word_bytes.p + p->words[w].word_off;
        uint32_t i = (uint32_t)hash_bytes(s, p->words[w].word_len) & p->cache_mask;
        while (p->cache_slot[i] >= 0)
            i = (i + 1) & p->cache_mask;
        p->cache_slot[i] = (int32_t)w;
    }
}

size_t rank_bpe_encode_word(const rank_bpe *b, rank_bpe_pass *p, const uint8_t *s, size_t k, int **ids, size_t *n_ids,
                       size_t *cap)
{
    if (k == 0)
        return 0;
    if (b->ignore_merges) {
        int id = rank_bpe_token_id(b, s, k);
        if (id >= 0) {
            append_id(ids, n_ids, cap, id);
            return 1;
        }
    }
    if (k == 1 && b->byte_id[s[0]] >= 0) {
        append_id(ids, n_ids, cap, b->byte_id[s[0]]);
        return 1;
    }
    if (k > MAX_CACHED_WORD)
        return merge_word(b, p, s, k, ids, n_ids, cap);
    uint64_t h = hash_bytes(s, k);
    uint32_t slot = cache_find(p, s, k, h);
    if (p->cache_slot[slot] >= 0) {
        const cached_word *w = &p->words[p->cache_slot[slot]];
        for (uint32_t i = 0; i < w->n_ids; i++)
            append_id(ids, n_ids, cap, p->cache_ids[w->ids_off + i]);
        return w->n_ids;
    }
    size_t first = *n_ids, count = merge_word(b, p, s, k, ids, n_ids, cap);
    if (!count) /* bytes without tokens and no unknown token: nothing to keep */
        return 0;
    GROW(p->words, p->words_cap, p->n_words + 1, 1024);
    if (p->cache_ids_n + count > p->cache_ids_cap) {
        p->cache_ids_cap = (p->cache_ids_n + count) * 2;
        p->cache_ids = xrealloc(p->cache_ids, p->cache_ids_cap * sizeof *p->cache_ids);
    }
    memcpy(p->cache_ids + p->cache_ids_n, *ids + first, count * sizeof **ids);
    p->words[p->n_words] = (cached_word){p->word_bytes.n, p->cache_ids_n, (uint32_t)k, (uint32_t)count};
    bytes_put(&p->word_bytes, s, k);
    p->cache_ids_n += count;
    p->cache_slot[slot] = (int32_t)p->n_words++;
    if (p->n_words * 2 > (size_t)p->cache_mask + 1)
        cache_grow(p);
    return count;
}
