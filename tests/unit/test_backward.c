/* test_backward.c - every kernel's backward against central finite differences of
 * a double-precision reference of its forward written here; the whole model's
 * gradient (model_loss_backward) against finite differences of the double-precision
 * reference model (ref_llama.h), on tiny random models of every shape the forward
 * supports; the sink's order and coverage; the act sink; every weight's gradient
 * of the distillation loss as pare-lora --full accumulates it (train/params.h,
 * compute/distill.h) against finite differences of the reference's logits and
 * the loss's oracle (ref_distill.h); and, on stories260K, the
 * loss against the forward pass's mean NLL and a sample of gradients against
 * finite differences.
 *
 * A gradient passes when, for every checked element, |analytic - fd| <= 1e-3 *
 * max(|fd|, floor), the floor (noise floor) being 1e-3 of the largest |fd| of the
 * tensor: elements above the floor are held to 1e-3 relative error, those below it
 * to 1e-6 of the tensor's scale.
 *
 * Letters: B sequences, T tokens, N = B*T, D hidden, V vocab, H query heads,
 * KV key/value heads, hd head dim, F MLP width, I/O a linear map's in/out width. */
#include <stdint.h>
#include <string.h>

#include "base/blas.h"
#include "base/cpu.h"
#include "base/util.h"
#include "check.h"
#include "compute/backward.h"
#include "compute/distill.h"
#include "compute/forward.h"
#include "compute/kernels.h"
#include "compute/matmul.h"
#include "fixture.h"
#include "format/model_load.h"
#include "model/model.h"
#include "ref_distill.h"
#include "ref_llama.h"
#include "train/params.h"

static const double FD_TOL = 1e-3, FD_FLOOR = 1e-3, FD_STEP = 1e-5;

/* n random values in [offset - scale, offset + scale), each exactly a float: the
 * double array (the reference's) and its float copy (the kernels'). */
static double *rand_pair(int64_t n, double scale, double offset, float **f)
{
    double *d = xmalloc((size_t)n * sizeof(double));
    *f = xmalloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) {
        (*f)[i] = (float)(offset + scale * fixture_urand());
        d[i] = (*f)[i];
    }
    return d;
}

/* ---- finite differences ---- */

typedef double (*scalar_fn)(void);

/* Relative error of one element, as the header defines it. */
static double fd_rel(double analytic, double fd, double floor)
{
    return fabs(analytic - fd) / fmax(fabs(fd), floor);
}

/* Central differences of f with respect to x[idx[j]] (j < n_idx), against the
 * analytic gradient ga[idx[j]]; x is restored. Returns the worst relative error
 * and prints it (and the worst element) when it fails. */
static double fd_check_at(const char *what, scalar_fn f, double *x, const int64_t *idx, int n_idx, const float *ga)
{
    double *fd = xmalloc((size_t)n_idx * sizeof(double)), scale = 0;
    for (int j = 0; j < n_idx; j++) {
        double x0 = x[idx[j]], h = FD_STEP * fmax(1.0, fabs(x0));
        x[idx[j]] = x0 + h;
        double fp = f();
        x[idx[j]] = x0 - h;
        double fm = f();
        x[idx[j]] = x0;
        fd[j] = (fp - fm) / (2 * h);
        scale = fmax(scale, fabs(fd[j]));
    }
    double floor = fmax(FD_FLOOR * scale, 1e-300), worst = 0;
    int64_t worst_i = -1;
    for (int j = 0; j < n_idx; j++) {
        double e = fd_rel(ga[idx[j]], fd[j], floor);
        if (e > worst)
            worst = e, worst_i = j;
    }
    if (!(worst < FD_TOL) && worst_i >= 0)
        fprintf(stderr, "    %s: element %lld: analytic %.9g, finite difference %.9g (rel %.3g, scale %.3g)\n",
                what, (long long)idx[worst_i], ga[idx[worst_i]], fd[worst_i], worst, scale);
    CHECK(worst < FD_TOL);
    CHECK(scale > 0); /* something was actually checked */
    free(fd);
    return worst;
}

/* Every element of x (n). */
static double fd_check(const char *what, scalar_fn f, double *x, int64_t n, const float *ga)
{
    int64_t *idx = xmalloc((size_t)n * sizeof(int64_t));
    for (int64_t i = 0; i < n; i++)
        idx[i] = i;
    double e = fd_check_at(what, f, x, idx, (int)n, ga);
    free(idx);
    return e;
}

static double worst_kernel; /* the worst relative error over the kernel tests */
static void note_kernel(double e) { worst_kernel = fmax(worst_kernel, e); }

/* ---- kernels: each backward against its double forward ---- */

/* The kernel tests' state: inputs in double (perturbed by fd_check) and the
 * weight of the output (dout), so that the scalar is sum(dout * forward(...)). */
static struct {
    int N, D, V, nin, nout, B, T, H, KV, hd, nh, ld;
    enum rope_style style;
    const int *tokens, *targets;
    double *a, *b, *c, *dout;
    const float *cos_t, *sin_t;
    double dloss;
} K;

static double ref_embedding(void)
{
    double s = 0;
    for (int n = 0; n < K.N; n++)
        for (int i = 0; i < K.D; i++)
            s += K.dout[n * K.D + i] * K.a[K.tokens[n] * K.D + i];
    return s;
}

static void test_embedding_backward(void)
{
    enum { N = 7, D = 5, V = 6 };
    int tokens[N] = {3, 1, 3, 0, 5, 3, 1}; /* repeats add up; row 2 and 4 unused */
    float *emb_f, *dout_f;
    K.N = N, K.D = D, K.tokens = tokens;
    K.a = rand_pair(V * D, 1, 0, &emb_f);
    K.dout = rand_pair(N * D, 1, 0, &dout_f);
    float *demb = xcalloc(V * D, sizeof(float));
    embedding_backward(demb, dout_f, tokens, N, D);
    note_kernel(fd_check("embedding d emb", ref_embedding, K.a, V * D, demb));
    for (int i = 0; i < D; i++)
        CHECK(demb[2 * D + i] == 0 && demb[4 * D + i] == 0);
    free(K.a), free(K.dout), free(emb_f), free(dout_f), free(demb);
}

/* y = x * rsqrt(mean(x^2) + eps) * w; a = x (N, D), b = w (D) */
static double ref_rmsnorm(void)
{
    double s = 0, eps = 1e-5;
    for (int n = 0; n < K.N; n++) {
        const double *x = K.a + n * K.D;
        double ss = 0;
        for (int i = 0; i < K.D; i++)
            ss += x[i] * x[i];
        double r = 1 / sqrt(ss / K.D + eps);
        for (int i = 0; i < K.D; i++)
            s += K.dout[n * K.D + i] * x[i] * r * K.b[i];
    }
    return s;
}

static void test_rmsnorm_backward(void)
{
    enum { N = 4, D = 9 };
    float *x, *w, *dout, y[N * D], rstd[N];
    K.N = N, K.D = D;
    K.a = rand_pair(N * D, 1, 0, &x);
    K.b = rand_pair(D, 0.3, 1, &w);
    K.dout = rand_pair(N * D, 1, 0, &dout);
    rmsnorm_forward(y, rstd, x, w, N, D, 1e-5f);
    float dx[N * D], dw[D];
    for (int i = 0; i < N * D; i++)
        dx[i] = 0.25f; /* += : the starting value must come back on top */
    memset(dw, 0, sizeof dw);
    rmsnorm_backward(dx, dw, dout, x, w, rstd, N, D);
    for (int i = 0; i < N * D; i++)
        dx[i] -= 0.25f;
    note_kernel(fd_check("rmsnorm d x", ref_rmsnorm, K.a, N * D, dx));
    note_kernel(fd_check("rmsnorm d w", ref_rmsnorm, K.b, D, dw));
    free(K.a), free(K.b), free(K.dout), free(x), free(w), free(dout);
}

/* out = in @ W^T + b; a = in (N, I), b = W (O, I), c = bias (O) */
static double ref_matmul(void)
{
    double s = 0;
    for (int n = 0; n < K.N; n++)
        for (int o = 0; o < K.nout; o++) {
            double y = K.c[o];
            for (int i = 0; i < K.nin; i++)
                y += K.a[n * K.nin + i] * K.b[o * K.nin + i];
            s += K.dout[n * K.nout + o] * y;
        }
    return s;
}

static void test_matmul_backward(void)
{
    enum { N = 6, NI = 7, NO = 5 };
    float *in, *w, *b, *dout;
    K.N = N, K.nin = NI, K.nout = NO;
    K.a = rand_pair(N * NI, 1, 0, &in);
    K.b = rand_pair(NO * NI, 1, 0, &w);
    K.c = rand_pair(NO, 1, 0, &b);
    K.dout = rand_pair(N * NO, 1, 0, &dout);
    float *din = xcalloc(N * NI, sizeof(float)), *dw = xcalloc(NO * NI, sizeof(float));
    float *db = xcalloc(NO, sizeof(float));
    tensor wt = tensor_wrap(w, NO, NI);
    matmul_backward(din, dw, db, dout, in, &wt, N);
    note_kernel(fd_check("matmul d in", ref_matmul, K.a, N * NI, din));
    note_kernel(fd_check("matmul d w", ref_matmul, K.b, NO * NI, dw));
    note_kernel(fd_check("matmul d bias", ref_matmul, K.c, NO, db));
    /* accumulating a second time doubles; NULL outputs are skipped */
    matmul_backward(din, NULL, db, dout, in, &wt, N);
    float *dw2 = xcalloc(NO * NI, sizeof(float));
    matmul_backward(NULL, dw2, NULL, dout, in, &wt, N);
    double e = 0;
    for (int i = 0; i < NO * NI; i++)
        e = fmax(e, fabs(dw2[i] - dw[i]));
    CHECK(e == 0);
    float *din1 = xcalloc(N * NI, sizeof(float));
    matmul_backward(din1, NULL, NULL, dout, in, &wt, N);
    e = 0;
    for (int i = 0; i < N * NI; i++)
        e = fmax(e, fabs(din[i] - 2 * din1[i]));
    CHECK(e < 1e-5);
    free(K.a), free(K.b), free(K.c), free(K.dout), free(in), free(w), free(b), free(dout);
    free(din), free(dw), free(db), free(dw2), free(din1);
}

/* What matmul_backward_rows handed out: the panels in row order, covering the
 * weight once, with its rows in fp32 (bit for bit) or none. */
typedef struct {
    float *dw;      /* (O, I) the rows put together */
    int64_t next;   /* the row the next panel must start at */
    int panels, widened;
    bool bad;
} rows_got;

/* Whether w_rows holds rows [r0, r1) of w in fp32, bit for bit. */
static bool rows_of(const tensor *w, int64_t r0, int64_t r1, const float *w_rows)
{
    int64_t n = (r1 - r0) * w->shape[1];
    float *want = xmalloc((size_t)n * sizeof(float));
    tensor_get_f32(w, r0 * w->shape[1], n, want);
    bool same = memcmp(want, w_rows, (size_t)n * sizeof(float)) == 0;
    free(want);
    return same;
}

static void collect_rows(void *ctx, const tensor *w, int64_t r0, int64_t r1, const float *w_rows, const float *g)
{
    rows_got *s = ctx;
    int64_t I = w->shape[1], n = (r1 - r0) * I;
    if (r0 != s->next || r1 <= r0 || r1 > w->shape[0]) {
        s->bad = true;
        return;
    }
    memcpy(s->dw + r0 * I, g, (size_t)n * sizeof(float));
    if (w_rows) {
        s->bad |= !rows_of(w, r0, r1, w_rows);
        s->widened++;
    }
    s->next = r1;
    s->panels++;
}

/* matmul_backward_rows for fp32, bf16 and f16 weights of one and a half panels
 * of rows of 4096, on every instruction set the CPU has (AMX tiles and pare's
 * FMA product among them), with N rows of activations: din (added onto what it
 * held), db and dw's rows as double-precision sums give them, the rows widened
 * where the product widened them (not on the tiles, nor in the FMA product). */
static void check_backward_rows(int N)
{
    enum { NI = 4096 };
    tensor shape = tensor_wrap(NULL, 1 << 20, NI); /* more rows than a panel */
    const int NO = matmul_panel_rows(&shape) * 3 / 2;
    float *in = xmalloc(N * NI * sizeof(float)), *dout = xmalloc((size_t)N * NO * sizeof(float));
    float *wv = xmalloc((size_t)NO * NI * sizeof(float));
    for (int i = 0; i < N * NI; i++)
        in[i] = (float)(rand() / (double)RAND_MAX - 0.5);
    for (int i = 0; i < N * NO; i++)
        dout[i] = (float)(rand() / (double)RAND_MAX - 0.5);
    for (int i = 0; i < NO * NI; i++)
        wv[i] = (float)(rand() / (double)RAND_MAX - 0.5);
    double *rdw = xmalloc((size_t)NO * NI * sizeof(double)), *rdb = xmalloc((size_t)NO * sizeof(double));
    double *rdin = xcalloc(N * NI, sizeof(double));
    for (int o = 0; o < NO; o++) {
        rdb[o] = 0;
        for (int n = 0; n < N; n++)
            rdb[o] += dout[n * NO + o];
        for (int i = 0; i < NI; i++) {
            double g = 0;
            for (int n = 0; n < N; n++)
                g += (double)dout[n * NO + o] * in[n * NI + i];
            rdw[(size_t)o * NI + i] = g;
        }
    }
    const cpu_kernels *was = cpu();
    const enum dtype dtypes[] = {DTYPE_F32, DTYPE_BF16, DTYPE_F16};
    for (int level = 0; level < CPU_LEVELS; level++) {
        if (!cpu_supports((enum cpu_level)level))
            continue;
        cpu_active = cpu_kernels_of((enum cpu_level)level);
        for (int d = 0; d < 3; d++) {
            tensor w;
            tensor_init_as(&w, "w", 2, (int64_t[2]){NO, NI}, dtypes[d]);
            tensor_set_f32(&w, 0, (int64_t)NO * NI, wv);
            float *wf = xmalloc((size_t)NO * NI * sizeof(float)); /* the values w holds */
            tensor_get_f32(&w, 0, (int64_t)NO * NI, wf);
            for (int i = 0; i < N * NI; i++) {
                rdin[i] = 1.0;
                for (int o = 0; o < NO; o++)
                    rdin[i] += (double)dout[(i / NI) * NO + o] * wf[(size_t)o * NI + i % NI];
            }
            float *din = xmalloc(N * NI * sizeof(float)), *db = xcalloc((size_t)NO, sizeof(float));
            for (int i = 0; i < N * NI; i++)
                din[i] = 1.0f;
            rows_got got = {.dw = xcalloc((size_t)NO * NI, sizeof(float))};
            weight_rows_sink sink = {collect_rows, &got};
            matmul_backward_rows(din, db, dout, in, &w, N, &sink);
            double e = 0;
            for (int i = 0; i < NO * NI; i++)
                e = fmax(e, fabs(got.dw[i] - rdw[i]));
            for (int i = 0; i < N * NI; i++)
                e = fmax(e, fabs(din[i] - rdin[i]) / 8); /* sums of hundreds of terms */
            for (int o = 0; o < NO; o++)
                e = fmax(e, fabs(db[o] - rdb[o]));
            bool packs = dtypes[d] != DTYPE_F32 && (cpu()->tiles || (cpu()->gemm && N >= 16));
            fprintf(stderr, "    N %2d %-8s %-4s %d panels, %d widened: worst error %.2e\n", N, cpu_level_name(level),
                    dtypes[d] == DTYPE_F32 ? "f32" : dtypes[d] == DTYPE_BF16 ? "bf16" : "f16", got.panels,
                    got.widened, e);
            CHECK(!got.bad && got.next == NO && got.panels == 2);
            CHECK(got.widened == (packs ? 0 : 2));
            CHECK(e < 1e-5);
            free(din), free(db), free(got.dw), free(wf);
            tensor_free(&w);
        }
    }
    cpu_active = was;
    free(in), free(dout), free(wv), free(rdw), free(rdb), free(rdin);
}

/* A token's rows, and enough for pare's FMA product (16 and up). */
static void test_matmul_backward_rows(void)
{
    check_backward_rows(3);
    check_backward_rows(40);
}

/* x (B, T, nh, hd) with row stride ld rotated with the tables (as doubles) */
static double ref_rope(void)
{
    double s = 0;
    int half = K.hd / 2;
    for (int bt = 0; bt < K.B * K.T; bt++) {
        int t = bt % K.T;
        for (int h = 0; h < K.nh; h++)
            for (int i = 0; i < half; i++) {
                int p = K.style == ROPE_HALF ? i : 2 * i, q = K.style == ROPE_HALF ? i + half : 2 * i + 1;
                size_t o = (size_t)bt * K.ld + h * K.hd;
                double c = K.cos_t[t * half + i], sn = K.sin_t[t * half + i];
                double x0 = K.a[o + p], x1 = K.a[o + q];
                s += K.dout[o + p] * (x0 * c - x1 * sn) + K.dout[o + q] * (x1 * c + x0 * sn);
            }
    }
    return s;
}

static void test_rope_backward(void)
{
    enum { B = 2, T = 6, nh = 3, hd = 8, ld = 27 };
    float cos_t[T * hd / 2], sin_t[T * hd / 2];
    float inv[hd / 2];
    for (int i = 0; i < hd / 2; i++)
        inv[i] = (float)(1.0 / pow(10000.0, 2.0 * i / hd));
    rope_tables_freq(cos_t, sin_t, T, hd / 2, inv);
    for (int style = 0; style < 2; style++) {
        float *x, *dout;
        K.B = B, K.T = T, K.nh = nh, K.hd = hd, K.ld = ld, K.style = (enum rope_style)style;
        K.cos_t = cos_t, K.sin_t = sin_t;
        K.a = rand_pair(B * T * ld, 1, 0, &x);
        K.dout = rand_pair(B * T * ld, 1, 0, &dout);
        for (int bt = 0; bt < B * T; bt++) /* the padding columns are not rotated */
            for (int i = nh * hd; i < ld; i++)
                K.dout[bt * ld + i] = 0;
        float *dx = xmalloc(B * T * ld * sizeof(float));
        for (int i = 0; i < B * T * ld; i++)
            dx[i] = (float)K.dout[i];
        rope_backward(dx, cos_t, sin_t, B, T, nh, hd, ld, K.style);
        note_kernel(fd_check(style == ROPE_HALF ? "rope half d x" : "rope interleaved d x", ref_rope, K.a,
                             B * T * ld, dx));
        /* backward undoes forward (the rotation is orthogonal) */
        float y[B * T * ld];
        memcpy(y, x, sizeof y);
        rope_forward(y, cos_t, sin_t, B, T, nh, hd, ld, K.style);
        rope_backward(y, cos_t, sin_t, B, T, nh, hd, ld, K.style);
        double e = 0;
        for (int i = 0; i < B * T * ld; i++)
            e = fmax(e, fabs(y[i] - x[i]));
        CHECK(e < 1e-6);
        free(K.a), free(K.dout), free(x), free(dout), free(dx);
    }
}

/* causal attention; a = q (N, H*hd), b = k, c = v (N, KV*hd) */
static double ref_attention(void)
{
    int ldq = K.H * K.hd, ldkv = K.KV * K.hd, T = K.T, hd = K.hd;
    double s = 0, sc[64];
    for (int b = 0; b < K.B; b++)
        for (int h = 0; h < K.H; h++) {
            int kvh = h / (K.H / K.KV);
            for (int i = 0; i < T; i++) {
                const double *q = K.a + (size_t)(b * T + i) * ldq + h * hd;
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j <= i; j++) {
                    const double *k = K.b + (size_t)(b * T + j) * ldkv + kvh * hd;
                    double d = 0;
                    for (int e = 0; e < hd; e++)
                        d += q[e] * k[e];
                    sc[j] = d / sqrt((double)hd);
                    mx = fmax(mx, sc[j]);
                }
                for (int j = 0; j <= i; j++)
                    sum += (sc[j] = exp(sc[j] - mx));
                for (int e = 0; e < hd; e++) {
                    double y = 0;
                    for (int j = 0; j <= i; j++)
                        y += sc[j] / sum * K.c[(size_t)(b * T + j) * ldkv + kvh * hd + e];
                    s += K.dout[(size_t)(b * T + i) * ldq + h * hd + e] * y;
                }
            }
        }
    return s;
}

static void check_attention(int B, int T, int H, int KV, int hd)
{
    int N = B * T, qd = H * hd, kvd = KV * hd;
    float *q, *k, *v, *dctx;
    K.B = B, K.T = T, K.H = H, K.KV = KV, K.hd = hd;
    K.a = rand_pair(N * qd, 1.5, 0, &q); /* scores of order one: a peaked softmax */
    K.b = rand_pair(N * kvd, 1.5, 0, &k);
    K.c = rand_pair(N * kvd, 1, 0, &v);
    K.dout = rand_pair(N * qd, 1, 0, &dctx);
    float *ctx = xmalloc(N * qd * sizeof(float)), *att = xmalloc((size_t)B * H * T * T * sizeof(float));
    float *dq = xcalloc(N * qd, sizeof(float)), *dk = xcalloc(N * kvd, sizeof(float));
    float *dv = xcalloc(N * kvd, sizeof(float));
    attention_forward(ctx, att, q, k, v, B, T, H, KV, hd, 0);
    attention_backward(dq, dk, dv, dctx, att, q, k, v, B, T, H, KV, hd, 0);
    char what[64];
    snprintf(what, sizeof what, "attention H %d KV %d d q", H, KV);
    note_kernel(fd_check(what, ref_attention, K.a, N * qd, dq));
    snprintf(what, sizeof what, "attention H %d KV %d d k", H, KV);
    note_kernel(fd_check(what, ref_attention, K.b, N * kvd, dk));
    snprintf(what, sizeof what, "attention H %d KV %d d v", H, KV);
    note_kernel(fd_check(what, ref_attention, K.c, N * kvd, dv));
    free(K.a), free(K.b), free(K.c), free(K.dout), free(q), free(k), free(v), free(dctx);
    free(ctx), free(att), free(dq), free(dk), free(dv);
}

static void test_attention_backward(void)
{
    check_attention(2, 5, 2, 2, 4); /* multi-head */
    check_attention(2, 6, 6, 2, 4); /* grouped-query, 3 query heads per kv head */
    check_attention(1, 7, 4, 1, 6); /* multi-query */
}

/* hid = silu(gate) * up; a = gate, b = up (n) */
static double ref_swiglu(void)
{
    double s = 0;
    for (int i = 0; i < K.N; i++)
        s += K.dout[i] * K.a[i] / (1 + exp(-K.a[i])) * K.b[i];
    return s;
}

static void test_swiglu_backward(void)
{
    enum { n = 40 };
    float *g, *u, *dh;
    K.N = n;
    K.a = rand_pair(n, 4, 0, &g);
    K.b = rand_pair(n, 2, 0, &u);
    K.dout = rand_pair(n, 1, 0, &dh);
    float dg[n], du[n];
    swiglu_backward(dg, du, dh, g, u, n);
    note_kernel(fd_check("swiglu d gate", ref_swiglu, K.a, n, dg));
    note_kernel(fd_check("swiglu d up", ref_swiglu, K.b, n, du));
    /* in place gives the same */
    swiglu_backward(g, u, dh, g, u, n);
    CHECK(!memcmp(g, dg, sizeof dg) && !memcmp(u, du, sizeof du));
    free(K.a), free(K.b), free(K.dout), free(g), free(u), free(dh);
}

/* dloss * sum over scored rows of -log softmax(logits)[target]; a = logits (n, V) */
static double ref_crossentropy(void)
{
    double s = 0;
    for (int r = 0; r < K.N; r++) {
        if (K.targets[r] < 0)
            continue;
        const double *x = K.a + r * K.V;
        double mx = x[0], sum = 0;
        for (int j = 1; j < K.V; j++)
            mx = fmax(mx, x[j]);
        for (int j = 0; j < K.V; j++)
            sum += exp(x[j] - mx);
        s += log(sum) + mx - x[K.targets[r]];
    }
    return K.dloss * s;
}

static void test_crossentropy_backward(void)
{
    enum { n = 5, V = 11 };
    int targets[n] = {3, -1, 0, 10, 3};
    float *logits;
    K.N = n, K.V = V, K.targets = targets, K.dloss = 1.0 / 4;
    K.a = rand_pair(n * V, 3, 0, &logits);
    float d[n * V];
    crossentropy_softmax_backward(d, logits, targets, n, V, 0.25f);
    note_kernel(fd_check("crossentropy d logits", ref_crossentropy, K.a, n * V, d));
    for (int j = 0; j < V; j++)
        CHECK(d[V + j] == 0); /* the unscored row */
    /* in place */
    crossentropy_softmax_backward(logits, logits, targets, n, V, 0.25f);
    CHECK(!memcmp(logits, d, sizeof d));
    free(K.a), free(logits);
}

/* ---- the whole model: a double-precision scalar reference ---- */

/* The reference (ref_llama.h) at one batch; finite differences perturb its weights. */
static struct {
    ref_model r;
    const int *tokens, *targets;
    int B, T;
    const distill_teacher *teacher; /* the distillation loss's, or NULL: cross-entropy */
    float tau, w;
} R;

static double ref_loss_at_R(void)
{
    if (!R.teacher)
        return ref_loss(&R.r, R.tokens, R.targets, R.B, R.T, NULL);
    int N = R.B * R.T, V = R.r.cfg->vocab;
    double *lg = xmalloc((size_t)N * V * sizeof *lg);
    ref_forward(&R.r, R.tokens, R.B, R.T, NULL, lg);
    double loss = ref_distill_loss(lg, R.targets, N, V, R.teacher, R.tau, R.w, NULL, NULL);
    free(lg);
    return loss;
}

/* ---- what the sinks saw ---- */

typedef struct {
    const model *m;
    float **grad;      /* [n_tensors] a copy of each delivered gradient */
    int *delivered;    /* [n_tensors] times delivered */
    int layers[256], n_calls;
    bool bad_record;   /* a record whose name, weight or gradient did not fit */
    int *act_calls;    /* [n_tensors] act sink calls per tensor */
    bool bad_act;
    const float *want_logits; /* if not NULL: (N, V) the LM head's input must give these */
    double head_err;
    int64_t *row_next; /* [n_tensors] the row a map's next panel must start at (record_rows) */
} seen;

static void seen_init(seen *s, const model *m)
{
    memset(s, 0, sizeof *s);
    s->m = m;
    s->grad = xcalloc((size_t)m->n_tensors, sizeof(float *));
    s->delivered = xcalloc((size_t)m->n_tensors, sizeof(int));
    s->act_calls = xcalloc((size_t)m->n_tensors, sizeof(int));
    s->row_next = xcalloc((size_t)m->n_tensors, sizeof(int64_t));
}

static void seen_free(seen *s)
{
    for (int i = 0; i < s->m->n_tensors; i++)
        free(s->grad[i]);
    free(s->grad), free(s->delivered), free(s->act_calls), free(s->row_next);
}

static void record_grads(void *ctx, int layer, const weight_grad *g, int n)
{
    seen *s = ctx;
    if (s->n_calls < 256)
        s->layers[s->n_calls] = layer;
    s->n_calls++;
    for (int i = 0; i < n; i++) {
        const tensor *w = g[i].w;
        if (!w || w < s->m->tensors || w >= s->m->tensors + s->m->n_tensors || strcmp(g[i].name, w->name) ||
            !g[i].grad) {
            s->bad_record = true;
            continue;
        }
        /* a layer's tensors name the layer; the others none */
        char prefix[64];
        snprintf(prefix, sizeof prefix, "model.layers.%d.", layer);
        if (layer >= 0 ? strncmp(w->name, prefix, strlen(prefix)) != 0 : strncmp(w->name, "model.layers.", 13) == 0)
            s->bad_record = true;
        int k = (int)(w - s->m->tensors);
        s->delivered[k]++;
        free(s->grad[k]);
        s->grad[k] = xmalloc((size_t)w->numel * sizeof(float));
        memcpy(s->grad[k], g[i].grad, (size_t)w->numel * sizeof(float));
    }
}

/* A rows sink (backward_state_set_rows_sink): the panels of a map of the layer
 * whose sink call comes next, in row order, with the weight's rows or none. */
static void record_rows(void *ctx, const tensor *w, int64_t r0, int64_t r1, const float *w_rows, const float *g)
{
    seen *s = ctx;
    const model *m = s->m;
    int L = m->cfg.n_layers;
    char prefix[64];
    snprintf(prefix, sizeof prefix, "model.layers.%d.", L - 1 - s->n_calls);
    int k = (int)(w - m->tensors);
    if (w < m->tensors || w >= m->tensors + m->n_tensors || w->ndim != 2 || strncmp(w->name, prefix, strlen(prefix)) ||
        r0 != s->row_next[k] || r1 <= r0 || r1 > w->shape[0]) {
        s->bad_record = true;
        return;
    }
    int64_t I = w->shape[1];
    if (r0 == 0) {
        s->delivered[k]++;
        free(s->grad[k]);
        s->grad[k] = xmalloc((size_t)w->numel * sizeof(float));
    }
    memcpy(s->grad[k] + r0 * I, g, (size_t)((r1 - r0) * I) * sizeof(float));
    if (w_rows)
        s->bad_record |= !rows_of(w, r0, r1, w_rows);
    s->row_next[k] = r1 == w->shape[0] ? 0 : r1;
}

static void record_act(void *ctx, const char *name, const float *x, int N, int I)
{
    seen *s = ctx;
    const tensor *w = model_tensor(s->m, name);
    if (!w || w->ndim != 2 || w->shape[1] != I || N <= 0) {
        s->bad_act = true;
        return;
    }
    s->act_calls[w - s->m->tensors]++;
    bool is_head = !strcmp(name, s->m->cfg.tied ? "model.embed_tokens.weight" : "lm_head.weight");
    if (is_head && s->want_logits) { /* x W^T must be the forward pass's logits */
        int V = (int)w->shape[0];
        for (int n = 0; n < N; n++)
            for (int v = 0; v < V; v++) {
                double y = 0;
                for (int i = 0; i < I; i++)
                    y += (double)x[(size_t)n * I + i] * tensor_f32(w)[(size_t)v * I + i];
                double want = s->want_logits[(size_t)n * V + v];
                s->head_err = fmax(s->head_err, fabs(y - want) / fmax(1, fabs(want)));
            }
    }
}

/* The sinks' contract: layers L-1 .. 0 then -1, every tensor delivered exactly
 * once, the act sink once per linear map (q/k/v, o, gate/up, down, LM head). */
/* The sink calls of a pass: one per layer, then one for the outer tensors (two
 * with an untied LM head, which comes alone, before the embedding). */
static int sink_calls(const model *m) { return m->cfg.n_layers + (m->cfg.tied ? 1 : 2); }

/* How many tensors were not delivered exactly once. */
static int delivered_not_once(const seen *s)
{
    int wrong = 0;
    for (int i = 0; i < s->m->n_tensors; i++)
        wrong += s->delivered[i] != 1;
    return wrong;
}

static void check_seen(const seen *s)
{
    const model *m = s->m;
    int L = m->cfg.n_layers;
    CHECK(s->n_calls == sink_calls(m));
    bool order = s->n_calls == sink_calls(m);
    for (int i = 0; order && i < s->n_calls; i++)
        order = s->layers[i] == (i < L ? L - 1 - i : -1);
    CHECK(order);
    CHECK(!s->bad_record);
    CHECK(!s->bad_act);
    int wrong = delivered_not_once(s), acts_wrong = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const char *name = m->tensors[i].name;
        bool linear = m->tensors[i].ndim == 2 &&
                      (strcmp(name, "model.embed_tokens.weight") != 0 || m->cfg.tied);
        acts_wrong += s->act_calls[i] != (linear ? 1 : 0);
    }
    if (wrong || acts_wrong)
        fprintf(stderr, "    %d tensors not delivered exactly once, %d with the wrong act sink calls\n", wrong,
                acts_wrong);
    CHECK(wrong == 0);
    CHECK(acts_wrong == 0);
}

/* ---- the whole model against finite differences ---- */

/* Up to n_rand random elements of tensor k plus its n_top largest analytic
 * gradients (distinct); returns the count. */
static int pick_elements(const seen *s, int k, int n_rand, int n_top, int64_t *idx)
{
    const tensor *w = &s->m->tensors[k];
    int n = 0;
    if (w->numel <= n_rand + n_top) {
        for (int64_t i = 0; i < w->numel; i++)
            idx[n++] = i;
        return n;
    }
    for (int j = 0; j < n_top; j++) {
        int64_t best = -1;
        for (int64_t i = 0; i < w->numel; i++) {
            bool taken = false;
            for (int q = 0; q < n; q++)
                taken |= idx[q] == i;
            if (!taken && (best < 0 || fabsf(s->grad[k][i]) > fabsf(s->grad[k][best])))
                best = i;
        }
        idx[n++] = best;
    }
    while (n < n_top + n_rand)
        idx[n++] = (int64_t)fixture_irand((int)w->numel);
    return n;
}

/* Gradient of every tensor of m at (tokens, targets) against finite differences of
 * the reference's loss on n_rand random elements and the n_top largest of each tensor. Also
 * checks the sinks and the loss. Returns the worst relative error. */
static double check_model_gradient(const char *what, const model *m, int B, int T, int n_rand, int n_top)
{
    int N = B * T, V = m->cfg.vocab;
    int *tokens = xmalloc(N * sizeof(int)), *targets = xmalloc(N * sizeof(int));
    fixture_batch(tokens, targets, B, T, V);
    /* the forward pass's logits, for the act sink's LM-head check and the loss */
    forward_state st;
    forward_state_init(&st, m, B, T);
    model_forward(m, &st, tokens);
    double nll = 0;
    int64_t count = 0;
    nll_accumulate(st.logits, targets, N, V, &nll, &count);

    seen s;
    seen_init(&s, m);
    s.want_logits = st.logits;
    backward_state *t = backward_state_new(m, B, T);
    double loss = model_loss_backward(m, t, tokens, targets, record_grads, record_act, &s);
    check_seen(&s);
    CHECK(s.head_err < 1e-5);
    CHECK_CLOSE(loss, nll / count, 1e-6);

    R.tokens = tokens, R.targets = targets, R.B = B, R.T = T;
    ref_model_init(&R.r, m);
    CHECK_CLOSE(ref_loss_at_R(), loss, 1e-5);
    double worst = 0;
    int checked = 0;
    int64_t *idx = xmalloc((size_t)(n_rand + n_top) * sizeof(int64_t));
    for (int i = 0; i < m->n_tensors; i++) {
        if (!s.grad[i])
            continue;
        int n = pick_elements(&s, i, n_rand, n_top, idx);
        char label[200];
        snprintf(label, sizeof label, "%s: %s", what, m->tensors[i].name);
        int slot = ref_slot_named(&R.r, m->tensors[i].name);
        CHECK(slot >= 0);
        if (slot < 0)
            continue;
        worst = fmax(worst, fd_check_at(label, ref_loss_at_R, R.r.w[slot], idx, n, s.grad[i]));
        checked += n;
    }
    fprintf(stderr, "    %-34s loss %.4f, %4d elements of %3d tensors, worst relative error %.2g\n", what, loss,
            checked, m->n_tensors, worst);
    free(idx);
    ref_model_free(&R.r);
    backward_state_free(t);
    seen_free(&s);
    forward_state_free(&st);
    free(tokens), free(targets);
    return worst;
}


/* Every weight's gradient of the distillation loss (teacher: random logits,
 * whole or top k) as pare-lora --full takes it: the two halves of the pass
 * around distill_loss, the sink adding into the parameters' flat gradient, two
 * passes accumulated; against finite differences of the reference. */
static double check_full_distill(const char *what, model *m, int B, int T, int k, float tau, float w)
{
    int N = B * T, V = m->cfg.vocab;
    int *tokens = xmalloc(N * sizeof(int)), *targets = xmalloc(N * sizeof(int));
    fixture_batch(tokens, targets, B, T, V);
    float *y = xmalloc((size_t)N * V * sizeof *y);
    uint8_t *mark = xcalloc((size_t)V, 1);
    for (int i = 0; i < N * V; i++)
        y[i] = (float)(3 * fixture_urand());
    distill_teacher dt;
    fixture_teacher(&dt, y, N, V, k, tau);
    int64_t count = 0;
    for (int i = 0; i < N; i++)
        count += targets[i] >= 0;
    train_params p;
    params_full(&p, m);
    backward_state *t = backward_state_new(m, B, T);
    double loss = 0;
    for (int pass = 0; pass < 2; pass++) {
        float *logits = model_forward_kept(m, t, tokens, NULL, NULL);
        distill_sums ds = {0};
        distill_loss(logits, logits, targets, N, V, &dt, tau, w, (float)(0.5 / (double)count), &ds, mark);
        model_backward_from_logits(m, t, tokens, params_grad_sink, &p);
        loss = (w * ds.kd + (1 - w) * ds.ce) / (double)count;
    }
    R.tokens = tokens, R.targets = targets, R.B = B, R.T = T, R.teacher = &dt, R.tau = tau, R.w = w;
    ref_model_init(&R.r, m);
    CHECK_CLOSE(ref_loss_at_R(), loss, 1e-5);
    double worst = 0;
    int checked = 0;
    enum { n_idx = 8 };
    int64_t idx[n_idx];
    for (int i = 0; i < m->n_tensors; i++) {
        const tensor *w_i = &m->tensors[i];
        int n = 0;
        int64_t top = 0;
        for (int64_t j = 1; j < w_i->numel; j++)
            if (fabsf(p.grads[p.off[i] + j]) > fabsf(p.grads[p.off[i] + top]))
                top = j;
        idx[n++] = top;
        while (n < n_idx)
            idx[n++] = (int64_t)fixture_irand((int)w_i->numel);
        char label[200];
        snprintf(label, sizeof label, "%s: %s", what, w_i->name);
        int slot = ref_slot_named(&R.r, w_i->name);
        CHECK(slot >= 0);
        if (slot < 0)
            continue;
        worst = fmax(worst, fd_check_at(label, ref_loss_at_R, R.r.w[slot], idx, n, p.grads + p.off[i]));
        checked += n;
    }
    fprintf(stderr, "    %-34s loss %.4f, %4d elements of %3d tensors, worst relative error %.2g\n", what, loss,
            checked, m->n_tensors, worst);
    R.teacher = NULL;
    ref_model_free(&R.r);
    backward_state_free(t);
    params_free(&p);
    fixture_teacher_free(&dt);
    free(tokens), free(targets), free(y), free(mark);
    return worst;
}

static void test_full_distill(void)
{
    static const int H[] = {4, 4, 4}, KV[] = {2, 2, 2}, F[] = {24, 24, 24};
    fixture_shape sp = {.D = 16, .L = 2, .V = 23, .hd = 4, .H = H, .KV = KV, .F = F, .qkv_bias = true,
                        .style = ROPE_HALF};
    model m;
    fixture_model(&m, &sp, 71);
    double e = check_full_distill("full, kd whole, tau 2, w .6", &m, 2, 5, 0, 2, 0.6f);
    model_free(&m);
    sp.tied = true, sp.KV = H;
    fixture_model(&m, &sp, 72);
    e = fmax(e, check_full_distill("full tied, kd top-4, tau 1, w 1", &m, 2, 5, 4, 1, 1));
    model_free(&m);
    fprintf(stderr, "    worst relative error of every weight's distillation gradient: %.2g\n", e);
}

static double worst_model;

static void check_shape(const char *what, const fixture_shape *sp, int B, int T, uint64_t seed)
{
    model m;
    fixture_model(&m, sp, seed);
    worst_model = fmax(worst_model, check_model_gradient(what, &m, B, T, 10, 4));
    model_free(&m);
}

static const int h4[] = {4, 4, 4}, f24[] = {24, 24, 24}, kv2[] = {2, 2, 2}, kv1[] = {1, 1, 1};

static void test_model_mha(void)
{
    fixture_shape sp = {.D = 16, .L = 2, .V = 23, .hd = 4, .H = h4, .KV = h4, .F = f24, .tied = true, .style = ROPE_HALF};
    check_shape("mha tied half", &sp, 2, 5, 1);
    sp.tied = false, sp.style = ROPE_INTERLEAVED;
    check_shape("mha untied interleaved", &sp, 2, 5, 2);
}

static void test_model_gqa(void)
{
    fixture_shape sp = {.D = 16, .L = 3, .V = 19, .hd = 4, .H = h4, .KV = kv2, .F = f24, .style = ROPE_HALF};
    check_shape("gqa 2:1 untied half", &sp, 2, 6, 3);
    sp.KV = kv1, sp.tied = true, sp.style = ROPE_INTERLEAVED;
    check_shape("mqa tied interleaved", &sp, 1, 7, 4);
}

static void test_model_bias(void)
{
    fixture_shape sp = {.D = 16, .L = 2, .V = 21, .hd = 4, .H = h4, .KV = kv2, .F = f24, .qkv_bias = true, .style = ROPE_HALF};
    check_shape("gqa q/k/v bias untied", &sp, 2, 5, 5);
    sp.o_bias = sp.down_bias = true, sp.tied = true;
    check_shape("gqa all biases tied", &sp, 2, 5, 6);
}

/* Pruned: heads and widths per layer, a layer without attention, one without MLP,
 * one with neither. */
static void test_model_heterogeneous(void)
{
    static const int H[] = {4, 0, 2, 6, 0, 3}, KV[] = {2, 0, 1, 3, 0, 3}, F[] = {20, 12, 0, 7, 0, 16};
    fixture_shape sp = {.D = 12, .L = 6, .V = 17, .hd = 4, .H = H, .KV = KV, .F = F, .qkv_bias = true, .o_bias = true,
                .down_bias = true, .style = ROPE_INTERLEAVED};
    check_shape("heterogeneous untied all biases", &sp, 2, 5, 7);
    sp.tied = true, sp.qkv_bias = sp.o_bias = sp.down_bias = false, sp.style = ROPE_HALF;
    check_shape("heterogeneous tied", &sp, 2, 4, 8);
}

/* Today's models (tests/configs): Llama 3's scaled rotary, Qwen2's biases, Qwen3's
 * q_norm and k_norm (their gradients too), tied and untied. */
static void test_model_today(void)
{
    for (int i = 0; i < FIXTURE_TODAY_COUNT; i++)
        for (int untie = 0; untie < 2; untie++) {
            json_t *j = fixture_config_json(fixture_today[i]);
            bool tied = json_is_true(json_object_get(j, "tie_word_embeddings"));
            if (untie)
                json_object_set_new(j, "tie_word_embeddings", json_boolean(!tied));
            model m;
            fixture_json_model(&m, j, 70 + i);
            json_decref(j);
            char what[64];
            snprintf(what, sizeof what, "%s %s", fixture_today[i], m.cfg.tied ? "tied" : "untied");
            worst_model = fmax(worst_model, check_model_gradient(what, &m, 2, 8, 6, 3));
            model_free(&m);
        }
}

/* The same backward_state serves batch after batch: a second call gives the same;
 * a smaller batch (backward_state_set_batch) gives what a train of its size gives. */
static void test_reuse(void)
{
    fixture_shape sp = {.D = 16, .L = 2, .V = 23, .hd = 4, .H = h4, .KV = kv2, .F = f24, .style = ROPE_HALF};
    model m;
    fixture_model(&m, &sp, 9);
    int B = 2, T = 6, N = B * T;
    int tokens[12], targets[12], t2[12], g2[12];
    fixture_batch(tokens, targets, B, T, sp.V);
    fixture_batch(t2, g2, B, T, sp.V);
    backward_state *t = backward_state_new(&m, B, T);
    seen a, b;
    seen_init(&a, &m), seen_init(&b, &m);
    double l1 = model_loss_backward(&m, t, tokens, targets, record_grads, NULL, &a);
    model_loss_backward(&m, t, t2, g2, NULL, NULL, NULL); /* another batch in between, no sinks */
    double l2 = model_loss_backward(&m, t, tokens, targets, record_grads, NULL, &b);
    CHECK(l1 == l2);
    bool same = true;
    for (int i = 0; i < m.n_tensors; i++)
        same &= a.grad[i] && b.grad[i] && !memcmp(a.grad[i], b.grad[i], (size_t)m.tensors[i].numel * sizeof(float));
    CHECK(same);
    /* nothing scored: loss 0 and zero gradients */
    for (int i = 0; i < N; i++)
        g2[i] = -1;
    seen z;
    seen_init(&z, &m);
    CHECK(model_loss_backward(&m, t, tokens, g2, record_grads, NULL, &z) == 0);
    bool zero = true;
    for (int i = 0; i < m.n_tensors; i++)
        for (int64_t j = 0; z.grad[i] && j < m.tensors[i].numel; j++)
            zero &= z.grad[i][j] == 0;
    CHECK(zero);
    CHECK(backward_state_bytes(t) > (size_t)N * sp.D * 3 * sizeof(float));
    /* a smaller batch in the same buffers gives what buffers of its own size give */
    int tb[4] = {tokens[6], tokens[7], tokens[8], tokens[9]}, gb[4] = {tokens[7], -1, tokens[9], tokens[10]};
    backward_state_set_batch(t, 1, 4);
    backward_state *t1 = backward_state_new(&m, 1, 4);
    seen c1, c2;
    seen_init(&c1, &m), seen_init(&c2, &m);
    double s1 = model_loss_backward(&m, t, tb, gb, record_grads, NULL, &c1);
    double s2 = model_loss_backward(&m, t1, tb, gb, record_grads, NULL, &c2);
    CHECK(s1 == s2);
    same = true;
    for (int i = 0; i < m.n_tensors; i++)
        same &= c1.grad[i] && c2.grad[i] &&
                !memcmp(c1.grad[i], c2.grad[i], (size_t)m.tensors[i].numel * sizeof(float));
    CHECK(same);
    backward_state_set_batch(t, B, T); /* and back */
    CHECK(model_loss_backward(&m, t, tokens, targets, NULL, NULL, NULL) == l1);
    backward_state_free(t1);
    seen_free(&c1), seen_free(&c2);
    seen_free(&a), seen_free(&b), seen_free(&z);
    backward_state_free(t);
    model_free(&m);
}

/* Whether a and b hold the same gradient for every tensor of m, bit for bit. */
static bool same_grads(const model *m, const seen *a, const seen *b)
{
    bool same = true;
    for (int i = 0; i < m->n_tensors; i++)
        same &= a->grad[i] && b->grad[i] &&
                !memcmp(a->grad[i], b->grad[i], (size_t)m->tensors[i].numel * sizeof(float));
    return same;
}

/* Internals kept from the forward pass (backward_state_keep) give the loss and
 * gradients that recomputing them gives, bit for bit: the last layer kept, every
 * layer, a budget beyond them, none again; a smaller batch in kept buffers too.
 * backward_state_skip_outer: the layers' gradients alone, the same. The maps'
 * gradients by rows (backward_state_set_rows_sink): the same. */
static void check_keep(const char *what, const model *m, int B, int T)
{
    int N = B * T, L = m->cfg.n_layers;
    int *tokens = xmalloc(N * sizeof(int)), *targets = xmalloc(N * sizeof(int));
    fixture_batch(tokens, targets, B, T, m->cfg.vocab);
    backward_state *t = backward_state_new(m, B, T);
    size_t base = backward_state_bytes(t);
    seen ref;
    seen_init(&ref, m);
    double l0 = model_loss_backward(m, t, tokens, targets, record_grads, NULL, &ref);
    size_t one = backward_layer_kept_bytes(m, L - 1, B, T), all = 0;
    for (int l = 0; l < L; l++)
        all += backward_layer_kept_bytes(m, l, B, T);
    const size_t budgets[] = {one, all, 2 * all, 0}, want[] = {one, all, all, 0};
    int bad = 0;
    for (int k = 0; k < 4; k++) {
        size_t got = backward_state_keep(t, m, budgets[k]);
        bad += got != want[k] || backward_state_bytes(t) != base + got;
        seen s;
        seen_init(&s, m);
        bad += model_loss_backward(m, t, tokens, targets, record_grads, NULL, &s) != l0 || !same_grads(m, &ref, &s);
        seen_free(&s);
    }
    /* without the outer tensors: the layers' gradients as before, none of the others */
    backward_state_skip_outer(t, true);
    seen o;
    seen_init(&o, m);
    bad += model_loss_backward(m, t, tokens, targets, record_grads, NULL, &o) != l0;
    for (int i = 0; i < m->n_tensors; i++) {
        const char *rest;
        size_t bytes = (size_t)m->tensors[i].numel * sizeof(float);
        if (model_layer_of(m->tensors[i].name, &rest) >= 0)
            bad += !o.grad[i] || memcmp(o.grad[i], ref.grad[i], bytes);
        else
            bad += o.grad[i] != NULL;
    }
    seen_free(&o);
    backward_state_skip_outer(t, false);
    /* the maps' gradients by rows: the same bits (a fixture's maps are one panel), every tensor once */
    seen r;
    seen_init(&r, m);
    backward_state_set_rows_sink(t, record_rows);
    bad += model_loss_backward(m, t, tokens, targets, record_grads, NULL, &r) != l0 || !same_grads(m, &ref, &r);
    backward_state_set_rows_sink(t, NULL);
    bad += r.bad_record || r.n_calls != sink_calls(m) || delivered_not_once(&r);
    seen_free(&r);
    /* a smaller batch in the kept buffers gives what unkept buffers of its own size give */
    backward_state_keep(t, m, all);
    backward_state_set_batch(t, 1, T - 1);
    backward_state *t1 = backward_state_new(m, 1, T - 1);
    seen c1, c2;
    seen_init(&c1, m), seen_init(&c2, m);
    bad += model_loss_backward(m, t, tokens + T, targets + T, record_grads, NULL, &c1) !=
           model_loss_backward(m, t1, tokens + T, targets + T, record_grads, NULL, &c2);
    bad += !same_grads(m, &c1, &c2);
    fprintf(stderr, "    %-34s kept %zu + %zu bytes: %s\n", what, base, all, bad ? "DIFFERS" : "the same bits");
    CHECK(bad == 0);
    CHECK(all > 0);
    seen_free(&c1), seen_free(&c2), seen_free(&ref);
    backward_state_free(t1);
    backward_state_free(t);
    free(tokens), free(targets);
}

static void test_keep(void)
{
    static const int H[] = {4, 0, 2, 6, 0, 3}, KV[] = {2, 0, 1, 3, 0, 3}, F[] = {20, 12, 0, 7, 0, 16};
    fixture_shape sp = {.D = 16, .L = 3, .V = 19, .hd = 4, .H = h4, .KV = kv2, .F = f24, .style = ROPE_HALF};
    model m;
    fixture_model(&m, &sp, 31);
    check_keep("gqa", &m, 2, 6);
    model_free(&m);
    fixture_shape het = {.D = 12, .L = 6, .V = 17, .hd = 4, .H = H, .KV = KV, .F = F, .qkv_bias = true,
                         .o_bias = true, .down_bias = true, .style = ROPE_INTERLEAVED};
    fixture_model(&m, &het, 32);
    check_keep("heterogeneous", &m, 2, 5);
    model_free(&m);
    for (int i = 0; i < FIXTURE_TODAY_COUNT; i++) {
        json_t *j = fixture_config_json(fixture_today[i]);
        fixture_json_model(&m, j, 80 + i);
        json_decref(j);
        check_keep(fixture_today[i], &m, 2, 6);
        model_free(&m);
    }
}

/* ---- stories260K ---- */

/* The loss equals the forward pass's mean NLL; a sample of the gradient matches
 * finite differences of the reference with the real weights. */
static void test_stories260k(void)
{
    char *path = xasprintf("%s/models/stories260K/stories260K.bin", check_data_dir());
    if (!path_exists(path)) {
        fprintf(stderr, "    (skipped: %s missing)\n", path);
        free(path);
        return;
    }
    model m;
    model_load(&m, path, NULL);
    /* loss against model_forward + nll_accumulate, batch 3 x 32 */
    int B = 3, T = 32, N = B * T, V = m.cfg.vocab;
    int *tokens = xmalloc(N * sizeof(int)), *targets = xmalloc(N * sizeof(int));
    fixture_batch(tokens, targets, B, T, V);
    forward_state st;
    forward_state_init(&st, &m, B, T);
    model_forward(&m, &st, tokens);
    double nll = 0;
    int64_t count = 0;
    nll_accumulate(st.logits, targets, N, V, &nll, &count);
    backward_state *t = backward_state_new(&m, B, T);
    seen s;
    seen_init(&s, &m);
    double loss = model_loss_backward(&m, t, tokens, targets, record_grads, record_act, &s);
    check_seen(&s);
    CHECK_CLOSE(loss, nll / count, 1e-6);
    fprintf(stderr, "    stories260K: loss %.6f, forward mean NLL %.6f over %lld targets\n", loss, nll / count,
            (long long)count);
    seen_free(&s);
    backward_state_free(t);
    forward_state_free(&st);
    free(tokens), free(targets);
    /* gradients against finite differences on one short sequence */
    worst_model = fmax(worst_model, check_model_gradient("stories260K 1 x 8", &m, 1, 8, 2, 2));
    model_free(&m);
    free(path);
}

static void test_summary(void)
{
    fprintf(stderr, "    worst relative error: kernels %.2g, models %.2g (tolerance %g, floor %g of the largest)\n",
            worst_kernel, worst_model, FD_TOL, FD_FLOOR);
}

int main(int argc, char **argv)
{
    blas_init(argc, argv);
    set_progname(argv[0]);
    blas_set_threads(1);
    TEST(test_embedding_backward);
    TEST(test_rmsnorm_backward);
    TEST(test_matmul_backward);
    TEST(test_matmul_backward_rows);
    TEST(test_rope_backward);
    TEST(test_attention_backward);
    TEST(test_swiglu_backward);
    TEST(test_crossentropy_backward);
    TEST(test_model_mha);
    TEST(test_model_gqa);
    TEST(test_model_bias);
    TEST(test_model_heterogeneous);
    TEST(test_model_today);
    TEST(test_full_distill);
    TEST(test_reuse);
    TEST(test_keep);
    TEST(test_stories260k);
    TEST(test_summary);
    return check_report();
}
