/* check.h - the smallest unit-test harness: CHECK(cond) records a failure with its
 * line and goes on; TEST(name) runs a function; main ends with check_report().
 * Tests that need ../shared/data read the folder named by PARE_DATA. */
#ifndef PARE_CHECK_H
#define PARE_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int check_failures, check_count;

#define CHECK(cond)                                                                 \
    do {                                                                            \
        check_count++;                                                              \
        if (!(cond)) {                                                              \
            check_failures++;                                                       \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);\
        }                                                                           \
    } while (0)

/* |a - b| <= tol * max(1, |b|) */
#define CHECK_CLOSE(a, b, tol)                                                      \
    do {                                                                            \
        double a_ = (a), b_ = (b);                                                  \
        check_count++;                                                              \
        if (!(fabs(a_ - b_) <= (tol) * fmax(1.0, fabs(b_)))) {                      \
            check_failures++;                                                       \
            fprintf(stderr, "%s:%d: %s = %.9g, expected %s = %.9g (tol %g)\n",      \
                    __FILE__, __LINE__, #a, a_, #b, b_, (double)(tol));             \
        }                                                                           \
    } while (0)

#define TEST(fn)                                                                    \
    do {                                                                            \
        int before_ = check_failures;                                               \
        fn();                                                                       \
        fprintf(stderr, "  %-40s %s\n", #fn, check_failures == before_ ? "ok" : "FAILED"); \
    } while (0)

static inline const char *check_data_dir(void)
{
    const char *d = getenv("PARE_DATA");
    return d && *d ? d : "../shared/data";
}

static inline int check_report(void)
{
    fprintf(stderr, "  %d checks, %d failed\n", check_count, check_failures);
    return check_failures ? 1 : 0;
}

#endif
