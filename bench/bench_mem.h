/* bench_mem.h - what the memory benchmarks share: the process's resident size
 * now and at its peak, and sizes from the environment. */
#ifndef PARE_BENCH_MEM_H
#define PARE_BENCH_MEM_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "base/util.h"

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

#endif
