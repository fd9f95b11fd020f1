/* config.c - LLaMA-family config <-> Hugging Face config.json keys.
 *
 * Letters: D hidden size, L layers, V vocabulary, hd head dim, H query heads,
 * KV key/value heads, F MLP width (H, KV and F per layer after pruning).
 *
 * Interpreted keys (everything else goes to model.extra_config, verbatim):
 *   model_type            "llama", "mistral" (read as llama), "qwen2" (llama + q/k/v biases)
 *   hidden_size           D                      required, > 0
 *   num_hidden_layers     L                      required, 1 to LLAMA_MAX_LAYERS (4096)
 *   vocab_size            V                      required, > 0
 *   num_attention_heads   H: int or [L] ints     required, >= 0 (0: attention removed)
 *   num_key_value_heads   KV: int or [L] ints    default H; divides H; 0 exactly when H is 0
 *   intermediate_size     F: int or [L] ints     required, >= 0 (0: MLP removed)
 *   head_dim              hd                     default D / H (H a single nonzero int)
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
 *   rope_scaling          must be null when present
 * Every error is "SOURCE: what is wrong". */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "util.h"

static const char *const rope_style_names[] = {[ROPE_HALF] = "half", [ROPE_INTERLEAVED] = "interleaved"};

static const char *const interpreted_keys[] = {
    "attention_bias", "bos_token_id", "down_proj_bias", "eos_token_id", "head_dim", "hidden_act",
    "hidden_size", "intermediate_size", "max_position_embeddings", "mlp_bias",
    "model_type", "num_attention_heads", "o_proj_bias", "num_hidden_layers", "num_key_value_heads",
    "rms_norm_eps", "rope_scaling", "rope_style", "rope_theta", "tie_word_embeddings",
    "vocab_size",
};

static bool is_interpreted(const char *key)
{
    for (size_t i = 0; i < sizeof interpreted_keys / sizeof *interpreted_keys; i++)
        if (!strcmp(key, interpreted_keys[i]))
            return true;
    return false;
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

void llama_config_from_json(llama_config *c, json_t *j, const char *src)
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
    if (strcmp(type, "llama") && strcmp(type, "mistral") && strcmp(type, "qwen2"))
        die("%s: unsupported model_type \"%s\" (pare reads llama, mistral and qwen2)", src, type);
    snprintf(c->model_type, sizeof c->model_type, "%s", type);

    json_t *act = get(j, "hidden_act");
    if (act && (!json_is_string(act) || strcmp(json_string_value(act), "silu")))
        die("%s: unsupported hidden_act (pare implements silu only)", src);
    if (get_bool(j, "mlp_bias", src, false))
        die("%s: mlp_bias is not supported", src);
    if (get(j, "rope_scaling"))
        die("%s: rope_scaling is not supported", src);

    c->dim = get_int(j, "hidden_size", src, true, 0);
    c->n_layers = get_int(j, "num_hidden_layers", src, true, 0);
    c->vocab = get_int(j, "vocab_size", src, true, 0);
    if (c->dim <= 0)
        die("%s: hidden_size must be positive (%d)", src, c->dim);
    if (c->n_layers <= 0 || c->n_layers > LLAMA_MAX_LAYERS)
        die("%s: num_hidden_layers must be from 1 to %d (%d)", src, LLAMA_MAX_LAYERS, c->n_layers);
    if (c->vocab <= 0)
        die("%s: vocab_size must be positive (%d)", src, c->vocab);
    int L = c->n_layers;

    c->n_heads = xcalloc((size_t)L, sizeof(int));
    c->n_kv_heads = xcalloc((size_t)L, sizeof(int));
    c->ffn_dim = xcalloc((size_t)L, sizeof(int));
    if (!get_per_layer(j, "num_attention_heads", src, L, c->n_heads))
        die("%s: missing required key \"num_attention_heads\"", src);
    if (!get_per_layer(j, "intermediate_size", src, L, c->ffn_dim))
        die("%s: missing required key \"intermediate_size\"", src);
    if (!get_per_layer(j, "num_key_value_heads", src, L, c->n_kv_heads))
        memcpy(c->n_kv_heads, c->n_heads, (size_t)L * sizeof(int));
    for (int l = 0; l < L; l++) {
        int h = c->n_heads[l], kv = c->n_kv_heads[l];
        if (h == 0 && kv != 0)
            die("%s: layer %d has 0 attention heads but %d key/value heads", src, l, kv);
        if (h != 0 && kv == 0)
            die("%s: layer %d has %d attention heads but 0 key/value heads", src, l, h);
        if (h != 0 && h % kv != 0)
            die("%s: layer %d: num_key_value_heads (%d) does not divide num_attention_heads (%d)",
                src, l, kv, h);
    }

    json_t *hdv = get(j, "head_dim");
    if (hdv) {
        c->head_dim = get_int(j, "head_dim", src, true, 0);
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

    c->max_seq = get_int(j, "max_position_embeddings", src, false, 2048);
    if (c->max_seq <= 0)
        die("%s: max_position_embeddings must be positive (%d)", src, c->max_seq);
    double eps = get_number(j, "rms_norm_eps", src, 1e-6);
    if (!(eps > 0 && eps < 1))
        die("%s: rms_norm_eps must be in (0, 1) (%g)", src, eps);
    c->norm_eps = (float)eps;
    double theta = get_number(j, "rope_theta", src, 10000.0);
    if (!(theta > 0 && isfinite(theta)))
        die("%s: rope_theta must be positive (%g)", src, theta);
    c->rope_theta = (float)theta;

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
    c->bos_id = get_token_id(j, "bos_token_id", src, 1);
    c->eos_id = get_token_id(j, "eos_token_id", src, 2);
}

json_t *llama_config_extra(const json_t *j)
{
    json_t *extra = json_object();
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)j, key, v)
        if (!is_interpreted(key))
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

json_t *llama_config_to_json(const llama_config *c)
{
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
    json_object_set_new(j, "rope_style", json_string(rope_style_names[c->rope_style]));
    json_object_set_new(j, "rope_theta", json_float(c->rope_theta));
    json_object_set_new(j, "tie_word_embeddings", json_boolean(c->tied));
    json_object_set_new(j, "vocab_size", json_integer(c->vocab));
    return j;
}

char *llama_config_canonical(const llama_config *c)
{
    json_t *j = llama_config_to_json(c);
    char *s = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(j);
    if (!s)
        die("out of memory");
    return s;
}

void llama_config_copy(llama_config *dst, const llama_config *src)
{
    *dst = *src;
    size_t n = (size_t)src->n_layers * sizeof(int);
    dst->n_heads = memcpy(xmalloc(n), src->n_heads, n);
    dst->n_kv_heads = memcpy(xmalloc(n), src->n_kv_heads, n);
    dst->ffn_dim = memcpy(xmalloc(n), src->ffn_dim, n);
}

void llama_config_free(llama_config *c)
{
    free(c->n_heads);
    free(c->n_kv_heads);
    free(c->ffn_dim);
    c->n_heads = c->n_kv_heads = c->ffn_dim = NULL;
}
