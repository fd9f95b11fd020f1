/* layer.h - one decoder layer of any architecture (model_archs: LLaMA, ChatGLM,
 * ChatGLM2), forward and backward: the only place the layer is written. The batch forward (forward.c), the cached forward
 * (kv_cache.c) and the training pass (backward.c) all run layer_forward; they
 * differ only in their hooks:
 *   attend  how q, k, v (before rotary) become the attention context: causal over
 *           B sequences from position 0 (layer_attend_causal), or against a
 *           key/value cache (kv_cache.c);
 *   act     the input of every linear map, for activation statistics;
 *   lora    LoRA adapters added after each adapted map (lora.h), with or without
 *           their dropout;
 * and in the buffers they hand it (what a pass keeps for its backward).
 *
 * Letters: B sequences, T tokens per sequence, N rows, D hidden, H query heads,
 * KV key/value heads, hd head dim, F MLP width (of the layer). */
#ifndef PARE_LAYER_H
#define PARE_LAYER_H

#include <stdbool.h>

#include "compute/matmul.h"
#include "model/model.h"

struct lora_set;

/* Called with the input x (N, I) of a linear map, for activation statistics:
 * tensor is the map's weight name, I = nin its input width. Called once per
 * linear map and pass, in the forward's order: q_proj, k_proj, v_proj (the same x
 * for the three), o_proj (the attention context), gate_proj, up_proj (the same x),
 * down_proj (silu(gate) * up). (The width is not named I: <complex.h>, which
 * cblas.h pulls in, defines I.) */
typedef void (*act_sink_fn)(void *ctx, const char *tensor, const float *x, int N, int nin);

/* A layer's internals. Buffers sized for the largest layer; xn_m may equal xn_a,
 * hid may equal gate (the forward then overwrites them); a NULL rstd is not kept. */
typedef struct {
    float *xn_a, *rstd_a; /* (N, D), (N) attention norm's output and 1/rms */
    float *q;             /* (N, H*hd), rotated by the attend hook */
    float *k, *v;         /* (N, KV*hd) */
    float *q_in, *k_in;   /* with q/k norms (Qwen3): q and k before them, (N, H*hd) and
                             (N, KV*hd) (backward only; NULL: normed in place) */
    float *rstd_q, *rstd_k; /* (N*H), (N*KV) their 1/rms, kept when q_in is */
    float *ctx;           /* (N, H*hd) attention output, o_proj's input */
    float *xmid;          /* (N, D) residual between attention and MLP (backward only) */
    float *xn_m, *rstd_m; /* (N, D), (N) MLP norm's output and 1/rms */
    float *gate, *up;     /* (N, F) */
    float *hid;           /* (N, F) silu(gate) * up or gelu(up), down_proj's input */
    float *fused;         /* (N, max(H*hd + 2*KV*hd, 2F)) a fused map's output before
                             its split (ChatGLM; unused, may be NULL, for LLaMA) */
} layer_acts;

/* Causal attention over B sequences of T tokens at positions 0..T-1; with
 * prefix P > 0, the first P tokens also see each other (ChatGLM-6B's prompt up to
 * [gMASK]) and the positions are ChatGLM-6B's (layer_positions). */
typedef struct {
    int B, T;
    float *att;                        /* (B, H, T, T) softmax probabilities */
    const float *rope_cos, *rope_sin;  /* (T, rd/2), rd = config_rope_dim */
    int prefix;                        /* 0: causal */
    const int *pos, *block_pos;        /* (T) with a prefix (layer_positions), else NULL:
                                          positions 0..T-1, block positions 0 */
} layer_causal;

/* The rotary tables (kernels.h) of model config c: (T, config_rope_dim / 2), its frequencies
 * config_rope_inv_freq (theta and rope scaling). */
void rope_tables(float *cos_t, float *sin_t, int T, const model_config *c);

/* ChatGLM-6B's positions of tokens start .. start + T - 1 (into pos[0..T) and
 * block_pos[0..T)) for a prompt of P tokens ending in [gMASK] (then <sop> and
 * what follows): pos t and block 0 for t < P, pos P - 1 and block t - P + 1 after.
 * P = 0: pos t, block 0 (plain causal). */
void layer_positions(int start, int T, int prefix, int *pos, int *block_pos);

/* The model's norm (RMSNorm, or LayerNorm with bias b) of x (N, D) into out;
 * rstd (N) kept when not NULL. */
void layer_norm_forward(const model *m, const tensor *w, const tensor *b, float *out, float *rstd, const float *x,
                        int N);
/* Its backward: dx +=, dw (and db, LayerNorm) += (kernels.h). */
void layer_norm_backward(const model *m, const tensor *w, float *dx, float *dw, float *db, const float *dout,
                         const float *x, const float *rstd, int N);

typedef struct {
    /* ctx (N, H*hd) of q, k, v (N rows, before rotary) of layer l, in a */
    void (*attend)(void *ctx, const model *m, int l, layer_acts *a, int N);
    void *attend_ctx;
    act_sink_fn act;      /* NULL: none */
    void *act_ctx;
    struct lora_set *lora; /* NULL: none */
    bool dropout;          /* apply the adapters' dropout (training passes) */
} layer_hooks;

/* The attend hook of the batch passes: ctx is a layer_causal. */
void layer_attend_causal(void *ctx, const model *m, int l, layer_acts *a, int N);

/* Layer l on N rows: out (N, D) = x + attention(norm(x)), then
 * out += mlp(norm(out)) when full (with scaled residuals, alpha * norm(.)
 * replaces the residual term) (without full, out is the residual between
 * the two sub-blocks and the MLP stops before down_proj; when full and a->xmid is
 * set, that residual is copied there too). out may equal x. A
 * sub-block the config removed (H = 0, F = 0) is skipped. */
void layer_forward(const model *m, int l, const layer_hooks *h, layer_acts *a, const float *x, float *out, int N,
                   bool full);

/* The inference passes' trunk: x (N, D) = the embedding of tokens (N), then
 * every layer in place (layer_forward, full), with the hooks h and buffers a. */
void layers_forward(const model *m, const layer_hooks *h, layer_acts *a, const int *tokens, float *x, int N);

/* Activation gradients of one layer (sized like layer_acts). */
typedef struct {
    float *dx;            /* (N, D) d loss / d residual stream */
    float *dxn;           /* (N, D) d loss / d a norm's output */
    float *dq;            /* (N, H*hd) */
    float *dk, *dv;       /* (N, KV*hd) */
    float *dctx;          /* (N, H*hd) */
    float *dhid;          /* (N, F) */
} layer_dacts;

/* Layer l's backward, for the training pass (causal attention over att, the
 * adapters lora, or NULL, with their dropout): d->dx holds d loss / d (layer
 * output) on entry and d loss / d (layer input x) on return; g[id] (zeroed; NULL:
 * not wanted, except the norms', q_norm's and k_norm's) receive the gradients of
 * weight id (enum layer_weight_id), those of the linear maps' weights go to rows
 * instead, a panel of rows at a time, when rows is not NULL (matmul.h); the
 * adapters' go where lora_backward puts them.
 * Recomputes the layer's internals (into a) from x first, unless kept: a and att
 * hold what layer_forward (full, a->xmid set, the same hooks) left there. */
void layer_backward(const model *m, int l, struct lora_set *lora, const layer_causal *att, layer_acts *a,
                    layer_dacts *d, const float *x, float *const g[LW_COUNT], const weight_rows_sink *rows, bool kept);

/* The size in floats per row of layer_acts.fused for m (0 for LLaMA). */
int64_t layer_fused_width(const model *m);

#endif
