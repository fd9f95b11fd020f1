/* prune_apply.c - a plan carried out (prune.h: prune_apply, prune_mask): every
 * removed unit's slices cut out of every member, or zeroed in place.
 *
 * Letters: D hidden size, L layers, U units of a group. */
#include "prune/prune.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "base/util.h"

/* Removal marks per tensor and axis: rm[t][axis] (shape[axis] bools) or NULL. */
typedef struct {
    bool *ax[2];
} marks;

static marks *mark_removed(const model *m, const group_set *gs, const prune_plan *p)
{
    marks *mk = xcalloc((size_t)(m->n_tensors > 0 ? m->n_tensors : 1), sizeof *mk);
    for (int i = 0; i < p->n; i++) {
        const group *g = &gs->g[p->c[i].group];
        if (g->kind == GROUP_LAYER)
            continue; /* whole layers go by layer_map */
        for (int k = 0; k < g->n_members; k++) {
            const group_member *mb = &g->members[k];
            tensor *t = model_tensor(m, mb->tensor);
            if (!t)
                die("%s: group %d names tensor %s, which the model lacks", m->source, g->id, mb->tensor);
            int ti = (int)(t - m->tensors), ax = mb->axis;
            if (!mk[ti].ax[ax])
                mk[ti].ax[ax] = xcalloc((size_t)t->shape[ax], sizeof(bool));
            for (int64_t r = 0; r < p->c[i].n_removed; r++) {
                int64_t a = mb->start + p->c[i].removed[r] * mb->stride;
                for (int64_t j = a; j < a + mb->width; j++) {
                    if (j >= t->shape[ax])
                        die("%s: group %d: unit %lld is outside %s", m->source, g->id,
                            (long long)p->c[i].removed[r], t->name);
                    mk[ti].ax[ax][j] = true;
                }
            }
        }
    }
    return mk;
}

static void marks_free(marks *mk, int n)
{
    for (int i = 0; i < n; i++) {
        free(mk[i].ax[0]);
        free(mk[i].ax[1]);
    }
    free(mk);
}


/* Indices of an axis of length n not marked (all when rm is NULL) into idx (or
 * only counted when idx is NULL); returns the count. */
static int64_t kept_indices(const bool *rm, int64_t n, int64_t *idx)
{
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++)
        if (!rm || !rm[i]) {
            if (idx)
                idx[k] = i;
            k++;
        }
    return k;
}

/* FLAP's bias compensation: per source layer l, comp[2l] (o_proj) and
 * comp[2l + 1] (down_proj) are (D) sums over the removed input channels c of
 * W[:, c] * mean(x_c), or NULL where nothing was removed. */
static double **flap_compensation(const model *m, const group_set *gs, const prune_plan *p)
{
    int L = p->before.n_layers;
    double **comp = xcalloc(2 * (size_t)L, sizeof *comp);
    for (int i = 0; i < p->n; i++) {
        const group *g = &gs->g[p->c[i].group];
        if (p->c[i].n_removed == 0 || (g->kind != GROUP_ATTN && g->kind != GROUP_FFN))
            continue;
        for (int k = 0; k < g->n_members; k++) {
            const group_member *mb = &g->members[k];
            const act_stat *a = mb->axis == 1 ? group_set_find_act(gs, mb->tensor) : NULL;
            const tensor *t = a ? model_tensor(m, mb->tensor) : NULL;
            if (!t)
                continue;
            int64_t rows = t->shape[0], cols = t->shape[1];
            double **cv = &comp[2 * g->layer + (g->kind == GROUP_FFN)];
            if (!*cv)
                *cv = xcalloc((size_t)rows, sizeof **cv);
            float *w = xmalloc((size_t)cols * sizeof *w); /* (cols) one row */
            for (int64_t row = 0; row < rows; row++) {
                tensor_get_f32(t, row * cols, cols, w);
                for (int64_t r = 0; r < p->c[i].n_removed; r++) {
                    int64_t a0 = mb->start + p->c[i].removed[r] * mb->stride;
                    for (int64_t c = a0; c < a0 + mb->width && c < cols; c++)
                        (*cv)[row] += (double)w[c] * a->mean[c];
                }
            }
            free(w);
        }
    }
    return comp;
}

/* The source of a lazily pruned model's matrices: each is sliced from source
 * tensor `from` when a writer or the fingerprint asks. */
typedef struct {
    char *name; /* the pruned tensor's name */
    int from;   /* index of its source tensor */
} slice_entry;

typedef struct {
    tensor_source values; /* what the pruned model's `values` points at */
    const model *src;
    marks *mk;            /* (n_marks) = (src->n_tensors) */
    int n_marks, n;
    slice_entry *e;       /* (n) sorted by name */
} slicer;

/* dst (header set, storage of dst->dtype allocated here) = t's kept rows and
 * columns, plus cv (or NULL) on a bias. */
static void slice(const tensor *t, const marks *mk, const double *cv, tensor *dst)
{
    int64_t rows = t->shape[0], cols = t->ndim == 2 ? t->shape[1] : 1;
    int64_t *ri = xmalloc((size_t)rows * sizeof *ri), *ci = xmalloc((size_t)cols * sizeof *ci);
    int64_t nr = kept_indices(mk->ax[0], rows, ri), nc = kept_indices(t->ndim == 2 ? mk->ax[1] : NULL, cols, ci);
    tensor_alloc(dst);
    float *srow = xmalloc((size_t)cols * sizeof *srow), *drow = xmalloc((size_t)nc * sizeof *drow);
    for (int64_t r = 0; r < nr; r++) {
        tensor_get_f32(t, ri[r] * cols, cols, srow);
        for (int64_t c = 0; c < nc; c++)
            drow[c] = srow[ci[c]];
        if (cv)
            drow[0] = (float)(drow[0] + cv[r]);
        tensor_set_f32(dst, r * nc, nc, drow);
    }
    if (cv) /* a compensated bias holds what its stored dtype can (the fingerprint's values) */
        tensor_round_to(dst, dst->stored);
    free(srow);
    free(drow);
    free(ri);
    free(ci);
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const slice_entry *)a)->name, ((const slice_entry *)b)->name);
}

static void slicer_fill(tensor *t, void *ctx)
{
    const slicer *s = ctx;
    slice_entry key = {t->name, 0}, *e = bsearch(&key, s->e, (size_t)s->n, sizeof key, cmp_entry);
    if (!e)
        die("pruned tensor %s has no source", t->name);
    slice(&s->src->tensors[e->from], &s->mk[e->from], NULL, t);
}

static void slicer_release(void *ctx)
{
    slicer *s = ctx;
    marks_free(s->mk, s->n_marks);
    for (int i = 0; i < s->n; i++)
        free(s->e[i].name);
    free(s->e);
    free(s);
}

void prune_apply(model *src, const group_set *gs, const prune_plan *p, bool lazy, model *out)
{
    if (!src->has_weights)
        die("%s: a bare config has no weights to prune", src->source);
    double **comp = p->compensate ? flap_compensation(src, gs, p) : NULL;
    slicer *sl = xcalloc(1, sizeof *sl);
    sl->values = (tensor_source){slicer_fill, sl, slicer_release};
    sl->src = src;
    sl->mk = mark_removed(src, gs, p);
    sl->n_marks = src->n_tensors;
    sl->e = xmalloc((size_t)(src->n_tensors > 0 ? src->n_tensors : 1) * sizeof *sl->e);
    memset(out, 0, sizeof *out);
    out->source = xstrdup(src->source ? src->source : "pruned model");
    config_copy(&out->cfg, &p->after);
    out->extra_config = src->extra_config ? json_deep_copy(src->extra_config) : json_object();
    if (src->tok.size) {
        out->tok.format = xstrdup(src->tok.format);
        out->tok.size = src->tok.size;
        out->tok.data = xmalloc(src->tok.size);
        memcpy(out->tok.data, src->tok.data, src->tok.size);
    }

    for (int ti = 0; ti < src->n_tensors; ti++) {
        tensor *t = &src->tensors[ti];
        const char *rest = NULL;
        int l = model_layer_of(t->name, &rest), nl = l;
        char *name = NULL;
        if (l >= 0 && l < p->before.n_layers) {
            nl = p->layer_map[l];
            bool dropped = nl < 0;
            /* a norm goes with the sub-block it feeds: what the config after implies */
            int id = model_layer_weight_id(&p->after, rest);
            int64_t shape[2];
            if (!dropped && id >= 0 && !layer_weight_shape(&p->after, nl, id, shape) && layer_weight_is_norm(id))
                dropped = true;
            if (!dropped)
                name = xasprintf("%s%d.%s", model_archs[p->after.arch].layer_prefix, nl, rest);
        } else {
            name = xstrdup(t->name);
        }
        int64_t rows = t->shape[0], cols = t->ndim == 2 ? t->shape[1] : 1;
        int64_t nr = name ? kept_indices(sl->mk[ti].ax[0], rows, NULL) : 0;
        int64_t nc = name ? kept_indices(t->ndim == 2 ? sl->mk[ti].ax[1] : NULL, cols, NULL) : 0;
        if (nr > 0 && nc > 0) {
            out->tensors = xrealloc(out->tensors, (size_t)(out->n_tensors + 1) * sizeof *out->tensors);
            tensor *dst = &out->tensors[out->n_tensors++];
            int64_t shape[2] = {nr, nc};
            tensor_init_shape(dst, name, t->ndim, shape); /* (nr, nc), as held */
            dst->dtype = t->dtype;
            dst->stored = t->stored;
            const double *cv = NULL; /* (nr) added to a bias (nc 1) */
            int rid = l >= 0 ? model_layer_weight_id(&p->before, rest) : -1;
            if (comp && l >= 0 && l < p->before.n_layers && rid == LW_BO)
                cv = comp[2 * l];
            if (comp && l >= 0 && l < p->before.n_layers && rid == LW_BDOWN)
                cv = comp[2 * l + 1];
            if (lazy && t->ndim == 2) { /* made when asked; vectors now (they are small) */
                sl->e[sl->n++] = (slice_entry){xstrdup(name), ti};
            } else {
                slice(t, &sl->mk[ti], cv, dst);
            }
        }
        free(name);
    }
    /* compensation biases the source lacks: zeros plus the removed channels' part */
    for (int l = 0; comp && l < p->before.n_layers; l++) {
        int nl = p->layer_map[l];
        for (int which = 0; which < 2; which++) {
            const char *rest = model_layer_weight_suffix(&p->after, which ? LW_BDOWN : LW_BO);
            const char *prefix = model_archs[p->after.arch].layer_prefix;
            if (!rest)
                die("%s: bias compensation needs a %s bias, which a %s model cannot have", src->source,
                    which ? "down projection" : "attention output", model_archs[p->after.arch].name);
            bool kept = nl >= 0 && (which ? p->after.ffn_dim[nl] > 0 : p->after.n_heads[nl] > 0);
            bool wanted = which ? p->after.down_bias : p->after.o_bias;
            if (!kept && comp[2 * l + which])
                warn("layer %d: the bias compensation of its removed %s goes with it", l, which ? "MLP" : "attention");
            char *src_name = xasprintf("%s%d.%s", prefix, l, rest);
            bool have = model_tensor(src, src_name) != NULL;
            free(src_name);
            if (!kept || !wanted || have)
                continue;
            char *name = xasprintf("%s%d.%s", prefix, nl, rest);
            int64_t shape[2] = {p->after.dim, 0};
            float *bias = xmalloc((size_t)p->after.dim * sizeof *bias); /* (D) */
            for (int64_t r = 0; r < p->after.dim; r++)
                bias[r] = comp[2 * l + which] ? (float)comp[2 * l + which][r] : 0.0f;
            tensor_set_f32(model_new_tensor(out, name, 1, shape), 0, p->after.dim, bias);
            free(bias);
            free(name);
        }
    }
    if (comp) {
        for (int i = 0; i < 2 * p->before.n_layers; i++)
            free(comp[i]);
        free(comp);
    }
    if (lazy) {
        qsort(sl->e, (size_t)sl->n, sizeof *sl->e, cmp_entry);
        out->values = &sl->values;
    } else {
        slicer_release(sl);
    }
    model_bind(out);
}

void prune_scan(model *src, model *out, bool scan_src, bool name_out)
{
    const slicer *sl = out->values && out->values->fill == slicer_fill ? out->values->ctx : NULL;
    model_scan *ss = scan_src ? model_scan_begin(&src->cfg) : NULL;
    model_scan *os = name_out ? model_scan_begin(&out->cfg) : NULL;
    int next = 0; /* src's next tensor to scan */
    for (int i = 0; os && i < out->n_tensors; i++) {
        const tensor *t = &out->tensors[i];
        if (ss && sl && !t->data) {
            slice_entry key = {t->name, 0}, *e = bsearch(&key, sl->e, (size_t)sl->n, sizeof key, cmp_entry);
            for (; e && next <= e->from; next++)
                model_scan_values(ss, &src->tensors[next], 0, src->tensors[next].numel);
        }
        tensor tmp;
        const tensor *v = tensor_values(t, out->values, &tmp);
        model_scan_values(os, v, 0, v->numel);
        tensor_values_done(v, &tmp);
    }
    for (; ss && next < src->n_tensors; next++)
        model_scan_values(ss, &src->tensors[next], 0, src->tensors[next].numel);
    if (ss) /* first: a value of src is named in src */
        model_scan_finish(src, ss);
    if (os)
        model_scan_finish(out, os);
}

void prune_mask(model *m, const group_set *gs, const prune_plan *p)
{
    m->fingerprint[0] = 0; /* units zeroed: other values */
    marks *mk = mark_removed(m, gs, p);
    for (int ti = 0; ti < m->n_tensors; ti++) {
        tensor *t = &m->tensors[ti];
        const char *rest;
        int l = model_layer_of(t->name, &rest);
        bool all = l >= 0 && l < p->before.n_layers && p->layer_map[l] < 0;
        int64_t rows = t->shape[0], cols = t->ndim == 2 ? t->shape[1] : 1;
        float *row = xmalloc((size_t)cols * sizeof *row); /* (cols) */
        for (int64_t r = 0; r < rows; r++) {
            tensor_get_f32(t, r * cols, cols, row);
            for (int64_t c = 0; c < cols; c++)
                if (all || (mk[ti].ax[0] && mk[ti].ax[0][r]) || (t->ndim == 2 && mk[ti].ax[1] && mk[ti].ax[1][c]))
                    row[c] = 0;
            tensor_set_f32(t, r * cols, cols, row);
        }
        free(row);
    }
    marks_free(mk, m->n_tensors);
}

