/* prune_importance.c - the importance of every unit of a group by a criterion
 * (prune.h: prune_importance).
 *
 * Letters: U units of a group, M members of a group.
 *
 * A group's unit u covers, in each member, the indices [start + u*stride,
 * start + u*stride + width) along the member's axis (groups.h). A member's
 * "channel" is one index along that axis; the magnitude criteria reduce each
 * channel over the other axis (l1: sum of |w|, l2: sum of w^2; a vector has one
 * element per channel), then sum over the unit's channels, then combine the
 * members with the aggregate. */
#include "prune/prune.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "base/util.h"

/* Uniform in [0, 1), a function of (seed, group id, unit) only. */
double prune_random_unit(uint64_t seed, int id, int64_t u)
{
    uint64_t x = rng_hash(rng_hash(rng_hash(seed) ^ (uint64_t)(uint32_t)id) ^ (uint64_t)u);
    return (double)(x >> 11) * 0x1.0p-53;
}

/* Per-unit l1 or l2 of one member (vals: U values), from the tensor's data. */
static void member_magnitude(const model *m, const group *g, const group_member *mb, bool square, double *vals)
{
    const tensor *t = model_tensor(m, mb->tensor);
    if (!t)
        die("%s: group %d names tensor %s, which the model lacks", m->source, g->id, mb->tensor);
    int64_t rows = t->shape[0], cols = t->ndim == 2 ? t->shape[1] : 1;
    int64_t n = mb->axis == 0 ? rows : cols;
    double *ch = xcalloc((size_t)n, sizeof *ch); /* (n) per-channel value */
    float *w = xmalloc((size_t)cols * sizeof *w); /* (cols) one row */
    if (mb->axis == 0) {
        for (int64_t r = 0; r < rows; r++) {
            tensor_get_f32(t, r * cols, cols, w);
            double s = 0;
            for (int64_t c = 0; c < cols; c++)
                s += square ? (double)w[c] * w[c] : fabs((double)w[c]);
            ch[r] = s;
        }
    } else {
        for (int64_t r = 0; r < rows; r++) {
            tensor_get_f32(t, r * cols, cols, w);
            for (int64_t c = 0; c < cols; c++)
                ch[c] += square ? (double)w[c] * w[c] : fabs((double)w[c]);
        }
    }
    free(w);
    for (int64_t u = 0; u < g->units; u++) {
        double s = 0;
        int64_t a = mb->start + u * mb->stride;
        for (int64_t c = a; c < a + mb->width && c < n; c++)
            s += ch[c];
        vals[u] = s;
    }
    free(ch);
}

/* flap or wanda of one member (vals: U values); false when the member is not
 * the input side of a linear map with activation statistics. */
static bool member_activation(const model *m, const group_set *gs, const group *g, const group_member *mb,
                              bool flap, double *vals)
{
    const act_stat *a = gs && mb->axis == 1 ? group_set_find_act(gs, mb->tensor) : NULL;
    if (!a)
        return false;
    const tensor *t = model_tensor(m, mb->tensor);
    if (!t)
        die("%s: group %d names tensor %s, which the model lacks", m->source, g->id, mb->tensor);
    int64_t rows = t->shape[0], cols = t->shape[1];
    if (a->channels != cols)
        die("%s: the activations of %s have %lld channels, the tensor %lld columns", m->source, mb->tensor,
            (long long)a->channels, (long long)cols);
    double *ch = xcalloc((size_t)cols, sizeof *ch); /* (cols) sum_r W^2 or |W| */
    float *row = xmalloc((size_t)cols * sizeof *row); /* (cols) */
    for (int64_t r = 0; r < rows; r++) {
        tensor_get_f32(t, r * cols, cols, row);
        for (int64_t c = 0; c < cols; c++) {
            double w = row[c];
            ch[c] += flap ? w * w : fabs(w);
        }
    }
    free(row);
    for (int64_t u = 0; u < g->units; u++) {
        double s = 0;
        int64_t a0 = mb->start + u * mb->stride;
        for (int64_t c = a0; c < a0 + mb->width && c < cols; c++)
            s += ch[c] * (flap ? (double)a->var[c] : sqrt((double)a->sqnorm[c]));
        vals[u] = s;
    }
    free(ch);
    return true;
}

bool prune_criterion_serves(const model *m, const group_set *gs, const group *g, enum prune_criterion c)
{
    switch (c) {
    case PRUNE_CRIT_RANDOM: return true;
    case PRUNE_CRIT_L1:
    case PRUNE_CRIT_L2: return m->has_weights || group_find_stat(g, prune_criterion_name(c));
    case PRUNE_CRIT_FLAP:
    case PRUNE_CRIT_WANDA:
        if (!m->has_weights || !gs)
            return false;
        for (int k = 0; k < g->n_members; k++)
            if (g->members[k].axis == 1 && group_set_find_act(gs, g->members[k].tensor))
                return true;
        return false;
    case PRUNE_CRIT_ABLATION: {
        const group_stat *flag = group_find_stat(g, "ablated");
        for (int64_t u = 0; flag && u < g->units; u++)
            if (flag->values[u] == 0)
                return false;
        return group_find_stat(g, "ablation") != NULL;
    }
    case PRUNE_CRIT_DEFAULT:
    case PRUNE_CRIT_MANUAL:
    case PRUNE_CRIT_COUNT: return false;
    default: return group_find_stat(g, prune_criterion_name(c)) != NULL;
    }
}

void prune_importance(const model *m, const group_set *gs, const group *g, enum prune_criterion criterion,
                      enum prune_aggregate agg, uint64_t seed, const char *stream_name, double *imp)
{
    int64_t U = g->units;
    int M = g->n_members;
    const char *name = prune_criterion_name(criterion);
    if (criterion == PRUNE_CRIT_RANDOM) {
        for (int64_t u = 0; u < U; u++)
            imp[u] = prune_random_unit(seed, g->id, u);
        return;
    }
    double *vals = xmalloc((size_t)(M > 0 ? M : 1) * (size_t)(U > 0 ? U : 1) * sizeof *vals); /* (M, U) */
    const group_stat *st = group_find_stat(g, name);
    if (prune_criterion_is_activation(criterion)) {
        if (!m->has_weights)
            die("%s: a bare config has no weights to compute '%s' from", m->source, name);
        int k = 0;
        for (int i = 0; i < M; i++)
            if (member_activation(m, gs, g, &g->members[i], criterion == PRUNE_CRIT_FLAP, vals + (size_t)k * U))
                k++;
        if (k == 0)
            die("%s: group %d (%s, layer %d) has no member whose input has activation statistics ('%s' needs a "
                "scores stream of pare-score with activations; it ranks attn, ffn and hidden units)",
                stream_name, g->id, group_kind_name(g->kind), g->layer, name);
        M = k; /* the members with activations, combined below */
    } else if (st && prune_criterion_is_per_unit(criterion)) {
        const group_stat *flag = group_find_stat(g, "ablated");
        for (int64_t u = 0; u < U; u++) {
            if (flag && flag->values[u] == 0)
                die("%s: group %d (%s, layer %d): unit %lld was not ablated (the stream ablated a sample of each "
                    "group's units: enough to check a criterion, not to prune by)",
                    stream_name, g->id, group_kind_name(g->kind), g->layer, (long long)u);
            vals[u] = st->values[u];
        }
        M = 1; /* one value per unit: no aggregate */
    } else if (st) {
        for (int64_t i = 0; i < (int64_t)M * U; i++)
            vals[i] = st->values[i];
    } else if (prune_criterion_is_magnitude(criterion)) {
        if (!m->has_weights)
            die("%s: a bare config has no weights to compute '%s' from", m->source, name);
        for (int k = 0; k < M; k++)
            member_magnitude(m, g, &g->members[k], criterion == PRUNE_CRIT_L2, vals + (size_t)k * U);
    } else {
        die("%s: group %d has no '%s' statistic (pare-score computes it; l1, l2 and random need no scores)",
            stream_name, g->id, name);
    }
    for (int64_t u = 0; u < U; u++) {
        double r = M > 0 ? vals[u] : 0;
        for (int k = 1; k < M; k++) {
            double v = vals[(size_t)k * U + u];
            switch (agg) {
            case PRUNE_AGG_SUM:
            case PRUNE_AGG_MEAN: r += v; break;
            case PRUNE_AGG_MAX: r = v > r ? v : r; break;
            case PRUNE_AGG_PROD: r *= v; break;
            case PRUNE_AGG_FIRST: break;
            }
        }
        if (agg == PRUNE_AGG_MEAN && M > 0)
            r /= M;
        if (!isfinite(r))
            die("%s: group %d (%s, layer %d) has a non-finite '%s' importance for unit %lld", stream_name, g->id,
                group_kind_name(g->kind), g->layer, name, (long long)u);
        imp[u] = r;
    }
    free(vals);
}

