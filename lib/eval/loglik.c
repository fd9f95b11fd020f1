/* loglik.c - batched log-likelihoods of continuations (see loglik.h).
 *
 * Letters: G context groups of a batch, P tokens of a (truncated) context, N rows
 * of a forward pass (sequences packed without padding), V vocabulary. */
#include "eval/loglik.h"

#include <math.h>
#include <string.h>

#include "base/util.h"
#include "compute/kernels.h"

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

/* One loglik_run: the requests, how each is read, its groups and the buffers
 * of a forward pass (rows token rows). */
typedef struct {
    loglik_engine *e;
    loglik_request *req;
    int n, V;
    bool glm;          /* ChatGLM-6B's form */
    int lead;          /* 1 in that form: [gMASK] after a context, <sop> before a continuation */
    group *g;          /* (ng) */
    int ng;
    int *gof;          /* (n) each request's group */
    const int **xc;    /* (n) the continuation tokens scored */
    int *xn;           /* (n) how many */
    int *order;        /* (n) the requests, group by group */
    int rows;
    int *tokens, *slot, *len, *out; /* (rows) */
    int *which, *wslot; /* (n) a batch's continuations: request, and its context's slot */
} run;

/* 1. Truncation and grouping: requests with the same context pointer and the
 *    same truncation share one group (an item's requests are adjacent, so the
 *    search looks back over the last few groups only); the rows a pass needs. */
static void group_requests(run *r, int max_len)
{
    loglik_engine *e = r->e;
    r->rows = e->budget;
    for (int i = 0; i < r->n; i++) {
        loglik_request *q = &r->req[i];
        if (q->n_ctx < 1 || q->n_cont < 1)
            die("%s: item %d: an empty context or continuation", e->what ? e->what : "loglik", q->item);
        const int *tok;
        int P;
        if (r->glm)
            read_glm(q, max_len, &tok, &P, &r->xc[i], &r->xn[i]);
        else
            read_causal(q, max_len, &tok, &P, &r->xc[i], &r->xn[i]);
        q->scored = r->xn[i];
        int found = -1;
        for (int k = r->ng - 1; k >= 0 && k >= r->ng - LOOKBACK; k--)
            if (r->g[k].tok == tok && r->g[k].P == P) {
                found = k;
                break;
            }
        if (found < 0) {
            found = r->ng++;
            r->g[found] = (group){tok, P, 0, 0};
        }
        r->gof[i] = found;
        r->g[found].count++;
        r->rows = P + r->lead > r->rows ? P + r->lead : r->rows;
        r->rows = r->xn[i] - 1 + r->lead > r->rows ? r->xn[i] - 1 + r->lead : r->rows;
    }
    /* the requests listed group by group */
    for (int k = 0, at = 0; k < r->ng; k++) {
        r->g[k].first = at;
        at += r->g[k].count;
        r->g[k].count = 0;
    }
    for (int i = 0; i < r->n; i++) {
        group *gg = &r->g[r->gof[i]];
        r->order[gg->first + gg->count++] = i;
    }
}

/* 2a. The contexts of groups [g0, g0 + G) (with [gMASK]) into the cache; causal:
 *     logits at each context's last token, which predict the continuation's first. */
static void read_contexts(run *r, int g0, int G)
{
    loglik_engine *e = r->e;
    kv_cache *c = &e->cache;
    int N = 0;
    for (int s = 0; s < G; s++) {
        const group *gg = &r->g[g0 + s];
        r->len[s] = gg->P + r->lead;
        r->slot[s] = s;
        memcpy(r->tokens + N, gg->tok, (size_t)gg->P * sizeof *r->tokens);
        if (r->glm)
            r->tokens[N + gg->P] = e->gmask;
        N += r->len[s];
        r->out[s] = N - 1;
    }
    kv_cache_layout(c, G, r->len);
    kv_cache_forward(e->m, c, r->tokens, G, r->len, r->slot, true, r->out, r->glm ? 0 : G);
    for (int s = 0; s < G; s++) {
        const group *gg = &r->g[g0 + s];
        const float *row = c->logits + (size_t)s * r->V;
        double lse = r->glm ? 0 : logsumexp_row(row, r->V);
        for (int k = 0; k < gg->count; k++) {
            int ri = r->order[gg->first + k];
            r->req[ri].ll = r->glm ? 0 : (double)row[r->xc[ri][0]] - lse;
        }
    }
}

/* 2b. Every continuation of groups [g0, g0 + G) but its last token (after <sop>),
 *     read after its cached context, in chunks of at most rows rows. */
static void read_continuations(run *r, int g0, int G)
{
    loglik_engine *e = r->e;
    kv_cache *c = &e->cache;
    int nl = 0, lead = r->lead;
    for (int s = 0; s < G; s++)
        for (int k = 0; k < r->g[g0 + s].count; k++) {
            int ri = r->order[r->g[g0 + s].first + k];
            if (r->xn[ri] - 1 + lead > 0) {
                r->which[nl] = ri;
                r->wslot[nl++] = s;
            }
        }
    for (int a = 0; a < nl;) {
        int b = a, N = 0;
        while (b < nl && (b == a || N + r->xn[r->which[b]] - 1 + lead <= r->rows))
            N += r->xn[r->which[b++]] - 1 + lead;
        int R = b - a;
        N = 0;
        for (int q = 0; q < R; q++) {
            r->slot[q] = r->wslot[a + q];
            r->len[q] = r->xn[r->which[a + q]] - 1 + lead;
            if (r->glm)
                r->tokens[N] = e->sop;
            memcpy(r->tokens + N + lead, r->xc[r->which[a + q]], (size_t)(r->len[q] - lead) * sizeof *r->tokens);
            for (int t = 0; t < r->len[q]; t++)
                r->out[N + t] = N + t;
            N += r->len[q];
        }
        kv_cache_forward(e->m, c, r->tokens, R, r->len, r->slot, false, r->out, N);
        const float *row = c->logits;
        for (int q = 0; q < R; q++) {
            loglik_request *rq = &r->req[r->which[a + q]];
            const int *x = r->xc[r->which[a + q]];
            for (int t = 0; t < r->len[q]; t++, row += r->V)
                rq->ll += (double)row[x[t + 1 - lead]] - logsumexp_row(row, r->V);
        }
        a = b;
    }
}

void loglik_run(loglik_engine *e, loglik_request *req, int n, progress *p)
{
    int max_len = e->max_len;
    /* ChatGLM-6B's form: each context is followed by [gMASK] (its prompt), each
     * continuation read after <sop>, which predicts its first token */
    bool glm = e->gmask >= 0;
    if (glm && max_len < 2)
        die("%s: a model of %d positions cannot read [gMASK] <sop>", e->what ? e->what : "loglik", max_len);
    size_t n1 = (size_t)(n ? n : 1);
    run r = {.e = e, .req = req, .n = n, .V = e->m->cfg.vocab, .glm = glm, .lead = glm ? 1 : 0,
             .g = xmalloc(n1 * sizeof *r.g), .gof = xmalloc(n1 * sizeof *r.gof), .xc = xmalloc(n1 * sizeof *r.xc),
             .xn = xmalloc(n1 * sizeof *r.xn), .order = xmalloc(n1 * sizeof *r.order),
             .which = xmalloc(n1 * sizeof *r.which), .wslot = xmalloc(n1 * sizeof *r.wslot)};
    group_requests(&r, max_len);
    ensure_cache(e, r.rows);
    e->cache.blocks = glm;
    r.rows = e->cache.rows;
    r.tokens = xmalloc((size_t)r.rows * sizeof *r.tokens);
    r.slot = xmalloc((size_t)r.rows * sizeof *r.slot);
    r.len = xmalloc((size_t)r.rows * sizeof *r.len);
    r.out = xmalloc((size_t)r.rows * sizeof *r.out);
    /* 2. batches of consecutive groups whose contexts fill at most rows token rows
     *    (packed, no padding) */
    int done = 0;
    for (int g0 = 0; g0 < r.ng;) {
        int g1 = g0, N = 0;
        while (g1 < r.ng && (g1 == g0 || N + r.g[g1].P + r.lead <= r.rows))
            N += r.g[g1++].P + r.lead;
        read_contexts(&r, g0, g1 - g0);
        read_continuations(&r, g0, g1 - g0);
        for (int s = g0; s < g1; s++)
            done += r.g[s].count;
        if (p)
            progress_update(p, done);
        g0 = g1;
    }
    free(r.tokens);
    free(r.slot);
    free(r.len);
    free(r.out);
    free(r.which);
    free(r.wslot);
    free(r.order);
    free(r.gof);
    free(r.xc);
    free(r.xn);
    free(r.g);
}
