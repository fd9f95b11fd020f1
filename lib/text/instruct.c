/* instruct.c - Alpaca records and raw text as tokenized training samples, and the
 * seeded train/validation split. */
#include "text/instruct.h"

#include <ctype.h>
#include <string.h>

#include <xxhash.h>

#include "base/rng.h"
#include "base/textio.h"
#include "base/util.h"
#include "text/calib.h"

const char instruct_prompt_input[] =
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n";
const char instruct_prompt_no_input[] =
    "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Response:\n";

/* ------------------------------------------------------------------ growing arrays */

typedef struct {
    int64_t *off;
    int *ids, *targets;
    int64_t n_ids, cap_ids;
    int n, cap;
} samples;

static void add_sample(samples *s, const int *ids, const int *targets, int len)
{
    GROW(s->off, s->cap, s->n + 2, 1024);
    if (s->n_ids + len > s->cap_ids) {
        while (s->n_ids + len > s->cap_ids)
            s->cap_ids = s->cap_ids ? 2 * s->cap_ids : 1 << 10;
        s->ids = xrealloc(s->ids, (size_t)s->cap_ids * sizeof *s->ids);
        s->targets = xrealloc(s->targets, (size_t)s->cap_ids * sizeof *s->targets);
    }
    if (s->n == 0)
        s->off[0] = 0;
    memcpy(s->ids + s->n_ids, ids, (size_t)len * sizeof *ids);
    memcpy(s->targets + s->n_ids, targets, (size_t)len * sizeof *targets);
    s->n_ids += len;
    s->off[++s->n] = s->n_ids;
}

static void finish(instruct_data *d, samples *s)
{
    d->n = s->n;
    d->off = s->off ? s->off : xcalloc(1, sizeof *d->off);
    d->ids = s->ids ? s->ids : xcalloc(1, sizeof *d->ids);
    d->targets = s->targets ? s->targets : xcalloc(1, sizeof *d->targets);
    d->tokens = s->n_ids;
    d->scored = 0;
    for (int64_t i = 0; i < s->n_ids; i++)
        d->scored += d->targets[i] >= 0;
    XXH64_state_t *h = XXH64_createState();
    XXH64_reset(h, 0);
    XXH64_update(h, d->off, (size_t)(d->n + 1) * sizeof *d->off);
    XXH64_update(h, d->ids, (size_t)d->tokens * sizeof *d->ids);
    XXH64_update(h, d->targets, (size_t)d->tokens * sizeof *d->targets);
    snprintf(d->xxh64, sizeof d->xxh64, "%016llx", (unsigned long long)XXH64_digest(h));
    XXH64_freeState(h);
}

/* ------------------------------------------------------------------ Alpaca */

static void sb_add(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
    GROW(*buf, *cap, *len + n + 1, 256);
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = 0;
}

/* The template with {instruction} and {input} put in (literally, as Python's
 * str.format does with its arguments). */
char *instruct_render(const char *instruction, const char *input, const char *output)
{
    bool with_input = input && *input;
    const char *tpl = with_input ? instruct_prompt_input : instruct_prompt_no_input;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (const char *p = tpl; *p;) {
        const char *brace = strchr(p, '{');
        if (!brace) {
            sb_add(&buf, &len, &cap, p, strlen(p));
            break;
        }
        sb_add(&buf, &len, &cap, p, (size_t)(brace - p));
        if (!strncmp(brace, "{instruction}", 13)) {
            sb_add(&buf, &len, &cap, instruction, strlen(instruction));
            p = brace + 13;
        } else if (!strncmp(brace, "{input}", 7)) {
            sb_add(&buf, &len, &cap, input, strlen(input));
            p = brace + 7;
        } else {
            sb_add(&buf, &len, &cap, "{", 1);
            p = brace + 1;
        }
    }
    if (output)
        sb_add(&buf, &len, &cap, output, strlen(output));
    return buf;
}

/* One record: fields checked, rendered, tokenized, labelled; false if skipped. */
static bool add_record(samples *s, instruct_data *d, const json_t *o, const char *where, const tokenizer *tok,
                       int cutoff, bool train_on_inputs)
{
    if (!json_is_object(o))
        die("%s: not a JSON object", where);
    const json_t *ji = json_object_get(o, "instruction"), *jn = json_object_get(o, "input"),
                 *jo = json_object_get(o, "output");
    if (!json_is_string(ji) || !json_is_string(jo))
        die("%s: no \"instruction\" and \"output\" strings (Alpaca records)", where);
    if (jn && !json_is_string(jn) && !json_is_null(jn))
        die("%s: \"input\" is not a string", where);
    const char *instruction = json_string_value(ji), *input = json_is_string(jn) ? json_string_value(jn) : "";
    char *full = instruct_render(instruction, input, json_string_value(jo));
    char *user = instruct_render(instruction, input, NULL);
    int *ids, *uids;
    size_t n = tokenizer_encode(tok, full, strlen(full), true, &ids);
    size_t nu = tokenizer_encode(tok, user, strlen(user), true, &uids);
    free(full), free(user), free(uids);
    /* truncation=True, max_length=cutoff; EOS when not cut (and there is room) */
    int eos = tokenizer_eos(tok), len = (int)(n < (size_t)cutoff ? n : (size_t)cutoff);
    bool cut = n > (size_t)cutoff;
    if (eos >= 0 && len > 0 && ids[len - 1] != eos && len < cutoff) {
        ids = xrealloc(ids, (size_t)(len + 1) * sizeof *ids);
        ids[len++] = eos;
    }
    d->truncated += cut;
    int masked = train_on_inputs ? 0 : (int)(nu < (size_t)cutoff ? nu : (size_t)cutoff);
    /* labels: -100 for the masked prompt, else the token; target t = label t+1 */
    int *targets = xmalloc((size_t)(len > 0 ? len : 1) * sizeof *targets);
    bool any = false;
    for (int t = 0; t < len; t++) {
        targets[t] = t + 1 < len && t + 1 >= masked ? ids[t + 1] : -1;
        any |= targets[t] >= 0;
    }
    if (any)
        add_sample(s, ids, targets, len);
    else
        d->skipped++;
    free(ids);
    free(targets);
    return any;
}

static const char *skip_space(const char *p)
{
    while (*p && isspace((unsigned char)*p))
        p++;
    return p;
}

bool instruct_load_alpaca(instruct_data *d, const char *path, const tokenizer *tok, int cutoff, bool train_on_inputs)
{
    if (cutoff < 2)
        die("cutoff %d: a sample needs at least 2 tokens", cutoff);
    memset(d, 0, sizeof *d);
    d->source = xstrdup(path);
    d->cutoff = cutoff;
    size_t n;
    char *raw = read_text_file(path, &n);
    const char *p = skip_space(raw);
    if (!strncmp(p, "\xEF\xBB\xBF", 3))
        p = skip_space(p + 3);
    samples s = {0};
    char where[4200];
    if (*p == '[') {
        json_error_t err;
        json_t *array = json_loadb(p, n - (size_t)(p - raw), 0, &err);
        if (!json_is_array(array))
            die("%s: not a JSON array of records: %s (line %d)", path, array ? "not an array" : err.text, err.line);
        size_t i;
        json_t *o;
        json_array_foreach(array, i, o)
        {
            snprintf(where, sizeof where, "%s: record %zu", path, i + 1);
            add_record(&s, d, o, where, tok, cutoff, train_on_inputs);
            d->records++;
        }
        json_decref(array);
    } else if (*p == '{') {
        int line = 0;
        for (const char *q = raw; *q;) {
            const char *nl = strchr(q, '\n');
            size_t ll = nl ? (size_t)(nl - q) : strlen(q);
            line++;
            if (skip_space(q) < q + ll) {
                json_error_t err;
                json_t *o = json_loadb(q, ll, 0, &err);
                snprintf(where, sizeof where, "%s: line %d", path, line);
                if (!o)
                    die("%s: not JSON: %s", where, err.text);
                add_record(&s, d, o, where, tok, cutoff, train_on_inputs);
                d->records++;
                json_decref(o);
            }
            q += ll + (nl != NULL);
        }
    } else {
        free(raw);
        instruct_free(d);
        return false;
    }
    free(raw);
    finish(d, &s);
    if (d->n == 0)
        die("%s: no record with a token to learn (%d records, %d whose prompt fills the cutoff of %d tokens)", path,
            d->records, d->skipped, cutoff);
    return true;
}

/* ------------------------------------------------------------------ raw text */

void instruct_load_text(instruct_data *d, const char *path, const tokenizer *tok, int cutoff)
{
    if (cutoff < 2)
        die("cutoff %d: a sample needs at least 2 tokens", cutoff);
    memset(d, 0, sizeof *d);
    d->source = xstrdup(path);
    d->text = true;
    d->cutoff = cutoff;
    enum calib_format f = CALIB_AUTO;
    size_t len;
    char *text = calib_read_text(path, &f, &len);
    int *ids;
    size_t n = tokenizer_encode(tok, text, len, true, &ids);
    free(text);
    d->text_tokens = (int64_t)n;
    if (n < (size_t)cutoff)
        die("%s: %zu tokens, fewer than one window of %d (the cutoff)", path, n, cutoff);
    samples s = {0};
    int *targets = xmalloc((size_t)cutoff * sizeof *targets);
    for (size_t w = 0; (w + 1) * (size_t)cutoff <= n; w++) {
        const int *win = ids + w * (size_t)cutoff;
        for (int t = 0; t < cutoff; t++)
            targets[t] = t + 1 < cutoff ? win[t + 1] : -1;
        add_sample(&s, win, targets, cutoff);
    }
    free(targets);
    free(ids);
    finish(d, &s);
}

void instruct_free(instruct_data *d)
{
    free(d->source);
    free(d->off);
    free(d->ids);
    free(d->targets);
    memset(d, 0, sizeof *d);
}

/* ------------------------------------------------------------------ split */

int instruct_val_count(int n, int val_size)
{
    int tenth = n / 10;
    return val_size < tenth ? val_size : tenth;
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

void instruct_split(int n, int n_val, uint64_t seed, int **train, int **val)
{
    int *perm = xmalloc((size_t)(n > 0 ? n : 1) * sizeof *perm);
    for (int i = 0; i < n; i++)
        perm[i] = i;
    uint64_t state = seed;
    rng_shuffle(perm, n, &state);
    *val = xmalloc((size_t)(n_val > 0 ? n_val : 1) * sizeof **val);
    *train = xmalloc((size_t)(n - n_val > 0 ? n - n_val : 1) * sizeof **train);
    memcpy(*val, perm, (size_t)n_val * sizeof *perm);
    memcpy(*train, perm + n_val, (size_t)(n - n_val) * sizeof *perm);
    qsort(*val, (size_t)n_val, sizeof **val, cmp_int);
    qsort(*train, (size_t)(n - n_val), sizeof **train, cmp_int);
    free(perm);
}

json_t *instruct_to_json(const instruct_data *d)
{
    json_t *j = json_pack("{s:s,s:s,s:i,s:i,s:I,s:I,s:s}", "source", d->source, "mode", d->text ? "text" : "alpaca",
                          "cutoff", d->cutoff, "samples", d->n, "tokens", (json_int_t)d->tokens, "scored",
                          (json_int_t)d->scored, "xxh64", d->xxh64);
    if (d->text) {
        json_object_set_new(j, "text_tokens", json_integer((json_int_t)d->text_tokens));
    } else {
        json_object_set_new(j, "records", json_integer(d->records));
        json_object_set_new(j, "truncated", json_integer(d->truncated));
        json_object_set_new(j, "skipped", json_integer(d->skipped));
    }
    return j;
}

int64_t instruct_batch(const instruct_data *d, const int *idx, int b, int *tokens, int *targets, int *T_out)
{
    int T = 1;
    for (int j = 0; j < b; j++)
        T = instruct_len(d, idx[j]) > T ? instruct_len(d, idx[j]) : T;
    int64_t n = 0;
    for (int j = 0; j < b; j++) {
        int len = instruct_len(d, idx[j]);
        const int64_t o = d->off[idx[j]];
        memcpy(tokens + (size_t)j * T, d->ids + o, (size_t)len * sizeof(int));
        memcpy(targets + (size_t)j * T, d->targets + o, (size_t)len * sizeof(int));
        for (int t = len; t < T; t++)
            tokens[(size_t)j * T + t] = 0, targets[(size_t)j * T + t] = -1;
        n += len;
    }
    *T_out = T;
    return n;
}

int instruct_max_len(const instruct_data *d)
{
    int T = 1;
    for (int i = 0; i < d->n; i++)
        T = instruct_len(d, i) > T ? instruct_len(d, i) : T;
    return T;
}
