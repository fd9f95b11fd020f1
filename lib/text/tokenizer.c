/* tokenizer.c - a tokenizer of any kind (tokenizer.h): loading by format or by
 * sniffing a file, and everything asked of it, answered from the vocabulary its
 * kind filled in (tokenizer_kind.h).
 *
 * The kinds, one file each:
 *   sentencepiece.c  tokenizer.model (sentencepiece, chatglm, chatglm2)
 *   llama2c_tok.c    llama2.c's tok*.bin (llama2c)
 *   hf_json.c        Hugging Face tokenizer.json, byte-level BPE (hf-json)
 * A new kind is one more file giving a tokenizer_kind row, and the row in kinds[]. */
#include "base/util.h"
#include "text/hf_json.h"
#include "text/hf_tokenizer.h"
#include "text/llama2c_tok.h"
#include "text/sentencepiece.h"
#include "text/tokenizer.h"
#include "text/tokenizer_folder.h"
#include "text/tokenizer_kind.h"

#include <stdlib.h>
#include <string.h>

/* Every kind, in the order sniffing tries them. */
static const tokenizer_kind *const kinds[] = {
    &sentencepiece_kinds[0], &sentencepiece_kinds[1], &sentencepiece_kinds[2], &llama2c_kind, &hf_json_kind,
};
#define N_KINDS (sizeof kinds / sizeof *kinds)

const char *tokenizer_sniff(const uint8_t *data, size_t n)
{
    for (size_t k = 0; k < N_KINDS; k++)
        if (kinds[k]->sniff && kinds[k]->sniff(data, n))
            return kinds[k]->format;
    return NULL;
}

/* Decoded text of every piece, as the kind shows each. */
static void build_shown(tokenizer *t)
{
    size_t total = 0;
    for (int id = 0; id < t->n_vocab; id++)
        total += t->kind->shown(t, id, NULL);
    if (total >= UINT32_MAX)
        die("tokenizer: %zu bytes of decoded pieces is too many", total);
    t->shown = xmalloc(total + 1);
    uint32_t at = 0;
    for (int id = 0; id < t->n_vocab; id++) {
        t->shown_off[id] = at;
        at += (uint32_t)t->kind->shown(t, id, t->shown + at);
    }
    t->shown_off[t->n_vocab] = at;
}

tokenizer *tokenizer_load_blob(const char *format, const uint8_t *data, size_t n, const char *source)
{
    if (n >= UINT32_MAX)
        die("%s: not a tokenizer (%zu bytes is too large)", source, n);
    const tokenizer_kind *kind = NULL;
    for (size_t k = 0; k < N_KINDS; k++)
        if (strcmp(format, kinds[k]->format) == 0)
            kind = kinds[k];
    if (!kind)
        die("%s: unknown tokenizer format '%s'", source, format);
    tokenizer *t = xcalloc(1, sizeof *t);
    t->kind = kind;
    t->blob = xmalloc(n + 1);
    if (n)
        memcpy(t->blob, data, n);
    t->blob_n = n;
    kind->load(t, source);
    build_shown(t);
    return t;
}

tokenizer *tokenizer_load_file(const char *path)
{
    size_t n;
    char *data;
    const char *format;
    if (path_is_dir(path)) {
        format = tokenizer_read_folder(path, (uint8_t **)&data, &n);
        if (!format)
            die("%s: no tokenizer in the folder (tokenizer.model, tokenizer.json, or ice_text.model with "
                "tokenizer_config.json)", path);
        // messages name the file the bytes came from
        char *source = !strcmp(format, "hf-json") ? path_join(path, "tokenizer.json") : xstrdup(path);
        tokenizer *t = tokenizer_load_blob(format, (const uint8_t *)data, n, source);
        free(source);
        free(data);
        return t;
    }
    data = read_whole_file(path, &n);
    format = tokenizer_sniff((const uint8_t *)data, n);
    if (!format)
        die("%s: not a tokenizer (neither a SentencePiece model, a llama2.c tok.bin nor a tokenizer.json)", path);
    tokenizer *t = tokenizer_load_blob(format, (const uint8_t *)data, n, path);
    free(data);
    return t;
}

void tokenizer_free(tokenizer *t)
{
    if (!t)
        return;
    t->kind->free(t);
    free(t->blob);
    free(t->text);
    free(t->off);
    free(t->shown);
    free(t->shown_off);
    free(t->score);
    free(t->type);
    free(t->mergeable.slot);
    free(t->reserved.slot);
    free(t);
}

const char *tokenizer_format(const tokenizer *t)
{
    return t->kind->format;
}

const uint8_t *tokenizer_data(const tokenizer *t, size_t *n)
{
    *n = t->blob_n;
    return t->blob;
}

int tokenizer_vocab_size(const tokenizer *t) { return t->n_vocab; }
int tokenizer_bos(const tokenizer *t) { return t->bos; }
int tokenizer_eos(const tokenizer *t) { return t->eos; }
int tokenizer_unk(const tokenizer *t) { return t->unk; }
bool tokenizer_adds_dummy_prefix(const tokenizer *t) { return t->add_dummy_prefix; }
bool tokenizer_is_bpe(const tokenizer *t) { return t->merges; }

static void check_id(const tokenizer *t, int id)
{
    if (id < 0 || id >= t->n_vocab)
        die("token id %d out of range (vocabulary of %d)", id, t->n_vocab);
}

const char *tokenizer_piece(const tokenizer *t, int id, size_t *len)
{
    check_id(t, id);
    *len = t->shown_off[id + 1] - t->shown_off[id];
    return t->shown + t->shown_off[id];
}

const char *tokenizer_piece_raw(const tokenizer *t, int id, size_t *len)
{
    check_id(t, id);
    return piece_at(t, id, len);
}

float tokenizer_score(const tokenizer *t, int id)
{
    check_id(t, id);
    return t->score[id];
}

int tokenizer_piece_type(const tokenizer *t, int id)
{
    check_id(t, id);
    return t->type[id];
}

int tokenizer_piece_id(const tokenizer *t, const char *piece, size_t len)
{
    return vocab_piece_id(t, piece, len);
}

size_t tokenizer_encode(const tokenizer *t, const char *text, size_t len, bool bos, int **ids)
{
    size_t front = bos ? (size_t)t->n_prefix : 0, n = front;
    if (len > 0)
        n = t->kind->encode(t, text, len, front, ids);
    else
        *ids = xmalloc((front + 1) * sizeof **ids);
    for (size_t i = 0; i < front; i++)
        (*ids)[i] = t->prefix[i];
    return n;
}

int tokenizer_prefix(const tokenizer *t, const int **ids)
{
    *ids = t->prefix;
    return t->n_prefix;
}

size_t tokenizer_encode_prompt(const tokenizer *t, const char *text, size_t len, int **ids)
{
    if (!t->prefix_last)
        return tokenizer_encode(t, text, len, true, ids);
    size_t n = tokenizer_encode(t, text, len, false, ids);
    *ids = xrealloc(*ids, (n + (size_t)t->n_prefix) * sizeof **ids);
    for (int i = 0; i < t->n_prefix; i++)
        (*ids)[n + (size_t)i] = t->prefix[i];
    return n + (size_t)t->n_prefix;
}

int tokenizer_merge_count(const tokenizer *t)
{
    return t->kind == &hf_json_kind ? hf_merge_count(t->kind_data) : 0;
}

const char *tokenizer_merge(const tokenizer *t, int i, size_t *len)
{
    if (i < 0 || i >= tokenizer_merge_count(t))
        die("merge %d out of range (%d merges)", i, tokenizer_merge_count(t));
    return hf_merge(t->kind_data, i, len);
}

const char *tokenizer_pre_name(const tokenizer *t)
{
    return t->kind == &hf_json_kind ? hf_pre_name(t->kind_data) : NULL;
}
