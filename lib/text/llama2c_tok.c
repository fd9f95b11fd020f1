/* llama2c_tok.c - llama2.c's tok*.bin as a kind of tokenizer (llama2c_tok.h).
 *
 * Letters: m bytes of the text the symbols point into (" " + text).
 *
 * Encoding is run.c's encode(): a " " prefix, each UTF-8 character that is a
 * token is a symbol, any other becomes byte tokens (id = byte + 3) that never
 * merge; merges (bpe.c) into any token whose score is above -1e10. */
#include "base/utf8.h"
#include "base/util.h"
#include "text/bpe.h"
#include "text/llama2c_tok.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Number of records when the file is exactly a tok.bin, else -1. */
static long record_count(const uint8_t *data, size_t n)
{
    if (!data || n < 4)
        return -1;
    int32_t max_len = (int32_t)load_le(data, 4);
    if (max_len < 1 || max_len > (1 << 20))
        return -1;
    size_t at = 4;
    long count = 0;
    while (at < n) {
        if (n - at < 8)
            return -1;
        int32_t len = (int32_t)load_le(data + at + 4, 4);
        if (len < 0 || len > max_len || (size_t)len > n - at - 8)
            return -1;
        at += 8 + (size_t)len;
        if (++count > MAX_VOCAB)
            return -1;
    }
    return count > 0 ? count : -1;
}

bool llama2c_tok_sniff(const uint8_t *data, size_t n)
{
    return record_count(data, n) > 0;
}

/* The bytes of the symbol at s: a byte and up to three continuation bytes. */
static size_t symbol_len(const char *s, size_t n)
{
    size_t len = 1;
    while (len < n && len < 4 && utf8_is_continuation((uint8_t)s[len]))
        len++;
    return len;
}

static void l2c_load(tokenizer *t, const char *source)
{
    long count = record_count(t->blob, t->blob_n);
    if (count < 0)
        die("%s: not a tokenizer (not a llama2.c tok.bin: the records do not fill the file)", source);
    if (count < 259)
        die("%s: llama2.c tokenizer has %ld tokens, fewer than the 259 (<unk>, <s>, </s>, 256 bytes) it needs",
            source, count);
    tokenizer_alloc_vocab(t, (int)count, t->blob_n);
    size_t at = 4;
    uint32_t text_at = 0;
    for (int id = 0; id < count; id++) {
        float score = float_from_bits((uint32_t)load_le(t->blob + at, 4));
        uint32_t len = (uint32_t)load_le(t->blob + at + 4, 4);
        if (isnan(score))
            die("%s: not a tokenizer (token %d has a NaN score)", source, id);
        t->off[id] = text_at;
        memcpy(t->text + text_at, t->blob + at + 8, len);
        text_at += len;
        at += 8 + len;
        t->score[id] = score;
        t->type[id] = id == 0 ? PIECE_UNKNOWN : id <= 2 ? PIECE_CONTROL : id <= 258 ? PIECE_BYTE : PIECE_NORMAL;
    }
    t->off[count] = text_at;
    for (int id = 0; id < count; id++)
        piece_map_add(t, &t->mergeable, id); // llama2.c's bsearch: any one of equal pieces; here the first
    for (int b = 0; b < 256; b++)
        t->byte_id[b] = b + 3;
    t->unk = 0;
    t->bos = 1;
    t->eos = 2;
    t->prefix[0] = 1;
    t->n_prefix = 1;
    t->add_dummy_prefix = true;
    t->merges = true;
    bigram_set *pairs = xmalloc(sizeof *pairs);
    bigrams_build(pairs, t, symbol_len, true);
    t->kind_data = pairs;
}

static void l2c_free(tokenizer *t)
{
    if (t->kind_data)
        bigrams_free(t->kind_data);
    free(t->kind_data);
}

static size_t l2c_encode(const tokenizer *t, const char *text, size_t len, size_t front, int **ids)
{
    size_t m = len + 1;
    if (m >= INT32_MAX / 4)
        die("cannot tokenize a text of %zu bytes (at most %d)", len, INT32_MAX / 4 - 1);
    char *s = xmalloc(m);
    s[0] = ' ';
    memcpy(s + 1, text, len);
    bpe b;
    bpe_init(&b, t, t->kind_data, s, m);
    b.score_floor = true;
    for (size_t at = 0; at < m;) {
        size_t n = at == 0 ? 1 : symbol_len(s + at, m - at); // the " " prefix alone
        if (piece_map_find(t, &t->mergeable, s + at, n) >= 0) {
            bpe_push(&b, at, n, false);
        } else {
            for (size_t i = 0; i < n; i++)
                bpe_push(&b, at + i, 1, true);
        }
        at += n;
    }
    bpe_merge_all(&b, false);
    int *out = xmalloc((m + front + 1) * sizeof *out);
    size_t n_ids = front;
    for (int i = 0; i >= 0; i = b.sym[i].next) {
        const char *w = s + b.sym[i].start;
        if (b.frozen[i])
            out[n_ids++] = t->byte_id[(uint8_t)w[0]];
        else
            out[n_ids++] = piece_map_find(t, &t->mergeable, w, b.sym[i].len);
    }
    bpe_free(&b);
    free(s);
    *ids = out;
    return n_ids;
}

/* A byte token gives its byte; any other piece its bytes as they are. */
static size_t l2c_shown(const tokenizer *t, int id, char *out)
{
    size_t n;
    const char *s = piece_at(t, id, &n);
    int type = t->type[id];
    if (type == PIECE_CONTROL)
        return 0;
    if (type == PIECE_UNKNOWN) {
        if (out)
            memcpy(out, UNK_SURFACE, strlen(UNK_SURFACE));
        return strlen(UNK_SURFACE);
    }
    int byte = parse_byte_piece(s, n, false);
    if (byte >= 0) {
        if (out)
            out[0] = (char)byte;
        return 1;
    }
    if (out)
        memcpy(out, s, n);
    return n;
}

const tokenizer_kind llama2c_kind = { "llama2c", llama2c_tok_sniff, l2c_load, l2c_encode, l2c_shown, l2c_free };
