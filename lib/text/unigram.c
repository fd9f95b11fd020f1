/* unigram.c - SentencePiece's unigram segmentation (unigram.h).
 *
 * Letters: n bytes of normalized text, P pieces, N trie nodes (at most the
 * bytes of all pieces, plus the root).
 *
 * The pieces sit in a byte trie held as a hash table of edges (parent node,
 * byte) -> child node, so walking the text from one position visits exactly the
 * pieces that start there, as SentencePiece's double-array trie does. The
 * Viterbi pass is EncodeOptimized's: best[e] is the best score of a path that
 * ends at byte e, updated from every character start in order; the arithmetic
 * follows the C++ (piece scores added in double, stored as float; the unknown
 * penalty added in float), so ties and near-ties resolve the same way. */
#include "base/util.h"
#include "text/unigram.h"

#include <float.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

enum { TYPE_NORMAL = 1, TYPE_USER_DEFINED = 4, TYPE_UNUSED = 5 };

struct unigram {
    int n; // P
    float *score; // (P)
    uint8_t *type; // (P)
    int unk;
    float max_score, unk_score;

    int32_t *value; // (N) piece id ending at the node, -1 none; node 0 the root
    int32_t n_nodes;
    uint64_t *edge; // (mask + 1) (parent << 8 | byte) + 1, 0 empty
    int32_t *child; // (mask + 1)
    uint32_t mask;
};

static uint32_t edge_slot(uint64_t key, uint32_t mask)
{
    return (uint32_t)((key * 0x9e3779b97f4a7c15ull) >> 32) & mask;
}

/* The child of node by byte b, -1 if none. */
static int32_t trie_next(const unigram *u, int32_t node, uint8_t b)
{
    uint64_t key = ((uint64_t)node << 8 | b) + 1;
    for (uint32_t i = edge_slot(key, u->mask);; i = (i + 1) & u->mask) {
        if (u->edge[i] == key)
            return u->child[i];
        if (u->edge[i] == 0)
            return -1;
    }
}

static int32_t trie_add_edge(unigram *u, int32_t node, uint8_t b)
{
    uint64_t key = ((uint64_t)node << 8 | b) + 1;
    uint32_t i = edge_slot(key, u->mask);
    for (; u->edge[i] != 0; i = (i + 1) & u->mask)
        if (u->edge[i] == key)
            return u->child[i];
    u->edge[i] = key;
    u->child[i] = u->n_nodes;
    u->value[u->n_nodes] = -1;
    return u->n_nodes++;
}

static bool in_trie(int type)
{
    return type == TYPE_NORMAL || type == TYPE_USER_DEFINED || type == TYPE_UNUSED;
}

unigram *unigram_new(int n, const char *text, const uint32_t *off, const float *score, const uint8_t *type, int unk)
{
    unigram *u = xcalloc(1, sizeof *u);
    u->n = n;
    u->unk = unk;
    u->score = xmalloc((size_t)n * sizeof *u->score + 1);
    u->type = xmalloc((size_t)n + 1);
    if (n) {
        memcpy(u->score, score, (size_t)n * sizeof *score);
        memcpy(u->type, type, (size_t)n);
    }
    float min_score = FLT_MAX, max_score = FLT_MIN; // as unigram_model.cc starts them
    size_t bytes = 0;
    for (int i = 0; i < n; i++) {
        if (type[i] == TYPE_NORMAL) {
            min_score = score[i] < min_score ? score[i] : min_score;
            max_score = score[i] > max_score ? score[i] : max_score;
        }
        if (in_trie(type[i]))
            bytes += off[i + 1] - off[i];
    }
    u->max_score = max_score;
    u->unk_score = min_score - 10.0f; // kUnkPenalty

    size_t cap = 16;
    while (cap < 2 * bytes)
        cap *= 2;
    u->edge = xcalloc(cap, sizeof *u->edge);
    u->child = xmalloc(cap * sizeof *u->child);
    u->mask = (uint32_t)(cap - 1);
    u->value = xmalloc((bytes + 1) * sizeof *u->value);
    u->value[0] = -1;
    u->n_nodes = 1;
    for (int i = 0; i < n; i++) {
        if (!in_trie(type[i]))
            continue;
        int32_t node = 0;
        for (uint32_t k = off[i]; k < off[i + 1]; k++)
            node = trie_add_edge(u, node, (uint8_t)text[k]);
        if (node > 0)
            u->value[node] = i;
    }
    return u;
}

void unigram_free(unigram *u)
{
    if (!u)
        return;
    free(u->score);
    free(u->type);
    free(u->value);
    free(u->edge);
    free(u->child);
    free(u);
}

/* string_util::OneCharLen: the length of a UTF-8 character by its lead byte. */
static size_t one_char_len(uint8_t c)
{
    static const uint8_t len[16] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4 };
    return len[c >> 4];
}

size_t unigram_segment(const unigram *u, const char *s, size_t n, uint32_t *start, int32_t *id)
{
    if (n == 0)
        return 0;
    float *best = xcalloc(n + 1, sizeof *best); // (n + 1) best score of a path ending at each byte
    int64_t *from = xmalloc((n + 1) * sizeof *from); // (n + 1) where its last piece starts, -1: none yet
    int32_t *via = xmalloc((n + 1) * sizeof *via); // (n + 1) its last piece
    for (size_t i = 0; i <= n; i++)
        from[i] = -1;

    for (size_t at = 0; at < n;) {
        float till = best[at];
        size_t mblen = one_char_len((uint8_t)s[at]);
        if (mblen > n - at)
            mblen = n - at;
        bool has_single = false;
        int32_t node = 0;
        for (size_t end = at; end < n;) {
            node = trie_next(u, node, (uint8_t)s[end++]);
            if (node < 0)
                break;
            int32_t pid = u->value[node];
            if (pid < 0 || u->type[pid] == TYPE_UNUSED)
                continue;
            size_t len = end - at;
            double score = u->type[pid] == TYPE_USER_DEFINED ? (double)((float)len * u->max_score) - 0.1
                                                              : (double)u->score[pid];
            double cand = score + (double)till;
            if (from[end] < 0 || cand > (double)best[end]) {
                best[end] = (float)cand;
                from[end] = (int64_t)at;
                via[end] = pid;
            }
            if (len == mblen)
                has_single = true;
        }
        if (!has_single) {
            size_t end = at + mblen;
            float cand = u->unk_score + till;
            if (from[end] < 0 || cand > best[end]) {
                best[end] = cand;
                from[end] = (int64_t)at;
                via[end] = u->unk;
            }
        }
        at += mblen;
    }

    size_t count = 0;
    for (size_t end = n; end > 0; end = (size_t)from[end]) {
        start[count] = (uint32_t)from[end];
        id[count++] = via[end];
    }
    for (size_t i = 0, j = count - 1; i < j; i++, j--) {
        uint32_t ts = start[i];
        start[i] = start[j];
        start[j] = ts;
        int32_t ti = id[i];
        id[i] = id[j];
        id[j] = ti;
    }
    free(best);
    free(from);
    free(via);
    return count;
}
