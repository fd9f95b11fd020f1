/* parallel.c - the worker pool of parallel_for (see parallel.h). Workers are
 * started on first use and wait on a condition variable; a job is one range cut
 * into pieces, piece 0 on the caller, piece w on worker w. */
#include "base/parallel.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "base/blas.h"

enum { MAX_THREADS = 64 };

static struct {
    pthread_mutex_t lock;
    pthread_cond_t work, done;
    int started;       /* workers running */
    uint64_t job;      /* job number, bumped for each job */
    int pieces;        /* pieces of the current job (the caller's included) */
    int pending;       /* worker pieces not yet finished */
    void (*fn)(void *, int64_t, int64_t);
    void *ctx;
    int64_t n;
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER, .work = PTHREAD_COND_INITIALIZER, .done = PTHREAD_COND_INITIALIZER};

static pthread_mutex_t busy = PTHREAD_MUTEX_INITIALIZER; /* one job at a time, whoever calls */
static _Thread_local bool inside;                          /* this thread is running a piece */

/* A child of fork() has the forking thread alone: no workers (a test's
 * check_dies_with, for one, forks and then loads a model), and locks another
 * thread may have held. Its pool starts empty. */
static void forked_child(void)
{
    pthread_mutex_init(&pool.lock, NULL);
    pthread_cond_init(&pool.work, NULL);
    pthread_cond_init(&pool.done, NULL);
    pthread_mutex_init(&busy, NULL);
    pool.started = 0;
    pool.pending = 0;
}

static void piece(int p, int pieces, int64_t n, int64_t *b, int64_t *e)
{
    *b = n * p / pieces;
    *e = n * (p + 1) / pieces;
}

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    uint64_t seen = 0;
    inside = true;
    pthread_mutex_lock(&pool.lock);
    for (;;) {
        while (pool.job == seen)
            pthread_cond_wait(&pool.work, &pool.lock);
        seen = pool.job;
        if (id >= pool.pieces)
            continue;
        void (*fn)(void *, int64_t, int64_t) = pool.fn;
        void *ctx = pool.ctx;
        int64_t b, e;
        piece(id, pool.pieces, pool.n, &b, &e);
        pthread_mutex_unlock(&pool.lock);
        fn(ctx, b, e);
        pthread_mutex_lock(&pool.lock);
        if (--pool.pending == 0)
            pthread_cond_signal(&pool.done);
    }
    return NULL;
}

void parallel_for(int64_t n, int64_t grain, void (*fn)(void *ctx, int64_t begin, int64_t end), void *ctx)
{
    int threads = blas_threads();
    threads = threads < MAX_THREADS ? threads : MAX_THREADS;
    int64_t pieces = grain > 0 ? n / grain : n;
    pieces = pieces < threads ? pieces : threads;
    if (pieces < 2 || inside) {
        if (n > 0)
            fn(ctx, 0, n);
        return;
    }
    pthread_mutex_lock(&busy);
    pthread_mutex_lock(&pool.lock);
    static bool child_handled; /* a child inherits the handler with the flag */
    if (!child_handled)
        child_handled = pthread_atfork(NULL, NULL, forked_child) == 0;
    while (pool.started < (int)pieces - 1) {
        pthread_t t;
        if (pthread_create(&t, NULL, worker, (void *)(intptr_t)(pool.started + 1)) != 0)
            break;
        pthread_detach(t);
        pool.started++;
    }
    pieces = pieces < pool.started + 1 ? pieces : pool.started + 1;
    if (pieces < 2) {
        pthread_mutex_unlock(&pool.lock);
        pthread_mutex_unlock(&busy);
        fn(ctx, 0, n);
        return;
    }
    pool.fn = fn, pool.ctx = ctx, pool.n = n;
    pool.pieces = (int)pieces;
    pool.pending = (int)pieces - 1;
    pool.job++;
    blas_serial(true); /* a piece's products run on its own thread */
    pthread_cond_broadcast(&pool.work);
    pthread_mutex_unlock(&pool.lock);
    int64_t b, e;
    piece(0, (int)pieces, n, &b, &e);
    inside = true;
    fn(ctx, b, e);
    inside = false;
    pthread_mutex_lock(&pool.lock);
    while (pool.pending > 0)
        pthread_cond_wait(&pool.done, &pool.lock);
    blas_serial(false);
    pthread_mutex_unlock(&pool.lock);
    pthread_mutex_unlock(&busy);
}

static void zero_part(void *ctx, int64_t b, int64_t e) { memset((char *)ctx + b, 0, (size_t)(e - b)); }

void parallel_zero(void *p, size_t bytes) { parallel_for((int64_t)bytes, 1 << 20, zero_part, p); }
