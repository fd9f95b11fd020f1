/* gguf_write.c - a model as a GGUF file for llama.cpp (gguf.h).
 *
 * Letters: D hidden size, L layers, V vocabulary, hd head dim, H query heads,
 * KV key/value heads, F MLP width (per layer). */
#include "format/gguf.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/atomic_file.h"
#include "base/util.h"
#include "format/rope_layout.h"
#include "text/tokenizer.h"

/* llama.cpp's llama_ftype for general.file_type */
static int file_type(enum dtype t) { return t == DTYPE_F32 ? 0 : t == DTYPE_F16 ? 1 : 32; }
static int ggml_of(enum dtype t) { return t == DTYPE_F32 ? GGML_F32 : t == DTYPE_F16 ? GGML_F16 : GGML_BF16; }

typedef struct {
    bytes out;
    uint64_t keys; /* key/value pairs written (kv_key) */
} buf;

static void put(buf *b, const void *p, size_t n) { bytes_put(&b->out, p, n); }

static void put_u32(buf *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(buf *b, uint64_t v) { put(b, &v, 8); }

static void put_str(buf *b, const char *s, size_t n)
{
    put_u64(b, n);
    put(b, s, n);
}

static void kv_key(buf *b, const char *arch, const char *key, enum gguf_type t)
{
    char *k = arch ? xasprintf("%s.%s", arch, key) : xstrdup(key);
    put_str(b, k, strlen(k));
    free(k);
    put_u32(b, t);
    b->keys++;
}

/* An array key: its element type and count (the elements follow). */
static void kv_array(buf *b, const char *arch, const char *key, enum gguf_type et, uint64_t n)
{
    kv_key(b, arch, key, GT_ARRAY);
    put_u32(b, et);
    put_u64(b, n);
}

static void kv_u32(buf *b, const char *arch, const char *key, uint32_t v)
{
    kv_key(b, arch, key, GT_UINT32);
    put_u32(b, v);
}

static void kv_f32(buf *b, const char *arch, const char *key, float v)
{
    kv_key(b, arch, key, GT_FLOAT32);
    put(b, &v, 4);
}

static void kv_f64(buf *b, const char *key, double v)
{
    kv_key(b, NULL, key, GT_FLOAT64);
    put(b, &v, 8);
}

static void kv_bool(buf *b, const char *key, bool v)
{
    kv_key(b, NULL, key, GT_BOOL);
    uint8_t x = v;
    put(b, &x, 1);
}

static void kv_str(buf *b, const char *key, const char *v)
{
    kv_key(b, NULL, key, GT_STRING);
    put_str(b, v, strlen(v));
}

/* A per-layer width: one UINT32 for llama, an INT32 array of L entries for deci. */
static void kv_layers(buf *b, const char *arch, const char *key, const int *v, int L, bool array)
{
    if (!array) {
        kv_u32(b, arch, key, (uint32_t)v[0]);
        return;
    }
    kv_array(b, arch, key, GT_INT32, (uint64_t)L);
    for (int l = 0; l < L; l++) {
        int32_t x = v[l];
        put(b, &x, 4);
    }
}

static bool layers_alike(const model_config *c)
{
    for (int l = 0; l < c->n_layers; l++)
        if (c->n_heads[l] != c->n_heads[0] || c->n_kv_heads[l] != c->n_kv_heads[0] ||
            c->ffn_dim[l] != c->ffn_dim[0] || c->n_heads[l] == 0 || c->ffn_dim[l] == 0)
            return false;
    return true;
}

/* llama.cpp's architecture for c: qwen3 (its layer with q/k norms; one width for
 * every layer, no rope_freqs), qwen2 (q/k/v biases, no MLP bias, no rope_freqs; one
 * width, q_proj hidden x hidden), llama (one width), and deci for per-layer widths
 * (both add whichever biases are present, of any width, and apply rope_freqs). Dies
 * naming the rule for what none of them runs. */
static const char *gguf_arch(const model_config *c, const char *path)
{
    bool alike = layers_alike(c);
    if (c->arch == ARCH_QWEN3) {
        if (!alike)
            die("%s: the layers differ in width (a pruned Qwen3); llama.cpp's qwen3 architecture has one width for "
                "every layer, and deci, which has per-layer widths, has no q/k norms (prune every layer alike, "
                "--layers 0-%d, to write GGUF)", path, c->n_layers - 1);
        if (c->rope_scaling.type == ROPE_SCALING_LLAMA3)
            die("%s: llama3 rope scaling in a Qwen3 model; llama.cpp's qwen3 architecture does not apply "
                "rope_freqs", path);
        return "qwen3";
    }
    bool hidden_q = true; /* llama.cpp's qwen2 holds q_proj as hidden x hidden */
    for (int l = 0; l < c->n_layers; l++)
        hidden_q &= c->n_heads[l] == 0 || config_q_dim(c, l) == c->dim;
    if (!strcmp(c->model_type, "qwen2") && alike && hidden_q && !c->down_bias &&
        c->rope_scaling.type != ROPE_SCALING_LLAMA3)
        return "qwen2";
    return alike ? "llama" : "deci";
}

/* llama.cpp's rotary layout of architecture arch: NEOX (the half layout) for the
 * Qwen architectures, the interleaved pairs for llama and deci. */
static enum rope_style gguf_rope_style(const char *arch)
{
    return !strncmp(arch, "qwen", 4) ? ROPE_HALF : ROPE_INTERLEAVED;
}

/* The rules of llama.cpp's loader and graph that a model must meet. */
static void check_runnable(const model *m, const char *path)
{
    const model_config *c = &m->cfg;
    if (!m->has_weights)
        die("%s: the model has no weights (a bare config)", path);
    if (c->arch != ARCH_LLAMA && c->arch != ARCH_QWEN3)
        die("%s: GGUF cannot hold a %s model: llama.cpp has no ChatGLM-6B architecture, and pare writes "
            "GGUF for LLaMA, Qwen2 and Qwen3 models only (write a checkpoint or a Hugging Face folder instead)",
            path, model_archs[c->arch].name);
    if (c->n_heads[0] == 0)
        die("%s: layer 0 has no attention heads; llama.cpp reads the attention shape from "
            "layer 0, so a GGUF model must keep at least one head there", path);
    for (int l = 0; l < c->n_layers; l++) {
        if (c->n_heads[l] > 0 && c->ffn_dim[l] == 0)
            die("%s: layer %d keeps its attention but has no MLP; llama.cpp's deci "
                "architecture skips such a layer's output (its attention would be lost), so "
                "GGUF cannot hold this model", path, l);
        if (c->n_heads[l] == 0 && c->ffn_dim[l] == 0)
            die("%s: layer %d has neither attention nor MLP; llama.cpp's deci loader still "
                "requires its MLP tensors (drop the layer with --mode layer instead)", path, l);
    }
    if (c->head_dim % 2)
        die("%s: head dimension %d is odd; rotary embeddings need pairs", path, c->head_dim);
}

/* A tokenizer.json as GGUF's "gpt2" tokenizer, as llama.cpp's convert_hf_to_gguf.py
 * writes it: tokenizer.ggml.pre by the pre-tokenizer's regex, the tokens as the
 * file writes them ("Ġthe"), an id no token has as [PADn] of type unused, up to
 * the model's vocabulary; the merges in rank order; BOS (added when the
 * post-processor puts it first) and EOS, each the config's when the tokenizer
 * names none. */
static void put_gpt2_tokenizer(buf *b, const model *m, const tokenizer *t, const char *path)
{
    const char *pre = tokenizer_pre_name(t);
    if (!pre)
        die("%s: the model's tokenizer.json has a pre-tokenizer llama.cpp knows by no name (pare writes "
            "Llama 3's as llama-bpe and Qwen2's as qwen2); llama.cpp would give other ids", path);
    int V = tokenizer_vocab_size(t);
    if (V > m->cfg.vocab)
        die("%s: the tokenizer has %d tokens but the model's vocabulary is %d", path, V, m->cfg.vocab);
    kv_str(b, "tokenizer.ggml.model", "gpt2");
    kv_str(b, "tokenizer.ggml.pre", pre);
    kv_array(b, NULL, "tokenizer.ggml.tokens", GT_STRING, (uint64_t)m->cfg.vocab);
    for (int id = 0; id < m->cfg.vocab; id++) {
        size_t len = 0;
        const char *p = id < V ? tokenizer_piece_raw(t, id, &len) : NULL;
        if (len) {
            put_str(b, p, len);
        } else {
            char pad[32];
            snprintf(pad, sizeof pad, "[PAD%d]", id);
            put_str(b, pad, strlen(pad));
        }
    }
    kv_array(b, NULL, "tokenizer.ggml.token_type", GT_INT32, (uint64_t)m->cfg.vocab);
    for (int id = 0; id < m->cfg.vocab; id++) {
        int32_t ty = id < V ? tokenizer_piece_type(t, id) : 5;
        put(b, &ty, 4);
    }
    kv_array(b, NULL, "tokenizer.ggml.merges", GT_STRING, (uint64_t)tokenizer_merge_count(t));
    for (int i = 0; i < tokenizer_merge_count(t); i++) {
        size_t len;
        const char *s = tokenizer_merge(t, i, &len);
        put_str(b, s, len);
    }
    // BOS and EOS: the tokenizer's, else config.json's (Qwen's BOS, which no text gets)
    int bos = tokenizer_bos(t) >= 0 ? tokenizer_bos(t) : m->cfg.bos_id;
    int eos = tokenizer_eos(t) >= 0 ? tokenizer_eos(t) : m->cfg.eos_id;
    if (bos >= 0 && bos < m->cfg.vocab)
        kv_u32(b, NULL, "tokenizer.ggml.bos_token_id", (uint32_t)bos);
    if (eos >= 0 && eos < m->cfg.vocab)
        kv_u32(b, NULL, "tokenizer.ggml.eos_token_id", (uint32_t)eos);
    kv_bool(b, "tokenizer.ggml.add_bos_token", tokenizer_bos(t) >= 0);
    kv_bool(b, "tokenizer.ggml.add_eos_token", false);
}

/* The tokenizer as GGUF's tokenizer.ggml.* keys (SentencePiece "llama" model, or
 * "gpt2" for a tokenizer.json). */
static void put_tokenizer(buf *b, const model *m, const char *path)
{
    if (!m->tok.size)
        die("%s: the model has no tokenizer, which a GGUF file must hold (give --tokenizer FILE)",
            path);
    tokenizer *t = tokenizer_load_blob(m->tok.format, m->tok.data, m->tok.size, path);
    if (!strcmp(m->tok.format, "hf-json")) {
        put_gpt2_tokenizer(b, m, t, path);
        tokenizer_free(t);
        return;
    }
    if (strcmp(m->tok.format, "sentencepiece") && strcmp(m->tok.format, "llama2c"))
        die("%s: the model's tokenizer is ChatGLM's (%s), which GGUF's llama tokenizer cannot hold", path,
            m->tok.format);
    if (!tokenizer_is_bpe(t))
        die("%s: the model's tokenizer is a unigram SentencePiece model; GGUF's llama tokenizer merges "
            "pairs by score (BPE), which gives other ids", path);
    int V = tokenizer_vocab_size(t);
    if (V != m->cfg.vocab)
        die("%s: the tokenizer has %d tokens but the model's vocabulary is %d", path, V, m->cfg.vocab);
    bool llama2c = !strcmp(tokenizer_format(t), "llama2c");

    kv_str(b, "tokenizer.ggml.model", "llama");
    kv_array(b, NULL, "tokenizer.ggml.tokens", GT_STRING, (uint64_t)V);
    for (int id = 0; id < V; id++) {
        size_t len;
        const char *p = tokenizer_piece_raw(t, id, &len);
        int type = tokenizer_piece_type(t, id);
        if (llama2c && type == 3) {       /* "\n<s>\n", "\n</s>\n" */
            p = id == tokenizer_bos(t) ? "<s>" : "</s>";
            len = strlen(p);
        }
        if (llama2c && type == 1) {       /* tok.bin stores U+2581 as a space */
            size_t spaces = 0;
            for (size_t i = 0; i < len; i++)
                spaces += p[i] == ' ';
            char *s = xmalloc(len + 2 * spaces + 1), *o = s;
            for (size_t i = 0; i < len; i++)
                if (p[i] == ' ')
                    memcpy(o, "\xe2\x96\x81", 3), o += 3;
                else
                    *o++ = p[i];
            put_str(b, s, (size_t)(o - s));
            free(s);
            continue;
        }
        put_str(b, p, len);
    }
    kv_array(b, NULL, "tokenizer.ggml.scores", GT_FLOAT32, (uint64_t)V);
    for (int id = 0; id < V; id++) {
        float s = tokenizer_score(t, id);
        put(b, &s, 4);
    }
    kv_array(b, NULL, "tokenizer.ggml.token_type", GT_INT32, (uint64_t)V);
    for (int id = 0; id < V; id++) {
        int32_t ty = tokenizer_piece_type(t, id);
        put(b, &ty, 4);
    }
    int ids[3] = {tokenizer_bos(t), tokenizer_eos(t), tokenizer_unk(t)};
    const char *keys[3] = {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                           "tokenizer.ggml.unknown_token_id"};
    for (int k = 0; k < 3; k++)
        if (ids[k] >= 0)
            kv_u32(b, NULL, keys[k], (uint32_t)ids[k]);
    kv_bool(b, "tokenizer.ggml.add_bos_token", tokenizer_bos(t) >= 0);
    kv_bool(b, "tokenizer.ggml.add_eos_token", false);
    kv_bool(b, "tokenizer.ggml.add_space_prefix", tokenizer_adds_dummy_prefix(t));
    tokenizer_free(t);
}

typedef struct {
    char *name;
    const tensor *t;
    enum dtype dtype;
    bool rope;          /* q/k rows to put in the architecture's rotary layout */
    uint64_t offset;
} out_tensor;

/* llama3 rope scaling as llama.cpp applies it: a tensor rope_freqs.weight of rd/2
 * factors by which it divides each frequency (convert_hf_to_gguf.py writes them
 * from the config: 1, factor, or 1 / ((1 - smooth) / factor + smooth)); here each
 * is the unscaled frequency over pare's scaled one, so that llama.cpp turns by
 * pare's angles. And the parameters themselves, under keys llama.cpp does not
 * read, for pare's reader (gguf_read) to hold the config again. */
static void put_rope_freqs(buf *b, const model_config *c, tensor *rf)
{
    int half = config_rope_dim(c) / 2;
    model_config plain = *c;
    plain.rope_scaling.type = ROPE_SCALING_NONE;
    float *base = xmalloc((size_t)half * sizeof *base), *scaled = xmalloc((size_t)half * sizeof *scaled);
    config_rope_inv_freq(&plain, base);
    config_rope_inv_freq(c, scaled);
    int64_t shape[2] = {half, 0};
    tensor_init_as(rf, "rope_freqs.weight", 1, shape, DTYPE_F32);
    for (int i = 0; i < half; i++)
        ((float *)rf->data)[i] = base[i] / scaled[i];
    free(base);
    free(scaled);
    const rope_scaling_config *s = &c->rope_scaling;
    kv_str(b, "pare.rope_scaling.rope_type", "llama3");
    kv_f64(b, "pare.rope_scaling.factor", s->factor);
    kv_f64(b, "pare.rope_scaling.low_freq_factor", s->low_freq_factor);
    kv_f64(b, "pare.rope_scaling.high_freq_factor", s->high_freq_factor);
    kv_u32(b, NULL, "pare.rope_scaling.original_max_position_embeddings", (uint32_t)s->original_max_seq);
}

static size_t pad_to(uint64_t n) { return (size_t)((GGUF_ALIGNMENT - n % GGUF_ALIGNMENT) % GGUF_ALIGNMENT); }

void gguf_write(const model *m, const char *path, enum dtype dtype)
{
    const model_config *c = &m->cfg;
    check_runnable(m, path);
    const char *arch = gguf_arch(c, path);
    bool deci = !strcmp(arch, "deci");
    enum rope_style style = gguf_rope_style(arch);
    int L = c->n_layers;

    buf b = {0};
    kv_str(&b, "general.architecture", arch);
    kv_str(&b, "general.name", "pare");
    kv_u32(&b, NULL, "general.alignment", GGUF_ALIGNMENT);
    kv_u32(&b, NULL, "general.file_type", (uint32_t)file_type(dtype));
    kv_u32(&b, arch, "vocab_size", (uint32_t)c->vocab);
    kv_u32(&b, arch, "context_length", (uint32_t)c->max_seq);
    kv_u32(&b, arch, "embedding_length", (uint32_t)c->dim);
    kv_u32(&b, arch, "block_count", (uint32_t)L);
    kv_layers(&b, arch, "feed_forward_length", c->ffn_dim, L, deci);
    kv_layers(&b, arch, "attention.head_count", c->n_heads, L, deci);
    kv_layers(&b, arch, "attention.head_count_kv", c->n_kv_heads, L, deci);
    kv_u32(&b, arch, "attention.key_length", (uint32_t)c->head_dim);
    kv_u32(&b, arch, "attention.value_length", (uint32_t)c->head_dim);
    kv_u32(&b, arch, "rope.dimension_count", (uint32_t)c->head_dim);
    kv_f32(&b, arch, "rope.freq_base", c->rope_theta);
    kv_f32(&b, arch, "attention.layer_norm_rms_epsilon", c->norm_eps);
    if (c->rope_scaling.type == ROPE_SCALING_LINEAR) { /* llama.cpp's freq_scale = 1 / factor */
        char *key = xasprintf("%s.rope.scaling.type", arch);
        kv_str(&b, key, "linear");
        free(key);
        kv_f32(&b, arch, "rope.scaling.factor", (float)c->rope_scaling.factor);
    }
    put_tokenizer(&b, m, path);

    /* The tensors in llama.cpp's order: rotary factors, embedding, blocks, output. */
    out_tensor *ts = xcalloc((size_t)m->n_tensors + 1, sizeof *ts);
    int nt = 0;
    tensor rope_freqs = {0};
    if (c->rope_scaling.type == ROPE_SCALING_LLAMA3) {
        put_rope_freqs(&b, c, &rope_freqs);
        ts[nt++] = (out_tensor){xstrdup(rope_freqs.name), &rope_freqs, 0, false, 0};
    }
    if (m->embed)
        ts[nt++] = (out_tensor){xstrdup(model_weight_gguf[MW_EMBED]), m->embed, 0, false, 0};
    for (int l = 0; l < L; l++)
        for (int k = 0; k < LW_COUNT; k++) {
            const tensor *t = m->layers[l].slot[k];
            bool permute = layer_weight_is_rotary(k);
            if (t)
                ts[nt++] = (out_tensor){xasprintf("blk.%d.%s", l, layer_weight_table[k].gguf), t, 0, permute, 0};
        }
    if (m->final_norm)
        ts[nt++] = (out_tensor){xstrdup(model_weight_gguf[MW_FINAL_NORM]), m->final_norm, 0, false, 0};
    if (m->lm_head && !c->tied)
        ts[nt++] = (out_tensor){xstrdup(model_weight_gguf[MW_LM_HEAD]), m->lm_head, 0, false, 0};
    if (nt != m->n_tensors + (rope_freqs.data != NULL))
        die("%s: %d of the model's %d tensors have no GGUF name", path, m->n_tensors + (rope_freqs.data != NULL) - nt,
            m->n_tensors);

    uint64_t off = 0;
    for (int i = 0; i < nt; i++) {
        const tensor *t = ts[i].t;
        ts[i].dtype = t->ndim == 1 ? DTYPE_F32 : dtype;
        ts[i].offset = off;
        off += (uint64_t)t->numel * dtype_size(ts[i].dtype);
        off += pad_to(off);
        put_str(&b, ts[i].name, strlen(ts[i].name));
        put_u32(&b, (uint32_t)t->ndim);
        put_u64(&b, (uint64_t)(t->ndim == 2 ? t->shape[1] : t->shape[0]));
        if (t->ndim == 2)
            put_u64(&b, (uint64_t)t->shape[0]);
        put_u32(&b, (uint32_t)ggml_of(ts[i].dtype));
        put_u64(&b, ts[i].offset);
    }

    atomic_file a;
    af_open(&a, path);
    uint32_t version = GGUF_VERSION;
    uint64_t counts[2] = {(uint64_t)nt, b.keys};
    af_write(&a, "GGUF", 4);
    af_write(&a, &version, 4);
    af_write(&a, counts, 16);
    af_write(&a, b.out.p, b.out.n);
    static const uint8_t zeros[GGUF_ALIGNMENT];
    af_write(&a, zeros, pad_to(24 + b.out.n));
    free(b.out.p);

    float *perm = NULL, *wide = NULL;
    uint16_t *half = NULL;
    size_t cap = 0;
    for (int i = 0; i < nt; i++) {
        tensor tmp;
        const tensor *t = tensor_values(ts[i].t, m->values, &tmp);
        if ((size_t)t->numel > cap) {
            cap = (size_t)t->numel;
            perm = xrealloc(perm, cap * sizeof *perm);
            wide = xrealloc(wide, cap * sizeof *wide);
            half = xrealloc(half, cap * sizeof *half);
        }
        const float *src = tensor_f32(t);
        if (t->dtype != DTYPE_F32 || !tensor_aligned(t)) { /* one tensor widened at a time */
            tensor_get_f32(t, 0, t->numel, wide);
            src = wide;
        }
        if (ts[i].rope) {
            rope_permute_rows(perm, src, t->shape[0], t->ndim == 2 ? t->shape[1] : 1, c->head_dim,
                              c->rope_style, style);
            src = perm;
        }
        if (ts[i].dtype == DTYPE_F32) {
            af_write(&a, src, (size_t)t->numel * 4);
        } else {
            for (int64_t e = 0; e < t->numel; e++)
                half[e] = ts[i].dtype == DTYPE_BF16 ? f32_to_bf16(src[e]) : f32_to_f16(src[e]);
            af_write(&a, half, (size_t)t->numel * 2);
        }
        af_write(&a, zeros, pad_to((uint64_t)t->numel * dtype_size(ts[i].dtype)));
        tensor_values_done(t, &tmp);
        free(ts[i].name);
    }
    af_close(&a);
    free(perm);
    free(wide);
    free(half);
    free(ts);
    tensor_free(&rope_freqs);
}
