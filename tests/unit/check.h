/* check.h - the smallest unit-test harness: CHECK(cond) records a failure with its
 * line and goes on; TEST(name) runs a function; main ends with check_report().
 * Tests that need ../shared/data read the folder named by PARE_DATA. */
#ifndef PARE_CHECK_H
#define PARE_CHECK_H

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int check_failures, check_count;

#define CHECK(cond)                                                                 \
    do {                                                                            \
        check_count++;                                                              \
        if (!(cond)) {                                                              \
            check_failures++;                                                       \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);\
        }                                                                           \
    } while (0)

/* |a - b| <= tol * max(1, |b|) */
#define CHECK_CLOSE(a, b, tol)                                                      \
    do {                                                                            \
        double a_ = (a), b_ = (b);                                                  \
        check_count++;                                                              \
        if (!(fabs(a_ - b_) <= (tol) * fmax(1.0, fabs(b_)))) {                      \
            check_failures++;                                                       \
            fprintf(stderr, "%s:%d: %s = %.9g, expected %s = %.9g (tol %g)\n",      \
                    __FILE__, __LINE__, #a, a_, #b, b_, (double)(tol));             \
        }                                                                           \
    } while (0)

#define TEST(fn)                                                                    \
    do {                                                                            \
        int before_ = check_failures;                                               \
        fn();                                                                       \
        fprintf(stderr, "  %-40s %s\n", #fn, check_failures == before_ ? "ok" : "FAILED"); \
    } while (0)

static inline const char *check_data_dir(void)
{
    const char *d = getenv("PARE_DATA");
    return d && *d ? d : "../shared/data";
}

/* A test's temporary folder: made from a mkdtemp template (dies when it cannot
 * be), and removed with everything in it; true when the removal worked. */
static inline void check_make_dir(char *template_)
{
    if (!mkdtemp(template_)) {
        perror(template_);
        exit(1);
    }
}
static inline bool check_remove_dir(const char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    bool ok = system(cmd) == 0;
    if (!ok)
        fprintf(stderr, "cannot remove %s\n", dir);
    return ok;
}

static inline int check_report(void)
{
    fprintf(stderr, "  %d checks, %d failed\n", check_count, check_failures);
    return check_failures ? 1 : 0;
}

/* dies_with(fn, arg, needle...): run fn(arg) in a child; true when it exits with
 * status 1 and its stderr holds every needle (the list ends at the first NULL).
 * The child's whole stderr is drained, so a long message cannot block it. */
typedef void (*check_fn)(void *arg);
#define dies_with(fn, arg, ...) check_dies_with((fn), (arg), (const char *const[]){__VA_ARGS__, NULL})

static inline bool check_dies_with(check_fn fn, void *arg, const char *const *needles)
{
    int fd[2];
    if (pipe(fd) != 0) {
        perror("pipe");
        exit(1);
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        dup2(fd[1], 2);
        fn(arg);
        _exit(0);
    }
    close(fd[1]);
    char buf[8192], sink[4096];
    size_t n = 0;
    ssize_t k;
    while ((k = read(fd[0], n + 1 < sizeof buf ? buf + n : sink,
                     n + 1 < sizeof buf ? sizeof buf - 1 - n : sizeof sink)) > 0)
        if (n + 1 < sizeof buf)
            n += (size_t)k;
    buf[n] = 0;
    close(fd[0]);
    int st;
    waitpid(pid, &st, 0);
    bool ok = WIFEXITED(st) && WEXITSTATUS(st) == 1;
    for (const char *const *q = needles; ok && *q; q++)
        ok = strstr(buf, *q) != NULL;
    if (!ok) {
        fprintf(stderr, "    expected exit 1 with");
        for (const char *const *q = needles; *q; q++)
            fprintf(stderr, " '%s'", *q);
        fprintf(stderr, "; got status %#x, stderr: %s", st, buf);
    }
    return ok;
}

#endif
