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

#include "compute/layer.h"
#include "model/model.h"

/* One weight and its gradient (same shape), valid only during the callback. */
typedef struct {
    const char *name;   /* Hugging Face tensor name */
    const tensor *w;    /* the weight */
    const float *grad;  /* d loss / d w, (w->numel) */
} weight_grad;

/* Called for each layer from the last to the first (layer >= 0) with the gradients
 * of all that layer's weights (n = 0 for a layer with neither attention nor MLP),
 * then with layer -1 for the tensors outside the layers: an untied LM head alone,
 * then the embedding (a tied one gets the sum of both of its uses) with the final
 * norm (and its bias), so that one vocabulary-sized gradient is held at a time.
 * Every tensor of the model is delivered exactly once per pass (those outside
 * the layers not at all after backward_state_skip_outer). Within a layer the
 * order is the weight table's (model.h: input_layernorm, q/k/v/o_proj weights and
 * biases, q_norm, k_norm, post_attention_layernorm, gate/up/down_proj weights,
 * down_proj bias, those present). The gradient buffers are reused for the next
 * call. */
typedef void (*grad_sink_fn)(void *ctx, int layer, const weight_grad *grads, int n);

/* act_sink_fn (layer.h) is called during the forward pass with the input of
 * every linear map: each layer's, in the forward's order, then the LM head's
 * ("lm_head.weight", or "model.embed_tokens.weight" when tied). The layers'
 * forward recomputed inside the backward pass does not call it. */

typedef struct backward_state backward_state; /* saved activations and one layer's gradients */

/* Buffers for batches of B sequences of T tokens of m (which must have its
 * tensor list, as loaded or built by model_init_random): every layer's input
 * residual (L+1) * N * D, the logits N * V, one layer's internals and activation
 * gradients, and one weight-gradient buffer of max(largest layer, embedding)
 * floats. The peak memory of a pass is the weights plus
 * backward_state_bytes plus what the sinks hold. Each layer's internals are
 * recomputed from its saved input during the backward pass, unless kept
 * (backward_state_keep). */
backward_state *backward_state_new(const model *m, int B, int T);
void backward_state_free(backward_state *t);
/* Keep the internals of as many layers as fit in budget bytes (from the last layer
 * down) from the forward pass to the backward, instead of recomputing them there:
 * the same results, a layer's forward products (about a fifth of a pass's work)
 * fewer for each, backward_layer_kept_bytes more memory. Returns the bytes taken
 * (replacing what an earlier call kept). */
size_t backward_state_keep(backward_state *t, const model *m, size_t budget);
/* Bytes layer l's internals take for B sequences of T tokens. */
size_t backward_layer_kept_bytes(const model *m, int l, int B, int T);
/* Run the next passes on B sequences of T tokens, each at most what t was made
 * for: one backward_state serves the batch pass and the per-sample passes of the
 * Fisher term with one set of buffers. Dies if larger. */
void backward_state_set_batch(backward_state *t, int B, int T);
/* LoRA adapters (lora.h) the next passes add, beside the model, or NULL (the
 * default). */
void backward_state_set_lora(backward_state *t, struct lora_set *lora);

/* With fn set, the next passes hand the gradients of the layers' linear maps'
 * weights to fn (with the sink's ctx) a panel of rows at a time, as they are
 * made, in the order the backward makes them (matmul.h: weight_rows_fn), and the
 * sink's call for each layer has the layer's other tensors alone (norms,
 * biases): no gradient buffer the size of a layer is held or cleared, and a
 * half-precision weight is widened once for its input gradient and fn. Only
 * with a sink. NULL (the default): every gradient to the sink, whole. */
void backward_state_set_rows_sink(backward_state *t, weight_rows_fn *fn);

/* With skip, the next passes compute no gradient of the tensors outside the
 * layers (the embedding, final norm and LM head: no call with layer -1), for a
 * sink that wants none of them; an untied LM head's weight gradient is a
 * vocabulary-sized product of its own. false (the default): every tensor's. */
void backward_state_skip_outer(backward_state *t, bool skip);

/* Forward and backward over tokens (B, T) with targets (B, T) (-1: not scored).
 * Loss = mean cross-entropy over the scored targets (the Hugging Face causal-LM
 * loss when targets are the tokens shifted by one). Calls act (if not NULL) during
 * the forward pass and sink (if not NULL) during the backward pass; returns the
 * loss, which equals model_forward's mean NLL (nll_accumulate) on the same batch.
 * Without a sink the weights' gradients are not computed at all (a frozen base:
 * only the activations' gradients flow). With adapters (backward_state_set_lora) each
 * adapted map adds its LoRA term with the adapters' dropout (lora.h; the pass is
 * lora->pass), and the adapters' gradients are added into lora->grads when set.
 * With no target scored the loss is 0 and every gradient zero. m is the model t
 * was made for (same shape). Dies on a token or target outside the vocabulary. */
double model_loss_backward(const model *m, backward_state *t, const int *tokens, const int *targets,
                           grad_sink_fn sink, act_sink_fn act, void *ctx);

/* The same pass in two halves, for a loss of the caller's own (distillation):
 * model_forward_kept runs the forward pass keeping what the backward needs (with
 * the adapters' dropout, calling act as above) and returns the logits (B*T, V),
 * which the caller overwrites in place with d loss / d logits; then
 * model_backward_from_logits runs the backward pass from them, as
 * model_loss_backward does after its cross-entropy (sink, the adapters' grads). */
float *model_forward_kept(const model *m, backward_state *t, const int *tokens, act_sink_fn act, void *ctx);
void model_backward_from_logits(const model *m, backward_state *t, const int *tokens, grad_sink_fn sink, void *ctx);

/* Peak bytes of the buffers backward_state holds (for the memory benchmark). */
size_t backward_state_bytes(const backward_state *t);

#endif
