/* backward.c - the gradient of the mean token cross-entropy with respect to every
 * weight of a model of any architecture, one layer at a time, in bounded memory.
 *
 * Letters: B sequences, T tokens per sequence, N = B*T rows, D hidden, V vocab,
 * L layers, H query heads, KV key/value heads, hd head dim, F MLP width (per
 * layer), qd = H*hd, kvd = KV*hd.
 *
 * Memory. The forward pass keeps the residual stream at the input of every
 * layer (L+1 of (N, D)), the final norm's output and the logits (N, V), and the
 * internals (norms, q/k/v, attention probabilities, gate/up) of the layers
 * backward_state_keep made room for. The backward pass walks down the layers; for
 * each it takes those internals, or recomputes them from the saved input (the
 * same computation: the results are the same either way), computes that layer's
 * weight gradients into one buffer sized for the largest layer, hands them to
 * the sink and reuses the buffer for the next layer. With a rows sink the
 * linear maps' gradients are made a panel of rows at a time instead and handed
 * over as they are made; the buffer holds the rest (norms, biases) and its
 * pages for the maps are never touched. The logits become their own gradient in
 * place; the LM head's weight gradient is computed last, from them, then the
 * embedding's in the same buffer (tied: the embedding gets both of its uses
 * there). So the peak is
 *     weights + (L+1) N D + N V + one layer's internals
 *     + max(largest layer, embedding)
 * and nothing the size of the whole model's gradient is ever held.
 *
 * Each layer is layer_forward and layer_backward (layer.c), the same layer the
 * inference passes run; the gradient slots of a layer are those of the weight
 * table (model.h). */
#include "compute/backward.h"

#include <stdio.h>
#include <string.h>

#include "base/arena.h"
#include "base/parallel.h"
#include "base/util.h"
#include "compute/forward.h"
#include "compute/kernels.h"
#include "compute/layer.h"
#include "compute/matmul.h"

struct backward_state {
    int B, T;        /* the batch of the next pass */
    int maxB, maxT;  /* the batch the buffers are sized for */
    size_t arena_floats;
    float *arena;
    /* saved by the forward pass */
    float *xs;       /* (L+1, N, D) residual stream entering each layer, then leaving the last */
    float *xnf;      /* (N, D) final norm's output (the LM head's input) */
    float *rstdf;    /* (N) */
    float *logits;   /* (N, V); the backward turns them into dlogits in place */
    layer_acts a;    /* one layer's internals, recomputed from its saved input (layer.h);
                        (N, D) norms and xmid, (N, maxH*hd) q and ctx, (N, maxKV*hd) k and
                        v, (N, maxF) gate, up (their gradients in place in the backward) and hid */
    layer_dacts d;   /* activation gradients, the same sizes */
    layer_causal att;/* att (B, maxH, T, T) softmax probabilities, rope tables (T, hd/2) */
    float *rope_cos, *rope_sin;
    /* the internals the forward pass keeps for layers keep_from.. L-1 (backward_state_keep) */
    int keep_from;   /* L: none */
    layer_acts *kept;/* (L) */
    float **kept_att;/* (L) each (B, H of the layer, T, T) */
    float *kept_arena;
    size_t kept_floats;
    struct lora_set *lora; /* backward_state_set_lora */
    bool no_outer;   /* backward_state_skip_outer */
    weight_rows_fn *rows_fn; /* backward_state_set_rows_sink */
    /* weight gradients: one layer's, or the embedding's, or the LM head's */
    float *grad;     /* (max(largest layer, V*D)) */
    float *dnormf;   /* (D) the final norm's */
    float *dnormf_b; /* (D) the final norm's bias's (LayerNorm) */
};

/* Element count of each weight of layer l (0 where absent), by slot of the
 * weight table (model.h). */
static void layer_sizes(const model_config *c, int l, size_t n[LW_COUNT])
{
    for (int id = 0; id < LW_COUNT; id++) {
        int64_t shape[2];
        int ndim = layer_weight_shape(c, l, id, shape);
        n[id] = ndim == 0 ? 0 : (size_t)shape[0] * (ndim == 2 ? (size_t)shape[1] : 1);
    }
}

/* Point g[i] into buf at consecutive, aligned offsets (NULL where n[i] is 0, or
 * everywhere when buf is NULL: sizing only); returns the floats used. */
static size_t point_grads(float *buf, const size_t *n, int count, float **g)
{
    size_t off = 0;
    for (int i = 0; i < count; i++) {
        g[i] = n[i] && buf ? buf + off : NULL;
        off += arena_round(n[i]);
    }
    return off;
}

backward_state *backward_state_new(const model *m, int B, int T)
{
    const model_config *c = &m->cfg;
    if (!m->has_weights)
        die("%s: the backward pass needs weights", m->source ? m->source : "model");
    if (B <= 0 || T <= 0)
        die("backward_state_new: bad batch %d x %d", B, T);
    if (c->head_dim <= 0 || c->head_dim % 2)
        die("%s: head_dim %d must be even and positive", m->source ? m->source : "model", c->head_dim);
    backward_state *t = xcalloc(1, sizeof *t);
    t->B = t->maxB = B;
    t->T = t->maxT = T;
    size_t N = (size_t)B * T, D = (size_t)c->dim, V = (size_t)c->vocab, hd = (size_t)c->head_dim;
    size_t rd = (size_t)config_rope_dim(c);
    bool qk = model_archs[c->arch].qk_norm;
    size_t L = (size_t)c->n_layers, maxH = 0, maxKV = 0, maxF = 0, maxgrad = 0;
    for (int l = 0; l < c->n_layers; l++) {
        maxH = (size_t)c->n_heads[l] > maxH ? (size_t)c->n_heads[l] : maxH;
        maxKV = (size_t)c->n_kv_heads[l] > maxKV ? (size_t)c->n_kv_heads[l] : maxKV;
        maxF = (size_t)c->ffn_dim[l] > maxF ? (size_t)c->ffn_dim[l] : maxF;
        size_t n[LW_COUNT];
        float *g[LW_COUNT];
        layer_sizes(c, l, n);
        size_t used = point_grads(NULL, n, LW_COUNT, g);
        maxgrad = used > maxgrad ? used : maxgrad;
    }
    maxgrad = V * D > maxgrad ? V * D : maxgrad; /* the outer tensors' gradients, one at a time */
    arena_part bufs[] = {
        {&t->xs, (L + 1) * N * D},
        {&t->xnf, N * D},
        {&t->rstdf, N},
        {&t->logits, N * V},
        {&t->a.xn_a, N * D},
        {&t->a.rstd_a, N},
        {&t->a.q, N * maxH * hd},
        {&t->a.k, N * maxKV * hd},
        {&t->a.v, N * maxKV * hd},
        {&t->a.q_in, qk ? N * maxH * hd : 0},
        {&t->a.k_in, qk ? N * maxKV * hd : 0},
        {&t->a.rstd_q, qk ? N * maxH : 0},
        {&t->a.rstd_k, qk ? N * maxKV : 0},
        {&t->att.att, (size_t)B * maxH * T * T},
        {&t->a.ctx, N * maxH * hd},
        {&t->a.xmid, N * D},
        {&t->a.xn_m, N * D},
        {&t->a.rstd_m, N},
        {&t->a.gate, N * maxF},
        {&t->a.up, N * maxF},
        {&t->a.hid, N * maxF},
        {&t->rope_cos, (size_t)T * rd / 2},
        {&t->rope_sin, (size_t)T * rd / 2},
        {&t->a.fused, N * (size_t)layer_fused_width(m)},
        {&t->d.dx, N * D},
        {&t->d.dxn, N * D},
        {&t->d.dq, N * maxH * hd},
        {&t->d.dk, N * maxKV * hd},
        {&t->d.dv, N * maxKV * hd},
        {&t->d.dctx, N * maxH * hd},
        {&t->d.dhid, N * maxF},
        {&t->grad, maxgrad},
        {&t->dnormf, D},
        {&t->dnormf_b, D},
    };
    t->arena = arena_alloc(bufs, sizeof bufs / sizeof bufs[0], &t->arena_floats);
    rope_tables(t->rope_cos, t->rope_sin, T, c);
    t->att = (layer_causal){B, T, t->att.att, t->rope_cos, t->rope_sin, 0, NULL, NULL};
    t->keep_from = c->n_layers;
    t->kept = xcalloc((size_t)c->n_layers + 1, sizeof *t->kept);
    t->kept_att = xcalloc((size_t)c->n_layers + 1, sizeof *t->kept_att);
    return t;
}

/* The parts of layer l's internals for B x T tokens, pointing into a and *att;
 * returns their count (at most KEPT_PARTS). */
enum { KEPT_PARTS = 17 };
static size_t kept_parts(const model *m, int l, int B, int T, layer_acts *a, float **att, arena_part *p)
{
    const model_config *c = &m->cfg;
    size_t N = (size_t)B * T, D = (size_t)c->dim, hd = (size_t)c->head_dim, H = (size_t)c->n_heads[l],
           KV = (size_t)c->n_kv_heads[l], F = (size_t)c->ffn_dim[l];
    bool qk = model_archs[c->arch].qk_norm;
    arena_part parts[KEPT_PARTS] = {
        {&a->xn_a, N * D},
        {&a->rstd_a, N},
        {&a->q, N * H * hd},
        {&a->k, N * KV * hd},
        {&a->v, N * KV * hd},
        {&a->q_in, qk ? N * H * hd : 0},
        {&a->k_in, qk ? N * KV * hd : 0},
        {&a->rstd_q, qk ? N * H : 0},
        {&a->rstd_k, qk ? N * KV : 0},
        {att, (size_t)B * H * T * T},
        {&a->ctx, N * H * hd},
        {&a->xmid, N * D},
        {&a->xn_m, N * D},
        {&a->rstd_m, N},
        {&a->gate, N * F},
        {&a->up, N * F},
        {&a->hid, N * F},
    };
    memcpy(p, parts, sizeof parts);
    return KEPT_PARTS;
}

size_t backward_layer_kept_bytes(const model *m, int l, int B, int T)
{
    layer_acts a;
    float *att;
    arena_part p[KEPT_PARTS];
    size_t n = kept_parts(m, l, B, T, &a, &att, p), floats = 0;
    for (size_t i = 0; i < n; i++)
        floats += arena_round(p[i].n);
    return floats * sizeof(float);
}

size_t backward_state_keep(backward_state *t, const model *m, size_t budget)
{
    int L = m->cfg.n_layers, from = L;
    size_t used = 0;
    while (from > 0 && used + backward_layer_kept_bytes(m, from - 1, t->maxB, t->maxT) <= budget)
        used += backward_layer_kept_bytes(m, --from, t->maxB, t->maxT);
    free(t->kept_arena);
    t->kept_arena = NULL;
    t->kept_floats = 0;
    t->keep_from = from;
    if (from == L)
        return 0;
    arena_part *parts = xmalloc((size_t)(L - from) * KEPT_PARTS * sizeof *parts);
    size_t n = 0;
    for (int l = from; l < L; l++) {
        n += kept_parts(m, l, t->maxB, t->maxT, &t->kept[l], &t->kept_att[l], parts + n);
        t->kept[l].fused = t->a.fused; /* a fused map's scratch, shared */
    }
    t->kept_arena = arena_alloc(parts, n, &t->kept_floats);
    free(parts);
    return t->kept_floats * sizeof(float);
}

/* Smaller batches use a prefix of every buffer; the rotary tables' first T rows
 * are those of T positions. */
void backward_state_set_batch(backward_state *t, int B, int T)
{
    if (B <= 0 || T <= 0 || B > t->maxB || T > t->maxT)
        die("backward_state_set_batch: %d x %d does not fit buffers made for %d x %d", B, T, t->maxB, t->maxT);
    t->B = t->att.B = B;
    t->T = t->att.T = T;
}

void backward_state_free(backward_state *t)
{
    if (!t)
        return;
    free(t->arena);
    free(t->kept_arena);
    free(t->kept);
    free(t->kept_att);
    free(t);
}

void backward_state_set_lora(backward_state *t, struct lora_set *lora) { t->lora = lora; }

void backward_state_skip_outer(backward_state *t, bool skip) { t->no_outer = skip; }

void backward_state_set_rows_sink(backward_state *t, weight_rows_fn *fn) { t->rows_fn = fn; }

size_t backward_state_bytes(const backward_state *t)
{
    return sizeof *t + (t->arena_floats + t->kept_floats) * sizeof(float);
}

/* The sink's record of w's gradient g (n values, checked against w). */
static weight_grad grad_of(const model *m, const tensor *w, const float *g, size_t n)
{
    if ((size_t)w->numel != n)
        die("%s: '%s' has %lld values, the config implies %zu", m->source ? m->source : "model", w->name,
            (long long)w->numel, n);
    return (weight_grad){w->name, w, g};
}

/* ---- the whole model ---- */

float *model_forward_kept(const model *m, backward_state *t, const int *tokens, act_sink_fn act, void *ctx)
{
    const model_config *c = &m->cfg;
    int N = t->B * t->T, D = c->dim, L = c->n_layers;
    size_t ND = (size_t)N * D;
    const tensor *head = m->lm_head;
    layer_hooks h = {.attend = layer_attend_causal, .attend_ctx = &t->att, .act = act, .act_ctx = ctx,
                     .lora = t->lora, .dropout = true};
    model_prefetch_layer(m, 0);
    embedding_forward(t->xs, tokens, m->embed, N);
    for (int l = 0; l < L; l++) {
        model_prefetch_layer(m, l + 1);
        /* a kept layer's internals stay in its own buffers (its xmid too), the others' are overwritten */
        layer_acts shared = t->a, *a = l >= t->keep_from ? &t->kept[l] : &shared;
        layer_causal at = t->att;
        if (l >= t->keep_from)
            at.att = t->kept_att[l];
        shared.xmid = NULL;
        h.attend_ctx = &at;
        layer_forward(m, l, &h, a, t->xs + l * ND, t->xs + (l + 1) * ND, N, true);
    }
    const float *xL = t->xs + L * ND;
    layer_norm_forward(m, m->final_norm, m->final_norm_b, t->xnf, t->rstdf, xL, N);
    if (act)
        act(ctx, head->name, t->xnf, N, D);
    matmul_forward(t->logits, t->xnf, head, NULL, N);
    return t->logits;
}

void model_backward_from_logits(const model *m, backward_state *t, const int *tokens, grad_sink_fn sink, void *ctx)
{
    const model_config *c = &m->cfg;
    int N = t->B * t->T, D = c->dim, L = c->n_layers;
    size_t ND = (size_t)N * D;
    const tensor *head = m->lm_head;
    const float *xL = t->xs + L * ND;
    const float *dlogits = t->logits; /* (N, V) the caller's gradient, in place of the logits */

    /* LM head (its weight gradient comes last, with the embedding's) and final norm */
    float *dx = t->d.dx, *dxn = t->d.dxn;
    parallel_zero(dxn, ND * sizeof(float));
    matmul_backward(dxn, NULL, NULL, dlogits, t->xnf, head, N);
    parallel_zero(dx, ND * sizeof(float));
    memset(t->dnormf, 0, (size_t)D * sizeof(float));
    memset(t->dnormf_b, 0, (size_t)D * sizeof(float));
    layer_norm_backward(m, m->final_norm, dx, t->dnormf, t->dnormf_b, dxn, xL, t->rstdf, N);

    /* layers, last to first; without a sink no weight gradient is wanted (a frozen
     * base under LoRA): the maps' dW and db products are skipped, only the norms'
     * (D values each, hd for q_norm and k_norm) are still computed, rmsnorm_backward needing
     * somewhere to put them; with a rows sink the maps' weights need no buffer */
    weight_grad wg[LW_COUNT];
    weight_rows_sink rows = {t->rows_fn, ctx};
    bool by_rows = sink && t->rows_fn;
    for (int l = L - 1; l >= 0; l--) {
        size_t n[LW_COUNT];
        float *g[LW_COUNT];
        layer_sizes(c, l, n);
        for (int i = 0; i < LW_COUNT; i++) {
            int64_t shape[2];
            if ((!sink && !layer_weight_is_norm(i)) || (by_rows && layer_weight_shape(c, l, i, shape) == 2))
                n[i] = 0;
        }
        size_t used = point_grads(t->grad, n, LW_COUNT, g);
        parallel_zero(t->grad, used * sizeof(float));
        model_prefetch_layer(m, l - 1);
        bool kept = l >= t->keep_from;
        layer_causal at = t->att;
        if (kept)
            at.att = t->kept_att[l];
        layer_backward(m, l, t->lora, &at, kept ? &t->kept[l] : &t->a, &t->d, t->xs + l * ND, g,
                       by_rows ? &rows : NULL, kept);
        int k = 0;
        for (int i = 0; i < LW_COUNT; i++)
            if (n[i])
                wg[k++] = grad_of(m, m->layers[l].slot[i], g[i], n[i]);
        if (sink)
            sink(ctx, l, wg, k);
    }

    /* the outer tensors through one buffer of V x D: an untied LM head alone, then
     * the embedding (a tied one with both of its uses) with the final norm */
    if (!sink || t->no_outer)
        return;
    size_t VD = (size_t)c->vocab * D;
    int k = 0;
    if (!c->tied) {
        parallel_zero(t->grad, VD * sizeof(float));
        matmul_backward(NULL, t->grad, NULL, dlogits, t->xnf, head, N);
        wg[k++] = grad_of(m, head, t->grad, VD);
        sink(ctx, -1, wg, k);
        k = 0;
    }
    parallel_zero(t->grad, VD * sizeof(float));
    if (c->tied)
        matmul_backward(NULL, t->grad, NULL, dlogits, t->xnf, head, N);
    embedding_backward(t->grad, dx, tokens, N, D);
    wg[k++] = grad_of(m, m->embed, t->grad, VD);
    wg[k++] = grad_of(m, m->final_norm, t->dnormf, (size_t)D);
    if (m->final_norm_b)
        wg[k++] = grad_of(m, m->final_norm_b, t->dnormf_b, (size_t)D);
    sink(ctx, -1, wg, k);
}

double model_loss_backward(const model *m, backward_state *t, const int *tokens, const int *targets,
                           grad_sink_fn sink, act_sink_fn act, void *ctx)
{
    int N = t->B * t->T, V = m->cfg.vocab;
    float *logits = model_forward_kept(m, t, tokens, act, ctx);
    /* loss = mean cross-entropy over the scored targets; dlogits in place */
    double sum = 0;
    int64_t count = 0;
    nll_accumulate(logits, targets, N, V, &sum, &count);
    crossentropy_softmax_backward(logits, logits, targets, N, V, count ? (float)(1.0 / count) : 0.0f);
    model_backward_from_logits(m, t, tokens, sink, ctx);
    return count ? sum / (double)count : 0.0;
}
