/* score.h - pare-score's statistics (DESIGN.md "scores"; LLM-Pruner's
 * hf_llama_pruner.py): for every member of every group, per unit, the gradient
 * and magnitude criteria; per input channel of every linear map, activation
 * statistics (FLAP, Wanda). In bounded memory: the backward pass hands over one
 * layer's gradients at a time, and they are reduced to per-channel numbers at
 * once.
 *
 * G is the gradient of the mean token cross-entropy over the whole calibration
 * batch (one backward pass over S x T tokens); F = (1/S) sum_s G_s^2 the
 * diagonal empirical Fisher from one backward pass per sample. For a member W
 * a channel is an index along the member's axis; each statistic is reduced over
 * the other axis, then summed over the unit's channels:
 *   vector   | sum (W.G) |        element1  sum |W.G|        element2  sum W.F.W
 *   mix      sum |W.G - W.F.W/2|  l1        sum |W|          l2        sum W^2
 *
 * Memory. vector, element1, l1, l2 and the activations need one batch pass.
 * element2 alone is separable (sum_s of per-sample reductions of W^2 G_s^2):
 * one pass per sample, then the batch pass. mix needs F element-wise beside G:
 * the tensors, in the backward pass's order, are cut into chunks whose F fits
 * in fisher_memory bytes (by rows: element2 and mix add up over rows), and for
 * each chunk the per-sample passes (accumulating F for that chunk only) run
 * again, then the batch pass that reduces the chunk: chunks x (S + 1) passes;
 * vector and element1 come from the first batch pass.
 *
 * Shards (--shard i/n) score samples i, i+n, ... and write a "partial" stream of
 * raw sums per tensor, element-wise: W.sum(dce) (the gradient of the sum, not the
 * mean, of the shard's token cross-entropies, times W) and W.W.sum_s G_s^2, plus
 * the activation sums; they add up to the whole batch's, so a merge gives the
 * unsharded statistics up to float rounding. Letters: S samples, T tokens per
 * sample, U units of a group, I input width of a linear map. */
#ifndef PARE_SCORE_H
#define PARE_SCORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/model.h"
#include "prune/groups.h"
#include "prune/score_stats.h"
#include "text/calib.h"

typedef struct {
    unsigned stats;         /* mask of 1 << enum score_stat */
    size_t fisher_memory;   /* bytes for a chunk's element-wise F; 0: the default */
    size_t keep_memory;     /* bytes for the layers' internals kept from the forward pass
                               for the backward (backward_state_keep); 0: none, each
                               recomputed. The statistics are the same either way. */
    int shard, shards;      /* shards > 0: samples shard, shard + shards, ... */
} score_options;

typedef struct {
    int chunks;             /* chunks of layers (1 unless F was held element-wise in parts) */
    int64_t passes;         /* forward and backward passes */
    int64_t tokens;         /* tokens through them */
    double loss;            /* mean cross-entropy of the (shard's) batch, NaN without a pass */
    double seconds;
} score_summary;

/* The default budget for the element-wise F of a chunk: 2/5 of the weights' bytes
 * less the backward pass's buffers for a batch of samples x seq_len
 * (backward_state_bytes), at least 16 MiB; so the peak, weights + those buffers + F,
 * stays below 1.4 x the weights whenever the buffers leave room. */
size_t score_default_fisher_memory(const model *m, int samples, int seq_len);

/* The default keep_memory: a quarter of the memory available (memory_available). */
size_t score_default_keep_memory(void);

/* The statistics of o->stats for every group of gs (their stats replaced, in
 * enum order), gs->act (activations) and gs->calibration; ablation and
 * influence are left to ablate.h. m must be the model
 * gs was found for (the caller checks the fingerprint). */
void score_run(const model *m, const calib *c, group_set *gs, const score_options *o, score_summary *sum);

/* Shard o->shard of o->shards: write a partial stream to out ("-"/NULL:
 * stdout). gs's groups get their l1/l2 stats (which need no samples). */
void score_write_partial(const model *m, const calib *c, group_set *gs, const score_options *o, const char *out,
                         int argc, char **argv, score_summary *sum);

/* Merge the partial streams of every shard of one run (any order) into gs: the
 * same groups, statistics, activations and calibration score_run gives. Errors
 * about the set of partials as a whole start with label (the caller's name for
 * the merge). */
void score_merge(char *const *paths, int n, const char *label, group_set *gs);

/* The chunks o's element-wise F is held in for a calibration of samples x
 * seq_len (1 when none is needed). Unsharded, a chunk is a run of rows of the
 * tensors in the backward pass's order (a tensor may be split by rows); a shard's
 * chunks hold whole tensors (each sum record is one tensor). */
int score_chunks(const model *m, const group_set *gs, const score_options *o, int samples, int seq_len);

#endif
