/* forward.c - the forward pass of any architecture (model_archs) in fp32 over a batch
 * of B sequences of T tokens.
 *
 * Letters: B sequences, T tokens per sequence, N = B*T rows, D hidden, V vocab,
 * H query heads, KV key/value heads, hd head dim, F MLP width (per layer; a layer
 * with H = 0 has no attention, one with F = 0 no MLP).
 *
 * Each layer is layer_forward (layer.c) with causal attention over each
 * sequence; every linear map is one product over all N rows (matmul.c),
 * attention two sgemms per (sequence, head). Buffers come from one arena sized
 * from the config in forward_state_init: nothing is allocated while running. */
#include "compute/forward.h"

#include <math.h>
#include <string.h>

#include "base/arena.h"
#include "base/util.h"
#include "compute/kernels.h"
#include "compute/layer.h"
#include "compute/matmul.h"

void forward_state_init(forward_state *s, const model *m, int B, int T)
{
    const model_config *c = &m->cfg;
    if (B <= 0 || T <= 0)
        die("forward_state_init: bad batch %d x %d", B, T);
    if (c->head_dim <= 0 || c->head_dim % 2)
        die("%s: head_dim %d must be even and positive", m->source ? m->source : "model", c->head_dim);
    memset(s, 0, sizeof *s);
    s->B = s->maxB = B;
    s->T = s->maxT = T;
    size_t N = (size_t)B * T, D = (size_t)c->dim, V = (size_t)c->vocab, hd = (size_t)c->head_dim;
    size_t rd = (size_t)config_rope_dim(c);
    size_t maxH = 0, maxKV = 0, maxF = 0;
    for (int l = 0; l < c->n_layers; l++) {
        maxH = (size_t)c->n_heads[l] > maxH ? (size_t)c->n_heads[l] : maxH;
        maxKV = (size_t)c->n_kv_heads[l] > maxKV ? (size_t)c->n_kv_heads[l] : maxKV;
        maxF = (size_t)c->ffn_dim[l] > maxF ? (size_t)c->ffn_dim[l] : maxF;
    }
    arena_part bufs[] = {
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
        {&s->rope_cos, (size_t)T * rd / 2},
        {&s->rope_sin, (size_t)T * rd / 2},
        {&s->fused, N * (size_t)layer_fused_width(m)},
    };
    s->arena = arena_alloc(bufs, sizeof bufs / sizeof bufs[0], NULL);
    rope_tables(s->rope_cos, s->rope_sin, T, c);
    s->pos = xmalloc((size_t)T * 2 * sizeof *s->pos);
    s->block_pos = s->pos + T;
}

/* Smaller batches use a prefix of every buffer; the rotary tables' first T rows
 * are those of T positions. */
void forward_state_set_batch(forward_state *s, int B, int T)
{
    if (B <= 0 || T <= 0 || B > s->maxB || T > s->maxT)
        die("forward_state_set_batch: %d x %d does not fit buffers made for %d x %d", B, T, s->maxB, s->maxT);
    s->B = B;
    s->T = T;
}

void forward_state_free(forward_state *s)
{
    free(s->arena);
    free(s->pos);
    memset(s, 0, sizeof *s);
}

void model_forward(const model *m, forward_state *s, const int *tokens)
{
    int from = s->logits_from;
    if (from < 0 || from >= s->T)
        die("model_forward: logits from position %d of %d", from, s->T);
    const model_config *c = &m->cfg;
    int N = s->B * s->T;
    layer_causal att = {s->B, s->T, s->att, s->rope_cos, s->rope_sin, s->prefix, NULL, NULL};
    if (s->prefix > 0) {
        if (!model_archs[c->arch].rope_2d)
            die("%s: a bidirectional prefix is ChatGLM-6B's; this is a %s model", m->source ? m->source : "model",
                model_archs[c->arch].name);
        layer_positions(0, s->T, s->prefix, s->pos, s->block_pos);
        att.pos = s->pos;
        att.block_pos = s->block_pos;
    }
    layer_hooks h = {.attend = layer_attend_causal, .attend_ctx = &att, .lora = s->lora};
    layer_acts a = {.xn_a = s->xn, .q = s->q, .k = s->k, .v = s->v, .ctx = s->ctx, .xn_m = s->xn,
                    .gate = s->gate, .up = s->up, .hid = s->hid, .fused = s->fused};
    layers_forward(m, &h, &a, tokens, s->x, N);
    if (from > 0) { /* the rows that get logits, moved up to one block (each moves up or stays) */
        int D = c->dim, kept = s->T - from;
        for (int b = 0; b < s->B; b++)
            memmove(s->x + (size_t)b * kept * D, s->x + ((size_t)b * s->T + from) * D,
                    (size_t)kept * D * sizeof(float));
        N = s->B * kept;
    }
    layer_norm_forward(m, m->final_norm, m->final_norm_b, s->xn, NULL, s->x, N);
    matmul_forward(s->logits, s->xn, m->lm_head, NULL, N);
}

/* The backward pass is model_loss_backward (backward.c): it runs the same
 * layer_forward, keeping each layer's input, and recomputes it going down. */

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
