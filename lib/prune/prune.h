/* prune.h - pare-prune's steps (DESIGN.md "pruning semantics"): the importance of
 * every unit of a group, the plan (which units go), the physical slicing of a
 * model, the provenance record, and parameter and MAC counts.
 *
 * Letters: D hidden size, L layers, V vocabulary, hd head dim, H query heads,
 * KV key/value heads, F MLP width (H, KV and F per layer), T tokens, U units of a
 * group. */
#ifndef PARE_PRUNE_H
#define PARE_PRUNE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "model/model.h"
#include "prune/groups.h"

enum prune_mode { PRUNE_BLOCK, PRUNE_CHANNEL, PRUNE_LAYER };
#define PRUNE_MODE_COUNT 3
enum prune_aggregate { PRUNE_AGG_SUM, PRUNE_AGG_MEAN, PRUNE_AGG_MAX, PRUNE_AGG_PROD, PRUNE_AGG_FIRST };
#define PRUNE_AGG_COUNT 5
/* The criteria: statistics of a scores stream (vector .. mix), computed from the
 * weights and a scores stream's activations (flap, wanda), from the weights alone
 * (l1, l2), drawn (random), or measured per unit by pare-score (ablation: the
 * loss change of removing the unit; influence: Block Influence of a layer). The
 * per-unit ones take no aggregate. PRUNE_CRIT_DEFAULT: element1 for a scores stream,
 * l2 for a groups stream. */
enum prune_criterion {
    PRUNE_CRIT_DEFAULT,
    PRUNE_CRIT_VECTOR, PRUNE_CRIT_ELEMENT1, PRUNE_CRIT_ELEMENT2, PRUNE_CRIT_MIX,
    PRUNE_CRIT_FLAP, PRUNE_CRIT_WANDA, PRUNE_CRIT_L1, PRUNE_CRIT_L2, PRUNE_CRIT_RANDOM,
    PRUNE_CRIT_ABLATION, PRUNE_CRIT_INFLUENCE, /* per-unit statistics of a scores stream (ablate.h) */
    PRUNE_CRIT_MANUAL, /* a plan given unit by unit (prune_plan_manual), not a criterion */
    PRUNE_CRIT_COUNT
};
/* How units are ranked against each other: within each group (local, the
 * paper's), across the selected groups of a kind (global), or across attention
 * and MLP together by parameter cost after standardising each group's scores
 * (adaptive, FLAP's AL-AM). */
enum prune_select { PRUNE_SELECT_LOCAL, PRUNE_SELECT_GLOBAL, PRUNE_SELECT_ADAPTIVE, PRUNE_SELECT_COUNT };

/* What a criterion is computed from: the weights alone (l1, l2), the weights and
 * activation statistics (flap, wanda), measured per unit (ablation, influence). */
static inline bool prune_criterion_is_magnitude(enum prune_criterion c) { return c == PRUNE_CRIT_L1 || c == PRUNE_CRIT_L2; }
static inline bool prune_criterion_is_activation(enum prune_criterion c)
{
    return c == PRUNE_CRIT_FLAP || c == PRUNE_CRIT_WANDA;
}
static inline bool prune_criterion_is_per_unit(enum prune_criterion c)
{
    return c == PRUNE_CRIT_ABLATION || c == PRUNE_CRIT_INFLUENCE;
}

/* Names and their inverses (-1 if unknown). */
const char *prune_mode_name(enum prune_mode m);
int prune_mode_from_name(const char *s);
const char *prune_aggregate_name(enum prune_aggregate a);
int prune_aggregate_from_name(const char *s);
const char *prune_criterion_name(enum prune_criterion c);
int prune_criterion_from_name(const char *s);         /* never PRUNE_CRIT_DEFAULT */
const char *prune_select_name(enum prune_select s);
int prune_select_from_name(const char *s);

typedef struct {
    enum prune_mode mode;
    double ratio;             /* in [0, 1); used when target_params < 0 */
    double target_params;     /* fraction of all parameters to remove, or < 0 */
    int first_layer, last_layer; /* inclusive; -1: the default range */
    enum prune_select select;
    bool allow_empty;         /* a group may lose every unit (attn, ffn) */
    enum prune_criterion criterion;
    enum prune_aggregate aggregate;
    uint64_t seed;            /* for the random criterion */
    bool no_compensation;     /* flap: no bias compensation */
} prune_options;

/* The units removed from one group. */
typedef struct {
    int group;                /* index into the group_set */
    int64_t n_removed;
    int64_t *removed;         /* (n_removed) ascending unit indices */
} prune_choice;

typedef struct {
    enum prune_mode mode;
    double ratio;             /* the ratio used (solved for with --target-params) */
    double target_params;     /* as asked, or < 0 */
    int first_layer, last_layer; /* -1, -1 for channel mode */
    enum prune_select select;
    bool allow_empty;
    enum prune_criterion criterion; /* never PRUNE_CRIT_DEFAULT */
    enum prune_aggregate aggregate;
    uint64_t seed;
    bool importance_known;    /* false: no weights and no scores, units by index */
    bool compensate;          /* flap in block mode: the removed input channels' mean
                                 contribution goes into o_proj / down_proj biases */
    int n;                    /* groups considered */
    prune_choice *c;          /* (n) */
    double **imp;             /* (n, U) importance of each unit, or NULL (manual plans) */
    model_config before, after;
    int *layer_map;           /* (before.n_layers) new index of each layer, -1 if removed */
} prune_plan;

/* Units removed from a group of U units by the local ratio rule: C = U * width
 * channels (width of the group's first member), floor(C * (1 - ratio)) of them
 * remain, floor(removed channels / width) units go. Not clamped. */
int64_t prune_local_count(int64_t units, int64_t width, double ratio);

/* Uniform in [0, 1), a function of (seed, group id, unit) only: the random
 * criterion's importance. */
double prune_random_unit(uint64_t seed, int id, int64_t u);

/* Whether prune_importance can rank g's units by c (the statistic is in the
 * stream, or the weights and activations it needs are there; ablation: for
 * every unit). */
bool prune_criterion_serves(const model *m, const group_set *gs, const group *g, enum prune_criterion c);

/* Importance of each unit of g (imp, U values): the criterion's per-member values
 * (from the stream's statistics, or computed from m's weights for l1 and l2, or
 * drawn from seed for random, or from m's weights and gs's activation statistics
 * for flap and wanda) combined over the members by agg. flap and wanda use the
 * members that are input channels (axis 1) of a linear map with activation
 * statistics, per channel c of such a W: flap Var(x_c) * sum_r W[r,c]^2 (FLAP's
 * fluctuation metric), wanda ||x_c|| * sum_r |W[r,c]| (structured Wanda); for
 * attn and ffn groups that is o_proj or down_proj alone. Dies naming
 * stream_name when g lacks the statistic and it cannot be computed. gs may be
 * NULL for the other criteria. */
void prune_importance(const model *m, const group_set *gs, const group *g, enum prune_criterion criterion,
                      enum prune_aggregate agg, uint64_t seed, const char *stream_name, double *imp);

/* z = (imp - mean) / std over the U values, std with n - 1 (FLAP's
 * standardisation, torch.std); all 0 when the values do not vary or U < 2. */
void prune_standardise(const double *imp, int64_t U, double *z);

/* Whether c can rank every group a plan with options o would consider. */
bool prune_plan_serves(const model *m, const group_set *gs, const prune_options *o, enum prune_criterion c);

/* The plan for model m (its weights are only read for l1/l2 importance) and the
 * groups gs of a stream of kind stream_kind ("groups" or "scores", named
 * stream_name in messages). Dies on an option the model or the stream cannot
 * serve (layers out of range, a criterion the stream lacks, a target that cannot
 * be reached). */
void prune_plan_make(prune_plan *p, const model *m, const group_set *gs, const char *stream_kind,
                     const char *stream_name, const prune_options *o);
/* A plan that removes exactly the given units (n choices; the arrays are
 * copied), e.g. for tests or to replay a provenance record. */
void prune_plan_manual(prune_plan *p, const model *m, const group_set *gs, enum prune_mode mode, int n,
                       const prune_choice *c);
void prune_plan_free(prune_plan *p);

/* The plan as a table (per layer: heads, key/value heads and MLP channels kept,
 * parameters before and after; totals, MACs for a sequence of T tokens). */
void prune_plan_print(const prune_plan *p, int T, FILE *f);

/* out = src with every removed unit's slices cut out of every member (survivors
 * keep their order), the layers of layer mode dropped and the rest renumbered,
 * a sub-block emptied entirely dropped with the norm that feeds it, the config of
 * the plan, and src's tokenizer and extra config keys. With p->compensate (FLAP),
 * every removed input channel c of o_proj and down_proj adds W[:,c] * mean(x_c)
 * (gs's activations) to that map's output bias, created (zeros, in every layer
 * that keeps the sub-block) when src has none. Bound. With lazy, out's matrices
 * have no data: each is sliced from src when the fingerprint or a writer asks
 * (out->values), so src must outlive every use of out's values, and writing a
 * pruned model takes src plus one tensor of memory (model_materialize makes
 * them all). */
void prune_apply(model *src, const group_set *gs, const prune_plan *p, bool lazy, model *out);
/* The pass over src that writing a lazily pruned model (out, from prune_apply)
 * needs before its first byte: out's fingerprint (out->fingerprint, which the
 * checkpoint's header carries), and with scan_src, src's own check and fingerprint
 * (src bound by model_bind_unscanned; model_scan_finish). Each tensor of src is
 * scanned just before its slice is cut, so that a model larger than the memory is
 * read from disk once for both. Without name_out, src's scan alone. Dies on a
 * non-finite value of src, or of out (a compensated bias out of range). */
void prune_scan(model *src, model *out, bool scan_src, bool name_out);

/* Zero the removed units' slices of every member in place (masking): the model
 * keeps its shapes. For attn, ffn and layer groups the result computes exactly
 * what the pruned model computes; for the hidden group it does not (RMSNorm
 * averages over all D channels). */
void prune_mask(model *m, const group_set *gs, const prune_plan *p);

/* The checkpoint's provenance: base fingerprint (and the base's own provenance
 * when it had one), mode, ratio, criterion, aggregate, layers, and per group its
 * id, kind, layer and removed unit indices. New reference. */
json_t *prune_provenance(const prune_plan *p, const group_set *gs, const model *base);

/* Counts from a config: parameters of layer l, and multiply-accumulates of the
 * forward pass over T tokens: every linear map (q, k, v, o, gate, up, down, LM
 * head) T*in*out, attention 2*H*T*T*hd (scores and weighted sum, full square);
 * norms, rotary, softmax, SiLU and the embedding lookup are not counted. */
int64_t prune_layer_params(const model_config *c, int l);
int64_t prune_layer_macs(const model_config *c, int l, int T);
int64_t prune_macs(const model_config *c, int T);

#endif
