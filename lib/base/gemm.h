/* gemm.h - pare's own fp32 matrix product for CPUs with AVX2 and FMA (Haswell,
 * Zen 2 and 3) and for AMD's with AVX-512 (Zen 4), where it beats OpenBLAS's
 * sgemm on the products of a model's layers.
 *
 * The second operand may be fp32, bf16 or f16: half-precision weights are
 * widened (exactly) straight into the packed layout the product reads, so they
 * are never widened into a buffer of their own, and the first operand is packed
 * once per block of the summed width for all of the second's columns, not once
 * per panel of them. Each value of C is the sum of its K terms in the same
 * order however the work is cut between threads (blocks of the summed width in
 * turn, fused multiply-adds within each), so the result does not depend on the
 * thread count; it differs from sgemm's by the summation order only.
 *
 * Reached through the table of base/cpu.h (cpu()->gemm, NULL where OpenBLAS's
 * sgemm is used); gemm.c is built once with AVX2, FMA and F16C and once more
 * with AVX-512 as well. The work is split over pare's threads (base/parallel.h),
 * by columns of C. */
#ifndef PARE_GEMM_H
#define PARE_GEMM_H

#include <stdbool.h>
#include <stdint.h>

enum gemm_dtype { GEMM_F32, GEMM_BF16, GEMM_F16 };

/* A matrix operand, (rows, cols) as the product reads it: element (r, c) at
 * data[r * ld + c], or at data[c * ld + r] when transposed (a weight W (O, I)
 * read as W^T, the first operand dout (N, O) read as dout^T). */
typedef struct {
    const void *data;
    int64_t ld;
    enum gemm_dtype dtype;
    bool transposed;
} gemm_operand;

/* C (M, N) = A (M, K) @ B (K, N), or += when accumulate; C row-major with rows
 * ldc apart. A is fp32, B any of the dtypes. */
typedef void gemm_fn(float *C, int64_t ldc, const gemm_operand *A, const gemm_operand *B, int M, int N, int K,
                     bool accumulate);

/* The product built for AVX2 (tiles of 8-float vectors) and for AVX-512 (of 16):
 * the same sums in the same order, so the same result. */
gemm_fn gemm_fma_avx2, gemm_fma_avx512;

#endif
