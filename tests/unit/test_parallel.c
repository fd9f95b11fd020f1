/* test_parallel.c - parallel_for: every item done exactly once, in pieces that
 * cover the range in order, on more than one thread when there are threads;
 * one piece below the grain, with one thread, and inside a piece; thousands of
 * jobs in a row (a lost wake-up would hang, a double run would count twice); in
 * a child of fork(), which has no workers. parallel_zero: the bytes asked for
 * and no others. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/blas.h"
#include "base/parallel.h"
#include "check.h"

typedef struct {
    _Atomic int *hits;   /* (n) times each item was done */
    _Atomic int pieces;  /* pieces run */
    _Atomic int nested;  /* pieces of nested calls */
    pthread_t first;     /* the caller */
    _Atomic int others;  /* pieces run on another thread */
    int nest;            /* call parallel_for again inside each piece */
} job;

static void mark(void *ctx, int64_t b, int64_t e)
{
    job *j = ctx;
    j->pieces++;
    if (!pthread_equal(pthread_self(), j->first))
        j->others++;
    for (int64_t i = b; i < e; i++)
        j->hits[i]++;
}

static void nest(void *ctx, int64_t b, int64_t e)
{
    job *j = ctx;
    job inner = {.hits = j->hits + b, .first = pthread_self()};
    parallel_for(e - b, 1, mark, &inner);
    j->nested += inner.pieces;
}

static int run(int64_t n, int64_t grain, int nested, job *j, _Atomic int *hits)
{
    for (int64_t i = 0; i < n; i++)
        hits[i] = 0;
    *j = (job){.hits = hits, .first = pthread_self(), .nest = nested};
    parallel_for(n, grain, nested ? nest : mark, j);
    int bad = 0;
    for (int64_t i = 0; i < n; i++)
        bad += hits[i] != 1;
    return bad;
}

static void test_parallel_for(void)
{
    enum { N = 100000 };
    static _Atomic int hits[N];
    job j;
    blas_set_threads(2);
    CHECK(run(N, 1000, 0, &j, hits) == 0);
    CHECK(j.pieces == 2 && j.others == 1); /* two threads: the caller and a worker */
    CHECK(run(N, N, 0, &j, hits) == 0);    /* below twice the grain: one piece */
    CHECK(j.pieces == 1 && j.others == 0);
    CHECK(run(N, 1000, 1, &j, hits) == 0); /* inside a piece: that piece's thread alone */
    CHECK(j.nested == 2); /* two outer pieces, each one inner piece */
    CHECK(run(0, 1, 0, &j, hits) == 0 && j.pieces == 0);
    int bad = 0;
    for (int k = 0; k < 5000; k++)
        bad += run(1 + k % 97, 1, 0, &j, hits);
    CHECK(bad == 0);
    blas_set_threads(1);
    CHECK(run(N, 1, 0, &j, hits) == 0);
    CHECK(j.pieces == 1 && j.others == 0);
    blas_set_threads(0);
}

/* A child forked after the workers started runs jobs of its own (on threads it
 * starts anew), within an alarm's time: the pool it inherits would wait forever
 * for workers that are not there. */
static void test_fork(void)
{
    enum { N = 10000 };
    static _Atomic int hits[N];
    job j;
    blas_set_threads(2);
    CHECK(run(N, 100, 0, &j, hits) == 0 && j.others == 1);
    pid_t pid = fork();
    if (pid == 0) {
        alarm(20);
        int bad = run(N, 100, 0, &j, hits) + (j.pieces != 2) + run(N, 100, 0, &j, hits);
        _exit(bad ? 1 : 0);
    }
    int status = -1;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(run(N, 100, 0, &j, hits) == 0 && j.others == 1); /* the parent's pool goes on */
    blas_set_threads(0);
}

static void test_zero(void)
{
    enum { BYTES = 5 << 20 };
    unsigned char *p = malloc(BYTES);
    blas_set_threads(2);
    for (size_t off = 0; off < 3; off++) {
        size_t n = BYTES - 7 - off * 1234567;
        memset(p, 0xab, BYTES);
        parallel_zero(p + off, n);
        size_t wrong = 0;
        for (size_t i = 0; i < BYTES; i++)
            wrong += p[i] != (i >= off && i < off + n ? 0 : 0xab);
        CHECK(wrong == 0);
    }
    parallel_zero(p, 0);
    CHECK(p[0] == 0xab);
    free(p);
    blas_set_threads(0);
}

int main(void)
{
    TEST(test_parallel_for);
    TEST(test_fork);
    TEST(test_zero);
    return check_report();
}
