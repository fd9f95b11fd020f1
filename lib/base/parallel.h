/* parallel.h - pare's own loops on every thread: a pool of sleeping workers (no
 * spinning) that split a range of work with the calling thread. The thread count
 * is OpenBLAS's (blas_set_threads): pare's loops and OpenBLAS's products take
 * turns, never run at once, so the two pools share the cores. */
#ifndef PARE_PARALLEL_H
#define PARE_PARALLEL_H

#include <stddef.h>
#include <stdint.h>

/* fn(ctx, begin, end) over [0, n) cut into at most blas_threads() consecutive
 * pieces of at least grain items, run at once, the calling thread taking the
 * first; returns when all are done. One piece (n < 2 * grain, one thread, or a
 * call from inside a piece) runs on the calling thread alone. fn must give the
 * same result however the range is cut (each item its own output). While the
 * pieces run, OpenBLAS is held to one thread (blas_serial): a piece may call it. */
void parallel_for(int64_t n, int64_t grain, void (*fn)(void *ctx, int64_t begin, int64_t end), void *ctx);

/* memset(p, 0, bytes) on every thread: a large buffer's first touch is the
 * kernel's work of mapping and clearing its pages, which then splits too. */
void parallel_zero(void *p, size_t bytes);

#endif
