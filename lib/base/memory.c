/* memory.c - memory_available (memory.h). */
#include "base/memory.h"

#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* The value of "key N" (or "key: N kB" scaled by 1024) in a file of such lines,
 * or -1. */
static long long keyed_value(const char *path, const char *key)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[256];
    long long v = -1;
    size_t kl = strlen(key);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, kl) && (line[kl] == ' ' || line[kl] == ':')) {
            char unit[8] = "";
            if (sscanf(line + kl + (line[kl] == ':'), "%lld %7s", &v, unit) >= 1 && !strcmp(unit, "kB"))
                v *= 1024;
            break;
        }
    fclose(f);
    return v;
}

/* The number a file holds ("max" or anything else unreadable: -1). */
static long long file_value(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long long v = -1;
    if (fscanf(f, "%lld", &v) != 1)
        v = -1;
    fclose(f);
    return v;
}

/* This process's cgroup path for a v1 controller (or v2, controller NULL) from
 * /proc/self/cgroup into path (size n); 0 when there is none. */
static int own_cgroup(const char *controller, char *path, size_t n)
{
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (!f)
        return 0;
    char line[512];
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) {
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c2 = 0;
        const char *ctl = c1 + 1, *p = c2 + 1;
        bool match = false;
        if (!controller)
            match = !strcmp(line, "0") && !*ctl;
        else
            for (const char *s = ctl; *s && !match; s += strcspn(s, ",") + (s[strcspn(s, ",")] == ',')) {
                size_t len = strcspn(s, ",");
                match = len == strlen(controller) && !strncmp(s, controller, len);
            }
        if (match) {
            snprintf(path, n, "%.*s", (int)strcspn(p, "\n"), p);
            found = 1;
        }
    }
    fclose(f);
    return found;
}

/* The headroom of this process's memory cgroup: limit less anonymous memory, or -1. */
static long long cgroup_headroom(void)
{
    char own[384], p[512];
    long long limit = -1, anon = -1;
    if (own_cgroup("memory", own, sizeof own)) { /* v1 */
        snprintf(p, sizeof p, "/sys/fs/cgroup/memory%s/memory.limit_in_bytes", own);
        limit = file_value(p);
        snprintf(p, sizeof p, "/sys/fs/cgroup/memory%s/memory.stat", own);
        anon = keyed_value(p, "total_rss");
    } else if (own_cgroup(NULL, own, sizeof own)) { /* v2 */
        snprintf(p, sizeof p, "/sys/fs/cgroup%s/memory.max", own);
        limit = file_value(p);
        snprintf(p, sizeof p, "/sys/fs/cgroup%s/memory.stat", own);
        anon = keyed_value(p, "anon");
    }
    /* v1 says "no limit" with a number near 2^63 */
    if (limit < 0 || anon < 0 || limit >= (long long)1 << 60)
        return -1;
    return limit > anon ? limit - anon : 0;
}

size_t memory_available(void)
{
    long long avail = keyed_value("/proc/meminfo", "MemAvailable"), cg = cgroup_headroom();
    size_t a = avail >= 0 ? (size_t)avail : SIZE_MAX;
    if (cg >= 0 && (size_t)cg < a)
        a = (size_t)cg;
    return a;
}

void memory_keep_freed(void)
{
    mallopt(M_MMAP_THRESHOLD, 256 << 20);
    mallopt(M_TRIM_THRESHOLD, 512 << 20);
}
