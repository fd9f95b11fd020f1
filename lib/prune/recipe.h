/* recipe.h - the automatic recipe of pare-prune --criterion auto: every candidate
 * plan the stream allows at the requested size (each criterion that can rank the
 * groups x local, global and adaptive selection), each pruned model's loss on a
 * validation text, the best kept. */
#ifndef PARE_RECIPE_H
#define PARE_RECIPE_H

#include <jansson.h>
#include <stdio.h>

#include "model/model.h"
#include "prune/groups.h"
#include "prune/prune.h"
#include "text/calib.h"

typedef struct {
    enum prune_criterion criterion;
    enum prune_select select;
    double loss;           /* mean token cross-entropy of the pruned model on the validation windows */
    int64_t params_after;
} recipe_candidate;

typedef struct {
    int n;
    recipe_candidate *c;   /* (n) in the order tried */
    int best;              /* index of the lowest loss (the first of equals) */
    json_t *validation;    /* the validation windows' description (calib_to_json) */
} recipe_result;

/* Try every candidate for m (weights needed) and the groups gs of a stream of
 * kind stream_kind (m is only read): o gives the mode, size, layers, aggregate, seed and
 * compensation (its criterion and selection are ignored). best gets the winner's
 * plan. Dies when no criterion can rank the groups. */
void recipe_auto(model *m, const group_set *gs, const char *stream_kind, const char *stream_name,
                 const prune_options *o, const calib *validation, prune_plan *best, recipe_result *r);
void recipe_free(recipe_result *r);

/* The candidates and their losses as provenance: {"validation", "candidates":
 * [{"criterion", "selection", "loss", "params_after"}], "winner": index}. New
 * reference. */
json_t *recipe_to_json(const recipe_result *r);
/* The same as a table for people. */
void recipe_print(const recipe_result *r, FILE *f);

#endif
