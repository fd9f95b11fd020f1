/* bench_mem.h - what the memory benchmarks share: the process's resident size
 * now and at its peak, and sizes from the environment. */
#ifndef PARE_BENCH_MEM_H
#define PARE_BENCH_MEM_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "base/blas.h"
#include "base/util.h"
#include "model/model.h"

static inline double peak_rss_bytes(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss * 1024.0; /* kilobytes on Linux */
}

/* Current resident size from /proc/self/statm (0 if unreadable). */
static inline double rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, resident = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return (double)resident * 4096.0;
}

/* The integer environment variable name, in [lo, hi], or dflt when unset. */
static inline int env_int(const char *name, int dflt, int lo, int hi)
{
    const char *v = getenv(name);
    return v && *v ? (int)parse_long(name, v, lo, hi) : dflt;
}

/* The benchmarks' LLaMA shape (TinyLlama-1.1B's layer: D 2048, 16 heads of 128, F
 * 5632) with L layers, vocabulary V, untied; its per-layer arrays its own
 * (config_free frees them). */
static inline void bench_config(model_config *c, int L, int V, int max_seq)
{
    memset(c, 0, sizeof *c);
    strcpy(c->model_type, "llama");
    c->dim = 2048, c->n_layers = L, c->vocab = V, c->head_dim = 128, c->max_seq = max_seq;
    c->n_heads = xmalloc((size_t)L * sizeof(int));
    c->n_kv_heads = xmalloc((size_t)L * sizeof(int));
    c->ffn_dim = xmalloc((size_t)L * sizeof(int));
    for (int l = 0; l < L; l++)
        c->n_heads[l] = c->n_kv_heads[l] = 16, c->ffn_dim[l] = 5632;
    c->norm_eps = 1e-5f, c->rope_theta = 10000.0f, c->rope_style = ROPE_HALF, c->tied = false;
    c->bos_id = 1, c->eos_id = 2;
}

/* m, a random model of c (seed 1), after the benchmark's header lines (its
 * name, OpenBLAS's core and threads, the shape); the seconds it took to build. */
static inline double bench_model(model *m, const model_config *c, const char *name)
{
    printf("%s: OpenBLAS core %s, %d threads\n", name, blas_core_name(), blas_threads());
    printf("model                    D %d, L %d, %d heads of %d, F %d, V %d, %s, random weights\n", c->dim,
           c->n_layers, c->n_heads[0], c->head_dim, c->ffn_dim[0], c->vocab, c->tied ? "tied" : "untied");
    double t0 = now_seconds();
    model_init_random(m, c, 1);
    return now_seconds() - t0;
}

#endif
