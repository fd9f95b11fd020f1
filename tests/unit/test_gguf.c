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

/* Write, read back, compare: the read model is the written one in the interleaved
 * layout (fingerprints equal for f32; values equal to the rounding otherwise). */
static void round_trip(model *m, enum dtype dt, const char *arch)
{
    char *p = path_join(tmpdir, "m.gguf");
    gguf_write(m, p, dt);
    model r;
    model_load(&r, p, NULL);
    CHECK(r.cfg.rope_style == ROPE_INTERLEAVED);
    model_set_rope_style(m, ROPE_INTERLEAVED);
    CHECK(r.n_tensors == m->n_tensors);
    int bad = 0;
    for (int i = 0; i < r.n_tensors && i < m->n_tensors; i++) {
        const tensor *a = &r.tensors[i], *b = &m->tensors[i];
        CHECK(!strcmp(a->name, b->name) && a->numel == b->numel);
        enum dtype want = b->ndim == 1 ? DTYPE_F32 : dt;
        CHECK(a->stored == want);
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
    if (dt == DTYPE_F32) {
        char f1[17], f2[17];
        model_fingerprint(m, f1);
        model_fingerprint(&r, f2);
        CHECK(!strcmp(f1, f2));
    }
    /* the header fields, read here by hand: magic, version 3, counts, first key */
    size_t n;
    uint8_t *b = slurp(p, &n);
    CHECK(n > 64 && !memcmp(b, "GGUF", 4) && b[4] == 3 && b[5] == 0);
    CHECK(le64(b + 8) == (uint64_t)m->n_tensors);
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
    refusal r3 = {{4, 2, 4}, {2, 1, 2}, {24, 24, 24}, true, false};
    CHECK(dies_with(write_refused, &r3, "layer 1 has q/k/v biases"));
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

int main(int argc, char **argv)
{
    (void)argc;
    set_progname(argv[0]);
    if (!mkdtemp(tmpdir))
        die("cannot create a temporary folder");
    TEST(test_rope_permutation);
    TEST(test_round_trips);
    TEST(test_refusals);
    char *cmd = xasprintf("rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", tmpdir);
    free(cmd);
    return check_report();
}
