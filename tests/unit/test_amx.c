/* test_amx.c - the AMX tile products (base/amx.h) against sums in double of the
 * same bf16 weights and fp32 activations, and against OpenBLAS's sgemm of the
 * weights widened: shapes that leave every edge of a tile, a k chunk, a row sweep,
 * a panel and a packing of rows partly filled; activations over 40 binades; a
 * weight at an odd address; accumulation; infinities and NaNs. Skipped (and said
 * so) where the CPU or the system has no tiles. */
#include <stdint.h>

#include <cblas.h>

#include "base/amx.h"
#include "base/blas.h"
#include "base/cpu.h"
#include "base/rng.h"
#include "check.h"
#include "model/tensor.h"

#define U 0x1p-24 /* fp32's unit roundoff */

typedef struct {
    int N, nout, nin;
} shape;

static const shape shapes[] = {
    {1, 1, 1},     {3, 5, 2},     {5, 17, 33},   {33, 40, 31},    {64, 64, 64},  {71, 100, 70},
    {40, 33, 1000}, {40, 20, 2100}, {300, 70, 64}, {40, 2100, 1024}, {11000, 20, 1024},
};

/* An activation: a normal draw scaled by 2^e, e uniform in [-20, 20). */
static float activation(uint64_t *rng)
{
    double u1 = rng_unit(rng), u2 = rng_unit(rng);
    double g = sqrt(-2 * log(u1 + 1e-300)) * cos(6.283185307179586 * u2);
    return (float)ldexp(g, (int)(rng_unit(rng) * 40) - 20);
}

/* Random weights (O, I) of kind wt and their fp32 values: bf16 in [-1, 1), f16
 * over 2^-20 to 2^4 (its subnormals below 2^-14 included). */
static void weights(enum amx_weights wt, uint16_t *w, float *wf, size_t n, uint64_t *rng)
{
    for (size_t i = 0; i < n; i++) {
        double u = rng_unit(rng) * 2 - 1;
        if (wt == AMX_BF16) {
            w[i] = f32_to_bf16((float)u);
            wf[i] = bf16_to_f32(w[i]);
        } else {
            w[i] = f32_to_f16((float)ldexp(u, (int)(rng_unit(rng) * 24) - 20));
            wf[i] = f16_to_f32(w[i]);
        }
    }
}

/* The largest |got - exact| / sum |terms| over out (rows, cols), exact in double:
 * out[r][c] = init[r][c] + sum_k a[r][k] * b(k, c), b(k, c) = bt ? B[c][k] : B[k][c]. */
static double worst(const float *got, const float *init, const float *a, const float *B, bool bt, int rows, int cols,
                    int K)
{
    double w = 0;
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            double s = init ? init[(size_t)r * cols + c] : 0, mag = fabs(s);
            for (int k = 0; k < K; k++) {
                double t = (double)a[(size_t)r * K + k] * (bt ? B[(size_t)c * K + k] : B[(size_t)k * cols + c]);
                s += t, mag += fabs(t);
            }
            double e = fabs(got[(size_t)r * cols + c] - s) / (mag > 0 ? mag : 1);
            w = e > w ? e : w;
        }
    return w;
}

static void check_shape(enum amx_weights wt, shape s, uint64_t *rng)
{
    size_t nw = (size_t)s.nout * s.nin;
    uint16_t *w = malloc(nw * sizeof *w);
    char *odd = malloc(nw * sizeof *w + 1); /* the weight at an odd address */
    float *wf = malloc(nw * sizeof *wf), *x = malloc((size_t)s.N * s.nin * sizeof *x);
    float *g = malloc((size_t)s.N * s.nout * sizeof *g), *out = malloc((size_t)s.N * s.nout * sizeof *out);
    float *init = malloc((size_t)s.N * s.nout * sizeof *init), *ref = malloc((size_t)s.N * s.nout * sizeof *ref);
    float *din = malloc((size_t)s.N * s.nin * sizeof *din), *dinit = malloc((size_t)s.N * s.nin * sizeof *dinit);
    float *dref = malloc((size_t)s.N * s.nin * sizeof *dref);
    weights(wt, w, wf, nw, rng);
    memcpy(odd + 1, w, nw * sizeof *w);
    for (size_t i = 0; i < (size_t)s.N * s.nin; i++)
        x[i] = activation(rng), dinit[i] = activation(rng);
    for (size_t i = 0; i < (size_t)s.N * s.nout; i++)
        g[i] = activation(rng), init[i] = activation(rng);
    /* Bound: the sum of 3 I (f16: 6 I) exact products in fp32, plus the start value. */
    int terms = wt == AMX_F16 ? 6 : 3;
    double bound = (terms * s.nin + 2.0) * U;

    /* out = x W^T: tiles against double, and sgemm's error for scale */
    amx_product(out, x, odd + 1, wt, s.N, s.nout, s.nin, false);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s.N, s.nout, s.nin, 1.0f, x, s.nin, wf, s.nin, 0.0f, ref, s.nout);
    double e_tiles = worst(out, NULL, x, wf, true, s.N, s.nout, s.nin), e_sgemm = worst(ref, NULL, x, wf, true, s.N, s.nout, s.nin);
    CHECK(e_tiles <= bound);
    CHECK(e_tiles <= 4 * e_sgemm + 4 * U);
    /* out = init + x W^T */
    memcpy(out, init, (size_t)s.N * s.nout * sizeof *out);
    amx_product(out, x, w, wt, s.N, s.nout, s.nin, true);
    double e_acc = worst(out, init, x, wf, true, s.N, s.nout, s.nin);
    CHECK(e_acc <= bound);
    /* din = dinit + g W */
    memcpy(din, dinit, (size_t)s.N * s.nin * sizeof *din);
    amx_input_gradient(din, g, odd + 1, wt, s.N, s.nout, s.nin);
    memcpy(dref, dinit, (size_t)s.N * s.nin * sizeof *dref);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s.N, s.nin, s.nout, 1.0f, g, s.nout, wf, s.nin, 1.0f, dref, s.nin);
    double e_grad = worst(din, dinit, g, wf, false, s.N, s.nin, s.nout);
    double e_grad_sgemm = worst(dref, dinit, g, wf, false, s.N, s.nin, s.nout);
    CHECK(e_grad <= (terms * s.nout + 2.0) * U);
    CHECK(e_grad <= 4 * e_grad_sgemm + 4 * U);
    fprintf(stderr, "    %s %5d x %4d x %4d: error / sum|terms| forward %.2g (sgemm %.2g), accumulated %.2g, "
                    "input gradient %.2g (sgemm %.2g)\n",
            wt == AMX_F16 ? "f16 " : "bf16", s.N, s.nout, s.nin, e_tiles, e_sgemm, e_acc, e_grad, e_grad_sgemm);
    free(w), free(odd), free(wf), free(x), free(g), free(out), free(init), free(ref), free(din), free(dinit), free(dref);
}

static void test_shapes(void)
{
    uint64_t rng = 21;
    for (int wt = AMX_BF16; wt <= AMX_F16; wt++)
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
            check_shape((enum amx_weights)wt, shapes[i], &rng);
}

/* One term: x w as three (f16: six) exact products summed in fp32, within 2
 * roundings of it whatever x's low bits (a lost third part would be off by about
 * 2^-16 of it, 256 roundings; a lost f16 lo part by 2^-11). */
static void test_single_terms(void)
{
    enum { N = 2000 };
    uint64_t rng = 5;
    float *x = malloc(N * sizeof *x), *out = malloc(N * sizeof *out);
    /* bf16 -1.6875; f16 -1.6875 - 2^-10: its lo part is not zero */
    uint16_t w[2] = {f32_to_bf16(-1.6875f), f32_to_f16(-1.6875f - 0x1p-10f)};
    float wf[2] = {bf16_to_f32(w[0]), f16_to_f32(w[1])};
    for (int i = 0; i < N; i++)
        x[i] = activation(&rng);
    double most = 0;
    for (int wt = AMX_BF16; wt <= AMX_F16; wt++) {
        amx_product(out, x, &w[wt], (enum amx_weights)wt, N, 1, 1, false);
        for (int i = 0; i < N; i++) {
            double exact = (double)x[i] * wf[wt], e = fabs(out[i] - exact) / (U * fabs(exact));
            most = e > most ? e : most;
        }
    }
    fprintf(stderr, "    largest error %.2f roundings\n", most);
    CHECK(most <= 5.01); /* at most 5 roundings of 2^-24 each (6 terms), and their products */
    free(x), free(out);
}

/* inf and NaN in the activations go through as sgemm's do (with f16 weights an
 * infinity may come out as NaN). */
static void test_non_finite(void)
{
    enum { N = 4, NOUT = 3, NIN = 2 };
    float x[N * NIN] = {INFINITY, 1, -INFINITY, 1, NAN, 1, 1, 2};
    /* a NaN whose payload is in the low 16 bits only: top half alone would read inf */
    uint32_t quiet_low = 0x7f800001u;
    memcpy(&x[6], &quiet_low, sizeof quiet_low);
    uint16_t w[2][NOUT * NIN];
    float wf[NOUT * NIN] = {2, 1, -2, 1, 0, 1};
    for (int i = 0; i < NOUT * NIN; i++)
        w[AMX_BF16][i] = f32_to_bf16(wf[i]), w[AMX_F16][i] = f32_to_f16(wf[i]);
    float out[N * NOUT], ref[N * NOUT];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, NOUT, NIN, 1.0f, x, NIN, wf, NIN, 0.0f, ref, NOUT);
    for (int wt = AMX_BF16; wt <= AMX_F16; wt++) {
        amx_product(out, x, w[wt], (enum amx_weights)wt, N, NOUT, NIN, false);
        for (int i = 0; i < N * NOUT; i++) /* f16: an infinity times a lo part of 0 is NaN */
            CHECK(isnan(ref[i]) ? isnan(out[i]) : wt == AMX_F16 && isinf(ref[i]) ? !isfinite(out[i]) : out[i] == ref[i]);
    }
}

int main(void)
{
    if (!cpu_supports(CPU_AMX)) {
        fprintf(stderr, "  amx: skipped, this CPU or system has no AMX-BF16 tiles\n");
        return check_report();
    }
    blas_set_threads(2);
    TEST(test_single_terms);
    TEST(test_non_finite);
    TEST(test_shapes);
    return check_report();
}
