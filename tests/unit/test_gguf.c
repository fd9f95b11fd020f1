/* test_gguf.c - the rotary row permutation against its formula, GGUF round trips
 * of random models (llama and deci, biases, tied and untied, f32/f16/bf16), the
 * file layout against the specification's fields read independently, and every
 * refusal (layers llama.cpp cannot run, damaged files, quantized tensors).
 *
 * Letters: D hidden size, L layers, V vocabulary, hd head dim, H heads, KV
 * key/value heads, F MLP width. */
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/util.h"
#include "check.h"
#include "fixture.h"
#include "format/gguf.h"
#include "format/model_load.h"
#include "format/rope_layout.h"
#include "model/model.h"

static char tmpdir[] = "/tmp/pare-test-gguf-XXXXXX";

/* ---- the permutation ---- */

static void test_rope_permutation(void)
{
    /* 2 heads of hd 6, 2 columns: value = row * 10 + column */
    enum { HD = 6, H = 2, C = 2 };
    float half[H * HD * C], inter[H * HD * C], back[H * HD * C];
    for (int r = 0; r < H * HD; r++)
        for (int c = 0; c < C; c++)
            half[r * C + c] = (float)(r * 10 + c);
    rope_permute_rows(inter, half, H * HD, C, HD, ROPE_HALF, ROPE_INTERLEAVED);
    /* interleaved row h*hd + 2i + j holds half row h*hd + j*hd/2 + i */
    int bad = 0;
    for (int h = 0; h < H; h++)
        for (int i = 0; i < HD / 2; i++)
            for (int j = 0; j < 2; j++)
                for (int c = 0; c < C; c++)
                    bad += inter[(h * HD + 2 * i + j) * C + c] != (float)((h * HD + j * HD / 2 + i) * 10 + c);
    CHECK(bad == 0);
    /* written out for head 0: rows 0,3,1,4,2,5 */
    CHECK(inter[0] == 0 && inter[2] == 30 && inter[4] == 10 && inter[6] == 40 && inter[8] == 20 && inter[10] == 50);
    rope_permute_rows(back, inter, H * HD, C, HD, ROPE_INTERLEAVED, ROPE_HALF);
    CHECK(!memcmp(back, half, sizeof half));
}

/* ---- round trips ---- */

static void config(model_config *c, const int *heads, const int *kv, const int *ffn, int L, bool tied)
{
    memset(c, 0, sizeof *c);
    snprintf(c->model_type, sizeof c->model_type, "llama");
    c->dim = 16;
    c->n_layers = L;
    c->vocab = 512;
    c->head_dim = 4;
    c->max_seq = 64;
    c->n_heads = memcpy(xmalloc((size_t)L * sizeof(int)), heads, (size_t)L * sizeof(int));
    c->n_kv_heads = memcpy(xmalloc((size_t)L * sizeof(int)), kv, (size_t)L * sizeof(int));
    c->ffn_dim = memcpy(xmalloc((size_t)L * sizeof(int)), ffn, (size_t)L * sizeof(int));
    c->norm_eps = 1e-5f;
    c->rope_theta = 10000;
    c->tied = tied;
    c->bos_id = 1;
    c->eos_id = 2;
}

static void add_tokenizer(model *m)
{
    char *p = path_join(check_data_dir(), "models/stories260K/tok512.bin");
    size_t n;
    m->tok.data = (uint8_t *)read_whole_file(p, &n);
    m->tok.size = n;
    m->tok.format = xstrdup("llama2c");
    free(p);
}

/* Bytes of a whole file. */
static uint8_t *slurp(const char *path, size_t *n) { return (uint8_t *)read_whole_file(path, n); }

/* First occurrence of needle in p, NULL if none. */
static uint8_t *find_bytes(uint8_t *p, size_t n, const char *needle, size_t k)
{
    for (size_t i = 0; i + k <= n; i++)
        if (!memcmp(p + i, needle, k))
            return p + i;
    return NULL;
}

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* Write, read back, compare: the read model is the written one in the rotary
 * layout of llama.cpp's architecture (the interleaved one for llama and deci, the
 * half one for qwen2 and qwen3), fingerprints equal for f32 (unless a Qwen2 went as
 * deci, which reads back as llama); values equal to the rounding otherwise. A
 * llama3-scaled model's file holds one more tensor, rope_freqs.weight. Matrices
 * read point into the mapped file. */
static void round_trip(model *m, enum dtype dt, const char *arch)
{
    char *p = path_join(tmpdir, "m.gguf");
    gguf_write(m, p, dt);
    model r;
    model_load(&r, p, NULL);
    enum rope_style style = !strncmp(arch, "qwen", 4) ? ROPE_HALF : ROPE_INTERLEAVED;
    CHECK(r.cfg.rope_style == style);
    const rope_scaling_config *rs = &r.cfg.rope_scaling, *ms = &m->cfg.rope_scaling;
    CHECK(rs->type == ms->type);
    CHECK(ms->type == ROPE_SCALING_NONE || rs->factor == ms->factor);
    CHECK(ms->type != ROPE_SCALING_LLAMA3 || (rs->low_freq_factor == ms->low_freq_factor &&
                                               rs->high_freq_factor == ms->high_freq_factor &&
                                               rs->original_max_seq == ms->original_max_seq));
    bool same_type = !strcmp(r.cfg.model_type, m->cfg.model_type);
    CHECK(same_type || (!strcmp(arch, "deci") && !strcmp(m->cfg.model_type, "qwen2")));
    int extra = m->cfg.rope_scaling.type == ROPE_SCALING_LLAMA3;
    model_set_rope_style(m, style);
    CHECK(r.n_tensors == m->n_tensors);
    int bad = 0;
    for (int i = 0; i < r.n_tensors && i < m->n_tensors; i++) {
        const tensor *a = &r.tensors[i], *b = &m->tensors[i];
        CHECK(!strcmp(a->name, b->name) && a->numel == b->numel);
        enum dtype want = b->ndim == 1 ? DTYPE_F32 : dt;
        CHECK(a->stored == want);
        CHECK(a->ndim == 1 || a->map != NULL); /* matrices point into the mapped file, uncopied */
        for (int64_t e = 0; e < a->numel && e < b->numel; e++) {
            float x, got;
            tensor_get_f32(b, e, 1, &x);
            tensor_get_f32(a, e, 1, &got);
            float rounded = want == DTYPE_BF16 ? bf16_to_f32(f32_to_bf16(x))
                            : want == DTYPE_F16 ? f16_to_f32(f32_to_f16(x)) : x;
            bad += got != rounded;
        }
    }
    CHECK(bad == 0);
    if (dt == DTYPE_F32 && same_type) {
        char f1[17], f2[17];
        model_fingerprint(m, f1);
        model_fingerprint(&r, f2);
        CHECK(!strcmp(f1, f2));
    }
    /* the header fields, read here by hand: magic, version 3, counts, first key */
    size_t n;
    uint8_t *b = slurp(p, &n);
    CHECK(n > 64 && !memcmp(b, "GGUF", 4) && b[4] == 3 && b[5] == 0);
    CHECK(le64(b + 8) == (uint64_t)(m->n_tensors + extra));
    CHECK(le64(b + 24) == strlen("general.architecture") && !memcmp(b + 32, "general.architecture", 20));
    CHECK(le64(b + 56) == strlen(arch) && !memcmp(b + 64, arch, strlen(arch)));
    free(b);
    model_free(&r);
    free(p);
}

static void test_round_trips(void)
{
    model_config c;
    model m;
    int h[3] = {4, 4, 4}, kv[3] = {2, 2, 2}, f[3] = {24, 24, 24};
    for (int tied = 0; tied < 2; tied++)
        for (int dt = DTYPE_F32; dt <= DTYPE_BF16; dt++) {
            config(&c, h, kv, f, 3, tied);
            model_init_random(&m, &c, 11 + (uint64_t)dt);
            add_tokenizer(&m);
            round_trip(&m, (enum dtype)dt, "llama");
            model_free(&m);
            config_free(&c);
        }
    /* per-layer widths, a layer without attention, FLAP's output biases */
    int hd[4] = {4, 2, 0, 1}, kvd[4] = {2, 1, 0, 1}, fd[4] = {24, 8, 12, 3};
    config(&c, hd, kvd, fd, 4, false);
    c.o_bias = c.down_bias = true;
    model_init_random(&m, &c, 5);
    add_tokenizer(&m);
    round_trip(&m, DTYPE_F32, "deci");
    model_free(&m);
    config_free(&c);
    /* q/k/v biases with H * hd = D: permuted with their rows */
    config(&c, h, kv, f, 3, true);
    c.qkv_bias = c.o_bias = true;
    model_init_random(&m, &c, 6);
    add_tokenizer(&m);
    round_trip(&m, DTYPE_F16, "llama");
    model_free(&m);
    config_free(&c);
    /* and per-layer q/k/v biases of other widths than the hidden size (deci) */
    int hb[3] = {4, 2, 4}, kb[3] = {2, 1, 2};
    config(&c, hb, kb, f, 3, true);
    c.qkv_bias = true;
    model_init_random(&m, &c, 7);
    add_tokenizer(&m);
    round_trip(&m, DTYPE_F32, "deci");
    model_free(&m);
    config_free(&c);
}

/* Today's models: Llama 3 (llama with rope_freqs; llama3 scaling read back from
 * pare's keys), Qwen2 (qwen2, in the half layout), Qwen3 (qwen3 with its q/k
 * norms); per-layer widths as deci (Llama 3 keeps its rope_freqs, Qwen2 its
 * biases of other widths), and linear scaling through llama.cpp's keys. */
static void test_today(void)
{
    static const char *const arch[FIXTURE_TODAY_COUNT] = {"llama", "qwen2", "qwen3"};
    for (int i = 0; i < FIXTURE_TODAY_COUNT; i++)
        for (int pruned = 0; pruned < 2; pruned++) {
            json_t *j = fixture_config_json(fixture_today[i]);
            if (pruned && i == 2) { /* Qwen3 leaves only with one width for every layer */
                json_object_set_new(j, "num_attention_heads", json_integer(2));
                json_object_set_new(j, "num_key_value_heads", json_integer(1));
            } else if (pruned) {
                json_object_set_new(j, "head_dim", json_integer(i == 1 ? 8 : 16));
                json_object_set_new(j, "num_attention_heads", json_pack("[i,i,i]", 2, 4, 2));
                json_object_set_new(j, "num_key_value_heads", json_pack("[i,i,i]", 1, 2, 1));
            }
            model m;
            fixture_json_model(&m, j, 30 + i);
            add_tokenizer(&m);
            round_trip(&m, pruned ? DTYPE_F32 : DTYPE_BF16, pruned && i < 2 ? "deci" : arch[i]);
            model_free(&m);
            json_decref(j);
        }
    json_t *j = fixture_config_json("tiny-llama3.json");
    json_object_set_new(j, "rope_scaling", json_pack("{s:s, s:f}", "rope_type", "linear", "factor", 4.0));
    model m;
    fixture_json_model(&m, j, 33);
    add_tokenizer(&m);
    round_trip(&m, DTYPE_F32, "llama");
    model_free(&m);
    json_decref(j);
}

/* ---- refusals ---- */

typedef struct {
    int heads[3], kv[3], ffn[3];
    bool qkv_bias, no_tokenizer;
} refusal;

static void write_refused(void *arg)
{
    const refusal *r = arg;
    model_config c;
    model m;
    config(&c, r->heads, r->kv, r->ffn, 3, true);
    c.qkv_bias = r->qkv_bias;
    model_init_random(&m, &c, 1);
    if (!r->no_tokenizer)
        add_tokenizer(&m);
    char *p = path_join(tmpdir, "refused.gguf");
    gguf_write(&m, p, DTYPE_F32);
}

static void read_path(void *arg)
{
    model m;
    model_load(&m, arg, NULL);
}

static void test_refusals(void)
{
    refusal r0 = {{0, 4, 4}, {0, 2, 2}, {24, 24, 24}, false, false};
    CHECK(dies_with(write_refused, &r0, "layer 0 has no attention heads"));
    refusal r1 = {{4, 4, 4}, {2, 2, 2}, {24, 0, 24}, false, false};
    CHECK(dies_with(write_refused, &r1, "layer 1 keeps its attention but has no MLP"));
    refusal r2 = {{4, 4, 0}, {2, 2, 0}, {24, 24, 0}, false, false};
    CHECK(dies_with(write_refused, &r2, "layer 2 has neither attention nor MLP"));
    refusal r4 = {{4, 4, 4}, {2, 2, 2}, {24, 24, 24}, false, true};
    CHECK(dies_with(write_refused, &r4, "no tokenizer"));
    char *p = path_join(tmpdir, "refused.gguf");
    CHECK(!path_exists(p));   /* nothing left behind under the final name */
    free(p);

    /* a good file, then damaged copies of it */
    model_config c;
    model m;
    int h[3] = {4, 4, 4}, kv[3] = {2, 2, 2}, f[3] = {24, 24, 24};
    config(&c, h, kv, f, 3, false);
    model_init_random(&m, &c, 2);
    add_tokenizer(&m);
    char *good = path_join(tmpdir, "good.gguf"), *badp = path_join(tmpdir, "bad.gguf");
    gguf_write(&m, good, DTYPE_F16);
    size_t n;
    uint8_t *b = slurp(good, &n);
    FILE *o = fopen(badp, "wb");
    fwrite(b, 1, n - 100, o);
    fclose(o);
    CHECK(dies_with(read_path, badp, "lies outside the file"));
    o = fopen(badp, "wb");
    fwrite(b, 1, 3000, o);
    fclose(o);
    CHECK(dies_with(read_path, badp, "the file ends early"));
    /* the first tensor's ggml type (after its name, n_dims and 2 dims) made Q4_0 (2) */
    const char *name = "token_embd.weight";
    uint8_t *at = find_bytes(b, n, name, strlen(name));
    CHECK(at != NULL);
    if (at) {
        uint8_t *type = at + strlen(name) + 4 + 16;
        type[0] = 2;
        o = fopen(badp, "wb");
        fwrite(b, 1, n, o);
        fclose(o);
        CHECK(dies_with(read_path, badp, "ggml type 2"));
    }
    /* another architecture */
    uint8_t *arch = find_bytes(b, n, "llama", 5);
    memcpy(arch, "gemma", 5);
    o = fopen(badp, "wb");
    fwrite(b, 1, n, o);
    fclose(o);
    CHECK(dies_with(read_path, badp, "GGUF architecture \"gemma\""));
    free(b);
    free(good);
    free(badp);
    model_free(&m);
    config_free(&c);
}

/* A copy of file src with the first occurrence of from (k bytes) replaced by to
 * (k bytes), written to dst; false if from is not there. */
static bool patched(const char *src, const char *dst, const char *from, const void *to, size_t k)
{
    size_t n;
    uint8_t *b = slurp(src, &n), *at = find_bytes(b, n, from, k);
    if (at) {
        memcpy(at, to, k);
        FILE *o = fopen(dst, "wb");
        fwrite(b, 1, n, o);
        fclose(o);
    }
    free(b);
    return at != NULL;
}

static void write_today(void *arg)
{
    model m;
    fixture_json_model(&m, arg, 5);
    add_tokenizer(&m);
    char *p = path_join(tmpdir, "refused.gguf");
    gguf_write(&m, p, DTYPE_F32);
}

/* Rope scaling and Qwen3 that llama.cpp (or pare reading GGUF) cannot follow. */
static void test_today_refusals(void)
{
    json_t *j = fixture_config_json("tiny-qwen3.json");
    json_object_set_new(j, "num_attention_heads", json_pack("[i,i,i]", 2, 4, 2));
    json_object_set_new(j, "num_key_value_heads", json_pack("[i,i,i]", 1, 2, 1));
    CHECK(dies_with(write_today, j, "the layers differ in width (a pruned Qwen3)", "no q/k norms", NULL));
    json_decref(j);
    j = fixture_config_json("tiny-qwen3.json");
    json_object_set_new(j, "rope_scaling", json_pack("{s:s, s:f, s:f, s:f, s:i}", "rope_type", "llama3", "factor", 8.0,
                                                     "low_freq_factor", 1.0, "high_freq_factor", 4.0,
                                                     "original_max_position_embeddings", 64));
    CHECK(dies_with(write_today, j, "llama3 rope scaling in a Qwen3 model", NULL));
    json_decref(j);

    model m;
    char *good = path_join(tmpdir, "good.gguf"), *bad = path_join(tmpdir, "bad.gguf");
    j = fixture_config_json("tiny-llama3.json");
    fixture_json_model(&m, j, 6);
    add_tokenizer(&m);
    gguf_write(&m, good, DTYPE_F32);
    model_free(&m);
    double four = 4.0;
    CHECK(patched(good, bad, "pare.rope_scaling.rope_type", "pare.rope_scaling.rope_typo", 27));
    CHECK(dies_with(read_path, bad, "tensor rope_freqs.weight", "without pare's llama3 keys", NULL));
    /* the factor key's value (after its type) made 4: the factors no longer follow */
    size_t n;
    uint8_t *b = slurp(good, &n), *at = find_bytes(b, n, "pare.rope_scaling.factor", 24);
    CHECK(at != NULL);
    if (at) {
        uint8_t was[8];
        memcpy(was, at + 24 + 4, 8);
        CHECK(patched(good, bad, (const char *)was, &four, 8));
        CHECK(dies_with(read_path, bad, "rope_freqs.weight[", "but the pare.rope_scaling keys give", NULL));
    }
    free(b);
    json_object_set_new(j, "rope_scaling", json_pack("{s:s, s:f}", "rope_type", "linear", "factor", 4.0));
    fixture_json_model(&m, j, 7);
    add_tokenizer(&m);
    gguf_write(&m, good, DTYPE_F32);
    model_free(&m);
    CHECK(patched(good, bad, "linear", "yarn__", 6));
    CHECK(dies_with(read_path, bad, "GGUF key llama.rope.scaling.type is \"yarn__\"", NULL));
    json_decref(j);
    free(good);
    free(bad);
}

int main(int argc, char **argv)
{
    (void)argc;
    set_progname(argv[0]);
    check_make_dir(tmpdir);
    TEST(test_rope_permutation);
    TEST(test_round_trips);
    TEST(test_today);
    TEST(test_refusals);
    TEST(test_today_refusals);
    check_remove_dir(tmpdir);
    return check_report();
}
