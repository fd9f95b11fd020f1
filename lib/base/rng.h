/* rng.h - pare's random numbers: splitmix64 (Steele, Lea and Flood, "Fast
 * splittable pseudorandom number generators", 2014; the constants of Vigna's
 * reference code), and what is drawn from it. Every seeded stream of pare (random
 * models, calibration windows, the instruction split, LoRA's initialisation,
 * dropout and epoch order, random importance, sampling's seeding) comes from
 * these functions, so the same seed gives the same output on every machine. */
#ifndef PARE_RNG_H
#define PARE_RNG_H

#include <stdint.h>

#define RNG_GOLDEN 0x9e3779b97f4a7c15ull /* splitmix64's increment, 2^64 / golden ratio */

/* splitmix64's output function: a bijective 64-bit mix (a hash of z). */
static inline uint64_t rng_mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The next value of the splitmix64 stream whose state is *state. */
static inline uint64_t rng_next(uint64_t *state) { return rng_mix(*state += RNG_GOLDEN); }

/* The first value of the stream seeded with x (rng_next of a copy of x). */
static inline uint64_t rng_hash(uint64_t x) { return rng_mix(x + RNG_GOLDEN); }

/* Uniform in [0, range), range > 0: draws at or above the largest multiple of range
 * are rejected, so there is no modulo bias. */
uint64_t rng_below(uint64_t *state, uint64_t range);

/* Uniform in [0, 1): the top 53 bits of a draw. */
double rng_unit(uint64_t *state);

/* Shuffle perm[0..n) in place (Fisher-Yates, from the last position down, each
 * swap partner drawn with rng_below). */
void rng_shuffle(int *perm, int n, uint64_t *state);

#endif
