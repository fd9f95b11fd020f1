/* model.h - one in-memory LLaMA-architecture model: config, named fp32 tensors,
 * tokenizer bytes. Loaded from a llama2.c .bin, a Hugging Face folder, a bare
 * config.json (no weights: planning only) or a pare checkpoint stream.
 *
 * Letters: D hidden size, L layers, V vocabulary, hd head dim, H query heads of a
 * layer, KV key/value heads of a layer, F MLP width of a layer. */
#ifndef PARE_MODEL_H
#define PARE_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "tensor.h"

enum rope_style { ROPE_HALF, ROPE_INTERLEAVED };

typedef struct {
    char model_type[32]; /* "llama" (qwen2: llama with q/k/v biases) */
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
    enum rope_style rope_style;
    bool tied;           /* lm_head shares the embedding */
    bool qkv_bias;       /* q/k/v projections have biases */
    int bos_id, eos_id;
} llama_config;

typedef struct {
    float *attn_norm;            /* (D) */
    float *wq;                   /* (H*hd, D) */
    float *wk, *wv;              /* (KV*hd, D) */
    float *wo;                   /* (D, H*hd) */
    float *bq, *bk, *bv;         /* (H*hd), (KV*hd), (KV*hd) or NULL */
    float *ffn_norm;             /* (D) */
    float *w_gate, *w_up;        /* (F, D) */
    float *w_down;               /* (D, F) */
} layer_weights;

typedef struct {
    char *format;                /* "sentencepiece", "llama2c", "hf-json" */
    uint8_t *data;
    size_t size;
} tokenizer_blob;

typedef struct {
    char *source;                /* path it was loaded from, for messages */
    llama_config cfg;
    json_t *extra_config;        /* config keys pare does not interpret, kept verbatim */
    bool has_weights;            /* false when loaded from a bare config.json */
    int n_tensors;
    tensor *tensors;             /* sorted by name */
    float *embed;                /* (V, D) */
    float *final_norm;           /* (D) */
    float *lm_head;              /* (V, D); == embed when tied */
    layer_weights *layers;       /* [L] */
    tokenizer_blob tok;          /* size 0 when the model has none */
    json_t *provenance;          /* from a checkpoint header, or NULL */
} model;

/* Load any supported model; dies with "FILE: problem" on anything unsupported or
 * inconsistent. tokenizer_path (may be NULL) overrides/supplies the tokenizer. */
void model_load(model *m, const char *path, const char *tokenizer_path);
void model_free(model *m);

/* Config <-> JSON (Hugging Face config.json keys + rope_style). */
void llama_config_from_json(llama_config *c, json_t *j, const char *source);
json_t *llama_config_to_json(const llama_config *c);  /* canonical: per-layer values
                                                         become arrays only when they differ */
void llama_config_free(llama_config *c);
/* Per-layer sizes. */
static inline int64_t llama_q_dim(const llama_config *c, int l) { return (int64_t)c->n_heads[l] * c->head_dim; }
static inline int64_t llama_kv_dim(const llama_config *c, int l) { return (int64_t)c->n_kv_heads[l] * c->head_dim; }

/* Expected tensors: the name and shape of every tensor the config implies, in name
 * order. Returns the count; *names/shapes allocated. Used by loaders to check inputs
 * and by the fixture generator to make models. */
typedef struct {
    char *name;
    int ndim;
    int64_t shape[2];
} tensor_spec;
int llama_tensor_specs(const llama_config *c, tensor_spec **specs);
void tensor_specs_free(tensor_spec *specs, int n);

/* Look up a tensor by name (binary search); NULL if absent. */
tensor *model_tensor(const model *m, const char *name);
/* After tensors are in place: check every expected tensor exists with the right
 * shape, and point embed/layers/... at them. Dies naming m->source otherwise. */
void model_bind(model *m);

/* XXH64 over canonical config JSON then each tensor's name, "f32", shape and fp32
 * bytes in name order, as 16 hex digits. */
void model_fingerprint(const model *m, char out[17]);

/* Parameter count of the weights the config implies. */
int64_t llama_param_count(const llama_config *c);

#endif
