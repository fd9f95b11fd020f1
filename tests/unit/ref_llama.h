/* ref_llama.h - the unit tests' oracle: a LLaMA forward and backward pass in
 * double precision, written from the model's definition with loops only (no lib/
 * numerics). The forward, training, LoRA, pruning and scoring tests all check lib/
 * against this one reference. It reads the config as transformers does: Llama 3's
 * rope scaling (linear, llama3), Qwen2's q/k/v biases, Qwen3's q_norm and k_norm
 * (model_type qwen3).
 *
 * The reference holds its own copy of the weights as doubles (a test may perturb
 * them for finite differences). It reads the model in one place only (fetch() in
 * ref_llama.c).
 *
 * Letters: B sequences, T tokens, N = B*T rows, D hidden, V vocab, H query heads,
 * KV key/value heads, hd head dim, F MLP width. */
#ifndef PARE_REF_LLAMA_H
#define PARE_REF_LLAMA_H

#include <stdbool.h>
#include <stdint.h>

#include "model/model.h"

/* The model's own weights (slots 0..2), then each layer's. */
enum { REF_EMBED = MW_EMBED, REF_FINAL_NORM = MW_FINAL_NORM, REF_LM_HEAD = MW_LM_HEAD, REF_MODEL_WEIGHTS = MW_COUNT };
/* A layer's weights: the slots of the model's weight table (model.h). */
enum ref_layer_weight {
    REF_ATTN_NORM = LW_ATTN_NORM, REF_WQ = LW_Q, REF_BQ = LW_BQ, REF_WK = LW_K, REF_BK = LW_BK, REF_WV = LW_V,
    REF_BV = LW_BV, REF_WO = LW_O, REF_BO = LW_BO, REF_QNORM = LW_Q_NORM, REF_KNORM = LW_K_NORM,
    REF_FFN_NORM = LW_FFN_NORM, REF_WGATE = LW_GATE,
    REF_WUP = LW_UP, REF_WDOWN = LW_DOWN, REF_BDOWN = LW_BDOWN, REF_LAYER_WEIGHTS = LW_COUNT
};
/* The linear maps, as the hook sees them (REF_LINEAR_HEAD with layer -1). */
enum ref_linear { REF_LINEAR_Q, REF_LINEAR_K, REF_LINEAR_V, REF_LINEAR_O, REF_LINEAR_GATE, REF_LINEAR_UP,
                  REF_LINEAR_DOWN, REF_LINEAR_HEAD };

typedef struct {
    const model_config *cfg; /* the model's */
    int n_slots;             /* REF_MODEL_WEIGHTS + L * REF_LAYER_WEIGHTS */
    double **w;              /* [n_slots] each weight as doubles; NULL where the config has none
                                (a removed sub-block, an absent bias); lm_head is embed when tied */
    int64_t *numel;          /* [n_slots] */
} ref_model;

/* Slot of weight k of layer l, or of the model's weight k when l < 0. */
static inline int ref_slot(int l, int k) { return l < 0 ? k : REF_MODEL_WEIGHTS + l * REF_LAYER_WEIGHTS + k; }

void ref_model_init(ref_model *r, const model *m);
void ref_model_free(ref_model *r);
/* The slot of the Hugging Face tensor name (e.g. "model.layers.3.mlp.up_proj.weight"),
 * or -1 if the model has no such tensor (a tied model has no "lm_head.weight"). */
int ref_slot_named(const ref_model *r, const char *name);

/* What a pass may do besides the model. */
typedef struct {
    const bool *keep; /* (D) or NULL: only these hidden channels exist (the residual
                         stream and every norm's mean are over them); forward only */
    /* Called after each linear map of row n (y = W x + b, layer -1 for the LM head);
       may add to y (LoRA) or only look (activation sums). */
    void (*linear)(void *ctx, int layer, enum ref_linear which, int n, const double *x, int nin, double *y, int nout);
    void *ctx;
} ref_hooks;

/* logits (B*T, V) of tokens (B, T); hooks may be NULL. */
void ref_forward(const ref_model *r, const int *tokens, int B, int T, const ref_hooks *hooks, double *logits);
/* Mean cross-entropy of tokens (B, T) against targets (-1: not scored). */
double ref_loss(const ref_model *r, const int *tokens, const int *targets, int B, int T, const ref_hooks *hooks);
/* ref_loss and its gradient: grads[slot] (ref_grads_new; zeroed here) get d loss / d w;
 * absg (if not NULL) for the norm weights the magnitudes their gradients sum. The
 * hooks may only look (no keep, nothing added to y). */
double ref_loss_grad(const ref_model *r, const int *tokens, const int *targets, int B, int T, const ref_hooks *hooks,
                     double **grads, double **absg);
/* Arrays shaped like r's weights (zero; lm_head's is embed's when tied). */
double **ref_grads_new(const ref_model *r);
void ref_grads_free(const ref_model *r, double **g);

#endif
