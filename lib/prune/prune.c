/* prune.c - the plan (which units go), its table and provenance, and parameter
 * and MAC counts; importance per unit in prune_importance.c, slicing and
 * masking in prune_apply.c.
 *
 * Letters: D hidden size, L layers, V vocabulary, hd head dim, H query heads,
 * KV key/value heads, F MLP width (per layer), T tokens, U units of a group, M
 * members of a group.
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

/* ------------------------------------------------------------------ names */

static const char *const mode_names[PRUNE_MODE_COUNT] = {"block", "channel", "layer"};
static const char *const agg_names[PRUNE_AGG_COUNT] = {"sum", "mean", "max", "prod", "first"};
static const char *const crit_names[PRUNE_CRIT_COUNT] = {
    [PRUNE_CRIT_DEFAULT] = "default", [PRUNE_CRIT_VECTOR] = "vector", [PRUNE_CRIT_ELEMENT1] = "element1",
    [PRUNE_CRIT_ELEMENT2] = "element2", [PRUNE_CRIT_MIX] = "mix",     [PRUNE_CRIT_FLAP] = "flap",
    [PRUNE_CRIT_WANDA] = "wanda",       [PRUNE_CRIT_L1] = "l1",       [PRUNE_CRIT_L2] = "l2",
    [PRUNE_CRIT_RANDOM] = "random",     [PRUNE_CRIT_ABLATION] = "ablation", [PRUNE_CRIT_INFLUENCE] = "influence",
    [PRUNE_CRIT_MANUAL] = "manual"};
static const char *const select_names[PRUNE_SELECT_COUNT] = {"local", "global", "adaptive"};

/* Index of s in names[lo, hi), or -1. */
static int name_index(const char *const *names, int lo, int hi, const char *s)
{
    for (int i = lo; i < hi; i++)
        if (!strcmp(s, names[i]))
            return i;
    return -1;
}

const char *prune_mode_name(enum prune_mode m) { return mode_names[m]; }
int prune_mode_from_name(const char *s) { return name_index(mode_names, 0, PRUNE_MODE_COUNT, s); }
const char *prune_aggregate_name(enum prune_aggregate a) { return agg_names[a]; }
int prune_aggregate_from_name(const char *s) { return name_index(agg_names, 0, PRUNE_AGG_COUNT, s); }
const char *prune_criterion_name(enum prune_criterion c) { return crit_names[c]; }
int prune_criterion_from_name(const char *s)
{
    return name_index(crit_names, PRUNE_CRIT_VECTOR, PRUNE_CRIT_INFLUENCE + 1, s);
}
const char *prune_select_name(enum prune_select s) { return select_names[s]; }
int prune_select_from_name(const char *s) { return name_index(select_names, 0, PRUNE_SELECT_COUNT, s); }


/* ------------------------------------------------------------------ counts */

/* Every weight of layer l the table and c imply: its parameters (all of them) or
 * its matrices' (a product per token each). */
static int64_t layer_sum(const model_config *c, int l, bool matrices_only)
{
    int64_t n = 0;
    for (int id = 0; id < LW_COUNT; id++) {
        int64_t shape[2];
        int ndim = layer_weight_shape(c, l, id, shape);
        if (ndim == 2 || (ndim == 1 && !matrices_only))
            n += shape[0] * (ndim == 2 ? shape[1] : 1);
    }
    return n;
}

int64_t prune_layer_params(const model_config *c, int l) { return layer_sum(c, l, false); }

int64_t prune_layer_macs(const model_config *c, int l, int T)
{
    int64_t n = (int64_t)T * layer_sum(c, l, true);
    n += 2 * (int64_t)c->n_heads[l] * T * T * c->head_dim;
    return n;
}

int64_t prune_macs(const model_config *c, int T)
{
    int64_t n = (int64_t)T * c->dim * c->vocab;
    for (int l = 0; l < c->n_layers; l++)
        n += prune_layer_macs(c, l, T);
    return n;
}

int64_t prune_local_count(int64_t units, int64_t width, double ratio)
{
    if (units <= 0 || width <= 0)
        return 0;
    int64_t C = units * width;
    /* A relative tolerance so that decimal ratios give their exact decimal result
     * (4096 * (1 - 0.2) is 3276.8, 10 * (1 - 0.3) is 7). */
    double keep = (double)C * (1.0 - ratio);
    int64_t remain = (int64_t)floor(keep + 1e-9 * (double)C);
    if (remain > C)
        remain = C;
    if (remain < 0)
        remain = 0;
    return (C - remain) / width;
}

/* ------------------------------------------------------------------ checks */

static int cmp_spec_name(const void *key, const void *elem)
{
    return strcmp((const char *)key, ((const tensor_spec *)elem)->name);
}

/* Dies unless g fits the config c: a kind whose units match c's sizes, members
 * naming tensors c implies, slices inside them. */
static void check_group(const group *g, const model_config *c, const tensor_spec *specs, int ns,
                        const char *stream_name)
{
    const char *kind = group_kind_name(g->kind);
    if (g->kind != GROUP_HIDDEN && (g->layer < 0 || g->layer >= c->n_layers))
        die("%s: group %d (%s) names layer %d, but the model has %d layers", stream_name, g->id, kind, g->layer,
            c->n_layers);
    int64_t want = -1;
    switch (g->kind) {
    case GROUP_ATTN: want = c->n_kv_heads[g->layer]; break;
    case GROUP_FFN: want = c->ffn_dim[g->layer]; break;
    case GROUP_HIDDEN: want = c->dim; break;
    case GROUP_LAYER: want = 1; break;
    default: die("%s: group %d has an unknown kind", stream_name, g->id);
    }
    if (g->units != want)
        die("%s: group %d (%s, layer %d) has %lld units, but the model implies %lld", stream_name, g->id, kind,
            g->layer, (long long)g->units, (long long)want);
    if (g->n_members < 1)
        die("%s: group %d has no members", stream_name, g->id);
    for (int k = 0; k < g->n_members; k++) {
        const group_member *mb = &g->members[k];
        const tensor_spec *s = bsearch(mb->tensor, specs, (size_t)ns, sizeof *specs, cmp_spec_name);
        if (!s)
            die("%s: group %d names tensor %s, which the model lacks", stream_name, g->id, mb->tensor);
        if (mb->axis < 0 || mb->axis >= s->ndim || mb->start < 0 || mb->stride < 0 || mb->width < 1 ||
            (g->units > 0 && mb->start + (g->units - 1) * mb->stride + mb->width > s->shape[mb->axis]))
            die("%s: group %d: the slices of %s (axis %d, start %lld, stride %lld, width %lld) do not fit its shape",
                stream_name, g->id, mb->tensor, mb->axis, (long long)mb->start, (long long)mb->stride,
                (long long)mb->width);
    }
}

/* ------------------------------------------------------------------ planning */

static bool mode_kind_ok(enum prune_mode mode, enum group_kind k)
{
    switch (mode) {
    case PRUNE_BLOCK: return k == GROUP_ATTN || k == GROUP_FFN;
    case PRUNE_CHANNEL: return k == GROUP_HIDDEN;
    case PRUNE_LAYER: return k == GROUP_LAYER;
    }
    return false;
}

bool prune_plan_serves(const model *m, const group_set *gs, const prune_options *o, enum prune_criterion c)
{
    int L = m->cfg.n_layers;
    int first = o->first_layer >= 0 ? o->first_layer : L / 8, last = o->last_layer >= 0 ? o->last_layer : L - 1 - L / 16;
    bool any = false;
    for (int j = 0; j < gs->n; j++) {
        const group *g = &gs->g[j];
        if (!mode_kind_ok(o->mode, g->kind) || g->units < 1)
            continue;
        if (o->mode != PRUNE_CHANNEL && (g->layer < first || g->layer > last))
            continue;
        if (!prune_criterion_serves(m, gs, g, c))
            return false;
        any = true;
    }
    return any;
}

/* The config after removing the chosen units; fills p->after and p->layer_map. */
static void plan_resolve(prune_plan *p, const group_set *gs)
{
    const model_config *b = &p->before;
    config_free(&p->after);
    config_copy(&p->after, b);
    model_config *a = &p->after;
    int L = b->n_layers;
    bool *drop = xcalloc((size_t)L, sizeof *drop);
    for (int i = 0; i < p->n; i++) {
        const group *g = &gs->g[p->c[i].group];
        int64_t r = p->c[i].n_removed;
        switch (g->kind) {
        case GROUP_ATTN: {
            int l = g->layer, rep = b->n_heads[l] / b->n_kv_heads[l];
            a->n_kv_heads[l] = b->n_kv_heads[l] - (int)r;
            a->n_heads[l] = a->n_kv_heads[l] * rep;
            break;
        }
        case GROUP_FFN: a->ffn_dim[g->layer] = b->ffn_dim[g->layer] - (int)r; break;
        case GROUP_HIDDEN: a->dim = b->dim - (int)r; break;
        case GROUP_LAYER: drop[g->layer] = drop[g->layer] || r > 0; break;
        default: break;
        }
    }
    for (int i = 0; p->compensate && i < p->n; i++) {
        const group *g = &gs->g[p->c[i].group];
        if (p->c[i].n_removed > 0 && g->kind == GROUP_ATTN)
            a->o_bias = true;
        if (p->c[i].n_removed > 0 && g->kind == GROUP_FFN)
            a->down_bias = true;
    }
    int k = 0;
    for (int l = 0; l < L; l++) {
        p->layer_map[l] = drop[l] ? -1 : k;
        if (!drop[l]) {
            a->n_heads[k] = a->n_heads[l];
            a->n_kv_heads[k] = a->n_kv_heads[l];
            a->ffn_dim[k] = a->ffn_dim[l];
            k++;
        }
    }
    a->n_layers = k;
    free(drop);
}

static void plan_init(prune_plan *p, const model *m, enum prune_mode mode)
{
    memset(p, 0, sizeof *p);
    p->mode = mode;
    p->target_params = -1;
    p->first_layer = p->last_layer = -1;
    p->importance_known = true;
    config_copy(&p->before, &m->cfg);
    config_copy(&p->after, &m->cfg);
    p->layer_map = xmalloc((size_t)m->cfg.n_layers * sizeof *p->layer_map);
    for (int l = 0; l < m->cfg.n_layers; l++)
        p->layer_map[l] = l;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

void prune_plan_manual(prune_plan *p, const model *m, const group_set *gs, enum prune_mode mode, int n,
                       const prune_choice *c)
{
    plan_init(p, m, mode);
    p->ratio = NAN;
    p->criterion = PRUNE_CRIT_MANUAL;
    tensor_spec *specs;
    int ns = model_tensor_specs(&m->cfg, &specs);
    p->n = n;
    p->c = xcalloc((size_t)(n > 0 ? n : 1), sizeof *p->c);
    for (int i = 0; i < n; i++) {
        if (c[i].group < 0 || c[i].group >= gs->n)
            die("prune_plan_manual: no group %d", c[i].group);
        const group *g = &gs->g[c[i].group];
        if (!mode_kind_ok(mode, g->kind))
            die("prune_plan_manual: group %d is a %s group, not one of mode %s", g->id, group_kind_name(g->kind),
                prune_mode_name(mode));
        check_group(g, &m->cfg, specs, ns, "groups");
        p->c[i].group = c[i].group;
        p->c[i].n_removed = c[i].n_removed;
        p->c[i].removed = xmalloc((size_t)(c[i].n_removed > 0 ? c[i].n_removed : 1) * sizeof(int64_t));
        memcpy(p->c[i].removed, c[i].removed, (size_t)c[i].n_removed * sizeof(int64_t));
        qsort(p->c[i].removed, (size_t)c[i].n_removed, sizeof(int64_t), cmp_i64);
        for (int64_t k = 0; k < c[i].n_removed; k++)
            if (p->c[i].removed[k] < 0 || p->c[i].removed[k] >= g->units ||
                (k > 0 && p->c[i].removed[k] == p->c[i].removed[k - 1]))
                die("prune_plan_manual: bad unit list for group %d", g->id);
    }
    tensor_specs_free(specs, ns);
    plan_resolve(p, gs);
}

/* One unit of the ranking: (importance, group position, unit). */
typedef struct {
    double imp;
    int i;
    int64_t u;
} ranked;

static int cmp_ranked(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->imp != y->imp)
        return x->imp < y->imp ? -1 : 1;
    if (x->i != y->i)
        return x->i < y->i ? -1 : 1;
    return (x->u > y->u) - (x->u < y->u);
}

/* Planning state: the groups considered, their units ranked. */
typedef struct {
    const group_set *gs;
    int n;
    ranked **order;        /* (n, U) units of group i, least important first */
    ranked *all[GROUP_KIND_COUNT]; /* every unit of a kind, least important first */
    int64_t n_all[GROUP_KIND_COUNT];
    ranked *std;           /* adaptive: every unit by its standardised importance */
    int64_t n_std;
    double std_params;     /* adaptive: parameters of every unit considered */
} planner;

static const group *pgroup(const prune_plan *p, const planner *pl, int i) { return &pl->gs->g[p->c[i].group]; }

/* The most units group i may lose. */
static int64_t max_removable(const prune_plan *p, const group *g)
{
    if (g->kind == GROUP_LAYER)
        return g->units;
    if (p->allow_empty && g->kind != GROUP_HIDDEN)
        return g->units;
    return g->units > 0 ? g->units - 1 : 0;
}

/* (x - mean) / std of the U values of imp into z, std the sample standard
 * deviation (n - 1), as FLAP's standardisation (torch.std); all 0 when the
 * values do not vary (or U < 2). */
void prune_standardise(const double *imp, int64_t U, double *z)
{
    double mean = 0, ss = 0;
    for (int64_t u = 0; u < U; u++)
        mean += imp[u];
    mean /= U > 0 ? (double)U : 1.0;
    for (int64_t u = 0; u < U; u++)
        ss += (imp[u] - mean) * (imp[u] - mean);
    double sd = U > 1 ? sqrt(ss / (double)(U - 1)) : 0;
    for (int64_t u = 0; u < U; u++)
        z[u] = sd > 0 ? (imp[u] - mean) / sd : 0;
}

/* FLAP's own standardisation of its metric for an attention group (lib/prune.py
 * of CASIA-IVA-Lab/FLAP, structure AL-AM): per input channel c of o_proj the
 * fluctuation metric squared, (Var(x_c) sum_r W[r,c]^2)^2, standardised over the
 * layer's channels, then averaged over the unit's channels (a head's, or with
 * grouped-query attention the query heads' of one key/value head). z: (U).
 * False when g has no o_proj member with activations. */
static bool flap_attention_z(const model *m, const group_set *gs, const group *g, double *z)
{
    for (int k = 0; k < g->n_members; k++) {
        const group_member *mb = &g->members[k];
        const act_stat *a = mb->axis == 1 ? group_set_find_act(gs, mb->tensor) : NULL;
        const tensor *t = a ? model_tensor(m, mb->tensor) : NULL;
        if (!t || a->channels != t->shape[1])
            continue;
        int64_t rows = t->shape[0], cols = t->shape[1];
        double *ch = xcalloc((size_t)cols, sizeof *ch), *zc = xmalloc((size_t)cols * sizeof *zc); /* (cols) */
        float *row = xmalloc((size_t)cols * sizeof *row);                                          /* (cols) */
        for (int64_t r = 0; r < rows; r++) {
            tensor_get_f32(t, r * cols, cols, row);
            for (int64_t c = 0; c < cols; c++)
                ch[c] += (double)row[c] * row[c];
        }
        free(row);
        for (int64_t c = 0; c < cols; c++)
            ch[c] = (a->var[c] * ch[c]) * (a->var[c] * ch[c]);
        prune_standardise(ch, cols, zc);
        for (int64_t u = 0; u < g->units; u++) {
            double s = 0;
            int64_t c0 = mb->start + u * mb->stride, n = 0;
            for (int64_t c = c0; c < c0 + mb->width && c < cols; c++, n++)
                s += zc[c];
            z[u] = n ? s / (double)n : 0;
        }
        free(ch);
        free(zc);
        return true;
    }
    return false;
}

/* Adaptive selection: each group's importances standardised (per layer and
 * kind, FLAP's per-module standardisation; for flap on attention, FLAP's own
 * per-channel form), then every unit of every group ranked on one scale. */
static void adaptive_ranking(const model *m, prune_plan *p, planner *pl)
{
    if (p->mode != PRUNE_BLOCK)
        die("adaptive selection ranks attention heads and MLP channels together: it serves block mode only");
    int64_t n = 0;
    for (int i = 0; i < p->n; i++)
        n += pgroup(p, pl, i)->units;
    pl->std = xmalloc((size_t)(n > 0 ? n : 1) * sizeof *pl->std);
    pl->n_std = 0;
    pl->std_params = 0;
    for (int i = 0; i < p->n; i++) {
        const group *g = pgroup(p, pl, i);
        double *z = xmalloc((size_t)g->units * sizeof *z);
        if (!(p->criterion == PRUNE_CRIT_FLAP && g->kind == GROUP_ATTN && flap_attention_z(m, pl->gs, g, z)))
            prune_standardise(p->imp[i], g->units, z);
        for (int64_t u = 0; u < g->units; u++)
            pl->std[pl->n_std++] = (ranked){z[u], i, u};
        pl->std_params += (double)g->units * (double)g->unit_params;
        free(z);
    }
    qsort(pl->std, (size_t)pl->n_std, sizeof(ranked), cmp_ranked);
}

/* Choose the units for ratio R; returns the number of groups whose local count
 * had to be clamped. */
static int plan_select(prune_plan *p, const planner *pl, double R)
{
    int clamped = 0;
    int64_t local[GROUP_KIND_COUNT] = {0};
    int64_t *count = xcalloc((size_t)(p->n > 0 ? p->n : 1), sizeof *count);
    for (int i = 0; i < p->n; i++) {
        const group *g = pgroup(p, pl, i);
        if (g->kind == GROUP_LAYER)
            continue;
        int64_t k = prune_local_count(g->units, g->members[0].width, R), mx = max_removable(p, g);
        if (k > mx) {
            k = mx;
            clamped++;
        }
        count[i] = k;
        local[g->kind] += k;
    }
    if (p->mode == PRUNE_LAYER) {
        int64_t n_sel = p->n;
        local[GROUP_LAYER] = (int64_t)floor((double)n_sel * R + 1e-9 * (double)n_sel);
        if (local[GROUP_LAYER] >= n_sel)
            local[GROUP_LAYER] = n_sel - 1;
    }
    bool global = p->select != PRUNE_SELECT_LOCAL || p->mode == PRUNE_LAYER;
    if (p->select == PRUNE_SELECT_ADAPTIVE && p->mode == PRUNE_BLOCK) {
        /* FLAP's AL-AM: the least important units first, across attention and MLP,
         * while the parameters removed come nearer to R of the units' parameters
         * (FLAP's threshold at the cumulative cost nearest the target) */
        for (int i = 0; i < p->n; i++)
            count[i] = 0;
        double target = R * pl->std_params, removed = 0;
        for (int64_t j = 0; j < pl->n_std; j++) {
            int i = pl->std[j].i;
            const group *g = pgroup(p, pl, i);
            if (count[i] >= max_removable(p, g))
                continue;
            if (removed + 0.5 * (double)g->unit_params >= target)
                break;
            count[i]++;
            removed += (double)g->unit_params;
        }
    } else if (global) {
        for (int i = 0; i < p->n; i++)
            count[i] = 0;
        for (int k = 0; k < GROUP_KIND_COUNT; k++) {
            int64_t left = local[k];
            for (int64_t j = 0; j < pl->n_all[k] && left > 0; j++) {
                int i = pl->all[k][j].i;
                if (count[i] < max_removable(p, pgroup(p, pl, i))) {
                    count[i]++;
                    left--;
                }
            }
        }
    }
    for (int i = 0; i < p->n; i++) {
        prune_choice *c = &p->c[i];
        c->n_removed = count[i];
        for (int64_t k = 0; k < count[i]; k++)
            c->removed[k] = pl->order[i][k].u;
        qsort(c->removed, (size_t)count[i], sizeof(int64_t), cmp_i64);
    }
    free(count);
    return clamped;
}

static void plan_choose(prune_plan *p, const planner *pl, double R, int *clamped)
{
    *clamped = plan_select(p, pl, R);
    p->ratio = R;
}

static double removed_fraction(prune_plan *p, const planner *pl, double R)
{
    plan_select(p, pl, R);
    plan_resolve(p, pl->gs);
    double before = (double)config_param_count(&p->before);
    return 1.0 - (double)config_param_count(&p->after) / before;
}

/* The smallest ratio whose plan removes at least the fraction P of all
 * parameters, rounded up to the fewest decimals (6 or more) that give the same
 * plan. */
static double solve_ratio(prune_plan *p, const planner *pl, double P)
{
    double hi = nextafter(1.0, 0.0), lo = 0;
    double most = removed_fraction(p, pl, hi);
    if (most < P)
        die("removing %g of the parameters: mode %s%s can remove at most %.4f%% of the parameters here", P,
            prune_mode_name(p->mode), p->mode == PRUNE_BLOCK ? " on these layers" : "", 100 * most);
    if (removed_fraction(p, pl, 0) >= P)
        return 0;
    for (int it = 0; it < 200 && nextafter(lo, 1.0) < hi; it++) {
        double mid = 0.5 * (lo + hi);
        if (removed_fraction(p, pl, mid) >= P)
            hi = mid;
        else
            lo = mid;
    }
    double at_hi = removed_fraction(p, pl, hi);
    for (int d = 6; d <= 15; d++) {
        double s = pow(10, d), r = ceil(hi * s) / s;
        if (r < 1 && removed_fraction(p, pl, r) == at_hi)
            return r;
    }
    return hi;
}

void prune_plan_make(prune_plan *p, const model *m, const group_set *gs, const char *stream_kind,
                     const char *stream_name, const prune_options *o)
{
    const model_config *cfg = &m->cfg;
    int L = cfg->n_layers;
    plan_init(p, m, o->mode);
    p->select = o->select;
    p->allow_empty = o->allow_empty;
    p->aggregate = o->aggregate;
    p->seed = o->seed;
    p->target_params = o->target_params;
    enum prune_criterion crit = o->criterion != PRUNE_CRIT_DEFAULT ? o->criterion
                                : !strcmp(stream_kind, "scores")     ? PRUNE_CRIT_ELEMENT1
                                                                     : PRUNE_CRIT_L2;
    const char *crit_name = prune_criterion_name(crit);
    p->criterion = crit;

    if (o->mode != PRUNE_CHANNEL) {
        p->first_layer = o->first_layer >= 0 ? o->first_layer : L / 8;
        p->last_layer = o->last_layer >= 0 ? o->last_layer : L - 1 - L / 16;
        if (p->first_layer > p->last_layer || p->last_layer >= L)
            die("layers %d-%d are outside the model's layers 0-%d", p->first_layer, p->last_layer, L - 1);
    }

    /* the groups this mode prunes */
    tensor_spec *specs;
    int ns = model_tensor_specs(cfg, &specs);
    p->c = xcalloc((size_t)(gs->n > 0 ? gs->n : 1), sizeof *p->c);
    for (int j = 0; j < gs->n; j++) {
        const group *g = &gs->g[j];
        if (!mode_kind_ok(o->mode, g->kind))
            continue;
        if (o->mode != PRUNE_CHANNEL && (g->layer < p->first_layer || g->layer > p->last_layer))
            continue;
        check_group(g, cfg, specs, ns, stream_name);
        if (g->units < 1)
            continue;
        p->c[p->n].group = j;
        p->c[p->n].removed = xmalloc((size_t)g->units * sizeof(int64_t));
        p->n++;
    }
    tensor_specs_free(specs, ns);
    if (p->n == 0) {
        const char *want = o->mode == PRUNE_BLOCK ? "attn or ffn" : o->mode == PRUNE_CHANNEL ? "hidden" : "layer";
        if (o->mode == PRUNE_CHANNEL)
            die("%s: the stream has no %s group (pare-discover finds every kind)", stream_name, want);
        die("%s: the stream has no %s groups in layers %d-%d (pare-discover finds every kind)", stream_name, want,
            p->first_layer, p->last_layer);
    }

    /* importance, then the ranking */
    bool have_stats = false;
    for (int i = 0; i < p->n && !have_stats; i++)
        have_stats = group_find_stat(&gs->g[p->c[i].group], crit_name) != NULL;
    if (!have_stats && !m->has_weights && prune_criterion_is_magnitude(crit))
        p->importance_known = false; /* a bare config: counts only */
    if (!have_stats && strcmp(stream_kind, "scores") && !prune_criterion_is_magnitude(crit) && crit != PRUNE_CRIT_RANDOM)
        die("%s: a groups stream has no '%s' scores (pare-score computes them; l1, l2 and random need none)",
            stream_name, crit_name);
    if (prune_criterion_is_activation(crit) && gs->n_act == 0)
        die("%s: the stream has no activation statistics for '%s' (pare-score computes them with the other "
            "statistics)",
            stream_name, crit_name);
    p->compensate = crit == PRUNE_CRIT_FLAP && o->mode == PRUNE_BLOCK && !o->no_compensation;
    p->imp = xcalloc((size_t)p->n, sizeof *p->imp);
    planner pl = {.gs = gs, .n = p->n};
    pl.order = xcalloc((size_t)p->n, sizeof *pl.order);
    for (int i = 0; i < p->n; i++) {
        const group *g = &gs->g[p->c[i].group];
        p->imp[i] = xcalloc((size_t)g->units, sizeof(double));
        if (p->importance_known)
            prune_importance(m, gs, g, crit, o->aggregate, o->seed, stream_name, p->imp[i]);
        pl.order[i] = xmalloc((size_t)g->units * sizeof(ranked));
        for (int64_t u = 0; u < g->units; u++)
            pl.order[i][u] = (ranked){p->imp[i][u], i, u};
        qsort(pl.order[i], (size_t)g->units, sizeof(ranked), cmp_ranked);
        pl.n_all[g->kind] += g->units;
    }
    for (int k = 0; k < GROUP_KIND_COUNT; k++) {
        pl.all[k] = xmalloc((size_t)(pl.n_all[k] > 0 ? pl.n_all[k] : 1) * sizeof(ranked));
        pl.n_all[k] = 0;
    }
    for (int i = 0; i < p->n; i++) {
        const group *g = &gs->g[p->c[i].group];
        memcpy(pl.all[g->kind] + pl.n_all[g->kind], pl.order[i], (size_t)g->units * sizeof(ranked));
        pl.n_all[g->kind] += g->units;
    }
    for (int k = 0; k < GROUP_KIND_COUNT; k++)
        qsort(pl.all[k], (size_t)pl.n_all[k], sizeof(ranked), cmp_ranked);
    if (o->select == PRUNE_SELECT_ADAPTIVE)
        adaptive_ranking(m, p, &pl);
    if (!p->importance_known && (o->select != PRUNE_SELECT_LOCAL || o->mode == PRUNE_LAYER))
        warn("%s: no weights and no scores: the plan's counts are exact, but which %s go is arbitrary",
             m->source, o->mode == PRUNE_LAYER ? "layers" : "units (and so the per-layer counts of a ranking across layers)");

    double R = o->target_params >= 0 ? solve_ratio(p, &pl, o->target_params) : o->ratio;
    int clamped;
    plan_choose(p, &pl, R, &clamped);
    plan_resolve(p, gs);
    if (clamped)
        warn("ratio %g would remove every unit of %d group%s: each keeps one (--allow-empty removes them all)", R,
             clamped, clamped == 1 ? "" : "s");

    for (int i = 0; i < p->n; i++)
        free(pl.order[i]);
    free(pl.order);
    for (int k = 0; k < GROUP_KIND_COUNT; k++)
        free(pl.all[k]);
    free(pl.std);
}

void prune_plan_free(prune_plan *p)
{
    for (int i = 0; i < p->n; i++) {
        free(p->c[i].removed);
        if (p->imp)
            free(p->imp[i]);
    }
    free(p->c);
    free(p->imp);
    free(p->layer_map);
    config_free(&p->before);
    config_free(&p->after);
    memset(p, 0, sizeof *p);
}

/* ------------------------------------------------------------------ printing */

/* 6738415616 -> "6.74B" */
static const char *human(int64_t n, char *buf, size_t size)
{
    double x = (double)n;
    if (x >= 1e12)
        snprintf(buf, size, "%.2fT", x / 1e12);
    else if (x >= 1e9)
        snprintf(buf, size, "%.2fB", x / 1e9);
    else if (x >= 1e6)
        snprintf(buf, size, "%.2fM", x / 1e6);
    else if (x >= 1e3)
        snprintf(buf, size, "%.2fK", x / 1e3);
    else
        snprintf(buf, size, "%lld", (long long)n);
    return buf;
}

static void kept(char *buf, size_t n, int after, int before) { snprintf(buf, n, "%d/%d", after, before); }

void prune_plan_print(const prune_plan *p, int T, FILE *f)
{
    const model_config *b = &p->before, *a = &p->after;
    char h1[32], h2[32];
    fprintf(f, "mode %s", prune_mode_name(p->mode));
    if (isnan(p->ratio))
        fprintf(f, ", manual choice");
    else
        fprintf(f, ", ratio %.9g", p->ratio);
    if (p->target_params >= 0)
        fprintf(f, " (solved for --target-params %g)", p->target_params);
    fprintf(f, ", criterion %s", prune_criterion_name(p->criterion));
    if (p->criterion != PRUNE_CRIT_RANDOM)
        fprintf(f, " (aggregate %s)", prune_aggregate_name(p->aggregate));
    else
        fprintf(f, " (seed %llu)", (unsigned long long)p->seed);
    if (p->first_layer >= 0)
        fprintf(f, ", layers %d-%d", p->first_layer, p->last_layer);
    fprintf(f, "%s%s\n", p->select != PRUNE_SELECT_LOCAL ? p->select == PRUNE_SELECT_GLOBAL ? ", global" : ", adaptive" : "",
            p->allow_empty ? ", allow-empty" : "");
    if (!p->importance_known)
        fprintf(f, "(no weights and no scores: units chosen by index; the counts are exact)\n");

    fprintf(f, "%5s %9s %9s %13s %15s %15s %17s\n", "layer", "heads", "kv heads", "mlp", "params before",
            "params after", "MACs after");
    int64_t lb = 0, la = 0;
    for (int l = 0; l < b->n_layers; l++) {
        int k = p->layer_map[l];
        int64_t pb = prune_layer_params(b, l), pa = k >= 0 ? prune_layer_params(a, k) : 0;
        int64_t ma = k >= 0 ? prune_layer_macs(a, k, T) : 0;
        lb += pb;
        la += pa;
        char hs[32], kvs[32], fs[32];
        if (k < 0) {
            fprintf(f, "%5d %9s %9s %13s %15lld %15lld %17lld\n", l, "removed", "-", "-", (long long)pb, 0LL, 0LL);
            continue;
        }
        kept(hs, sizeof hs, a->n_heads[k], b->n_heads[l]);
        kept(kvs, sizeof kvs, a->n_kv_heads[k], b->n_kv_heads[l]);
        kept(fs, sizeof fs, a->ffn_dim[k], b->ffn_dim[l]);
        fprintf(f, "%5d %9s %9s %13s %15lld %15lld %17lld\n", l, hs, kvs, fs, (long long)pb, (long long)pa,
                (long long)ma);
    }
    int64_t tb = config_param_count(b), ta = config_param_count(a);
    fprintf(f, "%-39s %15lld %15lld %17lld\n", "embeddings, final norm, LM head", (long long)(tb - lb),
            (long long)(ta - la), (long long)((int64_t)T * a->dim * a->vocab));
    if (a->dim != b->dim)
        fprintf(f, "hidden size: %d -> %d\n", b->dim, a->dim);
    if (a->n_layers != b->n_layers)
        fprintf(f, "layers: %d -> %d\n", b->n_layers, a->n_layers);
    fprintf(f, "parameters: %lld -> %lld (%s -> %s, %.4f%% kept, %lld removed)\n", (long long)tb, (long long)ta,
            human(tb, h1, sizeof h1), human(ta, h2, sizeof h2), 100.0 * (double)ta / (double)tb,
            (long long)(tb - ta));
    int64_t mb = prune_macs(b, T), ma = prune_macs(a, T);
    fprintf(f, "MACs (%d tokens): %lld -> %lld (%s -> %s, %.4f%%)\n", T, (long long)mb, (long long)ma,
            human(mb, h1, sizeof h1), human(ma, h2, sizeof h2), 100.0 * (double)ma / (double)mb);
    int64_t units = 0;
    for (int i = 0; i < p->n; i++)
        units += p->c[i].n_removed;
    fprintf(f, "units removed: %lld from %d group%s\n", (long long)units, p->n, p->n == 1 ? "" : "s");
}

/* ------------------------------------------------------------------ provenance */

json_t *prune_provenance(const prune_plan *p, const group_set *gs, const model *base)
{
    json_t *j = json_object();
    json_object_set_new(j, "base_fingerprint", json_string(gs->fingerprint));
    if (base && base->provenance)
        json_object_set(j, "base_provenance", base->provenance);
    json_object_set_new(j, "mode", json_string(prune_mode_name(p->mode)));
    json_object_set_new(j, "ratio", isnan(p->ratio) ? json_null() : json_real(p->ratio));
    if (p->target_params >= 0)
        json_object_set_new(j, "target_params", json_real(p->target_params));
    json_object_set_new(j, "criterion", json_string(prune_criterion_name(p->criterion)));
    json_object_set_new(j, "aggregate", json_string(prune_aggregate_name(p->aggregate)));
    if (p->criterion == PRUNE_CRIT_RANDOM)
        json_object_set_new(j, "seed", json_integer((json_int_t)p->seed));
    json_object_set_new(j, "global", json_boolean(p->select == PRUNE_SELECT_GLOBAL));
    if (p->select == PRUNE_SELECT_ADAPTIVE)
        json_object_set_new(j, "selection", json_string(prune_select_name(p->select)));
    if (p->compensate)
        json_object_set_new(j, "bias_compensation", json_true());
    json_object_set_new(j, "allow_empty", json_boolean(p->allow_empty));
    if (p->first_layer >= 0)
        json_object_set_new(j, "layers", json_pack("[i,i]", p->first_layer, p->last_layer));
    json_object_set_new(j, "params_before", json_integer(config_param_count(&p->before)));
    json_object_set_new(j, "params_after", json_integer(config_param_count(&p->after)));
    json_t *groups = json_array();
    for (int i = 0; i < p->n; i++) {
        const group *g = &gs->g[p->c[i].group];
        json_t *rm = json_array();
        for (int64_t k = 0; k < p->c[i].n_removed; k++)
            json_array_append_new(rm, json_integer(p->c[i].removed[k]));
        json_array_append_new(groups, json_pack("{s:i,s:s,s:i,s:I,s:o}", "id", g->id, "kind",
                                                group_kind_name(g->kind), "layer", g->layer, "units",
                                                (json_int_t)g->units, "removed", rm));
    }
    json_object_set_new(j, "groups", groups);
    return j;
}
