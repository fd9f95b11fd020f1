/* groups.c - group sets in memory: kind names, lookups, model checks (the streams: groups_stream.c). */
#include "prune/groups.h"

#include <math.h>
#include <string.h>

#include "base/util.h"

static const char *const kind_names[GROUP_KIND_COUNT] = {"attn", "ffn", "hidden", "layer"};

const char *group_kind_name(enum group_kind k) { return (unsigned)k < GROUP_KIND_COUNT ? kind_names[k] : "?"; }

int group_kind_from_name(const char *s)
{
    for (int k = 0; k < GROUP_KIND_COUNT; k++)
        if (!strcmp(s, kind_names[k]))
            return k;
    return -1;
}

unsigned group_kinds_parse(const char *list, char *bad, size_t bad_size)
{
    return parse_name_list(list, kind_names, GROUP_KIND_COUNT, 0, bad, bad_size);
}

const group_stat *group_find_stat(const group *g, const char *name)
{
    for (int i = 0; i < g->n_stats; i++)
        if (!strcmp(g->stats[i].name, name))
            return &g->stats[i];
    return NULL;
}

/* ------------------------------------------------------------------ writing */

/* ------------------------------------------------------------------ reading */

void act_stat_alloc(act_stat *a, int64_t I)
{
    a->channels = I;
    a->mean = xcalloc(3 * (size_t)(I > 0 ? I : 1), sizeof(float));
    a->var = a->mean + I;
    a->sqnorm = a->mean + 2 * I;
}

const act_stat *group_set_find_act(const group_set *gs, const char *tensor)
{
    for (int i = 0; i < gs->n_act; i++)
        if (!strcmp(gs->act[i].tensor, tensor))
            return &gs->act[i];
    return NULL;
}

void groups_check_model(const group_set *gs, const model *m, const char *stream_name)
{
    char fp[17];
    model_bound_fingerprint(m, fp);
    if (strcmp(fp, gs->fingerprint) != 0)
        die("%s: the stream was made for model %s, but '%s' is %s", stream_name, gs->fingerprint, m->source, fp);
}

bool groups_config_is(const group_set *gs, const model *m)
{
    if (!gs->weights || !gs->config)
        return false;
    json_t *c = config_to_json(&m->cfg), *v;
    const char *key;
    bool same = true;
    json_object_foreach(c, key, v) same = same && json_equal(v, json_object_get(gs->config, key));
    json_decref(c);
    return same;
}

void group_free(group *g)
{
    for (int m = 0; m < g->n_members; m++)
        free(g->members[m].tensor);
    free(g->members);
    for (int s = 0; s < g->n_stats; s++) {
        free(g->stats[s].name);
        free(g->stats[s].values);
    }
    free(g->stats);
    memset(g, 0, sizeof *g);
}

void group_set_free(group_set *gs)
{
    for (int i = 0; i < gs->n; i++)
        group_free(&gs->g[i]);
    free(gs->g);
    for (int i = 0; i < gs->n_act; i++) {
        free(gs->act[i].tensor);
        free(gs->act[i].mean);
    }
    free(gs->act);
    json_decref(gs->config);
    json_decref(gs->calibration);
    memset(gs, 0, sizeof *gs);
}
