/* test_dtype.c - weights held in their stored dtype (bf16, f16): a half-precision
 * model's logits and gradients equal those of its exact fp32 widening, which this
 * file computes itself from the half-precision bits (not through tensor.c or
 * matmul.c); their fingerprints are equal; checkpoints and safetensors keep the
 * dtype and read back what was written.
 *
 * The model's shapes make matmul.c split every large weight into several panels
 * (D 256: 1024 rows a panel; V 2500 and F 1100 rows). */
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "check.h"
#include "compute/backward.h"
#include "compute/forward.h"
#include "format/checkpoint.h"
#include "format/model_load.h"
#include "format/hf_folder.h"
#include "model/model.h"

enum { D = 256, L = 2, V = 2500, HD = 32, B = 2, T = 12 };
static const int H[L] = {8, 4}, KV[L] = {4, 4}, F[L] = {1100, 600};

static void random_model(model *m)
{
    model_config c;
    memset(&c, 0, sizeof c);
    strcpy(c.model_type, "llama");
    c.dim = D, c.n_layers = L, c.vocab = V, c.head_dim = HD, c.max_seq = 64;
    c.n_heads = (int *)H, c.n_kv_heads = (int *)KV, c.ffn_dim = (int *)F;
    c.norm_eps = 1e-5f, c.rope_theta = 10000.0f, c.rope_style = ROPE_HALF;
    c.qkv_bias = true, c.bos_id = 1, c.eos_id = 2;
    model_init_random(m, &c, 7);
}

/* A half-precision value's fp32 value, from its bits (IEEE binary16 or bfloat16). */
static float widen(uint16_t h, enum dtype dt)
{
    if (dt == DTYPE_BF16) {
        uint32_t u = (uint32_t)h << 16;
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    int e = (h >> 10) & 31, man = h & 1023;
    double v = e == 0 ? ldexp(man, -24) : ldexp(1024 + man, e - 25);
    return (float)((h & 0x8000) ? -v : v); /* the random weights are finite */
}

/* h: m's matrices rounded to dt and held as dt; w: the same model with each
 * matrix replaced by the exact widening of h's values (fp32). Vectors are fp32
 * in both, rounded to values of dt. */
static void half_and_widening(model *h, model *w, enum dtype dt)
{
    random_model(h);
    random_model(w);
    for (int i = 0; i < h->n_tensors; i++) {
        tensor *th = &h->tensors[i], *tw = &w->tensors[i];
        if (th->ndim != 2) { /* vectors stay fp32, with values dt can hold */
            for (int64_t e = 0; e < th->numel; e++) {
                float v = tensor_f32(th)[e];
                tensor_f32(th)[e] = tensor_f32(tw)[e] = widen(dt == DTYPE_BF16 ? f32_to_bf16(v) : f32_to_f16(v), dt);
            }
            continue;
        }
        uint16_t *bits = xmalloc_aligned((size_t)th->numel * 2);
        const float *v = tensor_f32(th);
        for (int64_t e = 0; e < th->numel; e++) {
            bits[e] = dt == DTYPE_BF16 ? f32_to_bf16(v[e]) : f32_to_f16(v[e]);
            tensor_f32(tw)[e] = widen(bits[e], dt);
        }
        free(th->data);
        th->data = bits;
        th->dtype = th->stored = dt;
    }
}

static void tokens_for(int *tokens, int *targets)
{
    uint64_t s = 12345;
    for (int i = 0; i < B * T; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        tokens[i] = (int)((s >> 33) % V);
    }
    for (int i = 0; i < B * T; i++)
        targets[i] = i % T == T - 1 ? -1 : tokens[i + 1];
}

/* max |a - b| / max |b| */
static double rel_err(const float *a, const float *b, int64_t n)
{
    double d = 0, s = 0;
    for (int64_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - b[i]));
        s = fmax(s, fabs((double)b[i]));
    }
    return s > 0 ? d / s : d;
}

typedef struct {
    const model *m;
    float **g; /* [n_tensors] */
} grads;

static void keep_grads(void *ctx, int layer, const weight_grad *wg, int n)
{
    (void)layer;
    grads *g = ctx;
    for (int i = 0; i < n; i++) {
        int k = (int)(wg[i].w - g->m->tensors);
        g->g[k] = xmalloc((size_t)wg[i].w->numel * sizeof(float));
        memcpy(g->g[k], wg[i].grad, (size_t)wg[i].w->numel * sizeof(float));
    }
}

static double worst_logits, worst_grads;

static void check_products(enum dtype dt)
{
    model h, w;
    half_and_widening(&h, &w, dt);
    CHECK(h.layers[0].w_gate->dtype == dt && h.lm_head->dtype == dt);
    int tokens[B * T], targets[B * T];
    tokens_for(tokens, targets);

    forward_state sh, sw;
    forward_state_init(&sh, &h, B, T);
    forward_state_init(&sw, &w, B, T);
    model_forward(&h, &sh, tokens);
    model_forward(&w, &sw, tokens);
    double e = rel_err(sh.logits, sw.logits, (int64_t)B * T * V);
    worst_logits = fmax(worst_logits, e);
    CHECK(e <= 1e-5);
    forward_state_free(&sh);
    forward_state_free(&sw);

    grads gh = {&h, xcalloc((size_t)h.n_tensors, sizeof(float *))};
    grads gw = {&w, xcalloc((size_t)w.n_tensors, sizeof(float *))};
    backward_state *th = backward_state_new(&h, B, T), *tw = backward_state_new(&w, B, T);
    double lh = model_loss_backward(&h, th, tokens, targets, keep_grads, NULL, &gh);
    double lw = model_loss_backward(&w, tw, tokens, targets, keep_grads, NULL, &gw);
    CHECK_CLOSE(lh, lw, 1e-6);
    int missing = 0;
    for (int i = 0; i < h.n_tensors; i++) {
        if (!gh.g[i] || !gw.g[i]) {
            missing++;
            continue;
        }
        double ge = rel_err(gh.g[i], gw.g[i], h.tensors[i].numel);
        worst_grads = fmax(worst_grads, ge);
        if (ge > 1e-5)
            fprintf(stderr, "    %s: gradient differs by %.3g relative\n", h.tensors[i].name, ge);
        CHECK(ge <= 1e-5);
        free(gh.g[i]);
        free(gw.g[i]);
    }
    CHECK(missing == 0);
    free(gh.g);
    free(gw.g);
    backward_state_free(th);
    backward_state_free(tw);

    /* fingerprints follow values, not storage */
    char fh[17], fw[17];
    model_fingerprint(&h, fh);
    model_fingerprint(&w, fw);
    CHECK(!strcmp(fh, fw));
    model_free(&h);
    model_free(&w);
}

static void test_bf16_products(void) { check_products(DTYPE_BF16); }
static void test_f16_products(void) { check_products(DTYPE_F16); }

static void load_path(void *path)
{
    model m;
    model_load(&m, path, NULL);
}

static void truncated_in_use(void *path)
{
    model m;
    model_load(&m, path, NULL);
    if (truncate(path, 64) != 0)
        return;
    char fp[17];
    model_fingerprint(&m, fp);
}

/* The values of m's matrices, as held, equal those of h; mapped from their file
 * or not, as said. */
static int wrong_tensors(const model *r, const model *h, bool mapped)
{
    int wrong = r->n_tensors != h->n_tensors;
    for (int i = 0; i < r->n_tensors && i < h->n_tensors; i++) {
        const tensor *a = &r->tensors[i], *b = &h->tensors[i];
        if (a->ndim == 2)
            wrong += a->dtype != DTYPE_BF16 || a->stored != DTYPE_BF16 ||
                     memcmp(a->data, b->data, (size_t)a->numel * 2) != 0 || mapped != (a->map != NULL);
        else
            wrong += a->dtype != DTYPE_F32 || !tensor_equal(a, b);
    }
    return wrong;
}

/* A checkpoint and a safetensors folder of a bf16 model read back as bf16, with
 * the same values; both files' matrices are mapped in place. A checkpoint from a
 * pipe is read into memory, the same; one payload byte changed in the file is
 * still caught by the end record's checksum. */
static void test_round_trips(void)
{
    model h, w;
    half_and_widening(&h, &w, DTYPE_BF16);
    char dir[] = "/tmp/pare-test-dtype-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char *ck = path_join(dir, "m.pare"), *hf = path_join(dir, "hf");
    char fp[17], fp2[17];
    model_fingerprint(&w, fp);

    checkpoint_write(&h, ck, 0, NULL, NULL);
    hf_write_folder(&h, hf, DTYPE_BF16, 2);
    const char *paths[2] = {ck, hf};
    for (int p = 0; p < 2; p++) {
        model r;
        model_load(&r, paths[p], NULL);
        CHECK(wrong_tensors(&r, &h, true) == 0);
        model_fingerprint(&r, fp2);
        CHECK(!strcmp(fp, fp2));
        model_free(&r);
    }

    char *cmd = xasprintf("cat '%s'", ck);
    FILE *pipe = popen(cmd, "r");
    CHECK(pipe != NULL);
    model r;
    checkpoint_read(&r, pipe, "pipe", NULL, 0);
    CHECK(pclose(pipe) == 0);
    CHECK(wrong_tensors(&r, &h, false) == 0);
    model_fingerprint(&r, fp2);
    CHECK(!strcmp(fp, fp2));
    model_free(&r);
    free(cmd);

    /* a byte inside the first matrix's payload, found by its first 64 bytes */
    size_t size;
    char *bytes = read_whole_file(ck, &size);
    const tensor *mat = h.tensors[0].ndim == 2 ? &h.tensors[0] : &h.tensors[1];
    CHECK(mat->ndim == 2 && tensor_bytes(mat) >= 64);
    char *at = NULL;
    for (size_t i = 0; !at && i + 64 <= size; i++)
        if (!memcmp(bytes + i, mat->data, 64))
            at = bytes + i;
    CHECK(at != NULL);
    if (at) {
        at[10] ^= 1;
        FILE *f = fopen(ck, "wb");
        CHECK(f && fwrite(bytes, 1, size, f) == size && fclose(f) == 0);
    }
    free(bytes);
    CHECK(dies_with(load_path, ck, "digest mismatch"));

    /* a mapped file cut short while in use: one line and exit 1, not SIGBUS */
    checkpoint_write(&h, ck, 0, NULL, NULL);
    CHECK(dies_with(truncated_in_use, ck, "truncated or rewritten while in use"));
    unlink(ck);
    free(ck);
    free(hf);
    CHECK(check_remove_dir(dir));
    model_free(&h);
    model_free(&w);
}

int main(void)
{
    TEST(test_bf16_products);
    TEST(test_f16_products);
    TEST(test_round_trips);
    fprintf(stderr, "    worst relative error of a half-precision model against its widening: logits %.2g, "
                    "gradients %.2g\n",
            worst_logits, worst_grads);
    return check_report();
}
