/* model.h - one in-memory model (LLaMA, Qwen3 or ChatGLM architecture): config, named tensors bound
 * to its layers through the weight table, tokenizer bytes. Loaders (model_load.h)
 * fill it from files; this type knows no file format.
 *
 * Letters: D hidden size, L layers, V vocabulary, hd head dim, H query heads of a
 * layer, KV key/value heads of a layer, F MLP width of a layer. */
#ifndef PARE_MODEL_H
#define PARE_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "model/rope_style.h"
#include "model/tensor.h"

/* ---- the architectures ----
 *
 * pare reads four architectures. Each is one row of model_archs (model.c), which
 * says what its layer computes and names its weights: an array of names per weight
 * table below (a weight's name in it, or NULL where it has no such weight), as
 * llama.cpp's llama-arch.cpp keys tensor names by architecture. The forward,
 * backward, graph and pruning code read these descriptions, never the name.
 *   ARCH_LLAMA     LLaMA 1/2/3, Mistral, Qwen2/2.5 (model_type llama, mistral, qwen2)
 *   ARCH_QWEN3     Qwen3 (model_type qwen3): LLaMA's layer with q_norm/k_norm, an
 *                  RMSNorm of every query and key head over hd before rotary, one
 *                  weight of hd per map shared by its heads
 *   ARCH_CHATGLM   ChatGLM-6B (model_type chatglm without multi_query_attention):
 *                  LayerNorm with bias, fused q/k/v interleaved per head, GeLU MLP,
 *                  every linear map with a bias, 2D rotary, residuals alpha * norm(x)
 *   ARCH_CHATGLM2  ChatGLM2/3-6B (model_type chatglm with multi_query_attention):
 *                  RMSNorm, fused [Q | K | V] with a bias, multi-query attention,
 *                  partial interleaved rotary, SwiGLU from one fused [gate | up] */
enum model_arch { ARCH_LLAMA, ARCH_CHATGLM, ARCH_CHATGLM2, ARCH_QWEN3, ARCH_COUNT };
enum norm_kind { NORM_RMS, NORM_LAYER };    /* x*rsqrt(mean x^2)*w; (x-mean)*rsqrt(var)*w + b */
enum mlp_kind { MLP_SWIGLU, MLP_GELU };     /* down(silu(gate) * up); down(gelu_tanh(up) + b) */
enum fused_layout { FUSED_NONE, FUSED_PER_HEAD, FUSED_CONCAT }; /* how a fused map's rows split */

typedef struct {
    const char *name;          /* "llama", "chatglm", "chatglm2", "qwen3" (messages) */
    const char *layer_prefix;  /* "model.layers." : layer weights are PREFIX N "." SUFFIX */
    const char *const *layer_names; /* [LW_COUNT] each layer weight's SUFFIX, NULL: none */
    const char *const *outer_names; /* [MW_COUNT] each outer weight's name, NULL: none */
    enum norm_kind norm;
    enum mlp_kind mlp;
    enum fused_layout qkv;     /* q/k/v: separate maps, or one map whose rows are
                                  per head [q | k | v] (PER_HEAD) or [Q | K | V] (CONCAT) */
    bool fused_gate_up;        /* one map with rows [gate (F) | up (F)] */
    bool scaled_residual;      /* h = alpha * norm(x) + f(norm(x)), alpha = sqrt(2 * alpha_layers) */
    bool rope_half;            /* rotary acts on the first half of a head's channels only */
    bool rope_2d;              /* ... and the second half rotates by the block position */
    bool qk_norm;              /* q and k heads RMS-normed over hd before rotary (Qwen3) */
} arch_desc;
extern const arch_desc model_archs[ARCH_COUNT];

/* Rotary frequency scaling (config.json's rope_scaling, as transformers'
 * modeling_rope_utils computes the inverse frequencies): none; "linear", every
 * frequency divided by factor; "llama3", wavelengths longer than
 * original_max_position_embeddings / low_freq_factor divided by factor, those
 * shorter than original_max_position_embeddings / high_freq_factor kept, and the
 * band between interpolated (config_rope_inv_freq). */
enum rope_scaling { ROPE_SCALING_NONE, ROPE_SCALING_LINEAR, ROPE_SCALING_LLAMA3 };
typedef struct {
    enum rope_scaling type;
    double factor;            /* linear, llama3 (the config's numbers, as Python holds them) */
    double low_freq_factor;   /* llama3 */
    double high_freq_factor;  /* llama3 */
    int original_max_seq;     /* llama3: original_max_position_embeddings */
} rope_scaling_config;

/* The most layers a config may give: real models have at most a few hundred, and a
 * config (a hundred bytes of JSON) must not make a program allocate and walk
 * per-layer tables of billions. */
#define MODEL_MAX_LAYERS 4096

typedef struct {
    char model_type[32]; /* "llama", "mistral" (same as llama), "qwen2" (always qkv_bias), "qwen3", "chatglm" */
    enum model_arch arch; /* model_archs[arch] says what a layer computes */
    int dim;             /* D */
    int n_layers;        /* L */
    int vocab;           /* V */
    int head_dim;        /* hd */
    int max_seq;         /* max_position_embeddings */
    int *n_heads;        /* [L] query heads; 0 = attention removed */
    int *n_kv_heads;     /* [L] key/value heads; divides n_heads */
    int *ffn_dim;        /* [L] MLP width; 0 = MLP removed */
    float norm_eps;
    float rope_theta;
    rope_scaling_config rope_scaling;
    enum rope_style rope_style;
    bool tied;           /* lm_head shares the embedding */
    bool qkv_bias;       /* q/k/v projections have biases */
    bool o_bias;         /* o_proj has a bias (Llama attention_bias; FLAP compensation) */
    bool down_bias;      /* down_proj has a bias (FLAP compensation) */
    bool up_bias;        /* the MLP's input map has a bias (ChatGLM-6B) */
    int alpha_layers;    /* scaled_residual: alpha = sqrt(2 * alpha_layers), the
                            original model's layer count (kept when layers go) */
    int bos_id, eos_id;
} model_config;

/* The linear maps LoRA adapters may adapt (lora.h), named by the weight table's
 * lora column: LLaMA's seven (ChatGLM's dense and dense_4h_to_h are O and DOWN,
 * ChatGLM-6B's dense_h_to_4h is UP), then the fused maps, query_key_value and
 * ChatGLM2's [gate | up] dense_h_to_4h. The values key the adapters' dropout
 * masks (lora.c): a new target goes at the end. */
enum lora_target {
    LORA_NONE = -1,
    LORA_Q, LORA_K, LORA_V, LORA_O, LORA_GATE, LORA_UP, LORA_DOWN, LORA_QKV, LORA_GATE_UP,
    LORA_TARGET_COUNT
};

/* ---- the weights of a layer: the one table ----
 *
 * Every per-layer weight is one row here, and its name in each architecture that
 * has it is in that architecture's array (model.c); tensor specs and binding
 * (model.c), the backward pass's gradient slots (backward.c), the LoRA targets
 * (lora.c), the llama2.c mapping (llama2c.c), the dataflow graph's names
 * (graph.c) and GGUF's names (gguf.c) are all derived from them. Adding a weight
 * means a row here, its names, the kernel that uses it, and its test
 * (lib/README.md, "Add a per-layer weight").
 *
 *   X(ID, field, rows, cols, part, opt, lora, gguf)
 *   ID      LW_ID: the weight's slot in a layer; the backward pass delivers a
 *           layer's gradients in this order
 *   field   its member of layer_weights
 *   rows, cols  its shape from (config, layer): DIM_D hidden size, DIM_Q query
 *           width H*hd, DIM_KV key/value width KV*hd, DIM_QKV their sum Q+2KV,
 *           DIM_F MLP width, DIM_F2 twice that, DIM_HD head dim (a per-head
 *           weight), DIM_V vocabulary; a vector has cols DIM_NONE
 *   part    PART_ATTN (present when H > 0) or PART_MLP (present when F > 0): a
 *           norm goes with the sub-block it feeds
 *   opt     OPT_ALWAYS (present with its part in every architecture that names
 *           it: q_norm and k_norm are Qwen3's), or the config flag that adds it
 *           (an optional bias): OPT_QKV_BIAS, OPT_O_BIAS, OPT_DOWN_BIAS,
 *           OPT_UP_BIAS, OPT_NORM_BIAS (LayerNorm)
 *   lora    the LoRA target (enum lora_target) of a map an adapter can adapt, or
 *           LORA_NONE; a target's name in an architecture is its module's name
 *           there, as PEFT's target_modules give it ("q_proj", "query_key_value",
 *           "dense_h_to_4h": lora.h)
 *   gguf    its name after "blk.N." in a GGUF file (llama.cpp's names), NULL: none */
#define LAYER_WEIGHTS(X) \
    X(ATTN_NORM, attn_norm, DIM_D, DIM_NONE, PART_ATTN, OPT_ALWAYS, LORA_NONE, "attn_norm.weight") \
    X(ATTN_NORM_B, attn_norm_b, DIM_D, DIM_NONE, PART_ATTN, OPT_NORM_BIAS, LORA_NONE, NULL) \
    X(Q, wq, DIM_Q, DIM_D, PART_ATTN, OPT_ALWAYS, LORA_Q, "attn_q.weight") \
    X(K, wk, DIM_KV, DIM_D, PART_ATTN, OPT_ALWAYS, LORA_K, "attn_k.weight") \
    X(V, wv, DIM_KV, DIM_D, PART_ATTN, OPT_ALWAYS, LORA_V, "attn_v.weight") \
    X(QKV, wqkv, DIM_QKV, DIM_D, PART_ATTN, OPT_ALWAYS, LORA_QKV, NULL) \
    X(O, wo, DIM_D, DIM_Q, PART_ATTN, OPT_ALWAYS, LORA_O, "attn_output.weight") \
    X(BQ, bq, DIM_Q, DIM_NONE, PART_ATTN, OPT_QKV_BIAS, LORA_NONE, "attn_q.bias") \
    X(BK, bk, DIM_KV, DIM_NONE, PART_ATTN, OPT_QKV_BIAS, LORA_NONE, "attn_k.bias") \
    X(BV, bv, DIM_KV, DIM_NONE, PART_ATTN, OPT_QKV_BIAS, LORA_NONE, "attn_v.bias") \
    X(BQKV, bqkv, DIM_QKV, DIM_NONE, PART_ATTN, OPT_QKV_BIAS, LORA_NONE, NULL) \
    X(Q_NORM, q_norm, DIM_HD, DIM_NONE, PART_ATTN, OPT_ALWAYS, LORA_NONE, "attn_q_norm.weight") \
    X(K_NORM, k_norm, DIM_HD, DIM_NONE, PART_ATTN, OPT_ALWAYS, LORA_NONE, "attn_k_norm.weight") \
    X(BO, bo, DIM_D, DIM_NONE, PART_ATTN, OPT_O_BIAS, LORA_NONE, "attn_output.bias") \
    X(FFN_NORM, ffn_norm, DIM_D, DIM_NONE, PART_MLP, OPT_ALWAYS, LORA_NONE, "ffn_norm.weight") \
    X(FFN_NORM_B, ffn_norm_b, DIM_D, DIM_NONE, PART_MLP, OPT_NORM_BIAS, LORA_NONE, NULL) \
    X(GATE, w_gate, DIM_F, DIM_D, PART_MLP, OPT_ALWAYS, LORA_GATE, "ffn_gate.weight") \
    X(UP, w_up, DIM_F, DIM_D, PART_MLP, OPT_ALWAYS, LORA_UP, "ffn_up.weight") \
    X(GATE_UP, w_gate_up, DIM_F2, DIM_D, PART_MLP, OPT_ALWAYS, LORA_GATE_UP, NULL) \
    X(BUP, bup, DIM_F, DIM_NONE, PART_MLP, OPT_UP_BIAS, LORA_NONE, NULL) \
    X(DOWN, w_down, DIM_D, DIM_F, PART_MLP, OPT_ALWAYS, LORA_DOWN, "ffn_down.weight") \
    X(BDOWN, bdown, DIM_D, DIM_NONE, PART_MLP, OPT_DOWN_BIAS, LORA_NONE, "ffn_down.bias")

enum weight_dim { DIM_NONE, DIM_D, DIM_Q, DIM_KV, DIM_QKV, DIM_F, DIM_F2, DIM_HD, DIM_V };
enum weight_part { PART_ATTN, PART_MLP };
enum weight_opt { OPT_ALWAYS, OPT_QKV_BIAS, OPT_O_BIAS, OPT_DOWN_BIAS, OPT_UP_BIAS, OPT_NORM_BIAS };

enum layer_weight_id {
#define LW_ENUM(id, field, rows, cols, part, opt, lora, gguf) LW_##id,
    LAYER_WEIGHTS(LW_ENUM)
#undef LW_ENUM
    LW_COUNT
};

typedef struct {
    enum weight_dim rows, cols;
    enum weight_part part;
    enum weight_opt opt;
    int lora;                     /* enum lora_target, or LORA_NONE */
    const char *gguf;
} weight_desc;

/* The table as data: layer_weight_table[LW_Q].gguf is "attn_q.weight"; a weight's
 * name in an architecture is model_archs[arch].layer_names[LW_Q]. */
extern const weight_desc layer_weight_table[LW_COUNT];

/* The norms' weights and biases, which scale rather than map: pruning drops them
 * with the sub-block they belong to, and the backward computes their gradients even
 * when no weight's is wanted. */
static inline bool layer_weight_is_norm(int id)
{
    return id == LW_ATTN_NORM || id == LW_ATTN_NORM_B || id == LW_FFN_NORM || id == LW_FFN_NORM_B ||
           id == LW_Q_NORM || id == LW_K_NORM;
}

/* The weights whose rows (a norm: whose entries) run along the channels of
 * rotary heads, q's and k's: their order within a head is the config's
 * rope_style (rope_layout.h converts between the two). */
static inline bool layer_weight_is_rotary(int id)
{
    return id == LW_Q || id == LW_K || id == LW_BQ || id == LW_BK || id == LW_Q_NORM || id == LW_K_NORM;
}

/* The maps whose output is added to the residual stream (o_proj and down_proj,
 * by whatever name an architecture gives them): a random model draws them with
 * half the spread, so that activations keep their size through any depth. */
static inline bool layer_weight_feeds_residual(int id) { return id == LW_O || id == LW_DOWN; }

/* The weights outside the layers, the same way: X(ID, field, rows, cols, gguf), the
 * names in each architecture's outer_names. The LM head is absent from a tied model
 * (the embedding serves as both). */
#define MODEL_WEIGHTS(X) \
    X(EMBED, embed, DIM_V, DIM_D, "token_embd.weight") \
    X(FINAL_NORM, final_norm, DIM_D, DIM_NONE, "output_norm.weight") \
    X(FINAL_NORM_B, final_norm_b, DIM_D, DIM_NONE, NULL) \
    X(LM_HEAD, lm_head, DIM_V, DIM_D, "output.weight")

enum model_weight_id {
#define MW_ENUM(id, field, rows, cols, gguf) MW_##id,
    MODEL_WEIGHTS(MW_ENUM)
#undef MW_ENUM
    MW_COUNT
};

/* The GGUF names of the outer weights by MW_ id ("token_embd.weight"). */
extern const char *const model_weight_gguf[MW_COUNT];

/* A layer's weights, by name (w->wq) or by slot (w->slot[LW_Q]); NULL where the
 * config has no such weight. Each points at a tensor of the model. */
typedef union {
    struct {
#define LW_FIELD(id, field, rows, cols, part, opt, lora, gguf) const tensor *field;
        LAYER_WEIGHTS(LW_FIELD)
#undef LW_FIELD
    };
    const tensor *slot[LW_COUNT];
} layer_weights;

typedef struct {
    char *format;                /* "sentencepiece", "llama2c", "hf-json" */
    uint8_t *data;
    size_t size;
} tokenizer_blob;

typedef struct {
    char *source;                /* path it was loaded from, for messages */
    model_config cfg;
    json_t *extra_config;        /* config keys pare does not interpret, kept verbatim */
    bool has_weights;            /* false when loaded from a bare config.json */
    int n_tensors;
    tensor *tensors;             /* sorted by name */
    tensor_source *values;       /* where tensors without data get theirs (a model made
                                    to be written once: pare-prune's output, pare-mkmodel's),
                                    else NULL; model_free releases it */
    union {                      /* the weights outside the layers, by name or MW_ slot: */
        struct {                 /* embed (V, D), final_norm (D), final_norm_b (D) or NULL, lm_head (V, D), == embed when tied */
#define MW_FIELD(id, field, rows, cols, gguf) const tensor *field;
            MODEL_WEIGHTS(MW_FIELD)
#undef MW_FIELD
        };
        const tensor *outer[MW_COUNT];
    };
    layer_weights *layers;       /* [L] */
    tokenizer_blob tok;          /* size 0 when the model has none */
    json_t *provenance;          /* from a checkpoint header, or NULL */
    char fingerprint[17];        /* the fingerprint model_bind took of the values it bound
                                    (model_bound_fingerprint), "" when it took none; it
                                    does not follow later changes: whoever changes a bound
                                    model's values or config on purpose clears it */
} model;

/* Loading from files is model_load.h's (the model type knows no file format). */
void model_free(model *m);

/* Config <-> JSON (Hugging Face config.json keys + rope_style). */
void config_from_json(model_config *c, json_t *j, const char *source);
json_t *config_to_json(const model_config *c);  /* canonical: per-layer values
                                                         become arrays only when they differ */
void config_free(model_config *c);
void config_copy(model_config *dst, const model_config *src);   /* deep copy */
/* The keys of a config.json that config_from_json does not interpret (new object). */
json_t *config_extra(const json_t *j);
/* json_dumps(config_to_json(c), JSON_SORT_KEYS | JSON_COMPACT); free() it. */
char *config_canonical(const model_config *c);
/* m->cfg and m->extra_config from a config object (source names it in errors). */
void model_set_config(model *m, json_t *j, const char *source);
/* The full config.json of m: canonical keys plus m->extra_config (new object). */
json_t *model_config_json(const model *m);
/* Per-layer sizes. */
static inline int64_t config_q_dim(const model_config *c, int l) { return (int64_t)c->n_heads[l] * c->head_dim; }
static inline int64_t config_kv_dim(const model_config *c, int l) { return (int64_t)c->n_kv_heads[l] * c->head_dim; }
/* Channels of a head one rotary table covers: hd, or hd/2 (ChatGLM). */
static inline int config_rope_dim(const model_config *c)
{
    return model_archs[c->arch].rope_half ? c->head_dim / 2 : c->head_dim;
}
/* The rotary inverse frequencies inv_freq[i], i < config_rope_dim / 2: theta^(-2i/rd),
 * then c->rope_scaling applied in fp32 as transformers applies it. */
void config_rope_inv_freq(const model_config *c, float *inv_freq);
/* Shape of weight id (enum layer_weight_id) of layer l under config c: returns
 * its ndim (1 or 2), or 0 when the config implies no such tensor. */
int layer_weight_shape(const model_config *c, int l, int id, int64_t shape[2]);
/* Shape of weight id (enum model_weight_id) under config c: its ndim, or 0
 * when the config implies no such tensor (the LM head of a tied model). */
int model_weight_shape(const model_config *c, int id, int64_t shape[2]);
/* "model.layers.L.SUFFIX" (the architecture's prefix and name) of weight id into buf. */
void layer_weight_name(const model_config *c, char *buf, size_t n, int l, int id);
/* Weight id's name after the layer prefix in c's architecture, or NULL. */
const char *model_layer_weight_suffix(const model_config *c, int id);
/* The name of outer weight id (enum model_weight_id) in c's architecture, or NULL. */
const char *model_weight_name(const model_config *c, int id);
/* The layer index of a layer weight's name in any architecture ("model.layers.3.x"
 * is 3, and *rest "x"; the prefixes differ), or -1 for any other name. */
int model_layer_of(const char *name, const char **rest);
/* Weight id of the layer weight named rest (after the prefix) under c, or -1. */
int model_layer_weight_id(const model_config *c, const char *rest);

/* The parts of a fused map's output (the rows of LW_QKV, LW_BQKV: q, k, v; of
 * LW_GATE_UP: gate, up) in layer l: part p's channel j is row
 * offset + (j / block) * stride + j % block, for j < width. Returns the number of
 * parts, 0 for a weight that is not fused. The forward's split, its backward's
 * merge and the dataflow graph's slices all read this. */
typedef struct {
    int64_t offset, block, stride, width;
} fused_part;
int model_fused_parts(const model_config *c, int l, int id, fused_part parts[3]);

/* Expected tensors: the name and shape of every tensor the config implies, in name
 * order (strcmp). Returns the count; *specs is allocated (tensor_specs_free). A
 * layer with H = 0 has no input_layernorm, q/k/v/o or biases; a layer with F = 0
 * has no post_attention_layernorm, gate/up/down: a norm goes with the sub-block it
 * feeds. Used by loaders to check inputs and by the fixture generator. */
typedef struct {
    char *name;
    int ndim;
    int64_t shape[2];
} tensor_spec;
int model_tensor_specs(const model_config *c, tensor_spec **specs);
void tensor_specs_free(tensor_spec *specs, int n);

/* Append a tensor with uninitialised, 64-byte aligned fp32 data (or data of dtype);
 * returns it (valid until the next append, which also leaves every bound pointer -
 * m->embed, m->layers - stale until model_bind). Loaders call this, then model_bind. */
tensor *model_new_tensor(model *m, const char *name, int ndim, const int64_t shape[2]);
tensor *model_new_tensor_as(model *m, const char *name, int ndim, const int64_t shape[2], enum dtype dtype);
/* Look up a tensor by name (binary search); NULL if absent. */
tensor *model_tensor(const model *m, const char *name);
/* After tensors are in place: sort them by name, check every expected tensor
 * exists with the right shape and no other is present ("*.rotary_emb.inv_freq"
 * and "*.rotary_pos_emb.inv_freq" buffers are dropped, their values unread; a
 * tied model's lm_head.weight is dropped when it equals the embedding), check
 * every value is finite, set has_weights and point embed/layers/... at them;
 * vectors are widened to fp32 in memory (tensor_vector). Dies naming m->source otherwise.
 * The values are checked and fingerprinted (m->fingerprint) in one pass in name
 * order (a model_scan), so that a model larger than the memory is read from disk
 * once for both; when some tensor has no data (a lazily made model), those with
 * data are checked and no fingerprint is taken. */
void model_bind(model *m);
/* One pass over a model's values in name order: each value checked for being
 * finite and hashed into the fingerprint (model_fingerprint's bytes), a block at a
 * time. A loader that reads the tensors one after another in name order runs it as
 * it reads, while each tensor's values are fresh in memory, and hands it to
 * model_bind_scanned instead of model_bind, which then reads the values no more. */
typedef struct model_scan model_scan;
model_scan *model_scan_begin(const model_config *c);
/* The next values, [start, start + n), of t: start 0 begins t (its name and shape
 * are hashed), later calls continue it where the last one ended. */
void model_scan_values(model_scan *s, const tensor *t, int64_t start, int64_t n);
void model_scan_free(model_scan *s);
/* model_bind with the scan s of m's tensors (taken; NULL: model_bind). s stands
 * for the values only when it went through exactly the tensors m holds once bound
 * (none dropped), each whole: else model_bind scans them itself. */
void model_bind_scanned(model *m, model_scan *s);
/* model_bind without its pass over the values: m is bound (its vectors widened),
 * but its values are neither checked nor fingerprinted until model_scan_finish,
 * for a caller that reads every value in a pass of its own anyway and scans them
 * there (pare-prune, in the pass that fingerprints the pruned model). */
void model_bind_unscanned(model *m);
/* The rest of binding: the scan s (taken) stands as in model_bind_scanned, else
 * (or NULL) m's values are scanned now; dies naming the first non-finite value;
 * m->fingerprint is the scan's (none when m's values were scanned here and some
 * tensor has no data). Also names a model a caller made: its whole scan, in name
 * order, through the values m->values gives. */
void model_scan_finish(model *m, model_scan *s);
/* Start reading the weights of layer l (tensor_prefetch); l == L: the final norm
 * and the LM head; nothing for other l. A pass over the layers asks for layer
 * l + 1 (backward: l - 1) as it starts layer l. */
void model_prefetch_layer(const model *m, int l);

/* Make dtype the dtype m's tensors are written in: matrices are held in it when it
 * is a half-precision dtype (rounded to nearest even; vectors stay fp32 in memory
 * with rounded values); fp32 is exact and left to the writers. */
void model_set_dtype(model *m, enum dtype dtype);
/* Give every tensor without data its values from m->values (a lazily pruned or
 * random model made whole, for tests), and let the source go. */
void model_materialize(model *m);

/* XXH64 (seed 0), streamed over: the canonical config (config_canonical; the
 * extra keys are not part of a model's identity), then for each tensor in name
 * order: its name and a NUL byte, "f32" and a NUL byte, ndim as int64 LE, each
 * dimension as int64 LE, and its values widened to fp32 (LE), a block at a time.
 * 16 lower-case hex digits. It follows values, not storage: "f32" names the
 * widening whatever the dtype, so a bf16 model and its exact fp32 widening have
 * one fingerprint, that of fp32 models before weights kept their dtype. */
void model_fingerprint(const model *m, char out[17]);
/* m's fingerprint as bound: m->fingerprint, which model_bind took in its one pass
 * over the values, else (none taken, or cleared since) model_fingerprint's. For
 * those that name the model they were given as loaded (the stages' streams, the
 * adapters, the report): naming it takes no second pass over the weights. */
void model_bound_fingerprint(const model *m, char out[17]);

/* A model of config cfg (deep-copied) with random weights, deterministic in seed:
 * each tensor is drawn from its own generator seeded from (seed, name), so a tensor
 * does not depend on the shapes of the others. Matrices ~ N(0, s^2) with
 * s = 1/sqrt(fan_in) (halved for the maps that feed the residual,
 * layer_weight_feeds_residual),
 * embedding ~ N(0, 1/D) (tied logits stay near unit scale), norms ~ 1 + N(0, 0.1^2),
 * biases ~ N(0, 0.1^2). Bound. */
void model_init_random(model *m, const model_config *cfg, uint64_t seed);
/* The same model's tensors named and shaped but without values (data NULL; m is
 * for writing only, not bound), and in *rs the source that gives each its values,
 * rounded to dtype, when a writer asks: a model larger than memory is made one
 * tensor at a time. m->values points at rs->src and rs at m->cfg (rs must
 * outlive m, and m stay where it is). */
typedef struct {
    tensor_source src;
    uint64_t seed;
    const model_config *cfg;
} random_source;
void model_init_random_shapes(model *m, const model_config *cfg, uint64_t seed, enum dtype dtype, random_source *rs);

/* Parameter count of the weights the config implies. */
int64_t config_param_count(const model_config *c);

#endif
