/* util.c - messages, checked allocation, small file helpers. */
#include "base/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *g_progname = "pare";
bool g_quiet;
static void (*g_die_hook)(const char *msg);

void set_die_hook(void (*hook)(const char *msg)) { g_die_hook = hook; }

void set_progname(const char *argv0)
{
    const char *slash = strrchr(argv0, '/');
    g_progname = slash ? slash + 1 : argv0;
}

const char *progname(void) { return g_progname; }

static void vmessage(const char *kind, const char *fmt, va_list ap)
{
    fflush(stdout);
    if (kind)
        fprintf(stderr, "%s: %s: ", g_progname, kind);
    else
        fprintf(stderr, "%s: ", g_progname);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void die(const char *fmt, ...)
{
    va_list ap;
    if (g_die_hook) {
        char msg[1024];
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        g_die_hook(msg);
    }
    va_start(ap, fmt);
    vmessage("error", fmt, ap);
    va_end(ap);
    exit(1);
}

void usage_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage("error", fmt, ap);
    va_end(ap);
    fprintf(stderr, "Try '%s --help' for more information.\n", g_progname);
    exit(2);
}

void warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage("warning", fmt, ap);
    va_end(ap);
}

void info(const char *fmt, ...)
{
    if (g_quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    vmessage(NULL, fmt, ap);
    va_end(ap);
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        die("out of memory (%zu bytes)", n);
    return p;
}

void *xcalloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        die("out of memory (%zu x %zu bytes)", count, size);
    return p;
}

void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p)
        die("out of memory (%zu bytes)", n);
    return p;
}

char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(xmalloc(n), s, n);
}

char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    char probe[1];
    if (!fmt)
        return xstrdup("");
    va_start(ap, fmt);
    int n = vsnprintf(probe, sizeof probe, fmt, ap);
    va_end(ap);
    if (n < 0)
        die("bad format '%s'", fmt);
    char *s = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

void *xmalloc_aligned(size_t n)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, n ? n : 64) != 0)
        die("out of memory (%zu bytes)", n);
    return p;
}

float *scratch_floats(float **buf, size_t *cap, size_t n)
{
    if (n > *cap) {
        free(*buf);
        *buf = xmalloc_aligned(n * sizeof(float));
        *cap = n;
    }
    return *buf;
}

void bytes_put(bytes *b, const void *p, size_t n)
{
    if (n == 0)
        return;
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 256;
        b->p = xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

uint64_t load_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

FILE *open_read(const char *path, uint64_t *size)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (!f || fstat(fileno(f), &st) != 0)
        die("cannot read '%s': %s", path, strerror(errno));
    *size = (uint64_t)st.st_size;
    return f;
}

char *read_whole_file(const char *path, size_t *len)
{
    bool is_stdin = strcmp(path, "-") == 0;
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f)
        die("cannot read '%s': %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = xmalloc(cap);
    for (;;) {
        if (n + 1 >= cap)
            buf = xrealloc(buf, cap *= 2);
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f))
        die("cannot read '%s': %s", path, strerror(errno));
    if (!is_stdin)
        fclose(f);
    buf[n] = 0;
    if (len)
        *len = n;
    return buf;
}

const uint8_t *map_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0)
        die("cannot read '%s': %s", path, strerror(errno));
    *len = (size_t)st.st_size;
    void *p = *len ? mmap(NULL, *len, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
    if (*len && p == MAP_FAILED)
        die("cannot read '%s': %s", path, strerror(errno));
    close(fd);
    return p;
}

void unmap_file(const uint8_t *p, size_t len)
{
    if (len)
        munmap((void *)p, len);
}

bool path_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

bool path_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

char *path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir);
    return xasprintf("%s%s%s", dir, n && dir[n - 1] == '/' ? "" : "/", name);
}

double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

unsigned parse_name_list(const char *list, const char *const *names, int n, unsigned all_mask, char *bad,
                         size_t bad_size)
{
    unsigned mask = 0;
    char *copy = xstrdup(list), *save = NULL;
    snprintf(bad, bad_size, "%s", "");
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int k = 0;
        while (k < n && strcmp(t, names[k]))
            k++;
        if (k < n) {
            mask |= 1u << k;
        } else if (all_mask && !strcmp(t, "all")) {
            mask |= all_mask;
        } else {
            snprintf(bad, bad_size, "%s", t);
            mask = 0;
            break;
        }
    }
    free(copy);
    return mask;
}

long parse_long(const char *opt, const char *s, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        usage_die("%s: invalid value '%s' (expected an integer in [%ld, %ld])", opt, s, lo, hi);
    return v;
}

double parse_double(const char *opt, const char *s, double lo, double hi)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi))
        usage_die("%s: invalid value '%s' (expected a number in [%g, %g])", opt, s, lo, hi);
    return v;
}

void parse_shard(const char *opt, const char *s, int *shard, int *shards)
{
    const char *slash = strchr(s, '/');
    if (!slash)
        usage_die("%s: expected I/N (e.g. 0/4), got '%s'", opt, s);
    char *index = xasprintf("%.*s", (int)(slash - s), s);
    *shards = (int)parse_long(opt, slash + 1, 1, 1 << 20);
    *shard = (int)parse_long(opt, index, 0, *shards - 1);
    free(index);
}

int name_lookup(const char *s, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(s, names[i]))
            return i;
    return -1;
}
