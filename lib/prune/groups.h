/* groups.h - coupled structures: sets of tensor slices that must be removed
 * together so that the model stays a valid, smaller dense model (DESIGN.md 2, 4).
 *
 * Unit u of a group covers, in each member, indices
 * [start + u*stride, start + u*stride + width) along axis. */
#ifndef PARE_GROUPS_H
#define PARE_GROUPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "model/model.h"

enum group_kind { GROUP_ATTN, GROUP_FFN, GROUP_HIDDEN, GROUP_LAYER, GROUP_KIND_COUNT };
#define GROUP_KIND_ALL ((1u << GROUP_KIND_COUNT) - 1)

typedef struct {
    char *tensor;      /* Hugging Face tensor name */
    int axis;          /* 0 rows, 1 columns (0 for vectors) */
    int64_t start, stride, width;
} group_member;

/* Per-member, per-unit statistics of one criterion: values[member * units + u]. */
typedef struct {
    char *name;        /* "element1", "l2", ... */
    float *values;     /* (n_members, units) */
} group_stat;

typedef struct {
    int id;
    enum group_kind kind;
    int layer;         /* -1 for the hidden group */
    int64_t units;
    int64_t unit_params; /* parameters removed with one unit */
    int n_members;
    group_member *members;
    int n_stats;
    group_stat *stats; /* empty in a groups stream, filled in a scores stream */
} group;

/* Activation statistics of the input of one linear map (scores streams), per
 * input channel over every calibration token: written by pare-score, read by
 * pare-prune's flap and wanda criteria. */
typedef struct {
    char *tensor;      /* the map's weight (a tied LM head: the embedding's name) */
    int64_t tokens;    /* tokens seen */
    int64_t channels;  /* I, the map's input width */
    float *mean;       /* (3, I) one allocation: mean, then var, then sqnorm */
    float *var;        /* (I) population variance */
    float *sqnorm;     /* (I) sum of squares over the tokens */
} act_stat;

typedef struct group_set {
    char fingerprint[17]; /* of the model the groups were found for */
    json_t *config;       /* its config (canonical keys + extras) */
    bool weights;         /* false when found from a bare config.json */
    json_t *calibration;  /* scores streams: the calibration description, or NULL */
    int n;
    group *g;
    int n_act;            /* scores streams: activation statistics, or 0 */
    act_stat *act;
} group_set;

const char *group_kind_name(enum group_kind k);
int group_kind_from_name(const char *s);     /* -1 if unknown */
/* "attn,ffn" -> mask of (1 << kind); 0 on an unknown kind (named in bad) or an
 * empty list (bad = ""). */
unsigned group_kinds_parse(const char *list, char *bad, size_t bad_size);

/* Dependency analysis over the model's dataflow description (graph.c): every
 * group of the kinds in mask, in a stable order (per layer attn, ffn; then hidden;
 * then layer groups). */
void groups_discover(const model *m, unsigned kinds, group_set *gs);

/* Dies unless gs was found for model m (fingerprint), naming both. */
void groups_check_model(const group_set *gs, const model *m, const char *stream_name);
/* Whether gs was found for a model with weights and m's config: what
 * groups_check_model can tell before m's values are read. */
bool groups_config_is(const group_set *gs, const model *m);
void group_set_free(group_set *gs);

void group_free(group *g);

/* Lookups. */
const group_stat *group_find_stat(const group *g, const char *name);
const act_stat *group_set_find_act(const group_set *gs, const char *tensor); /* NULL if absent */
/* Allocate a's three arrays for I channels (a->channels set). */
void act_stat_alloc(act_stat *a, int64_t I);

#endif
