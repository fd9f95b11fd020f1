/* gemm.c - pare's own product for AVX2 and FMA (see gemm.h). Built twice (the
 * Makefile): with the AVX2 flags (gemm_fma_avx2, tiles of 8-float vectors) and
 * with AVX-512's (gemm_fma_avx512, of 16); the tables of base/cpu.h lead here.
 *
 * The loops block the product for a core's caches, as GotoBLAS and BLIS do, with
 * the roles set for a model's layers, where A is some hundreds of rows of
 * activations and B a weight of millions of values. Each thread takes a range
 * of C's columns, in slivers of NR, and for each chunk of up to MC rows of A:
 *
 *   for each block of the summed width (at most KB, the blocks as even as can be):
 *     packs A's block (rows x KB) in strips of MR rows    (1.3 MB for 640 rows)
 *     for each group of GROUP slivers of its range:
 *       packs (and widens) B's slivers (KB x NR each)     (L2: 512 KB)
 *       for each strip of A:                              (L1: 12 KB)
 *         for each sliver of the group: C's MR x NR tile += strip @ sliver
 *
 * A strip stays in L1 while the group's slivers go by, and C's tiles are visited
 * along its rows, where the hardware's prefetcher follows them. Measured held to
 * AVX2 on a Sapphire Rapids (2 threads, 642 x 11008 x 4096 with bf16 weights, a
 * slice's gate_proj, its FMA peak 249 GFLOP/s): 204-221 GFLOP/s against OpenBLAS
 * 0.3.21's Haswell sgemm's 186-205 on the same weights already widened
 * (bench_gemm has every product of a layer). Visiting the tiles down C's columns
 * instead (each on pages of its own) cost 10%; KB of 256, 384 or 768 were slower;
 * a prefetch of each tile before its sums gained 4%; reading B a row of the
 * group at a time (not a sliver at a time) took the weight gradient of down_proj
 * from 0.82 to 0.93 of sgemm's speed. A prefetch of B's rows ahead of the packing
 * gained nothing that could be measured. On an AMD EPYC (Zen 4: 512-bit
 * operations run as two halves; its FMA peak 220-225 GFLOP/s on 2 cores) the
 * AVX2 build ran at 0.96-1.02x OpenBLAS's Haswell sgemm, and the AVX-512 build
 * at 213-220 GFLOP/s against 178-209 for OpenBLAS's Cooperlake (AVX-512)
 * sgemm, 1.03-1.08x, on the same weights already widened. Packing A's full
 * strips eight values of a row at a time (8 x 8 turns) gained nothing there.
 *
 * Letters: M, N, K as in gemm.h; kc the width of a block, m0 and n0 a tile's
 * first row and column. */
#include "base/gemm.h"

#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "base/cpu_vector.h"
#include "base/parallel.h"
#include "base/util.h"

#if !defined(CPU_VARIANT)
#error "gemm.c is compiled with -DCPU_VARIANT=avx2|avx512 (see the Makefile)"
#endif

enum {
    MR = 6,           /* rows of a tile: 12 accumulators */
    NR = 2 * VW,      /* columns of a tile, of a sliver: two vectors */
    KB = 512,         /* summed width of a block */
    GROUP = 256 / NR, /* slivers packed at a time (kc x 256 values: 512 KB) */
    MC = 2040,        /* rows of A packed at a time, a multiple of MR (4 MB; a weight's gradient has thousands) */
};

typedef struct {
    float *C;
    int64_t ldc;
    const gemm_operand *A, *B;
    int M, N, K;
    bool accumulate;
} gemm_job;

/* ---- reading the operands ---- */

static inline float value(const gemm_operand *x, int64_t i)
{
    switch (x->dtype) {
    case GEMM_BF16: {
        uint32_t u = (uint32_t)((const uint16_t *)x->data)[i] << 16;
        float f;
        memcpy(&f, &u, sizeof f);
        return f;
    }
    case GEMM_F16:
        return _cvtsh_ss(((const uint16_t *)x->data)[i]);
    default:
        return ((const float *)x->data)[i];
    }
}

/* Element (r, c) of x. */
static inline float element(const gemm_operand *x, int64_t r, int64_t c)
{
    return value(x, x->transposed ? c * x->ld + r : r * x->ld + c);
}

/* Eight consecutive values from i of data of dtype dt, as fp32. */
static inline __m256 load8(const void *data, enum gemm_dtype dt, int64_t i)
{
    switch (dt) {
    case GEMM_BF16: {
        __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)data + i));
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    case GEMM_F16:
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)data + i)));
    default:
        return _mm256_loadu_ps((const float *)data + i);
    }
}

/* ---- packing ---- */

/* A's rows [m0, m0 + MR) by [k0, k0 + kc) into a strip (kc, MR): the strip's
 * row k holds the MR values the tile broadcasts at step k (rows past M as 0). */
static void pack_strip(float *strip, const gemm_operand *A, int M, int m0, int k0, int kc)
{
    int rows = M - m0 < MR ? M - m0 : MR;
    if (rows < MR)
        memset(strip, 0, (size_t)kc * MR * sizeof(float));
    const float *a = A->data;
    if (A->transposed) { /* element (m, k) at a[k * ld + m]: a strip's row is in one piece */
        for (int k = 0; k < kc; k++)
            memcpy(strip + (size_t)k * MR, a + (int64_t)(k0 + k) * A->ld + m0, (size_t)rows * sizeof(float));
        return;
    }
    for (int r = 0; r < rows; r++) {
        const float *row = a + (int64_t)(m0 + r) * A->ld + k0;
        for (int k = 0; k < kc; k++)
            strip[(size_t)k * MR + r] = row[k];
    }
}

/* out[j][k] = in[k][j] for an 8 x 8 block of fp32 (rows of eight). */
static void transpose8(__m256 out[8], const __m256 in[8])
{
    __m256 t[8], s[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(in[i], in[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(in[i], in[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        s[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        s[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xee);
        s[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        s[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xee);
    }
    for (int i = 0; i < 4; i++) {
        out[i] = _mm256_permute2f128_ps(s[i], s[i + 4], 0x20);
        out[i + 4] = _mm256_permute2f128_ps(s[i], s[i + 4], 0x31);
    }
}

/* B's columns [n0, n0 + NR) by rows [k0, k0 + kc) into a sliver (kc, NR), as
 * fp32, for a transposed B (a weight W read as W^T: read 8 of its rows' values at
 * a time and turned by 8 x 8 blocks) or a sliver part filled (value by value,
 * columns past N as 0); pack_group packs the full slivers of a B not transposed. */
static void pack_sliver(float *sliver, const gemm_operand *B, int N, int n0, int k0, int kc)
{
    int cols = N - n0 < NR ? N - n0 : NR;
    if (cols < NR) {
        for (int k = 0; k < kc; k++)
            for (int j = 0; j < NR; j++)
                sliver[(size_t)k * NR + j] = j < cols ? element(B, k0 + k, n0 + j) : 0.0f;
        return;
    }
    const void *data = B->data;
    enum gemm_dtype dt = B->dtype;
    int64_t ld = B->ld;
    int k = 0;
    for (; k + 8 <= kc; k += 8)
        for (int jb = 0; jb < NR; jb += 8) {
            __m256 in[8], out[8];
            for (int j = 0; j < 8; j++)
                in[j] = load8(data, dt, (n0 + jb + j) * ld + k0 + k);
            transpose8(out, in);
            for (int i = 0; i < 8; i++)
                _mm256_store_ps(sliver + (size_t)(k + i) * NR + jb, out[i]);
        }
    for (; k < kc; k++)
        for (int j = 0; j < NR; j++)
            sliver[(size_t)k * NR + j] = element(B, k0 + k, n0 + j);
}

/* The group of slivers from column n0 into group slivers (kc, NR) one after the
 * other. B not transposed is read a row of the group at a time (its values at
 * [n0, n0 + group NR) in one piece, where the hardware's prefetcher follows),
 * a transposed B a sliver at a time (its rows in one piece). */
static void pack_group(float *slivers, const gemm_operand *B, int N, int n0, int group, int k0, int kc)
{
    int full = (N - n0) / NR < group ? (N - n0) / NR : group;
    const void *data = B->data;
    enum gemm_dtype dt = B->dtype;
    int64_t ld = B->ld;
    if (!B->transposed)
        for (int k = 0; k < kc; k++) {
            int64_t i = (k0 + k) * ld + n0;
            for (int g = 0; g < full; g++) {
                float *row = slivers + (size_t)g * NR * kc + (size_t)k * NR;
                for (int j = 0; j < NR; j += 8)
                    _mm256_store_ps(row + j, load8(data, dt, i + g * NR + j));
            }
        }
    else
        for (int g = 0; g < full; g++)
            pack_sliver(slivers + (size_t)g * NR * kc, B, N, n0 + g * NR, k0, kc);
    for (int g = full; g < group; g++) /* the last, part filled */
        pack_sliver(slivers + (size_t)g * NR * kc, B, N, n0 + g * NR, k0, kc);
}

/* ---- the tile ---- */

/* C's tile (rows x cols of MR x NR at c) = strip (kc, MR) @ sliver (kc, NR), or
 * += when add. */
static void tile(int kc, const float *strip, const float *sliver, float *c, int64_t ldc, bool add, int rows,
                 int cols)
{
    for (int r = 0; r < rows; r++) {
        _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + r * ldc + NR - 1), _MM_HINT_T0);
    }
    vf c00 = vset1(0.0f), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00, c40 = c00,
       c41 = c00, c50 = c00, c51 = c00;
    for (int k = 0; k < kc; k++) {
        const float *a = strip + (size_t)k * MR;
        vf b0 = vload(sliver + (size_t)k * NR), b1 = vload(sliver + (size_t)k * NR + VW);
        /* row r's two accumulators += a[r] * the sliver's row k (named, so that they stay in registers) */
#define TILE_ROW(r, lo, hi)              \
    do {                                 \
        vf x_ = vset1(a[r]);             \
        lo = vfma(x_, b0, lo);           \
        hi = vfma(x_, b1, hi);           \
    } while (0)
        TILE_ROW(0, c00, c01);
        TILE_ROW(1, c10, c11);
        TILE_ROW(2, c20, c21);
        TILE_ROW(3, c30, c31);
        TILE_ROW(4, c40, c41);
        TILE_ROW(5, c50, c51);
#undef TILE_ROW
    }
    vf sums[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    if (cols == NR) {
        for (int r = 0; r < rows; r++) {
            float *row = c + r * ldc;
            for (int h = 0; h < 2; h++) {
                vf s = add ? vadd(vload(row + VW * h), sums[r][h]) : sums[r][h];
                vstore(row + VW * h, s);
            }
        }
        return;
    }
    float part[MR][NR];
    memcpy(part, sums, sizeof part);
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < cols; j++)
            c[r * ldc + j] = add ? c[r * ldc + j] + part[r][j] : part[r][j];
}

/* ---- the product ---- */

/* The width of K's blocks: as even as multiples of 8 make them, at most KB (640
 * tokens: two of 320, not 512 and a short 128). */
static int block_width(int K)
{
    int blocks = (K + KB - 1) / KB, w = (K + blocks - 1) / blocks;
    return (w + 7) / 8 * 8;
}

/* A thread's packing buffers, kept from one product to the next (base/util.h:
 * scratch_floats; at most MC rows of KB for A, 4 MB): allocated anew for each
 * product, their fresh pages, which the system clears, took 4% of pare-score's
 * time. */
static _Thread_local float *strips_of_A, *slivers_of_B;
static _Thread_local size_t strips_cap, slivers_cap;

/* Slivers [s0, s1) of C: every block of the summed width in turn, so each value's
 * sum has the same order whichever thread makes it. */
static void gemm_part(void *ctx, int64_t s0, int64_t s1)
{
    const gemm_job *j = ctx;
    int kb = block_width(j->K), mc = j->M < MC ? j->M : MC, strips = (mc + MR - 1) / MR;
    float *A = scratch_floats(&strips_of_A, &strips_cap, (size_t)strips * MR * kb);
    float *B = scratch_floats(&slivers_of_B, &slivers_cap, (size_t)GROUP * NR * kb);
    for (int mc0 = 0; mc0 < j->M; mc0 += MC) {
        int M = j->M - mc0 < MC ? j->M - mc0 : MC;
        for (int k0 = 0; k0 < j->K; k0 += kb) {
            int kc = j->K - k0 < kb ? j->K - k0 : kb;
            bool add = j->accumulate || k0 > 0;
            for (int m0 = 0; m0 < M; m0 += MR)
                pack_strip(A + (size_t)m0 * kc, j->A, j->M, mc0 + m0, k0, kc);
            for (int64_t g0 = s0; g0 < s1; g0 += GROUP) {
                int group = (int)(s1 - g0 < GROUP ? s1 - g0 : GROUP);
                pack_group(B, j->B, j->N, (int)g0 * NR, group, k0, kc);
                for (int m0 = 0; m0 < M; m0 += MR) {
                    int rows = M - m0 < MR ? M - m0 : MR;
                    float *c = j->C + (mc0 + m0) * j->ldc;
                    for (int g = 0; g < group; g++) {
                        int n0 = (int)(g0 + g) * NR, cols = j->N - n0 < NR ? j->N - n0 : NR;
                        tile(kc, A + (size_t)m0 * kc, B + (size_t)g * NR * kc, c + n0, j->ldc, add, rows, cols);
                    }
                }
            }
        }
    }
}

void NAME(gemm_fma)(float *C, int64_t ldc, const gemm_operand *A, const gemm_operand *B, int M, int N,
                                 int K, bool accumulate)
{
    if (M <= 0 || N <= 0)
        return;
    if (K <= 0) {
        if (!accumulate)
            for (int m = 0; m < M; m++)
                memset(C + m * ldc, 0, (size_t)N * sizeof(float));
        return;
    }
    gemm_job j = {C, ldc, A, B, M, N, K, accumulate};
    parallel_for((N + NR - 1) / NR, GROUP, gemm_part, &j);
}
