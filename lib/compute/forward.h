/* forward.h - the forward pass of any architecture in fp32 over a batch of sequences: the
 * embedding, layer_forward (layer.h) for each layer, the final norm and the LM
 * head. The backward pass is in backward.h (model_loss_backward).
 *
 * Letters: B sequences, T tokens per sequence, N = B*T rows, D hidden, V vocab,
 * H query heads, KV key/value heads, hd head dim, F MLP width (per layer). */
#ifndef PARE_FORWARD_H
#define PARE_FORWARD_H

#include "model/model.h"

struct lora_set; /* LoRA adapters (lora.h), passed beside the model */

/* Activations for one (B, T): sized from the config once, one arena. */
typedef struct {
    int B, T;        /* the batch of the next pass */
    int maxB, maxT;  /* the batch the buffers are sized for */
    float *arena;
    float *x;        /* (N, D) residual stream */
    float *xn;       /* (N, D) normed input of the current sub-block */
    float *q;        /* (N, maxH*hd) */
    float *k, *v;    /* (N, maxKV*hd) */
    float *att;      /* (B, maxH, T, T) softmax probabilities of the last layer run
                        (zero above the diagonal) */
    float *ctx;      /* (N, maxH*hd) attention output before o_proj */
    float *gate, *up;/* (N, maxF) */
    float *hid;      /* (N, maxF) silu(gate) * up */
    float *logits;   /* (N, V), or (B*(T - logits_from), V) */
    float *rope_cos, *rope_sin; /* (T, rd/2), rd = config_rope_dim */
    float *fused;    /* (N, layer_fused_width) a fused map's output (ChatGLM) */
    int prefix;      /* 0: causal attention; P > 0: the first P tokens of each
                        sequence see each other, and ChatGLM-6B's positions
                        (layer_positions) - a prompt ending in [gMASK] at P - 1,
                        <sop> at P. Set by the caller; ChatGLM-6B only */
    int *pos, *block_pos;       /* (maxT) the positions of that prefix */
    struct lora_set *lora;      /* adapters every pass adds (lora.h), or NULL: set by
                                   the caller, beside the model */
    int logits_from; /* 0: the logits of every position; F in (0, T): of positions
                        F .. T-1 of each sequence only, their rows one after the
                        other (sequence b's position t at row b*(T-F) + t-F) - the
                        LM head's product for the others skipped (s->x then
                        holds those rows' residual streams, so). Set by the caller */
} forward_state;

void forward_state_init(forward_state *s, const model *m, int B, int T);
void forward_state_free(forward_state *s);
/* Run the next passes on B sequences of T tokens, each at most what s was made
 * for (prefixes of the same buffers). Dies if larger. */
void forward_state_set_batch(forward_state *s, int B, int T);

/* tokens (B, T) -> s->logits (B*T, V), or the rows of positions s->logits_from
 * on. With adapters (s->lora), each adapted map adds its LoRA term (lora.h),
 * without dropout. */
void model_forward(const model *m, forward_state *s, const int *tokens);

/* Mean negative log-likelihood helpers: for logits (N, V) and targets (N) (a
 * target < 0 is ignored), add -log softmax(logits[i])[target[i]] into *sum (double)
 * and the count into *count. */
void nll_accumulate(const float *logits, const int *targets, int n, int V, double *sum, int64_t *count);

#endif
