/* blas.h - OpenBLAS set-up: pick the right kernels on CPUs the library does not
 * know, and set the thread count. */
#ifndef PARE_BLAS_H
#define PARE_BLAS_H

#include <stdbool.h>

/* Call first thing in main(). When OPENBLAS_CORETYPE is unset, the CPU has AVX-512
 * and OpenBLAS reports a generic core, re-executes the program with the matching
 * core type set (OpenBLAS reads the variable only when it loads), then checks a
 * small sgemm against a plain loop and falls back silently if it disagrees.
 * OPENBLAS_THREAD_TIMEOUT, when unset, is set to 4 the same way (idle OpenBLAS
 * threads sleep at once instead of spinning on sched_yield for 0.1 s).
 * A value set by the user is never overridden. */
void blas_init(int argc, char **argv);
/* Threads for OpenBLAS: n > 0, else PARE_THREADS, else all cores. */
void blas_set_threads(int n);
int blas_threads(void);
/* OpenBLAS's products on the calling thread alone (serial) or on blas_threads()
 * threads again: parallel_for's pieces may then call OpenBLAS side by side. */
void blas_serial(bool serial);
const char *blas_core_name(void);

#endif
