/* test_gemm.c - pare's own FMA product (base/gemm.h) against sums in double: every
 * way an operand is read (either transposed or not, B in fp32, bf16 or f16 at an
 * address that is not a vector's), shapes that leave a tile, a sliver, a group of
 * slivers and a block of the summed width partly filled, C inside a wider matrix,
 * accumulation, the same bits on one thread as on two, infinities and NaNs; for
 * each build of it the CPU can run (AVX2; AVX-512), and the two builds' bits the
 * same. Skipped (and said so) where the CPU has no AVX2, FMA and F16C. */
#include <stdint.h>

#include "base/blas.h"
#include "base/cpu.h"
#include "base/gemm.h"
#include "base/rng.h"
#include "check.h"
#include "model/tensor.h"

#define U 0x1p-24 /* fp32's unit roundoff */

typedef struct {
    int M, N, K;
} shape;

/* tiles of 6 x 16 (6 x 32), groups of 16 (8) slivers, blocks of up to 512 of K, 2040 rows of A at a time */
static const shape shapes[] = {
    {1, 1, 1},    {5, 15, 7},    {6, 16, 8},     {7, 17, 9},      {13, 33, 511},
    {12, 32, 512}, {40, 300, 513}, {100, 257, 64}, {19, 1000, 1100}, {64, 520, 40}, {2100, 20, 70},
    {6, 31, 8},   {7, 33, 9},
};

/* the build under test */
static gemm_fn *gemm;

/* A matrix of rows x cols stored with rows ld apart, read as (cols, rows) when
 * transposed: an operand of gemm and the fp32 values it holds (ref[r][c], the
 * operand's element (r, c), packed). */
typedef struct {
    gemm_operand op;
    void *mem;
    float *ref;
} matrix;

static const char *const dtype_names[] = {"f32", "bf16", "f16"};

/* A (rows, cols) operand of dtype: values uniform in [-1, 1) times 2^e, e in [-8, 8) (f16's
 * range), its storage one value past an aligned address with 3 values of slack per
 * row. */
static matrix make(int rows, int cols, enum gemm_dtype dtype, bool transposed, uint64_t *rng)
{
    matrix m = {{NULL, (transposed ? rows : cols) + 3, dtype, transposed}, NULL, malloc((size_t)rows * cols * sizeof(float))};
    int64_t outer = transposed ? cols : rows, n = outer * m.op.ld + 1;
    size_t es = dtype == GEMM_F32 ? 4 : 2;
    m.mem = calloc((size_t)n, es);
    m.op.data = (char *)m.mem + es;
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            float v = (float)ldexp(rng_unit(rng) * 2 - 1, (int)(rng_unit(rng) * 16) - 8);
            int64_t i = transposed ? (int64_t)c * m.op.ld + r : (int64_t)r * m.op.ld + c;
            if (dtype == GEMM_BF16) {
                uint16_t h = f32_to_bf16(v);
                memcpy((uint16_t *)m.op.data + i, &h, 2);
                v = bf16_to_f32(h);
            } else if (dtype == GEMM_F16) {
                uint16_t h = f32_to_f16(v);
                memcpy((uint16_t *)m.op.data + i, &h, 2);
                v = f16_to_f32(h);
            } else {
                memcpy((float *)m.op.data + i, &v, 4);
            }
            m.ref[(size_t)r * cols + c] = v;
        }
    return m;
}

static void drop(matrix *m) { free(m->mem), free(m->ref); }

/* The largest |C - exact| / sum |terms| over C (M, N) with rows ldc apart, exact
 * in double: C0 + A @ B (C0 NULL: 0). */
static double worst(const float *C, int64_t ldc, const float *C0, const float *A, const float *B, shape s)
{
    double w = 0;
    for (int m = 0; m < s.M; m++)
        for (int n = 0; n < s.N; n++) {
            double sum = C0 ? C0[m * ldc + n] : 0, mag = fabs(sum);
            for (int k = 0; k < s.K; k++) {
                double t = (double)A[(size_t)m * s.K + k] * B[(size_t)k * s.N + n];
                sum += t, mag += fabs(t);
            }
            double e = fabs(C[m * ldc + n] - sum) / (mag > 0 ? mag : 1);
            w = e > w ? e : w;
        }
    return w;
}

/* C (M, N) inside a matrix of N + 5 columns, whose other values must stay. */
static void check_shape(shape s, enum gemm_dtype bt, bool a_t, bool b_t, uint64_t *rng)
{
    matrix A = make(s.M, s.K, GEMM_F32, a_t, rng), B = make(s.K, s.N, bt, b_t, rng);
    int64_t ldc = s.N + 5, nc = s.M * ldc;
    float *C = malloc((size_t)nc * sizeof *C), *C0 = malloc((size_t)nc * sizeof *C0);
    float *C1 = malloc((size_t)nc * sizeof *C1);
    for (int64_t i = 0; i < nc; i++)
        C0[i] = (float)(rng_unit(rng) * 2 - 1);
    double bound = (s.K + 2.0) * U;

    memcpy(C, C0, (size_t)nc * sizeof *C);
    gemm(C, ldc, &A.op, &B.op, s.M, s.N, s.K, false);
    double e_set = worst(C, ldc, NULL, A.ref, B.ref, s);
    CHECK(e_set <= bound);
    bool kept = true;
    for (int m = 0; m < s.M; m++)
        kept &= memcmp(C + m * ldc + s.N, C0 + m * ldc + s.N, 5 * sizeof *C) == 0;
    CHECK(kept);

    memcpy(C, C0, (size_t)nc * sizeof *C);
    gemm(C, ldc, &A.op, &B.op, s.M, s.N, s.K, true);
    double e_add = worst(C, ldc, C0, A.ref, B.ref, s);
    CHECK(e_add <= bound);

    /* one thread: the same bits */
    blas_set_threads(1);
    memcpy(C1, C0, (size_t)nc * sizeof *C1);
    gemm(C1, ldc, &A.op, &B.op, s.M, s.N, s.K, true);
    blas_set_threads(2);
    CHECK(memcmp(C, C1, (size_t)nc * sizeof *C) == 0);

    if (bt == GEMM_F32 || (!a_t && b_t))
        fprintf(stderr, "    %4d x %4d x %4d, A%s, B %-4s%s: error / sum|terms| %.2g, accumulated %.2g\n", s.M, s.N,
                s.K, a_t ? "^T" : "  ", dtype_names[bt], b_t ? "^T" : "  ", e_set, e_add);
    drop(&A), drop(&B);
    free(C), free(C0), free(C1);
}

static void test_shapes(void)
{
    uint64_t rng = 13;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int bt = GEMM_F32; bt <= GEMM_F16; bt++)
            for (int t = 0; t < 4; t++)
                check_shape(shapes[i], (enum gemm_dtype)bt, t & 1, t & 2, &rng);
}

/* A 7B layer's product, weights bf16 read transposed as the forward reads them:
 * sampled values against double. */
static void test_layer_shape(void)
{
    enum { M = 64, N = 11008, K = 4096 };
    uint64_t rng = 17;
    matrix A = make(M, K, GEMM_F32, false, &rng), B = make(K, N, GEMM_BF16, true, &rng);
    float *C = malloc((size_t)M * N * sizeof *C);
    gemm(C, N, &A.op, &B.op, M, N, K, false);
    double w = 0;
    for (int i = 0; i < 2000; i++) {
        int m = (int)(rng_unit(&rng) * M), n = (int)(rng_unit(&rng) * N);
        double sum = 0, mag = 0;
        for (int k = 0; k < K; k++) {
            double t = (double)A.ref[(size_t)m * K + k] * B.ref[(size_t)k * N + n];
            sum += t, mag += fabs(t);
        }
        double e = fabs(C[(size_t)m * N + n] - sum) / mag;
        w = e > w ? e : w;
    }
    fprintf(stderr, "    %d x %d x %d, B bf16^T: error / sum|terms| %.2g over 2000 values\n", M, N, K, w);
    CHECK(w <= (K + 2.0) * U);
    drop(&A), drop(&B);
    free(C);
}

/* inf and NaN go through as in the sums: NaN where a NaN or inf - inf or 0 x inf
 * is among the terms, else the infinity. */
static void test_non_finite(void)
{
    enum { M = 4, N = 3, K = 2 };
    float a[M * K] = {INFINITY, 1, -INFINITY, 1, NAN, 1, 1, 2};
    float b[K * N] = {2, -2, 0, 1, 1, 1};
    float c[M * N];
    gemm_operand A = {a, K, GEMM_F32, false}, B = {b, N, GEMM_F32, false};
    gemm(c, N, &A, &B, M, N, K, false);
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            float want = a[m * K] * b[n] + a[m * K + 1] * b[N + n];
            CHECK(isnan(want) ? isnan(c[m * N + n]) : c[m * N + n] == want);
        }
}

/* The AVX-512 build sums the same terms in the same order as the AVX2 build:
 * the same bits, for every kind of operand. */
static void test_builds_agree(void)
{
    uint64_t rng = 19;
    const shape s = {40, 300, 600};
    for (int bt = GEMM_F32; bt <= GEMM_F16; bt++)
        for (int t = 0; t < 4; t++) {
            matrix A = make(s.M, s.K, GEMM_F32, t & 1, &rng), B = make(s.K, s.N, (enum gemm_dtype)bt, t & 2, &rng);
            float *C2 = malloc((size_t)s.M * s.N * sizeof *C2), *C5 = malloc((size_t)s.M * s.N * sizeof *C5);
            gemm_fma_avx2(C2, s.N, &A.op, &B.op, s.M, s.N, s.K, false);
            gemm_fma_avx512(C5, s.N, &A.op, &B.op, s.M, s.N, s.K, false);
            CHECK(memcmp(C2, C5, (size_t)s.M * s.N * sizeof *C2) == 0);
            drop(&A), drop(&B);
            free(C2), free(C5);
        }
}

int main(void)
{
    if (!cpu_supports(CPU_AVX2)) {
        fprintf(stderr, "  gemm: skipped, this CPU has no AVX2, FMA and F16C\n");
        return check_report();
    }
    blas_set_threads(2);
    gemm_fn *const builds[] = {gemm_fma_avx2, gemm_fma_avx512};
    for (int b = 0; b < 2; b++) {
        if (b == 1 && !cpu_supports(CPU_AVX512)) {
            fprintf(stderr, "  gemm, AVX-512 build: skipped, this CPU has no AVX-512\n");
            break;
        }
        fprintf(stderr, "  the %s build\n", b ? "AVX-512" : "AVX2");
        gemm = builds[b];
        TEST(test_shapes);
        TEST(test_layer_shape);
        TEST(test_non_finite);
        if (b == 1)
            TEST(test_builds_agree);
    }
    return check_report();
}
