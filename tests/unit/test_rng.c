/* test_rng.c - lib/rng: splitmix64 against the published reference outputs
 * (Rosetta Code "Pseudo-random numbers/Splitmix64", seed 1234567), rng_hash as its
 * first step, rng_below's range and lack of modulo bias, rng_unit's range, and
 * rng_shuffle giving permutations, every one of them for n = 3. */
#include <stdbool.h>
#include <string.h>

#include "base/rng.h"
#include "check.h"

static void test_reference_outputs(void)
{
    static const uint64_t want[] = {6457827717110365317ull, 3203168211198807973ull, 9817491932198370423ull,
                                    4593380528125082431ull, 16408922859458223821ull};
    uint64_t s = 1234567;
    for (int i = 0; i < 5; i++)
        CHECK(rng_next(&s) == want[i]);
    CHECK(rng_hash(1234567) == want[0]);
    CHECK(rng_hash(0) == 0xe220a8397b1dcdafull); /* the reference's first output for seed 0 */
}

static void test_below_and_unit(void)
{
    uint64_t s = 42;
    /* range 3 of 2^64: uniform within 1% over 30000 draws */
    int count[3] = {0};
    for (int i = 0; i < 30000; i++) {
        uint64_t x = rng_below(&s, 3);
        CHECK(x < 3);
        if (x < 3)
            count[x]++;
    }
    for (int k = 0; k < 3; k++)
        CHECK(count[k] > 9700 && count[k] < 10300);
    /* a range just above 2^63 rejects almost half the draws: still below range */
    uint64_t big = (1ull << 63) + 12345;
    for (int i = 0; i < 1000; i++)
        CHECK(rng_below(&s, big) < big);
    CHECK(rng_below(&s, 1) == 0);
    double lo = 1, hi = 0, sum = 0;
    for (int i = 0; i < 10000; i++) {
        double u = rng_unit(&s);
        lo = u < lo ? u : lo;
        hi = u > hi ? u : hi;
        sum += u;
    }
    CHECK(lo >= 0 && hi < 1);
    CHECK(fabs(sum / 10000 - 0.5) < 0.01);
}

static void test_shuffle(void)
{
    uint64_t s = 7;
    int seen[6] = {0}; /* the 6 permutations of 3 */
    for (int trial = 0; trial < 6000; trial++) {
        int p[3] = {0, 1, 2};
        rng_shuffle(p, 3, &s);
        CHECK(p[0] != p[1] && p[1] != p[2] && p[0] != p[2]);
        seen[p[0] * 2 + (p[1] > p[2])]++;
    }
    for (int k = 0; k < 6; k++)
        CHECK(seen[k] > 850 && seen[k] < 1150);
    int big[100];
    for (int i = 0; i < 100; i++)
        big[i] = i;
    rng_shuffle(big, 100, &s);
    bool present[100] = {false};
    for (int i = 0; i < 100; i++)
        present[big[i]] = true;
    int n = 0;
    for (int i = 0; i < 100; i++)
        n += present[i];
    CHECK(n == 100);
    rng_shuffle(big, 0, &s); /* nothing to do */
}

int main(void)
{
    TEST(test_reference_outputs);
    TEST(test_below_and_unit);
    TEST(test_shuffle);
    return check_report();
}
