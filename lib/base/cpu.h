/* cpu.h - which CPU pare runs on, and its own inner loops built for it.
 *
 * The programs are compiled for x86-64-v2 (SSE4.2), so that they run on any x86-64
 * of the last fifteen years. The inner loops that matter (widening half-precision
 * weights, norms, SiLU, softmax and the vocabulary's log-sum-exp, the non-finite
 * scan) are compiled once more for each wider instruction set (cpu_loops.c, built
 * four times with its own flags), and one table of them is chosen once, from
 * cpuid, the first time any is needed:
 *
 *   baseline  x86-64-v2 (SSE4.2)
 *   avx2      AVX2, FMA, F16C (Haswell, Zen)
 *   avx512    AVX-512 F, BW, DQ, VL on top (Skylake-SP, Ice Lake, Sapphire Rapids, Zen 4)
 *   amx       the avx512 loops, and bf16 weights' products on AMX tiles (base/amx.h)
 *             where the system grants them (Sapphire Rapids and later)
 *
 * The avx2 and avx512 tables also have the products with weights run by pare's
 * own FMA product (base/gemm.h), which beats OpenBLAS's Haswell kernels at AVX2
 * and its 512-bit kernels on AMD's Zen 4 (which runs a 512-bit operation as two
 * halves, so that OpenBLAS's wider kernels gain nothing there, while pare's
 * widens half-precision weights as it packs them). On Intel's AVX-512 CPUs,
 * whose 512-bit units are full width, cpu_select leaves the products to
 * OpenBLAS's kernels (or to the tiles: the amx table has no own product).
 *
 * PARE_CPU=baseline|avx2|avx512|amx picks a table instead (tests run every variant
 * the CPU has against the baseline); asking for one the CPU lacks is an error.
 *
 * Every variant computes the same function: widening and the scans exactly, the
 * rest in another summation order or with fused multiply-adds (a few units in
 * the last place). */
#ifndef PARE_CPU_H
#define PARE_CPU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/gemm.h"

enum cpu_level { CPU_BASELINE, CPU_AVX2, CPU_AVX512, CPU_AMX, CPU_LEVELS };

typedef struct cpu_kernels {
    const char *name; /* "baseline", "avx2", "avx512", "amx" */
    /* whether products with bf16 weights run on AMX tiles (base/amx.h) */
    bool tiles;
    /* pare's own product (base/gemm.h) for products with weights, or NULL:
     * OpenBLAS's sgemm (or the tiles) */
    gemm_fn *gemm;
    /* dst (n) = src (n) bf16 / f16 values widened exactly to fp32 */
    void (*bf16_to_f32)(float *dst, const uint16_t *src, size_t n);
    void (*f16_to_f32)(float *dst, const uint16_t *src, size_t n);
    /* Index of the first of the n 16- or 32-bit values at x (at any address: a
     * tensor mapped at an odd offset) whose bits under mask are all ones (a
     * non-finite value when mask is the exponent's), or n. */
    size_t (*first_all_ones16)(const void *x, size_t n, uint16_t mask);
    size_t (*first_all_ones32)(const void *x, size_t n, uint32_t mask);
    /* sum of x[i]^2, in double */
    double (*sum_squares)(const float *x, size_t n);
    /* out (n) = w * (x * s); out may equal x */
    void (*scale_mul)(float *out, const float *x, const float *w, float s, size_t n);
    /* hid (n) = silu(gate) * up, silu(g) = g / (1 + exp(-g)); hid may equal gate or up */
    void (*swiglu)(float *hid, const float *gate, const float *up, size_t n);
    /* max of x (n), n >= 1 */
    float (*max)(const float *x, size_t n);
    /* out (n) = exp(x - shift) (out may equal x, or be NULL: not stored); returns
     * the sum of those values, in double */
    double (*exp_sum)(float *out, const float *x, float shift, size_t n);
    /* the sum of exp(x - shift) over x (n), all in double */
    double (*exp_sum_f64)(const float *x, double shift, size_t n);
    /* x (n) *= s */
    void (*scale)(float *x, float s, size_t n);
} cpu_kernels;

/* The four tables (cpu_loops.c built for each level). */
extern const cpu_kernels cpu_kernels_baseline, cpu_kernels_avx2, cpu_kernels_avx512, cpu_kernels_amx;

/* The table in use: chosen on the first call (PARE_CPU, else the widest the CPU has). */
const cpu_kernels *cpu_select(void);
extern const cpu_kernels *_Atomic cpu_active;
static inline const cpu_kernels *cpu(void)
{
    const cpu_kernels *k = cpu_active;
    return k ? k : cpu_select();
}
/* Whether this CPU (and this build) can run level's table. */
int cpu_supports(enum cpu_level level);
/* level's table (which the CPU must support), for tests and benchmarks. */
const cpu_kernels *cpu_kernels_of(enum cpu_level level);
const char *cpu_level_name(enum cpu_level level);

#endif
