/* llama.c - the LLaMA forward pass in fp32 over a batch of B sequences of T tokens.
 *
 * Letters: B sequences, T tokens per sequence, N = B*T rows, D hidden, V vocab,
 * H query heads, KV key/value heads, hd head dim, F MLP width (per layer; a layer
 * with H = 0 has no attention, one with F = 0 no MLP).
 *
 * Every linear map is one sgemm over all N rows against the [out, in] weights;
 * attention is two sgemms per (sequence, head). Buffers come from one arena sized
 * from the config in llama_state_init: nothing is allocated while running. */
#include "llama.h"

#include <math.h>
#include <string.h>

#include "kernels.h"
#include "lora.h"
#include "util.h"

/* Floats rounded up to a multiple of 16 (64 bytes), so every buffer is aligned. */
static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }

void llama_state_init(llama_state *s, const model *m, int B, int T)
{
    const llama_config *c = &m->cfg;
    if (B <= 0 || T <= 0)
        die("llama_state_init: bad batch %d x %d", B, T);
    if (c->head_dim <= 0 || c->head_dim % 2)
        die("%s: head_dim %d must be even and positive", m->source ? m->source : "model", c->head_dim);
    memset(s, 0, sizeof *s);
    s->B = s->maxB = B;
    s->T = s->maxT = T;
    size_t N = (size_t)B * T, D = (size_t)c->dim, V = (size_t)c->vocab, hd = (size_t)c->head_dim;
    size_t maxH = 0, maxKV = 0, maxF = 0;
    for (int l = 0; l < c->n_layers; l++) {
        maxH = (size_t)c->n_heads[l] > maxH ? (size_t)c->n_heads[l] : maxH;
        maxKV = (size_t)c->n_kv_heads[l] > maxKV ? (size_t)c->n_kv_heads[l] : maxKV;
        maxF = (size_t)c->ffn_dim[l] > maxF ? (size_t)c->ffn_dim[l] : maxF;
    }
    struct {
        float **p;
        size_t n;
    } bufs[] = {
        {&s->x, N * D},
        {&s->xn, N * D},
        {&s->q, N * maxH * hd},
        {&s->k, N * maxKV * hd},
        {&s->v, N * maxKV * hd},
        {&s->att, (size_t)B * maxH * T * T},
        {&s->ctx, N * maxH * hd},
        {&s->gate, N * maxF},
        {&s->up, N * maxF},
        {&s->hid, N * maxF},
        {&s->logits, N * V},
        {&s->rope_cos, (size_t)T * hd / 2},
        {&s->rope_sin, (size_t)T * hd / 2},
    };
    size_t total = 0;
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        total += round16(bufs[i].n);
    s->arena = xmalloc_aligned(total * sizeof(float));
    float *p = s->arena;
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
        *bufs[i].p = p;
        p += round16(bufs[i].n);
    }
    rope_tables(s->rope_cos, s->rope_sin, T, c->head_dim, c->rope_theta);
}

/* Smaller batches use a prefix of every buffer; the rotary tables' first T rows
 * are those of T positions. */
void llama_state_set_batch(llama_state *s, int B, int T)
{
    if (B <= 0 || T <= 0 || B > s->maxB || T > s->maxT)
        die("llama_state_set_batch: %d x %d does not fit buffers made for %d x %d", B, T, s->maxB, s->maxT);
    s->B = B;
    s->T = T;
}

void llama_state_free(llama_state *s)
{
    free(s->arena);
    memset(s, 0, sizeof *s);
}

/* x += o_proj(attention(rope(q), rope(k), v)) of rmsnorm(x), for layer l. */
static void attention_block(const model *m, llama_state *s, int l)
{
    const llama_config *c = &m->cfg;
    const layer_weights *w = &m->layers[l];
    int B = s->B, T = s->T, N = B * T, D = c->dim, hd = c->head_dim;
    int H = c->n_heads[l], KV = c->n_kv_heads[l];
    int qd = H * hd, kvd = KV * hd;
    rmsnorm_forward(s->xn, NULL, s->x, w->attn_norm, N, D, c->norm_eps);
    matmul_forward(s->q, s->xn, w->wq, c->qkv_bias ? w->bq : NULL, N, D, qd);
    matmul_forward(s->k, s->xn, w->wk, c->qkv_bias ? w->bk : NULL, N, D, kvd);
    matmul_forward(s->v, s->xn, w->wv, c->qkv_bias ? w->bv : NULL, N, D, kvd);
    if (m->lora) {
        lora_forward(m->lora, l, LORA_Q, s->q, s->xn, N, false);
        lora_forward(m->lora, l, LORA_K, s->k, s->xn, N, false);
        lora_forward(m->lora, l, LORA_V, s->v, s->xn, N, false);
    }
    rope_forward(s->q, s->rope_cos, s->rope_sin, B, T, H, hd, qd, c->rope_style);
    rope_forward(s->k, s->rope_cos, s->rope_sin, B, T, KV, hd, kvd, c->rope_style);
    attention_forward(s->ctx, s->att, s->q, s->k, s->v, B, T, H, KV, hd);
    matmul_accumulate(s->x, s->ctx, w->wo, w->bo, N, qd, D);
    if (m->lora)
        lora_forward(m->lora, l, LORA_O, s->x, s->ctx, N, false);
}

/* x += down(silu(gate(h)) * up(h)), h = rmsnorm(x), for layer l. */
static void mlp_block(const model *m, llama_state *s, int l)
{
    const llama_config *c = &m->cfg;
    const layer_weights *w = &m->layers[l];
    int N = s->B * s->T, D = c->dim, F = c->ffn_dim[l];
    rmsnorm_forward(s->xn, NULL, s->x, w->ffn_norm, N, D, c->norm_eps);
    matmul_forward(s->gate, s->xn, w->w_gate, NULL, N, D, F);
    matmul_forward(s->up, s->xn, w->w_up, NULL, N, D, F);
    if (m->lora) {
        lora_forward(m->lora, l, LORA_GATE, s->gate, s->xn, N, false);
        lora_forward(m->lora, l, LORA_UP, s->up, s->xn, N, false);
    }
    swiglu_forward(s->hid, s->gate, s->up, (int64_t)N * F);
    matmul_accumulate(s->x, s->hid, w->w_down, w->bdown, N, F, D);
    if (m->lora)
        lora_forward(m->lora, l, LORA_DOWN, s->x, s->hid, N, false);
}

void llama_forward(const model *m, llama_state *s, const int *tokens)
{
    const llama_config *c = &m->cfg;
    int N = s->B * s->T, D = c->dim;
    embedding_forward(s->x, tokens, m->embed, N, D, c->vocab);
    for (int l = 0; l < c->n_layers; l++) {
        if (c->n_heads[l] > 0)
            attention_block(m, s, l);
        if (c->ffn_dim[l] > 0)
            mlp_block(m, s, l);
    }
    rmsnorm_forward(s->xn, NULL, s->x, m->final_norm, N, D, c->norm_eps);
    matmul_forward(s->logits, s->xn, m->lm_head ? m->lm_head : m->embed, NULL, N, D, c->vocab);
}

/* The backward pass is llama_loss_backward (backward.c): it runs the same blocks
 * layer by layer, keeping each layer's input, and recomputes them going down. */

void nll_accumulate(const float *logits, const int *targets, int n, int V, double *sum, int64_t *count)
{
    for (int i = 0; i < n; i++) {
        int t = targets[i];
        if (t < 0)
            continue;
        if (t >= V)
            die("target token id %d out of range (vocabulary of %d)", t, V);
        *sum += crossentropy_row(logits + (size_t)i * V, V, t);
        (*count)++;
    }
}
