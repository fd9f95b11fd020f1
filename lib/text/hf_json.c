/* hf_json.c - tokenizer.json as a kind of tokenizer (hf_json.h). */
#include "text/hf_json.h"

#include "base/util.h"
#include "text/hf_tokenizer.h"

#include <stdlib.h>
#include <string.h>

bool hf_json_sniff(const uint8_t *data, size_t n)
{
    size_t i = 0;
    if (n >= 3 && !memcmp(data, "\xEF\xBB\xBF", 3))
        i = 3;
    while (i < n && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r'))
        i++;
    return i < n && data[i] == '{';
}

size_t hf_json_parts(const uint8_t *data, size_t n, const uint8_t **config, size_t *config_n)
{
    const uint8_t *nul = n ? memchr(data, 0, n) : NULL;
    *config = nul ? nul + 1 : NULL;
    *config_n = nul ? n - (size_t)(nul + 1 - data) : 0;
    return nul ? (size_t)(nul - data) : n;
}

static void hf_load(tokenizer *t, const char *source)
{
    const uint8_t *config;
    size_t config_n, json_n = hf_json_parts(t->blob, t->blob_n, &config, &config_n);
    hf_tokenizer *h = hf_tokenizer_load(t->blob, json_n, config, config_n, source);
    t->kind_data = h;
    int V = hf_vocab_size(h);
    size_t total = 0, len;
    for (int id = 0; id < V; id++) {
        hf_piece_raw(h, id, &len);
        total += len;
    }
    if (total >= UINT32_MAX)
        die("%s: %zu bytes of tokens is too many", source, total);
    tokenizer_alloc_vocab(t, V, total);
    uint32_t at = 0;
    for (int id = 0; id < V; id++) {
        const char *p = hf_piece_raw(h, id, &len);
        t->off[id] = at;
        memcpy(t->text + at, p, len);
        at += (uint32_t)len;
        t->type[id] = (uint8_t)hf_piece_type(h, id);
    }
    t->off[V] = at;
    // vocab_piece_id: the added tokens first (reserved), as the library's token_to_id
    for (int id = 0; id < V; id++)
        if (t->off[id + 1] > t->off[id])
            piece_map_add(t, t->type[id] == PIECE_NORMAL ? &t->mergeable : &t->reserved, id);
    for (int b = 0; b < 256; b++)
        t->byte_id[b] = -1;
    t->unk = hf_unk(h);
    t->bos = hf_bos(h);
    t->eos = hf_eos(h);
    const int *ids;
    int n = hf_prefix(h, &ids);
    if (n > (int)(sizeof t->prefix / sizeof *t->prefix))
        die("%s: post_processor: the template puts %d tokens before the text (at most 2 are supported)", source, n);
    for (int i = 0; i < n; i++)
        t->prefix[i] = ids[i];
    t->n_prefix = n;
    if (hf_suffix(h, &ids) > 0)
        die("%s: post_processor: a template that puts tokens after the text is not supported", source);
    t->merges = true;
}

static void hf_free(tokenizer *t)
{
    hf_tokenizer_free(t->kind_data);
}

static size_t hf_kind_encode(const tokenizer *t, const char *text, size_t len, size_t front, int **ids)
{
    int *got;
    size_t n = hf_encode(t->kind_data, text, len, false, &got);
    int *out = xmalloc((front + n + 1) * sizeof *out);
    memcpy(out + front, got, n * sizeof *got);
    free(got);
    *ids = out;
    return front + n;
}

static size_t hf_shown(const tokenizer *t, int id, char *out)
{
    size_t n;
    const char *p = hf_piece(t->kind_data, id, &n);
    if (out)
        memcpy(out, p, n);
    return n;
}

const tokenizer_kind hf_json_kind = {"hf-json", hf_json_sniff, hf_load, hf_kind_encode, hf_shown, hf_free};
