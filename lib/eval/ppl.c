/* ppl.c - perplexity data sets and evaluation. */
#include "eval/ppl.h"

#include <ctype.h>
#include <math.h>
#include <string.h>

#include "base/progress.h"
#include "base/textio.h"
#include "base/util.h"
#include "compute/forward.h"

static const char *const format_names[PPL_FORMAT_COUNT] = {
    [PPL_AUTO] = "auto", [PPL_WIKITEXT] = "wikitext", [PPL_PTB] = "ptb", [PPL_TEXT] = "text"};

int ppl_format_from_name(const char *s)
{
    if (!strcmp(s, "wikitext2")) /* the Hugging Face data set's name */
        return PPL_WIKITEXT;
    return name_lookup(s, format_names, PPL_FORMAT_COUNT);
}

const char *ppl_format_name(enum ppl_format f) { return f < PPL_FORMAT_COUNT ? format_names[f] : "auto"; }

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static bool blank(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isspace((unsigned char)p[i]))
            return false;
    return true;
}

/* Join the rows of a line-based data set with "\n\n". A line ends at '\n'; a final
 * line without one still counts; a '\r' before the '\n' is dropped (the files have
 * CRLF line ends, the Hugging Face rows do not). */
static char *join_rows(const char *src, size_t n, enum ppl_format f, size_t *out_len)
{
    char *out = xmalloc(2 * n + 16);
    size_t o = 0, i = 0;
    bool first = true;
    while (i < n) {
        const char *line = src + i;
        const char *nl = memchr(line, '\n', n - i);
        size_t len = nl ? (size_t)(nl - line) : n - i;
        i += len + (nl ? 1 : 0);
        if (len && line[len - 1] == '\r')
            len--;
        if (!first) {
            out[o++] = '\n';
            out[o++] = '\n';
        }
        first = false;
        if (f == PPL_WIKITEXT) {
            /* wikitext rows: the line with its newline, or "" when it is blank */
            if (!blank(line, len)) {
                memcpy(out + o, line, len);
                o += len;
                out[o++] = '\n';
            }
        } else {
            /* ptb rows: the line stripped */
            while (len && isspace((unsigned char)line[0])) {
                line++;
                len--;
            }
            while (len && isspace((unsigned char)line[len - 1]))
                len--;
            memcpy(out + o, line, len);
            o += len;
        }
    }
    out[o] = 0;
    *out_len = o;
    return out;
}

void ppl_dataset_load(ppl_dataset *d, const char *path, enum ppl_format format, enum ppl_protocol protocol)
{
    memset(d, 0, sizeof *d);
    const char *base = base_name(path);
    /* llama-perplexity tokenizes the file as it is: its rows joined as the Hugging
     * Face loaders yield them (CRs dropped, blank lines emptied) are another text */
    bool as_llamacpp = format == PPL_AUTO && protocol == PPL_PROTOCOL_LLAMA_CPP;
    if (format == PPL_AUTO) {
        if (!strncmp(base, "wiki.", 5))
            format = PPL_WIKITEXT;
        else if (!strncmp(base, "ptb.", 4))
            format = PPL_PTB;
        else
            format = PPL_TEXT;
    }
    d->format = as_llamacpp ? PPL_TEXT : format;
    if (format == PPL_WIKITEXT)
        d->task = xstrdup("wikitext2");
    else if (format == PPL_PTB)
        d->task = xstrdup("ptb");
    else {
        /* the base name without compression or text extensions */
        char *t = xstrdup(base);
        static const char *exts[] = {".gz", ".xz", ".zst", ".bz2", ".txt", ".raw", ".jsonl", ".json"};
        for (size_t k = 0; k < sizeof exts / sizeof *exts; k++) {
            size_t tl = strlen(t), el = strlen(exts[k]);
            if (tl > el && !strcmp(t + tl - el, exts[k]))
                t[tl - el] = 0;
        }
        d->task = t;
    }
    d->split = xstrdup(strstr(base, "test") ? "test" : strstr(base, "valid") ? "validation"
                                                      : strstr(base, "train") ? "train" : "");
    size_t n;
    char *raw = read_text_file(path, &n);
    if (d->format == PPL_TEXT) {
        /* llama-perplexity's -f drops one final newline */
        if (protocol == PPL_PROTOCOL_LLAMA_CPP && n && raw[n - 1] == '\n')
            raw[--n] = 0;
        d->text = raw;
        d->len = n;
    } else {
        d->text = join_rows(raw, n, format, &d->len);
        free(raw);
    }
}

void ppl_dataset_free(ppl_dataset *d)
{
    free(d->task);
    free(d->split);
    free(d->text);
    memset(d, 0, sizeof *d);
}

int ppl_protocol_from_name(const char *s)
{
    if (!strcmp(s, "llm-pruner")) return PPL_PROTOCOL_LLM_PRUNER;
    if (!strcmp(s, "llama.cpp")) return PPL_PROTOCOL_LLAMA_CPP;
    return -1;
}

const char *ppl_protocol_name(enum ppl_protocol p)
{
    return p == PPL_PROTOCOL_LLAMA_CPP ? "llama.cpp" : "llm-pruner";
}

void ppl_evaluate(const model *m, struct lora_set *lora, const int *ids, size_t n, const ppl_options *o,
                  const char *what, ppl_result *res)
{
    memset(res, 0, sizeof *res);
    int seq_len = o->seq_len, batch = o->batch;
    bool llamacpp = o->protocol == PPL_PROTOCOL_LLAMA_CPP;
    /* llama.cpp scores positions first .. seq_len-2 of each window, predicting the
     * token after; LLM-Pruner every position but the last. */
    int first = llamacpp ? seq_len / 2 : 0;
    res->tokens = (int64_t)n;
    int64_t windows = (int64_t)n / seq_len;
    if (o->max_windows > 0 && windows > o->max_windows)
        windows = o->max_windows;
    if (windows == 0)
        die("%s: %zu tokens is less than one window of %d", what, n, seq_len);
    if (llamacpp && seq_len < 4)
        die("%s: the llama.cpp protocol needs windows of at least 4 tokens", what);
    if (batch > windows)
        batch = (int)windows;

    forward_state s;
    forward_state_init(&s, m, batch, seq_len);
    s.lora = lora;
    s.logits_from = first; /* the LM head only for the scored positions (and the last) */
    int *tok = xmalloc((size_t)batch * seq_len * sizeof *tok);
    int *target = xmalloc((size_t)batch * seq_len * sizeof *target);
    progress p;
    progress_start(&p, what, "tok", windows * seq_len);
    double t0 = now_seconds();
    double sum = 0, sum2 = 0;
    int64_t count = 0;
    for (int64_t w = 0; w < windows; w += batch) {
        int b = windows - w < batch ? (int)(windows - w) : batch;
        /* a short last batch reuses the state: pad with copies, score only b rows */
        for (int i = 0; i < batch; i++) {
            const int *src = ids + (size_t)(w + (i < b ? i : 0)) * seq_len;
            memcpy(tok + (size_t)i * seq_len, src, (size_t)seq_len * sizeof *tok);
            if (llamacpp && o->bos >= 0)
                tok[(size_t)i * seq_len] = o->bos;
            for (int t = first; t < seq_len; t++) /* the rows of s.logits */
                target[i * (seq_len - first) + t - first] = (i < b && t + 1 < seq_len) ? src[t + 1] : -1;
        }
        model_forward(m, &s, tok);
        for (int r = 0; r < batch * (seq_len - first); r++) {
            if (target[r] < 0)
                continue;
            double nll = 0;
            nll_accumulate(s.logits + (size_t)r * m->cfg.vocab, &target[r], 1, m->cfg.vocab, &nll, &count);
            sum += nll;
            sum2 += nll * nll;
        }
        progress_update(&p, (w + b) * seq_len);
    }
    progress_end(&p, windows * seq_len);
    res->seconds = now_seconds() - t0;
    res->windows = windows;
    res->predicted = count;
    res->nll_sum = sum;
    res->ppl = exp(sum / (double)count);
    /* llama.cpp's uncertainty: the standard error of the mean NLL, times PPL */
    double mean = sum / (double)count, var = sum2 / (double)count - mean * mean;
    res->ppl_err = count > 1 && var > 0 ? res->ppl * sqrt(var / (double)(count - 1)) : NAN;
    free(tok);
    free(target);
    forward_state_free(&s);
}
