/* score_merge.c - the partial streams of every shard of one pare-score run
 * merged into its scores: the raw sums of each tensor added up in shard order
 * and reduced as the unsharded run reduces its gradients (score.h). */
#include "prune/groups_stream.h"
#include "prune/score.h"
#include "prune/score_reduce.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "format/stream.h"

typedef struct {
    stream_reader r;
    const char *path;
    int index, count;
    int64_t targets;
    msgpack_object rec;
} partial_in;

static int cmp_partial(const void *a, const void *b)
{
    return ((const partial_in *)a)->index - ((const partial_in *)b)->index;
}

static unsigned stats_from_header(stream_reader *r)
{
    const msgpack_object *o = mp_get(&r->header, "stats");
    if (!o || o->type != MSGPACK_OBJECT_ARRAY)
        stream_die(r, "header lacks the list of statistics");
    unsigned mask = 0;
    for (uint32_t i = 0; i < o->via.array.size; i++) {
        char *name = mp_strdup(&o->via.array.ptr[i]);
        int k = name ? score_stat_from_name(name) : -1;
        if (k < 0)
            stream_die(r, "unknown statistic '%s'", name ? name : "");
        mask |= 1u << k;
        free(name);
    }
    return mask;
}

/* Read every input's next record; all must be of the same type. Returns false at
 * the end of all of them. */
static bool next_all(partial_in *in, int n)
{
    bool more = stream_next(&in[0].r, &in[0].rec);
    for (int k = 1; k < n; k++)
        if (stream_next(&in[k].r, &in[k].rec) != more)
            stream_die(&in[k].r, "the partials differ in their records (this one %s than %s)",
                       more ? "ends earlier" : "goes on longer", in[0].path);
    return more;
}

/* The string value of key in every input's record must agree; returns in[0]'s. */
static char *same_str(partial_in *in, int n, const char *key)
{
    char *v = mp_strdup(mp_get(&in[0].rec, key));
    if (!v)
        stream_die(&in[0].r, "record %llu lacks '%s'", (unsigned long long)in[0].r.records, key);
    for (int k = 1; k < n; k++)
        if (!mp_is_str(mp_get(&in[k].rec, key), v))
            stream_die(&in[k].r, "record %llu: '%s' differs from %s's ('%s')", (unsigned long long)in[k].r.records,
                       key, in[0].path, v);
    return v;
}

/* Sum the float32 payloads (n floats) of every input into dst, in shard order. */
static void sum_payloads_f32(partial_in *in, int n, float *dst, float *buf, size_t count)
{
    for (int k = 0; k < n; k++) {
        if (!in[k].r.payload_key || in[k].r.payload_len != count * sizeof(float))
            stream_die(&in[k].r, "record %llu: payload is not %zu float32 values", (unsigned long long)in[k].r.records,
                       count);
        stream_read_payload(&in[k].r, k == 0 ? dst : buf, count * sizeof(float));
        if (k > 0)
            for (size_t i = 0; i < count; i++)
                dst[i] += buf[i];
    }
    for (size_t i = 0; i < count; i++)
        if (!isfinite(dst[i]))
            stream_die(&in[0].r, "record %llu: a NaN or infinite sum", (unsigned long long)in[0].r.records);
}

/* The header of partial k: its shard, and (k = 0) the model, calibration and
 * statistics of the merge, else a check that they are partial 0's. */
static void read_header(partial_in *in, int k, group_set *gs, unsigned *mask)
{
    partial_in *p = &in[k];
    const msgpack_object *sh = mp_get(&p->r.header, "shard");
    int64_t idx, cnt;
    if (!mp_int(mp_get(sh, "index"), &idx) || !mp_int(mp_get(sh, "count"), &cnt) || cnt < 1 || idx < 0 ||
        idx >= cnt || !mp_int(mp_get(&p->r.header, "targets"), &p->targets))
        stream_die(&p->r, "header lacks a valid shard index, count or targets");
    p->index = (int)idx;
    p->count = (int)cnt;
    const msgpack_object *mo = mp_get(&p->r.header, "model");
    char *fp = mp_strdup(mp_get(mo, "fingerprint"));
    if (!fp || strlen(fp) != 16 || !mp_get(mo, "config"))
        stream_die(&p->r, "header lacks the model's fingerprint or config");
    unsigned mk = stats_from_header(&p->r);
    const msgpack_object *cal = mp_get(&p->r.header, "calibration");
    if (!cal)
        stream_die(&p->r, "header lacks the calibration");
    if (k == 0) {
        snprintf(gs->fingerprint, sizeof gs->fingerprint, "%s", fp);
        gs->config = mp_to_json(mp_get(mo, "config"));
        const msgpack_object *wt = mp_get(mo, "weights");
        gs->weights = !wt || (wt->type == MSGPACK_OBJECT_BOOLEAN && wt->via.boolean);
        gs->calibration = mp_to_json(cal);
        *mask = mk;
    } else {
        if (strcmp(fp, gs->fingerprint))
            stream_die(&p->r, "made for model %s, but %s for model %s", fp, in[0].path, gs->fingerprint);
        json_t *cj = mp_to_json(cal);
        bool same = json_equal(cj, gs->calibration);
        json_decref(cj);
        if (!same)
            stream_die(&p->r, "another calibration than %s's (source, samples or windows differ)", in[0].path);
        if (mk != *mask)
            stream_die(&p->r, "other statistics than %s's", in[0].path);
        if (p->count != in[0].count)
            stream_die(&p->r, "shard %d of %d, but %s is of %d", p->index, p->count, in[0].path, in[0].count);
    }
    free(fp);
}

/* The partials in shard order, one of each shard; the targets they score, which
 * must be the calibration's. */
static int64_t check_shards(partial_in *in, int n, const group_set *gs, const char *label, int64_t *samples)
{
    qsort(in, (size_t)n, sizeof *in, cmp_partial);
    if (n != in[0].count)
        die("%s: %d partial%s given for %d shards", label, n, n == 1 ? "" : "s", in[0].count);
    for (int k = 0; k < n; k++)
        if (in[k].index != k)
            die("%s: shard %d is missing (another is given twice)", label, k);
    int64_t seq_len = json_integer_value(json_object_get(gs->calibration, "seq_len")), targets = 0;
    *samples = json_integer_value(json_object_get(gs->calibration, "samples"));
    for (int k = 0; k < n; k++)
        targets += in[k].targets;
    if (*samples < 1 || seq_len < 2 || targets != *samples * (seq_len - 1))
        die("%s: the shards score %lld targets, the calibration has %lld samples of %lld tokens", label,
            (long long)targets, (long long)*samples, (long long)seq_len);
    return targets;
}

/* The merge in progress: the records of every partial, read in lock step. */
typedef struct {
    partial_in *in;
    int n;
    group_set *gs;
    unsigned mask, grad_mask;
    bool fisher;
    int L;
    int64_t samples, targets;
    scorer s;
    bool have_scorer;
    int cap;              /* of gs->g */
    float *gsum, *fsum, *buf; /* (cap_f) a tensor's summed W.G, W.F.W, one partial's */
    size_t cap_f;
    tref *pending;        /* a tensor whose wg arrived, waiting for its wfw */
} merger;

/* The accumulators, once the groups are all read. */
static scorer *merge_scorer(merger *mg)
{
    if (!mg->have_scorer) {
        scorer_init(&mg->s, NULL, mg->gs, mg->mask, mg->L);
        mg->have_scorer = true;
    }
    return &mg->s;
}

/* A group record: the same group in every partial. */
static void merge_group(merger *mg)
{
    partial_in *in = mg->in;
    group_set *gs = mg->gs;
    if (mg->have_scorer)
        stream_die(&in[0].r, "a group record after the sums");
    GROW(gs->g, mg->cap, gs->n + 1, 64);
    group_read_record(&in[0].r, &in[0].rec, &gs->g[gs->n++]);
    for (int k = 1; k < mg->n; k++) {
        int64_t id;
        if (!mp_int(mp_get(&in[k].rec, "id"), &id) || id != gs->g[gs->n - 1].id)
            stream_die(&in[k].r, "its groups differ from %s's", in[0].path);
    }
}

/* The tensor a sum record is of, with its shape checked (and learnt, the first
 * time); room for its values. */
static tref *sum_tensor(merger *mg, const char *tensor, size_t *count)
{
    scorer *s = merge_scorer(mg);
    partial_in *in = mg->in;
    tref *t = scorer_find_tref(s, tensor);
    const msgpack_object *sh = mp_get(&in[0].rec, "shape");
    int64_t RC[2], nv;
    if (!t || !sh || sh->type != MSGPACK_OBJECT_ARRAY || sh->via.array.size != 2 ||
        !mp_int(&sh->via.array.ptr[0], &RC[0]) || !mp_int(&sh->via.array.ptr[1], &RC[1]) || RC[0] < 1 || RC[1] < 1 ||
        (nv = tensor_shape_numel(2, RC)) < 0)
        stream_die(&in[0].r, "sum record for %s: a tensor no group names, or a bad shape", tensor);
    /* the shape sizes the buffers: its values must be in the stream first */
    *count = (size_t)nv;
    if (!in[0].r.payload_key || in[0].r.payload_len != *count * sizeof(float))
        stream_die(&in[0].r, "record %llu: payload is not %zu float32 values", (unsigned long long)in[0].r.records,
                   *count);
    int64_t R = RC[0], C = RC[1];
    if (t->rows < 0) {
        t->rows = R;
        t->cols = C;
        scorer_check_shape(s, t);
    } else if (t->rows != R || t->cols != C) {
        stream_die(&in[0].r, "sum record for %s: shape %lldx%lld, then %lldx%lld", tensor, (long long)t->rows,
                   (long long)t->cols, (long long)R, (long long)C);
    }
    if (*count > mg->cap_f) {
        free(mg->gsum);
        free(mg->fsum);
        free(mg->buf);
        mg->gsum = xmalloc(*count * sizeof(float));
        mg->fsum = xmalloc(*count * sizeof(float));
        mg->buf = xmalloc(*count * sizeof(float));
        mg->cap_f = *count;
    }
    return t;
}

/* A sum record: W.G ("wg"), then with Fisher statistics W.F.W ("wfw"), of one
 * tensor, summed over the partials; once both are in, reduced as one run's. */
static void merge_sum(merger *mg)
{
    partial_in *in = mg->in;
    char *tensor = same_str(in, mg->n, "tensor"), *q = same_str(in, mg->n, "quantity");
    size_t count;
    tref *t = sum_tensor(mg, tensor, &count);
    if (!strcmp(q, "wg")) {
        if (mg->pending || t->done)
            stream_die(&in[0].r, "sum records out of order at %s", tensor);
        sum_payloads_f32(in, mg->n, mg->gsum, mg->buf, count);
        mg->pending = t;
    } else if (!strcmp(q, "wfw")) {
        if (mg->pending != t || !mg->fisher)
            stream_die(&in[0].r, "sum records out of order at %s", tensor);
        sum_payloads_f32(in, mg->n, mg->fsum, mg->buf, count);
    } else {
        stream_die(&in[0].r, "unknown quantity '%s'", q);
    }
    if (mg->pending == t && (!mg->fisher || !strcmp(q, "wfw"))) {
        scorer_reduce(&mg->s, t, NULL, mg->grad_mask,
                      &(score_rows){.r0 = 0, .r1 = t->rows, .g = mg->gsum, .sg = 1.0 / (double)mg->targets,
                                    .f = mg->fisher ? mg->fsum : NULL, .sf = 1.0 / (double)mg->samples});
        t->done = true;
        mg->pending = NULL;
    }
    free(tensor);
    free(q);
}

/* An act_sum record: one linear map's input sums, added over the partials. */
static void merge_act_sum(merger *mg)
{
    partial_in *in = mg->in;
    char *tensor = same_str(in, mg->n, "tensor");
    int64_t I;
    if (!mp_int(mp_get(&in[0].rec, "channels"), &I) || I < 1 || I > INT32_MAX)
        stream_die(&in[0].r, "act_sum record for %s: bad channels", tensor);
    act_acc *a = scorer_find_act(merge_scorer(mg), tensor, I);
    double *b = xmalloc(2 * (size_t)I * sizeof(double));
    for (int k = 0; k < mg->n; k++) {
        int64_t tok;
        if (!mp_int(mp_get(&in[k].rec, "tokens"), &tok) || tok < 0 || !in[k].r.payload_key ||
            in[k].r.payload_len != 2 * (uint64_t)I * sizeof(double))
            stream_die(&in[k].r, "act_sum record for %s: bad tokens or data", tensor);
        stream_read_payload(&in[k].r, b, 2 * (uint64_t)I * sizeof(double));
        for (int64_t i = 0; i < 2 * I; i++)
            a->sum[i] += b[i];
        a->tokens += tok;
    }
    free(b);
    free(tensor);
}

/* Every tensor's sums arrived: the statistics, the activations. */
static void merge_finish(merger *mg, const char *label)
{
    if (!mg->gs->n)
        stream_die(&mg->in[0].r, "the partials hold no groups: nothing to merge");
    scorer *s = merge_scorer(mg);
    if (mg->pending)
        die("%s: %s has no Fisher sums", label, mg->pending->name);
    for (int i = 0; i < s->n_t && mg->grad_mask; i++)
        if (!s->t[i].done)
            die("%s: the partials have no sums for %s", label, s->t[i].name);
    scorer_finalize_stats(s, mg->grad_mask, true);
    if (mg->mask & (1u << SCORE_ACTIVATIONS))
        scorer_finalize_acts(s);
    scorer_free(s);
    free(mg->gsum);
    free(mg->fsum);
    free(mg->buf);
}

void score_merge(char *const *paths, int n, const char *label, group_set *gs)
{
    memset(gs, 0, sizeof *gs);
    merger mg = {.in = xcalloc((size_t)n, sizeof *mg.in), .n = n, .gs = gs};
    for (int k = 0; k < n; k++) {
        mg.in[k].path = paths[k];
        stream_reader_open(&mg.in[k].r, paths[k], "partial");
        read_header(mg.in, k, gs, &mg.mask);
    }
    mg.targets = check_shards(mg.in, n, gs, label, &mg.samples);
    mg.fisher = mg.mask & SCORE_FISHER;
    mg.grad_mask = mg.mask & GRAD_STATS;
    model_config cfg; /* read as every program reads a config: each architecture names its keys */
    config_from_json(&cfg, gs->config, mg.in[0].path);
    mg.L = cfg.n_layers;
    config_free(&cfg);

    while (next_all(mg.in, n)) {
        char *type = same_str(mg.in, n, "t");
        if (!strcmp(type, "group"))
            merge_group(&mg);
        else if (!strcmp(type, "sum"))
            merge_sum(&mg);
        else if (!strcmp(type, "act_sum"))
            merge_act_sum(&mg);
        free(type);
    }
    merge_finish(&mg, label);
    for (int k = 0; k < n; k++)
        stream_reader_close(&mg.in[k].r);
    free(mg.in);
}
