/* tokenizer_kind.c - the vocabulary every kind of tokenizer fills in: its arrays
 * and the maps from a piece's bytes to its id (tokenizer_kind.h). */
#include "base/util.h"
#include "text/tokenizer_kind.h"

#include <string.h>
#include <xxhash.h>

void tokenizer_alloc_vocab(tokenizer *t, int n_vocab, size_t text_bytes)
{
    t->n_vocab = n_vocab;
    t->text = xmalloc(text_bytes + 1);
    t->off = xcalloc((size_t)n_vocab + 1, sizeof *t->off);
    t->shown_off = xcalloc((size_t)n_vocab + 1, sizeof *t->shown_off);
    t->score = xcalloc((size_t)n_vocab, sizeof *t->score);
    t->type = xcalloc((size_t)n_vocab, sizeof *t->type);
    piece_map_init(&t->mergeable, n_vocab);
    piece_map_init(&t->reserved, n_vocab);
}

void piece_map_init(piece_map *m, int n)
{
    uint32_t cap = 16;
    while (cap < 2u * (uint32_t)n)
        cap *= 2;
    m->slot = xmalloc(cap * sizeof *m->slot);
    memset(m->slot, 0xff, cap * sizeof *m->slot);
    m->mask = cap - 1;
    m->max_len = 0;
}

int piece_map_find(const tokenizer *t, const piece_map *m, const char *s, size_t n)
{
    if (n > m->max_len)
        return -1;
    for (uint32_t i = (uint32_t)XXH3_64bits(s, n) & m->mask;; i = (i + 1) & m->mask) {
        int id = m->slot[i];
        if (id < 0)
            return -1;
        size_t len;
        const char *p = piece_at(t, id, &len);
        if (len == n && memcmp(p, s, n) == 0)
            return id;
    }
}

bool piece_map_add(const tokenizer *t, piece_map *m, int id)
{
    size_t n;
    const char *s = piece_at(t, id, &n);
    uint32_t i = (uint32_t)XXH3_64bits(s, n) & m->mask;
    for (; m->slot[i] >= 0; i = (i + 1) & m->mask) {
        size_t len;
        const char *p = piece_at(t, m->slot[i], &len);
        if (len == n && memcmp(p, s, n) == 0)
            return false;
    }
    m->slot[i] = id;
    if (n > m->max_len)
        m->max_len = (uint32_t)n;
    return true;
}

int vocab_piece_id(const tokenizer *t, const char *s, size_t n)
{
    int id = piece_map_find(t, &t->reserved, s, n);
    return id >= 0 ? id : piece_map_find(t, &t->mergeable, s, n);
}

int parse_byte_piece(const char *s, size_t n, bool upper_only)
{
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>')
        return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        v *= 16;
        if (c >= '0' && c <= '9')
            v += c - '0';
        else if (c >= 'A' && c <= 'F')
            v += c - 'A' + 10;
        else if (!upper_only && c >= 'a' && c <= 'f')
            v += c - 'a' + 10;
        else
            return -1;
    }
    return v;
}
