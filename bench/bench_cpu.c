/* bench_cpu.c - pare's inner loops (base/cpu.h), each variant this CPU has, on
 * rows of the sizes the passes give them: values per nanosecond, best of several
 * rounds, one thread. The first line names the variant the programs choose. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/blas.h"
#include "base/cpu.h"
#include "base/parallel.h"
#include "base/util.h"

enum { ROW = 32000, ROWS = 64 }; /* a vocabulary-wide row; 64 of them (8 MB of fp32) */

static float *x, *y, *o;
static uint16_t *h;

static void run(const cpu_kernels *k, int which)
{
    for (int r = 0; r < ROWS; r++) {
        float *xr = x + (size_t)r * ROW, *yr = y + (size_t)r * ROW, *orow = o + (size_t)r * ROW;
        switch (which) {
        case 0: k->bf16_to_f32(orow, h + (size_t)r * ROW, ROW); break;
        case 1: k->f16_to_f32(orow, h + (size_t)r * ROW, ROW); break;
        case 2: (void)k->first_all_ones16(h + (size_t)r * ROW, ROW, 0x7c00); break;
        case 3: (void)k->sum_squares(xr, ROW); break;
        case 4: k->swiglu(orow, xr, yr, ROW); break;
        case 5: (void)k->exp_sum(orow, xr, k->max(xr, ROW), ROW); break;
        case 6: (void)k->exp_sum_f64(xr, k->max(xr, ROW), ROW); break;
        }
    }
}

static void widen_part(void *ctx, int64_t b, int64_t e)
{
    (void)ctx;
    cpu()->bf16_to_f32(o + b, h + b, (size_t)(e - b));
}

/* 2 MiValues (8 MB of fp32, a matmul panel) widened on t threads, values per ns */
static double widen_threads(int t)
{
    blas_set_threads(t);
    double best = 1e30;
    for (int rep = 0; rep < 20; rep++) {
        double t0 = now_seconds();
        parallel_for((int64_t)ROW * ROWS, 1 << 16, widen_part, NULL);
        double dt = now_seconds() - t0;
        best = dt < best ? dt : best;
    }
    return (double)ROW * ROWS / best / 1e9;
}

int main(int argc, char **argv)
{
    blas_init(argc, argv);
    static const char *const names[] = {"bf16 -> f32", "f16 -> f32", "non-finite scan (16-bit)", "sum of squares",
                                        "SiLU * up", "max, exp, sum (softmax)", "log-sum-exp in double"};
    size_t n = (size_t)ROW * ROWS;
    x = xmalloc_aligned(n * sizeof *x), y = xmalloc_aligned(n * sizeof *y), o = xmalloc_aligned(n * sizeof *o);
    h = xmalloc_aligned(n * sizeof *h);
    for (size_t i = 0; i < n; i++) {
        x[i] = (float)((i * 2654435761u) % 2000) / 100 - 10, y[i] = (float)(i % 7) - 3;
        h[i] = (uint16_t)(0x3000 + (i * 40503u) % 0x1000);
    }
    printf("bench_cpu: the programs use %s; values per ns, one thread\n", cpu()->name);
    printf("%-26s", "");
    for (int l = 0; l < CPU_LEVELS; l++)
        printf(" %9s", cpu_level_name((enum cpu_level)l));
    printf("\n");
    for (int which = 0; which < 7; which++) {
        printf("%-26s", names[which]);
        for (int l = 0; l < CPU_LEVELS; l++) {
            if (!cpu_supports((enum cpu_level)l)) {
                printf(" %9s", "-");
                continue;
            }
            const cpu_kernels *k = cpu_kernels_of((enum cpu_level)l);
            double best = 1e30;
            for (int rep = 0; rep < 7; rep++) {
                double t0 = now_seconds();
                run(k, which);
                double dt = now_seconds() - t0;
                best = dt < best ? dt : best;
            }
            printf(" %9.2f", (double)n / best / 1e9);
        }
        printf("\n");
    }
    int threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    printf("bf16 -> f32 of an 8 MB panel through parallel_for: %.2f values/ns on 1 thread, %.2f on %d\n",
           widen_threads(1), widen_threads(threads), threads);
    free(x), free(y), free(o), free(h);
    return 0;
}
