/* hf_tokenizer.c - Hugging Face tokenizer.json, byte-level BPE (hf_tokenizer.h).
 *
 * Letters: V ids (vocabulary and added tokens), M merges, n bytes of a text. */
#include "text/hf_tokenizer.h"

#include "base/utf8.h"
#include "base/util.h"
#include "text/added_tokens.h"
#include "text/rank_bpe.h"
#include "text/byte_level.h"
#include "text/normalize.h"
#include "text/split.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* The Split regexes llama.cpp knows by name (llama-vocab.cpp, tokenizer.ggml.pre). */
static const char LLAMA3_REGEX[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
    "\\s+(?!\\S)|\\s+";
static const char QWEN2_REGEX[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
    "\\s+(?!\\S)|\\s+";
/* What a tokenizer.json whose pre-tokenizer llama.cpp names so holds besides the regex. */
static const struct {
    const char *name, *regex;
    bool nfc, ignore_merges;
} llama_cpp_pre[] = {
    {"llama-bpe", LLAMA3_REGEX, false, true},
    {"qwen2", QWEN2_REGEX, true, false},
};
/* GPT-2's, the ByteLevel pre-tokenizer's own when use_regex is true (byte_level.rs). */
static const char GPT2_REGEX[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

#define MAX_FORMS 8
#define MAX_STEPS 8

/* One pre-tokenizer step: a Split, or the final ByteLevel's prefix space and regex. */
typedef struct {
    split *sp; // NULL: none (a ByteLevel without its regex)
    bool prefix_space; // ByteLevel add_prefix_space: each piece not starting with ' ' gets one
} pre_step;

struct hf_tokenizer {
    int n_ids;
    char *raw; // every token as written, back to back
    size_t *raw_off; // (V + 1)
    char *dec; // every token as decoded (hf_piece)
    size_t *dec_off; // (V + 1)
    uint8_t *type; // (V) GGUF token type

    rank_bpe *model;
    int unk;
    added_set *plain_added, *norm_added; // the added tokens matched before / after normalization

    enum unicode_form form[MAX_FORMS];
    int n_forms;
    pre_step step[MAX_STEPS];
    int n_steps;
    const char *pre_name;

    int *prefix, *suffix;
    int n_prefix, n_suffix;
    int bos, eos;

    char *merge_text; // every merge as "left right", back to back
    size_t *merge_off; // (M + 1) merge i is merge_text[merge_off[i] .. merge_off[i + 1])
    int n_merges;
    char *added_text; // the added tokens' contents (and normalized contents), which the sets point into
};

/* ---- reading JSON, with the key path in every message ---- */

typedef struct {
    const char *source;
} reader;

static _Noreturn __attribute__((format(printf, 3, 4))) void bad(const reader *r, const char *key, const char *fmt,
                                                                 ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    die("%s: %s: %s", r->source, key, msg);
}

static const char *type_name(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

static json_t *need(const reader *r, const json_t *obj, const char *path, const char *key, json_type type)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_typeof(v) != type) {
        static const char *const want[] = {"an object", "an array", "a string", "an integer", "a number",
                                           "a boolean", "a boolean", "null"};
        bad(r, path, "%s %s, not %s", v ? "must be" : "missing: must be", want[type], v ? type_name(v) : "there");
    }
    return v;
}

static bool get_bool(const reader *r, const json_t *obj, const char *path, const char *key, bool dflt)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return dflt;
    if (!json_is_boolean(v))
        bad(r, path, "must be a boolean, not %s", type_name(v));
    return json_is_true(v);
}

/* A string value, or NULL when the key is missing or null. */
static const char *get_string(const reader *r, const json_t *obj, const char *path, const char *key, size_t *len)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return NULL;
    if (!json_is_string(v))
        bad(r, path, "must be a string, not %s", type_name(v));
    if (len)
        *len = json_string_length(v);
    return json_string_value(v);
}

static const char *type_of(const reader *r, const json_t *obj, const char *path)
{
    char key[256];
    snprintf(key, sizeof key, "%s.type", path);
    if (!json_is_object(obj))
        bad(r, path, "must be an object, not %s", type_name(obj));
    return json_string_value(need(r, obj, key, "type", JSON_STRING));
}

/* ---- the parts ---- */

/* Reads one part (a normalizer, a pre-tokenizer, a post-processor) named path. */
typedef void (*read_part_fn)(hf_tokenizer *h, const reader *r, const json_t *j, const char *path, void *ctx);

/* Whether j (of the given type) is a Sequence; if so, read is called on each of
 * its parts, the array under key, named path.key[i]. */
static bool read_sequence(hf_tokenizer *h, const reader *r, const json_t *j, const char *type, const char *path,
                          const char *key, read_part_fn read, void *ctx)
{
    if (strcmp(type, "Sequence"))
        return false;
    char name[256];
    snprintf(name, sizeof name, "%s.%s", path, key);
    json_t *list = need(r, j, name, key, JSON_ARRAY);
    for (size_t i = 0; i < json_array_size(list); i++) {
        snprintf(name, sizeof name, "%s.%s[%zu]", path, key, i);
        read(h, r, json_array_get(list, i), name, ctx);
    }
    return true;
}

static void read_normalizer(hf_tokenizer *h, const reader *r, const json_t *j, const char *path, void *ctx)
{
    if (!j || json_is_null(j))
        return;
    const char *type = type_of(r, j, path);
    if (read_sequence(h, r, j, type, path, "normalizers", read_normalizer, ctx))
        return;
    for (int f = 0; f < 4; f++)
        if (!strcmp(type, unicode_form_names[f])) {
            if (h->n_forms == MAX_FORMS)
                bad(r, path, "more than %d normalizers", MAX_FORMS);
            h->form[h->n_forms++] = (enum unicode_form)f;
            return;
        }
    bad(r, path, "normalizer '%s' is not supported (NFC, NFD, NFKC, NFKD, or a Sequence of them)", type);
}

static void add_step(hf_tokenizer *h, const reader *r, const char *path, pre_step s)
{
    if (h->n_steps == MAX_STEPS)
        bad(r, path, "more than %d pre-tokenizers", MAX_STEPS);
    h->step[h->n_steps++] = s;
}

static split *compile(const reader *r, const char *path, const char *p, size_t n, bool literal, int behavior,
                      bool invert)
{
    char err[300];
    split *sp = split_new(p, n, literal, (enum split_behavior)behavior, invert, err, sizeof err);
    if (!sp)
        bad(r, path, "PCRE2 cannot compile the pattern: %s", err);
    return sp;
}

/* *done (ctx) is set once the ByteLevel step is read: it must be the last. */
static void read_pre_tokenizer(hf_tokenizer *h, const reader *r, const json_t *j, const char *path, void *ctx)
{
    bool *done = ctx;
    if (!j || json_is_null(j))
        return;
    const char *type = type_of(r, j, path);
    char key[256];
    if (read_sequence(h, r, j, type, path, "pretokenizers", read_pre_tokenizer, ctx))
        return;
    if (*done)
        bad(r, path, "a pre-tokenizer after ByteLevel is not supported (ByteLevel must come last)");
    if (!strcmp(type, "ByteLevel")) {
        bool regex = get_bool(r, j, path, "use_regex", true);
        add_step(h, r, path,
                 (pre_step){regex ? compile(r, path, GPT2_REGEX, strlen(GPT2_REGEX), false, SPLIT_ISOLATED, false)
                                  : NULL,
                            get_bool(r, j, path, "add_prefix_space", true)});
        *done = true;
        return;
    }
    if (strcmp(type, "Split"))
        bad(r, path, "pre-tokenizer '%s' is not supported (Split, ByteLevel, or a Sequence of them)", type);
    snprintf(key, sizeof key, "%s.pattern", path);
    json_t *pattern = need(r, j, key, "pattern", JSON_OBJECT);
    size_t n;
    const char *p = get_string(r, pattern, key, "Regex", &n);
    bool literal = !p;
    if (literal && !(p = get_string(r, pattern, key, "String", &n)))
        bad(r, key, "must hold \"Regex\" or \"String\"");
    snprintf(key, sizeof key, "%s.behavior", path);
    const char *behavior = json_string_value(need(r, j, key, "behavior", JSON_STRING));
    int b = name_lookup(behavior, split_behavior_names, 5);
    if (b < 0)
        bad(r, key, "unknown behavior '%s'", behavior);
    add_step(h, r, path, (pre_step){compile(r, path, p, n, literal, b, get_bool(r, j, path, "invert", false)), false});
    if (!literal && h->n_steps == 1)
        for (size_t k = 0; k < sizeof llama_cpp_pre / sizeof *llama_cpp_pre; k++)
            if (n == strlen(llama_cpp_pre[k].regex) && !memcmp(p, llama_cpp_pre[k].regex, n))
                h->pre_name = llama_cpp_pre[k].name;
}

/* One post-processor; prefix and suffix are filled from TemplateProcessing. */
static void read_post_processor(hf_tokenizer *h, const reader *r, const json_t *j, const char *path, void *ctx)
{
    if (!j || json_is_null(j))
        return;
    const char *type = type_of(r, j, path);
    char key[256];
    if (read_sequence(h, r, j, type, path, "processors", read_post_processor, ctx))
        return;
    if (!strcmp(type, "ByteLevel"))
        return; // it changes offsets, not ids
    if (strcmp(type, "TemplateProcessing"))
        bad(r, path, "post-processor '%s' is not supported (TemplateProcessing, ByteLevel, or a Sequence of them)",
            type);
    if (h->n_prefix || h->n_suffix)
        bad(r, path, "a second TemplateProcessing");
    snprintf(key, sizeof key, "%s.single", path);
    json_t *single = need(r, j, key, "single", JSON_ARRAY);
    snprintf(key, sizeof key, "%s.special_tokens", path);
    json_t *specials = need(r, j, key, "special_tokens", JSON_OBJECT);
    bool seen_a = false;
    for (size_t i = 0; i < json_array_size(single); i++) {
        json_t *item = json_array_get(single, i), *st;
        snprintf(key, sizeof key, "%s.single[%zu]", path, i);
        if (json_is_object(item) && (st = json_object_get(item, "Sequence"))) {
            const char *which = json_is_object(st) ? json_string_value(json_object_get(st, "id")) : NULL;
            if (!which || strcmp(which, "A") || seen_a)
                bad(r, key, "the single template holds the sequence A once");
            seen_a = true;
            continue;
        }
        if (!json_is_object(item) || !(st = json_object_get(item, "SpecialToken")) || !json_is_object(st))
            bad(r, key, "must be {\"SpecialToken\": ...} or {\"Sequence\": ...}");
        const char *name = json_string_value(json_object_get(st, "id"));
        json_t *sp = name ? json_object_get(specials, name) : NULL;
        json_t *ids = sp ? json_object_get(sp, "ids") : NULL;
        if (!json_is_array(ids))
            bad(r, key, "special token '%s' has no ids in %s.special_tokens", name ? name : "(none)", path);
        for (size_t k = 0; k < json_array_size(ids); k++) {
            json_t *v = json_array_get(ids, k);
            if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= h->n_ids)
                bad(r, key, "special token '%s' has an id outside the vocabulary", name);
            int **list = seen_a ? &h->suffix : &h->prefix;
            int *count = seen_a ? &h->n_suffix : &h->n_prefix;
            *list = xrealloc(*list, (size_t)(*count + 1) * sizeof **list);
            (*list)[(*count)++] = (int)json_integer_value(v);
        }
    }
    if (!seen_a)
        bad(r, path, "the single template has no sequence A");
}

static void read_decoder(const reader *r, const json_t *j, const char *path)
{
    if (!j || json_is_null(j))
        bad(r, path, "missing: a ByteLevel decoder is needed");
    const char *type = type_of(r, j, path);
    if (!strcmp(type, "Sequence")) {
        char key[256];
        snprintf(key, sizeof key, "%s.decoders", path);
        json_t *list = need(r, j, key, "decoders", JSON_ARRAY);
        if (json_array_size(list) != 1)
            bad(r, key, "only a Sequence of one ByteLevel decoder is supported");
        snprintf(key, sizeof key, "%s.decoders[0]", path);
        read_decoder(r, json_array_get(list, 0), key);
        return;
    }
    if (strcmp(type, "ByteLevel"))
        bad(r, path, "decoder '%s' is not supported (ByteLevel)", type);
}

/* ---- the vocabulary ---- */

typedef struct {
    const char *s;
    size_t n;
} str;

/* The token strings by id, from model.vocab and added_tokens. */
static void read_model(hf_tokenizer *h, const reader *r, const json_t *model, str **by_id, json_t *added)
{
    const char *type = json_string_value(json_object_get(model, "type"));
    if (!json_is_object(model))
        bad(r, "model", "must be an object");
    if (type && strcmp(type, "BPE"))
        bad(r, "model.type", "model '%s' is not supported (BPE)", type);
    json_t *vocab = need(r, model, "model.vocab", "vocab", JSON_OBJECT);
    json_t *merges = need(r, model, "model.merges", "merges", JSON_ARRAY);
    size_t n;
    const char *s = get_string(r, model, "model.continuing_subword_prefix", "continuing_subword_prefix", &n);
    if (s && n)
        bad(r, "model.continuing_subword_prefix", "only an empty prefix is supported");
    s = get_string(r, model, "model.end_of_word_suffix", "end_of_word_suffix", &n);
    if (s && n)
        bad(r, "model.end_of_word_suffix", "only an empty suffix is supported");
    json_t *dropout = json_object_get(model, "dropout");
    if (dropout && !json_is_null(dropout) && !(json_is_number(dropout) && json_number_value(dropout) == 0))
        bad(r, "model.dropout", "BPE dropout is not supported (it makes encoding random)");
    if (get_bool(r, model, "model.byte_fallback", "byte_fallback", false))
        bad(r, "model.byte_fallback", "byte fallback is not supported (byte-level BPE has every byte)");

    // the largest id
    int max_id = -1;
    const char *k;
    json_t *v;
    json_object_foreach(vocab, k, v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= (1 << 26))
            bad(r, "model.vocab", "token '%.40s' has id %s, not one from 0 to 2^26", k,
                json_is_integer(v) ? "out of range" : type_name(v));
        if (json_integer_value(v) > max_id)
            max_id = (int)json_integer_value(v);
    }
    for (size_t i = 0; i < json_array_size(added); i++) {
        json_t *id = json_object_get(json_array_get(added, i), "id");
        if (!json_is_integer(id) || json_integer_value(id) < 0 || json_integer_value(id) >= (1 << 26)) {
            char key[64];
            snprintf(key, sizeof key, "added_tokens[%zu].id", i);
            bad(r, key, "must be an id from 0 to 2^26");
        }
        if (json_integer_value(id) > max_id)
            max_id = (int)json_integer_value(id);
    }
    h->n_ids = max_id + 1;
    *by_id = xcalloc((size_t)h->n_ids + 1, sizeof **by_id);
    h->type = xmalloc((size_t)h->n_ids + 1);
    memset(h->type, 5, (size_t)h->n_ids + 1); // unused until a token has the id

    h->model = rank_bpe_new();
    uint8_t *raw = NULL;
    size_t cap = 0;
    json_object_foreach(vocab, k, v) {
        int id = (int)json_integer_value(v);
        size_t len = strlen(k);
        (*by_id)[id] = (str){k, len};
        h->type[id] = 1;
        if (len > cap) {
            cap = len * 2;
            raw = xrealloc(raw, cap);
        }
        size_t nb;
        if (len && byte_level_decode(k, len, raw, &nb)) // other tokens cannot come out of byte-level text
            rank_bpe_add_token(h->model, id, raw, nb);
    }

    // merges: "a b", or ["a", "b"]; kept as "a b", back to back
    h->merge_off = xmalloc((json_array_size(merges) + 1) * sizeof *h->merge_off);
    bytes merge_text = {0};
    uint8_t *lb = NULL, *rb = NULL;
    size_t lcap = 0, rcap = 0;
    for (size_t i = 0; i < json_array_size(merges); i++) {
        json_t *m = json_array_get(merges, i);
        char key[64]; // named only for a message
#define MERGE_KEY (snprintf(key, sizeof key, "model.merges[%zu]", i), key)
        const char *l, *rt;
        size_t ln, rn;
        if (json_is_string(m)) {
            const char *t = json_string_value(m), *sp = memchr(t, ' ', json_string_length(m));
            if (!sp || memchr(sp + 1, ' ', json_string_length(m) - (size_t)(sp + 1 - t)))
                bad(r, MERGE_KEY, "must be two tokens with one space between them");
            l = t;
            ln = (size_t)(sp - t);
            rt = sp + 1;
            rn = json_string_length(m) - ln - 1;
        } else if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) &&
                   json_is_string(json_array_get(m, 1))) {
            l = json_string_value(json_array_get(m, 0));
            ln = json_string_length(json_array_get(m, 0));
            rt = json_string_value(json_array_get(m, 1));
            rn = json_string_length(json_array_get(m, 1));
        } else {
            bad(r, MERGE_KEY, "must be a string \"a b\" or an array [\"a\", \"b\"]");
        }
        if (ln + 1 > lcap)
            lb = xrealloc(lb, lcap = ln * 2 + 1);
        if (rn + 1 > rcap)
            rb = xrealloc(rb, rcap = rn * 2 + 1);
        size_t lbn, rbn;
        bool lok = byte_level_decode(l, ln, lb, &lbn), rok = byte_level_decode(rt, rn, rb, &rbn);
        int res = !lok || !lbn ? RANK_BPE_NO_LEFT
                  : !rok || !rbn ? RANK_BPE_NO_RIGHT
                                 : rank_bpe_add_merge(h->model, lb, lbn, rb, rbn);
        if (res == RANK_BPE_NO_LEFT)
            bad(r, MERGE_KEY, "'%.*s' is not a byte-level token of model.vocab", (int)(ln > 60 ? 60 : ln), l);
        if (res == RANK_BPE_NO_RIGHT)
            bad(r, MERGE_KEY, "'%.*s' is not a byte-level token of model.vocab", (int)(rn > 60 ? 60 : rn), rt);
        if (res == RANK_BPE_NO_RESULT)
            bad(r, MERGE_KEY, "'%.*s%.*s' (the merged token) is not in model.vocab", (int)(ln > 60 ? 60 : ln), l,
                (int)(rn > 60 ? 60 : rn), rt);
        h->merge_off[h->n_merges++] = merge_text.n;
        bytes_put(&merge_text, l, ln);
        bytes_put(&merge_text, " ", 1);
        bytes_put(&merge_text, rt, rn);
#undef MERGE_KEY
    }
    h->merge_off[h->n_merges] = merge_text.n;
    h->merge_text = (char *)merge_text.p;
    free(lb);
    free(rb);
    free(raw);
    rank_bpe_set_ignore_merges(h->model, get_bool(r, model, "model.ignore_merges", "ignore_merges", false));
    h->unk = -1;
    if ((s = get_string(r, model, "model.unk_token", "unk_token", &n))) {
        json_t *id = json_object_get(vocab, s);
        if (!json_is_integer(id))
            bad(r, "model.unk_token", "'%s' is not in model.vocab", s);
        h->unk = (int)json_integer_value(id);
        rank_bpe_set_unknown(h->model, h->unk, get_bool(r, model, "model.fuse_unk", "fuse_unk", false));
    }
}

/* The added tokens: their ids and strings, and the two sets they are matched with
 * (their contents, normalized for the second set, copied into h->added_text). */
static void read_added(hf_tokenizer *h, const reader *r, json_t *added, str *by_id, const json_t *vocab)
{
    size_t n = json_array_size(added);
    added_token *tok = xmalloc((n + 1) * sizeof *tok);
    bool *is_norm = xmalloc(n + 1);
    size_t *off = xmalloc((n + 1) * sizeof *off);
    bytes text = {0};
    for (size_t i = 0; i < n; i++) {
        json_t *a = json_array_get(added, i);
        char key[64];
        snprintf(key, sizeof key, "added_tokens[%zu]", i);
        if (!json_is_object(a))
            bad(r, key, "must be an object");
        size_t len;
        const char *content = get_string(r, a, key, "content", &len);
        if (!content)
            bad(r, key, "has no content");
        int id = (int)json_integer_value(json_object_get(a, "id"));
        json_t *in_vocab = json_object_get(vocab, content);
        if (in_vocab && json_integer_value(in_vocab) != id)
            bad(r, key, "'%s' is token %d of model.vocab, not %d", content, (int)json_integer_value(in_vocab), id);
        bool special = get_bool(r, a, key, "special", false);
        bool normalized = get_bool(r, a, key, "normalized", !special);
        by_id[id] = (str){content, len};
        // llama.cpp's convert_hf_to_gguf.py: special, or written like one, is control
        h->type[id] = special || (len >= 4 && !memcmp(content, "<|", 2) && !memcmp(content + len - 2, "|>", 2)) ? 3 : 4;
        if (special)
            h->type[id] |= 0x80; // decodes to nothing
        tok[i] = (added_token){NULL, len, id, get_bool(r, a, key, "single_word", false),
                               get_bool(r, a, key, "lstrip", false), get_bool(r, a, key, "rstrip", false)};
        is_norm[i] = normalized && h->n_forms;
        off[i] = text.n;
        if (!is_norm[i] || utf8_invalid_at(content, len) >= 0) {
            bytes_put(&text, content, len);
            continue;
        }
        // its content normalized, as the library builds its second matcher
        char *c = xmalloc(len + 1);
        memcpy(c, content, len);
        size_t cn = len;
        for (int f = 0; f < h->n_forms; f++) {
            char *next = unicode_normalize(h->form[f], c, cn, &cn);
            free(c);
            c = next;
        }
        tok[i].len = cn;
        bytes_put(&text, c, cn);
        free(c);
    }
    // the contents now have their final addresses
    h->added_text = (char *)text.p;
    added_token *plain = xmalloc((n + 1) * sizeof *plain), *norm = xmalloc((n + 1) * sizeof *norm);
    int n_plain = 0, n_norm = 0;
    for (size_t i = 0; i < n; i++) {
        tok[i].content = h->added_text + off[i];
        if (is_norm[i])
            norm[n_norm++] = tok[i];
        else
            plain[n_plain++] = tok[i];
    }
    h->plain_added = added_set_new(plain, n_plain);
    h->norm_added = added_set_new(norm, n_norm);
    free(plain);
    free(norm);
    free(tok);
    free(is_norm);
    free(off);
}

/* Every token's string and decoded bytes, back to back. */
static void lay_out_pieces(hf_tokenizer *h, const str *by_id)
{
    size_t total = 0;
    for (int i = 0; i < h->n_ids; i++)
        total += by_id[i].n;
    h->raw = xmalloc(total + 1);
    h->dec = xmalloc(total + 1);
    h->raw_off = xmalloc(((size_t)h->n_ids + 1) * sizeof *h->raw_off);
    h->dec_off = xmalloc(((size_t)h->n_ids + 1) * sizeof *h->dec_off);
    size_t r = 0, d = 0;
    for (int i = 0; i < h->n_ids; i++) {
        h->raw_off[i] = r;
        h->dec_off[i] = d;
        if (by_id[i].n) // an id no token has: nothing
            memcpy(h->raw + r, by_id[i].s, by_id[i].n);
        size_t nb;
        if (h->type[i] & 0x80)
            nb = 0; // special: skipped in decoding
        else if (!byte_level_decode(by_id[i].s, by_id[i].n, (uint8_t *)h->dec + d, &nb)) {
            memcpy(h->dec + d, by_id[i].s, by_id[i].n); // the ByteLevel decoder keeps such a token as it is
            nb = by_id[i].n;
        }
        r += by_id[i].n;
        d += nb;
    }
    h->raw_off[h->n_ids] = r;
    h->dec_off[h->n_ids] = d;
    h->raw[r] = h->dec[d] = 0;
}

/* The id of bos_token or eos_token of tokenizer_config.json, -1 when none is named. */
static int config_token(const hf_tokenizer *h, const reader *r, const json_t *config, const char *key)
{
    json_t *v = json_object_get(config, key);
    if (json_is_object(v))
        v = json_object_get(v, "content");
    if (!v || json_is_null(v))
        return -1;
    if (!json_is_string(v))
        bad(r, key, "must be a string, {\"content\": ...} or null, not %s", type_name(v));
    int id = hf_piece_id(h, json_string_value(v), json_string_length(v));
    if (id < 0)
        bad(r, key, "'%s' is not a token of the tokenizer", json_string_value(v));
    return id;
}

hf_tokenizer *hf_tokenizer_load(const uint8_t *data, size_t n, const uint8_t *config, size_t config_n,
                                const char *source)
{
    reader r = {source};
    json_error_t err;
    json_t *j = json_loadb((const char *)data, n, JSON_ALLOW_NUL, &err);
    if (!j)
        die("%s:%d: %s", source, err.line, err.text);
    if (!json_is_object(j))
        bad(&r, "(top)", "must be an object, not %s", type_name(j));
    hf_tokenizer *h = xcalloc(1, sizeof *h);
    json_t *v;
    if ((v = json_object_get(j, "truncation")) && !json_is_null(v))
        bad(&r, "truncation", "truncation is not supported (it must be null)");
    if ((v = json_object_get(j, "padding")) && !json_is_null(v))
        bad(&r, "padding", "padding is not supported (it must be null)");
    json_t *added = json_object_get(j, "added_tokens");
    if (added && !json_is_array(added))
        bad(&r, "added_tokens", "must be an array, not %s", type_name(added));
    json_t *model = json_object_get(j, "model");
    if (!json_is_object(model))
        bad(&r, "model", model ? "must be an object" : "missing");
    read_normalizer(h, &r, json_object_get(j, "normalizer"), "normalizer", NULL);
    bool byte_level_read = false;
    read_pre_tokenizer(h, &r, json_object_get(j, "pre_tokenizer"), "pre_tokenizer", &byte_level_read);
    if (!byte_level_read)
        bad(&r, "pre_tokenizer", "no ByteLevel pre-tokenizer: only byte-level BPE is supported");
    read_decoder(&r, json_object_get(j, "decoder"), "decoder");
    str *by_id;
    read_model(h, &r, model, &by_id, added);
    read_added(h, &r, added, by_id, json_object_get(model, "vocab"));
    lay_out_pieces(h, by_id);
    free(by_id);
    read_post_processor(h, &r, json_object_get(j, "post_processor"), "post_processor", NULL);
    h->bos = h->n_prefix ? h->prefix[0] : -1;
    h->eos = -1;
    if (config) {
        // the config's messages name it: beside tokenizer.json, or as a part of the bytes named source
        size_t sn = strlen(source), tn = strlen("tokenizer.json");
        char *name = sn >= tn && !strcmp(source + sn - tn, "tokenizer.json")
                         ? xasprintf("%.*stokenizer_config.json", (int)(sn - tn), source)
                         : xasprintf("%s (its tokenizer_config.json)", source);
        reader rc = {name};
        json_t *c = json_loadb((const char *)config, config_n, JSON_DECODE_INT_AS_REAL, &err); // model_max_length is 1e30
        if (!c)
            die("%s:%d: %s", name, err.line, err.text);
        if (!json_is_object(c))
            bad(&rc, "(top)", "must be an object");
        h->eos = config_token(h, &rc, c, "eos_token");
        config_token(h, &rc, c, "bos_token"); // checked, though the post-processor decides
        json_decref(c);
        free(name);
    }
    json_decref(j);
    return h;
}

void hf_tokenizer_free(hf_tokenizer *h)
{
    if (!h)
        return;
    free(h->raw);
    free(h->raw_off);
    free(h->dec);
    free(h->dec_off);
    free(h->type);
    rank_bpe_free(h->model);
    added_set_free(h->plain_added);
    added_set_free(h->norm_added);
    for (int i = 0; i < h->n_steps; i++)
        split_free(h->step[i].sp);
    free(h->prefix);
    free(h->suffix);
    free(h->merge_text);
    free(h->merge_off);
    free(h->added_text);
    free(h);
}

int hf_vocab_size(const hf_tokenizer *h) { return h->n_ids; }
int hf_bos(const hf_tokenizer *h) { return h->bos; }
int hf_eos(const hf_tokenizer *h) { return h->eos; }
int hf_unk(const hf_tokenizer *h) { return h->unk; }

int hf_prefix(const hf_tokenizer *h, const int **ids)
{
    *ids = h->prefix;
    return h->n_prefix;
}

int hf_suffix(const hf_tokenizer *h, const int **ids)
{
    *ids = h->suffix;
    return h->n_suffix;
}

static void check_id(const hf_tokenizer *h, int id)
{
    if (id < 0 || id >= h->n_ids)
        die("token id %d is outside the vocabulary (0..%d)", id, h->n_ids - 1);
}

const char *hf_piece(const hf_tokenizer *h, int id, size_t *len)
{
    check_id(h, id);
    *len = h->dec_off[id + 1] - h->dec_off[id];
    return h->dec + h->dec_off[id];
}

const char *hf_piece_raw(const hf_tokenizer *h, int id, size_t *len)
{
    check_id(h, id);
    *len = h->raw_off[id + 1] - h->raw_off[id];
    return h->raw + h->raw_off[id];
}

int hf_piece_type(const hf_tokenizer *h, int id)
{
    check_id(h, id);
    return h->type[id] & 0x7F;
}

int hf_piece_id(const hf_tokenizer *h, const char *s, size_t len)
{
    // added tokens first (the library's token_to_id), then the vocabulary
    for (int i = h->n_ids - 1; i >= 0; i--)
        if ((h->type[i] & 0x7F) >= 3 && (h->type[i] & 0x7F) <= 4 && h->raw_off[i + 1] - h->raw_off[i] == len &&
            !memcmp(h->raw + h->raw_off[i], s, len))
            return i;
    uint8_t *b = xmalloc(len + 1);
    size_t nb;
    int id = -1;
    if (len && byte_level_decode(s, len, b, &nb))
        id = rank_bpe_token_id(h->model, b, nb);
    free(b);
    if (id >= 0) {
        size_t n;
        const char *raw = hf_piece_raw(h, id, &n);
        if (n != len || memcmp(raw, s, len))
            id = -1;
    }
    return id;
}

int hf_merge_count(const hf_tokenizer *h) { return h->n_merges; }

const char *hf_merge(const hf_tokenizer *h, int i, size_t *len)
{
    *len = h->merge_off[i + 1] - h->merge_off[i];
    return h->merge_text + h->merge_off[i];
}

const char *hf_pre_name(const hf_tokenizer *h) { return h->pre_name; }

const char *hf_pre_regex(const char *name, bool *nfc, bool *ignore_merges)
{
    for (size_t k = 0; k < sizeof llama_cpp_pre / sizeof *llama_cpp_pre; k++)
        if (!strcmp(name, llama_cpp_pre[k].name)) {
            *nfc = llama_cpp_pre[k].nfc;
            *ignore_merges = llama_cpp_pre[k].ignore_merges;
            return llama_cpp_pre[k].regex;
        }
    return NULL;
}

/* ---- encoding ---- */

typedef struct {
    int *ids;
    size_t n, cap;
    rank_bpe_pass *pass;
    span *a, *b; // pre-token pieces: current and next
    size_t na, nb, cap_a, cap_b;
    added_piece *pieces;
    size_t n_pieces, cap_pieces;
} encoder;

static void push_id(encoder *e, int id)
{
    GROW(e->ids, e->cap, e->n + 1, 256);
    e->ids[e->n++] = id;
}

static void die_split(int rc, const char *err)
{
    die("the pre-tokenizer's regex failed on this text (PCRE2 error %d: %s)", rc, err);
}

/* Pre-tokenize s[0..n) (normalized, no added tokens in it) and encode each pre-token. */
static void encode_text(const hf_tokenizer *h, encoder *e, const char *s, size_t n)
{
    if (n == 0)
        return;
    char err[256];
    char *owned = NULL; // the text with prefix spaces, when ByteLevel adds them
    e->na = 0;
    e->a = e->cap_a ? e->a : xmalloc((e->cap_a = 64) * sizeof *e->a);
    e->a[e->na++] = (span){0, n};
    for (int st = 0; st < h->n_steps; st++) {
        const pre_step *step = &h->step[st];
        if (step->prefix_space) {
            bytes t = {0};
            for (size_t i = 0; i < e->na; i++) {
                size_t start = t.n;
                if (s[e->a[i].start] != ' ')
                    bytes_put(&t, " ", 1);
                bytes_put(&t, s + e->a[i].start, e->a[i].end - e->a[i].start);
                e->a[i] = (span){start, t.n};
            }
            free(owned);
            owned = (char *)t.p;
            s = owned;
        }
        if (!step->sp)
            continue;
        e->nb = 0;
        for (size_t i = 0; i < e->na; i++) {
            int rc = split_run(step->sp, s + e->a[i].start, e->a[i].end - e->a[i].start, e->a[i].start, &e->b,
                               &e->nb, &e->cap_b, err, sizeof err);
            if (rc)
                die_split(rc, err);
        }
        span *t = e->a;
        e->a = e->b;
        e->b = t;
        size_t tc = e->cap_a;
        e->cap_a = e->cap_b;
        e->cap_b = tc;
        e->na = e->nb;
    }
    for (size_t i = 0; i < e->na; i++)
        rank_bpe_encode_word(h->model, e->pass, (const uint8_t *)s + e->a[i].start, e->a[i].end - e->a[i].start,
                        &e->ids, &e->n, &e->cap);
    free(owned);
}

/* A piece between the plain added tokens: normalized, then cut at the normalized ones. */
static void encode_piece(const hf_tokenizer *h, encoder *e, const char *s, size_t n)
{
    char *norm = NULL;
    if (h->n_forms) {
        norm = xmalloc(n + 1);
        memcpy(norm, s, n);
        for (int f = 0; f < h->n_forms; f++) {
            char *next = unicode_normalize(h->form[f], norm, n, &n);
            free(norm);
            norm = next;
        }
        s = norm;
    }
    if (!added_set_count(h->norm_added)) {
        encode_text(h, e, s, n);
    } else {
        size_t first = e->n_pieces;
        added_set_find(h->norm_added, s, n, 0, &e->pieces, &e->n_pieces, &e->cap_pieces);
        size_t last = e->n_pieces;
        for (size_t i = first; i < last; i++) {
            added_piece p = e->pieces[i];
            if (p.id >= 0)
                push_id(e, p.id);
            else
                encode_text(h, e, s + p.start, p.end - p.start);
        }
        e->n_pieces = first;
    }
    free(norm);
}

size_t hf_encode(const hf_tokenizer *h, const char *text, size_t len, bool special, int **ids)
{
    encoder e = {0};
    e.pass = rank_bpe_pass_new();
    // well-formed UTF-8: each maximal ill-formed subpart one U+FFFD
    char *fixed = NULL;
    if (utf8_invalid_at(text, len) >= 0) {
        fixed = xmalloc(3 * len + 1);
        size_t o = 0;
        bool ok;
        for (size_t i = 0; i < len;) {
            size_t k = utf8_subpart_len(text + i, len - i, &ok);
            if (ok)
                memcpy(fixed + o, text + i, k), o += k;
            else
                memcpy(fixed + o, "\xEF\xBF\xBD", 3), o += 3;
            i += k;
        }
        text = fixed;
        len = o;
    }
    if (special)
        for (int i = 0; i < h->n_prefix; i++)
            push_id(&e, h->prefix[i]);
    if (!added_set_count(h->plain_added)) {
        encode_piece(h, &e, text, len);
    } else {
        added_piece *pieces = NULL;
        size_t np = 0, cp = 0;
        added_set_find(h->plain_added, text, len, 0, &pieces, &np, &cp);
        for (size_t i = 0; i < np; i++) {
            if (pieces[i].id >= 0)
                push_id(&e, pieces[i].id);
            else
                encode_piece(h, &e, text + pieces[i].start, pieces[i].end - pieces[i].start);
        }
        free(pieces);
    }
    if (special)
        for (int i = 0; i < h->n_suffix; i++)
            push_id(&e, h->suffix[i]);
    rank_bpe_pass_free(e.pass);
    free(e.a);
    free(e.b);
    free(e.pieces);
    free(fixed);
    *ids = e.ids ? e.ids : xmalloc(sizeof **ids);
    return e.n;
}
