/* gguf_read.c - a GGUF file for llama.cpp (llama, deci, qwen2, qwen3) read into a model (gguf.h).
 *
 * Letters: D hidden size, L layers, V vocabulary, hd head dim, H query heads,
 * KV key/value heads, F MLP width (per layer).
 *
 * Tensor names (llama.cpp's llm_tensor names; ggml shapes are innermost first, so
 * a Hugging Face (out, in) matrix is ne = [in, out]):
 *   model.embed_tokens.weight                  token_embd.weight
 *   model.norm.weight                          output_norm.weight
 *   lm_head.weight                             output.weight (absent when tied)
 *   model.layers.N.input_layernorm.weight      blk.N.attn_norm.weight
 *   model.layers.N.self_attn.{q,k,v,o}_proj.*  blk.N.attn_{q,k,v,output}.*
 *   model.layers.N.post_attention_layernorm.weight  blk.N.ffn_norm.weight
 *   model.layers.N.mlp.{gate,up,down}_proj.*   blk.N.ffn_{gate,up,down}.* */
#include "format/gguf.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "text/hf_json_write.h"
#include "text/sentencepiece.h"
#include "text/tokenizer.h"

static const size_t gt_size[GT_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

bool gguf_sniff(const uint8_t *p, size_t n) { return n >= 4 && !memcmp(p, "GGUF", 4); }

typedef struct {
    const char *key;        /* into the file, not NUL-terminated */
    size_t key_len;
    uint32_t type;
    const uint8_t *val;     /* the value (an array: its element type, count, elements) */
} gguf_kv;

typedef struct {
    const char *path;
    const uint8_t *p;
    size_t n, pos;
    gguf_kv *kv;
    uint64_t n_kv;
} gguf_file;

_Noreturn static void bad(const gguf_file *g, const char *what)
{
    die("%s: GGUF byte %zu: %s", g->path, g->pos, what);
}

static const uint8_t *need(gguf_file *g, uint64_t len)
{
    if (len > g->n - g->pos)
        bad(g, "the file ends early (truncated?)");
    const uint8_t *q = g->p + g->pos;
    g->pos += (size_t)len;
    return q;
}

static uint32_t rd_u32(gguf_file *g)
{
    uint32_t v;
    memcpy(&v, need(g, 4), 4);
    return v;
}

static uint64_t rd_u64(gguf_file *g)
{
    uint64_t v;
    memcpy(&v, need(g, 8), 8);
    return v;
}

static void skip_value(gguf_file *g, uint32_t type, int depth)
{
    if (type >= GT_COUNT)
        bad(g, "unknown value type");
    if (type == GT_STRING) {
        need(g, rd_u64(g));
    } else if (type == GT_ARRAY) {
        uint32_t et = rd_u32(g);
        uint64_t count = rd_u64(g);
        if (depth > 0 || et == GT_ARRAY)
            bad(g, "nested arrays");
        if (et >= GT_COUNT)
            bad(g, "unknown array element type");
        if (et == GT_STRING)
            for (uint64_t i = 0; i < count; i++)
                skip_value(g, et, depth + 1);
        else if (count > (g->n - g->pos) / gt_size[et])
            bad(g, "an array longer than the file");
        else
            need(g, count * gt_size[et]);
    } else {
        need(g, gt_size[type]);
    }
}

static const gguf_kv *find_kv(const gguf_file *g, const char *arch, const char *key)
{
    char *k = arch ? xasprintf("%s.%s", arch, key) : xstrdup(key);
    size_t kl = strlen(k);
    const gguf_kv *r = NULL;
    for (uint64_t i = 0; i < g->n_kv && !r; i++)
        if (g->kv[i].key_len == kl && !memcmp(g->kv[i].key, k, kl))
            r = &g->kv[i];
    free(k);
    return r;
}

/* An integer scalar (any integer type) or, with def >= 0, def when absent. */
static int64_t get_int(const gguf_file *g, const char *arch, const char *key, int64_t def)
{
    const gguf_kv *kv = find_kv(g, arch, key);
    if (!kv) {
        if (def < 0)
            die("%s: GGUF key %s%s%s is missing", g->path, arch ? arch : "", arch ? "." : "", key);
        return def;
    }
    const uint8_t *v = kv->val;
    switch (kv->type) {
    case GT_UINT8: return v[0];
    case GT_INT8: return (int8_t)v[0];
    case GT_UINT16: { uint16_t x; memcpy(&x, v, 2); return x; }
    case GT_INT16: { int16_t x; memcpy(&x, v, 2); return x; }
    case GT_UINT32: { uint32_t x; memcpy(&x, v, 4); return x; }
    case GT_INT32: { int32_t x; memcpy(&x, v, 4); return x; }
    case GT_UINT64: { uint64_t x; memcpy(&x, v, 8); return x > INT64_MAX ? -1 : (int64_t)x; }
    case GT_INT64: { int64_t x; memcpy(&x, v, 8); return x; }
    }
    die("%s: GGUF key %.*s is not an integer", g->path, (int)kv->key_len, kv->key);
}

static double get_float(const gguf_file *g, const char *arch, const char *key, double def)
{
    const gguf_kv *kv = find_kv(g, arch, key);
    if (!kv)
        return def;
    if (kv->type == GT_FLOAT32) {
        float f;
        memcpy(&f, kv->val, 4);
        return f;
    }
    if (kv->type == GT_FLOAT64) {
        double d;
        memcpy(&d, kv->val, 8);
        return d;
    }
    die("%s: GGUF key %.*s is not a number", g->path, (int)kv->key_len, kv->key);
}

/* A string value as a new NUL-terminated string, NULL when absent. */
static char *get_str(const gguf_file *g, const char *key)
{
    const gguf_kv *kv = find_kv(g, NULL, key);
    if (!kv)
        return NULL;
    if (kv->type != GT_STRING)
        die("%s: GGUF key %s is not a string", g->path, key);
    uint64_t len;
    memcpy(&len, kv->val, 8);
    char *s = xmalloc((size_t)len + 1);
    memcpy(s, kv->val + 8, (size_t)len);
    s[len] = 0;
    return s;
}

/* A per-layer width: one integer for every layer, or an integer array of L. */
static void get_layers(const gguf_file *g, const char *arch, const char *key, int *out, int L,
                       const int *def)
{
    const gguf_kv *kv = find_kv(g, arch, key);
    if (!kv && def) {
        memcpy(out, def, (size_t)L * sizeof *out);
        return;
    }
    if (kv && kv->type == GT_ARRAY) {
        uint32_t et;
        uint64_t count;
        memcpy(&et, kv->val, 4);
        memcpy(&count, kv->val + 4, 8);
        if ((et != GT_INT32 && et != GT_UINT32) || count != (uint64_t)L)
            die("%s: GGUF key %s.%s: an array of %llu, not of %d 32-bit integers (one per layer)",
                g->path, arch, key, (unsigned long long)count, L);
        for (int l = 0; l < L; l++) {
            int32_t x;
            memcpy(&x, kv->val + 12 + 4 * l, 4);
            if (x < 0)
                die("%s: GGUF key %s.%s: negative width", g->path, arch, key);
            out[l] = x;
        }
        return;
    }
    int64_t v = get_int(g, arch, key, -1);
    if (v < 0 || v > INT32_MAX)
        die("%s: GGUF key %s.%s out of range", g->path, arch, key);
    for (int l = 0; l < L; l++)
        out[l] = (int)v;
}

typedef struct {
    char *name;
    int ndim;
    uint64_t ne[2];
    uint32_t type;
    uint64_t offset;
} gguf_tensor;

/* ---- the tokenizer from tokenizer.ggml.* ---- */

/* An array key's element type, count and first element. */
static const uint8_t *array_of(const gguf_file *g, const char *key, uint32_t want, uint64_t *count)
{
    const gguf_kv *kv = find_kv(g, NULL, key);
    if (!kv)
        return NULL;
    uint32_t et;
    if (kv->type == GT_ARRAY)
        memcpy(&et, kv->val, 4);
    if (kv->type != GT_ARRAY || et != want)
        die("%s: GGUF key %s is not an array of the expected type", g->path, key);
    memcpy(count, kv->val + 4, 8);
    return kv->val + 12;
}

/* The strings of a GGUF string array (pointers into the file), *n of them. */
static const char **strings_of(const gguf_file *g, const uint8_t *a, uint64_t n, size_t **len)
{
    if (n > (uint64_t)INT32_MAX)
        die("%s: a GGUF string array of %llu strings is too long", g->path, (unsigned long long)n);
    const char **s = xmalloc((size_t)(n ? n : 1) * sizeof *s);
    *len = xmalloc((size_t)(n ? n : 1) * sizeof **len);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t l;
        memcpy(&l, a, 8);
        s[i] = (const char *)a + 8;
        (*len)[i] = (size_t)l;
        a += 8 + l;
    }
    return s;
}

/* A "gpt2" tokenizer (byte-level BPE) as the tokenizer.json it was written from
 * (hf_json_write.h). */
static void read_gpt2_tokenizer(model *m, const gguf_file *g)
{
    uint64_t nt = 0, ny = 0, nm = 0;
    const uint8_t *tok = array_of(g, "tokenizer.ggml.tokens", GT_STRING, &nt);
    const uint8_t *ty = array_of(g, "tokenizer.ggml.token_type", GT_INT32, &ny);
    const uint8_t *mg = array_of(g, "tokenizer.ggml.merges", GT_STRING, &nm);
    if (!tok || (ty && ny != nt) || !mg)
        die("%s: tokenizer.ggml.tokens, token_type and merges are missing or disagree", g->path);
    size_t *len, *merge_len;
    const char **tokens = strings_of(g, tok, nt, &len), **merges = strings_of(g, mg, nm, &merge_len);
    int32_t *types = xmalloc((size_t)(nt ? nt : 1) * sizeof *types);
    for (uint64_t i = 0; i < nt; i++)
        if (ty)
            memcpy(&types[i], ty + 4 * i, 4);
        else
            types[i] = 1;
    int64_t bos = get_int(g, NULL, "tokenizer.ggml.bos_token_id", 1LL << 40);
    int64_t eos = get_int(g, NULL, "tokenizer.ggml.eos_token_id", 1LL << 40);
    const gguf_kv *ab = find_kv(g, NULL, "tokenizer.ggml.add_bos_token");
    char *pre = get_str(g, "tokenizer.ggml.pre");
    hf_vocab v = {(int)nt, tokens, len, types, (int)nm, merges, merge_len, pre,
                  bos < (int64_t)nt ? (int)bos : -1, eos < (int64_t)nt ? (int)eos : -1,
                  ab && ab->type == GT_BOOL && ab->val[0]};
    char err[256];
    size_t n;
    uint8_t *blob = hf_json_from_vocab(&v, &n, err, sizeof err);
    if (!blob)
        die("%s: %s", g->path, err);
    free(pre);
    free(tokens);
    free(len);
    free(merges);
    free(merge_len);
    free(types);
    m->tok.format = xstrdup("hf-json");
    m->tok.data = blob;
    m->tok.size = n;
    tokenizer_free(tokenizer_load_blob("hf-json", blob, n, g->path)); /* check it */
}

static void read_tokenizer(model *m, const gguf_file *g)
{
    char *tm = get_str(g, "tokenizer.ggml.model");
    if (!tm) {
        free(tm);
        return;
    }
    if (!strcmp(tm, "gpt2")) {
        free(tm);
        read_gpt2_tokenizer(m, g);
        return;
    }
    if (strcmp(tm, "llama"))
        die("%s: tokenizer.ggml.model is \"%s\"; pare reads the SentencePiece \"llama\" tokenizer and the "
            "byte-level BPE \"gpt2\" one", g->path, tm);
    free(tm);
    uint64_t nt = 0, ns = 0, ny = 0;
    const uint8_t *tok = array_of(g, "tokenizer.ggml.tokens", GT_STRING, &nt);
    const uint8_t *sc = array_of(g, "tokenizer.ggml.scores", GT_FLOAT32, &ns);
    const uint8_t *ty = array_of(g, "tokenizer.ggml.token_type", GT_INT32, &ny);
    if (!tok || (sc && ns != nt) || (ty && ny != nt))
        die("%s: tokenizer.ggml.tokens, scores and token_type disagree", g->path);
    int64_t bos = get_int(g, NULL, "tokenizer.ggml.bos_token_id", 1 << 30);
    int64_t eos = get_int(g, NULL, "tokenizer.ggml.eos_token_id", 1 << 30);
    bytes b = {0};
    const char *bos_piece = NULL, *eos_piece = NULL;
    size_t bos_len = 0, eos_len = 0;
    int byte_count = 0;
    for (uint64_t i = 0; i < nt; i++) {
        uint64_t len;
        memcpy(&len, tok, 8);
        const char *s = (const char *)tok + 8;
        tok += 8 + len;
        float score = 0;
        int32_t type = 1;
        if (sc)
            memcpy(&score, sc + 4 * i, 4);
        if (ty)
            memcpy(&type, ty + 4 * i, 4);
        if (type < 1 || type > 6)
            die("%s: token %llu has type %d", g->path, (unsigned long long)i, type);
        byte_count += type == 6;
        if ((int64_t)i == bos)
            bos_piece = s, bos_len = (size_t)len;
        if ((int64_t)i == eos)
            eos_piece = s, eos_len = (size_t)len;
        sentencepiece_put_piece(&b, s, (size_t)len, score, type);
    }
    const gguf_kv *sp = find_kv(g, NULL, "tokenizer.ggml.add_space_prefix");
    sentencepiece_put_bpe_specs(&b, byte_count == 256, bos_piece, bos_len, eos_piece, eos_len,
                                sp && sp->type == GT_BOOL ? sp->val[0] != 0 : 1);
    m->tok.format = xstrdup("sentencepiece");
    m->tok.data = b.p;
    m->tok.size = b.n;
    tokenizer_free(tokenizer_load_blob("sentencepiece", b.p, b.n, g->path)); /* check it */
}

/* The Hugging Face name of GGUF tensor gname in architecture a, or NULL. */
static const char *hf_name_of(enum model_arch a, const char *gname, int *layer, char *out, size_t outn)
{
    for (int k = 0; k < MW_COUNT; k++)
        if (model_weight_gguf[k] && !strcmp(gname, model_weight_gguf[k]))
            return model_archs[a].outer_names[k];
    int l, used = 0;
    if (sscanf(gname, "blk.%d.%n", &l, &used) == 1 && used > 0 && l >= 0)
        for (int k = 0; k < LW_COUNT; k++)
            if (layer_weight_table[k].gguf && model_archs[a].layer_names[k] &&
                !strcmp(gname + used, layer_weight_table[k].gguf)) {
                snprintf(out, outn, "%s%d.%s", model_archs[a].layer_prefix, l, model_archs[a].layer_names[k]);
                *layer = l;
                return out;
            }
    return NULL;
}

/* The config's rope_scaling from the rotary keys: linear from rope.scaling.type and
 * .factor; llama3 from the pare.rope_scaling.* keys pare writes beside rope_freqs
 * (tensor rf, NULL when absent), whose factors must be the ones they give. */
static json_t *rope_scaling_of(const gguf_file *g, const char *arch, const gguf_tensor *rf)
{
    char *type = NULL;
    char *key = xasprintf("%s.rope.scaling.type", arch);
    type = get_str(g, key);
    free(key);
    json_t *j = NULL;
    if (type && strcmp(type, "none") && strcmp(type, "linear"))
        die("%s: GGUF key %s.rope.scaling.type is \"%s\"; pare reads linear rope scaling (and llama3's rope_freqs)",
            g->path, arch, type);
    if (type && !strcmp(type, "linear")) {
        double factor = get_float(g, arch, "rope.scaling.factor", -1);
        if (!(factor > 0))
            die("%s: GGUF key %s.rope.scaling.factor is missing or not positive", g->path, arch);
        j = json_pack("{s:s, s:f}", "rope_type", "linear", "factor", factor);
    }
    free(type);
    if (!rf)
        return j;
    if (j)
        die("%s: rope_freqs beside linear rope scaling, which pare does not model", g->path);
    char *rt = get_str(g, "pare.rope_scaling.rope_type");
    if (!rt || strcmp(rt, "llama3"))
        die("%s: tensor rope_freqs.weight (per-frequency rope factors) without pare's llama3 keys "
            "(pare.rope_scaling.*): pare holds llama3 scaling by its parameters, which the factors alone do not give",
            g->path);
    free(rt);
    j = json_pack("{s:s, s:f, s:f, s:f, s:I}", "rope_type", "llama3", "factor",
                  get_float(g, NULL, "pare.rope_scaling.factor", 0), "low_freq_factor",
                  get_float(g, NULL, "pare.rope_scaling.low_freq_factor", 0), "high_freq_factor",
                  get_float(g, NULL, "pare.rope_scaling.high_freq_factor", 0), "original_max_position_embeddings",
                  (json_int_t)get_int(g, NULL, "pare.rope_scaling.original_max_position_embeddings", -1));
    return j;
}

/* rope_freqs.weight (F32, rd/2 values) must hold the factors m's llama3
 * parameters give, as gguf_write writes them. */
static void check_rope_freqs(const model *m, const gguf_file *g, const gguf_tensor *rf, size_t data_start)
{
    const model_config *c = &m->cfg;
    int half = config_rope_dim(c) / 2;
    if (rf->type != GGML_F32 || rf->ndim != 1 || rf->ne[0] != (uint64_t)half || data_start > g->n ||
        rf->offset > g->n - data_start || (uint64_t)half * 4 > g->n - data_start - rf->offset)
        die("%s: rope_freqs.weight is not %d F32 values in the file", g->path, half);
    model_config plain = *c;
    plain.rope_scaling.type = ROPE_SCALING_NONE;
    float *base = xmalloc((size_t)half * sizeof *base), *scaled = xmalloc((size_t)half * sizeof *scaled);
    config_rope_inv_freq(&plain, base);
    config_rope_inv_freq(c, scaled);
    for (int i = 0; i < half; i++) {
        float f;
        memcpy(&f, g->p + data_start + rf->offset + 4 * (size_t)i, 4);
        if (f != base[i] / scaled[i])
            die("%s: rope_freqs.weight[%d] is %g, but the pare.rope_scaling keys give %g", g->path, i, (double)f,
                (double)(base[i] / scaled[i]));
    }
    free(base);
    free(scaled);
}


/* The header and the key/value table; returns the tensor count. */
static uint64_t read_kvs(gguf_file *g)
{
    if (!gguf_sniff(g->p, g->n))
        die("%s: not a GGUF file", g->path);
    g->pos = 4;
    uint32_t version = rd_u32(g);
    if (version != 2 && version != 3)
        die("%s: GGUF version %u; pare reads versions 2 and 3", g->path, version);
    uint64_t n_tensors = rd_u64(g);
    g->n_kv = rd_u64(g);
    if (g->n_kv > g->n / 13 || n_tensors > g->n / 24)
        bad(g, "more keys or tensors than the file could hold");
    g->kv = xcalloc(g->n_kv ? g->n_kv : 1, sizeof *g->kv);
    for (uint64_t i = 0; i < g->n_kv; i++) {
        uint64_t kl = rd_u64(g);
        g->kv[i].key = (const char *)need(g, kl);
        g->kv[i].key_len = (size_t)kl;
        g->kv[i].type = rd_u32(g);
        g->kv[i].val = g->p + g->pos;
        skip_value(g, g->kv[i].type, 0);
    }
    return n_tensors;
}

/* The n tensor infos: names, shapes (1 or 2 dimensions), types, offsets. */
static gguf_tensor *read_tensor_infos(gguf_file *g, uint64_t n)
{
    gguf_tensor *gt = xcalloc(n ? n : 1, sizeof *gt);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t nl = rd_u64(g);
        if (nl > 256)
            bad(g, "a tensor name longer than 256 bytes");
        const uint8_t *s = need(g, nl);
        gt[i].name = xmalloc((size_t)nl + 1);
        memcpy(gt[i].name, s, (size_t)nl);
        gt[i].name[nl] = 0;
        uint32_t nd = rd_u32(g);
        if (nd < 1 || nd > 4)
            bad(g, "a tensor of other than 1 to 4 dimensions");
        gt[i].ndim = (int)nd;
        uint64_t ne[4];
        for (uint32_t d = 0; d < nd; d++)
            ne[d] = rd_u64(g);
        for (uint32_t d = 2; d < nd; d++)
            if (ne[d] != 1)
                die("%s: tensor %s has %u dimensions; pare reads 1 and 2", g->path, gt[i].name, nd);
        if (nd > 2)
            gt[i].ndim = 2;
        gt[i].ne[0] = ne[0];
        gt[i].ne[1] = nd >= 2 ? ne[1] : 1;
        int64_t sh[2] = {gt[i].ne[0] > INT64_MAX ? -1 : (int64_t)gt[i].ne[0],
                         gt[i].ne[1] > INT64_MAX ? -1 : (int64_t)gt[i].ne[1]};
        if (tensor_shape_numel(2, sh) < 0)
            die("%s: tensor %s is too large (more than 2^40 elements)", g->path, gt[i].name);
        gt[i].type = rd_u32(g);
        gt[i].offset = rd_u64(g);
    }
    return gt;
}

/* The config of architecture arch (llama, deci, qwen2, qwen3) as config.json
 * keys, from its keys and from which tensors there are. */
static json_t *config_of(const gguf_file *g, const char *arch, const gguf_tensor *gt, uint64_t n_tensors,
                         const gguf_tensor *rope_freqs)
{
    bool qwen3 = !strcmp(arch, "qwen3"), qwen2 = !strcmp(arch, "qwen2");
    int L = (int)get_int(g, arch, "block_count", -1);
    int64_t D = get_int(g, arch, "embedding_length", -1);
    if (L <= 0 || L > MODEL_MAX_LAYERS || D <= 0 || D > (1 << 24))
        die("%s: block_count %d or embedding_length %lld out of range", g->path, L, (long long)D);
    int *H = xmalloc((size_t)L * sizeof(int)), *KV = xmalloc((size_t)L * sizeof(int)),
        *F = xmalloc((size_t)L * sizeof(int));
    get_layers(g, arch, "attention.head_count", H, L, NULL);
    get_layers(g, arch, "attention.head_count_kv", KV, L, H);
    get_layers(g, arch, "feed_forward_length", F, L, NULL);
    int64_t hd = get_int(g, arch, "attention.key_length", H[0] ? D / H[0] : 0);
    if (get_int(g, arch, "attention.value_length", hd) != hd)
        die("%s: value_length differs from key_length, which pare does not model", g->path);
    if (get_int(g, arch, "rope.dimension_count", hd) != hd)
        die("%s: rope.dimension_count differs from the head size (partial rotary), which pare "
            "does not model", g->path);
    bool has_q_bias = false, has_o_bias = false, has_down_bias = false, has_output = false;
    int64_t V = -1;
    for (uint64_t i = 0; i < n_tensors; i++) {
        const char *nm = gt[i].name;
        has_q_bias |= strstr(nm, ".attn_q.bias") != NULL;
        has_o_bias |= strstr(nm, ".attn_output.bias") != NULL;
        has_down_bias |= strstr(nm, ".ffn_down.bias") != NULL;
        has_output |= !strcmp(nm, "output.weight");
        if (!strcmp(nm, "token_embd.weight"))
            V = (int64_t)gt[i].ne[1];
    }
    if (V <= 0)
        die("%s: no token_embd.weight", g->path);
    json_t *j = json_object();
    json_t *ah = json_array(), *ak = json_array(), *af = json_array();
    for (int l = 0; l < L; l++) {
        json_array_append_new(ah, json_integer(H[l]));
        json_array_append_new(ak, json_integer(KV[l]));
        json_array_append_new(af, json_integer(F[l]));
    }
    free(H), free(KV), free(F);
    json_object_set_new(j, "model_type", json_string(qwen3 ? "qwen3" : qwen2 ? "qwen2" : "llama"));
    json_object_set_new(j, "hidden_size", json_integer(D));
    json_object_set_new(j, "num_hidden_layers", json_integer(L));
    json_object_set_new(j, "num_attention_heads", ah);
    json_object_set_new(j, "num_key_value_heads", ak);
    json_object_set_new(j, "intermediate_size", af);
    json_object_set_new(j, "head_dim", json_integer(hd));
    json_object_set_new(j, "vocab_size", json_integer(V));
    json_object_set_new(j, "max_position_embeddings", json_integer(get_int(g, arch, "context_length", 2048)));
    json_object_set_new(j, "rms_norm_eps",
                        json_real((float)get_float(g, arch, "attention.layer_norm_rms_epsilon", 1e-5)));
    json_object_set_new(j, "rope_theta", json_real((float)get_float(g, arch, "rope.freq_base", 10000)));
    json_object_set_new(j, "rope_style", json_string(qwen2 || qwen3 ? "half" : "interleaved"));
    json_t *scaling = rope_scaling_of(g, arch, rope_freqs);
    if (scaling)
        json_object_set_new(j, "rope_scaling", scaling);
    json_object_set_new(j, "tie_word_embeddings", json_boolean(!has_output));
    json_object_set_new(j, "attention_bias", json_boolean(has_q_bias));
    json_object_set_new(j, "o_proj_bias", json_boolean(has_o_bias));
    json_object_set_new(j, "down_proj_bias", json_boolean(has_down_bias));
    int64_t bos = get_int(g, NULL, "tokenizer.ggml.bos_token_id", 1LL << 40);
    int64_t eos = get_int(g, NULL, "tokenizer.ggml.eos_token_id", 1LL << 40);
    json_object_set_new(j, "bos_token_id", bos < V ? json_integer(bos) : json_null());
    json_object_set_new(j, "eos_token_id", eos < V ? json_integer(eos) : json_null());
    return j;
}

/* Every tensor but rope_freqs into m by its Hugging Face name, kept in its
 * stored dtype; the data start at data_start, each at a multiple of align.
 * With map (the file's mapping, g->p its start) the tensors point into it. */
static void read_tensors(model *m, const gguf_file *g, const gguf_tensor *gt, uint64_t n_tensors, enum model_arch a,
                         const gguf_tensor *rope_freqs, int64_t align, size_t data_start, tensor_map *map)
{
    for (uint64_t i = 0; i < n_tensors; i++) {
        const gguf_tensor *t = &gt[i];
        char nb[128];
        int layer = -1;
        if (t == rope_freqs)
            continue;
        const char *hf = hf_name_of(a, t->name, &layer, nb, sizeof nb);
        if (!hf)
            die("%s: tensor %s is not one pare reads", g->path, t->name);
        enum dtype dt;
        if (t->type == GGML_F32)
            dt = DTYPE_F32;
        else if (t->type == GGML_F16)
            dt = DTYPE_F16;
        else if (t->type == GGML_BF16)
            dt = DTYPE_BF16;
        else
            die("%s: tensor %s has ggml type %u; pare reads F32, F16 and BF16 (not quantized "
                "types)", g->path, t->name, t->type);
        uint64_t numel = t->ne[0] * t->ne[1], bytes = numel * dtype_size(dt);
        if (t->offset % (uint64_t)align || data_start > g->n || t->offset > g->n - data_start ||
            bytes > g->n - data_start - t->offset)
            die("%s: tensor %s lies outside the file (truncated?)", g->path, t->name);
        int64_t shape[2] = {t->ndim == 2 ? (int64_t)t->ne[1] : (int64_t)t->ne[0], (int64_t)t->ne[0]};
        tensor *mt = model_new_tensor_as(m, hf, t->ndim, shape, dt); /* kept as stored */
        const uint8_t *at = g->p + data_start + t->offset;
        if (map) { /* the buffer was never touched: it costs no memory */
            tensor_drop_data(mt);
            tensor_use_map(mt, map, at, dt);
        } else {
            memcpy(mt->data, at, (size_t)bytes);
        }
    }
}

/* p (n bytes) is the file; with map, p is its start and tensors point into it. */
static void gguf_parse(model *m, const uint8_t *p, size_t n, const char *path, tensor_map *map)
{
    memset(m, 0, sizeof *m);
    m->source = xstrdup(path);
    gguf_file g = {.path = path, .p = p, .n = n};
    uint64_t n_tensors = read_kvs(&g);
    gguf_tensor *gt = read_tensor_infos(&g, n_tensors);
    int64_t align = get_int(&g, NULL, "general.alignment", GGUF_ALIGNMENT);
    if (align <= 0 || align % 8)
        die("%s: general.alignment %lld is not a positive multiple of 8", path, (long long)align);
    size_t data_start = g.pos + (size_t)((align - (int64_t)(g.pos % (size_t)align)) % align);

    char *arch = get_str(&g, "general.architecture");
    if (!arch || (strcmp(arch, "llama") && strcmp(arch, "deci") && strcmp(arch, "qwen2") && strcmp(arch, "qwen3")))
        die("%s: GGUF architecture \"%s\"; pare reads llama, deci, qwen2 and qwen3", path, arch ? arch : "(none)");
    enum model_arch a = !strcmp(arch, "qwen3") ? ARCH_QWEN3 : ARCH_LLAMA;
    const gguf_tensor *rope_freqs = NULL;
    for (uint64_t i = 0; i < n_tensors; i++)
        if (!strcmp(gt[i].name, "rope_freqs.weight"))
            rope_freqs = &gt[i];
    json_t *j = config_of(&g, arch, gt, n_tensors, rope_freqs);
    model_set_config(m, j, path);
    json_decref(j);
    read_tensors(m, &g, gt, n_tensors, a, rope_freqs, align, data_start, map);
    if (rope_freqs)
        check_rope_freqs(m, &g, rope_freqs, data_start);
    free(arch);
    read_tokenizer(m, &g);
    for (uint64_t i = 0; i < n_tensors; i++)
        free(gt[i].name);
    free(gt);
    free(g.kv);
    if (!m->extra_config)
        m->extra_config = json_object();
    model_bind(m);
}

/* The file mapped privately: every tensor points into the mapping (the format
 * aligns each to general.alignment, a multiple of 8), none is copied. Where the
 * system cannot map it, it is read whole and the tensors copied out. */
void gguf_read(model *m, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die("%s: %s", path, strerror(errno));
    tensor_map *map = NULL;
    if (fseeko(f, 0, SEEK_END) == 0) {
        off_t size = ftello(f);
        if (size > 0)
            map = tensor_map_file(fileno(f), (size_t)size);
        if (map)
            gguf_parse(m, (const uint8_t *)tensor_map_base(map), (size_t)size, path, map);
    }
    fclose(f);
    if (map) {
        tensor_map_release(map); /* the tensors hold their own references */
        return;
    }
    size_t n;
    const uint8_t *p = map_file(path, &n);
    gguf_read_mem(m, p, n, path);
    unmap_file(p, n);
}

void gguf_read_mem(model *m, const uint8_t *p, size_t n, const char *path)
{
    gguf_parse(m, p, n, path, NULL);
}
