/* ablate.h - ground-truth importance and layer criteria, from forward passes only.
 *
 * ablation: for a unit of a group, loss(the unit removed) - loss(the model), the
 * mean token cross-entropy over the calibration batch (the batch pass of
 * pare-score's gradient statistics). The unit is removed by masking: its slices
 * of every member are zeroed in place, the loss measured, the values put back.
 * For attn, ffn and layer groups the masked model computes what the pruned model
 * computes (prune.h, prune_mask), so this is the loss change of pruning that one
 * unit; for the hidden group it is the masked model's (RMSNorm still averages
 * over every channel).
 *
 * influence: Block Influence (ShortGPT, Men et al. 2024) of a layer group's block,
 * 1 - mean over the batch's tokens of cos(x_l, x_(l+1)), x_l the residual stream
 * that enters layer l.
 *
 * Both are per unit; they are stored as scores statistics "ablation" and
 * "influence" with the same value in every member row. When only a sample of a
 * group's units is ablated, the others have 0 and the statistic "ablated" marks
 * the sample (1, else 0). Letters: S samples, T tokens per sample, U units of a group. */
#ifndef PARE_ABLATE_H
#define PARE_ABLATE_H

#include <stdint.h>

#include "model/model.h"
#include "prune/groups.h"
#include "text/calib.h"

typedef struct {
    int64_t per_group;  /* 0: every unit; else a sample of this many units per group */
    uint64_t seed;      /* the sample: the units with the smallest keys
                           prune_random_unit(seed, group id, unit) */
} ablate_options;

typedef struct {
    double base_loss;   /* the unmasked model's loss */
    int64_t passes;     /* forward passes over the batch */
    int64_t units;      /* units ablated */
    double seconds;
} ablate_summary;

/* The mean token cross-entropy of m over the samples of c (one batch). */
double ablate_loss(const model *m, const calib *c);

/* The "ablation" statistic of every group of gs (replacing one it had). m's
 * weights are changed during the run and restored bit for bit. */
void ablate_run(model *m, const calib *c, group_set *gs, const ablate_options *o, ablate_summary *sum);

/* The "influence" statistic of every layer group of gs (others are untouched). */
void ablate_influence(const model *m, const calib *c, group_set *gs);

/* Set (or replace) g's statistic name to one value per unit, repeated in every
 * member row. */
void group_set_unit_stat(group *g, const char *name, const double *per_unit);

#endif
