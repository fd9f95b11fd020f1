/* params.h - what a run trains, and the optimiser's step over it: LoRA's adapters
 * beside a frozen model (one span of floats), or every weight of the model
 * (--full: one span per tensor, each held in fp32), with one flat gradient
 * beside them, and AdamW as torch.optim.AdamW computes it.
 *
 * Letters: P trained parameters (the spans' lengths added up). */
#ifndef PARE_PARAMS_H
#define PARE_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#include "compute/backward.h"
#include "compute/lora.h"
#include "model/model.h"

typedef struct {
    float *p;             /* the values, in place */
    size_t n;
} param_span;

typedef struct {
    lora_set *lora;       /* the adapters trained, or NULL: every weight of m */
    model *m;             /* the model (the adapters' base, or the one trained whole) */
    int n_spans;
    param_span *spans;    /* in order: the parameter vector is their concatenation */
    size_t n;             /* P */
    float *grads;         /* (P) d loss / d params, added to by each micro-batch's pass */
    size_t *off;          /* whole model: (n_tensors) where tensor i's span starts in the vector */
} train_params;

/* The adapters s (their grads allocated, zero) on the frozen model m. */
void params_lora(train_params *p, lora_set *s, model *m);
/* Every weight of m, each matrix held in fp32 from now on (tensor_convert: its
 * stored dtype kept for the writers), a gradient of its own size. */
void params_full(train_params *p, model *m);
void params_free(train_params *p);

/* The parameter vector into flat (P), and back. */
void params_get(const train_params *p, float *flat);
void params_set(train_params *p, const float *flat);

/* The grad_sink_fn (backward.h) of a whole-model pass: each weight's gradient is
 * added into ctx's (a train_params made by params_full) grads. */
void params_grad_sink(void *ctx, int layer, const weight_grad *g, int n);

/* AdamW step t (1-based) at learning rate lr over the parameters with their
 * gradient, moments m1 and m2 (P each), as torch.optim.AdamW computes it
 * (single-tensor path): p *= 1 - lr*wd; m1 += (1-b1)(g - m1);
 * m2 = b2 m2 + (1-b2) g^2; p -= lr/(1-b1^t) * m1 / (sqrt(m2)/sqrt(1-b2^t) + eps). */
typedef struct {
    double beta1, beta2, eps, weight_decay;
} adamw_options;
void adamw_step(train_params *p, float *m1, float *m2, double lr, int64_t t, const adamw_options *o);

#endif
