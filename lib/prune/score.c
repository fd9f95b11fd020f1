/* score.c - gradient, Fisher, magnitude and activation statistics per group
 * member and unit, in bounded memory; shards and their merge (score.h).
 *
 * Letters: S samples, T tokens per sample, L layers, U units of a group, M
 * members of a group, R x C a member tensor (C = 1 for a vector), I a linear
 * map's input width.
 *
 * The backward pass calls the sink once per layer, from the last to the first,
 * then once with layer -1 (embedding, final norm, LM head). A "position" orders
 * those calls: layer l is at L-1-l, the outer tensors at L. Every tensor named by
 * a group member is a "tref"; within a position the trefs go in name order, which
 * is also the order of a partial stream's sum records. When F is held
 * element-wise, the trefs in that order are cut into "pieces" (runs of rows;
 * whole tensors for a shard) and the pieces into chunks that fit the budget. */
#include "prune/score.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/progress.h"
#include "base/util.h"
#include "compute/backward.h"
#include "format/stream.h"

static const char *const stat_names[SCORE_STAT_COUNT] = {"vector", "element1",    "element2", "mix",      "l1",
                                                         "l2",     "activations", "ablation", "influence"};

const char *score_stat_name(int s) { return (unsigned)s < SCORE_STAT_COUNT ? stat_names[s] : "?"; }

int score_stat_from_name(const char *s)
{
    for (int i = 0; i < SCORE_STAT_COUNT; i++)
        if (!strcmp(s, stat_names[i]))
            return i;
    return -1;
}

unsigned score_stats_parse(const char *list, char *bad, size_t bad_size)
{
    return parse_name_list(list, stat_names, SCORE_STAT_COUNT, SCORE_ALL, bad, bad_size);
}

/* ------------------------------------------------------------------ state */

#define GRAD_STATS ((1u << SCORE_VECTOR) | (1u << SCORE_ELEMENT1) | (1u << SCORE_ELEMENT2) | (1u << SCORE_MIX))
#define MAG_STATS ((1u << SCORE_L1) | (1u << SCORE_L2))
#define NS SCORE_MEMBER_STATS

typedef struct {
    int g, k; /* group index, member index */
} member_ref;

typedef struct {
    char *name;
    int layer;          /* N of model.layers.N.*, else -1 */
    int pos;            /* sink position */
    int64_t rows, cols; /* cols 1 for a vector; -1 until known (merge) */
    const tensor *w;    /* the weights (NULL in a merge) */
    int n_refs;
    member_ref *refs;
    bool done;          /* merge: its sums arrived */
} tref;

/* Rows [r0, r1) of a tref whose element-wise F a chunk holds. */
typedef struct {
    int t;              /* tref index */
    int64_t r0, r1;
    float *f;           /* (r1 - r0, cols) sum_s G_s^2 of these rows, in the chunk's arena */
} piece;

typedef struct {
    char *tensor;
    int64_t tokens, I;
    double *sum, *sumsq; /* (I) each */
} act_acc;

enum pass_kind { PASS_FISHER, PASS_E2, PASS_BATCH };

typedef struct {
    const model *m;          /* NULL in a merge */
    group_set *gs;
    unsigned stats;
    int L;
    int n_t;
    tref *t;                 /* sorted by name */
    double **acc;            /* per group: (M, NS, U) */
    double *scratch;         /* (2, NS, maxdim) per-channel values */
    float *wrow;             /* (maxdim) one row of a weight */
    int64_t maxdim;
    int n_a;
    act_acc *a;
    /* the chunks of element-wise F: pieces in sink order, chunk c is pieces
     * [chunk_end[c-1], chunk_end[c]) */
    int n_pieces, n_chunks;
    piece *pieces;
    int *chunk_end;
    /* the pass in progress */
    enum pass_kind pass;
    int chunk;
    int n_samples;           /* S of the whole run: F divides by it */
    /* partial output */
    stream_writer *pw;
    double targets;          /* the shard's scored targets: raw sums = mean gradient x targets */
    float *tmp;
    size_t tmp_n;
} scorer;

static int layer_of_name(const char *name)
{
    const char *rest;
    return model_layer_of(name, &rest);
}

static int pos_of_layer(const scorer *s, int layer) { return layer >= 0 ? s->L - 1 - layer : s->L; }

static int cmp_tref(const void *a, const void *b) { return strcmp(((const tref *)a)->name, ((const tref *)b)->name); }

static tref *find_tref(const scorer *s, const char *name)
{
    tref key = {.name = (char *)name};
    return s->n_t ? bsearch(&key, s->t, (size_t)s->n_t, sizeof *s->t, cmp_tref) : NULL;
}

/* The trefs of every tensor the groups name, with the members that name them; the
 * weights and shapes from m when given. Dies on a member outside its tensor. */
static void scorer_init(scorer *s, const model *m, group_set *gs, unsigned stats, int L)
{
    memset(s, 0, sizeof *s);
    s->m = m;
    s->gs = gs;
    s->stats = stats;
    s->L = L;
    for (int gi = 0; gi < gs->n; gi++) {
        const group *g = &gs->g[gi];
        for (int k = 0; k < g->n_members; k++) {
            const char *name = g->members[k].tensor;
            tref *t = NULL;
            for (int i = 0; i < s->n_t && !t; i++) /* groups are few per tensor: sorted later */
                if (!strcmp(s->t[i].name, name))
                    t = &s->t[i];
            if (!t) {
                s->t = xrealloc(s->t, (size_t)(s->n_t + 1) * sizeof *s->t);
                t = &s->t[s->n_t++];
                memset(t, 0, sizeof *t);
                t->name = xstrdup(name);
                t->layer = layer_of_name(name);
                t->rows = t->cols = -1;
            }
            t->refs = xrealloc(t->refs, (size_t)(t->n_refs + 1) * sizeof *t->refs);
            t->refs[t->n_refs++] = (member_ref){gi, k};
        }
    }
    if (s->n_t) /* no groups name no tensor: s->t is NULL */
        qsort(s->t, (size_t)s->n_t, sizeof *s->t, cmp_tref);
    for (int i = 0; i < s->n_t; i++) {
        tref *t = &s->t[i];
        if (t->layer >= L)
            die("the groups name %s, but the model has %d layers", t->name, L);
        t->pos = pos_of_layer(s, t->layer);
        if (m) {
            const tensor *w = model_tensor(m, t->name);
            if (!w)
                die("%s: the groups name tensor %s, which the model lacks", m->source, t->name);
            t->w = w;
            t->rows = w->shape[0];
            t->cols = w->ndim == 2 ? w->shape[1] : 1;
        }
    }
    s->acc = xcalloc((size_t)(gs->n > 0 ? gs->n : 1), sizeof *s->acc);
    for (int gi = 0; gi < gs->n; gi++)
        s->acc[gi] = xcalloc((size_t)gs->g[gi].n_members * NS * (size_t)gs->g[gi].units, sizeof(double));
}

/* Check t's shape against its members and size the scratch for it. */
static void tref_shape_ok(scorer *s, const tref *t)
{
    for (int r = 0; r < t->n_refs; r++) {
        const group *g = &s->gs->g[t->refs[r].g];
        const group_member *mb = &g->members[t->refs[r].k];
        int64_t n = mb->axis == 0 ? t->rows : t->cols;
        int64_t end = mb->start + (g->units - 1) * mb->stride + mb->width;
        if (mb->axis == 1 && t->cols == 1 && t->rows > 1)
            die("group %d: member %s has no axis 1 (a vector)", g->id, t->name);
        if (end > n)
            die("group %d: the units of member %s reach index %lld of axis %d, which has %lld", g->id, t->name,
                (long long)end - 1, mb->axis, (long long)n);
    }
    int64_t d = t->rows > t->cols ? t->rows : t->cols;
    if (d > s->maxdim) {
        s->maxdim = d;
        free(s->scratch);
        s->scratch = xmalloc(2 * NS * (size_t)d * sizeof(double));
        free(s->wrow);
        s->wrow = xmalloc((size_t)d * sizeof(float));
    }
}

static void scorer_free(scorer *s)
{
    for (int i = 0; i < s->n_t; i++) {
        free(s->t[i].name);
        free(s->t[i].refs);
    }
    free(s->t);
    for (int gi = 0; gi < s->gs->n; gi++)
        free(s->acc[gi]);
    free(s->acc);
    free(s->scratch);
    free(s->wrow);
    for (int i = 0; i < s->n_a; i++) {
        free(s->a[i].tensor);
        free(s->a[i].sum);
    }
    free(s->a);
    free(s->tmp);
    free(s->pieces);
    free(s->chunk_end);
}

/* ------------------------------------------------------------------ reduction */

/* Over rows [r0, r1) of t, per element (r, c): a = sg * w * g (W.G; with w NULL,
 * g already holds W.G) and b = sf * w^2 * f (W.F.W; with f_is_grad, f is one
 * sample's gradient and is squared first); w and g are whole tensors (R, C), f
 * holds the rows from r0 on ((r1 - r0, C)). Each statistic of mask is reduced
 * over the other axis of every axis t's members use, summed over each unit's
 * channels, and added into the unit's accumulator. Rows of one tensor may come in
 * several calls (every statistic but vector adds up over rows; vector must see
 * whole columns). */
static void reduce_tensor(scorer *s, const tref *t, int64_t r0, int64_t r1, const tensor *w, const float *g,
                          double sg, const float *f, double sf, bool f_is_grad, unsigned mask)
{
    int64_t R = t->rows, C = t->cols;
    bool ax[2] = {false, false};
    for (int r = 0; r < t->n_refs; r++)
        ax[s->gs->g[t->refs[r].g].members[t->refs[r].k].axis] = true;
    int act[NS], na = 0;
    for (int k = 0; k < NS; k++)
        if (mask & (1u << k))
            act[na++] = k;
    if (!na)
        return;
    double *ch[2][NS]; /* per axis and statistic: (R) or (C) channel values */
    for (int a = 0; a < 2; a++)
        for (int k = 0; k < NS; k++)
            ch[a][k] = s->scratch + ((size_t)a * NS + (size_t)k) * (size_t)s->maxdim;
    for (int j = 0; j < na; j++) {
        if (ax[1])
            memset(ch[1][act[j]], 0, (size_t)C * sizeof(double));
        if (ax[0] && (r0 > 0 || r1 < R))
            memset(ch[0][act[j]], 0, (size_t)R * sizeof(double));
    }
    for (int64_t r = r0; r < r1; r++) {
        const float *wr = NULL, *gr = g ? g + r * C : NULL, *fr = f ? f + (r - r0) * C : NULL;
        if (w) {
            tensor_get_f32(w, r * C, C, s->wrow);
            wr = s->wrow;
        }
        double rs[NS] = {0};
        for (int64_t c = 0; c < C; c++) {
            double wv = wr ? wr[c] : 1.0, fv = fr ? fr[c] : 0.0;
            if (f_is_grad)
                fv *= fv;
            double a = gr ? sg * wv * gr[c] : 0.0, b = sf * wv * wv * fv;
            double v[NS] = {a, fabs(a), b, fabs(a - 0.5 * b), fabs(wv), wv * wv};
            for (int j = 0; j < na; j++)
                rs[act[j]] += v[act[j]];
            if (ax[1])
                for (int j = 0; j < na; j++)
                    ch[1][act[j]][c] += v[act[j]];
        }
        if (ax[0])
            for (int j = 0; j < na; j++)
                ch[0][act[j]][r] = rs[act[j]];
    }
    for (int r = 0; r < t->n_refs; r++) {
        const group *gr = &s->gs->g[t->refs[r].g];
        const group_member *mb = &gr->members[t->refs[r].k];
        int64_t U = gr->units;
        double *dst = s->acc[t->refs[r].g] + (size_t)t->refs[r].k * NS * (size_t)U; /* (NS, U) */
        for (int j = 0; j < na; j++) {
            int k = act[j];
            const double *v = ch[mb->axis][k];
            for (int64_t u = 0; u < U; u++) {
                int64_t a = mb->start + u * mb->stride;
                double sum = 0;
                for (int64_t c = a; c < a + mb->width; c++)
                    sum += k == SCORE_VECTOR ? fabs(v[c]) : v[c];
                dst[(size_t)k * U + u] += sum;
            }
        }
    }
}

/* gs's stats from the accumulators, for the member statistics of mask (in enum
 * order); the statistics a group already has and mask does not name are kept
 * when keep is set (a merge's l1/l2). */
static void finalize_stats(scorer *s, unsigned mask, bool keep)
{
    for (int gi = 0; gi < s->gs->n; gi++) {
        group *g = &s->gs->g[gi];
        int64_t U = g->units, M = g->n_members;
        group_stat *st = xcalloc(NS, sizeof *st);
        int n = 0;
        for (int k = 0; k < NS; k++) {
            const group_stat *old = keep ? group_find_stat(g, stat_names[k]) : NULL;
            if (!(mask & (1u << k)) && !old)
                continue;
            st[n].name = xstrdup(stat_names[k]);
            st[n].values = xmalloc((size_t)(M * U) * sizeof(float));
            if (mask & (1u << k))
                for (int64_t mi = 0; mi < M; mi++)
                    for (int64_t u = 0; u < U; u++)
                        st[n].values[mi * U + u] = (float)s->acc[gi][((size_t)mi * NS + (size_t)k) * U + u];
            else
                memcpy(st[n].values, old->values, (size_t)(M * U) * sizeof(float));
            n++;
        }
        for (int i = 0; i < g->n_stats; i++) {
            free(g->stats[i].name);
            free(g->stats[i].values);
        }
        free(g->stats);
        g->stats = st;
        g->n_stats = n;
    }
}

/* l1 and l2 from the weights. */
static void reduce_magnitudes(scorer *s)
{
    unsigned mask = s->stats & MAG_STATS;
    if (!mask)
        return;
    for (int i = 0; i < s->n_t; i++)
        reduce_tensor(s, &s->t[i], 0, s->t[i].rows, s->t[i].w, NULL, 0, NULL, 0, false, mask);
}

/* ------------------------------------------------------------------ activations */

static act_acc *find_act(scorer *s, const char *tensor, int64_t I)
{
    for (int i = 0; i < s->n_a; i++)
        if (!strcmp(s->a[i].tensor, tensor)) {
            if (s->a[i].I != I)
                die("activations of %s: %lld channels, then %lld", tensor, (long long)s->a[i].I, (long long)I);
            return &s->a[i];
        }
    s->a = xrealloc(s->a, (size_t)(s->n_a + 1) * sizeof *s->a);
    act_acc *a = &s->a[s->n_a++];
    a->tensor = xstrdup(tensor);
    a->tokens = 0;
    a->I = I;
    a->sum = xcalloc(2 * (size_t)I, sizeof(double));
    a->sumsq = a->sum + I;
    return a;
}

static void act_sink(void *ctx, const char *tensor, const float *x, int N, int nin)
{
    scorer *s = ctx;
    act_acc *a = find_act(s, tensor, nin);
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * nin; /* (I) */
        for (int i = 0; i < nin; i++) {
            double v = xr[i];
            a->sum[i] += v;
            a->sumsq[i] += v * v;
        }
    }
    a->tokens += N;
}

static void finalize_acts(scorer *s)
{
    group_set *gs = s->gs;
    for (int i = 0; i < gs->n_act; i++) {
        free(gs->act[i].tensor);
        free(gs->act[i].mean);
    }
    free(gs->act);
    gs->n_act = s->n_a;
    gs->act = xcalloc((size_t)(s->n_a > 0 ? s->n_a : 1), sizeof *gs->act);
    for (int i = 0; i < s->n_a; i++) {
        const act_acc *a = &s->a[i];
        act_stat *o = &gs->act[i];
        o->tensor = xstrdup(a->tensor);
        o->tokens = a->tokens;
        act_stat_alloc(o, a->I);
        double n = a->tokens > 0 ? (double)a->tokens : 1.0;
        for (int64_t c = 0; c < a->I; c++) {
            double mean = a->sum[c] / n, var = a->sumsq[c] / n - mean * mean;
            o->mean[c] = (float)mean;
            o->var[c] = (float)(var > 0 ? var : 0);
            o->sqnorm[c] = (float)a->sumsq[c];
        }
    }
}

/* ------------------------------------------------------------------ partial records */

static float *tmp_buf(scorer *s, size_t n)
{
    if (n > s->tmp_n) {
        free(s->tmp);
        s->tmp = xmalloc(n * sizeof(float));
        s->tmp_n = n;
    }
    return s->tmp;
}

/* {"t": "sum", "tensor", "quantity", "shape", "data": bin float32 (R, C)} of
 * w * w^wpow... : quantity "wg" = w * x * scale, "wfw" = w * w * x. */
static void write_sum(scorer *s, const tref *t, const char *quantity, const float *x, double scale)
{
    size_t n = (size_t)(t->rows * t->cols);
    float *o = tmp_buf(s, n); /* (R, C) */
    bool fisher = !strcmp(quantity, "wfw");
    tensor_get_f32(t->w, 0, (int64_t)n, o);
    for (size_t i = 0; i < n; i++) {
        double w = o[i];
        o[i] = (float)(fisher ? w * w * (double)x[i] : w * (double)x[i] * scale);
    }
    stream_writer *pw = s->pw;
    stream_begin_record(pw, "sum", 5);
    mp_pack_kv_str(&pw->pk, "tensor", t->name);
    mp_pack_kv_str(&pw->pk, "quantity", quantity);
    mp_pack_str(&pw->pk, "shape");
    msgpack_pack_array(&pw->pk, 2);
    msgpack_pack_int64(&pw->pk, t->rows);
    msgpack_pack_int64(&pw->pk, t->cols);
    stream_write_payload(pw, "data", o, n * sizeof(float));
}

/* ------------------------------------------------------------------ sinks */

/* The gradient of tensor name in this call, or NULL (the outer tensors come in
 * more than one call: backward.h). */
static const float *grad_named(const weight_grad *grads, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(grads[i].name, name))
            return grads[i].grad;
    return NULL;
}

static void grad_sink(void *ctx, int layer, const weight_grad *grads, int n)
{
    scorer *s = ctx;
    int pos = pos_of_layer(s, layer);
    double inv_s = 1.0 / s->n_samples;
    unsigned first = s->stats & ((1u << SCORE_VECTOR) | (1u << SCORE_ELEMENT1));
    /* whole tensors: separable element2; first-order statistics once, in the first batch pass */
    for (int i = 0; i < s->n_t && (s->pass == PASS_E2 || (s->pass == PASS_BATCH && !s->pw && s->chunk == 0));
         i++) {
        tref *t = &s->t[i];
        const float *g = t->pos == pos ? grad_named(grads, n, t->name) : NULL;
        if (!g)
            continue;
        if (s->pass == PASS_E2)
            reduce_tensor(s, t, 0, t->rows, t->w, NULL, 0, g, inv_s, true, 1u << SCORE_ELEMENT2);
        else
            reduce_tensor(s, t, 0, t->rows, t->w, g, 1.0, NULL, 0, false, first);
    }
    if (s->pass == PASS_E2 || !s->n_pieces)
        return;
    /* the pieces of this chunk: F, or the Fisher statistics, or a shard's sums */
    for (int k = s->chunk ? s->chunk_end[s->chunk - 1] : 0; k < s->chunk_end[s->chunk]; k++) {
        piece *p = &s->pieces[k];
        tref *t = &s->t[p->t];
        const float *g = t->pos == pos ? grad_named(grads, n, t->name) : NULL;
        if (!g)
            continue;
        int64_t C = t->cols;
        if (s->pass == PASS_FISHER) {
            const float *gp = g + p->r0 * C; /* (r1 - r0, C) */
            size_t numel = (size_t)((p->r1 - p->r0) * C);
            for (size_t e = 0; e < numel; e++)
                p->f[e] += gp[e] * gp[e];
        } else if (s->pw) { /* whole tensors */
            if (s->stats & GRAD_STATS)
                write_sum(s, t, "wg", g, s->targets);
            if (s->stats & SCORE_FISHER)
                write_sum(s, t, "wfw", p->f, 1.0);
        } else {
            reduce_tensor(s, t, p->r0, p->r1, t->w, g, 1.0, p->f, inv_s, false, s->stats & SCORE_FISHER);
        }
    }
}

/* ------------------------------------------------------------------ passes */

/* Cut the trefs, in sink order (position, then name), into chunks whose F fits in
 * budget bytes: by rows with split, else whole tensors (each chunk holds at least
 * one row, or one tensor). Fills s->pieces and s->chunk_end. */
static void plan_chunks(scorer *s, size_t budget, bool split)
{
    free(s->pieces);
    free(s->chunk_end);
    s->pieces = NULL;
    s->chunk_end = NULL;
    s->n_pieces = s->n_chunks = 0;
    int cap = 0;
    size_t used = 0;
    for (int pos = 0; pos <= s->L; pos++)
        for (int i = 0; i < s->n_t; i++) {
            const tref *t = &s->t[i];
            if (t->pos != pos)
                continue;
            size_t row = (size_t)t->cols * sizeof(float);
            for (int64_t r0 = 0; r0 < t->rows;) {
                size_t room = budget > used ? budget - used : 0;
                int64_t k = split ? (int64_t)(room / row) : t->rows;
                if (k > t->rows - r0)
                    k = t->rows - r0;
                if ((k < 1 || (!split && used + (size_t)k * row > budget)) && used > 0) {
                    s->chunk_end = xrealloc(s->chunk_end, (size_t)(s->n_chunks + 1) * sizeof *s->chunk_end);
                    s->chunk_end[s->n_chunks++] = s->n_pieces;
                    used = 0;
                    continue;
                }
                if (k < 1)
                    k = 1;
                if (s->n_pieces == cap) {
                    cap = cap ? 2 * cap : 64;
                    s->pieces = xrealloc(s->pieces, (size_t)cap * sizeof *s->pieces);
                }
                s->pieces[s->n_pieces++] = (piece){i, r0, r0 + k, NULL};
                used += (size_t)k * row;
                r0 += k;
            }
        }
    s->chunk_end = xrealloc(s->chunk_end, (size_t)(s->n_chunks + 1) * sizeof *s->chunk_end);
    s->chunk_end[s->n_chunks++] = s->n_pieces;
}

/* Floats of chunk c's pieces. */
static size_t chunk_floats(const scorer *s, int c)
{
    size_t n = 0;
    for (int k = c ? s->chunk_end[c - 1] : 0; k < s->chunk_end[c]; k++)
        n += (size_t)((s->pieces[k].r1 - s->pieces[k].r0) * s->t[s->pieces[k].t].cols);
    return n;
}

typedef struct {
    const calib *c;
    int first, step;          /* the samples: first, first + step, ... */
    int n;                    /* S' of them */
    int *tokens, *targets;    /* (S', T) */
    bool fisher_chunks;       /* F held element-wise, chunk by chunk */
    bool e2_separable;        /* per-sample element2 reductions */
    bool batch;               /* a batch pass is needed */
    int chunks;
    progress pr;
    char what[96];
    int64_t done;
    score_summary *sum;
} runner;

static void run_pass(scorer *s, runner *r, backward_state *tr, const int *tokens, const int *targets, int B, bool act)
{
    double loss = model_loss_backward(s->m, tr, tokens, targets, grad_sink, act ? act_sink : NULL, s);
    if (s->pass == PASS_BATCH)
        r->sum->loss = loss;
    r->sum->passes++;
    r->done += (int64_t)B * r->c->seq_len;
    r->sum->tokens += (int64_t)B * r->c->seq_len;
    progress_update(&r->pr, r->done);
}

static void per_sample_passes(scorer *s, runner *r)
{
    int T = r->c->seq_len;
    backward_state *tr = backward_state_new(s->m, 1, T);
    for (int b = 0; b < r->n; b++) {
        snprintf(r->what, sizeof r->what, "chunk %d/%d, sample %d/%d", s->chunk + 1, r->chunks, b + 1, r->n);
        run_pass(s, r, tr, r->tokens + (size_t)b * T, r->targets + (size_t)b * T, 1, false);
    }
    backward_state_free(tr);
}

static void batch_pass(scorer *s, runner *r)
{
    backward_state *tr = backward_state_new(s->m, r->n, r->c->seq_len);
    snprintf(r->what, sizeof r->what, "chunk %d/%d, batch of %d", s->chunk + 1, r->chunks, r->n);
    s->pass = PASS_BATCH;
    run_pass(s, r, tr, r->tokens, r->targets, r->n, s->chunk == 0 && (s->stats & (1u << SCORE_ACTIVATIONS)));
    backward_state_free(tr);
}

static bool needs_fisher_chunks(unsigned stats, bool partial)
{
    return (stats & SCORE_FISHER) && (partial || (stats & (1u << SCORE_MIX)));
}

size_t score_default_fisher_memory(const model *m, int samples, int seq_len)
{
    size_t weights = 0;
    for (int i = 0; i < m->n_tensors; i++)
        weights += (size_t)m->tensors[i].numel * sizeof(float);
    backward_state *t = backward_state_new(m, samples, seq_len); /* its size; its pages are never touched */
    size_t train = backward_state_bytes(t);
    backward_state_free(t);
    size_t want = weights * 2 / 5, floor_ = (size_t)16 << 20;
    return want > train + floor_ ? want - train : floor_;
}

/* Decide the passes for o over the samples first, first + step, ... */
static void runner_init(runner *r, scorer *s, const calib *c, const score_options *o, bool partial,
                        score_summary *sum)
{
    memset(r, 0, sizeof *r);
    memset(sum, 0, sizeof *sum);
    sum->loss = NAN;
    r->sum = sum;
    r->c = c;
    r->first = o->shards > 0 ? o->shard : 0;
    r->step = o->shards > 0 ? o->shards : 1;
    r->n = calib_batch(c, r->first, r->step, &r->tokens, &r->targets);
    if (r->n < 1)
        die("shard %d of %d has no samples (the calibration has %d)", o->shard, o->shards, c->samples);
    unsigned st = s->stats;
    r->fisher_chunks = needs_fisher_chunks(st, partial);
    r->e2_separable = (st & SCORE_FISHER) && !r->fisher_chunks;
    r->batch = (st & ((1u << SCORE_VECTOR) | (1u << SCORE_ELEMENT1) | (1u << SCORE_ACTIVATIONS))) ||
               r->fisher_chunks || (partial && (st & GRAD_STATS));
    if (r->fisher_chunks)
        plan_chunks(s, o->fisher_memory ? o->fisher_memory : score_default_fisher_memory(s->m, r->n, c->seq_len),
                    !partial);
    else if (partial && r->batch)
        plan_chunks(s, SIZE_MAX, false); /* one chunk of whole tensors: the sums to write */
    r->chunks = s->n_pieces ? s->n_chunks : 1;
    sum->chunks = r->chunks;
    int64_t per = (int64_t)r->n * c->seq_len, total = 0;
    if (r->fisher_chunks)
        total = r->chunks * 2 * per;
    else
        total = (r->e2_separable ? per : 0) + (r->batch ? per : 0);
    s->n_samples = c->samples;
    s->targets = (double)r->n * (c->seq_len - 1);
    snprintf(r->what, sizeof r->what, "scoring");
    progress_start(&r->pr, r->what, "tok", total);
}

static void runner_free(runner *r)
{
    free(r->tokens);
    free(r->targets);
}

/* Every pass of r: per chunk the per-sample passes (F or separable element2),
 * then the batch pass. */
static void run_all(scorer *s, runner *r)
{
    double t0 = now_seconds();
    float *arena = NULL;
    if (r->fisher_chunks) {
        size_t most = 0;
        for (int c = 0; c < s->n_chunks; c++)
            most = chunk_floats(s, c) > most ? chunk_floats(s, c) : most;
        arena = xmalloc_aligned((most > 0 ? most : 1) * sizeof(float));
    }
    for (int c = 0; c < r->chunks; c++) {
        s->chunk = c;
        if (r->fisher_chunks) {
            size_t off = 0;
            for (int k = c ? s->chunk_end[c - 1] : 0; k < s->chunk_end[c]; k++) {
                piece *p = &s->pieces[k];
                p->f = arena + off;
                off += (size_t)((p->r1 - p->r0) * s->t[p->t].cols);
            }
            memset(arena, 0, off * sizeof(float));
            s->pass = PASS_FISHER;
            per_sample_passes(s, r);
        } else if (r->e2_separable) {
            s->pass = PASS_E2;
            per_sample_passes(s, r);
        }
        if (r->batch)
            batch_pass(s, r);
    }
    free(arena);
    r->sum->seconds = now_seconds() - t0;
    progress_end(&r->pr, r->done);
}

int score_chunks(const model *m, const group_set *gs, const score_options *o, int samples, int seq_len)
{
    bool partial = o->shards > 0;
    if (!needs_fisher_chunks(o->stats, partial))
        return 1;
    scorer s;
    scorer_init(&s, m, (group_set *)gs, o->stats, m->cfg.n_layers);
    int n_samples = partial ? (samples - o->shard + o->shards - 1) / o->shards : samples;
    plan_chunks(&s, o->fisher_memory ? o->fisher_memory : score_default_fisher_memory(m, n_samples, seq_len),
                !partial);
    int n = s.n_chunks;
    scorer_free(&s);
    return n;
}

/* ------------------------------------------------------------------ whole runs */

static void check_model(const model *m)
{
    if (!m->has_weights)
        die("%s: a bare config has no weights to score", m->source);
}

void score_run(const model *m, const calib *c, group_set *gs, const score_options *o, score_summary *sum)
{
    check_model(m);
    score_options whole = *o;
    whole.shards = 0;
    scorer s;
    scorer_init(&s, m, gs, o->stats, m->cfg.n_layers);
    for (int i = 0; i < s.n_t; i++)
        tref_shape_ok(&s, &s.t[i]);
    runner r;
    runner_init(&r, &s, c, &whole, false, sum);
    reduce_magnitudes(&s);
    run_all(&s, &r);
    finalize_stats(&s, o->stats & ((1u << NS) - 1), false);
    finalize_acts(&s); /* none unless asked for: a scores stream's old ones go */
    json_decref(gs->calibration);
    gs->calibration = calib_to_json(c);
    runner_free(&r);
    scorer_free(&s);
}

static void pack_stats_list(msgpack_packer *pk, unsigned mask)
{
    int n = 0;
    for (int k = 0; k < SCORE_STAT_COUNT; k++)
        n += (mask >> k) & 1;
    msgpack_pack_array(pk, (size_t)n);
    for (int k = 0; k < SCORE_STAT_COUNT; k++)
        if (mask & (1u << k))
            mp_pack_str(pk, stat_names[k]);
}

void score_write_partial(const model *m, const calib *c, group_set *gs, const score_options *o, const char *out,
                         int argc, char **argv, score_summary *sum)
{
    check_model(m);
    if (o->shards < 1 || o->shard < 0 || o->shard >= o->shards)
        die("score_write_partial: bad shard %d/%d", o->shard, o->shards);
    scorer s;
    scorer_init(&s, m, gs, o->stats, m->cfg.n_layers);
    for (int i = 0; i < s.n_t; i++)
        tref_shape_ok(&s, &s.t[i]);
    runner r;
    runner_init(&r, &s, c, o, true, sum);
    reduce_magnitudes(&s);
    finalize_stats(&s, o->stats & MAG_STATS, false);

    stream_writer w;
    stream_writer_open(&w, out);
    s.pw = &w;
    stream_write_header(&w, "partial", argc, argv, 5);
    msgpack_packer *pk = &w.pk;
    mp_pack_str(pk, "model");
    msgpack_pack_map(pk, 3);
    mp_pack_kv_str(pk, "fingerprint", gs->fingerprint);
    mp_pack_str(pk, "config");
    mp_pack_json(pk, gs->config);
    mp_pack_str(pk, "weights");
    gs->weights ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    mp_pack_str(pk, "calibration");
    json_t *cj = calib_to_json(c);
    mp_pack_json(pk, cj);
    json_decref(cj);
    mp_pack_str(pk, "stats");
    pack_stats_list(pk, o->stats);
    mp_pack_str(pk, "shard");
    msgpack_pack_map(pk, 3);
    mp_pack_kv_int(pk, "index", o->shard);
    mp_pack_kv_int(pk, "count", o->shards);
    mp_pack_str(pk, "samples");
    msgpack_pack_array(pk, (size_t)r.n);
    for (int k = o->shard; k < c->samples; k += o->shards)
        msgpack_pack_int(pk, k);
    mp_pack_kv_int(pk, "targets", (int64_t)s.targets);
    stream_end_record(&w);
    for (int i = 0; i < gs->n; i++)
        group_write_record(&w, &gs->g[i]);

    run_all(&s, &r);

    for (int i = 0; i < s.n_a; i++) {
        const act_acc *a = &s.a[i];
        stream_begin_record(&w, "act_sum", 5);
        mp_pack_kv_str(pk, "tensor", a->tensor);
        mp_pack_kv_int(pk, "tokens", a->tokens);
        mp_pack_kv_int(pk, "channels", a->I);
        stream_write_payload(&w, "data", a->sum, 2 * (size_t)a->I * sizeof(double));
    }
    stream_writer_close(&w);
    runner_free(&r);
    scorer_free(&s);
}

/* ------------------------------------------------------------------ merge */

typedef struct {
    stream_reader r;
    const char *path;
    int index, count;
    int64_t targets;
    msgpack_object rec;
} partial_in;

static int cmp_partial(const void *a, const void *b)
{
    return ((const partial_in *)a)->index - ((const partial_in *)b)->index;
}

static unsigned stats_from_header(stream_reader *r)
{
    const msgpack_object *o = mp_get(&r->header, "stats");
    if (!o || o->type != MSGPACK_OBJECT_ARRAY)
        stream_die(r, "header lacks the list of statistics");
    unsigned mask = 0;
    for (uint32_t i = 0; i < o->via.array.size; i++) {
        char *name = mp_strdup(&o->via.array.ptr[i]);
        int k = name ? score_stat_from_name(name) : -1;
        if (k < 0)
            stream_die(r, "unknown statistic '%s'", name ? name : "");
        mask |= 1u << k;
        free(name);
    }
    return mask;
}

/* Read every input's next record; all must be of the same type. Returns false at
 * the end of all of them. */
static bool next_all(partial_in *in, int n)
{
    bool more = stream_next(&in[0].r, &in[0].rec);
    for (int k = 1; k < n; k++)
        if (stream_next(&in[k].r, &in[k].rec) != more)
            stream_die(&in[k].r, "the partials differ in their records (this one %s than %s)",
                       more ? "ends earlier" : "goes on longer", in[0].path);
    return more;
}

/* The string value of key in every input's record must agree; returns in[0]'s. */
static char *same_str(partial_in *in, int n, const char *key)
{
    char *v = mp_strdup(mp_get(&in[0].rec, key));
    if (!v)
        stream_die(&in[0].r, "record %llu lacks '%s'", (unsigned long long)in[0].r.records, key);
    for (int k = 1; k < n; k++)
        if (!mp_is_str(mp_get(&in[k].rec, key), v))
            stream_die(&in[k].r, "record %llu: '%s' differs from %s's ('%s')", (unsigned long long)in[k].r.records,
                       key, in[0].path, v);
    return v;
}

/* Sum the float32 payloads (n floats) of every input into dst, in shard order. */
static void sum_payloads_f32(partial_in *in, int n, float *dst, float *buf, size_t count)
{
    for (int k = 0; k < n; k++) {
        if (!in[k].r.payload_key || in[k].r.payload_len != count * sizeof(float))
            stream_die(&in[k].r, "record %llu: payload is not %zu float32 values", (unsigned long long)in[k].r.records,
                       count);
        stream_read_payload(&in[k].r, k == 0 ? dst : buf, count * sizeof(float));
        if (k > 0)
            for (size_t i = 0; i < count; i++)
                dst[i] += buf[i];
    }
    for (size_t i = 0; i < count; i++)
        if (!isfinite(dst[i]))
            stream_die(&in[0].r, "record %llu: a NaN or infinite sum", (unsigned long long)in[0].r.records);
}

void score_merge(char *const *paths, int n, const char *label, group_set *gs)
{
    memset(gs, 0, sizeof *gs);
    partial_in *in = xcalloc((size_t)n, sizeof *in);
    unsigned mask = 0;
    for (int k = 0; k < n; k++) {
        partial_in *p = &in[k];
        p->path = paths[k];
        stream_reader_open(&p->r, paths[k], "partial");
        const msgpack_object *sh = mp_get(&p->r.header, "shard");
        int64_t idx, cnt;
        if (!mp_int(mp_get(sh, "index"), &idx) || !mp_int(mp_get(sh, "count"), &cnt) || cnt < 1 || idx < 0 ||
            idx >= cnt || !mp_int(mp_get(&p->r.header, "targets"), &p->targets))
            stream_die(&p->r, "header lacks a valid shard index, count or targets");
        p->index = (int)idx;
        p->count = (int)cnt;
        const msgpack_object *mo = mp_get(&p->r.header, "model");
        char *fp = mp_strdup(mp_get(mo, "fingerprint"));
        if (!fp || strlen(fp) != 16 || !mp_get(mo, "config"))
            stream_die(&p->r, "header lacks the model's fingerprint or config");
        unsigned mk = stats_from_header(&p->r);
        const msgpack_object *cal = mp_get(&p->r.header, "calibration");
        if (!cal)
            stream_die(&p->r, "header lacks the calibration");
        if (k == 0) {
            snprintf(gs->fingerprint, sizeof gs->fingerprint, "%s", fp);
            gs->config = mp_to_json(mp_get(mo, "config"));
            const msgpack_object *wt = mp_get(mo, "weights");
            gs->weights = !wt || (wt->type == MSGPACK_OBJECT_BOOLEAN && wt->via.boolean);
            gs->calibration = mp_to_json(cal);
            mask = mk;
        } else {
            if (strcmp(fp, gs->fingerprint))
                stream_die(&p->r, "made for model %s, but %s for model %s", fp, in[0].path, gs->fingerprint);
            json_t *cj = mp_to_json(cal);
            bool same = json_equal(cj, gs->calibration);
            json_decref(cj);
            if (!same)
                stream_die(&p->r, "another calibration than %s's (source, samples or windows differ)", in[0].path);
            if (mk != mask)
                stream_die(&p->r, "other statistics than %s's", in[0].path);
            if (p->count != in[0].count)
                stream_die(&p->r, "shard %d of %d, but %s is of %d", p->index, p->count, in[0].path, in[0].count);
        }
        free(fp);
    }
    qsort(in, (size_t)n, sizeof *in, cmp_partial);
    if (n != in[0].count)
        die("%s: %d partial%s given for %d shards", label, n, n == 1 ? "" : "s", in[0].count);
    for (int k = 0; k < n; k++)
        if (in[k].index != k)
            die("%s: shard %d is missing (another is given twice)", label, k);
    int64_t samples = 0, seq_len = 0, targets = 0;
    json_t *js = json_object_get(gs->calibration, "samples"), *jt = json_object_get(gs->calibration, "seq_len");
    samples = json_integer_value(js);
    seq_len = json_integer_value(jt);
    for (int k = 0; k < n; k++)
        targets += in[k].targets;
    if (samples < 1 || seq_len < 2 || targets != samples * (seq_len - 1))
        die("%s: the shards score %lld targets, the calibration has %lld samples of %lld tokens",
            label, (long long)targets, (long long)samples, (long long)seq_len);

    model_config cfg; /* read as every program reads a config: each architecture names its keys */
    config_from_json(&cfg, gs->config, in[0].path);
    int L = cfg.n_layers;
    config_free(&cfg);

    /* records, in lock step */
    scorer s;
    bool have_scorer = false;
    int cap = 0;
    float *gsum = NULL, *fsum = NULL, *buf = NULL;
    size_t cap_f = 0;
    tref *pending = NULL; /* a tensor whose wg arrived, waiting for its wfw */
    bool fisher = mask & SCORE_FISHER;
    unsigned grad_mask = mask & GRAD_STATS;
    while (next_all(in, n)) {
        char *type = same_str(in, n, "t");
        if (!strcmp(type, "group")) {
            if (have_scorer)
                stream_die(&in[0].r, "a group record after the sums");
            if (gs->n == cap) {
                cap = cap ? 2 * cap : 64;
                gs->g = xrealloc(gs->g, (size_t)cap * sizeof *gs->g);
            }
            group_read_record(&in[0].r, &in[0].rec, &gs->g[gs->n++]);
            for (int k = 1; k < n; k++) {
                int64_t id;
                if (!mp_int(mp_get(&in[k].rec, "id"), &id) || id != gs->g[gs->n - 1].id)
                    stream_die(&in[k].r, "its groups differ from %s's", in[0].path);
            }
        } else if (!strcmp(type, "sum")) {
            if (!have_scorer) {
                scorer_init(&s, NULL, gs, mask, L);
                have_scorer = true;
            }
            char *tensor = same_str(in, n, "tensor"), *q = same_str(in, n, "quantity");
            tref *t = find_tref(&s, tensor);
            const msgpack_object *sh = mp_get(&in[0].rec, "shape");
            int64_t RC[2], nv;
            if (!t || !sh || sh->type != MSGPACK_OBJECT_ARRAY || sh->via.array.size != 2 ||
                !mp_int(&sh->via.array.ptr[0], &RC[0]) || !mp_int(&sh->via.array.ptr[1], &RC[1]) || RC[0] < 1 ||
                RC[1] < 1 || (nv = tensor_shape_numel(2, RC)) < 0)
                stream_die(&in[0].r, "sum record for %s: a tensor no group names, or a bad shape", tensor);
            /* the shape sizes the buffers: its values must be in the stream first */
            size_t count = (size_t)nv;
            if (!in[0].r.payload_key || in[0].r.payload_len != count * sizeof(float))
                stream_die(&in[0].r, "record %llu: payload is not %zu float32 values", (unsigned long long)in[0].r.records,
                           count);
            int64_t R = RC[0], C = RC[1];
            if (t->rows < 0) {
                t->rows = R;
                t->cols = C;
                tref_shape_ok(&s, t);
            } else if (t->rows != R || t->cols != C) {
                stream_die(&in[0].r, "sum record for %s: shape %lldx%lld, then %lldx%lld", tensor, (long long)t->rows,
                           (long long)t->cols, (long long)R, (long long)C);
            }
            if (count > cap_f) {
                free(gsum);
                free(fsum);
                free(buf);
                gsum = xmalloc(count * sizeof(float));
                fsum = xmalloc(count * sizeof(float));
                buf = xmalloc(count * sizeof(float));
                cap_f = count;
            }
            if (!strcmp(q, "wg")) {
                if (pending || t->done)
                    stream_die(&in[0].r, "sum records out of order at %s", tensor);
                sum_payloads_f32(in, n, gsum, buf, count);
                pending = t;
            } else if (!strcmp(q, "wfw")) {
                if (pending != t || !fisher)
                    stream_die(&in[0].r, "sum records out of order at %s", tensor);
                sum_payloads_f32(in, n, fsum, buf, count);
            } else {
                stream_die(&in[0].r, "unknown quantity '%s'", q);
            }
            if (pending == t && (!fisher || !strcmp(q, "wfw"))) {
                reduce_tensor(&s, t, 0, t->rows, NULL, gsum, 1.0 / (double)targets, fisher ? fsum : NULL,
                              1.0 / (double)samples, false, grad_mask);
                t->done = true;
                pending = NULL;
            }
            free(tensor);
            free(q);
        } else if (!strcmp(type, "act_sum")) {
            if (!have_scorer) {
                scorer_init(&s, NULL, gs, mask, L);
                have_scorer = true;
            }
            char *tensor = same_str(in, n, "tensor");
            int64_t I;
            if (!mp_int(mp_get(&in[0].rec, "channels"), &I) || I < 1 || I > INT32_MAX)
                stream_die(&in[0].r, "act_sum record for %s: bad channels", tensor);
            act_acc *a = find_act(&s, tensor, I);
            double *b = xmalloc(2 * (size_t)I * sizeof(double));
            for (int k = 0; k < n; k++) {
                int64_t tok;
                if (!mp_int(mp_get(&in[k].rec, "tokens"), &tok) || tok < 0 || !in[k].r.payload_key ||
                    in[k].r.payload_len != 2 * (uint64_t)I * sizeof(double))
                    stream_die(&in[k].r, "act_sum record for %s: bad tokens or data", tensor);
                stream_read_payload(&in[k].r, b, 2 * (uint64_t)I * sizeof(double));
                for (int64_t i = 0; i < 2 * I; i++)
                    a->sum[i] += b[i];
                a->tokens += tok;
            }
            free(b);
            free(tensor);
        }
        free(type);
    }
    if (!gs->n)
        stream_die(&in[0].r, "the partials hold no groups: nothing to merge");
    if (!have_scorer)
        scorer_init(&s, NULL, gs, mask, L);
    if (pending)
        die("%s: %s has no Fisher sums", label, pending->name);
    for (int i = 0; i < s.n_t && grad_mask; i++)
        if (!s.t[i].done)
            die("%s: the partials have no sums for %s", label, s.t[i].name);
    finalize_stats(&s, grad_mask, true);
    if (mask & (1u << SCORE_ACTIVATIONS))
        finalize_acts(&s);
    scorer_free(&s);
    for (int k = 0; k < n; k++)
        stream_reader_close(&in[k].r);
    free(in);
    free(gsum);
    free(fsum);
    free(buf);
}
