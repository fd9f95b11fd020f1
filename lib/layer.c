/* layer.c - one LLaMA decoder layer, forward beside backward (see layer.h).
 *
 * Letters: B sequences, T tokens per sequence, N rows, D hidden, H query heads,
 * KV key/value heads, hd head dim, F MLP width, qd = H*hd, kvd = KV*hd. */
#include "layer.h"

#include <string.h>

#include "kernels.h"
#include "lora.h"
#include "matmul.h"

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

void layer_attend_causal(void *ctx, const model *m, int l, layer_acts *a, int N)
{
    const layer_causal *at = ctx;
    const llama_config *c = &m->cfg;
    int H = c->n_heads[l], KV = c->n_kv_heads[l], hd = c->head_dim;
    (void)N;
    rope_forward(a->q, at->rope_cos, at->rope_sin, at->B, at->T, H, hd, H * hd, c->rope_style);
    rope_forward(a->k, at->rope_cos, at->rope_sin, at->B, at->T, KV, hd, KV * hd, c->rope_style);
    attention_forward(a->ctx, at->att, a->q, a->k, a->v, at->B, at->T, H, KV, hd);
}

void layer_forward(const model *m, int l, const layer_hooks *h, layer_acts *a, const float *x, float *out, int N,
                   bool full)
{
    const llama_config *c = &m->cfg;
    const layer_weights *w = &m->layers[l];
    int D = c->dim;
    if (out != x)
        memcpy(out, x, (size_t)N * D * sizeof(float));
    if (c->n_heads[l] > 0) {
        /* out += o(attention(rope(q), rope(k), v)), q/k/v of rmsnorm(x) */
        rmsnorm_forward(a->xn_a, a->rstd_a, x, tensor_vector(w->attn_norm), N, D, c->norm_eps);
        linear(h, l, LW_Q, w->wq, w->bq, a->q, a->xn_a, N, false);
        linear(h, l, LW_K, w->wk, w->bk, a->k, a->xn_a, N, false);
        linear(h, l, LW_V, w->wv, w->bv, a->v, a->xn_a, N, false);
        h->attend(h->attend_ctx, m, l, a, N);
        linear(h, l, LW_O, w->wo, w->bo, out, a->ctx, N, true);
    }
    if (c->ffn_dim[l] > 0) {
        /* out += down(silu(gate(h)) * up(h)), h = rmsnorm(out) */
        rmsnorm_forward(a->xn_m, a->rstd_m, out, tensor_vector(w->ffn_norm), N, D, c->norm_eps);
        linear(h, l, LW_GATE, w->w_gate, NULL, a->gate, a->xn_m, N, false);
        linear(h, l, LW_UP, w->w_up, NULL, a->up, a->xn_m, N, false);
        swiglu_forward(a->hid, a->gate, a->up, (int64_t)N * c->ffn_dim[l]);
        if (full)
            linear(h, l, LW_DOWN, w->w_down, w->bdown, out, a->hid, N, true);
    }
}

void layers_forward(const model *m, const layer_hooks *h, layer_acts *a, const int *tokens, float *x, int N)
{
    embedding_forward(x, tokens, m->embed, N);
    for (int l = 0; l < m->cfg.n_layers; l++)
        layer_forward(m, l, h, a, x, x, N, true);
}

/* The backward of linear(): din += dout @ W, g[id] and g[bias] the weight's and
 * bias's gradients, then the adapter's. */
static void linear_backward(struct lora_set *lora, int l, int id, int bias, const tensor *w, float *const g[LW_COUNT],
                            float *din, const float *dout, const float *in, int N)
{
    matmul_backward(din, g[id], bias >= 0 ? g[bias] : NULL, dout, in, w, N);
    if (lora)
        lora_backward(lora, l, lora_target_of(id), din, dout, in, N);
}

void layer_backward(const model *m, int l, struct lora_set *lora, const layer_causal *att, layer_acts *a,
                    layer_dacts *d, const float *x, float *const g[LW_COUNT])
{
    const llama_config *c = &m->cfg;
    const layer_weights *w = &m->layers[l];
    int B = att->B, T = att->T, N = B * T, D = c->dim, hd = c->head_dim;
    int H = c->n_heads[l], KV = c->n_kv_heads[l], F = c->ffn_dim[l];
    int qd = H * hd, kvd = KV * hd;
    layer_hooks h = {.attend = layer_attend_causal, .attend_ctx = (void *)att, .lora = lora, .dropout = true};
    layer_forward(m, l, &h, a, x, a->xmid, N, false);
    if (F > 0) {
        /* out = xmid + down(silu(gate) * up), gate/up of rmsnorm(xmid) */
        memset(d->dhid, 0, (size_t)N * F * sizeof(float));
        linear_backward(lora, l, LW_DOWN, LW_BDOWN, w->w_down, g, d->dhid, d->dx, a->hid, N);
        swiglu_backward(a->gate, a->up, d->dhid, a->gate, a->up, (int64_t)N * F); /* now dgate, dup */
        memset(d->dxn, 0, (size_t)N * D * sizeof(float));
        matmul_backward(d->dxn, g[LW_GATE], NULL, a->gate, a->xn_m, w->w_gate, N);
        matmul_backward(d->dxn, g[LW_UP], NULL, a->up, a->xn_m, w->w_up, N);
        if (lora) {
            lora_backward(lora, l, lora_target_of(LW_GATE), d->dxn, a->gate, a->xn_m, N);
            lora_backward(lora, l, lora_target_of(LW_UP), d->dxn, a->up, a->xn_m, N);
        }
        rmsnorm_backward(d->dx, g[LW_FFN_NORM], d->dxn, a->xmid, tensor_vector(w->ffn_norm), a->rstd_m, N, D);
    }
    if (H > 0) {
        /* xmid = x + o(attention(rope(q), rope(k), v)), q/k/v of rmsnorm(x) */
        memset(d->dctx, 0, (size_t)N * qd * sizeof(float));
        linear_backward(lora, l, LW_O, LW_BO, w->wo, g, d->dctx, d->dx, a->ctx, N);
        memset(d->dq, 0, (size_t)N * qd * sizeof(float));
        memset(d->dk, 0, (size_t)N * kvd * sizeof(float));
        memset(d->dv, 0, (size_t)N * kvd * sizeof(float));
        attention_backward(d->dq, d->dk, d->dv, d->dp, d->dctx, att->att, a->q, a->k, a->v, B, T, H, KV, hd);
        rope_backward(d->dq, att->rope_cos, att->rope_sin, B, T, H, hd, qd, c->rope_style);
        rope_backward(d->dk, att->rope_cos, att->rope_sin, B, T, KV, hd, kvd, c->rope_style);
        memset(d->dxn, 0, (size_t)N * D * sizeof(float));
        matmul_backward(d->dxn, g[LW_Q], g[LW_BQ], d->dq, a->xn_a, w->wq, N);
        matmul_backward(d->dxn, g[LW_K], g[LW_BK], d->dk, a->xn_a, w->wk, N);
        matmul_backward(d->dxn, g[LW_V], g[LW_BV], d->dv, a->xn_a, w->wv, N);
        if (lora) {
            lora_backward(lora, l, lora_target_of(LW_Q), d->dxn, d->dq, a->xn_a, N);
            lora_backward(lora, l, lora_target_of(LW_K), d->dxn, d->dk, a->xn_a, N);
            lora_backward(lora, l, lora_target_of(LW_V), d->dxn, d->dv, a->xn_a, N);
        }
        rmsnorm_backward(d->dx, g[LW_ATTN_NORM], d->dxn, x, tensor_vector(w->attn_norm), a->rstd_a, N, D);
    }
}
