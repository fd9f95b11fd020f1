/* rank.h - how well a criterion orders units: Spearman's rank correlation of its
 * importance with the ground truth, the "ablation" statistic of pare-score (the
 * calibration loss change of removing each unit, ablate.h), per group kind. */
#ifndef PARE_RANK_H
#define PARE_RANK_H

#include <stdint.h>
#include <stdio.h>

#include "model/model.h"
#include "prune/groups.h"
#include "prune/prune.h"

/* Spearman's rho of x and y (n values each; ties get their mean rank): the
 * Pearson correlation of the ranks. NaN when n < 2 or either is constant. */
double rank_spearman(const double *x, const double *y, int64_t n);

/* One criterion on one group kind: the mean over the groups (of at least 3
 * ablated units) of rho within the group, and rho over the ablated units of every
 * group of the kind pooled. NaN where undefined. */
typedef struct {
    double within, pooled;
    int groups;          /* groups averaged in within */
    int64_t units;       /* units pooled */
} rank_result;

/* The result for criterion c on the groups of kind k that carry "ablation"
 * (aggregate and seed as in prune_importance); false when c cannot rank every
 * such group (prune_criterion_serves) or there is none. */
bool rank_check(const model *m, const group_set *gs, enum group_kind k, enum prune_criterion c,
                enum prune_aggregate agg, uint64_t seed, const char *stream_name, rank_result *r);

/* The table of rank_check for every criterion and kind on f. Dies naming
 * stream_name when no group carries "ablation". */
void rank_check_print(const model *m, const group_set *gs, enum prune_aggregate agg, uint64_t seed,
                      const char *stream_name, FILE *f);

#endif
