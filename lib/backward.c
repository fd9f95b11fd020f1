/* backward.c - the gradient of the mean token cross-entropy with respect to every
 * weight of a LLaMA model, one layer at a time, in bounded memory.
 *
 * Letters: B sequences, T tokens per sequence, N = B*T rows, D hidden, V vocab,
 * L layers, H query heads, KV key/value heads, hd head dim, F MLP width (per
 * layer), qd = H*hd, kvd = KV*hd.
 *
 * Memory. The forward pass keeps only the residual stream at the input of every
 * layer (L+1 of (N, D)), the final norm's output and the logits (N, V). The
 * backward pass walks down the layers; for each it recomputes the layer's
 * internals (norms, q/k/v, attention probabilities, gate/up) from the saved input,
 * computes that layer's weight gradients into one buffer sized for the largest
 * layer, hands them to the sink and reuses the buffer for the next layer. The
 * logits become their own gradient in place; the LM head's weight gradient is
 * computed last, from them, beside the embedding's (tied: the same buffer, so the
 * embedding gets both of its uses). So the peak is
 *     weights + (L+1) N D + N V + one layer's internals
 *     + max(largest layer, embedding + untied LM head)
 * and nothing the size of the whole model's gradient is ever held. */
#include "backward.h"

#include <stdio.h>
#include <string.h>

#include "kernels.h"
#include "llama.h"
#include "lora.h"
#include "util.h"

/* The weights of one layer, in the order they are delivered to the sink. */
enum {
    W_ATTN_NORM, W_Q, W_K, W_V, W_O, W_BQ, W_BK, W_BV, W_BO,
    W_FFN_NORM, W_GATE, W_UP, W_DOWN, W_BDOWN, W_LAYER_COUNT
};
static const char *const layer_tensor_suffix[W_LAYER_COUNT] = {
    "input_layernorm.weight", "self_attn.q_proj.weight", "self_attn.k_proj.weight",
    "self_attn.v_proj.weight", "self_attn.o_proj.weight", "self_attn.q_proj.bias",
    "self_attn.k_proj.bias", "self_attn.v_proj.bias", "self_attn.o_proj.bias",
    "post_attention_layernorm.weight", "mlp.gate_proj.weight", "mlp.up_proj.weight",
    "mlp.down_proj.weight", "mlp.down_proj.bias",
};
/* The tensors outside the layers: the embedding and an untied LM head share the
 * gradient buffer; the final norm's gradient, computed first, has its own. */
enum { W_EMBED, W_HEAD, W_OUTER_COUNT };

struct llama_train {
    int B, T;        /* the batch of the next pass */
    int maxB, maxT;  /* the batch the buffers are sized for */
    size_t arena_floats;
    float *arena;
    /* saved by the forward pass */
    float *xs;       /* (L+1, N, D) residual stream entering each layer, then leaving the last */
    float *xnf;      /* (N, D) final norm's output (the LM head's input) */
    float *rstdf;    /* (N) */
    float *logits;   /* (N, V); the backward turns them into dlogits in place */
    /* one layer's internals, recomputed from its saved input */
    float *xn_a, *rstd_a; /* (N, D), (N) attention norm */
    float *q;        /* (N, maxH*hd) after rotation */
    float *k, *v;    /* (N, maxKV*hd), k after rotation */
    float *att;      /* (B, maxH, T, T) softmax probabilities */
    float *ctx;      /* (N, maxH*hd) attention output, o_proj's input */
    float *xmid;     /* (N, D) residual between attention and MLP */
    float *xn_m, *rstd_m; /* (N, D), (N) MLP norm */
    float *gate, *up;/* (N, maxF); their gradients in place in the backward */
    float *hid;      /* (N, maxF) silu(gate) * up, down_proj's input */
    float *rope_cos, *rope_sin; /* (T, hd/2) */
    /* activation gradients */
    float *dx;       /* (N, D) d loss / d residual stream at the current depth */
    float *dxn;      /* (N, D) d loss / d a norm's output */
    float *dq;       /* (N, maxH*hd) */
    float *dk, *dv;  /* (N, maxKV*hd) */
    float *dctx;     /* (N, maxH*hd) */
    float *dp;       /* (T, T) attention scratch */
    float *dhid;     /* (N, maxF) */
    /* weight gradients: one layer's, or the embedding's and LM head's */
    float *grad;     /* (max(largest layer, V*D [+ V*D untied])) */
    float *dnormf;   /* (D) the final norm's */
};

/* Floats rounded up to a multiple of 16 (64 bytes), so every buffer is aligned. */
static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }

/* Element count of each weight of layer l (0 where absent). */
static void layer_sizes(const llama_config *c, int l, size_t n[W_LAYER_COUNT])
{
    size_t D = (size_t)c->dim, qd = (size_t)llama_q_dim(c, l), kvd = (size_t)llama_kv_dim(c, l);
    size_t F = (size_t)c->ffn_dim[l];
    bool attn = c->n_heads[l] > 0, mlp = F > 0;
    n[W_ATTN_NORM] = attn ? D : 0;
    n[W_Q] = qd * D;
    n[W_K] = n[W_V] = kvd * D;
    n[W_O] = D * qd;
    n[W_BQ] = attn && c->qkv_bias ? qd : 0;
    n[W_BK] = n[W_BV] = attn && c->qkv_bias ? kvd : 0;
    n[W_BO] = attn && c->o_bias ? D : 0;
    n[W_FFN_NORM] = mlp ? D : 0;
    n[W_GATE] = n[W_UP] = F * D;
    n[W_DOWN] = D * F;
    n[W_BDOWN] = mlp && c->down_bias ? D : 0;
}

static void outer_sizes(const llama_config *c, size_t n[W_OUTER_COUNT])
{
    size_t D = (size_t)c->dim, V = (size_t)c->vocab;
    n[W_EMBED] = V * D;
    n[W_HEAD] = c->tied ? 0 : V * D;
}

/* Point g[i] into buf at consecutive, aligned offsets (NULL where n[i] is 0);
 * returns the floats used. */
static size_t point_grads(float *buf, const size_t *n, int count, float **g)
{
    size_t off = 0;
    for (int i = 0; i < count; i++) {
        g[i] = n[i] ? buf + off : NULL;
        off += round16(n[i]);
    }
    return off;
}

llama_train *llama_train_new(const model *m, int B, int T)
{
    const llama_config *c = &m->cfg;
    if (!m->has_weights)
        die("%s: the backward pass needs weights", m->source ? m->source : "model");
    if (B <= 0 || T <= 0)
        die("llama_train_new: bad batch %d x %d", B, T);
    if (c->head_dim <= 0 || c->head_dim % 2)
        die("%s: head_dim %d must be even and positive", m->source ? m->source : "model", c->head_dim);
    llama_train *t = xcalloc(1, sizeof *t);
    t->B = t->maxB = B;
    t->T = t->maxT = T;
    size_t N = (size_t)B * T, D = (size_t)c->dim, V = (size_t)c->vocab, hd = (size_t)c->head_dim;
    size_t L = (size_t)c->n_layers, maxH = 0, maxKV = 0, maxF = 0, maxgrad = 0;
    for (int l = 0; l < c->n_layers; l++) {
        maxH = (size_t)c->n_heads[l] > maxH ? (size_t)c->n_heads[l] : maxH;
        maxKV = (size_t)c->n_kv_heads[l] > maxKV ? (size_t)c->n_kv_heads[l] : maxKV;
        maxF = (size_t)c->ffn_dim[l] > maxF ? (size_t)c->ffn_dim[l] : maxF;
        size_t n[W_LAYER_COUNT];
        float *g[W_LAYER_COUNT];
        layer_sizes(c, l, n);
        size_t used = point_grads(NULL, n, W_LAYER_COUNT, g);
        maxgrad = used > maxgrad ? used : maxgrad;
    }
    size_t no[W_OUTER_COUNT];
    float *go[W_OUTER_COUNT];
    outer_sizes(c, no);
    size_t used = point_grads(NULL, no, W_OUTER_COUNT, go);
    maxgrad = used > maxgrad ? used : maxgrad;
    struct {
        float **p;
        size_t n;
    } bufs[] = {
        {&t->xs, (L + 1) * N * D},
        {&t->xnf, N * D},
        {&t->rstdf, N},
        {&t->logits, N * V},
        {&t->xn_a, N * D},
        {&t->rstd_a, N},
        {&t->q, N * maxH * hd},
        {&t->k, N * maxKV * hd},
        {&t->v, N * maxKV * hd},
        {&t->att, (size_t)B * maxH * T * T},
        {&t->ctx, N * maxH * hd},
        {&t->xmid, N * D},
        {&t->xn_m, N * D},
        {&t->rstd_m, N},
        {&t->gate, N * maxF},
        {&t->up, N * maxF},
        {&t->hid, N * maxF},
        {&t->rope_cos, (size_t)T * hd / 2},
        {&t->rope_sin, (size_t)T * hd / 2},
        {&t->dx, N * D},
        {&t->dxn, N * D},
        {&t->dq, N * maxH * hd},
        {&t->dk, N * maxKV * hd},
        {&t->dv, N * maxKV * hd},
        {&t->dctx, N * maxH * hd},
        {&t->dp, (size_t)T * T},
        {&t->dhid, N * maxF},
        {&t->grad, maxgrad},
        {&t->dnormf, D},
    };
    size_t total = 0;
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        total += round16(bufs[i].n);
    t->arena_floats = total;
    t->arena = xmalloc_aligned(total * sizeof(float));
    float *p = t->arena;
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
        *bufs[i].p = p;
        p += round16(bufs[i].n);
    }
    rope_tables(t->rope_cos, t->rope_sin, T, c->head_dim, c->rope_theta);
    return t;
}

/* Smaller batches use a prefix of every buffer; the rotary tables' first T rows
 * are those of T positions. */
void llama_train_set_batch(llama_train *t, int B, int T)
{
    if (B <= 0 || T <= 0 || B > t->maxB || T > t->maxT)
        die("llama_train_set_batch: %d x %d does not fit buffers made for %d x %d", B, T, t->maxB, t->maxT);
    t->B = B;
    t->T = T;
}

void llama_train_free(llama_train *t)
{
    if (!t)
        return;
    free(t->arena);
    free(t);
}

size_t llama_train_bytes(const llama_train *t) { return sizeof *t + t->arena_floats * sizeof(float); }

/* The model's tensor called name; dies if the model has no such tensor (a model
 * built by hand, without its tensor list). */
static const tensor *need_tensor(const model *m, const char *name)
{
    const tensor *w = model_tensor(m, name);
    if (!w)
        die("%s: no tensor '%s' (the backward pass needs the model's tensor list)",
            m->source ? m->source : "model", name);
    return w;
}

static const tensor *layer_tensor(const model *m, int l, int which)
{
    char name[128];
    snprintf(name, sizeof name, "model.layers.%d.%s", l, layer_tensor_suffix[which]);
    return need_tensor(m, name);
}

static const tensor *head_tensor(const model *m)
{
    return need_tensor(m, m->cfg.tied ? "model.embed_tokens.weight" : "lm_head.weight");
}

/* The sink's record of w's gradient g (n values, checked against w). */
static weight_grad grad_of(const model *m, const tensor *w, const float *g, size_t n)
{
    if ((size_t)w->numel != n)
        die("%s: '%s' has %lld values, the config implies %zu", m->source ? m->source : "model", w->name,
            (long long)w->numel, n);
    return (weight_grad){w->name, w, g};
}

/* ---- one layer, forward and backward ---- */

/* Layer l's forward from its input x (N, D): every internal of t, and out (N, D) =
 * x + attention(x) (then + mlp(...) when full; without full, out is the residual
 * between the two sub-blocks, all the backward needs). act, if not NULL, receives
 * the input of every linear map. The same kernels in the same order as
 * llama_forward, so the results are the same. */
static void layer_forward(const model *m, llama_train *t, int l, const float *x, float *out, bool full,
                          act_sink_fn act, void *actx)
{
    const llama_config *c = &m->cfg;
    const layer_weights *w = &m->layers[l];
    int B = t->B, T = t->T, N = B * T, D = c->dim, hd = c->head_dim;
    int H = c->n_heads[l], KV = c->n_kv_heads[l], F = c->ffn_dim[l];
    int qd = H * hd, kvd = KV * hd;
    if (out != x)
        memcpy(out, x, (size_t)N * D * sizeof(float));
    if (H > 0) {
        rmsnorm_forward(t->xn_a, t->rstd_a, x, w->attn_norm, N, D, c->norm_eps);
        if (act) {
            act(actx, layer_tensor(m, l, W_Q)->name, t->xn_a, N, D);
            act(actx, layer_tensor(m, l, W_K)->name, t->xn_a, N, D);
            act(actx, layer_tensor(m, l, W_V)->name, t->xn_a, N, D);
        }
        matmul_forward(t->q, t->xn_a, w->wq, c->qkv_bias ? w->bq : NULL, N, D, qd);
        matmul_forward(t->k, t->xn_a, w->wk, c->qkv_bias ? w->bk : NULL, N, D, kvd);
        matmul_forward(t->v, t->xn_a, w->wv, c->qkv_bias ? w->bv : NULL, N, D, kvd);
        if (m->lora) {
            lora_forward(m->lora, l, LORA_Q, t->q, t->xn_a, N, true);
            lora_forward(m->lora, l, LORA_K, t->k, t->xn_a, N, true);
            lora_forward(m->lora, l, LORA_V, t->v, t->xn_a, N, true);
        }
        rope_forward(t->q, t->rope_cos, t->rope_sin, B, T, H, hd, qd, c->rope_style);
        rope_forward(t->k, t->rope_cos, t->rope_sin, B, T, KV, hd, kvd, c->rope_style);
        attention_forward(t->ctx, t->att, t->q, t->k, t->v, B, T, H, KV, hd);
        if (act)
            act(actx, layer_tensor(m, l, W_O)->name, t->ctx, N, qd);
        matmul_accumulate(out, t->ctx, w->wo, w->bo, N, qd, D);
        if (m->lora)
            lora_forward(m->lora, l, LORA_O, out, t->ctx, N, true);
    }
    if (F > 0) {
        rmsnorm_forward(t->xn_m, t->rstd_m, out, w->ffn_norm, N, D, c->norm_eps);
        if (act) {
            act(actx, layer_tensor(m, l, W_GATE)->name, t->xn_m, N, D);
            act(actx, layer_tensor(m, l, W_UP)->name, t->xn_m, N, D);
        }
        matmul_forward(t->gate, t->xn_m, w->w_gate, NULL, N, D, F);
        matmul_forward(t->up, t->xn_m, w->w_up, NULL, N, D, F);
        if (m->lora) {
            lora_forward(m->lora, l, LORA_GATE, t->gate, t->xn_m, N, true);
            lora_forward(m->lora, l, LORA_UP, t->up, t->xn_m, N, true);
        }
        swiglu_forward(t->hid, t->gate, t->up, (int64_t)N * F);
        if (full) {
            if (act)
                act(actx, layer_tensor(m, l, W_DOWN)->name, t->hid, N, F);
            matmul_accumulate(out, t->hid, w->w_down, w->bdown, N, F, D);
            if (m->lora)
                lora_forward(m->lora, l, LORA_DOWN, out, t->hid, N, true);
        }
    }
}

/* Layer l's backward: t->dx (N, D) holds d loss / d (layer output) on entry and
 * d loss / d (layer input x) on return; g[] (zeroed) receive the weight
 * gradients. Recomputes the layer's internals from x first. */
static void layer_backward(const model *m, llama_train *t, int l, const float *x, float *const g[W_LAYER_COUNT])
{
    const llama_config *c = &m->cfg;
    const layer_weights *w = &m->layers[l];
    int B = t->B, T = t->T, N = B * T, D = c->dim, hd = c->head_dim;
    int H = c->n_heads[l], KV = c->n_kv_heads[l], F = c->ffn_dim[l];
    int qd = H * hd, kvd = KV * hd;
    layer_forward(m, t, l, x, t->xmid, false, NULL, NULL);
    if (F > 0) {
        /* out = xmid + down(silu(gate) * up), gate/up of rmsnorm(xmid) */
        memset(t->dhid, 0, (size_t)N * F * sizeof(float));
        matmul_backward(t->dhid, g[W_DOWN], g[W_BDOWN], t->dx, t->hid, w->w_down, N, F, D);
        if (m->lora)
            lora_backward(m->lora, l, LORA_DOWN, t->dhid, t->dx, t->hid, N);
        swiglu_backward(t->gate, t->up, t->dhid, t->gate, t->up, (int64_t)N * F); /* now dgate, dup */
        memset(t->dxn, 0, (size_t)N * D * sizeof(float));
        matmul_backward(t->dxn, g[W_GATE], NULL, t->gate, t->xn_m, w->w_gate, N, D, F);
        matmul_backward(t->dxn, g[W_UP], NULL, t->up, t->xn_m, w->w_up, N, D, F);
        if (m->lora) {
            lora_backward(m->lora, l, LORA_GATE, t->dxn, t->gate, t->xn_m, N);
            lora_backward(m->lora, l, LORA_UP, t->dxn, t->up, t->xn_m, N);
        }
        rmsnorm_backward(t->dx, g[W_FFN_NORM], t->dxn, t->xmid, w->ffn_norm, t->rstd_m, N, D);
    }
    if (H > 0) {
        /* xmid = x + o(attention(rope(q), rope(k), v)), q/k/v of rmsnorm(x) */
        memset(t->dctx, 0, (size_t)N * qd * sizeof(float));
        matmul_backward(t->dctx, g[W_O], g[W_BO], t->dx, t->ctx, w->wo, N, qd, D);
        if (m->lora)
            lora_backward(m->lora, l, LORA_O, t->dctx, t->dx, t->ctx, N);
        memset(t->dq, 0, (size_t)N * qd * sizeof(float));
        memset(t->dk, 0, (size_t)N * kvd * sizeof(float));
        memset(t->dv, 0, (size_t)N * kvd * sizeof(float));
        attention_backward(t->dq, t->dk, t->dv, t->dp, t->dctx, t->att, t->q, t->k, t->v, B, T, H, KV, hd);
        rope_backward(t->dq, t->rope_cos, t->rope_sin, B, T, H, hd, qd, c->rope_style);
        rope_backward(t->dk, t->rope_cos, t->rope_sin, B, T, KV, hd, kvd, c->rope_style);
        memset(t->dxn, 0, (size_t)N * D * sizeof(float));
        matmul_backward(t->dxn, g[W_Q], g[W_BQ], t->dq, t->xn_a, w->wq, N, D, qd);
        matmul_backward(t->dxn, g[W_K], g[W_BK], t->dk, t->xn_a, w->wk, N, D, kvd);
        matmul_backward(t->dxn, g[W_V], g[W_BV], t->dv, t->xn_a, w->wv, N, D, kvd);
        if (m->lora) {
            lora_backward(m->lora, l, LORA_Q, t->dxn, t->dq, t->xn_a, N);
            lora_backward(m->lora, l, LORA_K, t->dxn, t->dk, t->xn_a, N);
            lora_backward(m->lora, l, LORA_V, t->dxn, t->dv, t->xn_a, N);
        }
        rmsnorm_backward(t->dx, g[W_ATTN_NORM], t->dxn, x, w->attn_norm, t->rstd_a, N, D);
    }
}

/* ---- the whole model ---- */

double llama_loss_backward(const model *m, llama_train *t, const int *tokens, const int *targets,
                           grad_sink_fn sink, act_sink_fn act, void *ctx)
{
    const llama_config *c = &m->cfg;
    int N = t->B * t->T, D = c->dim, V = c->vocab, L = c->n_layers;
    size_t ND = (size_t)N * D;
    const float *head = m->lm_head ? m->lm_head : m->embed;
    const tensor *head_t = head_tensor(m);

    /* forward, keeping each layer's input */
    embedding_forward(t->xs, tokens, m->embed, N, D, V);
    for (int l = 0; l < L; l++)
        layer_forward(m, t, l, t->xs + l * ND, t->xs + (l + 1) * ND, true, act, ctx);
    const float *xL = t->xs + L * ND;
    rmsnorm_forward(t->xnf, t->rstdf, xL, m->final_norm, N, D, c->norm_eps);
    if (act)
        act(ctx, head_t->name, t->xnf, N, D);
    matmul_forward(t->logits, t->xnf, head, NULL, N, D, V);

    /* loss = mean cross-entropy over the scored targets; dlogits in place */
    double sum = 0;
    int64_t count = 0;
    nll_accumulate(t->logits, targets, N, V, &sum, &count);
    double loss = count ? sum / (double)count : 0.0;
    crossentropy_softmax_backward(t->logits, t->logits, targets, N, V, count ? (float)(1.0 / count) : 0.0f);
    float *dlogits = t->logits; /* (N, V) */

    /* LM head (its weight gradient comes last, with the embedding's) and final norm */
    memset(t->dxn, 0, ND * sizeof(float));
    matmul_backward(t->dxn, NULL, NULL, dlogits, t->xnf, head, N, D, V);
    memset(t->dx, 0, ND * sizeof(float));
    memset(t->dnormf, 0, (size_t)D * sizeof(float));
    rmsnorm_backward(t->dx, t->dnormf, t->dxn, xL, m->final_norm, t->rstdf, N, D);

    /* layers, last to first; without a sink no weight gradient is wanted (a frozen
     * base under LoRA): the maps' dW and db products are skipped, only the norms'
     * (D values each) are still computed, rmsnorm_backward needing somewhere to put them */
    weight_grad wg[W_LAYER_COUNT];
    for (int l = L - 1; l >= 0; l--) {
        size_t n[W_LAYER_COUNT];
        float *g[W_LAYER_COUNT];
        layer_sizes(c, l, n);
        for (int i = 0; !sink && i < W_LAYER_COUNT; i++)
            if (i != W_ATTN_NORM && i != W_FFN_NORM)
                n[i] = 0;
        size_t used = point_grads(t->grad, n, W_LAYER_COUNT, g);
        memset(t->grad, 0, used * sizeof(float));
        layer_backward(m, t, l, t->xs + l * ND, g);
        int k = 0;
        for (int i = 0; i < W_LAYER_COUNT; i++)
            if (n[i])
                wg[k++] = grad_of(m, layer_tensor(m, l, i), g[i], n[i]);
        if (sink)
            sink(ctx, l, wg, k);
    }

    /* embedding (both uses when tied), final norm, LM head */
    if (!sink)
        return loss;
    size_t no[W_OUTER_COUNT];
    float *go[W_OUTER_COUNT];
    outer_sizes(c, no);
    memset(t->grad, 0, point_grads(t->grad, no, W_OUTER_COUNT, go) * sizeof(float));
    float *dhead = c->tied ? go[W_EMBED] : go[W_HEAD];
    matmul_backward(NULL, dhead, NULL, dlogits, t->xnf, head, N, D, V);
    embedding_backward(go[W_EMBED], t->dx, tokens, N, D);
    int k = 0;
    wg[k++] = grad_of(m, need_tensor(m, "model.embed_tokens.weight"), go[W_EMBED], no[W_EMBED]);
    wg[k++] = grad_of(m, need_tensor(m, "model.norm.weight"), t->dnormf, (size_t)D);
    if (!c->tied)
        wg[k++] = grad_of(m, head_t, go[W_HEAD], no[W_HEAD]);
    if (sink)
        sink(ctx, -1, wg, k);
    return loss;
}
