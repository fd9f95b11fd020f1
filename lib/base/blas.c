/* blas.c - OpenBLAS set-up.
 *
 * Debian's OpenBLAS 0.3.21 is built with DYNAMIC_ARCH: it picks its kernels from
 * the CPU's identity when the library loads. CPUs newer than the library (e.g.
 * Sapphire Rapids) are not recognised and get the generic "Prescott" SSE3 kernels,
 * about 4x slower than the AVX-512 "SkylakeX" ones that run fine on them. The
 * library honours OPENBLAS_CORETYPE, but reads it only at load time, before main().
 * So blas_init() sets it and re-executes the program:
 *
 *   run 0 (no marker): OPENBLAS_CORETYPE unset, CPU has AVX-512, core is not an
 *         AVX-512 one -> set OPENBLAS_CORETYPE=SkylakeX, PARE_BLAS_REEXEC=1,
 *         PARE_BLAS_CORE0=<detected core>, execv("/proc/self/exe", argv).
 *   run 1 (marker 1): check a small sgemm against a plain loop. Wrong -> set
 *         OPENBLAS_CORETYPE=<detected core>, PARE_BLAS_REEXEC=2, execv again.
 *   run 2 (marker 2): nothing more to try.
 *   run 3 (marker 3): only OPENBLAS_THREAD_TIMEOUT was set (below).
 *
 * OpenBLAS's idle threads spin on sched_yield for 2^28 cycles (about 0.1 s) after
 * each product before they sleep, so that between pare's products (its own loops,
 * single-threaded) every other core is busy yielding. OPENBLAS_THREAD_TIMEOUT=4
 * (2^4 cycles, the least it takes) puts them to sleep at once; it too is read
 * only at load, so when it is unset it is set for the same re-execution (alone:
 * marker 3, nothing to check after it). Measured on stories260K, 20 windows, 2
 * threads: 507,525 sched_yield calls and 238 ms of CPU, 33,781 and 136 ms with it.
 *
 * Every run with a marker removes the markers from its environment, so children
 * start clean; OPENBLAS_CORETYPE and OPENBLAS_THREAD_TIMEOUT stay set, and children
 * take them as the user's choice and never re-execute. A value the user set is
 * never touched. Any failure (no /proc, exec refused) is silent: the program goes
 * on with what it has.
 *
 * Test hook (tests/unit/test_blas.c), for machines whose OpenBLAS already knows the
 * CPU: PARE_BLAS_TEST=generic takes a preset OPENBLAS_CORETYPE as the library's own
 * detection rather than the user's choice; ",badsgemm" makes the check fail.
 */
#include "base/blas.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cblas.h>

#define MARKER "PARE_BLAS_REEXEC"
#define MARKER_CORE "PARE_BLAS_CORE0"
#define TARGET_CORE "SkylakeX"
#define TEST_HOOK "PARE_BLAS_TEST"
#define TIMEOUT "OPENBLAS_THREAD_TIMEOUT"
#define TIMEOUT_VALUE "4"

/* Core names (as openblas_get_corename() spells them) whose kernels use AVX-512. */
static int core_is_avx512(const char *name)
{
    static const char *const cores[] = {"skylakex", "cooperlake", "sapphirerapids"};
    for (size_t i = 0; i < sizeof cores / sizeof cores[0]; i++)
        if (name && strcasecmp(name, cores[i]) == 0)
            return 1;
    return 0;
}

/* The instruction subsets OpenBLAS's SkylakeX kernels use; the builtin also
 * checks the OS saves the AVX-512 state (XCR0). */
static int cpu_has_avx512(void)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512cd");
#else
    return 0;
#endif
}

/* C(m,n) = A(m,k) @ B(n,k)^T by OpenBLAS and by a plain loop, on fixed
 * pseudo-random data, in the shape pare uses (RowMajor, NoTrans x Trans). */
static int sgemm_agrees(void)
{
    enum { M = 67, N = 45, K = 53 };
    static float a[M * K], b[N * K], c[M * N];
    uint32_t seed = 12345;
    for (int i = 0; i < M * K; i++) {
        seed = seed * 1664525u + 1013904223u;
        a[i] = (float)(seed >> 8) / (float)(1u << 24) - 0.5f;
    }
    for (int i = 0; i < N * K; i++) {
        seed = seed * 1664525u + 1013904223u;
        b[i] = (float)(seed >> 8) / (float)(1u << 24) - 0.5f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, a, K, b, K, 0.0f, c, N);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double ref = 0, mag = 0;
            for (int p = 0; p < K; p++) {
                ref += (double)a[i * K + p] * b[j * K + p];
                mag += fabs((double)a[i * K + p] * b[j * K + p]);
            }
            if (!(fabs(c[i * N + j] - ref) <= 1e-4 * (mag + 1e-6)))
                return 0;
        }
    return 1;
}

static int test_hook(const char *what)
{
    const char *e = getenv(TEST_HOOK);
    return e && strstr(e, what) != NULL;
}

static void reexec(char **argv)
{
    fflush(stdout);
    fflush(stderr);
    execv("/proc/self/exe", argv);
    /* exec failed: carry on with the library as loaded. */
}

void blas_init(int argc, char **argv)
{
    (void)argc;
    const char *marker = getenv(MARKER);
    if (marker) {
        int stage = atoi(marker);
        char *core0 = getenv(MARKER_CORE) ? strdup(getenv(MARKER_CORE)) : NULL;
        unsetenv(MARKER);
        unsetenv(MARKER_CORE);
        if (stage == 1 && (!sgemm_agrees() || test_hook("badsgemm"))) {
            /* The forced kernels compute wrong results here: go back to the core the
             * library chose itself, pinned so that children do not try again. */
            if (core0 && *core0 && setenv("OPENBLAS_CORETYPE", core0, 1) == 0 &&
                setenv(MARKER, "2", 1) == 0)
                reexec(argv);
            unsetenv(MARKER);
        }
        free(core0);
        unsetenv(TEST_HOOK);
        return;
    }
    int set_timeout = !getenv(TIMEOUT);
    const char *core = openblas_get_corename();
    if ((getenv("OPENBLAS_CORETYPE") && !test_hook("generic")) /* the user's choice */ || !cpu_has_avx512() ||
        !core || core_is_avx512(core)) {
        unsetenv(TEST_HOOK);
        if (set_timeout && setenv(TIMEOUT, TIMEOUT_VALUE, 1) == 0 && setenv(MARKER, "3", 1) == 0)
            reexec(argv);
        unsetenv(MARKER);
        return;
    }
    char *core0 = strdup(core);
    if (core0 && setenv(MARKER_CORE, core0, 1) == 0 && setenv(MARKER, "1", 1) == 0 &&
        setenv("OPENBLAS_CORETYPE", TARGET_CORE, 1) == 0 && (!set_timeout || setenv(TIMEOUT, TIMEOUT_VALUE, 1) == 0))
        reexec(argv);
    /* Could not re-execute: go on with the core the library chose, pinned. */
    if (core0)
        setenv("OPENBLAS_CORETYPE", core0, 1);
    unsetenv(MARKER);
    unsetenv(MARKER_CORE);
    unsetenv(TEST_HOOK);
    free(core0);
}

static int g_threads;

void blas_set_threads(int n)
{
    if (n <= 0) {
        const char *e = getenv("PARE_THREADS");
        if (e && *e)
            n = atoi(e);
    }
    if (n <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n = c > 0 ? (int)c : 1;
    }
    openblas_set_num_threads(n);
    g_threads = n;
}

int blas_threads(void)
{
    return g_threads > 0 ? g_threads : openblas_get_num_threads();
}

void blas_serial(bool serial)
{
    if (g_threads <= 0) /* never set: OpenBLAS's own count, read before it is changed */
        g_threads = openblas_get_num_threads();
    openblas_set_num_threads(serial ? 1 : g_threads);
}

const char *blas_core_name(void)
{
    return openblas_get_corename();
}
