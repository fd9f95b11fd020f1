/* discover.c - the generic dependency analysis: from a dataflow description
 * (graph.h) to the groups of coupled structures.
 *
 * Every channel of every value is a node. Each operation says which channels are
 * the same channel (element-wise operations, norms, rotary embedding), which must
 * go together (the channels of one attention head; a query head with the key/value
 * head it reads), and which tensor axes run along which value. Union-find joins the
 * nodes; each connected set is one removable unit. Units that touch exactly the
 * same values form one group. Each tensor axis attached to a group's value becomes
 * a member, and the unit's channels along it must be a regular slice
 * [start + u*stride, start + u*stride + width). Nothing here knows what a LLaMA is. */
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "prune/graph.h"
#include "prune/groups.h"

typedef struct {
    int32_t *parent;
    int64_t *offset; /* first node of each value */
    int64_t n;
} nodes;

static int32_t find(nodes *nd, int32_t a)
{
    while (nd->parent[a] != a) {
        nd->parent[a] = nd->parent[nd->parent[a]];
        a = nd->parent[a];
    }
    return a;
}

static void unite(nodes *nd, int64_t a, int64_t b)
{
    int32_t ra = find(nd, (int32_t)a), rb = find(nd, (int32_t)b);
    if (ra == rb)
        return;
    /* the smaller index becomes the root: roots are first nodes */
    if (ra < rb)
        nd->parent[rb] = ra;
    else
        nd->parent[ra] = rb;
}

static int64_t node(const nodes *nd, int v, int64_t c) { return nd->offset[v] + c; }

static void unite_channelwise(nodes *nd, const graph *g, int a, int b)
{
    if (a < 0 || b < 0)
        return;
    if (g->values[a].dim != g->values[b].dim)
        die("dataflow: %s (%lld) and %s (%lld) are joined channel by channel but differ in size", g->values[a].name,
            (long long)g->values[a].dim, g->values[b].name, (long long)g->values[b].dim);
    for (int64_t c = 0; c < g->values[a].dim; c++)
        unite(nd, node(nd, a, c), node(nd, b, c));
}

static void unite_attention(nodes *nd, const graph *g, const graph_op *op)
{
    int q = op->in[0], k = op->in[1], v = op->in[2], hd = op->head_dim;
    int64_t H = g->values[q].dim / hd, KV = g->values[k].dim / hd;
    if (hd <= 0 || H * hd != g->values[q].dim || KV * hd != g->values[k].dim || KV == 0 || H % KV ||
        g->values[v].dim != g->values[k].dim)
        die("dataflow: attention over %s has inconsistent head sizes", g->values[q].name);
    int64_t rep = H / KV;
    for (int64_t h = 0; h < H; h++) {
        int64_t kvh = h / rep;
        for (int64_t i = 0; i < hd; i++) {
            int64_t qc = h * hd + i;
            unite(nd, node(nd, q, h * hd), node(nd, q, qc));   /* a head is inseparable */
            unite(nd, node(nd, q, qc), node(nd, k, kvh * hd + i)); /* query head reads its kv head */
            unite(nd, node(nd, q, qc), node(nd, v, kvh * hd + i));
            unite(nd, node(nd, q, qc), node(nd, op->out, qc)); /* output head h is query head h */
        }
    }
}

/* Per-head norm: channel by channel, and the channels of one head together. */
static void unite_head_norm(nodes *nd, const graph *g, const graph_op *op)
{
    int64_t dim = g->values[op->in[0]].dim, hd = op->head_dim;
    if (hd <= 0 || dim % hd)
        die("dataflow: a per-head norm of %s has inconsistent head sizes", g->values[op->in[0]].name);
    unite_channelwise(nd, g, op->out, op->in[0]);
    for (int64_t c = 0; c < dim; c++)
        unite(nd, node(nd, op->in[0], c - c % hd), node(nd, op->in[0], c));
}

static void unite_slice(nodes *nd, const graph *g, const graph_op *op)
{
    const fused_part *p = &op->slice;
    int64_t n = g->values[op->out].dim, in = g->values[op->in[0]].dim;
    for (int64_t j = 0; j < n; j++) {
        int64_t c = p->offset + (j / p->block) * p->stride + j % p->block;
        if (c < 0 || c >= in)
            die("dataflow: a slice of %s reaches past its %lld channels", g->values[op->in[0]].name, (long long)in);
        unite(nd, node(nd, op->out, j), node(nd, op->in[0], c));
    }
}

/* A tensor axis that runs along a value's channels. */
typedef struct {
    const char *tensor;
    int axis;
    int value;        /* -1: along no value (a weight shared by the heads): whole, in
                         its layer's group only */
    int ndim;
    int64_t shape[2];
    int block;
} attachment;

typedef struct {
    attachment *a;
    int n, cap;
} attachments;

static void attach_any(attachments *as, const char *tensor, int axis, int value, int ndim, int64_t d0, int64_t d1,
                       int block)
{
    if (!tensor)
        return;
    GROW(as->a, as->cap, as->n + 1, 256);
    as->a[as->n++] = (attachment){tensor, axis, value, ndim, {d0, d1}, block};
}

static void attach(attachments *as, const char *tensor, int axis, int value, int ndim, int64_t d0, int64_t d1,
                   int block)
{
    if (value >= 0)
        attach_any(as, tensor, axis, value, ndim, d0, d1, block);
}

static void collect_attachments(const graph *g, attachments *as)
{
    for (int i = 0; i < g->n_ops; i++) {
        const graph_op *op = &g->ops[i];
        const graph_value *V = g->values;
        switch (op->type) {
        case OP_EMBED:
            attach(as, op->weight, 1, op->out, 2, op->rows, V[op->out].dim, op->block);
            break;
        case OP_NORM:
            attach(as, op->weight, 0, op->out, 1, V[op->out].dim, 0, op->block);
            attach(as, op->bias, 0, op->out, 1, V[op->out].dim, 0, op->block);
            break;
        case OP_HEAD_NORM:
            attach_any(as, op->weight, 0, -1, 1, op->head_dim, 0, op->block);
            break;
        case OP_LINEAR: {
            int64_t out_dim = op->out >= 0 ? V[op->out].dim : op->rows, in_dim = V[op->in[0]].dim;
            attach(as, op->weight, 1, op->in[0], 2, out_dim, in_dim, op->block);
            attach(as, op->weight, 0, op->out, 2, out_dim, in_dim, op->block);
            attach(as, op->bias, 0, op->out, 1, out_dim, 0, op->block);
            break;
        }
        default:
            break;
        }
    }
}

/* ------------------------------------------------------------------ groups */

typedef struct {
    int *values; /* values this unit has channels in, ascending */
    int n_values, cap_values;
    int group;   /* index into the group list */
    int64_t unit; /* index within its group */
} component;

static int cmp_int_lists(const component *a, const component *b)
{
    if (a->n_values != b->n_values)
        return a->n_values < b->n_values ? -1 : 1;
    return memcmp(a->values, b->values, (size_t)a->n_values * sizeof(int));
}

static bool value_touches_attention(const graph *g, int v)
{
    for (int i = 0; i < g->n_ops; i++) {
        const graph_op *op = &g->ops[i];
        if (op->type == OP_ATTENTION && (op->out == v || op->in[0] == v || op->in[1] == v || op->in[2] == v))
            return true;
    }
    return false;
}

static void add_member(group *gr, const attachment *a, int64_t start, int64_t stride, int64_t width)
{
    for (int m = 0; m < gr->n_members; m++)
        if (!strcmp(gr->members[m].tensor, a->tensor) && gr->members[m].axis == a->axis &&
            gr->members[m].start == start)
            return; /* the same tensor axis reached twice (a tied embedding) */
    gr->members = xrealloc(gr->members, (size_t)(gr->n_members + 1) * sizeof *gr->members);
    gr->members[gr->n_members++] = (group_member){xstrdup(a->tensor), a->axis, start, stride, width};
    int64_t other = a->ndim == 1 ? 1 : a->shape[1 - a->axis];
    gr->unit_params += width * other;
}

/* The slices of attachment a in group gi: per unit, its channels are one or more
 * contiguous runs (more than one where a fused map's output holds several parts
 * of the unit: the query, key and value rows of a key/value group, the gate and
 * up rows of an MLP channel); each unit must have the same runs, and run r of the
 * units must be evenly spaced. Run r becomes one member. */
static void member_from_attachment(const graph *g, nodes *nd, const int32_t *comp_of_root, component *comps,
                                   group *gr, int gi, const attachment *a)
{
    enum { MAX_RUNS = 8 };
    int64_t units = gr->units;
    int64_t *first = xmalloc((size_t)units * MAX_RUNS * sizeof *first); /* (units, MAX_RUNS) */
    int64_t *count = xcalloc((size_t)units * MAX_RUNS, sizeof *count);
    int *runs = xcalloc((size_t)units, sizeof *runs);
    int64_t dim = g->values[a->value].dim;
    bool any = false;
    for (int64_t c = 0; c < dim; c++) {
        component *cp = &comps[comp_of_root[find(nd, (int32_t)node(nd, a->value, c))]];
        if (cp->group != gi)
            continue;
        any = true;
        int64_t u = cp->unit;
        int r = runs[u] - 1;
        if (r < 0 || first[u * MAX_RUNS + r] + count[u * MAX_RUNS + r] != c) {
            if (++r == MAX_RUNS)
                die("dataflow: unit %lld of a %s group is split into more than %d runs along %s axis %d",
                    (long long)u, group_kind_name(gr->kind), MAX_RUNS, a->tensor, a->axis);
            runs[u] = r + 1;
            first[u * MAX_RUNS + r] = c;
        }
        count[u * MAX_RUNS + r]++;
    }
    if (any) {
        for (int r = 0; r < runs[0]; r++) {
            int64_t f0 = first[r], n0 = count[r];
            int64_t stride = units > 1 ? first[MAX_RUNS + r] - f0 : n0;
            for (int64_t u = 0; u < units; u++)
                if (runs[u] != runs[0] || count[u * MAX_RUNS + r] != n0 || first[u * MAX_RUNS + r] != f0 + u * stride)
                    die("dataflow: units of a %s group are not evenly spaced along %s axis %d",
                        group_kind_name(gr->kind), a->tensor, a->axis);
            add_member(gr, a, f0, stride, n0);
        }
    }
    free(first);
    free(count);
    free(runs);
}

static int group_order(const group *a, const group *b)
{
    /* per layer attn then ffn; then hidden; then layer groups by layer */
    int ra = a->kind == GROUP_LAYER ? 2 : a->kind == GROUP_HIDDEN ? 1 : 0;
    int rb = b->kind == GROUP_LAYER ? 2 : b->kind == GROUP_HIDDEN ? 1 : 0;
    if (ra != rb)
        return ra - rb;
    if (a->layer != b->layer)
        return a->layer - b->layer;
    return (int)a->kind - (int)b->kind;
}

static int cmp_group(const void *a, const void *b) { return group_order(a, b); }

static void layer_groups(const graph *g, const attachments *as, group_set *gs, int n_layers)
{
    for (int l = 0; l < n_layers; l++) {
        group gr = {0};
        gr.kind = GROUP_LAYER;
        gr.layer = l;
        gr.units = 1;
        for (int i = 0; i < as->n; i++) {
            const attachment *a = &as->a[i];
            if (a->block != l)
                continue;
            /* the whole tensor, as one slice along axis 0 */
            attachment whole = *a;
            whole.axis = 0;
            add_member(&gr, &whole, 0, a->shape[0], a->shape[0]);
        }
        if (gr.n_members == 0)
            continue;
        gs->g = xrealloc(gs->g, (size_t)(gs->n + 1) * sizeof *gs->g);
        gs->g[gs->n++] = gr;
    }
    (void)g;
}

void groups_from_graph(const graph *g, int n_layers, unsigned kinds, group_set *gs)
{
    nodes nd = {0};
    nd.offset = xmalloc((size_t)(g->n_values + 1) * sizeof *nd.offset);
    for (int v = 0; v < g->n_values; v++) {
        nd.offset[v] = nd.n;
        nd.n += g->values[v].dim;
    }
    if (nd.n >= INT32_MAX)
        die("dataflow: %lld channels is more than this analysis handles", (long long)nd.n);
    nd.parent = xmalloc((size_t)(nd.n ? nd.n : 1) * sizeof *nd.parent);
    for (int64_t i = 0; i < nd.n; i++)
        nd.parent[i] = (int32_t)i;

    for (int i = 0; i < g->n_ops; i++) {
        const graph_op *op = &g->ops[i];
        switch (op->type) {
        case OP_NORM:
        case OP_ROPE:
        case OP_ACT: unite_channelwise(&nd, g, op->out, op->in[0]); break;
        case OP_MUL:
        case OP_ADD:
            unite_channelwise(&nd, g, op->out, op->in[0]);
            unite_channelwise(&nd, g, op->out, op->in[1]);
            break;
        case OP_ATTENTION: unite_attention(&nd, g, op); break;
        case OP_HEAD_NORM: unite_head_norm(&nd, g, op); break;
        case OP_SLICE: unite_slice(&nd, g, op); break;
        case OP_EMBED:
        case OP_LINEAR: break; /* inputs and outputs are independent spaces */
        }
    }

    /* Components, numbered in order of their first node; the values each touches. */
    int32_t *comp_of_root = xmalloc((size_t)(nd.n ? nd.n : 1) * sizeof *comp_of_root);
    component *comps = NULL;
    int n_comps = 0, cap_comps = 0;
    for (int v = 0; v < g->n_values; v++) {
        for (int64_t c = 0; c < g->values[v].dim; c++) {
            int32_t node_id = (int32_t)node(&nd, v, c), r = find(&nd, node_id);
            if (r == node_id) { /* roots are first nodes: a new component */
                GROW(comps, cap_comps, n_comps + 1, 1024);
                comps[n_comps] = (component){0};
                comp_of_root[r] = n_comps++;
            }
            component *cp = &comps[comp_of_root[r]];
            if (cp->n_values == 0 || cp->values[cp->n_values - 1] != v) {
                if (cp->n_values == cp->cap_values) {
                    cp->cap_values = cp->cap_values ? 2 * cp->cap_values : 4;
                    cp->values = xrealloc(cp->values, (size_t)cp->cap_values * sizeof(int));
                }
                cp->values[cp->n_values++] = v;
            }
        }
    }

    /* Group the components that touch the same values, in order of first unit. */
    group *groups = NULL;
    int n_groups = 0;
    int *rep = NULL; /* a representative component per group */
    int last = -1; /* neighbouring units mostly share a group: try it first */
    for (int i = 0; i < n_comps; i++) {
        int gi;
        if (last >= 0 && cmp_int_lists(&comps[rep[last]], &comps[i]) == 0)
            gi = last;
        else
            for (gi = 0; gi < n_groups; gi++)
                if (cmp_int_lists(&comps[rep[gi]], &comps[i]) == 0)
                    break;
        last = gi;
        if (gi == n_groups) {
            groups = xrealloc(groups, (size_t)(n_groups + 1) * sizeof *groups);
            rep = xrealloc(rep, (size_t)(n_groups + 1) * sizeof *rep);
            groups[n_groups] = (group){0};
            rep[n_groups] = i;
            n_groups++;
        }
        comps[i].group = gi;
        comps[i].unit = groups[gi].units++;
    }

    attachments as = {0};
    collect_attachments(g, &as);
    for (int gi = 0; gi < n_groups; gi++) {
        group *gr = &groups[gi];
        const component *cp = &comps[rep[gi]];
        int block = g->values[cp->values[0]].block;
        bool one_block = block >= 0, attention = false;
        for (int k = 0; k < cp->n_values; k++) {
            one_block &= g->values[cp->values[k]].block == block;
            attention |= value_touches_attention(g, cp->values[k]);
        }
        gr->kind = attention ? GROUP_ATTN : one_block ? GROUP_FFN : GROUP_HIDDEN;
        gr->layer = gr->kind == GROUP_HIDDEN ? -1 : block;
        for (int i = 0; i < as.n; i++) {
            /* only attachments to values of this group */
            const attachment *a = &as.a[i];
            bool mine = false;
            for (int k = 0; k < cp->n_values && !mine; k++)
                mine = cp->values[k] == a->value;
            if (mine)
                member_from_attachment(g, &nd, comp_of_root, comps, gr, gi, a);
        }
    }

    memset(gs, 0, sizeof *gs);
    for (int gi = 0; gi < n_groups; gi++) {
        if (kinds & (1u << groups[gi].kind)) {
            gs->g = xrealloc(gs->g, (size_t)(gs->n + 1) * sizeof *gs->g);
            gs->g[gs->n++] = groups[gi];
        } else {
            for (int m = 0; m < groups[gi].n_members; m++)
                free(groups[gi].members[m].tensor);
            free(groups[gi].members);
        }
    }
    if (kinds & (1u << GROUP_LAYER))
        layer_groups(g, &as, gs, n_layers);
    qsort(gs->g, (size_t)gs->n, sizeof *gs->g, cmp_group);
    for (int i = 0; i < gs->n; i++)
        gs->g[i].id = i;

    for (int i = 0; i < n_comps; i++)
        free(comps[i].values);
    free(comps);
    free(groups);
    free(rep);
    free(as.a);
    free(comp_of_root);
    free(nd.parent);
    free(nd.offset);
}

void groups_discover(const model *m, unsigned kinds, group_set *gs)
{
    graph g;
    graph_model(&m->cfg, &g);
    groups_from_graph(&g, m->cfg.n_layers, kinds, gs);
    graph_free(&g);
    model_bound_fingerprint(m, gs->fingerprint);
    gs->config = model_config_json(m);
    gs->weights = m->has_weights;
}
