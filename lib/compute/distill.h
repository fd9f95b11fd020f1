/* distill.h - the losses a student's logits are trained on, forward beside
 * backward: the cross-entropy of the next token and the distillation loss
 * against a teacher's next-token distribution (Hinton et al. 2015, as Minitron
 * and TensorRT Model Optimizer's LogitsDistillationLoss use it),
 *
 *     kd = tau^2 KL(p || q),  p = softmax(teacher / tau), q = softmax(student / tau),
 *
 * mixed as  loss = w * mean kd + (1 - w) * mean ce  over the scored rows. The
 * gradient flows through the student only: d kd / d z_j = tau (q_j - p_j).
 *
 * A teacher row is given whole (its logits) or as its top k (ids and
 * log-probabilities at tau) with the log of the mass of the rest. In the second
 * form the KL is that of the k + 1 buckets, the student's rest being the sum of
 * its probabilities outside the k: the teacher's rest mass r is spread like the
 * student's own, and d kd / d z_j = tau q_j (1 - r / q_rest) outside the k.
 *
 * Letters: N rows, V vocabulary, k kept entries of a teacher row. */
#ifndef PARE_DISTILL_H
#define PARE_DISTILL_H

#include <stdint.h>

/* The teacher's distribution of N rows, whole or top-k. */
typedef struct {
    int k;               /* 0: logits whole; else k entries a row */
    const float *logits; /* (N, V) the teacher's logits (k == 0) */
    const int32_t *ids;  /* (N, k) token ids, distinct */
    const float *logp;   /* (N, k) their log-probabilities at tau */
    const float *rest;   /* (N) log of the mass outside the k (-INFINITY: none) */
} distill_teacher;

/* Sums over the scored rows (doubles, as nll_accumulate keeps them). */
typedef struct {
    double kd, ce;       /* tau^2 KL and cross-entropy, summed */
    int64_t count;       /* rows scored */
} distill_sums;

/* Rows of logits (N, V) whose target (N) is >= 0 (the rest are skipped): add
 * their kd (against teacher t; none when t is NULL, which w 0 allows) and ce
 * into *sums, and,
 * when dlogits is not NULL, set dlogits (N, V) (may equal logits: in place; not
 * +=) to the gradient of dscale * sum over the rows of (w kd + (1 - w) ce) (0 on
 * rows not scored). mark is scratch of V bytes, zero on entry and on return.
 * Dies on a target or teacher id outside the vocabulary. */
void distill_loss(const float *logits, float *dlogits, const int *targets, int N, int V, const distill_teacher *t,
                  float tau, float w, float dscale, distill_sums *sums, uint8_t *mark);

/* The top k (< V) of one row of teacher logits (V) at tau: ids (k) by
 * descending logit (ties: lower id first), their log-probabilities logp (k),
 * and *rest the log of the mass of the others (log-sum-exp in double). mark
 * is scratch of V bytes, zero on entry and on return. */
void distill_topk(const float *logits, int V, int k, float tau, int32_t *ids, float *logp, float *rest,
                  uint8_t *mark);

#endif
