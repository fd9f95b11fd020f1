/* layer.c - one decoder layer, forward beside backward (see layer.h); what it
 * computes is read from the architecture's description (model_archs).
 *
 * Letters: B sequences, T tokens per sequence, N rows, D hidden, H query heads,
 * KV key/value heads, hd head dim, F MLP width, qd = H*hd, kvd = KV*hd. */
#include "compute/layer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/parallel.h"
#include "base/util.h"
#include "compute/kernels.h"
#include "compute/lora.h"
#include "compute/matmul.h"

/* out (N, O) = (or += when acc) in (N, I) @ W^T + b, plus the adapter of weight id
 * when there is one; the act hook sees in first. */
static void linear(const layer_hooks *h, int l, int id, const tensor *w, const tensor *b, float *out,
                   const float *in, int N, bool acc)
{
    if (h->act)
        h->act(h->act_ctx, w->name, in, N, (int)w->shape[1]);
    if (acc)
        matmul_accumulate(out, in, w, b, N);
    else
        matmul_forward(out, in, w, b, N);
    if (h->lora)
        lora_forward(h->lora, l, lora_target_of(id), out, in, N, h->dropout);
}

void rope_tables(float *cos_t, float *sin_t, int T, const model_config *c)
{
    int half = config_rope_dim(c) / 2;
    float *inv = xmalloc((size_t)half * sizeof *inv);
    config_rope_inv_freq(c, inv);
    rope_tables_freq(cos_t, sin_t, T, half, inv);
    free(inv);
}

void layer_positions(int start, int T, int prefix, int *pos, int *block_pos)
{
    for (int i = 0; i < T; i++) {
        int t = start + i;
        pos[i] = prefix == 0 || t < prefix ? t : prefix - 1;
        block_pos[i] = prefix == 0 || t < prefix ? 0 : t - prefix + 1;
    }
}

void layer_norm_forward(const model *m, const tensor *w, const tensor *b, float *out, float *rstd, const float *x,
                        int N)
{
    const model_config *c = &m->cfg;
    if (model_archs[c->arch].norm == NORM_LAYER)
        layernorm_forward(out, rstd, x, tensor_vector(w), tensor_vector(b), N, c->dim, c->norm_eps);
    else
        rmsnorm_forward(out, rstd, x, tensor_vector(w), N, c->dim, c->norm_eps);
}

void layer_norm_backward(const model *m, const tensor *w, float *dx, float *dw, float *db, const float *dout,
                         const float *x, const float *rstd, int N)
{
    const model_config *c = &m->cfg;
    if (model_archs[c->arch].norm == NORM_LAYER)
        layernorm_backward(dx, dw, db, dout, x, tensor_vector(w), rstd, N, c->dim);
    else
        rmsnorm_backward(dx, dw, dout, x, tensor_vector(w), rstd, N, c->dim);
}

int64_t layer_fused_width(const model *m)
{
    const model_config *c = &m->cfg;
    int64_t w = 0;
    for (int l = 0; l < c->n_layers; l++)
        for (int id = 0; id < LW_COUNT; id++) {
            fused_part parts[3];
            int64_t shape[2];
            if (model_fused_parts(c, l, id, parts) && layer_weight_shape(c, l, id, shape) && shape[0] > w)
                w = shape[0];
        }
    return w;
}

/* Part p of a fused map's output fused (N, W) into part (N, p->width), or back
 * (merge: part into its channels of fused, which it overwrites). */
static void fused_copy(float *fused, float *part, int64_t W, const fused_part *p, int N, bool merge)
{
    for (int n = 0; n < N; n++)
        for (int64_t j = 0; j < p->width; j += p->block) {
            float *f = fused + (size_t)n * W + p->offset + (j / p->block) * p->stride;
            float *q = part + (size_t)n * p->width + j;
            if (merge)
                memcpy(f, q, (size_t)p->block * sizeof(float));
            else
                memcpy(q, f, (size_t)p->block * sizeof(float));
        }
}

/* Rotary embedding of x (B, T, nh heads of hd, row stride ld) as the
 * architecture has it, forward (sign > 0) or backward. */
static void rope_apply(const model *m, const layer_causal *at, float *x, int nh, bool forward)
{
    const model_config *c = &m->cfg;
    int hd = c->head_dim, rd = config_rope_dim(c);
    void (*rot)(float *, const float *, const float *, int, int, int, int, int, int, const int *, int,
                enum rope_style) = forward ? rope_part_forward : rope_part_backward;
    rot(x, at->rope_cos, at->rope_sin, at->B, at->T, nh, hd, rd, 0, at->pos, nh * hd, c->rope_style);
    if (model_archs[c->arch].rope_2d && at->block_pos) /* block positions 0: no turn */
        rot(x, at->rope_cos, at->rope_sin, at->B, at->T, nh, hd, rd, rd, at->block_pos, nh * hd, c->rope_style);
}

/* Qwen3's q_norm or k_norm w on x (N rows of nh heads of hd): each head RMS-normed
 * over its hd channels with the one weight, in place; x_in (if not NULL) keeps x
 * and rstd (N*nh) the heads' 1/rms for the backward. */
static void head_norm(const model_config *c, const tensor *w, float *x, float *x_in, float *rstd, int N, int nh)
{
    int64_t rows = (int64_t)N * nh;
    if (x_in)
        memcpy(x_in, x, (size_t)rows * c->head_dim * sizeof(float));
    rmsnorm_forward(x, x_in ? rstd : NULL, x_in ? x_in : x, tensor_vector(w), (int)rows, c->head_dim, c->norm_eps);
}

/* Its backward: dx (the gradient of the normed heads) becomes that of x_in, in
 * place through scratch (as large as dx); dw += the weight's. */
static void head_norm_backward(const model_config *c, const tensor *w, float *dw, float *dx, float *scratch,
                               const float *x_in, const float *rstd, int N, int nh)
{
    int64_t rows = (int64_t)N * nh;
    size_t n = (size_t)rows * c->head_dim;
    parallel_zero(scratch, n * sizeof(float));
    rmsnorm_backward(scratch, dw, dx, x_in, tensor_vector(w), rstd, (int)rows, c->head_dim);
    memcpy(dx, scratch, n * sizeof(float));
}

void layer_attend_causal(void *ctx, const model *m, int l, layer_acts *a, int N)
{
    const layer_causal *at = ctx;
    const model_config *c = &m->cfg;
    int H = c->n_heads[l], KV = c->n_kv_heads[l], hd = c->head_dim;
    (void)N;
    rope_apply(m, at, a->q, H, true);
    rope_apply(m, at, a->k, KV, true);
    attention_forward(a->ctx, at->att, a->q, a->k, a->v, at->B, at->T, H, KV, hd, at->prefix);
}

/* The map id (and bias) of layer l from in: into outs[0] (N, width), or when the
 * weight is fused, into fused and then its parts into outs[p]. */
static void linear_parts(const model *m, const layer_hooks *h, int l, int id, int bias, float *fused, float *const *outs,
                         const float *in, int N)
{
    const model_config *c = &m->cfg;
    const layer_weights *w = &m->layers[l];
    const tensor *b = bias >= 0 ? w->slot[bias] : NULL;
    fused_part parts[3];
    int n = model_fused_parts(c, l, id, parts);
    if (!n) {
        linear(h, l, id, w->slot[id], b, outs[0], in, N, false);
        return;
    }
    linear(h, l, id, w->slot[id], b, fused, in, N, false);
    for (int p = 0; p < n; p++)
        fused_copy(fused, outs[p], w->slot[id]->shape[0], &parts[p], N, false);
}

/* out (N, D) = alpha * xn: the residual term of a scaled-residual architecture. */
static void scaled_residual(const model_config *c, float *out, const float *xn, int N)
{
    float alpha = (float)sqrt(2.0 * c->alpha_layers);
    for (int64_t i = 0; i < (int64_t)N * c->dim; i++)
        out[i] = alpha * xn[i];
}

void layer_forward(const model *m, int l, const layer_hooks *h, layer_acts *a, const float *x, float *out, int N,
                   bool full)
{
    const model_config *c = &m->cfg;
    const arch_desc *A = &model_archs[c->arch];
    const layer_weights *w = &m->layers[l];
    if (out != x)
        memcpy(out, x, (size_t)N * c->dim * sizeof(float));
    if (c->n_heads[l] > 0) {
        /* out += o(attention(rope(q), rope(k), v)), q/k/v of norm(x) */
        layer_norm_forward(m, w->attn_norm, w->attn_norm_b, a->xn_a, a->rstd_a, x, N);
        if (A->qkv == FUSED_NONE) {
            linear_parts(m, h, l, LW_Q, LW_BQ, NULL, &a->q, a->xn_a, N);
            linear_parts(m, h, l, LW_K, LW_BK, NULL, &a->k, a->xn_a, N);
            linear_parts(m, h, l, LW_V, LW_BV, NULL, &a->v, a->xn_a, N);
        } else {
            float *const qkv[3] = {a->q, a->k, a->v};
            linear_parts(m, h, l, LW_QKV, LW_BQKV, a->fused, qkv, a->xn_a, N);
        }
        if (A->qk_norm) {
            head_norm(c, w->q_norm, a->q, a->q_in, a->rstd_q, N, c->n_heads[l]);
            head_norm(c, w->k_norm, a->k, a->k_in, a->rstd_k, N, c->n_kv_heads[l]);
        }
        h->attend(h->attend_ctx, m, l, a, N);
        if (A->scaled_residual)
            scaled_residual(c, out, a->xn_a, N);
        linear(h, l, LW_O, w->wo, w->bo, out, a->ctx, N, true);
    }
    if (full && a->xmid && a->xmid != out) /* kept for the backward (backward_state_keep) */
        memcpy(a->xmid, out, (size_t)N * c->dim * sizeof(float));
    if (c->ffn_dim[l] > 0) {
        /* out += down(silu(gate(h)) * up(h)) or down(gelu(up(h))), h = norm(out) */
        int64_t NF = (int64_t)N * c->ffn_dim[l];
        layer_norm_forward(m, w->ffn_norm, w->ffn_norm_b, a->xn_m, a->rstd_m, out, N);
        if (A->mlp == MLP_GELU) {
            linear_parts(m, h, l, LW_UP, LW_BUP, NULL, &a->up, a->xn_m, N);
            gelu_forward(a->hid, a->up, NF);
        } else {
            if (A->fused_gate_up) {
                float *const gu[2] = {a->gate, a->up};
                linear_parts(m, h, l, LW_GATE_UP, -1, a->fused, gu, a->xn_m, N);
            } else {
                linear_parts(m, h, l, LW_GATE, -1, NULL, &a->gate, a->xn_m, N);
                linear_parts(m, h, l, LW_UP, -1, NULL, &a->up, a->xn_m, N);
            }
            swiglu_forward(a->hid, a->gate, a->up, NF);
        }
        if (full) {
            if (A->scaled_residual)
                scaled_residual(c, out, a->xn_m, N);
            linear(h, l, LW_DOWN, w->w_down, w->bdown, out, a->hid, N, true);
        }
    }
}

void layers_forward(const model *m, const layer_hooks *h, layer_acts *a, const int *tokens, float *x, int N)
{
    model_prefetch_layer(m, 0);
    embedding_forward(x, tokens, m->embed, N);
    for (int l = 0; l < m->cfg.n_layers; l++) {
        model_prefetch_layer(m, l + 1);
        layer_forward(m, l, h, a, x, x, N, true);
    }
}

/* The backward of linear(): din += dout @ W, the weight's gradient into g[id]
 * or to rows (when not NULL), the bias's into g[bias], then the adapter's. */
static void linear_backward(struct lora_set *lora, int l, int id, int bias, const tensor *w, float *const g[LW_COUNT],
                            const weight_rows_sink *rows, float *din, const float *dout, const float *in, int N)
{
    float *db = bias >= 0 ? g[bias] : NULL;
    if (rows)
        matmul_backward_rows(din, db, dout, in, w, N, rows);
    else
        matmul_backward(din, g[id], db, dout, in, w, N);
    if (lora)
        lora_backward(lora, l, lora_target_of(id), din, dout, in, N);
}

/* d->dxn += alpha * d->dx: the scaled residual term's gradient reaches the norm's
 * output; the block's input then has no direct path (d->dx is cleared). */
static void scaled_residual_backward(const model_config *c, layer_dacts *d, int N)
{
    float alpha = (float)sqrt(2.0 * c->alpha_layers);
    for (int64_t i = 0; i < (int64_t)N * c->dim; i++) {
        d->dxn[i] += alpha * d->dx[i];
        d->dx[i] = 0.0f;
    }
}

/* The backward of linear_parts: dparts[p] (N, width) merged into fused (the
 * forward's, now scratch) when the weight is fused; din += d @ W, the weight's
 * and bias's gradients into g, then the adapter's. */
static void linear_parts_backward(const model *m, struct lora_set *lora, int l, int id, int bias, float *fused,
                                  float *const *dparts, float *const g[LW_COUNT], const weight_rows_sink *rows,
                                  float *din, const float *in, int N)
{
    const model_config *c = &m->cfg;
    const tensor *w = m->layers[l].slot[id];
    fused_part parts[3];
    int n = model_fused_parts(c, l, id, parts);
    const float *dout = dparts[0];
    for (int p = 0; p < n; p++)
        fused_copy(fused, dparts[p], w->shape[0], &parts[p], N, true);
    if (n)
        dout = fused;
    linear_backward(lora, l, id, bias, w, g, rows, din, dout, in, N);
}

void layer_backward(const model *m, int l, struct lora_set *lora, const layer_causal *att, layer_acts *a,
                    layer_dacts *d, const float *x, float *const g[LW_COUNT], const weight_rows_sink *rows, bool kept)
{
    const model_config *c = &m->cfg;
    const arch_desc *A = &model_archs[c->arch];
    const layer_weights *w = &m->layers[l];
    int B = att->B, T = att->T, N = B * T, D = c->dim, hd = c->head_dim;
    int H = c->n_heads[l], KV = c->n_kv_heads[l], F = c->ffn_dim[l];
    int qd = H * hd, kvd = KV * hd;
    layer_hooks h = {.attend = layer_attend_causal, .attend_ctx = (void *)att, .lora = lora, .dropout = true};
    if (!kept)
        layer_forward(m, l, &h, a, x, a->xmid, N, false);
    if (F > 0) {
        /* out = xmid (or alpha * xn) + down(silu(gate) * up or gelu(up)), of xn = norm(xmid) */
        int64_t NF = (int64_t)N * F;
        parallel_zero(d->dhid, (size_t)NF * sizeof(float));
        linear_backward(lora, l, LW_DOWN, LW_BDOWN, w->w_down, g, rows, d->dhid, d->dx, a->hid, N);
        parallel_zero(d->dxn, (size_t)N * D * sizeof(float));
        if (A->scaled_residual)
            scaled_residual_backward(c, d, N);
        if (A->mlp == MLP_GELU) {
            gelu_backward(d->dhid, d->dhid, a->up, NF); /* now dup */
            linear_parts_backward(m, lora, l, LW_UP, LW_BUP, NULL, &d->dhid, g, rows, d->dxn, a->xn_m, N);
        } else {
            swiglu_backward(a->gate, a->up, d->dhid, a->gate, a->up, NF); /* now dgate, dup */
            if (A->fused_gate_up) {
                float *const dgu[2] = {a->gate, a->up};
                linear_parts_backward(m, lora, l, LW_GATE_UP, -1, a->fused, dgu, g, rows, d->dxn, a->xn_m, N);
            } else {
                linear_parts_backward(m, lora, l, LW_GATE, -1, NULL, &a->gate, g, rows, d->dxn, a->xn_m, N);
                linear_parts_backward(m, lora, l, LW_UP, -1, NULL, &a->up, g, rows, d->dxn, a->xn_m, N);
            }
        }
        layer_norm_backward(m, w->ffn_norm, d->dx, g[LW_FFN_NORM], g[LW_FFN_NORM_B], d->dxn, a->xmid, a->rstd_m, N);
    }
    if (H > 0) {
        /* xmid = x (or alpha * xn) + o(attention(rope(q), rope(k), v)), q/k/v of xn = norm(x) */
        parallel_zero(d->dctx, (size_t)N * qd * sizeof(float));
        linear_backward(lora, l, LW_O, LW_BO, w->wo, g, rows, d->dctx, d->dx, a->ctx, N);
        parallel_zero(d->dq, (size_t)N * qd * sizeof(float));
        parallel_zero(d->dk, (size_t)N * kvd * sizeof(float));
        parallel_zero(d->dv, (size_t)N * kvd * sizeof(float));
        attention_backward(d->dq, d->dk, d->dv, d->dctx, att->att, a->q, a->k, a->v, B, T, H, KV, hd,
                           att->prefix);
        rope_apply(m, att, d->dq, H, false);
        rope_apply(m, att, d->dk, KV, false);
        if (A->qk_norm) { /* d->dctx is free now: the norms' scratch */
            head_norm_backward(c, w->q_norm, g[LW_Q_NORM], d->dq, d->dctx, a->q_in, a->rstd_q, N, H);
            head_norm_backward(c, w->k_norm, g[LW_K_NORM], d->dk, d->dctx, a->k_in, a->rstd_k, N, KV);
        }
        parallel_zero(d->dxn, (size_t)N * D * sizeof(float));
        if (A->scaled_residual)
            scaled_residual_backward(c, d, N);
        if (A->qkv == FUSED_NONE) {
            linear_parts_backward(m, lora, l, LW_Q, LW_BQ, NULL, &d->dq, g, rows, d->dxn, a->xn_a, N);
            linear_parts_backward(m, lora, l, LW_K, LW_BK, NULL, &d->dk, g, rows, d->dxn, a->xn_a, N);
            linear_parts_backward(m, lora, l, LW_V, LW_BV, NULL, &d->dv, g, rows, d->dxn, a->xn_a, N);
        } else {
            float *const dqkv[3] = {d->dq, d->dk, d->dv};
            linear_parts_backward(m, lora, l, LW_QKV, LW_BQKV, a->fused, dqkv, g, rows, d->dxn, a->xn_a, N);
        }
        layer_norm_backward(m, w->attn_norm, d->dx, g[LW_ATTN_NORM], g[LW_ATTN_NORM_B], d->dxn, x, a->rstd_a, N);
    }
}
