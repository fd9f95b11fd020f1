/* ref_distill.c - the losses in double precision from their definitions
 * (ref_distill.h). */
#include "ref_distill.h"

#include <math.h>
#include <stdlib.h>

/* softmax(x / tau) of a row (V) into out. */
static void softmax(const double *x, int V, double tau, double *out)
{
    double mx = x[0], s = 0;
    for (int j = 1; j < V; j++)
        mx = fmax(mx, x[j]);
    for (int j = 0; j < V; j++)
        s += out[j] = exp((x[j] - mx) / tau);
    for (int j = 0; j < V; j++)
        out[j] /= s;
}

double ref_distill_loss(const double *logits, const int *targets, int N, int V, const distill_teacher *t,
                        double tau, double w, double *kl_out, double *ce_out)
{
    double *s = malloc((size_t)V * sizeof *s), *q = malloc((size_t)V * sizeof *q), *p = malloc((size_t)V * sizeof *p);
    double *y = malloc((size_t)V * sizeof *y);
    char *kept = calloc((size_t)V, 1);
    double kl_sum = 0, ce_sum = 0;
    int count = 0;
    for (int r = 0; r < N; r++) {
        if (targets[r] < 0)
            continue;
        const double *z = logits + (size_t)r * V;
        softmax(z, V, 1, s);
        softmax(z, V, tau, q);
        ce_sum += -log(s[targets[r]]);
        double kl = 0;
        if (t && t->k == 0) {
            for (int j = 0; j < V; j++)
                y[j] = t->logits[(size_t)r * V + j];
            softmax(y, V, tau, p);
            for (int j = 0; j < V; j++)
                if (p[j] > 0)
                    kl += p[j] * log(p[j] / q[j]);
        } else if (t) {
            double q_rest = 0, r_mass = exp((double)t->rest[r]);
            for (int i = 0; i < t->k; i++)
                kept[t->ids[(size_t)r * t->k + i]] = 1;
            for (int j = 0; j < V; j++)
                if (!kept[j])
                    q_rest += q[j];
            for (int i = 0; i < t->k; i++) {
                int id = t->ids[(size_t)r * t->k + i];
                double pi = exp((double)t->logp[(size_t)r * t->k + i]);
                kl += pi * log(pi / q[id]);
                kept[id] = 0;
            }
            if (r_mass > 0)
                kl += r_mass * log(r_mass / q_rest);
        }
        kl_sum += tau * tau * kl;
        count++;
    }
    free(s), free(q), free(p), free(y), free(kept);
    if (!count)
        return NAN;
    if (kl_out)
        *kl_out = kl_sum / count;
    if (ce_out)
        *ce_out = ce_sum / count;
    return (w * kl_sum + (1 - w) * ce_sum) / count;
}
