/* test_distill.c - the training losses of compute/distill.h: distill_loss's sums
 * against the double-precision oracle written from the definitions
 * (ref_distill.h), and its gradient against central finite differences of that
 * oracle, for whole and top-k teachers, temperatures and mixes; distill_topk
 * against a full sort; the top-k KL below the whole one (coarser buckets lose
 * information) and reaching it as k grows.
 *
 * A gradient passes when, for every element, |analytic - fd| <= 1e-3 *
 * max(|fd|, floor), the floor being 1e-3 of the largest |fd|.
 *
 * Letters: N rows, V vocabulary, k kept tokens of a teacher row. */
#include <stdint.h>
#include <string.h>

#include "base/util.h"
#include "check.h"
#include "compute/distill.h"
#include "fixture.h"
#include "ref_distill.h"

static const double FD_TOL = 1e-3, FD_FLOOR = 1e-3, FD_STEP = 1e-5;

/* n random values scale * [-1, 1): floats and the same as doubles. */
static float *rand_row(int64_t n, double scale, double **d)
{
    float *f = xmalloc((size_t)n * sizeof *f);
    *d = xmalloc((size_t)n * sizeof **d);
    for (int64_t i = 0; i < n; i++) {
        f[i] = (float)(scale * fixture_urand());
        (*d)[i] = f[i];
    }
    return f;
}

static double worst;

/* distill_loss at (tau, w) against the oracle: the terms' sums, and every
 * element of the gradient against central differences. */
static void check_loss(const char *what, const float *z, double *zd, const int *targets, int N, int V,
                       const distill_teacher *t, float tau, float w)
{
    int64_t count = 0;
    for (int r = 0; r < N; r++)
        count += targets[r] >= 0;
    float *g = xmalloc((size_t)N * V * sizeof *g);
    uint8_t *mark = xcalloc((size_t)V, 1);
    distill_sums s = {0}, s2 = {0};
    distill_loss(z, g, targets, N, V, t, tau, w, (float)(1.0 / count), &s, mark);
    double kl, ce, ref = ref_distill_loss(zd, targets, N, V, t, tau, w, &kl, &ce);
    CHECK(s.count == count);
    CHECK_CLOSE(s.kd / count, kl, 1e-6);
    CHECK_CLOSE(s.ce / count, ce, 1e-6);
    CHECK_CLOSE(w * s.kd / count + (1 - w) * s.ce / count, ref, 1e-6);
    /* the forward alone gives the same sums, the mark scratch is left zero */
    distill_loss(z, NULL, targets, N, V, t, tau, w, 1, &s2, mark);
    CHECK(s2.kd == s.kd && s2.ce == s.ce);
    bool clean = true;
    for (int j = 0; j < V; j++)
        clean = clean && !mark[j];
    CHECK(clean);
    /* in place: the same gradient */
    float *zi = xmalloc((size_t)N * V * sizeof *zi);
    memcpy(zi, z, (size_t)N * V * sizeof *zi);
    distill_sums s3 = {0};
    distill_loss(zi, zi, targets, N, V, t, tau, w, (float)(1.0 / count), &s3, mark);
    CHECK(!memcmp(zi, g, (size_t)N * V * sizeof *g));
    free(zi);
    double *fd = xmalloc((size_t)N * V * sizeof *fd), scale = 0;
    for (int i = 0; i < N * V; i++) {
        double x0 = zd[i], h = FD_STEP * fmax(1.0, fabs(x0));
        zd[i] = x0 + h;
        double fp = ref_distill_loss(zd, targets, N, V, t, tau, w, NULL, NULL);
        zd[i] = x0 - h;
        double fm = ref_distill_loss(zd, targets, N, V, t, tau, w, NULL, NULL);
        zd[i] = x0;
        fd[i] = (fp - fm) / (2 * h);
        scale = fmax(scale, fabs(fd[i]));
    }
    double e = 0, floor = FD_FLOOR * scale;
    for (int i = 0; i < N * V; i++)
        e = fmax(e, fabs(g[i] - fd[i]) / fmax(fabs(fd[i]), floor));
    fprintf(stderr, "    %-44s loss %.5f (kl %.5f, ce %.5f), gradient's worst relative error %.2g\n", what, ref, kl,
            ce, e);
    CHECK(e < FD_TOL);
    CHECK(scale > 0);
    worst = fmax(worst, e);
    free(fd), free(g), free(mark);
}

static void test_loss(void)
{
    fixture_rng = 7;
    enum { N = 6, V = 37, K = 5 };
    double *zd, *yd;
    float *z = rand_row(N * V, 3.0, &zd), *y = rand_row(N * V, 4.0, &yd);
    int targets[N];
    for (int r = 0; r < N; r++)
        targets[r] = fixture_irand(V);
    targets[2] = -1; /* a row not scored */
    distill_teacher whole = {.k = 0, .logits = y};
    static const struct {
        float tau, w;
    } cases[] = {{1, 1}, {2, 1}, {0.5f, 0.3f}, {1, 0}, {3, 0.7f}};
    char what[96];
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        float tau = cases[c].tau, w = cases[c].w;
        snprintf(what, sizeof what, "whole teacher, tau %g, w %g", tau, w);
        check_loss(what, z, zd, targets, N, V, &whole, tau, w);
        distill_teacher tk;
        fixture_teacher(&tk, y, N, V, K, tau);
        snprintf(what, sizeof what, "top-%d teacher, tau %g, w %g", K, tau, w);
        check_loss(what, z, zd, targets, N, V, &tk, tau, w);
        fixture_teacher_free(&tk);
    }
    /* cross-entropy alone needs no teacher */
    check_loss("no teacher (cross-entropy)", z, zd, targets, N, V, NULL, 1, 0);
    free(z), free(zd), free(y), free(yd);
}

/* distill_topk against sorting the whole row. */
static void test_topk(void)
{
    fixture_rng = 11;
    enum { V = 50 };
    double *zd;
    float *z = rand_row(V, 5.0, &zd);
    z[17] = z[3] = z[40] = 9.0f; /* a three-way tie at the top: lower ids first */
    zd[17] = zd[3] = zd[40] = 9.0;
    int order[V];
    for (int i = 0; i < V; i++)
        order[i] = i;
    for (int i = 1; i < V; i++) /* insertion sort: larger first, lower id on ties */
        for (int j = i; j > 0 && (z[order[j]] > z[order[j - 1]] ||
                                  (z[order[j]] == z[order[j - 1]] && order[j] < order[j - 1])); j--) {
            int tmp = order[j];
            order[j] = order[j - 1];
            order[j - 1] = tmp;
        }
    uint8_t *mark = xcalloc(V, 1);
    for (int k = 1; k < V; k += 6)
        for (float tau = 0.5f; tau <= 2; tau *= 2) {
            int32_t ids[V];
            float logp[V], rest;
            distill_topk(z, V, k, tau, ids, logp, &rest, mark);
            double mx = zd[order[0]], s = 0, s_rest = 0;
            for (int j = 0; j < V; j++)
                s += exp((zd[j] - mx) / tau);
            for (int i = k; i < V; i++)
                s_rest += exp((zd[order[i]] - mx) / tau);
            bool same = true;
            double e = 0;
            for (int i = 0; i < k; i++) {
                same = same && ids[i] == order[i];
                e = fmax(e, fabs(logp[i] - ((zd[order[i]] - mx) / tau - log(s))));
            }
            CHECK(same);
            CHECK(e < 1e-6);
            CHECK_CLOSE(rest, log(s_rest / s), 1e-6);
        }
    bool clean = true;
    for (int j = 0; j < V; j++)
        clean = clean && !mark[j];
    CHECK(clean);
    CHECK(!memcmp((int32_t[]){3, 17, 40}, (int32_t[]){order[0], order[1], order[2]}, 3 * sizeof(int32_t)));
    free(z), free(zd), free(mark);
}

/* Buckets lose information: KL over the top k and the rest is at most the whole
 * KL, and equals it when the rest is one token. */
static void test_topk_bound(void)
{
    fixture_rng = 13;
    enum { N = 4, V = 29 };
    double *zd, *yd;
    float *z = rand_row(N * V, 2.0, &zd), *y = rand_row(N * V, 3.0, &yd);
    int targets[N] = {1, 2, 3, 4};
    distill_teacher whole = {.k = 0, .logits = y};
    double kl_whole, prev = 0;
    ref_distill_loss(zd, targets, N, V, &whole, 1.5, 1, &kl_whole, NULL);
    uint8_t *mark = xcalloc(V, 1);
    for (int k = 1; k < V; k++) {
        distill_teacher tk;
        fixture_teacher(&tk, y, N, V, k, 1.5f);
        distill_sums s = {0};
        distill_loss(z, NULL, targets, N, V, &tk, 1.5f, 1, 1, &s, mark);
        double kl = s.kd / N;
        CHECK(kl <= kl_whole * (1 + 1e-6));
        CHECK(kl >= prev * (1 - 1e-6)); /* finer buckets, more KL */
        if (k == V - 1)
            CHECK_CLOSE(kl, kl_whole, 1e-5);
        prev = kl;
        fixture_teacher_free(&tk);
    }
    fprintf(stderr, "    top-k KL rises to the whole KL %.5f as k goes 1..%d\n", kl_whole, V - 1);
    free(z), free(zd), free(y), free(yd), free(mark);
}

int main(void)
{
    TEST(test_loss);
    TEST(test_topk);
    TEST(test_topk_bound);
    fprintf(stderr, "    worst relative error of the losses' gradients: %.2g\n", worst);
    return check_report();
}
