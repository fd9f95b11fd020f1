/* score_reduce.h - what pare-score's statistics are summed in (private to prune/):
 * every tensor a group member names (a "tref"), per-unit accumulators of the
 * member statistics, activation sums; values of a whole tensor reduced into
 * them, and the group set's statistics made from them. score.c feeds them from
 * the backward pass, score_merge.c from the shards' sums.
 *
 * Letters: L layers, U units of a group, M members of a group, R x C a member
 * tensor (C = 1 for a vector), I a linear map's input width, NS the member
 * statistics. A "position" orders the backward pass's calls (score.c): layer l
 * is at L-1-l, the outer tensors at L. */
#ifndef PARE_SCORE_REDUCE_H
#define PARE_SCORE_REDUCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "format/stream.h"
#include "model/model.h"
#include "prune/groups.h"
#include "prune/score_stats.h"

#define GRAD_STATS ((1u << SCORE_VECTOR) | (1u << SCORE_ELEMENT1) | (1u << SCORE_ELEMENT2) | (1u << SCORE_MIX))
#define MAG_STATS ((1u << SCORE_L1) | (1u << SCORE_L2))
#define NS SCORE_MEMBER_STATS

typedef struct {
    int g, k; /* group index, member index */
} member_ref;

typedef struct {
    char *name;
    int layer;          /* N of model.layers.N.*, else -1 */
    int pos;            /* sink position */
    int64_t rows, cols; /* cols 1 for a vector; -1 until known (merge) */
    const tensor *w;    /* the weights (NULL in a merge) */
    int n_refs;
    member_ref *refs;
    bool done;          /* merge: its sums arrived */
} tref;

/* Rows [r0, r1) of a tref whose element-wise F a chunk holds. */
typedef struct {
    int t;              /* tref index */
    int64_t r0, r1;
    float *f;           /* (r1 - r0, cols) sum_s G_s^2 of these rows, in the chunk's arena */
} piece;

typedef struct {
    char *tensor;
    int64_t tokens, I;
    double *sum, *sumsq; /* (I) each */
} act_acc;

enum pass_kind { PASS_FISHER, PASS_E2, PASS_BATCH };

/* Rows [r0, r1) of a tref's values, fed to a reduction: each array holds those
 * rows ((r1 - r0, C)) or is NULL. Per element (r, c): a = sg * w * g (W.G) and
 * b = sf * w^2 * f (W.F.W; with f_is_grad, f is one sample's gradient and is
 * squared first); w is the weight in fp32, or NULL: widened from the
 * reduction's tensor, or 1 where it has none (a merge: g already holds W.G, f
 * W.F.W); g and f NULL: 0. */
typedef struct {
    int64_t r0, r1;
    const float *w, *g, *f;
    double sg, sf;
    bool f_is_grad;
} score_rows;

/* A tref's reduction in progress: begun, fed rows in row order, ended. */
typedef struct {
    const tref *t;
    const tensor *w;        /* widened for rows that come without w (NULL: 1) */
    int act[NS], na;        /* the statistics */
    bool ax[2];             /* the axes t's members use */
    double *ch[2][NS];      /* per axis and statistic: (R) row or (C) column values */
} reduction;

/* The scorer's reductions that may be in progress at once: a whole tensor's
 * statistics and a piece's (score.c). */
enum { RED_WHOLE, RED_PIECE, RED_COUNT };

typedef struct {
    const model *m;          /* NULL in a merge */
    group_set *gs;
    unsigned stats;
    int L;
    int n_t;
    tref *t;                 /* sorted by name */
    double **acc;            /* per group: (M, NS, U) */
    double *scratch;         /* (RED_COUNT, 2, NS, maxdim) the reductions' channel values */
    int64_t maxdim;
    reduction red[RED_COUNT];
    int n_a;
    act_acc *a;
    /* the chunks of element-wise F: pieces in sink order, chunk c is pieces
     * [chunk_end[c-1], chunk_end[c]) */
    int n_pieces, n_chunks;
    piece *pieces;
    int *chunk_end;
    /* the pass in progress */
    enum pass_kind pass;
    int chunk;
    int n_samples;           /* S of the whole run: F divides by it */
    /* partial output */
    stream_writer *pw;
    double targets;          /* the shard's scored targets: raw sums = mean gradient x targets */
    float *tmp;
    size_t tmp_n;
} scorer;

/* The trefs of every tensor the groups name, with the members that name them; the
 * weights and shapes from m when given (NULL in a merge). Dies on a member outside
 * its tensor. */
void scorer_init(scorer *s, const model *m, group_set *gs, unsigned stats, int L);
void scorer_free(scorer *s);
/* The sink position of a layer (-1: the outer tensors). */
int scorer_position(const scorer *s, int layer);
/* The tref of a tensor, NULL when no group names it. */
tref *scorer_find_tref(const scorer *s, const char *name);
/* Check t's shape against its members and size the scratch for it. */
void scorer_check_shape(scorer *s, const tref *t);
/* Reductions of t's values (score_rows) for the statistics of mask, each
 * reduced over the other axis of every axis t's members use, summed over each
 * unit's channels and added into the unit's accumulator. Begin reduction k (of
 * RED_COUNT) on t, with w its weight (NULL: none), feed it rows in row order
 * (any cut of them gives the same bits), then end it. Separate reductions of
 * parts of t's rows add up for every statistic but vector, which must see
 * whole columns. */
void scorer_reduce_begin(scorer *s, int k, const tref *t, const tensor *w, unsigned mask);
void scorer_reduce_rows(scorer *s, int k, const score_rows *rows);
void scorer_reduce_end(scorer *s, int k);
/* All three at once, on RED_WHOLE. */
void scorer_reduce(scorer *s, const tref *t, const tensor *w, unsigned mask, const score_rows *rows);
/* gs's stats from the accumulators, for the member statistics of mask (in enum
 * order); the statistics a group already has and mask does not name are kept
 * when keep is set (a merge's l1/l2). */
void scorer_finalize_stats(scorer *s, unsigned mask, bool keep);
/* The activation sums of tensor, of I channels (new when first asked for). */
act_acc *scorer_find_act(scorer *s, const char *tensor, int64_t I);
/* gs's activation statistics from the sums. */
void scorer_finalize_acts(scorer *s);

#endif
