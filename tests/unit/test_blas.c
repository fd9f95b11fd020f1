/* test_blas.c - OpenBLAS set-up: sgemm correct after blas_init, AVX-512 kernels
 * chosen when the user set nothing, a user's OPENBLAS_CORETYPE left alone, and the
 * re-execution (stdin and arguments kept, markers gone, fallback when the check
 * fails, never a loop). The checks that need a fresh process run this binary again
 * as "test_blas child COUNTFILE", which counts its starts in COUNTFILE, then
 * prints what it found. */
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cblas.h>

#include "base/blas.h"
#include "check.h"

static int child_main(int argc, char **argv)
{
    FILE *f = fopen(argv[2], "a");
    if (f) {
        fputs("start\n", f);
        fclose(f);
    }
    blas_init(argc, argv);
    char line[256] = "";
    if (!fgets(line, sizeof line, stdin))
        line[0] = 0;
    line[strcspn(line, "\n")] = 0;
    const char *ct = getenv("OPENBLAS_CORETYPE"), *to = getenv("OPENBLAS_THREAD_TIMEOUT");
    printf("core=%s\nenv=%s\ntimeout=%s\nmarker=%s\nmarker_core=%s\nhook=%s\nstdin=%s\nargs=%d:%s\n",
           blas_core_name(), ct ? ct : "(unset)", to ? to : "(unset)", getenv("PARE_BLAS_REEXEC") ? "set" : "unset",
           getenv("PARE_BLAS_CORE0") ? "set" : "unset", getenv("PARE_BLAS_TEST") ? "set" : "unset", line, argc,
           argc > 3 ? argv[3] : "");
    return 0;
}

typedef struct {
    char out[2048];
    int starts;
} child_result;

/* Run this binary as a child with OPENBLAS_CORETYPE = coretype (NULL: unset),
 * PARE_BLAS_TEST = hook (NULL: unset) and OPENBLAS_THREAD_TIMEOUT = timeout (NULL:
 * unset), "hello" on its stdin. */
static void run_child_timeout(const char *coretype, const char *hook, const char *timeout, child_result *r)
{
    memset(r, 0, sizeof *r);
    char count_path[] = "/tmp/test_blas_XXXXXX";
    int cfd = mkstemp(count_path);
    CHECK(cfd >= 0);
    close(cfd);
    int in[2], out[2];
    CHECK(pipe(in) == 0 && pipe(out) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[0]), close(in[1]), close(out[0]), close(out[1]);
        if (coretype)
            setenv("OPENBLAS_CORETYPE", coretype, 1);
        else
            unsetenv("OPENBLAS_CORETYPE");
        if (hook)
            setenv("PARE_BLAS_TEST", hook, 1);
        else
            unsetenv("PARE_BLAS_TEST");
        if (timeout)
            setenv("OPENBLAS_THREAD_TIMEOUT", timeout, 1);
        else
            unsetenv("OPENBLAS_THREAD_TIMEOUT");
        char *args[] = {"test_blas", "child", count_path, "extra arg", NULL};
        execv("/proc/self/exe", args);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    CHECK(write(in[1], "hello\n", 6) == 6);
    close(in[1]);
    size_t len = 0;
    ssize_t got;
    while ((got = read(out[0], r->out + len, sizeof r->out - 1 - len)) > 0)
        len += (size_t)got;
    close(out[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    FILE *f = fopen(count_path, "r");
    char line[64];
    while (f && fgets(line, sizeof line, f))
        r->starts++;
    if (f)
        fclose(f);
    unlink(count_path);
}

/* The same with the library's own default timeout set, so that only the core type
 * can cause a re-execution. */
static void run_child(const char *coretype, const char *hook, child_result *r)
{
    run_child_timeout(coretype, hook, "28", r);
}

static int has(const child_result *r, const char *s) { return strstr(r->out, s) != NULL; }

static int cpu_avx512(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512cd");
}

static int is_avx512_core(const char *name)
{
    return !strcmp(name, "SkylakeX") || !strcmp(name, "Cooperlake") || !strcmp(name, "SapphireRapids");
}

static void test_sgemm_after_init(void)
{
    enum { M = 37, N = 29, K = 41 };
    float a[M * K], b[N * K], c[M * N];
    uint32_t seed = 7;
    for (int i = 0; i < M * K; i++)
        a[i] = (float)((seed = seed * 1664525u + 1013904223u) >> 8) / (1 << 24) - 0.5f;
    for (int i = 0; i < N * K; i++)
        b[i] = (float)((seed = seed * 1664525u + 1013904223u) >> 8) / (1 << 24) - 0.5f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, a, K, b, K, 0.0f, c, N);
    double maxerr = 0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double ref = 0;
            for (int p = 0; p < K; p++)
                ref += (double)a[i * K + p] * b[j * K + p];
            maxerr = fmax(maxerr, fabs(ref - c[i * N + j]));
        }
    CHECK(maxerr < 1e-5);
    CHECK(blas_core_name() != NULL && *blas_core_name());
}

static void test_threads(void)
{
    blas_set_threads(1);
    CHECK(blas_threads() == 1);
    CHECK(openblas_get_num_threads() == 1);
    blas_set_threads(2);
    CHECK(blas_threads() == 2);
    setenv("PARE_THREADS", "1", 1);
    blas_set_threads(0);
    CHECK(blas_threads() == 1);
    unsetenv("PARE_THREADS");
    blas_set_threads(0);
    CHECK(blas_threads() >= 1);
}

/* Nothing set: on an AVX-512 CPU the core is an AVX-512 one; markers gone;
 * stdin and arguments reach the program whatever happened. */
static void test_unset_picks_avx512(void)
{
    child_result r;
    run_child(NULL, NULL, &r);
    CHECK(has(&r, "stdin=hello\n"));
    CHECK(has(&r, "args=4:extra arg\n"));
    CHECK(has(&r, "marker=unset\n") && has(&r, "marker_core=unset\n"));
    if (cpu_avx512()) {
        const char *p = strstr(r.out, "core=");
        char core[64] = "";
        if (p)
            sscanf(p, "core=%63s", core);
        CHECK(is_avx512_core(core));
        if (!is_avx512_core(core))
            fprintf(stderr, "    core with OPENBLAS_CORETYPE unset: %s\n", core);
        /* one start if the library knew the CPU, two after a re-execution */
        CHECK(r.starts == 1 || r.starts == 2);
    } else {
        CHECK(r.starts == 1);
    }
}

/* A user's choice stays, even a slow one. */
static void test_user_value_untouched(void)
{
    child_result r;
    run_child("Prescott", NULL, &r);
    CHECK(has(&r, "core=Prescott\n"));
    CHECK(has(&r, "env=Prescott\n"));
    CHECK(r.starts == 1);
    CHECK(has(&r, "stdin=hello\n"));
}

/* The re-execution path itself, on any machine: the hook makes the child take a
 * preset Prescott as the library's own (generic) detection. */
static void test_reexec_from_generic(void)
{
    if (!cpu_avx512()) {
        fprintf(stderr, "    (no AVX-512: re-execution not exercised)\n");
        return;
    }
    child_result r;
    run_child("Prescott", "generic", &r);
    CHECK(r.starts == 2);
    CHECK(has(&r, "core=SkylakeX\n"));
    CHECK(has(&r, "env=SkylakeX\n"));
    CHECK(has(&r, "marker=unset\n") && has(&r, "marker_core=unset\n") && has(&r, "hook=unset\n"));
    CHECK(has(&r, "stdin=hello\n"));
    CHECK(has(&r, "args=4:extra arg\n"));
}

/* When the check after re-execution fails: back to the original core, pinned,
 * exactly one more start, no loop. */
static void test_reexec_fallback(void)
{
    if (!cpu_avx512())
        return;
    child_result r;
    run_child("Prescott", "generic,badsgemm", &r);
    CHECK(r.starts == 3);
    CHECK(has(&r, "core=Prescott\n"));
    CHECK(has(&r, "env=Prescott\n"));
    CHECK(has(&r, "marker=unset\n") && has(&r, "marker_core=unset\n") && has(&r, "hook=unset\n"));
    CHECK(has(&r, "stdin=hello\n"));
}

/* OPENBLAS_THREAD_TIMEOUT unset: set to 4 by one re-execution (the core type the
 * user chose kept); a value the user set stays, without one. */
static void test_thread_timeout(void)
{
    child_result r;
    run_child_timeout("Prescott", NULL, NULL, &r);
    CHECK(r.starts == 2);
    CHECK(has(&r, "timeout=4\n") && has(&r, "core=Prescott\n") && has(&r, "marker=unset\n"));
    CHECK(has(&r, "stdin=hello\n") && has(&r, "args=4:extra arg\n"));
    run_child_timeout("Prescott", NULL, "10", &r);
    CHECK(r.starts == 1);
    CHECK(has(&r, "timeout=10\n") && has(&r, "core=Prescott\n"));
    if (cpu_avx512()) { /* with the core's re-execution: still one, both set */
        run_child_timeout("Prescott", "generic", NULL, &r);
        CHECK(r.starts == 2);
        CHECK(has(&r, "timeout=4\n") && has(&r, "core=SkylakeX\n"));
    }
}

int main(int argc, char **argv)
{
    if (argc > 2 && strcmp(argv[1], "child") == 0)
        return child_main(argc, argv);
    blas_init(argc, argv);
    fprintf(stderr, "  OpenBLAS core: %s\n", blas_core_name());
    TEST(test_sgemm_after_init);
    TEST(test_threads);
    TEST(test_unset_picks_avx512);
    TEST(test_user_value_untouched);
    TEST(test_reexec_from_generic);
    TEST(test_reexec_fallback);
    TEST(test_thread_timeout);
    return check_report();
}
