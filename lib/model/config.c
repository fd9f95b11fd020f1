/* config.c - a model's config (model_config) <-> Hugging Face config.json keys, for
 * every architecture of model_archs.
 *
 * Letters: D hidden size, L layers, V vocabulary, hd head dim, H query heads,
 * KV key/value heads, F MLP width (H, KV and F per layer after pruning).
 *
 * Interpreted keys (everything else goes to model.extra_config, verbatim):
 *   model_type            "llama", "mistral" (read as llama), "qwen2" (llama + q/k/v biases),
 *                         "qwen3" (llama + q_norm/k_norm)
 *   hidden_size           D                      required, > 0
 *   num_hidden_layers     L                      required, 1 to MODEL_MAX_LAYERS (4096)
 *   vocab_size            V                      required, > 0
 *   num_attention_heads   H: int or [L] ints     required, >= 0 (0: attention removed)
 *   num_key_value_heads   KV: int or [L] ints    default H; divides H; 0 exactly when H is 0
 *   intermediate_size     F: int or [L] ints     required, >= 0 (0: MLP removed)
 *   head_dim              hd                     default D / H (H a single nonzero int);
 *                                                qwen3: default 128 (transformers' Qwen3Config)
 *   rms_norm_eps          default 1e-6 (the transformers default)
 *   rope_theta            default 10000
 *   rope_style            "half" (default, Hugging Face) or "interleaved" (llama2.c, Meta)
 *   max_position_embeddings  default 2048
 *   tie_word_embeddings   default false
 *   attention_bias        true: q/k/v and o projections have biases (as in
 *                         transformers' Llama); qwen2 always has q/k/v biases only
 *   o_proj_bias           pare's own: o_proj has a bias (written only when it differs
 *                         from what attention_bias and model_type imply)
 *   down_proj_bias        pare's own: down_proj has a bias (FLAP's compensation);
 *                         written only when true
 *   bos_token_id, eos_token_id  int, null (-1) or, for eos, a list (its first id)
 *   hidden_act            must be "silu" when present
 *   mlp_bias              must be false when present
 *   rope_scaling          null, or an object: "rope_type" (or the older "type") "default"
 *                         (none), "linear" (with "factor") or "llama3" (with "factor",
 *                         "low_freq_factor", "high_freq_factor",
 *                         "original_max_position_embeddings"); any other type is refused
 *                         by name; written back with these keys only
 *   use_sliding_window    must be false when present (Qwen2/3: pare attends to every
 *                         earlier token); kept with the extra keys
 *
 * ChatGLM (model_type "chatglm"; the published configs' own keys). ChatGLM2/3
 * when the config has multi_query_attention, ChatGLM-6B otherwise:
 *   num_layers            L                      required
 *   vocab_size            V (6B)                 required
 *   padded_vocab_size     V (2/3)                required
 *   inner_hidden_size     F (6B): int or [L]     required
 *   ffn_hidden_size       F (2/3): int or [L]    required
 *   num_attention_heads   H: int or [L]          required
 *   multi_query_group_num KV (2/3, with multi_query_attention true; else KV = H)
 *   kv_channels (2/3), head_dim (6B, pare's own)  hd, default D / H
 *   layernorm_epsilon     default 1e-5
 *   max_sequence_length (6B), seq_length (2/3)   default 2048
 *   position_encoding_2d  (6B) must be true when present
 *   residual_scale_layers (6B, pare's own) the layer count of alpha = sqrt(2 * N),
 *                         default num_layers (written when layers were removed)
 *   add_qkv_bias          (2/3) default false; add_bias_linear must be false,
 *                         rmsnorm and post_layer_norm true,
 *                         apply_residual_connection_post_layernorm false
 *   rope_ratio            (2/3) rotary base 10000 * rope_ratio, default 1
 * Every error is "SOURCE: what is wrong". */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "model/model.h"

static const char *const rope_style_names[] = {[ROPE_HALF] = "half", [ROPE_INTERLEAVED] = "interleaved"};

/* The keys each architecture reads for the shared sizes. */
typedef struct {
    const char *layers, *vocab, *ffn, *kv, *head_dim, *eps, *max_seq;
} size_keys;

static const size_keys keys_of[ARCH_COUNT] = {
    [ARCH_LLAMA] = {"num_hidden_layers", "vocab_size", "intermediate_size", "num_key_value_heads", "head_dim",
                    "rms_norm_eps", "max_position_embeddings"},
    [ARCH_CHATGLM] = {"num_layers", "vocab_size", "inner_hidden_size", NULL, "head_dim", "layernorm_epsilon",
                      "max_sequence_length"},
    [ARCH_CHATGLM2] = {"num_layers", "padded_vocab_size", "ffn_hidden_size", "multi_query_group_num", "kv_channels",
                       "layernorm_epsilon", "seq_length"},
    [ARCH_QWEN3] = {"num_hidden_layers", "vocab_size", "intermediate_size", "num_key_value_heads", "head_dim",
                    "rms_norm_eps", "max_position_embeddings"},
};

/* The other keys each architecture interprets (NULL-terminated). */
static const char *const flag_keys[ARCH_COUNT][16] = {
    [ARCH_LLAMA] = {"attention_bias", "down_proj_bias", "hidden_act", "mlp_bias", "o_proj_bias", "rope_scaling",
                    "rope_style", "rope_theta", NULL},
    [ARCH_CHATGLM] = {"position_encoding_2d", "residual_scale_layers", NULL},
    [ARCH_CHATGLM2] = {"add_bias_linear", "add_qkv_bias", "apply_residual_connection_post_layernorm",
                       "multi_query_attention", "original_rope", "post_layer_norm", "rmsnorm", "rope_ratio", NULL},
    [ARCH_QWEN3] = {"attention_bias", "down_proj_bias", "hidden_act", "mlp_bias", "o_proj_bias", "rope_scaling",
                    "rope_style", "rope_theta", NULL},
};

/* ChatGLM-6B and ChatGLM2/3 read their own keys; the others LLaMA's. */
static bool is_chatglm(enum model_arch a) { return a == ARCH_CHATGLM || a == ARCH_CHATGLM2; }

static const char *const common_keys[] = {"bos_token_id", "eos_token_id", "hidden_size", "model_type",
                                          "num_attention_heads", "tie_word_embeddings", NULL};

static bool in_list(const char *const *list, const char *key)
{
    for (; *list; list++)
        if (!strcmp(key, *list))
            return true;
    return false;
}

static bool is_interpreted(enum model_arch arch, const char *key)
{
    const size_keys *k = &keys_of[arch];
    const char *sizes[] = {k->layers, k->vocab, k->ffn, k->kv ? k->kv : "", k->head_dim, k->eps, k->max_seq, NULL};
    return in_list(common_keys, key) || in_list(sizes, key) || in_list(flag_keys[arch], key);
}

/* A present, non-null value, or NULL. */
static json_t *get(json_t *j, const char *key)
{
    json_t *v = json_object_get(j, key);
    return v && !json_is_null(v) ? v : NULL;
}

static int get_int(json_t *j, const char *key, const char *src, bool required, int dflt)
{
    json_t *v = get(j, key);
    if (!v) {
        if (required)
            die("%s: missing required key \"%s\"", src, key);
        return dflt;
    }
    if (!json_is_integer(v))
        die("%s: \"%s\" must be an integer", src, key);
    json_int_t x = json_integer_value(v);
    if (x < -1 || x > 1000000000)
        die("%s: \"%s\" is out of range (%lld)", src, key, (long long)x);
    return (int)x;
}

static double get_number(json_t *j, const char *key, const char *src, double dflt)
{
    json_t *v = get(j, key);
    if (!v)
        return dflt;
    if (!json_is_number(v))
        die("%s: \"%s\" must be a number", src, key);
    return json_number_value(v);
}

static bool get_bool(json_t *j, const char *key, const char *src, bool dflt)
{
    json_t *v = get(j, key);
    if (!v)
        return dflt;
    if (!json_is_boolean(v))
        die("%s: \"%s\" must be true or false", src, key);
    return json_is_true(v);
}

/* A token id: an int, null (-1) or, for eos, a list whose first id is used. */
static int get_token_id(json_t *j, const char *key, const char *src, int dflt)
{
    json_t *v = json_object_get(j, key);
    if (!v)
        return dflt;
    if (json_is_null(v))
        return -1;
    if (json_is_array(v) && json_array_size(v) > 0)
        v = json_array_get(v, 0);
    if (!json_is_integer(v) || json_integer_value(v) < -1 || json_integer_value(v) > 1000000000)
        die("%s: \"%s\" must be a token id", src, key);
    return (int)json_integer_value(v);
}

/* A per-layer size: one integer for every layer, or an array of L integers. Values
 * must be >= 0. Fills out[L]; returns false when the key is absent. */
static bool get_per_layer(json_t *j, const char *key, const char *src, int L, int *out)
{
    json_t *v = get(j, key);
    if (!v)
        return false;
    if (json_is_integer(v)) {
        json_int_t x = json_integer_value(v);
        if (x < 0 || x > 1000000000)
            die("%s: \"%s\" must not be negative (%lld)", src, key, (long long)x);
        for (int l = 0; l < L; l++)
            out[l] = (int)x;
        return true;
    }
    if (!json_is_array(v))
        die("%s: \"%s\" must be an integer or an array of %d integers", src, key, L);
    if ((int)json_array_size(v) != L)
        die("%s: \"%s\" has %zu values, but num_hidden_layers is %d", src, key,
            json_array_size(v), L);
    for (int l = 0; l < L; l++) {
        json_t *e = json_array_get(v, (size_t)l);
        if (!json_is_integer(e))
            die("%s: \"%s\"[%d] must be an integer", src, key, l);
        json_int_t x = json_integer_value(e);
        if (x < 0 || x > 1000000000)
            die("%s: \"%s\"[%d] must not be negative (%lld)", src, key, l, (long long)x);
        out[l] = (int)x;
    }
    return true;
}

/* The architecture of a config object with a valid model_type. */
static enum model_arch arch_of(json_t *j)
{
    json_t *mt = get(j, "model_type");
    const char *type = mt && json_is_string(mt) ? json_string_value(mt) : "";
    if (!strcmp(type, "qwen3"))
        return ARCH_QWEN3;
    if (strcmp(type, "chatglm"))
        return ARCH_LLAMA;
    return json_object_get(j, "multi_query_attention") ? ARCH_CHATGLM2 : ARCH_CHATGLM;
}

/* A number of the rope_scaling object rs, required. */
static double scaling_number(json_t *rs, const char *key, const char *src)
{
    json_t *v = get(rs, key);
    if (!v)
        die("%s: \"rope_scaling\" has no \"%s\" (its rope_type needs one)", src, key);
    if (!json_is_number(v) || !isfinite(json_number_value(v)))
        die("%s: \"rope_scaling.%s\" must be a number", src, key);
    return json_number_value(v);
}

/* rope_scaling: absent or null (none), or an object whose rope_type transformers
 * computes as pare does (transformers' _compute_linear_scaling_rope_parameters,
 * _compute_llama3_parameters); the checks keep its arithmetic finite. */
static void rope_scaling_from_json(model_config *c, json_t *j, const char *src)
{
    rope_scaling_config *s = &c->rope_scaling;
    *s = (rope_scaling_config){ROPE_SCALING_NONE, 1.0, 0, 0, 0};
    json_t *rs = get(j, "rope_scaling");
    if (!rs)
        return;
    if (!json_is_object(rs))
        die("%s: \"rope_scaling\" must be an object or null", src);
    json_t *t = get(rs, "rope_type");
    const char *key = "rope_type";
    if (!t) {
        t = get(rs, "type");
        key = "type";
    }
    if (!t)
        die("%s: \"rope_scaling\" has no \"rope_type\"", src);
    if (!json_is_string(t))
        die("%s: \"rope_scaling.%s\" must be a string", src, key);
    const char *type = json_string_value(t);
    if (!strcmp(type, "default"))
        return;
    if (!strcmp(type, "linear"))
        s->type = ROPE_SCALING_LINEAR;
    else if (!strcmp(type, "llama3"))
        s->type = ROPE_SCALING_LLAMA3;
    else
        die("%s: \"rope_scaling.%s\" is \"%s\", which pare does not implement (it reads llama3 and linear)", src,
            key, type);
    s->factor = scaling_number(rs, "factor", src);
    if (!(s->factor > 0))
        die("%s: \"rope_scaling.factor\" must be positive (%g)", src, s->factor);
    if (s->type != ROPE_SCALING_LLAMA3)
        return;
    s->low_freq_factor = scaling_number(rs, "low_freq_factor", src);
    s->high_freq_factor = scaling_number(rs, "high_freq_factor", src);
    if (!(s->low_freq_factor > 0 && s->high_freq_factor > s->low_freq_factor))
        die("%s: \"rope_scaling.low_freq_factor\" (%g) must be positive and below \"high_freq_factor\" (%g)", src,
            s->low_freq_factor, s->high_freq_factor);
    json_t *o = get(rs, "original_max_position_embeddings");
    if (!o)
        die("%s: \"rope_scaling\" has no \"original_max_position_embeddings\" (its rope_type needs one)", src);
    if (!json_is_integer(o) || json_integer_value(o) <= 0 || json_integer_value(o) > 1000000000)
        die("%s: \"rope_scaling.original_max_position_embeddings\" must be a positive integer", src);
    s->original_max_seq = (int)json_integer_value(o);
}

/* transformers' float32 arithmetic on the CPU, step by step: a Python number meets a
 * float32 tensor as a float32, and "number / tensor" is the tensor's reciprocal
 * times the number (torch's Tensor.__rtruediv__). */
void config_rope_inv_freq(const model_config *c, float *inv)
{
    int rd = config_rope_dim(c);
    const rope_scaling_config *s = &c->rope_scaling;
    float factor = (float)s->factor, low = (float)s->low_freq_factor, old_len = (float)s->original_max_seq;
    float low_wavelen = (float)(s->original_max_seq / s->low_freq_factor);
    float high_wavelen = (float)(s->original_max_seq / s->high_freq_factor);
    float band = (float)(s->high_freq_factor - s->low_freq_factor);
    for (int i = 0; i < rd / 2; i++) {
        float f = (float)(1.0 / pow((double)c->rope_theta, (double)(2 * i) / rd));
        if (s->type == ROPE_SCALING_LINEAR) {
            f = f / factor; /* inv_freq /= factor */
        } else if (s->type == ROPE_SCALING_LLAMA3) {
            float wavelen = (1.0f / f) * (float)(2 * M_PI);  /* 2 * math.pi / inv_freq */
            float scaled = wavelen > low_wavelen ? f / factor : f;
            if (!(wavelen < high_wavelen) && !(wavelen > low_wavelen)) { /* is_medium_freq */
                float smooth = ((1.0f / wavelen) * old_len - low) / band;
                scaled = (1 - smooth) * scaled / factor + smooth * scaled;
            }
            f = scaled;
        }
        inv[i] = f;
    }
}

/* The ChatGLM keys beyond the sizes: what its published configs say, checked
 * against what pare implements. */
static void chatglm_flags(model_config *c, json_t *j, const char *src)
{
    c->tied = get_bool(j, "tie_word_embeddings", src, false);
    if (c->arch == ARCH_CHATGLM) {
        if (!get_bool(j, "position_encoding_2d", src, true))
            die("%s: position_encoding_2d false is not supported (pare implements ChatGLM-6B's 2D positions)", src);
        c->qkv_bias = c->o_bias = c->up_bias = c->down_bias = true;
        c->rope_style = ROPE_HALF;
        c->rope_theta = 10000.0f;
        c->alpha_layers = get_int(j, "residual_scale_layers", src, false, c->n_layers);
        if (c->alpha_layers <= 0)
            die("%s: residual_scale_layers must be positive (%d)", src, c->alpha_layers);
        return;
    }
    if (get_bool(j, "add_bias_linear", src, false))
        die("%s: add_bias_linear true is not supported", src);
    if (!get_bool(j, "rmsnorm", src, true))
        die("%s: rmsnorm false is not supported", src);
    if (!get_bool(j, "post_layer_norm", src, true))
        die("%s: post_layer_norm false is not supported", src);
    if (get_bool(j, "apply_residual_connection_post_layernorm", src, false))
        die("%s: apply_residual_connection_post_layernorm true is not supported", src);
    if (!get_bool(j, "original_rope", src, true))
        die("%s: original_rope false is not supported", src);
    c->qkv_bias = get_bool(j, "add_qkv_bias", src, false);
    c->rope_style = ROPE_INTERLEAVED;
    double ratio = get_number(j, "rope_ratio", src, 1.0);
    if (!(ratio > 0 && isfinite(ratio)))
        die("%s: rope_ratio must be positive (%g)", src, ratio);
    c->rope_theta = (float)(10000.0 * ratio);
}

void config_from_json(model_config *c, json_t *j, const char *src)
{
    memset(c, 0, sizeof *c);
    if (!json_is_object(j))
        die("%s: the config is not a JSON object", src);

    json_t *mt = get(j, "model_type");
    if (!mt)
        die("%s: missing required key \"model_type\"", src);
    if (!json_is_string(mt))
        die("%s: \"model_type\" must be a string", src);
    const char *type = json_string_value(mt);
    if (strcmp(type, "llama") && strcmp(type, "mistral") && strcmp(type, "qwen2") && strcmp(type, "qwen3") &&
        strcmp(type, "chatglm"))
        die("%s: unsupported model_type \"%s\" (pare reads llama, mistral, qwen2, qwen3 and chatglm)", src, type);
    snprintf(c->model_type, sizeof c->model_type, "%s", type);
    c->arch = arch_of(j);
    const size_keys *K = &keys_of[c->arch];
    bool glm = is_chatglm(c->arch);

    json_t *act = get(j, "hidden_act");
    if (act && (!json_is_string(act) || strcmp(json_string_value(act), "silu")))
        die("%s: unsupported hidden_act (pare implements silu only)", src);
    if (get_bool(j, "mlp_bias", src, false))
        die("%s: mlp_bias is not supported", src);
    if (glm && get(j, "rope_scaling"))
        die("%s: rope_scaling is not supported for ChatGLM", src);
    if (get_bool(j, "use_sliding_window", src, false))
        die("%s: use_sliding_window true is not supported (pare attends to every earlier token)", src);

    c->dim = get_int(j, "hidden_size", src, true, 0);
    c->n_layers = get_int(j, K->layers, src, true, 0);
    c->vocab = get_int(j, K->vocab, src, true, 0);
    if (c->dim <= 0)
        die("%s: hidden_size must be positive (%d)", src, c->dim);
    if (c->n_layers <= 0 || c->n_layers > MODEL_MAX_LAYERS)
        die("%s: %s must be from 1 to %d (%d)", src, K->layers, MODEL_MAX_LAYERS, c->n_layers);
    if (c->vocab <= 0)
        die("%s: %s must be positive (%d)", src, K->vocab, c->vocab);
    int L = c->n_layers;

    c->n_heads = xcalloc((size_t)L, sizeof(int));
    c->n_kv_heads = xcalloc((size_t)L, sizeof(int));
    c->ffn_dim = xcalloc((size_t)L, sizeof(int));
    if (!get_per_layer(j, "num_attention_heads", src, L, c->n_heads))
        die("%s: missing required key \"num_attention_heads\"", src);
    if (!get_per_layer(j, K->ffn, src, L, c->ffn_dim))
        die("%s: missing required key \"%s\"", src, K->ffn);
    bool mqa = c->arch != ARCH_CHATGLM2 || get_bool(j, "multi_query_attention", src, false);
    if (!K->kv || !mqa || !get_per_layer(j, K->kv, src, L, c->n_kv_heads))
        memcpy(c->n_kv_heads, c->n_heads, (size_t)L * sizeof(int));
    for (int l = 0; l < L; l++) {
        int h = c->n_heads[l], kv = c->n_kv_heads[l];
        if (h == 0 && kv != 0)
            die("%s: layer %d has 0 attention heads but %d key/value heads", src, l, kv);
        if (h != 0 && kv == 0)
            die("%s: layer %d has %d attention heads but 0 key/value heads", src, l, h);
        if (h != 0 && h % kv != 0)
            die("%s: layer %d: %s (%d) does not divide num_attention_heads (%d)", src, l,
                K->kv ? K->kv : "num_key_value_heads", kv, h);
    }

    json_t *hdv = get(j, K->head_dim);
    if (!hdv && c->arch == ARCH_QWEN3) {
        c->head_dim = 128;
    } else if (hdv) {
        c->head_dim = get_int(j, K->head_dim, src, true, 0);
        if (c->head_dim <= 0)
            die("%s: head_dim must be positive (%d)", src, c->head_dim);
    } else {
        json_t *hv = get(j, "num_attention_heads");
        if (!json_is_integer(hv))
            die("%s: head_dim is required when num_attention_heads is per-layer", src);
        int h = c->n_heads[0];
        if (h == 0)
            die("%s: head_dim is required when num_attention_heads is 0", src);
        if (c->dim % h != 0)
            die("%s: hidden_size (%d) is not a multiple of num_attention_heads (%d); give head_dim",
                src, c->dim, h);
        c->head_dim = c->dim / h;
    }
    if (c->head_dim % 2 != 0)
        die("%s: head_dim must be even for rotary embeddings (%d)", src, c->head_dim);

    if (glm && c->head_dim % 4 != 0)
        die("%s: head_dim must be a multiple of 4 for ChatGLM's rotary embeddings (%d)", src, c->head_dim);

    c->max_seq = get_int(j, K->max_seq, src, false, 2048);
    if (c->max_seq <= 0)
        die("%s: %s must be positive (%d)", src, K->max_seq, c->max_seq);
    double eps = get_number(j, K->eps, src, glm ? 1e-5 : 1e-6);
    if (!(eps > 0 && eps < 1))
        die("%s: %s must be in (0, 1) (%g)", src, K->eps, eps);
    c->norm_eps = (float)eps;
    c->bos_id = get_token_id(j, "bos_token_id", src, 1);
    c->eos_id = get_token_id(j, "eos_token_id", src, 2);
    if (glm) {
        chatglm_flags(c, j, src);
        return;
    }

    double theta = get_number(j, "rope_theta", src, 10000.0);
    if (!(theta > 0 && isfinite(theta)))
        die("%s: rope_theta must be positive (%g)", src, theta);
    c->rope_theta = (float)theta;
    rope_scaling_from_json(c, j, src);

    c->rope_style = ROPE_HALF;
    json_t *rs = get(j, "rope_style");
    if (rs) {
        int style = name_lookup(json_is_string(rs) ? json_string_value(rs) : "", rope_style_names, 2);
        if (style < 0)
            die("%s: rope_style must be \"half\" or \"interleaved\"", src);
        c->rope_style = (enum rope_style)style;
    }

    c->tied = get_bool(j, "tie_word_embeddings", src, false);
    bool attention_bias = get_bool(j, "attention_bias", src, false);
    c->qkv_bias = attention_bias || !strcmp(type, "qwen2");
    c->o_bias = get_bool(j, "o_proj_bias", src, attention_bias && strcmp(type, "qwen2") != 0);
    c->down_bias = get_bool(j, "down_proj_bias", src, false);
}

json_t *config_extra(const json_t *j)
{
    json_t *extra = json_object();
    enum model_arch arch = arch_of((json_t *)j);
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)j, key, v)
        if (!is_interpreted(arch, key))
            json_object_set(extra, key, v);
    return extra;
}

/* Shortest decimal that reads back as the same float, as a JSON real. */
static json_t *json_float(float f)
{
    char buf[32];
    for (int p = 1; p <= 9; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, (double)f);
        if (strtof(buf, NULL) == f)
            break;
    }
    return json_real(strtod(buf, NULL));
}

static json_t *per_layer(const int *v, int L)
{
    bool same = true;
    for (int l = 1; l < L; l++)
        same = same && v[l] == v[0];
    if (same)
        return json_integer(v[0]);
    json_t *a = json_array();
    for (int l = 0; l < L; l++)
        json_array_append_new(a, json_integer(v[l]));
    return a;
}

static json_t *token_id(int id) { return id < 0 ? json_null() : json_integer(id); }

/* ChatGLM's keys (config_to_json's other half). */
static json_t *chatglm_config_to_json(const model_config *c)
{
    const size_keys *K = &keys_of[c->arch];
    json_t *j = json_object();
    json_object_set_new(j, "bos_token_id", token_id(c->bos_id));
    json_object_set_new(j, "eos_token_id", token_id(c->eos_id));
    json_object_set_new(j, K->head_dim, json_integer(c->head_dim));
    json_object_set_new(j, "hidden_size", json_integer(c->dim));
    json_object_set_new(j, K->ffn, per_layer(c->ffn_dim, c->n_layers));
    json_object_set_new(j, K->max_seq, json_integer(c->max_seq));
    json_object_set_new(j, "model_type", json_string(c->model_type));
    json_object_set_new(j, "num_attention_heads", per_layer(c->n_heads, c->n_layers));
    json_object_set_new(j, K->layers, json_integer(c->n_layers));
    json_object_set_new(j, K->eps, json_float(c->norm_eps));
    json_object_set_new(j, "tie_word_embeddings", json_boolean(c->tied));
    json_object_set_new(j, K->vocab, json_integer(c->vocab));
    if (c->arch == ARCH_CHATGLM) {
        json_object_set_new(j, "position_encoding_2d", json_true());
        if (c->alpha_layers != c->n_layers)
            json_object_set_new(j, "residual_scale_layers", json_integer(c->alpha_layers));
        return j;
    }
    json_object_set_new(j, "multi_query_attention", json_true());
    json_object_set_new(j, K->kv, per_layer(c->n_kv_heads, c->n_layers));
    json_object_set_new(j, "add_qkv_bias", json_boolean(c->qkv_bias));
    json_object_set_new(j, "add_bias_linear", json_false());
    json_object_set_new(j, "rmsnorm", json_true());
    json_object_set_new(j, "post_layer_norm", json_true());
    json_object_set_new(j, "apply_residual_connection_post_layernorm", json_false());
    json_object_set_new(j, "rope_ratio", json_float(c->rope_theta / 10000.0f));
    return j;
}

/* rope_scaling's object, or NULL for none. */
static json_t *rope_scaling_to_json(const rope_scaling_config *s)
{
    if (s->type == ROPE_SCALING_NONE)
        return NULL;
    json_t *j = json_object();
    json_object_set_new(j, "rope_type", json_string(s->type == ROPE_SCALING_LINEAR ? "linear" : "llama3"));
    json_object_set_new(j, "factor", json_real(s->factor));
    if (s->type == ROPE_SCALING_LLAMA3) {
        json_object_set_new(j, "low_freq_factor", json_real(s->low_freq_factor));
        json_object_set_new(j, "high_freq_factor", json_real(s->high_freq_factor));
        json_object_set_new(j, "original_max_position_embeddings", json_integer(s->original_max_seq));
    }
    return j;
}

json_t *config_to_json(const model_config *c)
{
    if (is_chatglm(c->arch))
        return chatglm_config_to_json(c);
    json_t *j = json_object();
    json_object_set_new(j, "attention_bias", json_boolean(c->qkv_bias));
    if (c->o_bias != (c->qkv_bias && strcmp(c->model_type, "qwen2") != 0))
        json_object_set_new(j, "o_proj_bias", json_boolean(c->o_bias));
    if (c->down_bias)
        json_object_set_new(j, "down_proj_bias", json_true());
    json_object_set_new(j, "bos_token_id", token_id(c->bos_id));
    json_object_set_new(j, "eos_token_id", token_id(c->eos_id));
    json_object_set_new(j, "head_dim", json_integer(c->head_dim));
    json_object_set_new(j, "hidden_act", json_string("silu"));
    json_object_set_new(j, "hidden_size", json_integer(c->dim));
    json_object_set_new(j, "intermediate_size", per_layer(c->ffn_dim, c->n_layers));
    json_object_set_new(j, "max_position_embeddings", json_integer(c->max_seq));
    json_object_set_new(j, "model_type", json_string(c->model_type));
    json_object_set_new(j, "num_attention_heads", per_layer(c->n_heads, c->n_layers));
    json_object_set_new(j, "num_hidden_layers", json_integer(c->n_layers));
    json_object_set_new(j, "num_key_value_heads", per_layer(c->n_kv_heads, c->n_layers));
    json_object_set_new(j, "rms_norm_eps", json_float(c->norm_eps));
    json_t *scaling = rope_scaling_to_json(&c->rope_scaling);
    if (scaling)
        json_object_set_new(j, "rope_scaling", scaling);
    json_object_set_new(j, "rope_style", json_string(rope_style_names[c->rope_style]));
    json_object_set_new(j, "rope_theta", json_float(c->rope_theta));
    json_object_set_new(j, "tie_word_embeddings", json_boolean(c->tied));
    json_object_set_new(j, "vocab_size", json_integer(c->vocab));
    return j;
}

char *config_canonical(const model_config *c)
{
    json_t *j = config_to_json(c);
    char *s = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(j);
    if (!s)
        die("out of memory");
    return s;
}

void config_copy(model_config *dst, const model_config *src)
{
    *dst = *src;
    size_t n = (size_t)src->n_layers * sizeof(int);
    dst->n_heads = memcpy(xmalloc(n), src->n_heads, n);
    dst->n_kv_heads = memcpy(xmalloc(n), src->n_kv_heads, n);
    dst->ffn_dim = memcpy(xmalloc(n), src->ffn_dim, n);
}

void config_free(model_config *c)
{
    free(c->n_heads);
    free(c->n_kv_heads);
    free(c->ffn_dim);
    c->n_heads = c->n_kv_heads = c->ffn_dim = NULL;
}
