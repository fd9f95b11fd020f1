/* arena.h - size first, allocate once, point many (STYLE.md 7): float buffers
 * carved out of one 64-byte aligned block. The forward pass, the cached forward
 * and the training pass build their activations this way. */
#ifndef PARE_ARENA_H
#define PARE_ARENA_H

#include <stddef.h>

/* A buffer of an arena: where its pointer goes, and its size in floats. */
typedef struct {
    float **p;
    size_t n;
} arena_part;

/* n floats rounded up to a multiple of 16 (64 bytes): each part starts aligned. */
static inline size_t arena_round(size_t n) { return (n + 15) & ~(size_t)15; }

/* One block (xmalloc_aligned; free() it) holding parts[0..n) one after another,
 * each *parts[i].p pointed at its own (a part of 0 floats too). *floats (if not
 * NULL) gets the block's size in floats. */
float *arena_alloc(const arena_part *parts, size_t n, size_t *floats);

#endif
