/* rng.c - draws from splitmix64 (rng.h). */
#include "base/rng.h"

uint64_t rng_below(uint64_t *state, uint64_t range)
{
    uint64_t limit = UINT64_MAX - UINT64_MAX % range, x;
    do
        x = rng_next(state);
    while (x >= limit);
    return x % range;
}

double rng_unit(uint64_t *state) { return (double)(rng_next(state) >> 11) * 0x1.0p-53; }

void rng_shuffle(int *perm, int n, uint64_t *state)
{
    for (int i = n - 1; i > 0; i--) {
        int j = (int)rng_below(state, (uint64_t)i + 1), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}
