/* util.h - messages, checked allocation, small file helpers shared by every program. */
#ifndef PARE_UTIL_H
#define PARE_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define PARE_VERSION "0.1.0"

/* Name used in messages: "pare-eval: error: ...". Set once by main(). */
void set_progname(const char *argv0);
const char *progname(void);

/* die: print "PROG: error: MSG" on stderr and exit(1). usage_die exits 2. */
_Noreturn void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A hook die() calls with the message (without the "PROG: error: " prefix) before
 * printing it; the hook must not return (a fuzz target longjmps out, so that one bad
 * input does not end the process). NULL, the default, restores plain die(). A hook
 * that returns anyway gets die()'s usual print and exit(1). */
void set_die_hook(void (*hook)(const char *msg));
_Noreturn void usage_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* info: a plain progress/diagnostic line ("PROG: MSG") unless quiet. */
void info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
extern bool g_quiet;

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* 64-byte aligned allocation (for tensors), freed with free(). */
void *xmalloc_aligned(size_t n);
/* *buf as scratch room for n floats, 64-byte aligned, kept from one use to the
 * next: when *cap (floats) is less, *buf is freed and allocated anew with n (its
 * values not kept). Returns *buf. */
float *scratch_floats(float **buf, size_t *cap, size_t n);

/* Room for n elements in the array p of capacity cap (elements): when n > cap,
 * cap doubles (from first) until n fits and p is reallocated. p and cap are
 * lvalues, evaluated more than once. */
#define GROW(p, cap, n, first)                                                                                     \
    do {                                                                                                           \
        if ((size_t)(n) > (size_t)(cap)) {                                                                         \
            size_t grow_cap_ = (cap) ? (size_t)(cap) : (size_t)(first);                                            \
            while (grow_cap_ < (size_t)(n))                                                                        \
                grow_cap_ *= 2;                                                                                    \
            (p) = xrealloc((p), grow_cap_ * sizeof *(p));                                                          \
            (cap) = grow_cap_;                                                                                     \
        }                                                                                                          \
    } while (0)

/* A growable byte buffer ({0} is empty); bytes_put appends n bytes of p. */
typedef struct {
    uint8_t *p;
    size_t n, cap;
} bytes;
void bytes_put(bytes *b, const void *p, size_t n);

/* The little-endian unsigned integer of the n (1 to 8) bytes at p. */
uint64_t load_le(const uint8_t *p, int n);
/* The float whose IEEE 754 bits are u, and the bits of f. */
static inline float float_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
static inline uint32_t float_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* path opened for reading ("rb"), and its size in bytes; dies naming it. */
FILE *open_read(const char *path, uint64_t *size);
/* Read a whole file ("-" is stdin) into memory; dies naming the file on failure.
 * The buffer has one extra NUL byte past *len. */
char *read_whole_file(const char *path, size_t *len);
/* Map a whole regular file read-only (private); NULL for an empty file. Dies
 * naming the file on failure. Release with unmap_file(p, len). */
const uint8_t *map_file(const char *path, size_t *len);
void unmap_file(const uint8_t *p, size_t len);
bool path_is_dir(const char *path);
bool path_exists(const char *path);
char *path_join(const char *dir, const char *name);

/* Seconds since an arbitrary start (monotonic clock). */
double now_seconds(void);

/* The mask of the comma-separated names in list: bit i for names[i] (i < n), the
 * bits of all_mask for "all" (when all_mask is not 0). 0 when a name is unknown
 * (copied into bad) or the list names none (bad = ""). */
unsigned parse_name_list(const char *list, const char *const *names, int n, unsigned all_mask, char *bad,
                         size_t bad_size);
/* The index of s in names[0..n), or -1: how a closed set's name table is read. */
int name_lookup(const char *s, const char *const *names, int n);

/* Parse helpers for option values; die with usage error naming the option. */
long parse_long(const char *opt, const char *s, long lo, long hi);
double parse_double(const char *opt, const char *s, double lo, double hi);
/* "I/N" with 0 <= I < N <= 2^20: *shard = I, *shards = N; a usage error naming opt otherwise. */
void parse_shard(const char *opt, const char *s, int *shard, int *shards);

#endif
