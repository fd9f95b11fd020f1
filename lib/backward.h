/* backward.h - the gradient of the mean token cross-entropy of a batch with
 * respect to every weight, delivered one layer at a time so that no full-model
 * gradient is ever held (pare-score reduces each layer's gradients into
 * per-channel statistics and lets them go).
 *
 * Letters: B sequences, T tokens, N = B*T rows, D hidden, V vocab, H/KV heads,
 * hd head dim, F MLP width, I a linear map's input width. */
#ifndef PARE_BACKWARD_H
#define PARE_BACKWARD_H

#include <stdint.h>

#include "model.h"

/* One weight and its gradient (same shape), valid only during the callback. */
typedef struct {
    const char *name;   /* Hugging Face tensor name */
    const tensor *w;    /* the weight */
    const float *grad;  /* d loss / d w, (w->numel) */
} weight_grad;

/* Called for each layer from the last to the first (layer >= 0) with the gradients
 * of all that layer's weights, then once with layer -1 for the tensors outside the
 * layers (embedding, final norm, LM head; a tied embedding gets the sum of both of
 * its uses). */
typedef void (*grad_sink_fn)(void *ctx, int layer, const weight_grad *grads, int n);

/* Called during the forward pass with the input x (N, I) of a linear map, for
 * activation statistics: tensor is the map's weight name. May be NULL. */
typedef void (*act_sink_fn)(void *ctx, const char *tensor, const float *x, int N, int I);

typedef struct llama_train llama_train; /* saved activations and one layer's gradients */

llama_train *llama_train_new(const model *m, int B, int T);
void llama_train_free(llama_train *t);

/* Forward and backward over tokens (B, T) with targets (B, T) (-1: not scored).
 * Loss = mean cross-entropy over the scored targets (the Hugging Face causal-LM
 * loss when targets are the tokens shifted by one). Calls act (if not NULL) during
 * the forward pass and sink during the backward pass; returns the loss. */
double llama_loss_backward(const model *m, llama_train *t, const int *tokens, const int *targets,
                           grad_sink_fn sink, act_sink_fn act, void *ctx);

/* Peak bytes of the buffers llama_train holds (for the memory benchmark). */
size_t llama_train_bytes(const llama_train *t);

#endif
