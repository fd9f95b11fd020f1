/* sp_normalize.c - SentencePiece's normalizer (sp_normalize.h). */
#include "base/utf8.h"
#include "base/util.h"
#include "text/protobuf.h"
#include "text/sp_normalize.h"

#include <stdlib.h>
#include <string.h>

#define REPLACEMENT_CHAR "\xef\xbf\xbd" /* U+FFFD */

void sp_normalizer_init(sp_normalizer *nz)
{
    *nz = (sp_normalizer){ .add_dummy_prefix = true, .remove_extra_ws = true, .escape_ws = true };
}

void sp_normalizer_read(sp_normalizer *nz, const uint8_t *d, size_t n, const char *source)
{
    pb_reader r = { d, d + n };
    pb_field f;
    int rc;
    const uint8_t *charsmap = NULL;
    size_t charsmap_n = 0;
    while ((rc = pb_next(&r, &f)) > 0) {
        if (f.field == 2) { // precompiled_charsmap
            if (f.wire != 2)
                goto bad;
            charsmap = f.data;
            charsmap_n = f.len;
        } else if (f.field >= 3 && f.field <= 5) {
            if (f.wire != 0)
                goto bad;
            bool *flag = f.field == 3 ? &nz->add_dummy_prefix : f.field == 4 ? &nz->remove_extra_ws : &nz->escape_ws;
            *flag = f.v != 0;
        }
    }
    if (rc != 0)
        goto bad;
    if (charsmap_n > 0) {
        // uint32 size of the double array, the array, then NUL-terminated replacements
        uint32_t trie_bytes = charsmap_n > 4 ? (uint32_t)load_le(charsmap, 4) : 0;
        if (charsmap_n <= 4 || trie_bytes > charsmap_n - 4)
            die("%s: not a tokenizer (corrupt precompiled_charsmap in the SentencePiece model)", source);
        free(nz->trie);
        free(nz->norm);
        nz->trie_n = trie_bytes / 4;
        nz->trie = xmalloc(nz->trie_n * 4 + 4);
        memcpy(nz->trie, charsmap + 4, nz->trie_n * 4);
        nz->norm_n = charsmap_n - 4 - trie_bytes;
        nz->norm = xmalloc(nz->norm_n + 1);
        memcpy(nz->norm, charsmap + 4 + trie_bytes, nz->norm_n);
        nz->norm[nz->norm_n] = 0;
    }
    return;
bad:
    die("%s: not a tokenizer (corrupt NormalizerSpec in the SentencePiece model)", source);
}

void sp_normalizer_user_init(sp_normalizer *nz, int n_vocab)
{
    piece_map_init(&nz->user, n_vocab);
}

void sp_normalizer_add_user(sp_normalizer *nz, const tokenizer *t, int id)
{
    size_t n;
    const uint8_t *s = (const uint8_t *)piece_at(t, id, &n);
    piece_map_add(t, &nz->user, id);
    nz->user_first[s[0] >> 3] |= (uint8_t)(1u << (s[0] & 7));
    nz->has_user = true;
}

void sp_normalizer_free(sp_normalizer *nz)
{
    free(nz->trie);
    free(nz->norm);
    free(nz->user.slot);
}

size_t sp_user_match(const sp_normalizer *nz, const tokenizer *t, const char *s, size_t n)
{
    uint8_t c = (uint8_t)s[0];
    if (!nz->has_user || !(nz->user_first[c >> 3] & (1u << (c & 7))))
        return 0;
    for (size_t len = n < nz->user.max_len ? n : nz->user.max_len; len > 0; len--)
        if (piece_map_find(t, &nz->user, s, len) >= 0)
            return len;
    return 0;
}

/* Darts-clone commonPrefixSearch over the charsmap: the longest rule matching a
 * prefix of s; its length, and in *value the offset of its replacement. */
static size_t trie_longest(const sp_normalizer *nz, const uint8_t *s, size_t n, uint32_t *value)
{
    size_t best = 0;
    uint32_t pos = 0;
    if (nz->trie_n == 0)
        return 0;
    uint32_t unit = nz->trie[0];
    pos ^= (unit >> 10) << ((unit & (1u << 9)) >> 6);
    for (size_t i = 0; i < n; i++) {
        pos ^= s[i];
        if (pos >= nz->trie_n)
            break;
        unit = nz->trie[pos];
        if ((unit & ((1u << 31) | 0xff)) != s[i])
            break;
        pos ^= (unit >> 10) << ((unit & (1u << 9)) >> 6);
        if (pos >= nz->trie_n)
            break;
        if ((unit >> 8) & 1) {
            best = i + 1;
            *value = nz->trie[pos] & ((1u << 31) - 1);
        }
    }
    return best;
}

/* Normalizer::NormalizePrefix: the normalized form of the first character (or
 * user-defined piece, or charsmap rule) of s, and the bytes it consumes. */
static size_t normalize_prefix(const sp_normalizer *nz, const tokenizer *t, const char *s, size_t n,
                               const char **out, size_t *out_n)
{
    size_t len = sp_user_match(nz, t, s, n);
    if (len) {
        *out = s;
        *out_n = len;
        return len;
    }
    uint32_t value = 0;
    len = trie_longest(nz, (const uint8_t *)s, n, &value);
    if (len) {
        if (value >= nz->norm_n) { // corrupt rule: an empty replacement
            *out = "";
            *out_n = 0;
        } else {
            *out = nz->norm + value;
            *out_n = strlen(*out); // nz->norm ends with a NUL
        }
        return len;
    }
    len = utf8_char_len(s, n); /* string_util::DecodeUTF8 holds the same rule */
    if (len == 0) { // a malformed byte: one U+FFFD for one byte
        *out = REPLACEMENT_CHAR;
        *out_n = 3;
        return 1;
    }
    *out = s;
    *out_n = len;
    return len;
}

void sp_normalize(const sp_normalizer *nz, const tokenizer *t, const char *in, size_t n, bytes *b)
{
    const char *p;
    size_t pn;
    if (nz->remove_extra_ws) { // drop leading spaces
        while (n > 0) {
            size_t used = normalize_prefix(nz, t, in, n, &p, &pn);
            if (!(pn == 1 && p[0] == ' '))
                break;
            in += used;
            n -= used;
        }
    }
    if (n == 0)
        return;
    const char *space = nz->escape_ws ? SPACE_SYMBOL : " ";
    size_t space_n = nz->escape_ws ? 3 : 1;
    if (!nz->ws_suffix && nz->add_dummy_prefix)
        bytes_put(b, space, space_n);
    bool prev_space = nz->remove_extra_ws;
    while (n > 0) {
        size_t used = normalize_prefix(nz, t, in, n, &p, &pn);
        if (prev_space)
            while (pn > 0 && p[0] == ' ')
                p++, pn--;
        if (pn > 0) {
            for (size_t i = 0; i < pn; i++) {
                if (nz->escape_ws && p[i] == ' ')
                    bytes_put(b, SPACE_SYMBOL, 3);
                else
                    bytes_put(b, p + i, 1);
            }
            prev_space = p[pn - 1] == ' ';
        }
        in += used;
        n -= used;
        if (!nz->remove_extra_ws)
            prev_space = false;
    }
    if (nz->remove_extra_ws) // drop trailing spaces
        while (b->n >= space_n && memcmp(b->p + b->n - space_n, space, space_n) == 0)
            b->n -= space_n;
    if (nz->ws_suffix && nz->add_dummy_prefix)
        bytes_put(b, space, space_n);
}
