/* cpu_loops.c - pare's inner loops, written once over a vector of VW floats and
 * compiled once per instruction set (the Makefile builds this file four times,
 * with CPU_VARIANT set to baseline, avx2, avx512 or amx and that set's flags); each
 * build defines its table cpu_kernels_VARIANT (cpu.h says what each loop does).
 *
 * The few operations that differ between the sets are the wrappers of
 * base/cpu_vector.h; the loops use only those. A loop's last n % VW values go through the same vector
 * code from a padded copy, so that every value is computed the same way wherever
 * it sits. */
#include "base/cpu.h"

#include <string.h>

#include "base/cpu_vector.h"

#if !defined(CPU_VARIANT)
#error "cpu_loops.c is compiled with -DCPU_VARIANT=baseline|avx2|avx512|amx (see the Makefile)"
#endif


static double sum_double(const double acc[VW])
{
    double s = 0;
    for (int i = 0; i < VW; i++)
        s += acc[i];
    return s;
}

/* exp(x) for x <= 88.7 (Cephes' expf: x = n ln2 + r, |r| <= ln2/2, e^r by a
 * polynomial of degree 7, times 2^n); below -87.3 it is clamped there (about
 * 1e-38, where e^x is already below every sum it is added to). Relative error
 * about 2e-7. */
static inline vf vexp(vf x)
{
    x = vmin(vmax(x, vset1(-87.3365447f)), vset1(88.7228391f));
    vf n = vround(vmul(x, vset1(1.44269504088896341f)));
    vf r = vsub(x, vmul(n, vset1(0.693359375f)));
    r = vsub(r, vmul(n, vset1(-2.12194440e-4f)));
    vf p = vset1(1.9875691500e-4f);
    p = vfma(p, r, vset1(1.3981999507e-3f));
    p = vfma(p, r, vset1(8.3334519073e-3f));
    p = vfma(p, r, vset1(4.1665795894e-2f));
    p = vfma(p, r, vset1(1.6666665459e-1f));
    p = vfma(p, r, vset1(5.0000001201e-1f));
    p = vfma(p, vmul(r, r), vadd(r, vset1(1.0f)));
    /* 2^n in two halves, so that n = 128 (x near 88.7) does not overflow the exponent */
    vf h = vround(vmul(n, vset1(0.5f)));
    return vmul(vmul(p, vpow2(h)), vpow2(vsub(n, h)));
}

/* exp(x) in double for x <= 0 (x = n ln2 + r, |r| <= ln2/2, e^r by its Taylor
 * series to r^13, times 2^n); below -708 it is clamped there (about 1e-308).
 * Relative error about 1e-16. */
static inline vd vexpd(vd x)
{
    x = vdmax(x, vdset1(-708.0));
    vd n = vdround(vdmul(x, vdset1(1.4426950408889634)));
    vd r = vdsub(x, vdmul(n, vdset1(6.93147180369123816490e-01)));
    r = vdsub(r, vdmul(n, vdset1(1.90821492927058770002e-10)));
    vd p = vdset1(1.0 / 6227020800.0);
    static const double inv_fact[] = {1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0, 1.0 / 362880.0,
                                      1.0 / 40320.0,     1.0 / 5040.0,     1.0 / 720.0,      1.0 / 120.0,
                                      1.0 / 24.0,        1.0 / 6.0,        0.5,              1.0,
                                      1.0};
    for (size_t k = 0; k < sizeof inv_fact / sizeof inv_fact[0]; k++)
        p = vdfma(p, r, vdset1(inv_fact[k]));
    /* 2^n: n + 1023 in the low bits of a double (by adding 1.5 * 2^52), shifted into the exponent */
    return vdmul(p, vdslli52(vdadd(n, vdset1(6755399441055744.0 + 1023.0))));
}

/* ---- widening ---- */

static void NAME(bf16_to_f32)(float *dst, const uint16_t *src, size_t n)
{
    size_t i = 0;
    for (; i + VW <= n; i += VW)
        vstore(dst + i, vload_bf16(src + i));
    for (; i < n; i++) {
        uint32_t u = (uint32_t)src[i] << 16;
        memcpy(dst + i, &u, 4);
    }
}

static void NAME(f16_to_f32)(float *dst, const uint16_t *src, size_t n)
{
    size_t i = 0;
    for (; i + VW <= n; i += VW)
        vstore(dst + i, vload_f16(src + i));
    if (i < n) {
        uint16_t h[VW] = {0};
        float f[VW];
        memcpy(h, src + i, (n - i) * sizeof *h);
        vstore(f, vload_f16(h));
        memcpy(dst + i, f, (n - i) * sizeof *f);
    }
}

/* ---- the non-finite scan: a compare mask per vector, the first set bit found by counting zeros ---- */

/* the values after the last whole vector, one at a time */
#define SCAN_TAIL(type)                                                                                        \
    for (; i < n; i++) {                                                                                       \
        type v;                                                                                                \
        memcpy(&v, at + i * sizeof v, sizeof v);                                                               \
        if ((v & mask) == mask)                                                                                \
            return i;                                                                                          \
    }                                                                                                          \
    return n

#if defined(__AVX512F__)
#define FIRST_ALL_ONES(type, lanes, set1, cmpeq, stype)                                                        \
    const char *at = x; /* any alignment */                                                                    \
    const __m512i m = set1((stype)mask);                                                                       \
    size_t i = 0;                                                                                              \
    for (; i + (lanes) <= n; i += (lanes)) {                                                                   \
        uint64_t k = cmpeq(_mm512_and_si512(_mm512_loadu_si512(at + i * sizeof(type)), m), m);                 \
        if (k)                                                                                                 \
            return i + (size_t)__builtin_ctzll(k);                                                             \
    }                                                                                                          \
    SCAN_TAIL(type)
#define SCAN16 FIRST_ALL_ONES(uint16_t, 32, _mm512_set1_epi16, _mm512_cmpeq_epi16_mask, short)
#define SCAN32 FIRST_ALL_ONES(uint32_t, 16, _mm512_set1_epi32, _mm512_cmpeq_epi32_mask, int)
#else
#if defined(__AVX2__)
typedef __m256i vbits;
#define VB_LOAD(p) _mm256_loadu_si256((const __m256i *)(p))
#define VB_AND _mm256_and_si256
#define VB_MOVEMASK _mm256_movemask_epi8
#define VB_SET16 _mm256_set1_epi16
#define VB_SET32 _mm256_set1_epi32
#define VB_EQ16 _mm256_cmpeq_epi16
#define VB_EQ32 _mm256_cmpeq_epi32
#else
typedef __m128i vbits;
#define VB_LOAD(p) _mm_loadu_si128((const __m128i *)(p))
#define VB_AND _mm_and_si128
#define VB_MOVEMASK _mm_movemask_epi8
#define VB_SET16 _mm_set1_epi16
#define VB_SET32 _mm_set1_epi32
#define VB_EQ16 _mm_cmpeq_epi16
#define VB_EQ32 _mm_cmpeq_epi32
#endif
/* the byte mask of the lanes that compare equal: sizeof(type) bits a lane */
#define FIRST_ALL_ONES(type, set1, eq, stype)                                                                  \
    const char *at = x; /* any alignment */                                                                    \
    const vbits m = set1((stype)mask);                                                                         \
    const size_t lanes = sizeof(vbits) / sizeof(type);                                                         \
    size_t i = 0;                                                                                              \
    for (; i + lanes <= n; i += lanes) {                                                                       \
        unsigned k = (unsigned)VB_MOVEMASK(eq(VB_AND(VB_LOAD(at + i * sizeof(type)), m), m));                  \
        if (k)                                                                                                 \
            return i + (size_t)__builtin_ctz(k) / sizeof(type);                                                \
    }                                                                                                          \
    SCAN_TAIL(type)
#define SCAN16 FIRST_ALL_ONES(uint16_t, VB_SET16, VB_EQ16, short)
#define SCAN32 FIRST_ALL_ONES(uint32_t, VB_SET32, VB_EQ32, int)
#endif

static size_t NAME(first_all_ones16)(const void *x, size_t n, uint16_t mask) { SCAN16; }

static size_t NAME(first_all_ones32)(const void *x, size_t n, uint32_t mask) { SCAN32; }

/* ---- row loops ---- */

/* The n % VW values past the last whole vector: copied in (zeros after them),
 * and back out by the caller. */
static inline size_t tail(float buf[VW], const float *x, size_t i, size_t n)
{
    memset(buf, 0, VW * sizeof *buf);
    if (x)
        memcpy(buf, x + i, (n - i) * sizeof *buf);
    return n - i;
}

static double NAME(sum_squares)(const float *x, size_t n)
{
    double acc[VW] = {0};
    size_t i = 0;
    for (; i + VW <= n; i += VW)
        vadd_double_sq(acc, vload(x + i));
    if (i < n) {
        float b[VW];
        tail(b, x, i, n);
        vadd_double_sq(acc, vload(b));
    }
    return sum_double(acc);
}

static void NAME(scale_mul)(float *out, const float *x, const float *w, float s, size_t n)
{
    vf vs = vset1(s);
    size_t i = 0;
    for (; i + VW <= n; i += VW)
        vstore(out + i, vmul(vload(w + i), vmul(vload(x + i), vs)));
    for (; i < n; i++)
        out[i] = w[i] * (x[i] * s);
}

static inline vf silu_times(vf g, vf u)
{
    vf one = vset1(1.0f);
    return vmul(vdiv(g, vadd(one, vexp(vsub(vset1(0.0f), g)))), u);
}

static void NAME(swiglu)(float *hid, const float *gate, const float *up, size_t n)
{
    size_t i = 0;
    for (; i + VW <= n; i += VW)
        vstore(hid + i, silu_times(vload(gate + i), vload(up + i)));
    if (i < n) {
        float g[VW], u[VW];
        size_t m = tail(g, gate, i, n);
        tail(u, up, i, n);
        vstore(g, silu_times(vload(g), vload(u)));
        memcpy(hid + i, g, m * sizeof *g);
    }
}

static float NAME(max)(const float *x, size_t n)
{
    size_t i = 0;
    float m = x[0];
    if (n >= VW) {
        vf v = vload(x);
        for (i = VW; i + VW <= n; i += VW)
            v = vmax(v, vload(x + i));
        m = vhmax(v);
    }
    for (; i < n; i++)
        m = x[i] > m ? x[i] : m;
    return m;
}

static double NAME(exp_sum)(float *out, const float *x, float shift, size_t n)
{
    double acc[VW] = {0};
    vf vs = vset1(shift);
    size_t i = 0;
    for (; i + VW <= n; i += VW) {
        vf e = vexp(vsub(vload(x + i), vs));
        if (out)
            vstore(out + i, e);
        vadd_double(acc, e);
    }
    if (i < n) {
        float b[VW];
        size_t m = tail(b, x, i, n);
        vstore(b, vexp(vsub(vload(b), vs)));
        for (size_t j = m; j < VW; j++)
            b[j] = 0.0f; /* the padding adds nothing */
        vadd_double(acc, vload(b));
        if (out)
            memcpy(out + i, b, m * sizeof *b);
    }
    return sum_double(acc);
}

static double NAME(exp_sum_f64)(const float *x, double shift, size_t n)
{
    enum { DW = VW / 2 };
    vd acc = vdset1(0.0), vs = vdset1(shift);
    size_t i = 0;
    for (; i + DW <= n; i += DW)
        acc = vdadd(acc, vexpd(vdsub(vdload_f(x + i), vs)));
    double sum = vdhsum(acc);
    if (i < n) {
        float b[VW];
        size_t m = tail(b, x, i, n);
        double e[DW];
        vd v = vexpd(vdsub(vdload_f(b), vs));
        memcpy(e, &v, sizeof e);
        for (size_t j = 0; j < m; j++)
            sum += e[j];
    }
    return sum;
}

static void NAME(scale)(float *x, float s, size_t n)
{
    vf vs = vset1(s);
    size_t i = 0;
    for (; i + VW <= n; i += VW)
        vstore(x + i, vmul(vload(x + i), vs));
    for (; i < n; i++)
        x[i] *= s;
}

const cpu_kernels NAME(cpu_kernels) = {
    .name = STR(CPU_VARIANT),
#if defined(__AMX_BF16__)
    .tiles = true,
#endif
#if defined(__AMX_BF16__)
    .gemm = NULL,
#elif defined(__AVX512F__)
    .gemm = gemm_fma_avx512,
#elif defined(__AVX2__)
    .gemm = gemm_fma_avx2,
#endif
    .bf16_to_f32 = NAME(bf16_to_f32),
    .f16_to_f32 = NAME(f16_to_f32),
    .first_all_ones16 = NAME(first_all_ones16),
    .first_all_ones32 = NAME(first_all_ones32),
    .sum_squares = NAME(sum_squares),
    .scale_mul = NAME(scale_mul),
    .swiglu = NAME(swiglu),
    .max = NAME(max),
    .exp_sum = NAME(exp_sum),
    .exp_sum_f64 = NAME(exp_sum_f64),
    .scale = NAME(scale),
};
