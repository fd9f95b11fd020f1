/* test_cpu.c - every variant of pare's inner loops (base/cpu.h) that this CPU can
 * run, against independent scalar formulas (libm, the scalar conversions of
 * tensor.c) and against the baseline variant; the variants the CPU lacks are named
 * as skipped. Lengths around the vector widths and unaligned starts reach every
 * tail. */
#include <stdint.h>

#include "base/cpu.h"
#include "base/rng.h"
#include "check.h"
#include "model/tensor.h"

static const size_t lengths[] = {1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 64, 100, 4096, 32000};

static bool same_float(float a, float b)
{
    return isnan(a) ? isnan(b) : !memcmp(&a, &b, sizeof a);
}

/* every 16-bit pattern, from every start offset 0..3 (unaligned), exactly as the
 * scalar conversions widen it (NaNs as NaNs: F16C quiets a signalling one) */
static void check_widening(const cpu_kernels *k)
{
    enum { N = 65536 + 3 };
    uint16_t *h = malloc(N * sizeof *h);
    float *f = malloc(N * sizeof *f);
    for (int start = 0; start < 4; start++) {
        for (int i = 0; i < N; i++)
            h[i] = (uint16_t)(i - start);
        int bad_bf = 0, bad_f = 0;
        k->bf16_to_f32(f, h + start, 65536);
        for (int i = 0; i < 65536; i++)
            bad_bf += !same_float(f[i], bf16_to_f32((uint16_t)i));
        k->f16_to_f32(f, h + start, 65536);
        for (int i = 0; i < 65536; i++)
            bad_f += !same_float(f[i], f16_to_f32((uint16_t)i));
        CHECK(bad_bf == 0);
        CHECK(bad_f == 0);
    }
    for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++) { /* tails: nothing past n written */
        size_t n = lengths[li];
        for (size_t i = 0; i < n + 1; i++)
            f[i] = -1.0f, h[i] = (uint16_t)(0x3c00 + i % 512);
        k->f16_to_f32(f, h, n);
        CHECK(f[n] == -1.0f && f[n - 1] == f16_to_f32(h[n - 1]));
        k->bf16_to_f32(f, h, n);
        CHECK(f[n] == -1.0f && f[n - 1] == bf16_to_f32(h[n - 1]));
    }
    free(h);
    free(f);
}

static void check_scans(const cpu_kernels *k)
{
    enum { N = 5000 };
    uint16_t *h = calloc(N, sizeof *h);
    uint32_t *u = calloc(N, sizeof *u);
    char *odd = malloc(N * sizeof *u + 1);
    for (int i = 0; i < N; i++)
        h[i] = 0x3c00, u[i] = 0x3f800000u;
    CHECK(k->first_all_ones16(h, N, 0x7c00) == N);
    CHECK(k->first_all_ones32(u, N, 0x7f800000u) == N);
    static const size_t at[] = {0, 1, 15, 16, 31, 32, 33, 1023, 1024, 4097, N - 1};
    for (size_t j = 0; j < sizeof at / sizeof at[0]; j++) {
        h[at[j]] = 0x7c01, u[at[j]] = 0xff800000u; /* a NaN, -inf */
        if (at[j] + 7 < N)
            h[at[j] + 7] = 0x7c00, u[at[j] + 7] = 0x7f800000u; /* a later one does not count */
        CHECK(k->first_all_ones16(h, N, 0x7c00) == at[j]);
        CHECK(k->first_all_ones32(u, N, 0x7f800000u) == at[j]);
        CHECK(k->first_all_ones16(h + 1, at[j] > 0 ? at[j] - 1 : 0, 0x7c00) == (at[j] > 0 ? at[j] - 1 : 0));
        /* the same values one byte past an aligned address (a tensor mapped at an odd offset) */
        memcpy(odd + 1, h, N * sizeof *h);
        CHECK(k->first_all_ones16(odd + 1, N, 0x7c00) == at[j]);
        memcpy(odd + 1, u, N * sizeof *u);
        CHECK(k->first_all_ones32(odd + 1, N, 0x7f800000u) == at[j]);
        h[at[j]] = 0x3c00, u[at[j]] = 0x3f800000u;
        if (at[j] + 7 < N)
            h[at[j] + 7] = 0x3c00, u[at[j] + 7] = 0x3f800000u;
    }
    free(h);
    free(u);
    free(odd);
}

/* The row loops against libm on random rows of every length; the same rows give
 * the baseline's results in base (n values per length, one after another). */
static void check_rows(const cpu_kernels *k, const cpu_kernels *base)
{
    uint64_t r = 7;
    float *x = malloc(32001 * sizeof *x), *w = malloc(32001 * sizeof *w), *y = malloc(32001 * sizeof *y);
    float *z = malloc(32001 * sizeof *z), *o = malloc(32001 * sizeof *o);
    int bad = 0;
    for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++) {
        size_t n = lengths[li];
        float *xs = x + 1; /* unaligned */
        for (size_t i = 0; i < n; i++)
            xs[i] = (float)(rng_unit(&r) * 16 - 8), w[i] = (float)(rng_unit(&r) * 2 - 1), y[i] = (float)(rng_unit(&r) * 2 - 1);
        xs[n / 2] = -95.0f; /* below exp's clamp */
        /* sum of squares */
        double ss = 0;
        for (size_t i = 0; i < n; i++)
            ss += (double)xs[i] * xs[i];
        CHECK_CLOSE(k->sum_squares(xs, n), ss, 1e-12);
        CHECK_CLOSE(k->sum_squares(xs, n), base->sum_squares(xs, n), 1e-12);
        /* scale_mul and scale: exact */
        k->scale_mul(o, xs, w, 0.37f, n);
        for (size_t i = 0; i < n; i++)
            bad += o[i] != w[i] * (xs[i] * 0.37f);
        memcpy(o, xs, n * sizeof *o);
        k->scale(o, -1.7f, n);
        for (size_t i = 0; i < n; i++)
            bad += o[i] != xs[i] * -1.7f;
        /* max: exact */
        float mx = xs[0];
        for (size_t i = 1; i < n; i++)
            mx = xs[i] > mx ? xs[i] : mx;
        CHECK(k->max(xs, n) == mx);
        /* swiglu against libm, and against the baseline */
        k->swiglu(o, xs, y, n);
        base->swiglu(z, xs, y, n);
        for (size_t i = 0; i < n; i++) {
            double g = xs[i], want = g / (1 + exp(-g)) * y[i];
            bad += !(fabs(o[i] - want) <= 1e-6 * fabs(want) + 1e-30);
            bad += !(fabs(o[i] - z[i]) <= 1e-6 * fabs(z[i]) + 1e-30);
        }
        /* exp_sum: each value within 2.5e-7 of exp of the fp32 difference, the sum
         * within 1e-6 of the exact one; in place too */
        double sum = k->exp_sum(o, xs, mx, n), want = 0;
        for (size_t i = 0; i < n; i++) {
            double e = exp((double)(xs[i] - mx));
            want += exp((double)xs[i] - mx);
            bad += !(fabs(o[i] - e) <= 2.5e-7 * e + 1e-37);
        }
        CHECK_CLOSE(sum, want, 1e-6);
        CHECK_CLOSE(k->exp_sum(NULL, xs, mx, n), sum, 0);
        memcpy(z, xs, n * sizeof *z);
        CHECK_CLOSE(k->exp_sum(z, z, mx, n), sum, 0);
        CHECK(!memcmp(z, o, n * sizeof *z));
        CHECK_CLOSE(base->exp_sum(NULL, xs, mx, n), sum, 1e-6);
        /* exp_sum_f64: double accuracy */
        CHECK_CLOSE(k->exp_sum_f64(xs, mx, n), want, 1e-14);
        CHECK_CLOSE(k->exp_sum_f64(xs, mx, n), base->exp_sum_f64(xs, mx, n), 1e-14);
    }
    /* exp's ends: large arguments stay finite up to 88.7, tiny ones do not go negative */
    float big[3] = {88.0f, 0.0f, -200.0f}, e[3];
    k->exp_sum(e, big, 0.0f, 3);
    CHECK_CLOSE(e[0], exp(88.0), 1e-6);
    CHECK(e[1] == 1.0f);
    CHECK(e[2] >= 0.0f && e[2] < 1e-37f);
    CHECK_CLOSE(k->exp_sum_f64(big, 0.0, 3), exp(88.0) + 1 + exp(-200.0), 1e-14);
    CHECK(bad == 0);
    free(x), free(w), free(y), free(z), free(o);
}

static void test_variants(void)
{
    const cpu_kernels *base = cpu_kernels_of(CPU_BASELINE);
    for (int l = 0; l < CPU_LEVELS; l++) {
        if (!cpu_supports((enum cpu_level)l)) {
            fprintf(stderr, "    %s: skipped, this CPU does not have it\n", cpu_level_name((enum cpu_level)l));
            continue;
        }
        const cpu_kernels *k = cpu_kernels_of((enum cpu_level)l);
        int before = check_failures;
        CHECK(!strcmp(k->name, cpu_level_name((enum cpu_level)l)));
        check_widening(k);
        check_scans(k);
        check_rows(k, base);
        fprintf(stderr, "    %s: %s\n", k->name, check_failures == before ? "ok" : "FAILED");
    }
}

/* The choice: the widest level the CPU has, or PARE_CPU's. */
static void test_select(void)
{
    const char *e = getenv("PARE_CPU");
    int widest = 0;
    for (int l = 0; l < CPU_LEVELS; l++)
        if (cpu_supports((enum cpu_level)l))
            widest = l;
    CHECK(!strcmp(cpu()->name, e && *e ? e : cpu_level_name((enum cpu_level)widest)));
    CHECK(cpu() == cpu_select());
}

/* pare's own product: at avx2, and at avx512 on AMD's CPUs only (cpu.h); each
 * level the CPU has picked in turn through PARE_CPU. */
static void test_select_product(void)
{
    char *was = getenv("PARE_CPU") ? strdup(getenv("PARE_CPU")) : NULL;
    __builtin_cpu_init();
    for (int l = 0; l < CPU_LEVELS; l++) {
        if (!cpu_supports((enum cpu_level)l))
            continue;
        setenv("PARE_CPU", cpu_level_name((enum cpu_level)l), 1);
        const cpu_kernels *k = cpu_select();
        bool own = l == CPU_AVX2 || (l == CPU_AVX512 && __builtin_cpu_is("amd"));
        CHECK(k == cpu() && (k->gemm != NULL) == own);
        CHECK(!own || k->gemm == (l == CPU_AVX2 ? gemm_fma_avx2 : gemm_fma_avx512));
    }
    if (was)
        setenv("PARE_CPU", was, 1);
    else
        unsetenv("PARE_CPU");
    free(was);
    cpu_select();
}

static void pick_unknown(void *arg)
{
    (void)arg;
    setenv("PARE_CPU", "sse9", 1);
    cpu_select();
}

static void test_select_refuses(void)
{
    CHECK(dies_with(pick_unknown, NULL, "PARE_CPU=sse9: expected baseline, avx2, avx512 or amx", NULL));
}

int main(void)
{
    TEST(test_variants);
    TEST(test_select);
    TEST(test_select_product);
    TEST(test_select_refuses);
    return check_report();
}
