/* lora.h - LoRA adapters (Hu et al. 2021, as PEFT and alpaca-lora apply them) on
 * the linear maps of a model (LLaMA's, ChatGLM's fused ones too):
 *
 *     y = W x (+ b) + (alpha / r) * B A dropout(x)
 *
 * A (r, I) and B (O, r) per adapted map, the base W frozen. A set is passed
 * beside the model, to a pass (forward_state.lora, kv_cache.lora,
 * backward_state_set_lora); the layer forward (layer.c) adds each adapter's term
 * right after the map it adapts, and the backward pass adds the adapters'
 * gradients into the set's grads. Dropout
 * acts on the adapter's input during training passes only. A set holds scratch
 * buffers, so the passes of one model with adapters run one at a time (pare runs
 * no two passes of a model at once).
 *
 * Letters: r rank, N rows, I/O a map's input/output width (nin/nout in code),
 * L layers, D hidden, F MLP width. */
#ifndef PARE_LORA_H
#define PARE_LORA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

/* The targets (enum lora_target, model.h) are the maps of the weight table with
 * a lora column. A target's name in an architecture is its module's name there
 * (the weight's name without ".weight", after its last dot), as PEFT's
 * target_modules give it: LLaMA's q_proj, k_proj, v_proj, o_proj, gate_proj,
 * up_proj, down_proj; ChatGLM's query_key_value, dense, dense_h_to_4h,
 * dense_4h_to_h (ChatGLM-6B's dense_h_to_4h is LORA_UP, ChatGLM2's fused
 * [gate | up] one LORA_GATE_UP). A fused map has one adapter over all its rows,
 * as PEFT wraps the module. */
#define LORA_ALL_TARGETS ((1u << LORA_TARGET_COUNT) - 1) /* a set keeps those of its model */

/* Target's name in arch ("q_proj", "query_key_value"), or NULL when arch has no
 * such map. */
const char *lora_target_name(enum model_arch arch, int target);
/* The targets arch has (bit mask). */
unsigned lora_arch_targets(enum model_arch arch);
/* The target of weight id (enum layer_weight_id), or -1 for a weight no
 * adapter adapts. */
int lora_target_of(int weight_id);
/* A comma-separated list of arch's target names (LLaMA's also without "_proj":
 * q, k, v, o, gate, up, down), or all -> bit mask. 0 on a name that is not one
 * of arch's targets, or an empty list. */
unsigned lora_targets_parse(enum model_arch arch, const char *list);
/* The mask's targets as arch names them, comma-separated in the forward's order
 * (the weight table's): "q_proj,k_proj,..." (malloc'd). */
char *lora_targets_string(enum model_arch arch, unsigned targets);

/* One adapted map. */
typedef struct {
    int layer, target;  /* target: enum lora_target */
    int nin, nout;      /* I, O */
    char *name;         /* the adapted weight: "model.layers.3.self_attn.q_proj.weight" */
    size_t a, b;        /* offsets into params of A (r, I) and B (O, r) */
} lora_adapter;

typedef struct lora_set {
    int rank;           /* r */
    double alpha;
    float scale;        /* alpha / r */
    enum model_arch arch; /* the base model's: it names the targets */
    unsigned targets;   /* bit mask of enum lora_target, of those arch has */
    int n_layers;
    int n;              /* adapters: every (layer, target) whose map exists */
    lora_adapter *ad;   /* [n], layers ascending, targets in the forward's order */
    int *index;         /* [L * LORA_TARGET_COUNT] adapter of (layer, target), or -1 */
    size_t n_weights;   /* the adapters' parameters: r (I + O) summed */
    size_t n_params;    /* floats of params (slices padded to 64 bytes) */
    float *params;      /* (n_params) every A and B, 64-byte aligned slices */
    float *grads;       /* (n_params) NULL, or (lora_alloc_grads) where lora_backward adds */
    char fingerprint[17]; /* the base model's */
    /* dropout of the adapters' input in training passes (backward.c's forward):
     * element (row n, column i) of adapter (l, t)'s input in pass `pass` is kept
     * (and scaled by 1/(1-p)) when a hash of (seed, pass, l, t, n, i) clears p.
     * A pure function of those: a layer recomputed in the backward pass gets the
     * same mask, and a resumed run the same masks as one never stopped. */
    double dropout;     /* p */
    uint64_t seed;
    uint64_t pass;      /* set by the trainer before each training pass */
    /* scratch, grown when a call needs more rows (never in steady state) */
    size_t scratch_rows;
    float *xd;          /* (rows, max I) the dropped-out input, then its gradient */
    float *u, *du;      /* (rows, r) A x and its gradient */
} lora_set;

/* The adapters of targets (mask; those m's architecture lacks are left out) on
 * every layer of m where the map exists (a pruned-away attention or MLP has
 * none), rank r, params zero; fingerprint is m's.
 * Dies on a rank below 1 or no adapter at all. */
void lora_init(lora_set *s, const model *m, unsigned targets, int rank, double alpha);
/* A Kaiming-uniform with a = sqrt(5) (torch's default for nn.Linear and PEFT's
 * LoRA A), i.e. uniform in [-1/sqrt(I), 1/sqrt(I)), from a generator seeded by
 * XXH64(adapter name, seed); B zero. */
void lora_init_weights(lora_set *s, uint64_t seed);
/* Allocate grads (zero). */
void lora_alloc_grads(lora_set *s);
void lora_free(lora_set *s);

static inline const lora_adapter *lora_find(const lora_set *s, int layer, int target)
{
    int k = s->index[layer * LORA_TARGET_COUNT + target];
    return k < 0 ? NULL : &s->ad[k];
}

/* out (N, O) += scale * B A drop(in), in (N, I), for adapter (layer, target);
 * nothing if that map has none. drop: apply the dropout (training passes). */
void lora_forward(lora_set *s, int layer, int target, float *out, const float *in, int N, bool drop);
/* The backward of lora_forward(..., drop = true) given dout (N, O) and the same
 * input in (N, I): din (N, I) += the input's gradient, and, when grads is set,
 * the gradients of A and B are added into grads. */
void lora_backward(lora_set *s, int layer, int target, float *din, const float *dout, const float *in, int N);
/* The dropout factor of element (row, col) of adapter (layer, target)'s input in
 * the current pass: 0 or 1/(1-p) (1 when p is 0). For tests. */
float lora_dropout_factor(const lora_set *s, int layer, int target, int64_t row, int64_t col);

/* W += scale * B A for every adapter, in m's own tensors (matmul_add_lowrank). */
void lora_merge(const lora_set *s, model *m);

/* Free a set made by adapter_load (adapter.h). */
void lora_destroy(lora_set *s);

#endif
