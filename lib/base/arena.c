/* arena.c - one block, many buffers (arena.h). */
#include "base/arena.h"

#include "base/util.h"

float *arena_alloc(const arena_part *parts, size_t n, size_t *floats)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += arena_round(parts[i].n);
    float *base = xmalloc_aligned(total * sizeof(float)), *p = base;
    for (size_t i = 0; i < n; i++) {
        *parts[i].p = p;
        p += arena_round(parts[i].n);
    }
    if (floats)
        *floats = total;
    return base;
}
