/* score_reduce.c - the statistics' accumulators (score_reduce.h). */
#include "prune/score_reduce.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/parallel.h"
#include "base/util.h"

static int layer_of_name(const char *name)
{
    const char *rest;
    return model_layer_of(name, &rest);
}

int scorer_position(const scorer *s, int layer) { return layer >= 0 ? s->L - 1 - layer : s->L; }

static int cmp_tref(const void *a, const void *b) { return strcmp(((const tref *)a)->name, ((const tref *)b)->name); }

tref *scorer_find_tref(const scorer *s, const char *name)
{
    tref key = {.name = (char *)name};
    return s->n_t ? bsearch(&key, s->t, (size_t)s->n_t, sizeof *s->t, cmp_tref) : NULL;
}

void scorer_init(scorer *s, const model *m, group_set *gs, unsigned stats, int L)
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
        t->pos = scorer_position(s, t->layer);
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

void scorer_check_shape(scorer *s, const tref *t)
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
        s->scratch = xmalloc(RED_COUNT * 2 * NS * (size_t)d * sizeof(double));
    }
}

void scorer_free(scorer *s)
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

/* One call's inputs, shared by the pieces parallel_for hands out. */
typedef struct {
    const reduction *red;
    score_rows in;
    int64_t C;
    bool cols_too; /* reduce_rows adds into ch[1] as well */
} reduce_job;

/* The second-order term of n elements, b = sf w^2 f, into out (f squared first
 * when it is a gradient). */
static void second_order(double *out, const float *w, const float *f, double sf, bool f_is_grad, int64_t n)
{
    if (f_is_grad)
        for (int64_t c = 0; c < n; c++)
            out[c] = sf * w[c] * w[c] * ((double)f[c] * f[c]);
    else
        for (int64_t c = 0; c < n; c++)
            out[c] = sf * w[c] * w[c] * f[c];
}

/* For each active statistic s, its value at element (r, c) into v[s][c - c0], for
 * columns [c0, c1) of row r: of the first-order term a = sg w g and the
 * second-order one b (second_order), w the weight (1 without one), g and f 0
 * where there are none. wbuf holds 2 (c1 - c0) floats, the second half zeros:
 * w is widened into the first when it comes as a tensor. Each statistic has a
 * loop of its own, without branches, so that it vectorizes. */
static void row_values(const reduce_job *j, int64_t r, int64_t c0, int64_t c1, float *wbuf, double *const v[NS])
{
    const reduction *red = j->red;
    const score_rows *in = &j->in;
    int64_t n = c1 - c0, at = (r - in->r0) * j->C + c0;
    const float *w = wbuf, *zero = wbuf + n;
    const float *g = in->g ? in->g + at : zero, *f = in->f ? in->f + at : zero;
    double sg = in->sg;
    if (in->w)
        w = in->w + at;
    else if (red->w)
        tensor_get_f32(red->w, r * j->C + c0, n, wbuf);
    else
        for (int64_t c = 0; c < n; c++)
            wbuf[c] = 1.0f;
    for (int k = 0; k < red->na; k++) {
        double *out = v[red->act[k]];
        switch (red->act[k]) {
        case SCORE_VECTOR:
            for (int64_t c = 0; c < n; c++)
                out[c] = sg * w[c] * g[c];
            break;
        case SCORE_ELEMENT1:
            for (int64_t c = 0; c < n; c++)
                out[c] = fabs(sg * w[c] * g[c]);
            break;
        case SCORE_ELEMENT2:
            second_order(out, w, f, in->sf, in->f_is_grad, n);
            break;
        case SCORE_MIX:
            second_order(out, w, f, in->sf, in->f_is_grad, n);
            for (int64_t c = 0; c < n; c++)
                out[c] = fabs(sg * w[c] * g[c] - 0.5 * out[c]);
            break;
        case SCORE_L1:
            for (int64_t c = 0; c < n; c++)
                out[c] = fabs((double)w[c]);
            break;
        default: /* SCORE_L2 */
            for (int64_t c = 0; c < n; c++)
                out[c] = (double)w[c] * w[c];
        }
    }
}

/* v[s] for each active statistic: n values each, out of one block (returned,
 * for free). */
static double *values_alloc(const reduction *red, int64_t n, double *v[NS])
{
    double *block = xmalloc((size_t)red->na * (size_t)n * sizeof(double));
    for (int k = 0; k < red->na; k++)
        v[red->act[k]] = block + (size_t)k * (size_t)n;
    return block;
}

/* Rows summed side by side: each row's sum is a chain of additions in column
 * order (the same bits however the rows are cut), and a chain waits on each
 * addition; four chains at once keep the adder busy. */
enum { ROW_BLOCK = 4 };

/* The sums of ROW_BLOCK rows of n values each, every one in its own order. */
static void sum_rows(double sum[ROW_BLOCK], double *const v[ROW_BLOCK], int64_t n)
{
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (int64_t c = 0; c < n; c++) {
        s0 += v[0][c];
        s1 += v[1][c];
        s2 += v[2][c];
        s3 += v[3][c];
    }
    sum[0] = s0, sum[1] = s1, sum[2] = s2, sum[3] = s3;
}

/* Rows [r0 + begin, r0 + end): each row's sum over its columns into ch[0]; with
 * cols_too (one piece, all rows) each column's sum, in row order, into ch[1]. */
static void reduce_rows(void *ctx, int64_t begin, int64_t end)
{
    const reduce_job *j = ctx;
    const reduction *red = j->red;
    int64_t C = j->C, r0 = j->in.r0;
    float *wbuf = xcalloc(2 * (size_t)C, sizeof(float));
    double *v[ROW_BLOCK][NS], *block[ROW_BLOCK];
    for (int b = 0; b < ROW_BLOCK; b++)
        block[b] = values_alloc(red, C, v[b]);
    for (int64_t r = r0 + begin; r < r0 + end; r += ROW_BLOCK) {
        int rows = r0 + end - r < ROW_BLOCK ? (int)(r0 + end - r) : ROW_BLOCK;
        for (int b = 0; b < rows; b++)
            row_values(j, r + b, 0, C, wbuf, v[b]);
        for (int k = 0; k < red->na; k++) {
            int s = red->act[k];
            double sum[ROW_BLOCK] = {0};
            if (rows == ROW_BLOCK) {
                sum_rows(sum, (double *const[ROW_BLOCK]){v[0][s], v[1][s], v[2][s], v[3][s]}, C);
            } else {
                for (int b = 0; b < rows; b++)
                    for (int64_t c = 0; c < C; c++)
                        sum[b] += v[b][s][c];
            }
            for (int b = 0; b < rows; b++) {
                red->ch[0][s][r + b] = sum[b];
                if (j->cols_too)
                    for (int64_t c = 0; c < C; c++)
                        red->ch[1][s][c] += v[b][s][c];
            }
        }
    }
    for (int b = 0; b < ROW_BLOCK; b++)
        free(block[b]);
    free(wbuf);
}

/* Columns [begin, end): each column's sum over the rows, in row order, added into ch[1]. */
static void reduce_cols(void *ctx, int64_t begin, int64_t end)
{
    const reduce_job *j = ctx;
    const reduction *red = j->red;
    int64_t n = end - begin;
    float *wbuf = xcalloc(2 * (size_t)n, sizeof(float));
    double *v[NS];
    double *block = values_alloc(red, n, v);
    for (int64_t r = j->in.r0; r < j->in.r1; r++) {
        row_values(j, r, begin, end, wbuf, v);
        for (int k = 0; k < red->na; k++) {
            double *dst = red->ch[1][red->act[k]] + begin;
            for (int64_t c = 0; c < n; c++)
                dst[c] += v[red->act[k]][c];
        }
    }
    free(block);
    free(wbuf);
}

void scorer_reduce_begin(scorer *s, int k, const tref *t, const tensor *w, unsigned mask)
{
    reduction *red = &s->red[k];
    *red = (reduction){.t = t, .w = w};
    for (int q = 0; q < NS; q++)
        if (mask & (1u << q))
            red->act[red->na++] = q;
    for (int r = 0; r < t->n_refs; r++)
        red->ax[s->gs->g[t->refs[r].g].members[t->refs[r].k].axis] = true;
    for (int a = 0; a < 2; a++)
        for (int q = 0; q < NS; q++)
            red->ch[a][q] = s->scratch + (((size_t)k * 2 + (size_t)a) * NS + (size_t)q) * (size_t)s->maxdim;
    /* zeros where no row comes; the columns' sums are added into over the calls */
    for (int q = 0; q < red->na; q++) {
        if (red->ax[0])
            memset(red->ch[0][red->act[q]], 0, (size_t)t->rows * sizeof(double));
        if (red->ax[1])
            memset(red->ch[1][red->act[q]], 0, (size_t)t->cols * sizeof(double));
    }
}

/* One axis: a pass cut into pieces that own their outputs (a row's sum, a
 * column's), each sum taken in the same order however the range is cut. Both
 * axes: one pass on this thread, the values made once. */
void scorer_reduce_rows(scorer *s, int k, const score_rows *rows)
{
    const reduction *red = &s->red[k];
    if (!red->na)
        return;
    reduce_job j = {red, *rows, red->t->cols, red->ax[0] && red->ax[1]};
    int64_t n = rows->r1 - rows->r0;
    if (red->ax[0] && red->ax[1])
        reduce_rows(&j, 0, n);
    else if (red->ax[0])
        parallel_for(n, 8, reduce_rows, &j);
    else if (red->ax[1])
        parallel_for(j.C, 256, reduce_cols, &j);
}

void scorer_reduce_end(scorer *s, int k)
{
    const reduction *red = &s->red[k];
    const tref *t = red->t;
    for (int r = 0; r < t->n_refs; r++) {
        const group *gr = &s->gs->g[t->refs[r].g];
        const group_member *mb = &gr->members[t->refs[r].k];
        int64_t U = gr->units;
        double *dst = s->acc[t->refs[r].g] + (size_t)t->refs[r].k * NS * (size_t)U; /* (NS, U) */
        for (int q = 0; q < red->na; q++) {
            int st = red->act[q];
            const double *v = red->ch[mb->axis][st];
            for (int64_t u = 0; u < U; u++) {
                int64_t a = mb->start + u * mb->stride;
                double sum = 0;
                for (int64_t c = a; c < a + mb->width; c++)
                    sum += st == SCORE_VECTOR ? fabs(v[c]) : v[c];
                dst[(size_t)st * U + u] += sum;
            }
        }
    }
}

void scorer_reduce(scorer *s, const tref *t, const tensor *w, unsigned mask, const score_rows *rows)
{
    scorer_reduce_begin(s, RED_WHOLE, t, w, mask);
    scorer_reduce_rows(s, RED_WHOLE, rows);
    scorer_reduce_end(s, RED_WHOLE);
}

void scorer_finalize_stats(scorer *s, unsigned mask, bool keep)
{
    for (int gi = 0; gi < s->gs->n; gi++) {
        group *g = &s->gs->g[gi];
        int64_t U = g->units, M = g->n_members;
        group_stat *st = xcalloc(NS, sizeof *st);
        int n = 0;
        for (int k = 0; k < NS; k++) {
            const group_stat *old = keep ? group_find_stat(g, score_stat_name(k)) : NULL;
            if (!(mask & (1u << k)) && !old)
                continue;
            st[n].name = xstrdup(score_stat_name(k));
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

act_acc *scorer_find_act(scorer *s, const char *tensor, int64_t I)
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

void scorer_finalize_acts(scorer *s)
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
