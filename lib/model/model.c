/* model.c - the architectures and their weight tables as data, tensors bound to
 * layers and checked against the config, the model's name (fingerprint). Loading from
 * files is model_load.c's.
 *
 * Letters: D hidden size, L layers, V vocabulary, hd head dim, H query heads,
 * KV key/value heads, F MLP width (H, KV and F per layer).
 *
 * Rotary layout of the sources. llama2.c checkpoints keep Meta's layout: within a
 * head, q/k rows (2i, 2i+1) form a rotated pair ("interleaved"). Hugging Face
 * LLaMA folders rotate row i with row i + hd/2 ("half"), and the conversion
 * scripts (transformers' convert_llama_weights_to_hf.py, the Hugging Face export
 * of llama2.c's export.py) permute q_proj/k_proj rows per head so that the half layout computes the
 * same function: HF row h*hd + j*hd/2 + i = Meta row h*hd + 2i + j (j in {0, 1}).
 * The stories260K-hf folder in shared/data is such a conversion: its q_proj and
 * k_proj are exactly the permuted wq/wk of stories260K.bin (every other tensor is
 * bit-identical), so it loads as rope_style "half" and gives the same logits as the
 * .bin read as "interleaved". pare keeps each source's layout and records it in
 * rope_style rather than permuting on load. */
#include "model/model.h"

#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "base/parallel.h"
#include "base/util.h"

/* ---- tensor specs ---- */

static void add_spec(tensor_spec *s, int *n, char *name, int ndim, int64_t s0, int64_t s1)
{
    s[*n].name = name;
    s[*n].ndim = ndim;
    s[*n].shape[0] = s0;
    s[*n].shape[1] = ndim == 2 ? s1 : 0;
    (*n)++;
}

static int cmp_spec(const void *a, const void *b)
{
    return strcmp(((const tensor_spec *)a)->name, ((const tensor_spec *)b)->name);
}

/* ---- the architectures: what a layer computes, and every weight's name ---- */

/* LLaMA, Mistral, Qwen2 (Hugging Face transformers' names) */
#define LLAMA_LAYER_NAMES \
    [LW_ATTN_NORM] = "input_layernorm.weight", \
    [LW_Q] = "self_attn.q_proj.weight", \
    [LW_K] = "self_attn.k_proj.weight", \
    [LW_V] = "self_attn.v_proj.weight", \
    [LW_O] = "self_attn.o_proj.weight", \
    [LW_BQ] = "self_attn.q_proj.bias", \
    [LW_BK] = "self_attn.k_proj.bias", \
    [LW_BV] = "self_attn.v_proj.bias", \
    [LW_BO] = "self_attn.o_proj.bias", \
    [LW_FFN_NORM] = "post_attention_layernorm.weight", \
    [LW_GATE] = "mlp.gate_proj.weight", \
    [LW_UP] = "mlp.up_proj.weight", \
    [LW_DOWN] = "mlp.down_proj.weight", \
    [LW_BDOWN] = "mlp.down_proj.bias"
static const char *const llama_layer_names[LW_COUNT] = {LLAMA_LAYER_NAMES};
static const char *const llama_outer_names[MW_COUNT] = {
    [MW_EMBED] = "model.embed_tokens.weight",
    [MW_FINAL_NORM] = "model.norm.weight",
    [MW_LM_HEAD] = "lm_head.weight",
};

/* Qwen3 (transformers' modeling_qwen3.py): LLaMA's names and the per-head norms */
static const char *const qwen3_layer_names[LW_COUNT] = {
    LLAMA_LAYER_NAMES,
    [LW_Q_NORM] = "self_attn.q_norm.weight",
    [LW_K_NORM] = "self_attn.k_norm.weight",
};

/* ChatGLM-6B (THUDM/chatglm-6b's modeling_chatglm.py) */
static const char *const chatglm_layer_names[LW_COUNT] = {
    [LW_ATTN_NORM] = "input_layernorm.weight",
    [LW_ATTN_NORM_B] = "input_layernorm.bias",
    [LW_QKV] = "attention.query_key_value.weight",
    [LW_O] = "attention.dense.weight",
    [LW_BQKV] = "attention.query_key_value.bias",
    [LW_BO] = "attention.dense.bias",
    [LW_FFN_NORM] = "post_attention_layernorm.weight",
    [LW_FFN_NORM_B] = "post_attention_layernorm.bias",
    [LW_UP] = "mlp.dense_h_to_4h.weight",
    [LW_BUP] = "mlp.dense_h_to_4h.bias",
    [LW_DOWN] = "mlp.dense_4h_to_h.weight",
    [LW_BDOWN] = "mlp.dense_4h_to_h.bias",
};
static const char *const chatglm_outer_names[MW_COUNT] = {
    [MW_EMBED] = "transformer.word_embeddings.weight",
    [MW_FINAL_NORM] = "transformer.final_layernorm.weight",
    [MW_FINAL_NORM_B] = "transformer.final_layernorm.bias",
    [MW_LM_HEAD] = "lm_head.weight",
};

/* ChatGLM2/3-6B (THUDM/chatglm2-6b) */
static const char *const chatglm2_layer_names[LW_COUNT] = {
    [LW_ATTN_NORM] = "input_layernorm.weight",
    [LW_QKV] = "self_attention.query_key_value.weight",
    [LW_O] = "self_attention.dense.weight",
    [LW_BQKV] = "self_attention.query_key_value.bias",
    [LW_FFN_NORM] = "post_attention_layernorm.weight",
    [LW_GATE_UP] = "mlp.dense_h_to_4h.weight",
    [LW_DOWN] = "mlp.dense_4h_to_h.weight",
};
static const char *const chatglm2_outer_names[MW_COUNT] = {
    [MW_EMBED] = "transformer.embedding.word_embeddings.weight",
    [MW_FINAL_NORM] = "transformer.encoder.final_layernorm.weight",
    [MW_LM_HEAD] = "transformer.output_layer.weight",
};

const arch_desc model_archs[ARCH_COUNT] = {
    /* name, layer prefix, layer names, outer names, norm, MLP, q/k/v, fused gate/up, scaled residual,
       rotary on half, 2D rotary, q/k norms */
    [ARCH_LLAMA] = {"llama", "model.layers.", llama_layer_names, llama_outer_names, NORM_RMS, MLP_SWIGLU,
                    FUSED_NONE, false, false, false, false, false},
    [ARCH_CHATGLM] = {"chatglm", "transformer.layers.", chatglm_layer_names, chatglm_outer_names, NORM_LAYER,
                      MLP_GELU, FUSED_PER_HEAD, false, true, true, true, false},
    [ARCH_CHATGLM2] = {"chatglm2", "transformer.encoder.layers.", chatglm2_layer_names, chatglm2_outer_names,
                       NORM_RMS, MLP_SWIGLU, FUSED_CONCAT, true, false, true, false, false},
    [ARCH_QWEN3] = {"qwen3", "model.layers.", qwen3_layer_names, llama_outer_names, NORM_RMS, MLP_SWIGLU,
                    FUSED_NONE, false, false, false, false, true},
};

/* ---- the weight tables as data ---- */

const weight_desc layer_weight_table[LW_COUNT] = {
#define LW_DESC(id, field, rows, cols, part, opt, lora, gguf) {rows, cols, part, opt, lora, gguf},
    LAYER_WEIGHTS(LW_DESC)
#undef LW_DESC
};

const char *const model_weight_gguf[MW_COUNT] = {
#define MW_GGUF(id, field, rows, cols, gguf) gguf,
    MODEL_WEIGHTS(MW_GGUF)
#undef MW_GGUF
};

static const enum weight_dim model_weight_dims[MW_COUNT][2] = {
#define MW_DIMS(id, field, rows, cols, gguf) {rows, cols},
    MODEL_WEIGHTS(MW_DIMS)
#undef MW_DIMS
};

/* Layer l's size d (l is not read for the model-wide sizes). */
static int64_t dim_of(const model_config *c, int l, enum weight_dim d)
{
    switch (d) {
    case DIM_HD: return c->head_dim;
    case DIM_V: return c->vocab;
    case DIM_D: return c->dim;
    case DIM_Q: return config_q_dim(c, l);
    case DIM_KV: return config_kv_dim(c, l);
    case DIM_QKV: return config_q_dim(c, l) + 2 * config_kv_dim(c, l);
    case DIM_F: return c->ffn_dim[l];
    case DIM_F2: return 2 * (int64_t)c->ffn_dim[l];
    case DIM_NONE: break;
    }
    return 0;
}

const char *model_layer_weight_suffix(const model_config *c, int id) { return model_archs[c->arch].layer_names[id]; }

const char *model_weight_name(const model_config *c, int id) { return model_archs[c->arch].outer_names[id]; }

static bool opt_present(const model_config *c, enum weight_opt opt)
{
    switch (opt) {
    case OPT_ALWAYS: return true;
    case OPT_QKV_BIAS: return c->qkv_bias;
    case OPT_O_BIAS: return c->o_bias;
    case OPT_DOWN_BIAS: return c->down_bias;
    case OPT_UP_BIAS: return c->up_bias;
    case OPT_NORM_BIAS: return model_archs[c->arch].norm == NORM_LAYER;
    }
    return false;
}

int layer_weight_shape(const model_config *c, int l, int id, int64_t shape[2])
{
    const weight_desc *w = &layer_weight_table[id];
    bool part = w->part == PART_ATTN ? c->n_heads[l] > 0 : c->ffn_dim[l] > 0;
    if (!model_layer_weight_suffix(c, id) || !part || !opt_present(c, w->opt))
        return 0;
    shape[0] = dim_of(c, l, w->rows);
    shape[1] = dim_of(c, l, w->cols);
    return w->cols == DIM_NONE ? 1 : 2;
}

int model_weight_shape(const model_config *c, int id, int64_t shape[2])
{
    if ((id == MW_LM_HEAD && c->tied) || !model_weight_name(c, id))
        return 0;
    shape[0] = dim_of(c, 0, model_weight_dims[id][0]);
    shape[1] = dim_of(c, 0, model_weight_dims[id][1]);
    return model_weight_dims[id][1] == DIM_NONE ? 1 : 2;
}

void layer_weight_name(const model_config *c, char *buf, size_t n, int l, int id)
{
    const char *suffix = model_layer_weight_suffix(c, id);
    snprintf(buf, n, "%s%d.%s", model_archs[c->arch].layer_prefix, l, suffix ? suffix : "(none)");
}

int model_layer_of(const char *name, const char **rest)
{
    for (int a = 0; a < ARCH_COUNT; a++) {
        const char *prefix = model_archs[a].layer_prefix;
        size_t k = strlen(prefix);
        if (strncmp(name, prefix, k) || name[k] < '0' || name[k] > '9')
            continue;
        char *end;
        long l = strtol(name + k, &end, 10);
        if (*end != '.' || l > 1000000)
            return -1;
        *rest = end + 1;
        return (int)l;
    }
    return -1;
}

int model_layer_weight_id(const model_config *c, const char *rest)
{
    for (int id = 0; id < LW_COUNT; id++)
        if (model_layer_weight_suffix(c, id) && !strcmp(rest, model_layer_weight_suffix(c, id)))
            return id;
    return -1;
}

int model_fused_parts(const model_config *c, int l, int id, fused_part parts[3])
{
    const arch_desc *a = &model_archs[c->arch];
    int64_t hd = c->head_dim, q = config_q_dim(c, l), kv = config_kv_dim(c, l), F = c->ffn_dim[l];
    if ((id == LW_QKV || id == LW_BQKV) && a->qkv == FUSED_PER_HEAD) {
        /* head h's rows: [q_h | k_h | v_h], hd each (query and key/value heads pair one to one) */
        for (int p = 0; p < 3; p++)
            parts[p] = (fused_part){p * hd, hd, 3 * hd, p ? kv : q};
        return 3;
    }
    if ((id == LW_QKV || id == LW_BQKV) && a->qkv == FUSED_CONCAT) {
        parts[0] = (fused_part){0, q, q, q};
        parts[1] = (fused_part){q, kv, kv, kv};
        parts[2] = (fused_part){q + kv, kv, kv, kv};
        return 3;
    }
    if (id == LW_GATE_UP && a->fused_gate_up) {
        parts[0] = (fused_part){0, F, F, F};
        parts[1] = (fused_part){F, F, F, F};
        return 2;
    }
    return 0;
}

/* The outer tensors, then every layer weight the table and the config imply. */
int model_tensor_specs(const model_config *c, tensor_spec **specs)
{
    int cap = MW_COUNT + LW_COUNT * c->n_layers, n = 0;
    tensor_spec *s = xmalloc((size_t)cap * sizeof *s);
    for (int id = 0; id < MW_COUNT; id++) {
        int64_t shape[2];
        int ndim = model_weight_shape(c, id, shape);
        if (ndim)
            add_spec(s, &n, xstrdup(model_weight_name(c, id)), ndim, shape[0], shape[1]);
    }
    for (int l = 0; l < c->n_layers; l++)
        for (int id = 0; id < LW_COUNT; id++) {
            int64_t shape[2];
            int ndim = layer_weight_shape(c, l, id, shape);
            if (ndim) {
                char name[200];
                layer_weight_name(c, name, sizeof name, l, id);
                add_spec(s, &n, xstrdup(name), ndim, shape[0], shape[1]);
            }
        }
    qsort(s, (size_t)n, sizeof *s, cmp_spec);
    *specs = s;
    return n;
}

void tensor_specs_free(tensor_spec *specs, int n)
{
    for (int i = 0; i < n; i++)
        free(specs[i].name);
    free(specs);
}

int64_t config_param_count(const model_config *c)
{
    tensor_spec *s;
    int n = model_tensor_specs(c, &s);
    int64_t total = 0;
    for (int i = 0; i < n; i++)
        total += s[i].shape[0] * (s[i].ndim == 2 ? s[i].shape[1] : 1);
    tensor_specs_free(s, n);
    return total;
}

/* ---- tensors ---- */

tensor *model_new_tensor_as(model *m, const char *name, int ndim, const int64_t shape[2], enum dtype dtype)
{
    m->tensors = xrealloc(m->tensors, (size_t)(m->n_tensors + 1) * sizeof *m->tensors);
    tensor *t = &m->tensors[m->n_tensors++];
    tensor_init_as(t, name, ndim, shape, dtype);
    return t;
}

tensor *model_new_tensor(model *m, const char *name, int ndim, const int64_t shape[2])
{
    return model_new_tensor_as(m, name, ndim, shape, DTYPE_F32);
}

static int cmp_tensor(const void *a, const void *b)
{
    return strcmp(((const tensor *)a)->name, ((const tensor *)b)->name);
}

tensor *model_tensor(const model *m, const char *name)
{
    tensor key = {.name = (char *)name};
    if (!m->tensors)
        return NULL;
    return bsearch(&key, m->tensors, (size_t)m->n_tensors, sizeof key, cmp_tensor);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

static void remove_tensor(model *m, tensor *t)
{
    tensor_free(t);
    int i = (int)(t - m->tensors);
    memmove(t, t + 1, (size_t)(m->n_tensors - i - 1) * sizeof *t);
    m->n_tensors--;
}

static void format_shape(char *buf, size_t n, int ndim, const int64_t *shape)
{
    if (ndim == 1)
        snprintf(buf, n, "[%lld]", (long long)shape[0]);
    else
        snprintf(buf, n, "[%lld, %lld]", (long long)shape[0], (long long)shape[1]);
}

/* ---- the scan: values checked and fingerprinted in one pass, the hashing of
 * one block beside the widening of the next ---- */

enum { SCAN_BLOCK = 1 << 20 }; /* values widened at a time */

struct model_scan {
    XXH64_state_t *h;
    float *buf[2];  /* two blocks of cap values: one hashed while the other fills */
    int64_t cap;    /* grown to the largest block asked for, SCAN_BLOCK at most */
    bool check;     /* values checked (model_bind), or only hashed (model_fingerprint) */
    int n_tensors;  /* tensors begun */
    int64_t next;   /* the next value expected of the last one */
    int64_t numel;  /* its values */
    bool whole;     /* every tensor begun at 0 and continued where it ended, in name order */
    char *last;     /* the last tensor's name */
    char *bad;      /* the first tensor with a non-finite value, at bad_at (bad_value) */
    int64_t bad_at;
    float bad_value;
};

/* A block of one tensor's values [start, start + n), widened into buf; bad is the
 * index in the tensor of its first non-finite value, or -1. */
typedef struct {
    float *buf;
    int64_t start, n, bad;
} scan_block;

/* One step of the scan's pipeline: the block before is hashed (in order, on one
 * thread) while the next is widened and checked (on another). */
typedef struct {
    const tensor *t;
    scan_block *hash, *fill; /* NULL: none */
    XXH64_state_t *h;
    bool check;
} scan_step;

static void scan_part(void *ctx, int64_t b, int64_t e)
{
    const scan_step *s = ctx;
    for (int64_t i = b; i < e; i++)
        if (i == 0 && s->hash) {
            XXH64_update(s->h, s->hash->buf, (size_t)s->hash->n * sizeof(float));
        } else if (i == 1 && s->fill) {
            scan_block *f = s->fill;
            f->bad = s->check ? tensor_first_non_finite(s->t, f->start, f->n) : -1;
            tensor_get_f32(s->t, f->start, f->n, f->buf);
        }
}

static void hash_i64(XXH64_state_t *h, int64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)((uint64_t)v >> (8 * i));
    XXH64_update(h, b, 8);
}

static model_scan *scan_begin(const model_config *c, bool check)
{
    model_scan *s = xcalloc(1, sizeof *s);
    s->h = XXH64_createState();
    if (!s->h)
        die("out of memory");
    XXH64_reset(s->h, 0);
    char *cfg = config_canonical(c);
    XXH64_update(s->h, cfg, strlen(cfg));
    free(cfg);
    s->check = check;
    s->whole = true;
    return s;
}

model_scan *model_scan_begin(const model_config *c) { return scan_begin(c, true); }

void model_scan_values(model_scan *s, const tensor *t, int64_t start, int64_t n)
{
    if (start == 0) {
        if (s->n_tensors && (s->next != s->numel || strcmp(s->last, t->name) >= 0))
            s->whole = false;
        s->n_tensors++;
        free(s->last);
        s->last = xstrdup(t->name);
        s->numel = t->numel;
        XXH64_update(s->h, t->name, strlen(t->name) + 1);
        XXH64_update(s->h, "f32", 4);
        hash_i64(s->h, t->ndim);
        for (int d = 0; d < t->ndim; d++)
            hash_i64(s->h, t->shape[d]);
    } else if (!s->last || strcmp(s->last, t->name) || start != s->next) {
        s->whole = false;
    }
    s->next = start + n;
    int64_t need = n < SCAN_BLOCK ? n : SCAN_BLOCK;
    if (need > s->cap) { /* small models, and a reader that dies midway (a fuzzer's), hold little */
        for (int i = 0; i < 2; i++) {
            free(s->buf[i]);
            s->buf[i] = xmalloc_aligned((size_t)need * sizeof(float));
        }
        s->cap = need;
    }
    scan_block blocks[2] = {{.buf = s->buf[0]}, {.buf = s->buf[1]}};
    scan_step step = {.t = t, .h = s->h};
    for (int64_t b = start, i = 0;; b += SCAN_BLOCK, i++) {
        step.hash = step.fill;
        step.fill = NULL;
        if (b < start + n) {
            step.fill = &blocks[i % 2];
            step.fill->start = b;
            step.fill->n = start + n - b < SCAN_BLOCK ? start + n - b : SCAN_BLOCK;
        }
        if (!step.hash && !step.fill)
            break;
        step.check = s->check && !s->bad;
        int64_t work = (step.hash ? step.hash->n : 0) + (step.fill ? step.fill->n : 0);
        if (work < SCAN_BLOCK / 16) /* too little to wake a thread for */
            scan_part(&step, 0, 2);
        else
            parallel_for(2, 1, scan_part, &step);
        if (step.fill && step.fill->bad >= 0 && !s->bad) {
            s->bad = xstrdup(t->name);
            s->bad_at = step.fill->bad;
            s->bad_value = step.fill->buf[step.fill->bad - step.fill->start];
        }
    }
}

static void scan_digest(model_scan *s, char out[17])
{
    snprintf(out, 17, "%016llx", (unsigned long long)XXH64_digest(s->h));
}

void model_scan_free(model_scan *s)
{
    if (!s)
        return;
    XXH64_freeState(s->h);
    free(s->buf[0]);
    free(s->buf[1]);
    free(s->last);
    free(s->bad);
    free(s);
}

/* ---- binding ---- */

/* Everything binding checks but the values (names, shapes, the tied head); then the
 * vectors widened and the weights pointed at. */
static void bind_unscanned(model *m)
{
    const char *src = m->source ? m->source : "model";
    const model_config *c = &m->cfg;

    /* Rotary inverse-frequency buffers some exports carry: computed, not weights.
     * LLaMA's and ChatGLM-6B's per layer (*.rotary_emb.inv_freq) follow from the
     * config; ChatGLM2/3's one transformer.rotary_pos_emb.inv_freq is not even read
     * by the published forward, which recomputes the frequencies (with rope_ratio). */
    for (int i = 0; i < m->n_tensors;)
        if (ends_with(m->tensors[i].name, ".rotary_emb.inv_freq") ||
            ends_with(m->tensors[i].name, ".rotary_pos_emb.inv_freq"))
            remove_tensor(m, &m->tensors[i]);
        else
            i++;
    if (m->n_tensors > 0)
        qsort(m->tensors, (size_t)m->n_tensors, sizeof *m->tensors, cmp_tensor);
    for (int i = 1; i < m->n_tensors; i++)
        if (!strcmp(m->tensors[i - 1].name, m->tensors[i].name))
            die("%s: tensor %s appears twice", src, m->tensors[i].name);

    /* A tied model may still carry a copy of the embedding as lm_head. */
    tensor *head = model_weight_name(c, MW_LM_HEAD) ? model_tensor(m, model_weight_name(c, MW_LM_HEAD)) : NULL;
    if (c->tied && head) {
        tensor *emb = model_tensor(m, model_weight_name(c, MW_EMBED));
        if (!emb || !tensor_equal(emb, head))
            die("%s: tie_word_embeddings is true, but lm_head.weight differs from the embedding",
                src);
        remove_tensor(m, head);
    }

    tensor_spec *specs;
    int ns = model_tensor_specs(c, &specs), i = 0, k = 0;
    while (i < ns || k < m->n_tensors) {
        int cmp = i == ns ? 1 : k == m->n_tensors ? -1 : strcmp(specs[i].name, m->tensors[k].name);
        if (cmp < 0) {
            if (!strcmp(specs[i].name, model_weight_name(c, MW_LM_HEAD)))
                die("%s: missing tensor %s (tie_word_embeddings is false)", src, specs[i].name);
            die("%s: missing tensor %s", src, specs[i].name);
        }
        if (cmp > 0)
            die("%s: unexpected tensor %s (not implied by the config)", src, m->tensors[k].name);
        const tensor *t = &m->tensors[k];
        if (t->ndim != specs[i].ndim || t->shape[0] != specs[i].shape[0] ||
            (t->ndim == 2 && t->shape[1] != specs[i].shape[1])) {
            char got[64], want[64];
            format_shape(got, sizeof got, t->ndim, t->shape);
            format_shape(want, sizeof want, specs[i].ndim, specs[i].shape);
            die("%s: tensor %s has shape %s, but the config implies %s", src, t->name, got, want);
        }
        i++;
        k++;
    }
    tensor_specs_free(specs, ns);

    for (k = 0; k < m->n_tensors; k++)
        if (m->tensors[k].ndim == 1)
            tensor_convert(&m->tensors[k], DTYPE_F32); /* tensor_vector reads vectors as fp32 */

    free(m->layers);
    m->layers = xcalloc((size_t)c->n_layers, sizeof *m->layers);
    for (int id = 0; id < MW_COUNT; id++)
        m->outer[id] = model_weight_name(c, id) ? model_tensor(m, model_weight_name(c, id)) : NULL;
    if (c->tied)
        m->lm_head = m->embed;
    for (int l = 0; l < c->n_layers; l++)
        for (int id = 0; id < LW_COUNT; id++) {
            char name[200];
            layer_weight_name(c, name, sizeof name, l, id);
            m->layers[l].slot[id] = model_layer_weight_suffix(c, id) ? model_tensor(m, name) : NULL;
        }
    m->has_weights = true;
    m->fingerprint[0] = 0;
}

void model_scan_finish(model *m, model_scan *scan)
{
    /* The caller's scan stands when it went through these tensors (sorted, so the
     * same set when as many, in order and whole), each to its end; else one pass
     * here, in name order, that checks and fingerprints together (a tensor without
     * data, of a lazily made model, is left out, and so is the fingerprint). */
    if (scan && !(scan->whole && scan->n_tensors == m->n_tensors && scan->next == scan->numel)) {
        model_scan_free(scan);
        scan = NULL;
    }
    bool named = true;
    if (!scan) {
        scan = model_scan_begin(&m->cfg);
        for (int k = 0; k < m->n_tensors; k++)
            if (m->tensors[k].data)
                model_scan_values(scan, &m->tensors[k], 0, m->tensors[k].numel);
            else
                named = false;
    }
    if (scan->bad) {
        char *msg = xasprintf("%s: tensor %s has a non-finite value (%g) at index %lld",
                              m->source ? m->source : "model", scan->bad, (double)scan->bad_value,
                              (long long)scan->bad_at);
        model_scan_free(scan); /* a fuzzer's die hook goes on with this process */
        die("%s", msg);
    }
    m->fingerprint[0] = 0;
    if (named)
        scan_digest(scan, m->fingerprint);
    model_scan_free(scan);
}

void model_bind_unscanned(model *m) { bind_unscanned(m); }

void model_bind_scanned(model *m, model_scan *scan)
{
    bind_unscanned(m);
    model_scan_finish(m, scan);
}

void model_bind(model *m) { model_bind_scanned(m, NULL); }

void model_prefetch_layer(const model *m, int l)
{
    if (l == m->cfg.n_layers) {
        tensor_prefetch(m->final_norm);
        tensor_prefetch(m->lm_head);
    } else if (l >= 0 && l < m->cfg.n_layers && m->layers) {
        for (int id = 0; id < LW_COUNT; id++)
            tensor_prefetch(m->layers[l].slot[id]);
    }
}

void model_set_dtype(model *m, enum dtype dtype)
{
    m->fingerprint[0] = 0; /* rounded: other values */
    for (int i = 0; i < m->n_tensors; i++) {
        tensor *t = &m->tensors[i];
        if (dtype != DTYPE_F32) { /* narrower: rounded now, so the fingerprint is the output's */
            if (t->ndim == 2 && t->data)
                tensor_convert(t, dtype);
            else if (t->ndim == 2)
                t->dtype = dtype; /* made later (m->values): made in dtype */
            else
                tensor_round_to(t, dtype);
        }
        t->stored = dtype; /* wider: exact, widened a block at a time when written */
    }
}

void model_materialize(model *m)
{
    for (int i = 0; i < m->n_tensors; i++) {
        tensor *t = &m->tensors[i], made;
        if (!t->data)
            *t = *tensor_values(t, m->values, &made); /* made: t's header, with values */
    }
    if (m->values && m->values->release)
        m->values->release(m->values->ctx);
    m->values = NULL;
}

/* ---- config ---- */

void model_set_config(model *m, json_t *j, const char *source)
{
    config_from_json(&m->cfg, j, source);
    json_decref(m->extra_config);
    m->extra_config = config_extra(j);
}

json_t *model_config_json(const model *m)
{
    json_t *j = config_to_json(&m->cfg);
    if (m->extra_config)
        json_object_update_missing(j, m->extra_config);
    return j;
}

/* ---- fingerprint ---- */

void model_fingerprint(const model *m, char out[17])
{
    model_scan *s = scan_begin(&m->cfg, false);
    for (int i = 0; i < m->n_tensors; i++) {
        tensor tmp;
        const tensor *t = tensor_values(&m->tensors[i], m->values, &tmp);
        model_scan_values(s, t, 0, t->numel);
        tensor_values_done(t, &tmp);
    }
    scan_digest(s, out);
    model_scan_free(s);
}

void model_bound_fingerprint(const model *m, char out[17])
{
    if (m->fingerprint[0])
        memcpy(out, m->fingerprint, 17);
    else
        model_fingerprint(m, out);
}

void model_free(model *m)
{
    for (int i = 0; i < m->n_tensors; i++)
        tensor_free(&m->tensors[i]);
    free(m->tensors);
    free(m->layers);
    if (m->values && m->values->release)
        m->values->release(m->values->ctx);
    config_free(&m->cfg);
    json_decref(m->extra_config);
    json_decref(m->provenance);
    free(m->tok.format);
    free(m->tok.data);
    free(m->source);
    memset(m, 0, sizeof *m);
}
