/* ablate.c - the loss change of removing each unit (masking), and Block
 * Influence of layers (ablate.h).
 *
 * Letters: S samples, T tokens per sample, N = S*T rows, D hidden, V vocabulary,
 * U units of a group, M members of a group. */
#include "prune/ablate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/progress.h"
#include "base/util.h"
#include "compute/forward.h"
#include "prune/prune.h"

/* The batch of every sample and a state sized for it. */
typedef struct {
    int S, T;
    int *tokens, *targets; /* (S, T) */
    forward_state st;
} batch;

static void batch_init(batch *b, const model *m, const calib *c)
{
    b->S = calib_batch(c, 0, 1, &b->tokens, &b->targets);
    b->T = c->seq_len;
    if (b->S < 1)
        die("%s: the calibration has no samples", c->source);
    forward_state_init(&b->st, m, b->S, b->T);
}

static void batch_free(batch *b)
{
    forward_state_free(&b->st);
    free(b->tokens);
    free(b->targets);
}

static double batch_loss(const model *m, batch *b)
{
    model_forward(m, &b->st, b->tokens);
    double sum = 0;
    int64_t n = 0;
    nll_accumulate(b->st.logits, b->targets, b->S * b->T, m->cfg.vocab, &sum, &n);
    return n > 0 ? sum / (double)n : NAN;
}

double ablate_loss(const model *m, const calib *c)
{
    batch b;
    batch_init(&b, m, c);
    double loss = batch_loss(m, &b);
    batch_free(&b);
    return loss;
}

void group_set_unit_stat(group *g, const char *name, const double *per_unit)
{
    group_stat *st = NULL;
    for (int i = 0; i < g->n_stats && !st; i++)
        if (!strcmp(g->stats[i].name, name))
            st = &g->stats[i];
    if (!st) {
        g->stats = xrealloc(g->stats, (size_t)(g->n_stats + 1) * sizeof *g->stats);
        st = &g->stats[g->n_stats++];
        st->name = xstrdup(name);
        st->values = NULL;
    }
    free(st->values);
    int64_t U = g->units, M = g->n_members;
    st->values = xmalloc((size_t)(M * U > 0 ? M * U : 1) * sizeof(float)); /* (M, U) */
    for (int64_t k = 0; k < M; k++)
        for (int64_t u = 0; u < U; u++)
            st->values[k * U + u] = (float)per_unit[u];
}

/* The values a masked unit had, in the order they were read (member by member,
 * row by row), and room for one run of zeros after them. */
typedef struct {
    float *saved;
    size_t n, cap;
} stash;

/* Zero (save = true, keeping the values in sv) or restore (save = false) unit u
 * of every member of g. */
static void mask_unit(model *m, const group *g, int64_t u, stash *sv, bool save)
{
    if (save)
        sv->n = 0;
    size_t at = 0;
    for (int k = 0; k < g->n_members; k++) {
        const group_member *mb = &g->members[k];
        tensor *t = model_tensor(m, mb->tensor);
        if (!t)
            die("%s: group %d names tensor %s, which the model lacks", m->source, g->id, mb->tensor);
        int64_t rows = t->shape[0], cols = t->ndim == 2 ? t->shape[1] : 1;
        int64_t a = mb->start + u * mb->stride;
        int64_t r0 = mb->axis == 0 ? a : 0, r1 = mb->axis == 0 ? a + mb->width : rows;
        int64_t c0 = mb->axis == 1 ? a : 0, c1 = mb->axis == 1 ? a + mb->width : cols;
        if (r1 > rows || c1 > cols)
            die("%s: group %d: unit %lld is outside %s", m->source, g->id, (long long)u, t->name);
        int64_t w = c1 - c0; /* a run of w values per row */
        size_t need = (size_t)((r1 - r0) * w);
        if (save && sv->n + need + (size_t)w > sv->cap) {
            sv->cap = 2 * (sv->n + need + (size_t)w);
            sv->saved = xrealloc(sv->saved, sv->cap * sizeof *sv->saved);
        }
        for (int64_t r = r0; r < r1; r++) {
            if (save) {
                tensor_get_f32(t, r * cols + c0, w, sv->saved + sv->n);
                sv->n += (size_t)w;
                memset(sv->saved + sv->n, 0, (size_t)w * sizeof *sv->saved); /* w zeros past the end */
                tensor_set_f32(t, r * cols + c0, w, sv->saved + sv->n);
            } else {
                tensor_set_f32(t, r * cols + c0, w, sv->saved + at);
                at += (size_t)w;
            }
        }
    }
}

typedef struct {
    double key;
    int64_t u;
} keyed;

static int cmp_keyed(const void *a, const void *b)
{
    const keyed *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return (x->u > y->u) - (x->u < y->u);
}

/* The units of g to ablate (ascending), their count returned. */
static int64_t chosen_units(const group *g, const ablate_options *o, int64_t *units)
{
    int64_t U = g->units;
    if (o->per_group <= 0 || o->per_group >= U) {
        for (int64_t u = 0; u < U; u++)
            units[u] = u;
        return U;
    }
    keyed *k = xmalloc((size_t)U * sizeof *k);
    for (int64_t u = 0; u < U; u++)
        k[u] = (keyed){prune_random_unit(o->seed, g->id, u), u};
    qsort(k, (size_t)U, sizeof *k, cmp_keyed);
    int64_t n = o->per_group;
    for (int64_t i = 0; i < n; i++)
        units[i] = k[i].u;
    free(k);
    for (int64_t i = 1; i < n; i++) /* insertion sort: n is small */
        for (int64_t j = i; j > 0 && units[j - 1] > units[j]; j--) {
            int64_t x = units[j];
            units[j] = units[j - 1];
            units[j - 1] = x;
        }
    return n;
}

void ablate_run(model *m, const calib *c, group_set *gs, const ablate_options *o, ablate_summary *sum)
{
    if (!m->has_weights)
        die("%s: a bare config has no weights to ablate", m->source);
    double t0 = now_seconds();
    memset(sum, 0, sizeof *sum);
    batch b;
    batch_init(&b, m, c);
    double base = batch_loss(m, &b);
    sum->base_loss = base;
    sum->passes = 1;
    int64_t total = 0, done = 0;
    for (int gi = 0; gi < gs->n; gi++) {
        int64_t U = gs->g[gi].units;
        total += o->per_group > 0 && o->per_group < U ? o->per_group : U;
    }
    progress pr;
    progress_start(&pr, "ablating", "units", total);
    stash sv = {0};
    for (int gi = 0; gi < gs->n; gi++) {
        group *g = &gs->g[gi];
        int64_t U = g->units;
        double *delta = xmalloc((size_t)(U > 0 ? U : 1) * sizeof *delta);   /* (U) */
        int64_t *units = xmalloc((size_t)(U > 0 ? U : 1) * sizeof *units); /* (U) */
        double *flag = xcalloc((size_t)(U > 0 ? U : 1), sizeof *flag);     /* (U) */
        for (int64_t u = 0; u < U; u++)
            delta[u] = 0;
        int64_t n = chosen_units(g, o, units);
        for (int64_t i = 0; i < n; i++) {
            mask_unit(m, g, units[i], &sv, true);
            delta[units[i]] = batch_loss(m, &b) - base;
            mask_unit(m, g, units[i], &sv, false);
            flag[units[i]] = 1;
            progress_update(&pr, ++done);
        }
        sum->passes += n;
        sum->units += n;
        group_set_unit_stat(g, "ablation", delta);
        if (n < U)
            group_set_unit_stat(g, "ablated", flag);
        free(flag);
        free(delta);
        free(units);
    }
    progress_end(&pr, done);
    free(sv.saved);
    batch_free(&b);
    sum->seconds = now_seconds() - t0;
}

void ablate_influence(const model *m, const calib *c, group_set *gs)
{
    if (!m->has_weights)
        die("%s: a bare config has no weights to run", m->source);
    int L = m->cfg.n_layers;
    bool any = false;
    for (int gi = 0; gi < gs->n; gi++)
        any |= gs->g[gi].kind == GROUP_LAYER;
    if (!any)
        return;
    batch b;
    batch_init(&b, m, c);
    int64_t N = (int64_t)b.S * b.T, D = m->cfg.dim;
    float *prev = xmalloc((size_t)(N * D) * sizeof *prev); /* (N, D) residual entering layer l */
    double *bi = xcalloc((size_t)L, sizeof *bi);           /* (L) */
    /* the residual stream after the first l layers: the forward of a model cut
     * after l layers (the same weights) leaves it in st.x */
    model cut = *m;
    for (int l = 0; l <= L; l++) {
        cut.cfg.n_layers = l;
        model_forward(&cut, &b.st, b.tokens);
        if (l > 0) {
            double s = 0;
            for (int64_t i = 0; i < N; i++) {
                const float *x = prev + i * D, *y = b.st.x + i * D;
                double xy = 0, xx = 0, yy = 0;
                for (int64_t d = 0; d < D; d++) {
                    xy += (double)x[d] * y[d];
                    xx += (double)x[d] * x[d];
                    yy += (double)y[d] * y[d];
                }
                s += xx > 0 && yy > 0 ? xy / sqrt(xx * yy) : 1.0;
            }
            bi[l - 1] = 1.0 - s / (double)N;
        }
        memcpy(prev, b.st.x, (size_t)(N * D) * sizeof *prev);
    }
    for (int gi = 0; gi < gs->n; gi++) {
        group *g = &gs->g[gi];
        if (g->kind == GROUP_LAYER && g->layer >= 0 && g->layer < L && g->units == 1)
            group_set_unit_stat(g, "influence", &bi[g->layer]);
    }
    free(bi);
    free(prev);
    batch_free(&b);
}
