/* ref_chatglm.h - the unit tests' double-precision ChatGLM-6B and ChatGLM2/3
 * forward, written from shared/reference/chatglm.md alone: loops over the
 * formulas, the weights read by their published names, nothing from lib/ but the
 * tensors' values. The lib forward (layer.c) is checked against it.
 *
 * Letters: T tokens, D hidden, V vocab, H query heads, KV key/value groups, hd
 * head dim, F MLP width, L layers. */
#ifndef PARE_REF_CHATGLM_H
#define PARE_REF_CHATGLM_H

#include <stdbool.h>

#include "model/model.h"

/* Logits (T, V) of one sequence of T tokens. ChatGLM-6B when the config has no
 * multi-query groups (m->cfg.arch), else ChatGLM2. prefix P > 0 (ChatGLM-6B): the
 * first P tokens attend to each other, positions are t (t < P) then P - 1, block
 * positions 0 then 1, 2, ...; P = 0: causal, positions t, block positions 0.
 * keep (D), when not NULL, keeps only those hidden channels: the residual stream
 * has just them and every norm averages over them (a channel-pruned model). */
void ref_chatglm_logits(const model *m, const int *tokens, int T, int prefix, const bool *keep, double *logits);

/* The same with a hook called after each linear map of the layers, y (nout) =
 * W x (nin) + b of token t, with the weight's name
 * ("transformer.layers.0.attention.query_key_value.weight"): it may add to y (a
 * LoRA term over all of a fused map's rows). keep must be NULL. */
typedef struct {
    void (*linear)(void *ctx, const char *weight, int t, const double *x, int nin, double *y, int nout);
    void *ctx;
} ref_chatglm_hooks;
void ref_chatglm_logits_hooked(const model *m, const int *tokens, int T, int prefix, const ref_chatglm_hooks *h,
                               double *logits);

/* Mean cross-entropy of predicting tokens[t+1] from tokens[..t], in double. */
double ref_chatglm_loss(const model *m, const int *tokens, int T, int prefix);

/* ChatGLM-6B's zero-shot log-likelihood of cont (n_cont >= 1) after ctx (n_ctx >=
 * 0): the sequence ctx [gMASK] <sop> cont, prefix n_ctx + 1, and the sum of the
 * natural-log probabilities of cont[j] at <sop> (j = 0) or cont[j-1], in double. */
double ref_chatglm_loglik(const model *m, const int *ctx, int n_ctx, int gmask, int sop, const int *cont, int n_cont);

#endif
