/* matmul.c - products with weight tensors (see matmul.h). An fp32 weight is one
 * OpenBLAS sgemm on the tensor's data. A bf16 or f16 weight, where the CPU has
 * AMX tiles, is a tile product (base/amx.h: the same fp32 product, in another
 * summation order). Where the CPU's table has pare's own FMA product (base/gemm.h:
 * AVX2 CPUs, and AMD's with AVX-512), every product with an aligned weight of
 * any dtype, and the weight's gradient, is that product, which widens
 * half-precision weights as it packs them; a few rows (a token at a time) stay
 * with OpenBLAS. Elsewhere a
 * half-precision weight (f16, bf16), or an fp32 one that is
 * not aligned to its values (mapped from a file that put it at an odd offset),
 * is widened a panel of rows at a time into an fp32 buffer of PANEL_BYTES, and
 * each panel is one sgemm: the weight is never held widened in full. The
 * panel's rows are a block of W's outputs, so the forward writes a block of
 * out's columns and the input gradient adds a block of dout's columns times the
 * panel. The weight's gradient by rows (matmul_backward_rows) is made for the
 * same panels, each widened once for both.
 *
 * Letters: N rows, I/O a map's input/output width (nin/nout in code), P a panel's
 * rows, r rank. */
#include "compute/matmul.h"

#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "base/amx.h"
#include "base/cpu.h"
#include "base/gemm.h"
#include "base/parallel.h"
#include "base/util.h"

/* An fp32 panel's size. OpenBLAS packs the input anew for each panel's sgemm, so
 * a panel of P rows costs one pass over the input per P output rows; at 1 MB (64
 * rows of 4096) that packing took a quarter of a bf16 forward. Measured on the
 * 8-layer slice of bench-7b (10 x 64 tokens, 2 threads): 1 MB 15 tok/s, 4 MB 35,
 * 8 MB 42, 16 MB 41, 32 MB 37. */
#define PANEL_BYTES ((size_t)8 << 20)

static void check_matrix(const tensor *w)
{
    if (w->ndim != 2)
        die("%s: a linear map needs a matrix, not a tensor of %d dimension(s)", w->name ? w->name : "weight",
            w->ndim);
}

/* Whether sgemm takes w's data as they are: fp32, aligned. */
static bool in_place(const tensor *w) { return w->dtype == DTYPE_F32 && tensor_aligned(w); }

/* Whether w's products run on AMX tiles (base/amx.h): a bf16 or f16 weight, on a
 * CPU whose table has them. */
static bool on_tiles(const tensor *w)
{
    return (w->dtype == DTYPE_BF16 || w->dtype == DTYPE_F16) && cpu()->tiles;
}

static enum amx_weights tile_weights(const tensor *w) { return w->dtype == DTYPE_F16 ? AMX_F16 : AMX_BF16; }

/* Products of fewer rows stay with OpenBLAS (its matrix-vector kernels for one):
 * pare's product computes rows six at a time. */
#define FMA_MIN_ROWS 16

/* Whether products of N rows run on pare's own FMA product (base/gemm.h): a CPU
 * whose table has it; with a weight w, w aligned to its values too. */
static bool fma_rows(int N) { return cpu()->gemm && N >= FMA_MIN_ROWS; }
static bool on_fma(const tensor *w, int N) { return fma_rows(N) && tensor_aligned(w); }

/* w (O, I) as gemm's operand: W^T (I, O) when transposed, else W. */
static gemm_operand weight_operand(const tensor *w, bool transposed)
{
    enum gemm_dtype dt = w->dtype == DTYPE_BF16 ? GEMM_BF16 : w->dtype == DTYPE_F16 ? GEMM_F16 : GEMM_F32;
    return (gemm_operand){w->data, w->shape[1], dt, transposed};
}

/* fp32 values x with rows ld apart as gemm's operand, read transposed or not. */
static gemm_operand f32_operand(const float *x, int64_t ld, bool transposed)
{
    return (gemm_operand){x, ld, GEMM_F32, transposed};
}

/* At least 16, a multiple of 16, about PANEL_BYTES in fp32. */
int matmul_panel_rows(const tensor *w)
{
    int64_t p = (int64_t)(PANEL_BYTES / sizeof(float)) / (w->shape[1] ? w->shape[1] : 1);
    p = p < 16 ? 16 : p / 16 * 16;
    return (int)(p < w->shape[0] ? p : w->shape[0]);
}

typedef struct {
    float *buf;
    const tensor *w;
    int64_t start; /* the panel's first value in w */
} widen_job;

static void widen_part(void *ctx, int64_t b, int64_t e)
{
    const widen_job *j = ctx;
    tensor_get_f32(j->w, j->start + b, e - b, j->buf + b);
}

/* Panel of P rows from row o0 of w as fp32 into buf (P, I), on every thread
 * (OpenBLAS's are asleep meanwhile): exact, however it is cut. */
static void widen_panel(float *buf, const tensor *w, int o0, int P)
{
    widen_job j = {buf, w, (int64_t)o0 * w->shape[1]};
    parallel_for((int64_t)P * w->shape[1], 1 << 16, widen_part, &j);
}

/* fn(ctx, panel, o0, p) for each panel of w's rows [o0, o0 + p) (every panel
 * but the last of matmul_panel_rows(w)): p rows of I values in fp32, w's own
 * where it is fp32 in place, else widened (NULL without widen: not wanted). */
typedef void panel_fn(void *ctx, float *panel, int o0, int p);

static void each_panel(const tensor *w, bool widen, panel_fn *fn, void *ctx)
{
    int nout = (int)w->shape[0], nin = (int)w->shape[1], P = matmul_panel_rows(w);
    widen = widen && !in_place(w);
    float *buf = widen ? xmalloc_aligned((size_t)P * nin * sizeof(float)) : NULL;
    for (int o0 = 0; o0 < nout; o0 += P) {
        int p = nout - o0 < P ? nout - o0 : P;
        float *panel = in_place(w) ? tensor_f32(w) + (size_t)o0 * nin : buf;
        if (widen)
            widen_panel(buf, w, o0, p);
        fn(ctx, panel, o0, p);
    }
    free(buf);
}

/* A product's operands, for the panels' callbacks. */
typedef struct {
    float *out;
    const float *in;
    int N, nin, nout;
    float beta;
} product_job;

static void product_panel(void *ctx, float *panel, int o0, int p)
{
    const product_job *j = ctx;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, j->N, p, j->nin, 1.0f, j->in, j->nin, panel, j->nin, j->beta,
                j->out + o0, j->nout);
}

/* out (N, O) = in (N, I) @ W^T + beta * out. */
static void product(float *out, const float *in, const tensor *w, float beta, int N)
{
    int nout = (int)w->shape[0], nin = (int)w->shape[1];
    check_matrix(w);
    if (on_fma(w, N)) {
        gemm_operand a = f32_operand(in, nin, false), b = weight_operand(w, true);
        cpu()->gemm(out, nout, &a, &b, N, nout, nin, beta != 0.0f);
        return;
    }
    if (in_place(w)) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, nout, nin, 1.0f, in, nin, w->data, nin, beta, out,
                    nout);
        return;
    }
    if (on_tiles(w)) {
        amx_product(out, in, w->data, tile_weights(w), N, nout, nin, beta != 0.0f);
        return;
    }
    product_job j = {out, in, N, nin, nout, beta};
    each_panel(w, true, product_panel, &j);
}

void matmul_forward(float *out, const float *in, const tensor *w, const tensor *bias, int N)
{
    int nout = (int)w->shape[0];
    float beta = 0.0f;
    if (bias) {
        const float *b = tensor_vector(bias);
        for (int n = 0; n < N; n++)
            memcpy(out + (size_t)n * nout, b, (size_t)nout * sizeof(float));
        beta = 1.0f;
    }
    product(out, in, w, beta, N);
}

void matmul_accumulate(float *out, const float *in, const tensor *w, const tensor *bias, int N)
{
    int nout = (int)w->shape[0];
    product(out, in, w, 1.0f, N);
    if (bias) {
        const float *b = tensor_vector(bias);
        for (int n = 0; n < N; n++)
            for (int o = 0; o < nout; o++)
                out[(size_t)n * nout + o] += b[o];
    }
}

static void input_gradient_panel(void *ctx, float *panel, int o0, int p)
{
    const product_job *j = ctx; /* out din, in dout */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, j->N, j->nin, p, 1.0f, j->in + o0, j->nout, panel, j->nin,
                1.0f, j->out, j->nin);
}

/* din (N, I) += dout (N, O) @ W (O, I): for a half-precision W, the sum over
 * panels of dout's columns [o0, o0 + P) times the panel's rows. */
static void input_gradient(float *din, const float *dout, const tensor *w, int N)
{
    int nout = (int)w->shape[0], nin = (int)w->shape[1];
    if (on_fma(w, N)) {
        gemm_operand a = f32_operand(dout, nout, false), b = weight_operand(w, false);
        cpu()->gemm(din, nin, &a, &b, N, nin, nout, true);
        return;
    }
    if (in_place(w)) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, nin, nout, 1.0f, dout, nout, w->data, nin, 1.0f,
                    din, nin);
        return;
    }
    if (on_tiles(w)) {
        amx_input_gradient(din, dout, w->data, tile_weights(w), N, nout, nin);
        return;
    }
    product_job j = {din, dout, N, nin, nout, 1.0f};
    each_panel(w, true, input_gradient_panel, &j);
}

/* db (O) += the column sums of dout (N, O). */
static void bias_gradient(float *db, const float *dout, int N, int nout)
{
    for (int n = 0; n < N; n++) {
        const float *d = dout + (size_t)n * nout;
        for (int o = 0; o < nout; o++)
            db[o] += d[o];
    }
}

/* dw (P, I) = dout^T @ in, or += when accumulate: the gradient of P rows of a
 * weight w (O, I) from dout's columns (N, P, rows O apart) and in (N, I). */
static void weight_gradient(float *dw, const float *dout, const float *in, const tensor *w, int P, int N,
                            bool accumulate)
{
    int nout = (int)w->shape[0], nin = (int)w->shape[1];
    if (fma_rows(N)) {
        gemm_operand a = f32_operand(dout, nout, true), b = f32_operand(in, nin, false);
        cpu()->gemm(dw, nin, &a, &b, P, nin, N, accumulate);
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, P, nin, N, 1.0f, dout, nout, in, nin, accumulate ? 1.0f : 0.0f,
                dw, nin);
}

/* For out = in @ W^T + b: din (N, I) += dout (N, O) @ W (O, I), dw (O, I) +=
 * dout^T @ in, db (O) += column sums of dout. Any of din, dw, db may be NULL. */
void matmul_backward(float *din, float *dw, float *db, const float *dout, const float *in, const tensor *w, int N)
{
    int nout = (int)w->shape[0];
    check_matrix(w);
    if (din)
        input_gradient(din, dout, w, N);
    if (dw)
        weight_gradient(dw, dout, in, w, nout, N, true);
    if (db)
        bias_gradient(db, dout, N, nout);
}

/* matmul_backward_rows's operands, for the panels' callback. */
typedef struct {
    product_job dx;        /* out din += in dout @ W, panel by panel (din NULL: done, or not wanted) */
    float *grad;           /* (panel rows, I) */
    const float *in;       /* the map's input (N, I) */
    const tensor *w;
    const weight_rows_sink *rows;
} rows_job;

/* The panel's share of din, then its rows of dw = dout[:, o0 : o0 + p]^T @ in, to the sink. */
static void rows_panel(void *ctx, float *panel, int o0, int p)
{
    rows_job *j = ctx;
    if (j->dx.out)
        input_gradient_panel(&j->dx, panel, o0, p);
    weight_gradient(j->grad, j->dx.in + o0, j->in, j->w, p, j->dx.N, false);
    j->rows->fn(j->rows->ctx, j->w, o0, o0 + p, panel, j->grad);
}

/* A half-precision W off the tiles and off pare's FMA product is widened a panel
 * at a time, and each panel serves din's share, its rows of dw and the sink; an
 * fp32 W, or one on the tiles or the FMA product (which widen as they pack),
 * gives din in one product first, then its rows as they are (or none). */
void matmul_backward_rows(float *din, float *db, const float *dout, const float *in, const tensor *w, int N,
                          const weight_rows_sink *rows)
{
    int nout = (int)w->shape[0], nin = (int)w->shape[1];
    check_matrix(w);
    bool widen = !in_place(w) && !on_tiles(w) && !on_fma(w, N);
    if (din && !widen) {
        input_gradient(din, dout, w, N);
        din = NULL;
    }
    rows_job j = {{din, dout, N, nin, nout, 1.0f}, NULL, in, w, rows};
    j.grad = xmalloc_aligned((size_t)matmul_panel_rows(w) * nin * sizeof(float));
    each_panel(w, widen, rows_panel, &j);
    free(j.grad);
    if (db)
        bias_gradient(db, dout, N, nout);
}

void embedding_forward(float *out, const int *tokens, const tensor *emb, int N)
{
    check_matrix(emb);
    int V = (int)emb->shape[0], D = (int)emb->shape[1];
    for (int n = 0; n < N; n++) {
        int tok = tokens[n];
        if (tok < 0 || tok >= V)
            die("token id %d out of range (vocabulary of %d)", tok, V);
        tensor_get_f32(emb, (int64_t)tok * D, D, out + (size_t)n * D);
    }
}

/* demb (V, D) += dout's rows at their tokens' rows. */
void embedding_backward(float *demb, const float *dout, const int *tokens, int N, int D)
{
    for (int n = 0; n < N; n++) {
        float *g = demb + (size_t)tokens[n] * D;
        const float *d = dout + (size_t)n * D;
        for (int i = 0; i < D; i++)
            g[i] += d[i];
    }
}

typedef struct {
    tensor *w;
    float scale;
    const float *B, *A;
    int r, nin;
} lowrank_job;

static void lowrank_panel(void *ctx, float *panel, int o0, int p)
{
    const lowrank_job *j = ctx;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, p, j->nin, j->r, j->scale, j->B + (size_t)o0 * j->r, j->r,
                j->A, j->nin, 1.0f, panel, j->nin);
    tensor_set_f32(j->w, (int64_t)o0 * j->nin, (int64_t)p * j->nin, panel);
}

/* A half-precision W: each panel widened, updated, and rounded back (to nearest
 * even) into W's storage. */
void matmul_add_lowrank(tensor *w, float scale, const float *B, const float *A, int r)
{
    int nout = (int)w->shape[0], nin = (int)w->shape[1];
    check_matrix(w);
    if (in_place(w)) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nout, nin, r, scale, B, r, A, nin, 1.0f, w->data, nin);
        return;
    }
    lowrank_job j = {w, scale, B, A, r, nin};
    each_panel(w, true, lowrank_panel, &j);
}
