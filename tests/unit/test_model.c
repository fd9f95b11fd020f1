/* test_model.c - model loading: dtype conversions against independent formulas,
 * safetensors round trips, sharded folders, llama2.c parsing, the stories260K
 * Hugging Face conversions against the .bin, config parsing and its errors,
 * tensor checks, fingerprints, truncated files.
 *
 * Letters: D hidden size, L layers, V vocabulary, hd head dim, H heads, KV
 * key/value heads, F MLP width. */
#include <dirent.h>
#include <float.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <xxhash.h>

#include "base/blas.h"
#include "base/rng.h"
#include "base/util.h"
#include "check.h"
#include "fixture.h"
#include "compute/lora.h"
#include "compute/matmul.h"
#include "format/checkpoint.h"
#include "format/llama2c.h"
#include "format/model_load.h"
#include "format/hf_folder.h"
#include "format/safetensors.h"
#include "format/stream.h"
#include "model/model.h"
#include "model/tensor.h"
#include "prune/graph.h"

#define STORIES260K_FINGERPRINT "9e148dffbcfbf67b"

static char tmpdir[] = "/tmp/pare-test-model-XXXXXX";

static char *tmp(const char *name) { return path_join(tmpdir, name); }

static void rm_rf(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                char *p = path_join(path, e->d_name);
                rm_rf(p);
                free(p);
            }
        closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static char *data_path(const char *rel) { return path_join(check_data_dir(), rel); }

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0)
        die("cannot write %s", path);
}

/* ---- running code that must die ---- */


static void load_path(void *arg)
{
    model m;
    model_load(&m, arg, NULL);
}

/* ---- independent dtype formulas ---- */

static double ref_bf16(uint16_t h)
{
    int sign = h >> 15, e = (h >> 7) & 0xff, man = h & 0x7f;
    double v = e == 0 ? ldexp(man, -133) : e == 255 ? (man ? NAN : INFINITY) : ldexp(128 + man, e - 134);
    return sign ? -v : v;
}

static double ref_f16(uint16_t h)
{
    int sign = h >> 15, e = (h >> 10) & 0x1f, man = h & 0x3ff;
    double v = e == 0 ? ldexp(man, -24) : e == 31 ? (man ? NAN : INFINITY) : ldexp(1024 + man, e - 25);
    return sign ? -v : v;
}

/* x rounded to nearest even with p significant bits and exponents down to emin
 * (subnormal below), overflowing to infinity at max. */
static double ref_round(double x, int p, int emin, double max)
{
    if (x == 0)
        return x;
    int e;
    frexp(x, &e); /* |x| in [2^(e-1), 2^e) */
    e = e - 1 < emin ? emin : e - 1;
    double q = ldexp(1, e - (p - 1));
    double r = nearbyint(x / q) * q; /* default rounding mode: ties to even */
    if (fabs(r) > max)
        return x > 0 ? INFINITY : -INFINITY;
    return r;
}

static double ref_to_bf16(float x) { return ref_round(x, 8, -126, 0x1.fep127); }
static double ref_to_f16(float x) { return ref_round(x, 11, -14, 65504); }

static bool same_value(double a, double b) { return (isnan(a) && isnan(b)) || a == b; }

static uint64_t rs = 88172645463325252ull; /* test data's stream (rng.h) */
static uint32_t rnd(void) { return (uint32_t)(rng_next(&rs) >> 32); }
/* A float of random sign, mantissa and exponent in [2^lo, 2^hi). */
static float rnd_float(int lo, int hi)
{
    double m = 1 + (rnd() & 0xffffff) / 16777216.0;
    float f = (float)ldexp(m, lo + (int)(rnd() % (uint32_t)(hi - lo)));
    return rnd() & 1 ? -f : f;
}

static void test_dtype_conversions(void)
{
    int bad_bf = 0, bad_f = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        bad_bf += !same_value(bf16_to_f32((uint16_t)h), ref_bf16((uint16_t)h));
        bad_f += !same_value(f16_to_f32((uint16_t)h), ref_f16((uint16_t)h));
    }
    CHECK(bad_bf == 0);
    CHECK(bad_f == 0);

    int bad_rb = 0, bad_rf = 0;
    for (int i = 0; i < 200000; i++) {
        float x = rnd_float(-140, 127);
        bad_rb += !same_value(bf16_to_f32(f32_to_bf16(x)), ref_to_bf16(x));
        float y = rnd_float(-26, 17);
        bad_rf += !same_value(f16_to_f32(f32_to_f16(y)), ref_to_f16(y));
    }
    CHECK(bad_rb == 0);
    CHECK(bad_rf == 0);
    /* ties go to even */
    CHECK(f32_to_bf16(1.0f + 0x1p-8f) == 0x3f80);
    CHECK(f32_to_bf16(1.0f + 3 * 0x1p-8f) == 0x3f82);
    CHECK(f32_to_f16(1.0f + 0x1p-11f) == 0x3c00);
    CHECK(f32_to_f16(1.0f + 3 * 0x1p-11f) == 0x3c02);
    CHECK(f32_to_f16(65520.0f) == 0x7c00);  /* rounds up to infinity */
    CHECK(f32_to_f16(65519.0f) == 0x7bff);
    CHECK(f16_to_f32(0x0001) == 0x1p-24f); /* smallest subnormal */
    CHECK(isnan(bf16_to_f32(f32_to_bf16(NAN))));
}

/* ---- safetensors ---- */

/* t's values as fp32, whatever its dtype (a new buffer). */
static float *wide_values(const tensor *t)
{
    float *v = xmalloc((size_t)(t->numel ? t->numel : 1) * sizeof(float));
    tensor_get_f32(t, 0, t->numel, v);
    return v;
}

static void make_tensor(tensor *t, const char *name, int ndim, int64_t s0, int64_t s1)
{
    memset(t, 0, sizeof *t);
    t->name = xstrdup(name);
    t->ndim = ndim;
    t->shape[0] = s0;
    t->shape[1] = ndim == 2 ? s1 : 0;
    t->numel = s0 * (ndim == 2 ? s1 : 1);
    t->data = xmalloc_aligned((size_t)t->numel * 4);
}

static void test_safetensors_round_trip(void)
{
    tensor in[3];
    make_tensor(&in[0], "b.weight", 2, 7, 13);
    make_tensor(&in[1], "a.bias", 1, 5, 0);
    make_tensor(&in[2], "empty", 2, 0, 4);
    for (int64_t i = 0; i < in[0].numel; i++)
        tensor_f32(&in[0])[i] = rnd_float(-20, 15);
    const float special[5] = {0.0f, -0.0f, 1e-8f, 65504.0f, -3.14159f};
    memcpy(in[1].data, special, sizeof special);

    const enum dtype dts[3] = {DTYPE_F32, DTYPE_F16, DTYPE_BF16};
    const char *names[3] = {"F32", "F16", "BF16"};
    for (int d = 0; d < 3; d++) {
        char *p = tmp("rt.safetensors");
        safetensors_write(p, in, 3, dts[d], NULL);

        /* the header, read independently */
        size_t len;
        uint8_t *raw = (uint8_t *)read_whole_file(p, &len);
        uint64_t hlen = 0;
        for (int i = 7; i >= 0; i--)
            hlen = hlen << 8 | raw[i];
        CHECK(hlen % 8 == 0);
        json_t *h = json_loadb((char *)raw + 8, hlen, 0, NULL);
        CHECK(h != NULL);
        json_t *e = json_object_get(h, "b.weight");
        CHECK(!strcmp(json_string_value(json_object_get(e, "dtype")), names[d]));
        CHECK(json_integer_value(json_array_get(json_object_get(e, "shape"), 1)) == 13);
        CHECK(len == 8 + hlen + (size_t)(7 * 13 + 5) * dtype_size(dts[d]));
        json_decref(h);
        free(raw);

        tensor *out = NULL;
        int n = 0, cap = 0;
        safetensors_read(p, &out, &n, &cap);
        CHECK(n == 3);
        int bad = 0;
        for (int k = 0; k < n; k++) {
            const tensor *o = &out[k], *ref = NULL;
            for (int j = 0; j < 3; j++)
                if (!strcmp(in[j].name, o->name))
                    ref = &in[j];
            CHECK(ref != NULL);
            if (!ref)
                continue;
            CHECK(o->ndim == ref->ndim && o->shape[0] == ref->shape[0] && o->shape[1] == ref->shape[1]);
            CHECK(o->stored == dts[d]);
            /* kept as stored, aligned to its values (mapped from the file) */
            CHECK(o->dtype == dts[d]);
            CHECK(((uintptr_t)o->data % dtype_size(o->dtype)) == 0 || o->numel == 0);
            for (int64_t i = 0; i < o->numel; i++) {
                double want = dts[d] == DTYPE_F32 ? tensor_f32(ref)[i] :
                              dts[d] == DTYPE_F16 ? ref_to_f16(tensor_f32(ref)[i]) : ref_to_bf16(tensor_f32(ref)[i]);
                float got;
                tensor_get_f32(o, i, 1, &got);
                bad += !same_value(got, want);
            }
        }
        CHECK(bad == 0);
        /* the sign of -0 survives */
        tensor *b = !strcmp(out[0].name, "a.bias") ? &out[0] : !strcmp(out[1].name, "a.bias") ? &out[1] : &out[2];
        float neg0;
        tensor_get_f32(b, 1, 1, &neg0);
        CHECK(signbit(neg0));
        tensors_free(out, n);
        free(p);
    }
    for (int i = 0; i < 3; i++) {
        free(in[i].name);
        free(in[i].data);
    }
}

/* A file whose header has an odd length puts every payload at an odd address of
 * the mapping: each tensor still points into it (none is copied whole), reads and
 * writes its values through aligned blocks, and the products widen it a panel at
 * a time as they do a half-precision weight; the values and products are those
 * of plain loops over the values written. */
static void test_safetensors_misaligned(void)
{
    enum { O = 20, I = 33, N = 3 };
    /* w: bf16 (O, I); x: f32 (O, I); v: f32 (5) */
    size_t wb = (size_t)O * I * 2, xb = (size_t)O * I * 4, vb = 5 * 4;
    char header[512];
    int hl = snprintf(header, sizeof header,
                      "{\"w\":{\"dtype\":\"BF16\",\"shape\":[%d,%d],\"data_offsets\":[0,%zu]},"
                      "\"x\":{\"dtype\":\"F32\",\"shape\":[%d,%d],\"data_offsets\":[%zu,%zu]},"
                      "\"v\":{\"dtype\":\"F32\",\"shape\":[5],\"data_offsets\":[%zu,%zu]}}",
                      O, I, wb, O, I, wb, wb + xb, wb + xb, wb + xb + vb);
    if ((8 + hl) % 2 == 0) /* an odd start: misaligned for 2- and 4-byte values */
        header[hl++] = ' ';
    header[hl] = 0;
    size_t total = 8 + (size_t)hl + wb + xb + vb;
    uint8_t *buf = xcalloc(total, 1);
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(buf + 8, header, (size_t)hl);
    uint8_t *data = buf + 8 + hl;
    float *wv = xmalloc((size_t)O * I * sizeof(float)), *xv = xmalloc((size_t)O * I * sizeof(float));
    for (int i = 0; i < O * I; i++) {
        wv[i] = (float)((i * 7) % 23 - 11) / 8.0f; /* exact in bf16 */
        xv[i] = (float)((i * 5) % 19 - 9) / 3.0f;
        uint16_t h = f32_to_bf16(wv[i]);
        memcpy(data + 2 * (size_t)i, &h, 2);
        memcpy(data + wb + 4 * (size_t)i, &xv[i], 4);
    }
    const float vv[5] = {1.5f, -2.0f, 0.25f, 3.0f, -0.5f};
    memcpy(data + wb + xb, vv, vb);
    char *p = tmp("odd.safetensors");
    write_file(p, buf, total);
    free(buf);

    tensor *ts = NULL;
    int n = 0, cap = 0;
    safetensors_read(p, &ts, &n, &cap);
    CHECK(n == 3);
    tensor *w = NULL, *x = NULL, *v = NULL;
    for (int k = 0; k < n; k++) {
        CHECK(ts[k].map != NULL); /* in the mapping, not copied */
        CHECK(!tensor_aligned(&ts[k]));
        w = !strcmp(ts[k].name, "w") ? &ts[k] : w;
        x = !strcmp(ts[k].name, "x") ? &ts[k] : x;
        v = !strcmp(ts[k].name, "v") ? &ts[k] : v;
    }
    CHECK(w && x && v && w->dtype == DTYPE_BF16 && x->dtype == DTYPE_F32);
    if (!w || !x || !v)
        return;
    float *got = xmalloc((size_t)O * I * sizeof(float));
    tensor_get_f32(w, 0, O * I, got);
    CHECK(!memcmp(got, wv, (size_t)O * I * sizeof(float)));
    tensor_get_f32(x, 1, O * I - 1, got);
    CHECK(!memcmp(got, xv + 1, (size_t)(O * I - 1) * sizeof(float)));

    /* products: out = in @ W^T and din = dout @ W against loops in double */
    float in[N * I], out[N * O], dout[N * O], din[N * I];
    for (int i = 0; i < N * I; i++)
        in[i] = (float)(i % 7 - 3) * 0.5f;
    for (int i = 0; i < N * O; i++)
        dout[i] = (float)(i % 5 - 2) * 0.25f;
    double worst = 0;
    for (int which = 0; which < 2; which++) {
        const tensor *m = which ? x : w;
        const float *ref = which ? xv : wv;
        matmul_forward(out, in, m, NULL, N);
        memset(din, 0, sizeof din);
        matmul_backward(din, NULL, NULL, dout, in, m, N);
        for (int r = 0; r < N; r++) {
            for (int o = 0; o < O; o++) {
                double s = 0;
                for (int i = 0; i < I; i++)
                    s += (double)in[r * I + i] * ref[o * I + i];
                worst = fmax(worst, fabs(out[r * O + o] - s));
            }
            for (int i = 0; i < I; i++) {
                double s = 0;
                for (int o = 0; o < O; o++)
                    s += (double)dout[r * O + o] * ref[o * I + i];
                worst = fmax(worst, fabs(din[r * I + i] - s));
            }
        }
    }
    CHECK(worst < 1e-4);

    /* written in place through aligned blocks; a vector made fp32 gets its own aligned buffer */
    const float three = 3.0f;
    tensor_set_f32(x, 5, 1, &three);
    float back;
    tensor_get_f32(x, 5, 1, &back);
    CHECK(back == 3.0f);
    tensor_convert(v, DTYPE_F32);
    CHECK(v->map == NULL && tensor_aligned(v) && !memcmp(tensor_vector(v), vv, sizeof vv));
    free(got);
    free(wv);
    free(xv);
    tensors_free(ts, n);
    free(p);
}

/* A hand-made file: header text, then nbytes of zero data. */
static char *write_raw_safetensors(const char *name, const char *header, size_t nbytes)
{
    size_t hl = strlen(header);
    uint8_t *buf = xcalloc(8 + hl + nbytes, 1);
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(buf + 8, header, hl);
    char *p = tmp(name);
    write_file(p, buf, 8 + hl + nbytes);
    free(buf);
    return p;
}

static void read_st(void *arg)
{
    tensor *ts = NULL;
    int n = 0, cap = 0;
    safetensors_read(arg, &ts, &n, &cap);
}

/* tensor_shape_numel against exact products: 2^40 elements is the limit, whatever
 * the dimensions' product would be in 64 bits (2^80 and 2^64 wrap to 0 there) */
static void test_shape_numel(void)
{
    const int64_t M = (int64_t)1 << 40;
    CHECK(tensor_shape_numel(1, (int64_t[]){M}) == M);
    CHECK(tensor_shape_numel(1, (int64_t[]){M + 1}) == -1);
    CHECK(tensor_shape_numel(2, (int64_t[]){1 << 20, 1 << 20}) == M);
    CHECK(tensor_shape_numel(2, (int64_t[]){(1 << 20) + 1, 1 << 20}) == -1);
    CHECK(tensor_shape_numel(2, (int64_t[]){M, 1}) == M);
    CHECK(tensor_shape_numel(2, (int64_t[]){M, 2}) == -1);
    CHECK(tensor_shape_numel(2, (int64_t[]){M, M}) == -1);
    CHECK(tensor_shape_numel(2, (int64_t[]){(int64_t)1 << 32, (int64_t)1 << 32}) == -1);
    CHECK(tensor_shape_numel(2, (int64_t[]){INT64_MAX, INT64_MAX}) == -1);
    CHECK(tensor_shape_numel(2, (int64_t[]){0, 5}) == 0);
    CHECK(tensor_shape_numel(2, (int64_t[]){0, M + 1}) == -1);
    CHECK(tensor_shape_numel(2, (int64_t[]){3, -1}) == -1);
    CHECK(tensor_shape_numel(2, (int64_t[]){4096, 11008}) == 4096 * 11008);
    CHECK(tensor_shape_numel(0, NULL) == 1);
}

/* Whether the raw safetensors file write_raw_safetensors makes of these
 * arguments is refused with msg (NULL: any message). */
static bool raw_st_dies(const char *name, const char *header, size_t data, const char *msg)
{
    char *p = write_raw_safetensors(name, header, data);
    bool dies = dies_with(read_st, p, p, msg);
    free(p);
    return dies;
}

static void test_safetensors_errors(void)
{
    CHECK(raw_st_dies("i8.safetensors", "{\"w\":{\"dtype\":\"I8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2,
                      "tensor w has dtype I8"));
    CHECK(raw_st_dies("f64.safetensors", "{\"x.y\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8,
                      "tensor x.y has dtype F64"));
    CHECK(raw_st_dies("3d.safetensors", "{\"c\":{\"dtype\":\"F32\",\"shape\":[1,1,1],\"data_offsets\":[0,4]}}", 4,
                      "3 dimensions"));
    CHECK(raw_st_dies("span.safetensors", "{\"c\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 8,
                      "data_offsets"));
    /* each dimension within 2^40, their product not (it overflowed 64 bits before it was checked) */
    CHECK(raw_st_dies("2p80.safetensors",
                      "{\"w\":{\"dtype\":\"F32\",\"shape\":[1099511627776,1099511627776],\"data_offsets\":[0,4]}}",
                      4, "tensor w is too large (more than 2^40 elements)"));
    CHECK(raw_st_dies("2p64.safetensors",
                      "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,0]}}", 4,
                      "too large"));
    CHECK(raw_st_dies("empty-wide.safetensors",
                      "{\"w\":{\"dtype\":\"F32\",\"shape\":[0,1099511627777],\"data_offsets\":[0,0]}}", 4,
                      "too large"));
    CHECK(raw_st_dies("garbage.safetensors", "{not json", 0, "header"));
    CHECK(raw_st_dies("dup.safetensors",
                      "{\"c\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                      "\"c\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
                      4, NULL));

    /* a valid file cut short: in the data, and in the header */
    tensor t;
    make_tensor(&t, "w", 2, 16, 16);
    memset(t.data, 0, 16 * 16 * 4);
    char *p = tmp("cut.safetensors");
    safetensors_write(p, &t, 1, DTYPE_F32, NULL);
    struct stat st;
    stat(p, &st);
    CHECK(truncate(p, st.st_size - 3) == 0);
    CHECK(dies_with(read_st, p, p, "truncated"));
    CHECK(truncate(p, 20) == 0);
    CHECK(dies_with(read_st, p, p, "not a safetensors file"));
    CHECK(truncate(p, 5) == 0);
    CHECK(dies_with(read_st, p, p, "too short"));
    free(p);
    free(t.name);
    free(t.data);
}

/* ---- configs ---- */

static void parse_config_text(void *arg)
{
    char *p = tmp("cfg-bad.json");
    write_file(p, arg, strlen(arg));
    model m;
    model_load(&m, p, NULL);
    free(p);
}

#define HEADS_FFN "\"num_attention_heads\":8,\"intermediate_size\":128}"
#define BASE "\"model_type\":\"llama\",\"hidden_size\":64,\"num_hidden_layers\":3,\"vocab_size\":100"

static void test_config_errors(void)
{
    static const struct {
        const char *json, *needle;
    } cases[] = {
        {"{\"model_type\":\"llama\",\"num_hidden_layers\":3,\"vocab_size\":100," HEADS_FFN,
         "missing required key \"hidden_size\""},
        {"{" BASE ",\"intermediate_size\":128}", "num_attention_heads"},
        {"{" BASE ",\"num_attention_heads\":8}", "intermediate_size"},
        {"{\"hidden_size\":64,\"num_hidden_layers\":3,\"vocab_size\":100," HEADS_FFN, "model_type"},
        {"{\"model_type\":\"gpt2\",\"hidden_size\":64,\"num_hidden_layers\":3,\"vocab_size\":100,"
         HEADS_FFN, "unsupported model_type \"gpt2\""},
        {"{" BASE ",\"num_attention_heads\":8,\"num_key_value_heads\":3,\"intermediate_size\":128}",
         "does not divide"},
        {"{" BASE ",\"num_attention_heads\":8,\"intermediate_size\":[128,128]}", "has 2 values"},
        {"{" BASE ",\"num_attention_heads\":8,\"intermediate_size\":-5}", "negative"},
        {"{" BASE ",\"num_attention_heads\":8,\"intermediate_size\":[128,-1,3]}", "negative"},
        {"{\"model_type\":\"llama\",\"hidden_size\":0,\"num_hidden_layers\":3,\"vocab_size\":100,"
         HEADS_FFN, "hidden_size must be positive"},
        {"{\"model_type\":\"llama\",\"hidden_size\":64,\"num_hidden_layers\":0,\"vocab_size\":100,"
         HEADS_FFN, "num_hidden_layers must be from 1 to 4096"},
        {"{" BASE ",\"num_attention_heads\":[8,0,8],\"num_key_value_heads\":[8,2,8],\"head_dim\":8,"
         "\"intermediate_size\":128}", "0 attention heads"},
        {"{" BASE ",\"num_attention_heads\":[8,4,8],\"num_key_value_heads\":[8,0,8],\"head_dim\":8,"
         "\"intermediate_size\":128}", "0 key/value heads"},
        {"{" BASE ",\"num_attention_heads\":[8,4,8],\"intermediate_size\":128}", "head_dim"},
        {"{" BASE ",\"num_attention_heads\":6,\"intermediate_size\":128}", "not a multiple"},
        {"{" BASE ",\"num_attention_heads\":8,\"intermediate_size\":128,\"hidden_act\":\"gelu\"}",
         "hidden_act"},
        {"{" BASE ",\"num_attention_heads\":8,\"intermediate_size\":128,\"rope_style\":\"weird\"}",
         "rope_style"},
        {"{" BASE ",\"num_attention_heads\":8,\"intermediate_size\":128,\"tie_word_embeddings\":\"yes\"}",
         "tie_word_embeddings"},
        {"{" BASE ",\"num_attention_heads\":8,\"intermediate_size\":128.5}", "intermediate_size"},
        {"{" BASE ",\"num_attention_heads\":8,\"intermediate_size\":128,\"rope_scaling\":{\"type\":\"linear\"}}",
         "rope_scaling"},
        {"{" BASE ",\"num_attention_heads\":8,\"intermediate_size\":128,\"rms_norm_eps\":-1}",
         "rms_norm_eps"},
        {"[1, 2]", "not a JSON object"},
        {"{\"model_type\": ", "cfg-bad.json:1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        bool ok = dies_with(parse_config_text, (void *)cases[i].json, "cfg-bad.json", cases[i].needle);
        CHECK(ok);
        if (!ok)
            fprintf(stderr, "    (case %zu)\n", i);
    }
}

static bool same_config(const model_config *a, const model_config *b)
{
    bool same = !strcmp(a->model_type, b->model_type) && a->dim == b->dim &&
                a->n_layers == b->n_layers && a->vocab == b->vocab && a->head_dim == b->head_dim &&
                a->max_seq == b->max_seq && a->norm_eps == b->norm_eps &&
                a->rope_theta == b->rope_theta && a->rope_style == b->rope_style &&
                a->tied == b->tied && a->qkv_bias == b->qkv_bias && a->bos_id == b->bos_id &&
                a->eos_id == b->eos_id;
    for (int l = 0; same && l < a->n_layers; l++)
        same = a->n_heads[l] == b->n_heads[l] && a->n_kv_heads[l] == b->n_kv_heads[l] &&
               a->ffn_dim[l] == b->ffn_dim[l];
    return same;
}

static void test_config_round_trip(void)
{
    const char *text =
        "{\"model_type\":\"qwen2\",\"hidden_size\":48,\"num_hidden_layers\":4,\"vocab_size\":77,"
        "\"num_attention_heads\":[6,0,3,6],\"num_key_value_heads\":[2,0,1,2],\"head_dim\":8,"
        "\"intermediate_size\":[100,50,0,100],\"rms_norm_eps\":1e-05,\"rope_theta\":500000.0,"
        "\"tie_word_embeddings\":true,\"rope_style\":\"interleaved\",\"eos_token_id\":[7,8],"
        "\"bos_token_id\":null,\"architectures\":[\"Qwen2ForCausalLM\"],\"sliding_window\":4096,"
        "\"torch_dtype\":\"bfloat16\"}";
    json_t *j = json_loads(text, 0, NULL);
    model_config c;
    config_from_json(&c, j, "test");
    CHECK(!strcmp(c.model_type, "qwen2"));
    CHECK(c.qkv_bias); /* qwen2 */
    CHECK(c.n_heads[1] == 0 && c.n_kv_heads[2] == 1 && c.ffn_dim[2] == 0);
    CHECK(c.rope_style == ROPE_INTERLEAVED && c.tied);
    CHECK(c.eos_id == 7 && c.bos_id == -1);
    CHECK(c.norm_eps == 1e-5f && c.rope_theta == 500000.0f);
    CHECK(c.max_seq == 2048);

    json_t *extra = config_extra(j);
    CHECK(json_object_size(extra) == 3);
    CHECK(json_object_get(extra, "sliding_window") && json_object_get(extra, "architectures"));
    CHECK(!json_object_get(extra, "hidden_size"));
    json_decref(extra);

    json_t *out = config_to_json(&c);
    CHECK(json_is_array(json_object_get(out, "num_attention_heads")));
    CHECK(json_is_array(json_object_get(out, "intermediate_size")));
    CHECK(json_integer_value(json_object_get(out, "hidden_size")) == 48);
    model_config c2;
    config_from_json(&c2, out, "test2");
    CHECK(same_config(&c, &c2));
    char *s1 = config_canonical(&c), *s2 = config_canonical(&c2);
    CHECK(!strcmp(s1, s2));
    /* floats are written as the shortest decimal that reads back to the same float */
    json_t *back = json_loads(s1, 0, NULL);
    CHECK(json_real_value(json_object_get(back, "rms_norm_eps")) == 1e-5);
    CHECK(json_real_value(json_object_get(back, "rope_theta")) == 500000.0);
    json_decref(back);
    CHECK(strstr(s1, "\"num_attention_heads\":[6,0,3,6]"));
    free(s1);
    free(s2);
    json_decref(out);
    config_free(&c2);

    /* equal per-layer values become scalars */
    for (int l = 0; l < 4; l++) {
        c.n_heads[l] = 6;
        c.n_kv_heads[l] = 2;
        c.ffn_dim[l] = 64;
    }
    out = config_to_json(&c);
    CHECK(json_integer_value(json_object_get(out, "num_attention_heads")) == 6);
    CHECK(json_integer_value(json_object_get(out, "num_key_value_heads")) == 2);
    CHECK(json_integer_value(json_object_get(out, "intermediate_size")) == 64);
    config_from_json(&c2, out, "test3");
    CHECK(same_config(&c, &c2));
    config_free(&c2);
    json_decref(out);

    /* a copy is deep */
    config_copy(&c2, &c);
    c2.n_heads[0] = 3;
    CHECK(c.n_heads[0] == 6);
    config_free(&c2);
    config_free(&c);
    json_decref(j);
}

static void test_bare_config(void)
{
    char *p = data_path("configs/llama-7b.json");
    model m;
    model_load(&m, p, NULL);
    CHECK(!m.has_weights && m.n_tensors == 0);
    CHECK(m.cfg.dim == 4096 && m.cfg.n_layers == 32 && m.cfg.ffn_dim[31] == 11008);
    CHECK(m.cfg.head_dim == 128 && m.cfg.n_kv_heads[0] == 32 && !m.cfg.tied);
    CHECK(m.cfg.rope_style == ROPE_HALF && m.cfg.norm_eps == 1e-6f && m.cfg.max_seq == 2048);
    CHECK(config_param_count(&m.cfg) == 6738415616LL); /* LLaMA-7B */
    CHECK(json_object_get(m.extra_config, "torch_dtype") != NULL);
    /* the fingerprint of a bare config is that of its canonical config alone */
    char fp[17], want[17];
    model_fingerprint(&m, fp);
    char *s = config_canonical(&m.cfg);
    snprintf(want, sizeof want, "%016llx", (unsigned long long)XXH64(s, strlen(s), 0));
    CHECK(!strcmp(fp, want));
    free(s);
    model_free(&m);
    free(p);
}

/* ---- random models, folders, binding, fingerprints ---- */

static void het_config(model_config *c, bool tied, bool bias)
{
    fixture_shape sh = {16, 3, 32, 6, (const int[]){4, 2, 0}, (const int[]){2, 1, 0}, (const int[]){24, 0, 8},
                        tied, bias, false, false, ROPE_HALF};
    fixture_config(c, &sh);
}

/* The weight table (model.h) against what the rest derives from it: every field
 * is its slot; binding points each slot at the tensor of that name, present
 * exactly where the config implies it; the LoRA targets are the seven linear
 * maps in the forward's order; the dataflow graph names exactly the model's
 * tensors. */
static void test_weight_table(void)
{
    model_config c;
    het_config(&c, false, true);
    c.o_bias = c.down_bias = true;
    model m;
    model_init_random(&m, &c, 9);
    layer_weights *w = &m.layers[0];
#define SLOT_IS_FIELD(id, field, rows, cols, part, opt, lora, gguf) CHECK(&w->field == &w->slot[LW_##id]);
    LAYER_WEIGHTS(SLOT_IS_FIELD)
#undef SLOT_IS_FIELD
    CHECK(&m.embed == &m.outer[MW_EMBED] && &m.final_norm == &m.outer[MW_FINAL_NORM] &&
          &m.lm_head == &m.outer[MW_LM_HEAD]);
    int bound = 0;
    for (int l = 0; l < c.n_layers; l++)
        for (int id = 0; id < LW_COUNT; id++) {
            char name[160];
            int64_t shape[2];
            layer_weight_name(&c, name, sizeof name, l, id);
            int ndim = layer_weight_shape(&c, l, id, shape);
            const tensor *t = model_tensor(&m, name);
            CHECK(m.layers[l].slot[id] == t);
            CHECK((ndim > 0) == (t != NULL));
            if (t && ndim) {
                CHECK(t->ndim == ndim && t->shape[0] == shape[0] && (ndim == 1 || t->shape[1] == shape[1]));
                bound++;
            }
        }
    CHECK(bound == m.n_tensors - 3); /* all but embedding, final norm, LM head */
    /* LLaMA's seven maps, then the fused ones (ChatGLM's; LLaMA has none) */
    static const char *const targets[] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                          "down_proj", NULL, NULL};
    static const int maps[] = {LW_Q, LW_K, LW_V, LW_O, LW_GATE, LW_UP, LW_DOWN, LW_QKV, LW_GATE_UP};
    CHECK(LORA_TARGET_COUNT == 9);
    for (int t = 0; t < LORA_TARGET_COUNT; t++) {
        const char *name = lora_target_name(ARCH_LLAMA, t);
        CHECK(targets[t] ? name && !strcmp(name, targets[t]) : !name);
        CHECK(lora_target_of(maps[t]) == t);
    }
    CHECK(lora_target_of(LW_ATTN_NORM) < 0 && lora_target_of(LW_BQ) < 0 && lora_target_of(LW_BDOWN) < 0);
    graph g;
    graph_model(&c, &g);
    bool *named = xcalloc((size_t)m.n_tensors, sizeof *named);
    int unknown = 0;
    for (int i = 0; i < g.n_ops; i++) {
        const char *ws[2] = {g.ops[i].weight, g.ops[i].bias};
        for (int k = 0; k < 2; k++) {
            if (!ws[k])
                continue;
            const tensor *t = model_tensor(&m, ws[k]);
            if (t)
                named[t - m.tensors] = true;
            else
                unknown++;
        }
    }
    int unnamed = 0;
    for (int i = 0; i < m.n_tensors; i++)
        unnamed += !named[i];
    CHECK(unknown == 0 && unnamed == 0);
    free(named);
    graph_free(&g);
    model_free(&m);
    config_free(&c);
}

static void test_random_models(void)
{
    model_config c;
    het_config(&c, false, true);
    model m, m2;
    model_init_random(&m, &c, 7);
    model_init_random(&m2, &c, 7);
    CHECK(m.has_weights);
    /* layer 0: full, with biases; layer 1: no MLP; layer 2: no attention */
    CHECK(m.layers[0].wq && m.layers[0].bq && m.layers[0].w_up && m.layers[0].attn_norm);
    CHECK(m.layers[1].wq && !m.layers[1].w_gate && !m.layers[1].ffn_norm);
    CHECK(!m.layers[2].wq && !m.layers[2].bk && !m.layers[2].attn_norm && m.layers[2].w_down);
    CHECK(m.lm_head && m.lm_head != m.embed);
    tensor *k1 = model_tensor(&m, "model.layers.1.self_attn.k_proj.weight");
    CHECK(k1 && k1->shape[0] == 6 && k1->shape[1] == 16);
    CHECK(model_tensor(&m, "model.layers.1.mlp.up_proj.weight") == NULL);
    int64_t total = 0;
    for (int i = 0; i < m.n_tensors; i++) {
        total += m.tensors[i].numel;
        if (i)
            CHECK(strcmp(m.tensors[i - 1].name, m.tensors[i].name) < 0);
    }
    CHECK(total == config_param_count(&c));
    /* by hand: embed+head 2*32*16, norm 16, layer 0 attention 16 + 24*16*2 + 6*16*2 + 24*3 ...  */
    int64_t l0 = 16 + 24 * 16 + 12 * 16 * 2 + 16 * 24 + 24 + 12 + 12 + 16 + 3 * 24 * 16;
    int64_t l1 = 16 + 12 * 16 + 6 * 16 * 2 + 16 * 12 + 12 + 6 + 6;
    int64_t l2 = 16 + 3 * 8 * 16;
    CHECK(total == 2 * 32 * 16 + 16 + l0 + l1 + l2);

    char a[17], b[17];
    model_fingerprint(&m, a);
    model_fingerprint(&m2, b);
    CHECK(!strcmp(a, b));
    model_fingerprint(&m, b);
    CHECK(!strcmp(a, b));
    float old = tensor_f32(m.layers[1].wv)[5];
    tensor_f32(m.layers[1].wv)[5] = nextafterf(old, INFINITY);
    model_fingerprint(&m, b);
    CHECK(strcmp(a, b) != 0);
    tensor_f32(m.layers[1].wv)[5] = old;
    model_fingerprint(&m, b);
    CHECK(!strcmp(a, b));
    /* the config is part of the identity */
    m.cfg.rope_theta = 20000;
    model_fingerprint(&m, b);
    CHECK(strcmp(a, b) != 0);
    m.cfg.rope_theta = 10000;

    /* another seed differs; a tensor does not depend on the other layers' shapes */
    model m3;
    model_init_random(&m3, &c, 8);
    model_fingerprint(&m3, b);
    CHECK(strcmp(a, b) != 0);
    model_free(&m3);
    c.ffn_dim[1] = 40;
    model_init_random(&m3, &c, 7);
    tensor *x = model_tensor(&m3, "model.layers.0.self_attn.q_proj.weight");
    CHECK(x && !memcmp(x->data, m.layers[0].wq->data, (size_t)x->numel * 4));
    model_free(&m3);

    /* tied: no lm_head tensor, lm_head is the embedding */
    config_free(&c);
    het_config(&c, true, false);
    model_init_random(&m3, &c, 7);
    CHECK(m3.lm_head == m3.embed && !model_tensor(&m3, "lm_head.weight"));
    CHECK(!m3.layers[0].bq);
    model_free(&m3);

    model_free(&m);
    model_free(&m2);
    config_free(&c);
}

static model g_model; /* for the binding failures below */

static void bind_global(void *arg)
{
    (void)arg;
    model_bind(&g_model);
}

static void test_bind_errors(void)
{
    model_config c;
    het_config(&c, false, false);
    char fp0[17], fp1[17];

    model_init_random(&g_model, &c, 3);
    model_fingerprint(&g_model, fp0);
    /* ignored: rotary buffers */
    int64_t shape[2] = {3, 0};
    model_new_tensor(&g_model, "model.layers.0.self_attn.rotary_emb.inv_freq", 1, shape);
    model_bind(&g_model);
    model_fingerprint(&g_model, fp1);
    CHECK(!strcmp(fp0, fp1));
    /* unexpected */
    model_new_tensor(&g_model, "model.layers.0.self_attn.o_proj.bias", 1, (int64_t[2]){16, 0});
    CHECK(dies_with(bind_global, NULL, "random model", "unexpected tensor model.layers.0.self_attn.o_proj.bias"));
    model_free(&g_model);

    /* missing */
    model_init_random(&g_model, &c, 3);
    tensor *t = model_tensor(&g_model, "model.layers.1.self_attn.v_proj.weight");
    free(t->name);
    t->name = xstrdup("zzz");
    CHECK(dies_with(bind_global, NULL, "missing tensor model.layers.1.self_attn.v_proj.weight", NULL));
    model_free(&g_model);

    /* wrong shape */
    model_init_random(&g_model, &c, 3);
    t = model_tensor(&g_model, "model.layers.0.mlp.up_proj.weight");
    t->shape[0] = 16;
    t->shape[1] = 24;
    CHECK(dies_with(bind_global, NULL, "up_proj.weight has shape [16, 24], but the config implies [24, 16]", NULL));
    model_free(&g_model);

    /* a NaN */
    model_init_random(&g_model, &c, 3);
    tensor_f32(g_model.layers[0].w_down)[17] = NAN;
    CHECK(dies_with(bind_global, NULL, "down_proj.weight has a non-finite value", "index 17"));
    model_free(&g_model);

    /* untied config without lm_head */
    model_init_random(&g_model, &c, 3);
    t = model_tensor(&g_model, "lm_head.weight");
    free(t->name);
    t->name = xstrdup("model.embed_tokens.weight");
    CHECK(dies_with(bind_global, NULL, "appears twice", NULL));
    model_free(&g_model);

    /* tied config: an lm_head equal to the embedding is dropped, a different one refused */
    config_free(&c);
    het_config(&c, true, false);
    model_init_random(&g_model, &c, 3);
    model_fingerprint(&g_model, fp0);
    int64_t vs[2] = {32, 16};
    float *embed = xmalloc(32 * 16 * 4);
    memcpy(embed, g_model.embed->data, 32 * 16 * 4); /* model_new_tensor moves the tensors */
    t = model_new_tensor(&g_model, "lm_head.weight", 2, vs);
    memcpy(t->data, embed, 32 * 16 * 4);
    free(embed);
    model_bind(&g_model);
    model_fingerprint(&g_model, fp1);
    CHECK(!strcmp(fp0, fp1) && !model_tensor(&g_model, "lm_head.weight"));
    t = model_new_tensor(&g_model, "lm_head.weight", 2, vs);
    memset(t->data, 0, 32 * 16 * 4);
    CHECK(dies_with(bind_global, NULL, "lm_head.weight differs", NULL));
    model_free(&g_model);
    config_free(&c);
}

static bool count_files(const char *dir, const char *suffix, int want)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        size_t a = strlen(e->d_name), b = strlen(suffix);
        n += a >= b && !strcmp(e->d_name + a - b, suffix);
    }
    if (d)
        closedir(d);
    return n == want;
}

static void test_folders(void)
{
    model_config c;
    het_config(&c, false, true);
    model m;
    model_init_random(&m, &c, 11);
    json_object_set_new(m.extra_config, "architectures", json_pack("[s]", "LlamaForCausalLM"));
    char fp[17], fp1[17], fp3[17];
    model_fingerprint(&m, fp);

    char *d1 = tmp("one"), *d3 = tmp("three"), *db = tmp("bf16");
    hf_write_folder(&m, d1, DTYPE_F32, 1);
    hf_write_folder(&m, d3, DTYPE_F32, 3);
    CHECK(count_files(d1, ".safetensors", 1));
    CHECK(count_files(d3, ".safetensors", 3));
    char *idx = path_join(d3, "model.safetensors.index.json");
    CHECK(path_exists(idx));

    model a, b;
    model_load(&a, d1, NULL);
    model_load(&b, d3, NULL);
    model_fingerprint(&a, fp1);
    model_fingerprint(&b, fp3);
    CHECK(!strcmp(fp, fp1));
    CHECK(!strcmp(fp, fp3));
    CHECK(a.n_tensors == m.n_tensors && b.n_tensors == m.n_tensors);
    CHECK(json_object_get(b.extra_config, "architectures") != NULL);
    CHECK(!strcmp(json_string_value(json_object_get(b.extra_config, "torch_dtype")), "float32"));
    CHECK(!strcmp(a.source, d1));
    model_free(&a);

    /* bf16 storage: each value is the bf16 rounding of the original */
    hf_write_folder(&m, db, DTYPE_BF16, 2);
    model_load(&a, db, NULL);
    int bad = 0;
    for (int i = 0; i < m.n_tensors; i++) {
        tensor *t = model_tensor(&a, m.tensors[i].name);
        CHECK(t && t->stored == DTYPE_BF16);
        float *v = t ? wide_values(t) : NULL;
        for (int64_t e = 0; t && e < t->numel; e++)
            bad += v[e] != ref_to_bf16(tensor_f32(&m.tensors[i])[e]);
        free(v);
    }
    CHECK(bad == 0);
    model_free(&a);

    /* a shard that disagrees with the index */
    char *shard = path_join(d3, "model-00002-of-00003.safetensors");
    CHECK(unlink(shard) == 0);
    CHECK(dies_with(load_path, d3, "model-00002-of-00003.safetensors", NULL));
    free(shard);
    /* a folder without weights */
    char *st = path_join(d1, "model.safetensors");
    CHECK(unlink(st) == 0);
    CHECK(dies_with(load_path, d1, d1, "no model.safetensors"));
    free(st);

    model_free(&b);
    model_free(&m);
    config_free(&c);
    free(idx);
    free(d1);
    free(d3);
    free(db);
}

/* A checkpoint stream written and read back is the same model, from a file and
 * from stdin. */
static void load_stdin_and_compare(void *arg)
{
    const char **a = arg;
    if (!freopen(a[0], "rb", stdin))
        _exit(3);
    model m;
    model_load(&m, "-", NULL);
    char fp[17];
    model_fingerprint(&m, fp);
    if (strcmp(fp, a[1]))
        _exit(4);
    die("loaded %s", m.source); /* exit 1 with a message: the success signal */
}

/* The random heterogeneous model of the checkpoint tests (seed 5), and its fingerprint. */
static void het_model(model_config *c, model *m, char fp[17])
{
    het_config(c, false, true);
    model_init_random(m, c, 5);
    model_fingerprint(m, fp);
}

static void test_checkpoint(void)
{
    model_config c;
    model m, r;
    char fp[17], fp2[17];
    het_model(&c, &m, fp);
    char *p = tmp("m.pare");
    char *argv[] = {"test_model"};
    checkpoint_write(&m, p, 1, argv, NULL);
    model_load(&r, p, NULL);
    model_fingerprint(&r, fp2);
    CHECK(!strcmp(fp, fp2));
    CHECK(r.has_weights && r.layers[2].wq == NULL);
    model_free(&r);
    const char *args[2] = {p, fp};
    CHECK(dies_with(load_stdin_and_compare, args, "loaded stdin", NULL));
    free(p);
    model_free(&m);
    config_free(&c);
}

/* ---- one pass over the values: the check and the fingerprint ---- */

/* m's tensors as a checkpoint at path, in name order or reversed (the stream
 * format allows any record order), the value at flat index bad of tensor `bad_name`
 * replaced by NaN when bad_name is set */
static void write_checkpoint_order(const model *m, const char *path, bool reversed, const char *bad_name,
                                   int64_t bad)
{
    stream_writer w;
    stream_writer_open(&w, path);
    char *argv[] = {"test_model"};
    stream_write_header(&w, "checkpoint", 1, argv, 1);
    mp_pack_str(&w.pk, "config");
    json_t *config = model_config_json(m);
    mp_pack_json(&w.pk, config);
    json_decref(config);
    stream_end_record(&w);
    for (int k = 0; k < m->n_tensors; k++) {
        const tensor *t = &m->tensors[reversed ? m->n_tensors - 1 - k : k];
        float *v = xmalloc((size_t)t->numel * sizeof *v);
        tensor_get_f32(t, 0, t->numel, v);
        if (bad_name && !strcmp(t->name, bad_name))
            v[bad] = NAN;
        stream_begin_record(&w, "tensor", 5);
        mp_pack_kv_str(&w.pk, "name", t->name);
        mp_pack_kv_str(&w.pk, "dtype", "f32");
        mp_pack_str(&w.pk, "shape");
        msgpack_pack_array(&w.pk, (size_t)t->ndim);
        for (int d = 0; d < t->ndim; d++)
            msgpack_pack_int64(&w.pk, t->shape[d]);
        stream_write_payload(&w, "data", v, (size_t)t->numel * sizeof *v);
        free(v);
    }
    stream_writer_close(&w);
}

static model_scan *g_scan; /* for the binding failure below */

static void bind_scanned_global(void *arg)
{
    (void)arg;
    model_bind_scanned(&g_model, g_scan);
}

static void test_scan(void)
{
    model_config c;
    model m, r;
    char fp[17], fp2[17];
    het_model(&c, &m, fp);
    /* binding took the fingerprint in its pass over the values */
    CHECK(!strcmp(m.fingerprint, fp));

    /* a loader's scan that went through the tensors in name order, each whole (the
     * last in two pieces), stands: binding reads the values no more, so a value
     * changed after the scan leaves the fingerprint the scan took */
    model_scan *s = model_scan_begin(&m.cfg);
    for (int k = 0; k < m.n_tensors; k++) {
        const tensor *t = &m.tensors[k];
        int64_t half = k == m.n_tensors - 1 ? t->numel / 2 : t->numel;
        model_scan_values(s, t, 0, half);
        if (half < t->numel)
            model_scan_values(s, t, half, t->numel - half);
    }
    float *v = tensor_f32(m.layers[1].wv);
    float old = v[3];
    v[3] = nextafterf(old, INFINITY);
    model_bind_scanned(&m, s);
    CHECK(!strcmp(m.fingerprint, fp));
    model_fingerprint(&m, fp2);
    CHECK(strcmp(fp2, fp) != 0);
    /* a scan that does not stand: binding scans again, and names the values it binds */
    for (int kind = 0; kind < 4; kind++) {
        s = model_scan_begin(&m.cfg);
        for (int k = 0; k < m.n_tensors; k++) {
            const tensor *t = &m.tensors[kind == 0 ? m.n_tensors - 1 - k : k]; /* 0: out of order */
            if (kind == 1 && k == 2)                                             /* 1: a tensor skipped */
                continue;
            int64_t n = kind == 2 && k == m.n_tensors - 1 ? t->numel - 1 : t->numel; /* 2: the last cut short */
            model_scan_values(s, t, 0, n);
            if (kind == 3 && k == 1) /* 3: a tensor scanned twice */
                model_scan_values(s, t, 0, t->numel);
        }
        m.fingerprint[0] = 0;
        model_bind_scanned(&m, s);
        CHECK(!strcmp(m.fingerprint, fp2));
    }
    v[3] = old;

    /* a non-finite value the scan met is refused by binding, after the checks of
     * names and shapes, naming the tensor and the index */
    model_init_random(&g_model, &c, 5);
    tensor *down = (tensor *)g_model.layers[0].w_down;
    tensor_f32(down)[17] = INFINITY;
    g_scan = model_scan_begin(&c);
    for (int k = 0; k < g_model.n_tensors; k++)
        model_scan_values(g_scan, &g_model.tensors[k], 0, g_model.tensors[k].numel);
    CHECK(dies_with(bind_scanned_global, NULL, "down_proj.weight has a non-finite value (inf) at index 17"));
    tensor_f32(down)[17] = 0;
    model_scan_free(g_scan);
    model_free(&g_model);

    /* changing a bound model's values on purpose clears its fingerprint: the bound
     * fingerprint is then computed */
    model_set_dtype(&m, DTYPE_BF16);
    CHECK(m.fingerprint[0] == 0);
    model_fingerprint(&m, fp2);
    char fp3[17];
    model_bound_fingerprint(&m, fp3);
    CHECK(strcmp(fp2, fp) != 0 && !strcmp(fp3, fp2));
    model_free(&m);

    /* checkpoints: records in name order are scanned as the stream is read; in
     * another order binding scans them; either way the fingerprint is the model's */
    model_init_random(&m, &c, 5);
    char *p = tmp("scan.pare");
    for (int reversed = 0; reversed < 2; reversed++) {
        write_checkpoint_order(&m, p, reversed, NULL, 0);
        model_load(&r, p, NULL);
        CHECK(!strcmp(r.fingerprint, fp));
        model_fingerprint(&r, fp2);
        CHECK(!strcmp(fp2, fp));
        model_free(&r);
        /* a NaN in a record: refused with the tensor and the index */
        write_checkpoint_order(&m, p, reversed, "model.layers.1.self_attn.v_proj.weight", 5);
        CHECK(dies_with(load_path, p, "v_proj.weight has a non-finite value (nan) at index 5"));
    }
    free(p);
    model_free(&m);
    config_free(&c);
}

/* The fingerprint by its definition (pare-stream(5)), in one plain pass here:
 * the canonical config, then for each tensor in name order its name and "f32",
 * each with its NUL, its ndim and shape as 8-byte little-endian integers, and
 * its values as float32 (an fp32 model's, as stored). */
static void fingerprint_by_hand(const model *m, char out[17])
{
    XXH64_state_t *h = XXH64_createState();
    XXH64_reset(h, 0);
    char *cfg = config_canonical(&m->cfg);
    XXH64_update(h, cfg, strlen(cfg));
    free(cfg);
    for (int k = 0; k < m->n_tensors; k++) {
        const tensor *t = &m->tensors[k];
        XXH64_update(h, t->name, strlen(t->name) + 1);
        XXH64_update(h, "f32", 4);
        int64_t dims[3] = {t->ndim, t->shape[0], t->shape[1]};
        for (int d = 0; d <= t->ndim; d++) {
            uint8_t b[8];
            for (int i = 0; i < 8; i++)
                b[i] = (uint8_t)((uint64_t)dims[d] >> (8 * i));
            XXH64_update(h, b, 8);
        }
        XXH64_update(h, t->data, (size_t)t->numel * sizeof(float));
    }
    snprintf(out, 17, "%016llx", (unsigned long long)XXH64_digest(h));
    XXH64_freeState(h);
}

/* Tensors of millions of values, which the scan widens and hashes a block at a
 * time on two threads: the same fingerprint as the plain pass, whether binding
 * took it or model_fingerprint; the first of two non-finite values, in the third
 * block, named at its index. */
static void test_scan_blocks(void)
{
    fixture_shape sh = {256, 1, 10000, 64, (const int[]){4}, (const int[]){2}, (const int[]){1536},
                        false, false, false, false, ROPE_HALF};
    model_config c;
    fixture_config(&c, &sh);
    blas_set_threads(2);
    model m;
    model_init_random(&m, &c, 9);
    CHECK(m.embed->numel == 2560000);
    char want[17], fp[17];
    fingerprint_by_hand(&m, want);
    CHECK(!strcmp(m.fingerprint, want));
    model_fingerprint(&m, fp);
    CHECK(!strcmp(fp, want));
    model_free(&m);

    model_init_random(&g_model, &c, 9);
    tensor_f32(g_model.embed)[2100000] = NAN;
    tensor_f32(g_model.embed)[2400000] = INFINITY;
    CHECK(dies_with(bind_global, NULL, "embed_tokens.weight has a non-finite value (nan) at index 2100000"));
    model_free(&g_model);
    config_free(&c);
    blas_set_threads(0);
}

/* ---- stories260K ---- */

/* floats of the .bin at float offset off (after the 28-byte header) */
static void read_bin_floats(const char *path, int64_t off, float *dst, int64_t n)
{
    FILE *f = fopen(path, "rb");
    if (!f || fseek(f, 28 + off * 4, SEEK_SET) != 0 || fread(dst, 4, (size_t)n, f) != (size_t)n)
        die("cannot read %s", path);
    fclose(f);
}

static void test_llama2c(void)
{
    char *p = data_path("models/stories260K/stories260K.bin");
    char *tp = data_path("models/stories260K/tok512.bin");
    if (!path_exists(p)) {
        fprintf(stderr, "    skipped: %s not found\n", p);
        CHECK(0);
        free(p);
        free(tp);
        return;
    }
    model m;
    model_load(&m, p, tp);
    const model_config *c = &m.cfg;
    CHECK(c->dim == 64 && c->n_layers == 5 && c->vocab == 512 && c->head_dim == 8);
    CHECK(c->n_heads[4] == 8 && c->n_kv_heads[4] == 4 && c->ffn_dim[0] == 172 && c->max_seq == 512);
    CHECK(c->tied && c->rope_style == ROPE_INTERLEAVED && !c->qkv_bias);
    CHECK(c->norm_eps == 1e-5f && c->rope_theta == 10000.0f && c->bos_id == 1 && c->eos_id == 2);
    CHECK(!strcmp(c->model_type, "llama"));
    CHECK(m.n_tensors == 2 + 5 * 9);
    CHECK(m.lm_head == m.embed);
    CHECK(m.tok.size == 6227 && m.tok.format && !strcmp(m.tok.format, "llama2c"));
    /* 260K parameters: tied embedding + 5 layers + final norm */
    CHECK(config_param_count(c) == 512 * 64 + 5 * (2 * 64 + 2 * 64 * 64 + 2 * 32 * 64 + 3 * 172 * 64) + 64);

    /* spot checks against offsets computed here */
    const int64_t V = 512, D = 64, L = 5, KVD = 32, F = 172;
    float *buf = xmalloc(512 * 64 * 4);
    read_bin_floats(p, 0, buf, V * D);
    CHECK(!memcmp(buf, m.embed->data, (size_t)(V * D) * 4));
    int64_t wk_off = V * D + L * D + L * D * D + 3 * KVD * D;
    read_bin_floats(p, wk_off, buf, KVD * D);
    CHECK(!memcmp(buf, m.layers[3].wk->data, (size_t)(KVD * D) * 4));
    int64_t w3_off = V * D + 2 * L * D + 2 * L * D * D + 2 * L * KVD * D + 2 * L * F * D + 4 * F * D;
    read_bin_floats(p, w3_off, buf, F * D);
    CHECK(!memcmp(buf, m.layers[4].w_up->data, (size_t)(F * D) * 4));
    int64_t w2_off = V * D + 2 * L * D + 2 * L * D * D + 2 * L * KVD * D + L * F * D + 1 * D * F;
    read_bin_floats(p, w2_off, buf, D * F);
    CHECK(!memcmp(buf, m.layers[1].w_down->data, (size_t)(D * F) * 4));
    read_bin_floats(p, V * D + 2 * L * D + 2 * L * D * D + 2 * L * KVD * D + 3 * L * F * D, buf, D);
    CHECK(!memcmp(buf, m.final_norm->data, (size_t)D * 4));
    free(buf);

    /* The fingerprint is pinned: it names every stream made from this model, so a
     * change to the canonical config or the hashing must be deliberate. */
    char fp[17];
    model_fingerprint(&m, fp);
    CHECK(!strcmp(fp, STORIES260K_FINGERPRINT));
    CHECK(!strcmp(m.fingerprint, STORIES260K_FINGERPRINT)); /* the one its loading took */
    if (strcmp(fp, STORIES260K_FINGERPRINT))
        fprintf(stderr, "    stories260K fingerprint %s\n", fp);
    model_free(&m);

    /* truncated, or with a byte too many */
    size_t n;
    char *bytes = read_whole_file(p, &n);
    char *cut = tmp("cut.bin");
    write_file(cut, bytes, n - 4);
    CHECK(dies_with(load_path, cut, cut, "does not match its llama2.c header"));
    write_file(cut, bytes, n + 1);
    CHECK(dies_with(load_path, cut, cut, "does not match"));
    write_file(cut, bytes, 20);
    CHECK(dies_with(load_path, cut, cut, "too short"));
    int32_t bad_hdr[7] = {64, 172, 5, 8, 3, 512, 512}; /* 3 kv heads do not divide 8 */
    memcpy(bytes, bad_hdr, sizeof bad_hdr);
    write_file(cut, bytes, n);
    CHECK(dies_with(load_path, cut, cut, "inconsistent"));
    /* untied: vocab_size negative and the classifier appended */
    int32_t untied[7] = {64, 172, 5, 8, 4, -512, 512};
    memcpy(bytes, untied, sizeof untied);
    bytes = xrealloc(bytes, n + 512 * 64 * 4);
    for (int i = 0; i < 512 * 64; i++) {
        float v = (float)i / 1000;
        memcpy(bytes + n + 4 * (size_t)i, &v, 4);
    }
    write_file(cut, bytes, n + 512 * 64 * 4);
    model_load(&m, cut, NULL);
    CHECK(!m.cfg.tied && m.lm_head != m.embed && tensor_f32(m.lm_head)[12345] == 12.345f);
    CHECK(m.tok.size == 0);
    model_free(&m);
    free(cut);
    free(bytes);
    free(p);
    free(tp);
}

/* HF row h*hd + j*hd/2 + i holds Meta row h*hd + 2i + j (see model.c). */
static bool is_half_permutation(const tensor *hft, const tensor *metat, int heads, int hd, int cols,
                                double (*round)(float))
{
    float *hf = wide_values(hft), *meta = wide_values(metat);
    bool ok = true;
    for (int h = 0; h < heads; h++)
        for (int i = 0; i < hd / 2; i++)
            for (int j = 0; j < 2; j++) {
                const float *a = hf + (size_t)(h * hd + j * hd / 2 + i) * cols;
                const float *b = meta + (size_t)(h * hd + 2 * i + j) * cols;
                for (int k = 0; k < cols; k++)
                    ok &= a[k] == (round ? round(b[k]) : b[k]);
            }
    free(hf);
    free(meta);
    return ok;
}

static double identity(float x) { return x; }

static void compare_hf_to_bin(const model *hf, const model *bin, double (*round)(float))
{
    CHECK(hf->n_tensors == bin->n_tensors);
    CHECK(hf->cfg.rope_style == ROPE_HALF && bin->cfg.rope_style == ROPE_INTERLEAVED);
    CHECK(hf->cfg.dim == bin->cfg.dim && hf->cfg.n_kv_heads[0] == bin->cfg.n_kv_heads[0]);
    CHECK(hf->cfg.norm_eps == bin->cfg.norm_eps && hf->cfg.tied == bin->cfg.tied);
    int bad = 0, permuted = 0, plain = 0;
    for (int i = 0; i < bin->n_tensors && i < hf->n_tensors; i++) {
        const tensor *a = &hf->tensors[i], *b = &bin->tensors[i];
        CHECK(!strcmp(a->name, b->name) && a->numel == b->numel);
        bool q = strstr(a->name, "q_proj") != NULL, k = strstr(a->name, "k_proj") != NULL;
        if (q || k) {
            int heads = q ? bin->cfg.n_heads[0] : bin->cfg.n_kv_heads[0];
            bool perm = is_half_permutation(a, b, heads, bin->cfg.head_dim,
                                            (int)a->shape[1], round);
            permuted += perm;
            bad += !perm;
            continue;
        }
        int64_t diff = 0;
        float *av = wide_values(a), *bv = wide_values(b);
        for (int64_t e = 0; e < a->numel; e++)
            diff += av[e] != round(bv[e]);
        free(av);
        free(bv);
        bad += diff != 0;
        plain++;
    }
    CHECK(bad == 0);
    CHECK(permuted == 10);
    CHECK(plain == 2 + 5 * 7);
}

static void test_stories_hf(void)
{
    char *pb = data_path("models/stories260K/stories260K.bin");
    char *ph = data_path("models/stories260K-hf");
    char *ps = data_path("models/stories260K-hf-bf16-sharded");
    if (!path_exists(pb) || !path_exists(ph) || !path_exists(ps)) {
        fprintf(stderr, "    skipped: stories260K data not found\n");
        CHECK(0);
        return;
    }
    model bin, hf, bf;
    model_load(&bin, pb, NULL);
    model_load(&hf, ph, NULL);
    model_load(&bf, ps, NULL);
    compare_hf_to_bin(&hf, &bin, identity);
    compare_hf_to_bin(&bf, &bin, ref_to_bf16);
    CHECK(hf.tensors[0].stored == DTYPE_F32 && bf.tensors[0].stored == DTYPE_BF16);
    CHECK(hf.tok.size == 0);
    model_free(&bin);
    model_free(&hf);
    model_free(&bf);
    free(pb);
    free(ph);
    free(ps);
}

int main(void)
{
    if (!mkdtemp(tmpdir))
        die("cannot create a temporary folder");
    TEST(test_dtype_conversions);
    TEST(test_safetensors_round_trip);
    TEST(test_safetensors_misaligned);
    TEST(test_shape_numel);
    TEST(test_safetensors_errors);
    TEST(test_config_errors);
    TEST(test_config_round_trip);
    TEST(test_bare_config);
    TEST(test_random_models);
    TEST(test_weight_table);
    TEST(test_bind_errors);
    TEST(test_folders);
    TEST(test_checkpoint);
    TEST(test_scan);
    TEST(test_scan_blocks);
    TEST(test_llama2c);
    TEST(test_stories_hf);
    rm_rf(tmpdir);
    return check_report();
}
