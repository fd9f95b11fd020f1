/* distill.c - cross-entropy and distillation losses of a student's logits, and
 * their gradient, one row at a time (distill.h).
 *
 * A row's sums are in double: the log-sum-exps of z (for the cross-entropy) and
 * of z / tau (for q), each with its maximum subtracted, and the KL as
 * sum p (log p - log q). The gradient is written after every sum of the row is
 * known, so that it may overwrite the logits in place.
 *
 * Letters: N rows, V vocabulary, k kept entries of a teacher row. */
#include "compute/distill.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

/* log sum_j exp(s * z_j) of a row (V), given its maximum mx (of z). */
static double logsumexp_scaled(const float *z, int V, double s, double mx)
{
    double sum = 0;
    for (int j = 0; j < V; j++)
        sum += exp(s * ((double)z[j] - mx));
    return s * mx + log(sum);
}

/* tau^2 KL(p || q) of a row against the teacher's whole logits y (V), with
 * log q_j = z_j / tau - lse; p into p (V) for the gradient. */
static double kd_whole(const float *z, const float *y, int V, double tau, double lse, float *p)
{
    double my = y[0];
    for (int j = 1; j < V; j++)
        my = y[j] > my ? y[j] : my;
    double lse_y = logsumexp_scaled(y, V, 1 / tau, my), kl = 0;
    for (int j = 0; j < V; j++) {
        double lp = (double)y[j] / tau - lse_y, pj = exp(lp);
        p[j] = (float)pj;
        if (pj > 0)
            kl += pj * (lp - ((double)z[j] / tau - lse));
    }
    return tau * tau * kl;
}

/* The same against a top-k row (ids, logp, rest); marks the k ids in mark and
 * sets *ratio to r / q_rest, the factor of the student's own distribution in the
 * teacher's rest. */
static double kd_topk(const float *z, int V, const int32_t *ids, const float *logp, float rest, int k, double tau,
                      double lse, double mx, uint8_t *mark, double *ratio)
{
    double kl = 0;
    for (int i = 0; i < k; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= V || mark[id])
            die("teacher row: token id %d is outside the vocabulary of %d or repeated", (int)id, V);
        mark[id] = 1;
        double lp = logp[i];
        kl += exp(lp) * (lp - ((double)z[id] / tau - lse));
    }
    *ratio = 0;
    if (rest > -INFINITY) {
        double sum = 0;
        for (int j = 0; j < V; j++)
            if (!mark[j])
                sum += exp(((double)z[j] - mx) / tau);
        double log_qrest = mx / tau + log(sum) - lse, r = exp((double)rest);
        kl += r * ((double)rest - log_qrest);
        *ratio = exp((double)rest - log_qrest);
    }
    return tau * tau * kl;
}

void distill_loss(const float *logits, float *dlogits, const int *targets, int N, int V, const distill_teacher *t,
                  float tau_f, float w_f, float dscale, distill_sums *sums, uint8_t *mark)
{
    double tau = tau_f, w = w_f;
    if (w > 0 && !t)
        die("distill_loss: a distillation weight without a teacher");
    float *p = t && t->k == 0 ? xmalloc((size_t)V * sizeof *p) : NULL;
    for (int r = 0; r < N; r++) {
        const float *z = logits + (size_t)r * V;
        float *g = dlogits ? dlogits + (size_t)r * V : NULL;
        int y = targets[r];
        if (y < 0) {
            if (g)
                memset(g, 0, (size_t)V * sizeof *g);
            continue;
        }
        if (y >= V)
            die("target token id %d out of range (vocabulary of %d)", y, V);
        double mx = z[0];
        for (int j = 1; j < V; j++)
            mx = z[j] > mx ? z[j] : mx;
        double lse1 = logsumexp_scaled(z, V, 1, mx);
        double lse = tau == 1 ? lse1 : logsumexp_scaled(z, V, 1 / tau, mx);
        double ce = lse1 - (double)z[y], kd = 0, ratio = 0;
        if (t) {
            if (t->k == 0)
                kd = kd_whole(z, t->logits + (size_t)r * V, V, tau, lse, p);
            else
                kd = kd_topk(z, V, t->ids + (size_t)r * t->k, t->logp + (size_t)r * t->k, t->rest[r], t->k, tau,
                             lse, mx, mark, &ratio);
        }
        sums->ce += ce;
        sums->kd += kd;
        sums->count++;
        if (g) {
            /* (1-w) a (s_j - [j = y]) + w a tau (q_j - p_j), a = dscale */
            double a_ce = (1 - w) * dscale, a_kd = w * dscale * tau;
            for (int j = 0; j < V; j++) {
                double zj = z[j], s = exp(zj - lse1), q = tau == 1 ? s : exp(zj / tau - lse);
                double pj = w == 0 ? 0 : t->k == 0 ? p[j] : mark[j] ? 0 : q * ratio;
                g[j] = (float)(a_ce * s + a_kd * (q - pj));
            }
            if (w > 0 && t->k > 0)
                for (int i = 0; i < t->k; i++)
                    g[t->ids[(size_t)r * t->k + i]] -= (float)(a_kd * exp((double)t->logp[(size_t)r * t->k + i]));
            g[y] -= (float)a_ce;
        }
        if (t && t->k > 0)
            for (int i = 0; i < t->k; i++)
                mark[t->ids[(size_t)r * t->k + i]] = 0;
    }
    free(p);
}

/* Order of the kept entries: larger logit first, lower id on ties. */
static int before(const float *z, int32_t a, int32_t b) { return z[a] > z[b] || (z[a] == z[b] && a < b); }

/* Put x at position i of the heap ids[0..n) (the worst kept, by `before`, at the
 * root) and sift it down to where it belongs. */
static void sift_down(const float *z, int32_t *ids, int n, int i, int32_t x)
{
    for (;;) {
        int c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && before(z, ids[c], ids[c + 1]))
            c++;
        if (!before(z, x, ids[c]))
            break;
        ids[i] = ids[c];
        i = c;
    }
    ids[i] = x;
}

void distill_topk(const float *z, int V, int k, float tau_f, int32_t *ids, float *logp, float *rest, uint8_t *mark)
{
    if (k < 1 || k >= V)
        die("distill_topk: k %d must be in 1..%d", k, V - 1);
    double tau = tau_f;
    /* a heap of the k best so far, the worst of them at the root */
    int n = 0;
    for (int32_t j = 0; j < V; j++) {
        if (n < k) { /* sift up */
            int i = n++;
            while (i > 0 && before(z, ids[(i - 1) / 2], j)) {
                ids[i] = ids[(i - 1) / 2];
                i = (i - 1) / 2;
            }
            ids[i] = j;
        } else if (before(z, j, ids[0])) {
            sift_down(z, ids, k, 0, j);
        }
    }
    /* heap to descending order: the worst to the end, again and again */
    for (int end = k - 1; end > 0; end--) {
        int32_t worst = ids[0];
        sift_down(z, ids, end, 0, ids[end]);
        ids[end] = worst;
    }
    double mx = z[ids[0]], lse = logsumexp_scaled(z, V, 1 / tau, mx), sum = 0;
    for (int i = 0; i < k; i++)
        logp[i] = (float)((double)z[ids[i]] / tau - lse);
    /* the rest's mass summed directly (not 1 - the kept mass, which cancels) */
    for (int i = 0; i < k; i++)
        mark[ids[i]] = 1;
    for (int j = 0; j < V; j++)
        if (!mark[j])
            sum += exp(((double)z[j] - mx) / tau);
    for (int i = 0; i < k; i++)
        mark[ids[i]] = 0;
    *rest = (float)(mx / tau + log(sum) - lse);
}
