/* amx.c - products with bf16 and f16 weights on AMX tiles (see amx.h). Built with the
 * AMX and AVX-512 flags (the Makefile); only the amx table of base/cpu.h leads
 * here.
 *
 * A product C (N, cols) (+)= A (N, K) @ B (K, cols) runs on tiles of 16 rows of
 * 64 bytes: A's tiles hold 16 rows x 32 bf16 values of the three parts of the
 * activations, B's 16 pairs of k x 16 columns (the pairs of k side by side, as
 * TDPBF16PS reads them), C's 16 x 16 fp32 sums. Both operands are packed first,
 * tile after tile, so that each tile is 1 KB in one piece:
 *
 *   activations  [row block of 16][k block of 32][part][16 rows][32 values]
 *   weights      [column block of 16][k block of 32][part][16 pairs of k][16 columns][2]
 *
 * (a bf16 weight is one part, an f16 weight two: hi and lo).
 * The activations are packed once per product (at most ROWS_BYTES of them at a
 * time), the weights a panel of PANEL_BYTES at a time, so that neither is ever
 * held in full. Each thread takes a range of 32-column pairs of blocks and sums
 * 2 x 2 blocks of C at a time (tiles 0-3) from two A tiles (4, 5) and two B
 * tiles (6, 7), each part of the activations with each part of the weights,
 * K_CHUNK k blocks per pass, N_CHUNK rows of A per sweep so that they stay in
 * the core's cache while the thread's B tiles go by.
 *
 * Letters: N rows, K the summed width, P a panel's weight rows. */
#include "base/amx.h"

#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "base/parallel.h"
#include "base/util.h"

enum {
    TILE_ROWS = 16,
    TILE_K = 32,                            /* bf16 values in a tile row */
    TILE_VALUES = TILE_ROWS * TILE_K,       /* bf16 values in a tile: 1 KB */
    TILE_PAIRS = TILE_VALUES / 2,
    PARTS = 3,                              /* hi, mid, lo */
    /* k blocks summed per pass over C, rows of A per sweep: a LLaMA-7B bf16
     * layer (bench_forward, 2 threads) ran at 603-658 GFLOP/s with 32 and 128,
     * 583-588 with 16 and 256, 468-587 with 64 */
    K_CHUNK = 32,
    N_CHUNK = 128,
};
#define PANEL_BYTES ((size_t)4 << 20) /* packed weights at a time */
#define ROWS_BYTES ((size_t)64 << 20) /* packed activations at a time */

static int blocks(int n, int size) { return (n + size - 1) / size; }

/* ---- packing ---- */

/* The three bf16 parts (the top halves of fp32 values) of 16 activations: hi
 * keeps x's top 16 bits, mid the top 16 of x - hi, lo is what is left, which
 * has at most 8 significant bits. A non-finite x is hi alone (a NaN stays a
 * NaN however its payload was cut). */
static void split16(__m512 x, __m256i part[PARTS])
{
    const __m512i top = _mm512_set1_epi32((int)0xffff0000u), exponent = _mm512_set1_epi32(0x7f800000);
    __m512i bits = _mm512_castps_si512(x);
    __mmask16 finite = _mm512_cmpneq_epi32_mask(_mm512_and_si512(bits, exponent), exponent);
    __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
    __m512i hi = _mm512_mask_mov_epi32(_mm512_and_si512(bits, top), nan, _mm512_set1_epi32(0x7fc00000));
    __m512 rest = _mm512_maskz_sub_ps(finite, x, _mm512_castsi512_ps(hi));
    __m512i mid = _mm512_and_si512(_mm512_castps_si512(rest), top);
    __m512i lo = _mm512_castps_si512(_mm512_sub_ps(rest, _mm512_castsi512_ps(mid)));
    part[0] = _mm512_cvtepi32_epi16(_mm512_srli_epi32(hi, 16));
    part[1] = _mm512_cvtepi32_epi16(_mm512_srli_epi32(mid, 16));
    part[2] = _mm512_cvtepi32_epi16(_mm512_srli_epi32(lo, 16));
}

typedef struct {
    uint16_t *dst;
    const float *src; /* (rows, K) */
    int rows, K, kb;  /* kb = blocks(K, TILE_K) */
} activations_job;

static void pack_activations_part(void *ctx, int64_t b, int64_t e)
{
    const activations_job *j = ctx;
    for (int64_t rb = b; rb < e; rb++)
        for (int r = 0; r < TILE_ROWS; r++) {
            int64_t row = rb * TILE_ROWS + r;
            for (int k = 0; k < j->kb; k++) {
                uint16_t *d = j->dst + ((rb * j->kb + k) * PARTS * TILE_ROWS + r) * TILE_K;
                for (int half = 0; half < 2; half++) {
                    int k0 = k * TILE_K + half * 16, n = row < j->rows ? j->K - k0 : 0;
                    __mmask16 m = n >= 16 ? 0xffff : n > 0 ? (__mmask16)((1u << n) - 1) : 0;
                    __m512 x = _mm512_maskz_loadu_ps(m, m ? j->src + row * j->K + k0 : j->src);
                    __m256i part[PARTS];
                    split16(x, part);
                    for (int p = 0; p < PARTS; p++)
                        _mm256_store_si256((__m256i *)(d + p * TILE_VALUES + half * 16), part[p]);
                }
            }
        }
}

/* dst = the parts of src (rows, K), rows padded to whole pairs of row blocks and
 * K to whole k blocks with zeros. */
static void pack_activations(uint16_t *dst, const float *src, int rows, int K)
{
    activations_job j = {dst, src, rows, K, blocks(K, TILE_K)};
    parallel_for(2 * blocks(rows, 2 * TILE_ROWS), 1, pack_activations_part, &j);
}

typedef struct {
    uint32_t *dst;           /* packed: a pair of bf16 values each, the first in the low half */
    const unsigned char *w; /* (O, I) bf16 or f16, at any address */
    int O, I;
    int r0, rows; /* the panel: W's rows [r0, r0 + rows) */
    int kb;       /* k blocks per column block in dst */
    int parts;    /* bf16 parts per weight: 1 (bf16), 2 (f16) */
} weights_job;

/* The two bf16 parts of n f16 weights v (n a multiple of 16): an f16 weight (11
 * significant bits) widened and split as an activation is hi, its top 8 bits,
 * plus mid, the last 3 (its lo is 0), exactly. (A bf16 weight is its own part.) */
static void f16_parts(const uint16_t *v, int n, uint16_t *hi, uint16_t *lo)
{
    for (int i = 0; i < n; i += 16) {
        __m256i part[PARTS];
        split16(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(v + i))), part);
        _mm256_storeu_si256((__m256i *)(hi + i), part[0]);
        _mm256_storeu_si256((__m256i *)(lo + i), part[1]);
    }
}

/* W's values [i0, i0 + n) of row r into v, zeros outside W (read as bytes: a
 * tensor mapped at an odd address is not aligned to its values). */
static void weight_run(const weights_job *j, int r, int i0, int n, uint16_t *v)
{
    int have = r < j->r0 + j->rows && i0 < j->I ? (j->I - i0 < n ? j->I - i0 : n) : 0;
    if (have > 0)
        memcpy(v, j->w + ((size_t)r * j->I + i0) * sizeof *v, (size_t)have * sizeof *v);
    memset(v + (have > 0 ? have : 0), 0, (size_t)(n - (have > 0 ? have : 0)) * sizeof *v);
}

/* The forward's weights: columns are W's rows, k runs along a row. Column block
 * cb, k block k, pair p, column c holds W[r0 + 16 cb + c][32 k + 2 p + {0, 1}]:
 * the 16 x 16 pairs of W's block, transposed. */
static void pack_rows_part(void *ctx, int64_t b, int64_t e)
{
    const weights_job *j = ctx;
    uint16_t raw[TILE_K];
    _Alignas(64) uint32_t block[2][TILE_ROWS][TILE_ROWS]; /* [part][c][p], a pair each */
    for (int64_t cb = b; cb < e; cb++)
        for (int k = 0; k < j->kb; k++) {
            int r = j->r0 + (int)cb * TILE_ROWS, i0 = k * TILE_K;
            bool whole = r + TILE_ROWS <= j->r0 + j->rows && i0 + TILE_K <= j->I;
            for (int c = 0; c < TILE_ROWS; c++) {
                uint16_t *v = j->parts == 1 ? (uint16_t *)block[0][c] : raw; /* bf16: straight in */
                if (whole)
                    memcpy(v, j->w + ((size_t)(r + c) * j->I + i0) * sizeof(uint16_t), sizeof raw);
                else
                    weight_run(j, r + c, i0, TILE_K, v);
                if (j->parts == 2)
                    f16_parts(raw, TILE_K, (uint16_t *)block[0][c], (uint16_t *)block[1][c]);
            }
            uint32_t *d = j->dst + (cb * j->kb + k) * j->parts * TILE_PAIRS;
            for (int part = 0; part < j->parts; part++, d += TILE_PAIRS)
                for (int p = 0; p < TILE_ROWS; p++)
                    for (int c = 0; c < TILE_ROWS; c++)
                        d[p * TILE_ROWS + c] = block[part][c][p];
        }
}

/* The input gradient's weights: k runs down W's rows, columns along them. Column
 * block cb, k block k, pair p, column c holds W[r0 + 32 k + 2 p + {0, 1}][16 cb + c]:
 * two rows' 16 values interleaved. */
static void pack_columns_part(void *ctx, int64_t b, int64_t e)
{
    const weights_job *j = ctx;
    uint16_t raw[TILE_ROWS], two[2][2][TILE_ROWS]; /* [part][row][c] */
    for (int64_t cb = b; cb < e; cb++)
        for (int k = 0; k < j->kb; k++) {
            uint32_t *d = j->dst + (cb * j->kb + k) * j->parts * TILE_PAIRS;
            int r = j->r0 + k * TILE_K, i0 = (int)cb * TILE_ROWS;
            bool whole = r + TILE_K <= j->r0 + j->rows && i0 + TILE_ROWS <= j->I;
            for (int p = 0; p < TILE_ROWS; p++) {
                for (int h = 0; h < 2; h++) {
                    uint16_t *v = j->parts == 1 ? two[0][h] : raw; /* bf16: straight in */
                    if (whole)
                        memcpy(v, j->w + ((size_t)(r + 2 * p + h) * j->I + i0) * sizeof(uint16_t), sizeof raw);
                    else
                        weight_run(j, r + 2 * p + h, i0, TILE_ROWS, v);
                    if (j->parts == 2)
                        f16_parts(raw, TILE_ROWS, two[0][h], two[1][h]);
                }
                for (int part = 0; part < j->parts; part++)
                    for (int c = 0; c < TILE_ROWS; c++)
                        d[part * TILE_PAIRS + p * TILE_ROWS + c] =
                            (uint32_t)two[part][0][c] | (uint32_t)two[part][1][c] << 16;
            }
        }
}

/* ---- the tile product ---- */

typedef struct {
    float *c;
    int ldc, rows, cols;    /* C (rows, cols), ldc floats between rows */
    const uint16_t *a;      /* packed activations */
    int a_kb, a_k0;         /* a's k blocks per row block; the first one summed */
    const uint32_t *b;      /* packed weights, kb k blocks of w_parts tiles per column block */
    int kb, w_parts;
    bool accumulate;        /* C += A B, else C = A B */
} tile_job;

typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t bytes_per_row[16];
    uint8_t rows[16];
} tile_config;

static void configure_tiles(void)
{
    tile_config t = {.palette = 1};
    for (int i = 0; i < 8; i++) {
        t.rows[i] = TILE_ROWS;
        t.bytes_per_row[i] = TILE_K * sizeof(uint16_t);
    }
    _tile_loadconfig(&t);
}

/* The part of the 32 x 32 block of C at (n, col) that lies inside C, copied
 * between C and a 32 x 32 copy (to_copy: from C into it). */
static void copy_block(const tile_job *j, int n, int col, float *copy, bool to_copy)
{
    float *c = j->c + (size_t)n * j->ldc + col;
    size_t bytes = (size_t)(j->cols - col < 32 ? j->cols - col : 32) * sizeof(float);
    for (int r = 0; r < 32 && n + r < j->rows; r++)
        if (to_copy)
            memcpy(copy + r * 32, c + (size_t)r * j->ldc, bytes);
        else
            memcpy(c + (size_t)r * j->ldc, copy + r * 32, bytes);
}

/* The 32 x 32 block of C at (n, col): C itself where the block is inside it,
 * else a copy in spare (zeros beyond C); *ld its row length in floats. */
static float *c_block(const tile_job *j, int n, int col, float *spare, int *ld, bool *copied)
{
    *copied = n + 32 > j->rows || col + 32 > j->cols;
    if (!*copied) {
        *ld = j->ldc;
        return j->c + (size_t)n * j->ldc + col;
    }
    *ld = 32;
    memset(spare, 0, 32 * 32 * sizeof(float));
    copy_block(j, n, col, spare, true);
    return spare;
}

/* Column pairs [b, e) of blocks of 16: C's columns [32 b, 32 e). */
static void tile_part(void *ctx, int64_t b, int64_t e)
{
    const tile_job *j = ctx;
    int rows32 = blocks(j->rows, 32) * 32;
    _Alignas(64) float spare[32 * 32];
    configure_tiles();
    for (int k0 = 0; k0 < j->kb; k0 += K_CHUNK) {
        int k1 = k0 + K_CHUNK < j->kb ? k0 + K_CHUNK : j->kb;
        for (int n0 = 0; n0 < rows32; n0 += N_CHUNK)
            for (int64_t pair = b; pair < e; pair++) {
                size_t per_block = (size_t)j->kb * j->w_parts * TILE_PAIRS;
                const uint32_t *b0 = j->b + (size_t)(2 * pair) * per_block, *b1 = b0 + per_block;
                for (int n = n0; n < n0 + N_CHUNK && n < rows32; n += 32) {
                    int ld;
                    bool copied;
                    float *c = c_block(j, n, (int)pair * 32, spare, &ld, &copied);
                    size_t stride = (size_t)ld * sizeof(float);
                    if (k0 == 0 && !j->accumulate) {
                        _tile_zero(0);
                        _tile_zero(1);
                        _tile_zero(2);
                        _tile_zero(3);
                    } else {
                        _tile_loadd(0, c, stride);
                        _tile_loadd(1, c + 16, stride);
                        _tile_loadd(2, c + 16 * ld, stride);
                        _tile_loadd(3, c + 16 * ld + 16, stride);
                    }
                    const uint16_t *a0 = j->a + ((size_t)(n / 16) * j->a_kb + j->a_k0) * PARTS * TILE_VALUES;
                    const uint16_t *a1 = a0 + (size_t)j->a_kb * PARTS * TILE_VALUES;
                    for (int k = k0; k < k1; k++)
                        for (int wp = 0; wp < j->w_parts; wp++) {
                            _tile_loadd(6, b0 + ((size_t)k * j->w_parts + wp) * TILE_PAIRS, 64);
                            _tile_loadd(7, b1 + ((size_t)k * j->w_parts + wp) * TILE_PAIRS, 64);
                            for (int p = 0; p < PARTS; p++) {
                                _tile_loadd(4, a0 + ((size_t)k * PARTS + p) * TILE_VALUES, 64);
                                _tile_loadd(5, a1 + ((size_t)k * PARTS + p) * TILE_VALUES, 64);
                                _tile_dpbf16ps(0, 4, 6);
                                _tile_dpbf16ps(1, 4, 7);
                                _tile_dpbf16ps(2, 5, 6);
                                _tile_dpbf16ps(3, 5, 7);
                            }
                        }
                    _tile_stored(0, c, stride);
                    _tile_stored(1, c + 16, stride);
                    _tile_stored(2, c + 16 * ld, stride);
                    _tile_stored(3, c + 16 * ld + 16, stride);
                    if (copied)
                        copy_block(j, n, (int)pair * 32, spare, false);
                }
            }
    }
    _tile_release();
}

/* ---- the two products ---- */

/* Rows of row_bytes each to take at a time within budget: a multiple of 32, at
 * least 32, at most n rounded up to one. */
static int rows_within(size_t budget, size_t row_bytes, int n)
{
    size_t most = (size_t)blocks(n, 32) * 32, r = budget / row_bytes / 32 * 32;
    return (int)(r < 32 ? 32 : r > most ? most : r);
}

/* Bytes of a row of K activations packed, and of a row of K weights of parts parts. */
static size_t activation_row_bytes(int K)
{
    return (size_t)blocks(K, TILE_K) * TILE_K * PARTS * sizeof(uint16_t);
}
static size_t weight_row_bytes(int K, int parts)
{
    return (size_t)blocks(K * parts, TILE_K) * TILE_K * sizeof(uint16_t);
}

void amx_product(float *out, const float *in, const void *w, enum amx_weights wt, int N, int O, int I,
                 bool accumulate)
{
    int parts = wt == AMX_F16 ? 2 : 1;
    int kb = blocks(I, TILE_K), R = rows_within(ROWS_BYTES, activation_row_bytes(I), N);
    int P = rows_within(PANEL_BYTES, weight_row_bytes(I, parts), O);
    uint16_t *a = xmalloc_aligned((size_t)R * kb * TILE_K * PARTS * sizeof(uint16_t));
    uint32_t *pw = xmalloc_aligned((size_t)P * kb * TILE_K * parts * sizeof(uint16_t));
    for (int n0 = 0; n0 < N; n0 += R) {
        int rows = N - n0 < R ? N - n0 : R;
        pack_activations(a, in + (size_t)n0 * I, rows, I);
        for (int r0 = 0; r0 < O; r0 += P) {
            int p = O - r0 < P ? O - r0 : P;
            weights_job wj = {pw, w, O, I, r0, p, kb, parts};
            parallel_for(2 * blocks(p, 32), 1, pack_rows_part, &wj);
            tile_job t = {out + (size_t)n0 * O + r0, O, rows, p, a, kb, 0, pw, kb, parts, accumulate};
            parallel_for(blocks(p, 32), 1, tile_part, &t);
        }
    }
    free(a);
    free(pw);
}

void amx_input_gradient(float *din, const float *dout, const void *w, enum amx_weights wt, int N, int O, int I)
{
    int parts = wt == AMX_F16 ? 2 : 1;
    int a_kb = blocks(O, TILE_K), R = rows_within(ROWS_BYTES, activation_row_bytes(O), N);
    int P = rows_within(PANEL_BYTES, weight_row_bytes(I, parts), O);
    int cbs = 2 * blocks(I, 32);
    uint16_t *a = xmalloc_aligned((size_t)R * a_kb * TILE_K * PARTS * sizeof(uint16_t));
    uint32_t *pw = xmalloc_aligned((size_t)cbs * (P / TILE_K) * parts * TILE_VALUES * sizeof(uint16_t));
    for (int n0 = 0; n0 < N; n0 += R) {
        int rows = N - n0 < R ? N - n0 : R;
        pack_activations(a, dout + (size_t)n0 * O, rows, O);
        for (int r0 = 0; r0 < O; r0 += P) {
            int p = O - r0 < P ? O - r0 : P, kb = blocks(p, TILE_K);
            weights_job wj = {pw, w, O, I, r0, p, kb, parts};
            parallel_for(cbs, 1, pack_columns_part, &wj);
            tile_job t = {din + (size_t)n0 * I, I, rows, I, a, a_kb, r0 / TILE_K, pw, kb, parts, true};
            parallel_for(blocks(I, 32), 1, tile_part, &t);
        }
    }
    free(a);
    free(pw);
}
