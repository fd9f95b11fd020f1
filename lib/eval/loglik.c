/* loglik.c - batched log-likelihoods of continuations (see loglik.h).
 *
 * Letters: G context groups of a batch, P tokens of a (truncated) context, N rows
 * of a forward pass (sequences packed without padding), V vocabulary. */
#include "eval/loglik.h"

#include <math.h>
#include <string.h>

#include "base/util.h"

/* Groups searched back for a shared context: an item's choices are adjacent. */
#define LOOKBACK 32

typedef struct {
    const int *tok;    /* the context tokens the model reads: ctx + d */
    int P;             /* how many */
    int first, count;  /* its requests: order[first .. first+count) */
} group;

void loglik_init(loglik_engine *e, const model *m, struct lora_set *lora, int max_len, int budget)
{
    memset(e, 0, sizeof *e);
    e->m = m;
    e->lora = lora;
    e->max_len = max_len;
    e->budget = budget;
    e->gmask = e->sop = -1;
}

void loglik_free(loglik_engine *e)
{
    if (e->ready)
        kv_cache_free(&e->cache);
    memset(e, 0, sizeof *e);
}

/* log sum exp of a row of logits, in double: log softmax(row)[j] = row[j] - this. */
static double log_sum_exp(const float *row, int V)
{
    double mx = row[0];
    for (int j = 1; j < V; j++)
        mx = row[j] > mx ? row[j] : mx;
    double s = 0;
    for (int j = 0; j < V; j++)
        s += exp((double)row[j] - mx);
    return mx + log(s);
}

/* The cache must take rows new rows, and a pool and slots of as many tokens. */
static void ensure_cache(loglik_engine *e, int rows)
{
    if (e->ready && e->cache.rows >= rows)
        return;
    if (e->ready)
        kv_cache_free(&e->cache);
    kv_cache_init(&e->cache, e->m, rows, rows, rows, rows);
    e->cache.lora = e->lora;
    e->ready = true;
}

/* How request r is read, in the causal form: the last P tokens of its context,
 * tok; its continuation's last xn tokens, *xc, are scored. */
static void read_causal(const loglik_request *r, int max_len, const int **tok, int *P, const int **xc, int *xn)
{
    /* the model reads the last max_len+1 tokens of ctx + cont without the last */
    int d = r->n_ctx + r->n_cont - (max_len + 1);
    d = d > 0 ? d : 0;
    *tok = r->ctx + d;
    *P = r->n_ctx - d;
    *xc = r->cont;
    *xn = r->n_cont;
    if (r->n_cont > max_len) {
        /* beyond the harness (it asserts): a continuation longer than the window
         * is read without its context and scored on its last max_len tokens */
        *tok = r->cont + (r->n_cont - max_len - 1);
        *P = 1;
        *xc = r->cont + (r->n_cont - max_len);
        *xn = max_len;
    }
}

/* The same in ChatGLM-6B's form: ctx' [gMASK] <sop> cont without its last token
 * fill at most max_len positions; P may be 0 (the prompt is [gMASK] alone). */
static void read_glm(const loglik_request *r, int max_len, const int **tok, int *P, const int **xc, int *xn)
{
    *xn = r->n_cont < max_len - 1 ? r->n_cont : max_len - 1;
    *xc = r->cont + (r->n_cont - *xn);
    int room = max_len - 1 - *xn;
    *P = r->n_ctx < room ? r->n_ctx : room;
    *tok = r->ctx + (r->n_ctx - *P);
}

void loglik_run(loglik_engine *e, loglik_request *req, int n, progress *p)
{
    const int V = e->m->cfg.vocab;
    int max_len = e->max_len;
    /* ChatGLM-6B's form: each context is followed by [gMASK] (its prompt), each
     * continuation read after <sop>, which predicts its first token */
    bool glm = e->gmask >= 0;
    int lead = glm ? 1 : 0;
    if (glm && max_len < 2)
        die("%s: a model of %d positions cannot read [gMASK] <sop>", e->what ? e->what : "loglik", max_len);
    /* 1. truncation and grouping: requests with the same context pointer and the same
     *    truncation share one group; an item's requests are adjacent, so the search
     *    looks back over the last few groups only */
    group *g = xmalloc((size_t)(n ? n : 1) * sizeof *g);
    int *gof = xmalloc((size_t)(n ? n : 1) * sizeof *gof);
    const int **xc = xmalloc((size_t)(n ? n : 1) * sizeof *xc); /* the continuation tokens scored */
    int *xn = xmalloc((size_t)(n ? n : 1) * sizeof *xn);
    int ng = 0, rows = e->budget;
    for (int i = 0; i < n; i++) {
        loglik_request *r = &req[i];
        if (r->n_ctx < 1 || r->n_cont < 1)
            die("%s: item %d: an empty context or continuation", e->what ? e->what : "loglik", r->item);
        const int *tok;
        int P;
        if (glm)
            read_glm(r, max_len, &tok, &P, &xc[i], &xn[i]);
        else
            read_causal(r, max_len, &tok, &P, &xc[i], &xn[i]);
        r->scored = xn[i];
        int found = -1;
        for (int k = ng - 1; k >= 0 && k >= ng - LOOKBACK; k--)
            if (g[k].tok == tok && g[k].P == P) {
                found = k;
                break;
            }
        if (found < 0) {
            found = ng++;
            g[found] = (group){tok, P, 0, 0};
        }
        gof[i] = found;
        g[found].count++;
        rows = P + lead > rows ? P + lead : rows;
        rows = xn[i] - 1 + lead > rows ? xn[i] - 1 + lead : rows;
    }
    /* requests listed group by group */
    int *order = xmalloc((size_t)(n ? n : 1) * sizeof *order);
    for (int k = 0, at = 0; k < ng; k++) {
        g[k].first = at;
        at += g[k].count;
        g[k].count = 0;
    }
    for (int i = 0; i < n; i++) {
        group *gg = &g[gof[i]];
        order[gg->first + gg->count++] = i;
    }
    ensure_cache(e, rows);
    kv_cache *c = &e->cache;
    c->blocks = glm;
    rows = c->rows;
    int *tokens = xmalloc((size_t)rows * sizeof *tokens);
    int *slot = xmalloc((size_t)rows * sizeof *slot);
    int *len = xmalloc((size_t)rows * sizeof *len);
    int *out = xmalloc((size_t)rows * sizeof *out);
    int *which = xmalloc((size_t)(n ? n : 1) * sizeof *which); /* continuations of a batch: request */
    int *wslot = xmalloc((size_t)(n ? n : 1) * sizeof *wslot); /* and the slot of its context */
    int done = 0;
    /* 2. batches of consecutive groups whose contexts fill at most rows token rows
     *    (packed, no padding) */
    for (int g0 = 0; g0 < ng;) {
        int g1 = g0, N = 0;
        while (g1 < ng && (g1 == g0 || N + g[g1].P + lead <= rows))
            N += g[g1++].P + lead;
        int G = g1 - g0;
        /* 2a. the contexts (with [gMASK]) into the cache; causal: logits at each
         *     context's last token, which predict the continuation's first */
        N = 0;
        for (int s = 0; s < G; s++) {
            const group *gg = &g[g0 + s];
            len[s] = gg->P + lead;
            slot[s] = s;
            memcpy(tokens + N, gg->tok, (size_t)gg->P * sizeof *tokens);
            if (glm)
                tokens[N + gg->P] = e->gmask;
            N += len[s];
            out[s] = N - 1;
        }
        kv_cache_layout(c, G, len);
        kv_cache_forward(e->m, c, tokens, G, len, slot, true, out, glm ? 0 : G);
        for (int s = 0; s < G; s++) {
            const group *gg = &g[g0 + s];
            const float *row = c->logits + (size_t)s * V;
            double lse = glm ? 0 : log_sum_exp(row, V);
            for (int k = 0; k < gg->count; k++) {
                loglik_request *r = &req[order[gg->first + k]];
                r->ll = glm ? 0 : (double)row[xc[order[gg->first + k]][0]] - lse;
            }
        }
        /* 2b. every continuation of the batch but its last token (after <sop>),
         *     read after its cached context, in chunks of at most rows rows */
        int nl = 0;
        for (int s = 0; s < G; s++)
            for (int k = 0; k < g[g0 + s].count; k++) {
                int ri = order[g[g0 + s].first + k];
                if (xn[ri] - 1 + lead > 0) {
                    which[nl] = ri;
                    wslot[nl++] = s;
                }
            }
        for (int a = 0; a < nl;) {
            int b = a;
            N = 0;
            while (b < nl && (b == a || N + xn[which[b]] - 1 + lead <= rows))
                N += xn[which[b++]] - 1 + lead;
            int R = b - a;
            N = 0;
            for (int q = 0; q < R; q++) {
                slot[q] = wslot[a + q];
                len[q] = xn[which[a + q]] - 1 + lead;
                if (glm)
                    tokens[N] = e->sop;
                memcpy(tokens + N + lead, xc[which[a + q]], (size_t)(len[q] - lead) * sizeof *tokens);
                for (int t = 0; t < len[q]; t++)
                    out[N + t] = N + t;
                N += len[q];
            }
            kv_cache_forward(e->m, c, tokens, R, len, slot, false, out, N);
            const float *row = c->logits;
            for (int q = 0; q < R; q++) {
                loglik_request *rq = &req[which[a + q]];
                const int *x = xc[which[a + q]];
                for (int t = 0; t < len[q]; t++, row += V)
                    rq->ll += (double)row[x[t + 1 - lead]] - log_sum_exp(row, V);
            }
            a = b;
        }
        for (int s = 0; s < G; s++)
            done += g[g0 + s].count;
        if (p)
            progress_update(p, done);
        g0 = g1;
    }
    free(tokens);
    free(slot);
    free(len);
    free(out);
    free(which);
    free(wslot);
    free(order);
    free(gof);
    free(xc);
    free(xn);
    free(g);
}
