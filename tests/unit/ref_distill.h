/* ref_distill.h - the unit tests' oracle for the training losses: the mean over
 * the scored rows of w tau^2 KL(p || q) + (1 - w) CE, in double precision,
 * written from the definitions with plain loops (no lib/ numerics): q the
 * softmax of the student's logits / tau, p the teacher's (its logits / tau, or
 * its top k and the rest's mass, the student's q then summed over the same
 * k + 1 buckets).
 *
 * Letters: N rows, V vocabulary, k kept tokens of a teacher row. */
#ifndef PARE_REF_DISTILL_H
#define PARE_REF_DISTILL_H

#include "compute/distill.h"

/* logits (N, V) of the student in double; targets (N), -1: not scored; t may be
 * NULL (no KL) when w is 0. *kl and *ce (may be NULL) get the two means. NAN when no row
 * is scored. */
double ref_distill_loss(const double *logits, const int *targets, int N, int V, const distill_teacher *t,
                        double tau, double w, double *kl, double *ce);

#endif
