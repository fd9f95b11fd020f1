/* recipe.c - pare-prune --criterion auto: candidate plans scored by the pruned
 * model's loss on validation text (recipe.h). */
#include "prune/recipe.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "prune/ablate.h"

void recipe_auto(model *m, const group_set *gs, const char *stream_kind, const char *stream_name,
                 const prune_options *o, const calib *validation, prune_plan *best, recipe_result *r)
{
    if (!m->has_weights)
        die("%s: a bare config has no weights to validate candidate plans with", m->source);
    memset(r, 0, sizeof *r);
    r->best = -1;
    r->validation = calib_to_json(validation);
    r->c = xcalloc(PRUNE_CRIT_COUNT * PRUNE_SELECT_COUNT, sizeof *r->c);
    memset(best, 0, sizeof *best);
    for (int c = PRUNE_CRIT_VECTOR; c < PRUNE_CRIT_MANUAL; c++) {
        if (!prune_plan_serves(m, gs, o, (enum prune_criterion)c))
            continue;
        for (int s = 0; s < PRUNE_SELECT_COUNT; s++) {
            /* one group (channel mode) or whole layers: one selection serves */
            if (o->mode == PRUNE_CHANNEL && s != PRUNE_SELECT_LOCAL)
                continue;
            if (o->mode == PRUNE_LAYER && s != PRUNE_SELECT_GLOBAL)
                continue;
            prune_options co = *o;
            co.criterion = (enum prune_criterion)c;
            co.select = (enum prune_select)s;
            prune_plan p;
            prune_plan_make(&p, m, gs, stream_kind, stream_name, &co);
            model out;
            prune_apply(m, gs, &p, false, &out); /* m is only read */
            recipe_candidate *k = &r->c[r->n];
            *k = (recipe_candidate){co.criterion, co.select, ablate_loss(&out, validation),
                                    config_param_count(&p.after)};
            model_free(&out);
            if (r->best < 0 || k->loss < r->c[r->best].loss) {
                if (r->best >= 0)
                    prune_plan_free(best);
                *best = p;
                r->best = r->n;
            } else {
                prune_plan_free(&p);
            }
            r->n++;
        }
    }
    if (r->best < 0)
        die("%s: no criterion can rank the groups this mode prunes", stream_name);
}

void recipe_free(recipe_result *r)
{
    free(r->c);
    json_decref(r->validation);
    memset(r, 0, sizeof *r);
}

json_t *recipe_to_json(const recipe_result *r)
{
    json_t *a = json_array();
    for (int i = 0; i < r->n; i++)
        json_array_append_new(a, json_pack("{s:s,s:s,s:f,s:I}", "criterion", prune_criterion_name(r->c[i].criterion),
                                           "selection", prune_select_name(r->c[i].select), "loss", r->c[i].loss,
                                           "params_after", (json_int_t)r->c[i].params_after));
    return json_pack("{s:O,s:o,s:i}", "validation", r->validation, "candidates", a, "winner", r->best);
}

void recipe_print(const recipe_result *r, FILE *f)
{
    json_t *src = json_object_get(r->validation, "source");
    fprintf(f, "candidates on %s (%lld windows of %lld tokens):\n", src ? json_string_value(src) : "?",
            (long long)json_integer_value(json_object_get(r->validation, "samples")),
            (long long)json_integer_value(json_object_get(r->validation, "seq_len")));
    fprintf(f, "  %-10s %-9s %10s %12s %14s\n", "criterion", "selection", "loss", "perplexity", "params after");
    for (int i = 0; i < r->n; i++)
        fprintf(f, "%c %-10s %-9s %10.5f %12.4f %14lld\n", i == r->best ? '*' : ' ',
                prune_criterion_name(r->c[i].criterion), prune_select_name(r->c[i].select), r->c[i].loss,
                exp(r->c[i].loss), (long long)r->c[i].params_after);
    fprintf(f, "winner: %s, %s selection\n", prune_criterion_name(r->c[r->best].criterion),
            prune_select_name(r->c[r->best].select));
}
