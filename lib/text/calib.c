/* calib.c - calibration text, its token stream, and the seeded windows. */
#include "text/calib.h"

#include <ctype.h>
#include <string.h>

#include <xxhash.h>

#include "base/rng.h"
#include "base/textio.h"
#include "base/util.h"

static const char *const format_names[] = {"auto", "text", "jsonl", "json"};

const char *calib_format_name(enum calib_format f) { return format_names[f]; }

int calib_format_from_name(const char *s)
{
    return name_lookup(s, format_names, (int)(sizeof format_names / sizeof format_names[0]));
}

/* ------------------------------------------------------------------ text */

typedef struct {
    char *buf;
    size_t len, cap;
} strbuf;

static void sb_add(strbuf *b, const char *s, size_t n)
{
    GROW(b->buf, b->cap, b->len + n + 1, 1 << 16);
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = 0;
}

static const char *json_str(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Append record o's text (after a "\n\n" separator unless first); false if o has none. */
static bool add_record(strbuf *b, const json_t *o)
{
    if (!json_is_object(o))
        return false;
    const char *text = json_str(o, "text");
    const char *parts[3] = {json_str(o, "instruction"), json_str(o, "input"), json_str(o, "output")};
    if (!text && !parts[0] && !parts[2])
        return false;
    if (b->len)
        sb_add(b, "\n\n", 2);
    if (text) {
        sb_add(b, text, strlen(text));
        return true;
    }
    bool first = true;
    for (int i = 0; i < 3; i++) {
        if (!parts[i] || !*parts[i])
            continue;
        if (!first)
            sb_add(b, "\n", 1);
        sb_add(b, parts[i], strlen(parts[i]));
        first = false;
    }
    return true;
}

static const char *skip_space(const char *p)
{
    while (*p && isspace((unsigned char)*p))
        p++;
    return p;
}

/* The first line of p as a JSON object, or NULL. */
static json_t *parse_line(const char *p, size_t n)
{
    json_error_t err;
    json_t *j = json_loadb(p, n, 0, &err);
    if (j && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    return j;
}

char *calib_read_text(const char *path, enum calib_format *format, size_t *len)
{
    size_t n;
    char *raw = read_text_file(path, &n);
    const char *p = skip_space(raw);
    if (!strncmp(p, "\xEF\xBB\xBF", 3))
        p = skip_space(p + 3);
    enum calib_format f = *format;
    json_t *array = NULL;
    if (f == CALIB_AUTO || f == CALIB_JSON) {
        json_error_t err;
        array = *p == '[' ? json_loadb(p, n - (size_t)(p - raw), 0, &err) : NULL;
        if (array && !json_is_array(array)) {
            json_decref(array);
            array = NULL;
        }
        if (!array && f == CALIB_JSON)
            die("%s: not a JSON array of records%s%s", path, *p == '[' ? ": " : "", *p == '[' ? err.text : "");
        if (array)
            f = CALIB_JSON;
    }
    if (f == CALIB_AUTO && *p == '{') {
        const char *nl = strchr(p, '\n');
        json_t *first = parse_line(p, nl ? (size_t)(nl - p) : strlen(p));
        if (first)
            f = CALIB_JSONL;
        json_decref(first);
    }
    if (f == CALIB_AUTO)
        f = CALIB_TEXT;
    *format = f;
    if (f == CALIB_TEXT) {
        *len = n;
        return raw;
    }

    strbuf b = {0};
    if (f == CALIB_JSON) {
        size_t i;
        json_t *o;
        json_array_foreach(array, i, o) if (!add_record(&b, o))
            die("%s: record %zu has no \"text\" (nor \"instruction\"/\"output\") string", path, i + 1);
        json_decref(array);
    } else {
        int line = 0;
        for (const char *q = raw; *q;) {
            const char *nl = strchr(q, '\n');
            size_t ll = nl ? (size_t)(nl - q) : strlen(q);
            line++;
            const char *s = skip_space(q);
            if (s < q + ll) {
                json_error_t err;
                json_t *o = json_loadb(q, ll, 0, &err);
                if (!o)
                    die("%s: line %d: not JSON: %s", path, line, err.text);
                if (!add_record(&b, o))
                    die("%s: line %d: no \"text\" (nor \"instruction\"/\"output\") string", path, line);
                json_decref(o);
            }
            q += ll + (nl != NULL);
        }
    }
    free(raw);
    if (!b.buf)
        b.buf = xcalloc(1, 1);
    *len = b.len;
    return b.buf;
}

/* ------------------------------------------------------------------ windows */

void calib_windows(int64_t n_tokens, int samples, int seq_len, uint64_t seed, const char *source, int64_t *starts)
{
    if (n_tokens < (int64_t)samples + seq_len - 1)
        die("%s: %lld tokens are too few for %d distinct windows of %d tokens (at least %lld needed)", source,
            (long long)n_tokens, samples, seq_len, (long long)samples + seq_len - 1);
    uint64_t range = (uint64_t)(n_tokens - seq_len + 1);
    uint64_t state = seed;
    for (int s = 0; s < samples; s++) {
        for (;;) {
            int64_t start = (int64_t)rng_below(&state, range);
            bool seen = false;
            for (int k = 0; k < s && !seen; k++)
                seen = starts[k] == start;
            if (!seen) {
                starts[s] = start;
                break;
            }
        }
    }
}

void calib_from_ids(calib *c, const char *source, const int *ids, int64_t n, int samples, int seq_len,
                    uint64_t seed)
{
    memset(c, 0, sizeof *c);
    c->source = xstrdup(source);
    c->format = CALIB_TEXT;
    c->n_tokens = n;
    c->samples = samples;
    c->seq_len = seq_len;
    c->seed = seed;
    c->starts = xmalloc((size_t)samples * sizeof *c->starts);
    calib_windows(n, samples, seq_len, seed, source, c->starts);
    c->ids = xmalloc((size_t)samples * (size_t)seq_len * sizeof *c->ids);
    for (int s = 0; s < samples; s++)
        memcpy(c->ids + (size_t)s * seq_len, ids + c->starts[s], (size_t)seq_len * sizeof *ids);
    /* the digest of the ids as int32 LE (the hosts pare runs on are little-endian) */
    uint64_t h = XXH64(c->ids, (size_t)samples * (size_t)seq_len * sizeof(int32_t), 0);
    snprintf(c->xxh64, sizeof c->xxh64, "%016llx", (unsigned long long)h);
}

void calib_load(calib *c, const char *path, enum calib_format format, const tokenizer *tok, int samples,
                int seq_len, uint64_t seed)
{
    size_t len;
    char *text = calib_read_text(path, &format, &len);
    int *ids;
    size_t n = tokenizer_encode(tok, text, len, true, &ids);
    free(text);
    calib_from_ids(c, path, ids, (int64_t)n, samples, seq_len, seed);
    c->format = format;
    free(ids);
}

void calib_free(calib *c)
{
    free(c->source);
    free(c->starts);
    free(c->ids);
    memset(c, 0, sizeof *c);
}

json_t *calib_to_json(const calib *c)
{
    json_t *starts = json_array();
    for (int s = 0; s < c->samples; s++)
        json_array_append_new(starts, json_integer((json_int_t)c->starts[s]));
    return json_pack("{s:s,s:s,s:i,s:i,s:I,s:I,s:o,s:s}", "source", c->source, "format",
                     calib_format_name(c->format), "samples", c->samples, "seq_len", c->seq_len, "seed",
                     (json_int_t)c->seed, "tokens", (json_int_t)c->n_tokens, "starts", starts, "xxh64", c->xxh64);
}

int calib_batch(const calib *c, int first, int step, int **tokens, int **targets)
{
    int n = 0, T = c->seq_len;
    for (int s = first; s < c->samples; s += step)
        n++;
    *tokens = xmalloc((size_t)(n > 0 ? n : 1) * (size_t)T * sizeof(int));
    *targets = xmalloc((size_t)(n > 0 ? n : 1) * (size_t)T * sizeof(int));
    int b = 0;
    for (int s = first; s < c->samples; s += step, b++) {
        const int *src = c->ids + (size_t)s * T;
        int *tk = *tokens + (size_t)b * T, *tg = *targets + (size_t)b * T;
        memcpy(tk, src, (size_t)T * sizeof(int));
        for (int t = 0; t < T; t++)
            tg[t] = t + 1 < T ? src[t + 1] : -1;
    }
    return n;
}
