/* cpu_vector.h - the vector operations of one instruction set, for the files the
 * Makefile builds once per set (cpu_loops.c, gemm.c): a vector vf of VW floats
 * (16 with AVX-512, 8 with AVX2, 4 at the x86-64-v2 baseline) and vd of VW/2
 * doubles, and the few operations that differ between the sets, so that a loop
 * is written once over them. NAME(f) is f with the build's CPU_VARIANT appended
 * (f_avx2), STR(x) x as a string. Private to those files: include it only in a
 * file built with one set's flags. */
#ifndef PARE_CPU_VECTOR_H
#define PARE_CPU_VECTOR_H

#include <stdint.h>

#include <immintrin.h>

#if defined(__AVX512F__)
enum { VW = 16 };
typedef __m512 vf;
#define vload _mm512_loadu_ps
#define vstore _mm512_storeu_ps
#define vset1 _mm512_set1_ps
#define vadd _mm512_add_ps
#define vsub _mm512_sub_ps
#define vmul _mm512_mul_ps
#define vdiv _mm512_div_ps
#define vmax _mm512_max_ps
#define vmin _mm512_min_ps
#define vfma(a, b, c) _mm512_fmadd_ps(a, b, c)
#define vround(x) _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
static inline vf vpow2(vf n) /* 2^n for integral n in [-126, 127] */
{
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23));
}
static inline float vhmax(vf x) { return _mm512_reduce_max_ps(x); }
/* x's values added into acc, in double */
static inline void vadd_double(double acc[VW], vf x)
{
    __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(x));
    __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1)));
    _mm512_storeu_pd(acc, _mm512_add_pd(_mm512_loadu_pd(acc), lo));
    _mm512_storeu_pd(acc + 8, _mm512_add_pd(_mm512_loadu_pd(acc + 8), hi));
}
/* x's squares, taken in double, added into acc */
static inline void vadd_double_sq(double acc[VW], vf x)
{
    __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(x));
    __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1)));
    _mm512_storeu_pd(acc, _mm512_add_pd(_mm512_loadu_pd(acc), _mm512_mul_pd(lo, lo)));
    _mm512_storeu_pd(acc + 8, _mm512_add_pd(_mm512_loadu_pd(acc + 8), _mm512_mul_pd(hi, hi)));
}
static inline vf vload_bf16(const uint16_t *p)
{
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)), 16));
}
static inline vf vload_f16(const uint16_t *p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)); }
typedef __m512d vd; /* VW / 2 doubles */
#define vdset1 _mm512_set1_pd
#define vdadd _mm512_add_pd
#define vdsub _mm512_sub_pd
#define vdmul _mm512_mul_pd
#define vdmax _mm512_max_pd
#define vdfma(a, b, c) _mm512_fmadd_pd(a, b, c)
#define vdround(x) _mm512_roundscale_pd(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define vdslli52(x) _mm512_castsi512_pd(_mm512_slli_epi64(_mm512_castpd_si512(x), 52))
static inline vd vdload_f(const float *p) { return _mm512_cvtps_pd(_mm256_loadu_ps(p)); }
static inline double vdhsum(vd x) { return _mm512_reduce_add_pd(x); }
#elif defined(__AVX2__)
enum { VW = 8 };
typedef __m256 vf;
#define vload _mm256_loadu_ps
#define vstore _mm256_storeu_ps
#define vset1 _mm256_set1_ps
#define vadd _mm256_add_ps
#define vsub _mm256_sub_ps
#define vmul _mm256_mul_ps
#define vdiv _mm256_div_ps
#define vmax _mm256_max_ps
#define vmin _mm256_min_ps
#define vfma(a, b, c) _mm256_fmadd_ps(a, b, c)
#define vround(x) _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
static inline vf vpow2(vf n)
{
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23));
}
static inline float vhmax(vf x)
{
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
}
static inline void vadd_double(double acc[VW], vf x)
{
    __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(x)), hi = _mm256_cvtps_pd(_mm256_extractf128_ps(x, 1));
    _mm256_storeu_pd(acc, _mm256_add_pd(_mm256_loadu_pd(acc), lo));
    _mm256_storeu_pd(acc + 4, _mm256_add_pd(_mm256_loadu_pd(acc + 4), hi));
}
static inline void vadd_double_sq(double acc[VW], vf x)
{
    __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(x)), hi = _mm256_cvtps_pd(_mm256_extractf128_ps(x, 1));
    _mm256_storeu_pd(acc, _mm256_add_pd(_mm256_loadu_pd(acc), _mm256_mul_pd(lo, lo)));
    _mm256_storeu_pd(acc + 4, _mm256_add_pd(_mm256_loadu_pd(acc + 4), _mm256_mul_pd(hi, hi)));
}
static inline vf vload_bf16(const uint16_t *p)
{
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
}
static inline vf vload_f16(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }
typedef __m256d vd;
#define vdset1 _mm256_set1_pd
#define vdadd _mm256_add_pd
#define vdsub _mm256_sub_pd
#define vdmul _mm256_mul_pd
#define vdmax _mm256_max_pd
#define vdfma(a, b, c) _mm256_fmadd_pd(a, b, c)
#define vdround(x) _mm256_round_pd(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define vdslli52(x) _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_castpd_si256(x), 52))
static inline vd vdload_f(const float *p) { return _mm256_cvtps_pd(_mm_loadu_ps(p)); }
static inline double vdhsum(vd x)
{
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(x), _mm256_extractf128_pd(x, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}
#else /* x86-64-v2: SSE4.1, no FMA, no F16C */
enum { VW = 4 };
typedef __m128 vf;
#define vload _mm_loadu_ps
#define vstore _mm_storeu_ps
#define vset1 _mm_set1_ps
#define vadd _mm_add_ps
#define vsub _mm_sub_ps
#define vmul _mm_mul_ps
#define vdiv _mm_div_ps
#define vmax _mm_max_ps
#define vmin _mm_min_ps
#define vfma(a, b, c) _mm_add_ps(_mm_mul_ps(a, b), c)
#define vround(x) _mm_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
static inline vf vpow2(vf n)
{
    return _mm_castsi128_ps(_mm_slli_epi32(_mm_add_epi32(_mm_cvtps_epi32(n), _mm_set1_epi32(127)), 23));
}
static inline float vhmax(vf x)
{
    __m128 m = _mm_max_ps(x, _mm_movehl_ps(x, x));
    m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
}
static inline void vadd_double(double acc[VW], vf x)
{
    __m128d lo = _mm_cvtps_pd(x), hi = _mm_cvtps_pd(_mm_movehl_ps(x, x));
    _mm_storeu_pd(acc, _mm_add_pd(_mm_loadu_pd(acc), lo));
    _mm_storeu_pd(acc + 2, _mm_add_pd(_mm_loadu_pd(acc + 2), hi));
}
static inline void vadd_double_sq(double acc[VW], vf x)
{
    __m128d lo = _mm_cvtps_pd(x), hi = _mm_cvtps_pd(_mm_movehl_ps(x, x));
    _mm_storeu_pd(acc, _mm_add_pd(_mm_loadu_pd(acc), _mm_mul_pd(lo, lo)));
    _mm_storeu_pd(acc + 2, _mm_add_pd(_mm_loadu_pd(acc + 2), _mm_mul_pd(hi, hi)));
}
static inline vf vload_bf16(const uint16_t *p)
{
    return _mm_castsi128_ps(_mm_slli_epi32(_mm_cvtepu16_epi32(_mm_loadl_epi64((const __m128i *)p)), 16));
}
/* f16 without F16C, exactly (F. Giesen's method): exponent and mantissa moved
 * into place and rebased; infinities and NaNs get the rest of the exponent;
 * zeros and subnormals are renormalised by one float subtraction (exact). */
static inline vf vload_f16(const uint16_t *p)
{
    __m128i h = _mm_cvtepu16_epi32(_mm_loadl_epi64((const __m128i *)p));
    const __m128i exp_mask = _mm_set1_epi32(0x7c00 << 13);
    __m128i o = _mm_slli_epi32(_mm_and_si128(h, _mm_set1_epi32(0x7fff)), 13);
    __m128i e = _mm_and_si128(o, exp_mask);
    o = _mm_add_epi32(o, _mm_set1_epi32((127 - 15) << 23));
    __m128i inf_nan = _mm_cmpeq_epi32(e, exp_mask), tiny = _mm_cmpeq_epi32(e, _mm_setzero_si128());
    o = _mm_add_epi32(o, _mm_and_si128(inf_nan, _mm_set1_epi32((128 - 16) << 23)));
    __m128 renorm = _mm_sub_ps(_mm_castsi128_ps(_mm_add_epi32(o, _mm_set1_epi32(1 << 23))),
                               _mm_castsi128_ps(_mm_set1_epi32(113 << 23)));
    o = _mm_or_si128(_mm_andnot_si128(tiny, o), _mm_and_si128(tiny, _mm_castps_si128(renorm)));
    o = _mm_or_si128(o, _mm_slli_epi32(_mm_and_si128(h, _mm_set1_epi32(0x8000)), 16));
    return _mm_castsi128_ps(o);
}
typedef __m128d vd;
#define vdset1 _mm_set1_pd
#define vdadd _mm_add_pd
#define vdsub _mm_sub_pd
#define vdmul _mm_mul_pd
#define vdmax _mm_max_pd
#define vdfma(a, b, c) _mm_add_pd(_mm_mul_pd(a, b), c)
#define vdround(x) _mm_round_pd(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define vdslli52(x) _mm_castsi128_pd(_mm_slli_epi64(_mm_castpd_si128(x), 52))
static inline vd vdload_f(const float *p) { return _mm_cvtps_pd(_mm_castsi128_ps(_mm_loadl_epi64((const __m128i *)p))); }
static inline double vdhsum(vd x) { return _mm_cvtsd_f64(_mm_add_sd(x, _mm_unpackhi_pd(x, x))); }
#endif

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define NAME(f) CAT(f##_, CPU_VARIANT)
#define STR2(a) #a
#define STR(a) STR2(a)

#endif
