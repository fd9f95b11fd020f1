/* hf_json_write.c - hf-json's bytes from a GGUF "gpt2" tokenizer (hf_json_write.h). */
#include "text/hf_json_write.h"

#include "base/util.h"
#include "text/hf_tokenizer.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* {"type": "ByteLevel", ...}, as Llama 3's and Qwen's files write it. */
static json_t *byte_level(void)
{
    return json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel", "add_prefix_space", 0, "trim_offsets", 0,
                     "use_regex", 0);
}

static uint8_t *fail(char *err, size_t err_size, json_t *a, json_t *b, const char *fmt, int x)
{
    snprintf(err, err_size, fmt, x);
    json_decref(a);
    json_decref(b);
    return NULL;
}

uint8_t *hf_json_from_vocab(const hf_vocab *v, size_t *n, char *err, size_t err_size)
{
    bool nfc, ignore_merges;
    const char *regex = v->pre ? hf_pre_regex(v->pre, &nfc, &ignore_merges) : NULL;
    if (!regex) {
        snprintf(err, err_size, "tokenizer.ggml.pre '%s' is not one pare reads (llama-bpe, qwen2)",
                 v->pre ? v->pre : "(none)");
        return NULL;
    }
    json_t *vocab = json_object(), *added = json_array();
    for (int id = 0; id < v->n; id++) {
        int type = v->type ? v->type[id] : 1;
        if (type == 5)
            continue; // llama.cpp's [PADn]: no token has the id
        if (type != 1 && type != 3 && type != 4)
            return fail(err, err_size, vocab, added, "token %d has GGUF type %d, which a gpt2 tokenizer does not hold",
                        id);
        json_t *s = json_stringn(v->token[id], v->len[id]);
        if (!s || !v->len[id])
            return fail(err, err_size, vocab, added, "token %d is empty or not UTF-8", id);
        if (type == 1) {
            char *key = xmalloc(v->len[id] + 1);
            memcpy(key, v->token[id], v->len[id]);
            key[v->len[id]] = 0;
            bool repeat = strlen(key) != v->len[id] || json_object_get(vocab, key);
            if (!repeat)
                json_object_set_new(vocab, key, json_integer(id));
            free(key);
            json_decref(s);
            if (repeat)
                return fail(err, err_size, vocab, added, "token %d repeats another token (or holds a NUL)", id);
        } else {
            json_array_append_new(added, json_pack("{s:i, s:o, s:b, s:b, s:b, s:b, s:b}", "id", id, "content", s,
                                                   "single_word", 0, "lstrip", 0, "rstrip", 0, "normalized", 0,
                                                   "special", type == 3));
        }
    }
    json_t *merges = json_array();
    for (int i = 0; i < v->n_merges; i++) {
        json_t *s = json_stringn(v->merge[i], v->merge_len[i]);
        if (!s)
            return fail(err, err_size, vocab, added, "merge %d is not UTF-8", i);
        json_array_append_new(merges, s);
    }
    json_t *model = json_pack("{s:s, s:n, s:n, s:n, s:n, s:b, s:b, s:b, s:o, s:o}", "type", "BPE", "dropout",
                              "unk_token", "continuing_subword_prefix", "end_of_word_suffix", "fuse_unk", 0,
                              "byte_fallback", 0, "ignore_merges", ignore_merges, "vocab", vocab, "merges", merges);
    json_t *split = json_pack("{s:s, s:{s:s}, s:s, s:b}", "type", "Split", "pattern", "Regex", regex, "behavior",
                              "Isolated", "invert", 0);
    json_t *pre = json_pack("{s:s, s:[o, o]}", "type", "Sequence", "pretokenizers", split, byte_level());
    json_t *post = byte_level();
    if (v->add_bos && v->bos >= 0 && v->bos < v->n) {
        json_t *name = json_stringn(v->token[v->bos], v->len[v->bos]);
        if (!name)
            return fail(err, err_size, added, model, "token %d (BOS) is not UTF-8", v->bos);
        const char *bos = json_string_value(name);
        json_t *tp = json_pack("{s:s, s:[{s:{s:s, s:i}}, {s:{s:s, s:i}}], s:[], s:{s:{s:s, s:[i], s:[s]}}}", "type",
                               "TemplateProcessing", "single", "SpecialToken", "id", bos, "type_id", 0, "Sequence",
                               "id", "A", "type_id", 0, "pair", "special_tokens", bos, "id", bos, "ids", v->bos,
                               "tokens", bos);
        json_decref(name);
        post = json_pack("{s:s, s:[o, o]}", "type", "Sequence", "processors", post, tp);
    }
    json_t *j = json_pack("{s:s, s:n, s:n, s:o, s:o, s:o, s:o, s:o, s:o}", "version", "1.0", "truncation", "padding",
                          "added_tokens", added, "normalizer",
                          nfc ? json_pack("{s:s}", "type", "NFC") : json_null(), "pre_tokenizer", pre,
                          "post_processor", post, "decoder", byte_level(), "model", model);
    json_t *config = json_object();
    const char *keys[2] = {"bos_token", "eos_token"};
    int ids[2] = {v->bos, v->eos};
    for (int k = 0; k < 2; k++)
        if (ids[k] >= 0 && ids[k] < v->n)
            json_object_set_new(config, keys[k], json_stringn(v->token[ids[k]], v->len[ids[k]]));
    char *a = json_dumps(j, JSON_PRESERVE_ORDER | JSON_COMPACT), *b = json_dumps(config, JSON_PRESERVE_ORDER);
    json_decref(j);
    json_decref(config);
    if (!a || !b)
        die("out of memory");
    size_t an = strlen(a), bn = strlen(b);
    uint8_t *out = xmalloc(an + 1 + bn);
    memcpy(out, a, an);
    out[an] = 0;
    memcpy(out + an + 1, b, bn);
    *n = an + 1 + bn;
    free(a);
    free(b);
    return out;
}
