/* groups_stream.c - groups and scores streams, and one group as a record
 * (groups_stream.h). */
#include "prune/groups_stream.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

void group_write_record(stream_writer *w, const group *g)
{
    msgpack_packer *pk = &w->pk;
    stream_begin_record(w, "group", 7 + (g->n_stats > 0));
    mp_pack_kv_int(pk, "id", g->id);
    mp_pack_kv_str(pk, "kind", group_kind_name(g->kind));
    mp_pack_kv_int(pk, "layer", g->layer);
    mp_pack_kv_int(pk, "units", g->units);
    mp_pack_kv_int(pk, "unit_params", g->unit_params);
    mp_pack_str(pk, "members");
    msgpack_pack_array(pk, (size_t)g->n_members);
    for (int m = 0; m < g->n_members; m++) {
        const group_member *gm = &g->members[m];
        msgpack_pack_map(pk, 5);
        mp_pack_kv_str(pk, "tensor", gm->tensor);
        mp_pack_kv_int(pk, "axis", gm->axis);
        mp_pack_kv_int(pk, "start", gm->start);
        mp_pack_kv_int(pk, "stride", gm->stride);
        mp_pack_kv_int(pk, "width", gm->width);
    }
    if (g->n_stats) {
        mp_pack_str(pk, "scores");
        msgpack_pack_map(pk, (size_t)g->n_stats);
        size_t bytes = (size_t)g->n_members * (size_t)g->units * sizeof(float);
        for (int s = 0; s < g->n_stats; s++) {
            mp_pack_str(pk, g->stats[s].name);
            msgpack_pack_bin(pk, bytes);
            msgpack_pack_bin_body(pk, g->stats[s].values, bytes);
        }
    }
    stream_end_record(w);
}

void groups_write(const group_set *gs, const char *kind, const char *path, int argc, char **argv)
{
    stream_writer w;
    stream_writer_open(&w, path);
    int extra = 1 + (gs->calibration != NULL);
    bool scores = !strcmp(kind, "scores");
    extra += scores;
    stream_write_header(&w, kind, argc, argv, extra);
    mp_pack_str(&w.pk, "model");
    msgpack_pack_map(&w.pk, 3);
    mp_pack_kv_str(&w.pk, "fingerprint", gs->fingerprint);
    mp_pack_str(&w.pk, "config");
    mp_pack_json(&w.pk, gs->config);
    mp_pack_str(&w.pk, "weights");
    gs->weights ? msgpack_pack_true(&w.pk) : msgpack_pack_false(&w.pk);
    if (gs->calibration) {
        mp_pack_str(&w.pk, "calibration");
        mp_pack_json(&w.pk, gs->calibration);
    }
    if (scores) {
        mp_pack_str(&w.pk, "stats");
        /* every statistic some group has, in order of first appearance */
        int ns = 0, cap = 0;
        const char **names = NULL;
        for (int i = 0; i < gs->n; i++)
            for (int s = 0; s < gs->g[i].n_stats; s++) {
                int k = 0;
                while (k < ns && strcmp(names[k], gs->g[i].stats[s].name))
                    k++;
                if (k < ns)
                    continue;
                if (ns == cap)
                    names = xrealloc(names, (size_t)(cap = 2 * cap + 8) * sizeof *names);
                names[ns++] = gs->g[i].stats[s].name;
            }
        msgpack_pack_array(&w.pk, (size_t)ns);
        for (int s = 0; s < ns; s++)
            mp_pack_str(&w.pk, names[s]);
        free(names);
    }
    stream_end_record(&w);
    for (int i = 0; i < gs->n; i++)
        group_write_record(&w, &gs->g[i]);
    for (int i = 0; i < gs->n_act; i++) {
        const act_stat *a = &gs->act[i];
        stream_begin_record(&w, "activations", 5);
        mp_pack_kv_str(&w.pk, "tensor", a->tensor);
        mp_pack_kv_int(&w.pk, "tokens", a->tokens);
        mp_pack_kv_int(&w.pk, "channels", a->channels);
        stream_write_payload(&w, "data", a->mean, 3 * (size_t)a->channels * sizeof(float));
    }
    stream_writer_close(&w);
}

static int64_t need_int(stream_reader *r, const msgpack_object *o, const char *key, int64_t lo, int64_t hi)
{
    int64_t v;
    if (!mp_int(mp_get(o, key), &v) || v < lo || v > hi)
        stream_die(r, "group record %llu: missing or invalid '%s'", (unsigned long long)r->records, key);
    return v;
}

void group_read_record(stream_reader *r, const msgpack_object *rec, group *g)
{
    memset(g, 0, sizeof *g);
    g->id = (int)need_int(r, rec, "id", 0, INT32_MAX);
    char *kind = mp_strdup(mp_get(rec, "kind"));
    int k = kind ? group_kind_from_name(kind) : -1;
    if (k < 0)
        stream_die(r, "group %d: unknown kind '%s'", g->id, kind ? kind : "");
    free(kind);
    g->kind = (enum group_kind)k;
    g->layer = (int)need_int(r, rec, "layer", -1, INT32_MAX);
    g->units = need_int(r, rec, "units", 1, TENSOR_MAX_NUMEL);
    g->unit_params = need_int(r, rec, "unit_params", 0, INT64_MAX / 4);
    const msgpack_object *mem = mp_get(rec, "members");
    if (!mem || mem->type != MSGPACK_OBJECT_ARRAY || mem->via.array.size == 0)
        stream_die(r, "group %d: no members", g->id);
    g->n_members = (int)mem->via.array.size;
    g->members = xcalloc((size_t)g->n_members, sizeof *g->members);
    for (int m = 0; m < g->n_members; m++) {
        const msgpack_object *o = &mem->via.array.ptr[m];
        group_member *gm = &g->members[m];
        gm->tensor = mp_strdup(mp_get(o, "tensor"));
        if (!gm->tensor)
            stream_die(r, "group %d: member %d has no tensor", g->id, m);
        gm->axis = (int)need_int(r, o, "axis", 0, 1);
        gm->start = need_int(r, o, "start", 0, TENSOR_MAX_NUMEL);
        gm->stride = need_int(r, o, "stride", 0, TENSOR_MAX_NUMEL);
        gm->width = need_int(r, o, "width", 1, TENSOR_MAX_NUMEL);
        /* the last unit's end, start + (units - 1) * stride + width, is an index of a
         * tensor's axis: at most 2^40, the product checked before it is taken, so that
         * the readers' slice arithmetic cannot overflow */
        int64_t steps[2] = {g->units - 1, gm->stride}, reach = tensor_shape_numel(2, steps);
        if (reach < 0 || reach + gm->start + gm->width > TENSOR_MAX_NUMEL)
            stream_die(r, "group %d: the units of member %s reach past index 2^40", g->id, gm->tensor);
    }
    const msgpack_object *sc = mp_get(rec, "scores");
    if (sc && sc->type == MSGPACK_OBJECT_MAP) {
        int64_t values[2] = {g->n_members, g->units}, nv = tensor_shape_numel(2, values);
        if (nv < 0)
            stream_die(r, "group %d: statistics of more than 2^40 values", g->id);
        size_t want = (size_t)nv * sizeof(float);
        g->n_stats = (int)sc->via.map.size;
        g->stats = xcalloc((size_t)g->n_stats, sizeof *g->stats);
        for (int s = 0; s < g->n_stats; s++) {
            const msgpack_object_kv *kv = &sc->via.map.ptr[s];
            g->stats[s].name = mp_strdup(&kv->key);
            if (!g->stats[s].name || kv->val.type != MSGPACK_OBJECT_BIN || kv->val.via.bin.size != want)
                stream_die(r, "group %d: statistic %d is not %zu bytes of float32", g->id, s, want);
            g->stats[s].values = xmalloc(want);
            memcpy(g->stats[s].values, kv->val.via.bin.ptr, want);
            for (size_t i = 0; i < want / sizeof(float); i++)
                if (!isfinite(g->stats[s].values[i]))
                    stream_die(r, "group %d: statistic '%s' has a NaN or infinite value", g->id, g->stats[s].name);
        }
    }
}

/* {"t": "activations", "tensor", "tokens", "channels", "data": bin float32 (3, I)} */
static void read_activations(stream_reader *r, const msgpack_object *rec, group_set *gs)
{
    act_stat a = {0};
    a.tensor = mp_strdup(mp_get(rec, "tensor"));
    int64_t I;
    if (!a.tensor || !mp_int(mp_get(rec, "tokens"), &a.tokens) || a.tokens < 0 ||
        !mp_int(mp_get(rec, "channels"), &I) || I < 1 || I > INT32_MAX || !r->payload_key ||
        strcmp(r->payload_key, "data") || r->payload_len != 3 * (uint64_t)I * sizeof(float))
        stream_die(r, "activations record %llu: missing or invalid tensor, tokens, channels or data",
                   (unsigned long long)r->records);
    act_stat_alloc(&a, I);
    stream_read_payload(r, a.mean, 3 * (uint64_t)I * sizeof(float));
    for (int64_t i = 0; i < 3 * I; i++)
        if (!isfinite(a.mean[i]))
            stream_die(r, "activations of %s: a NaN or infinite value", a.tensor);
    gs->act = xrealloc(gs->act, (size_t)(gs->n_act + 1) * sizeof *gs->act);
    gs->act[gs->n_act++] = a;
}

void groups_read(group_set *gs, const char *path, char kind_out[16])
{
    memset(gs, 0, sizeof *gs);
    stream_reader r;
    stream_reader_open(&r, path, NULL);
    if (strcmp(r.kind, "groups") && strcmp(r.kind, "scores"))
        stream_die(&r, "expected a groups or scores stream, got a %s stream", r.kind);
    snprintf(kind_out, 16, "%s", r.kind);
    const msgpack_object *mo = mp_get(&r.header, "model");
    char *fp = mp_strdup(mp_get(mo, "fingerprint"));
    const msgpack_object *cfg = mp_get(mo, "config");
    if (!fp || strlen(fp) != 16 || !cfg)
        stream_die(&r, "header lacks the model's fingerprint or config");
    snprintf(gs->fingerprint, sizeof gs->fingerprint, "%s", fp);
    free(fp);
    gs->config = mp_to_json(cfg);
    const msgpack_object *wt = mp_get(mo, "weights");
    gs->weights = !wt || (wt->type == MSGPACK_OBJECT_BOOLEAN && wt->via.boolean);
    const msgpack_object *cal = mp_get(&r.header, "calibration");
    if (cal)
        gs->calibration = mp_to_json(cal);

    msgpack_object rec;
    int cap = 0;
    while (stream_next(&r, &rec)) {
        if (mp_is_str(mp_get(&rec, "t"), "activations")) {
            read_activations(&r, &rec, gs);
            continue;
        }
        if (!mp_is_str(mp_get(&rec, "t"), "group"))
            continue;
        GROW(gs->g, cap, gs->n + 1, 64);
        group_read_record(&r, &rec, &gs->g[gs->n++]);
    }
    stream_reader_close(&r);
}
