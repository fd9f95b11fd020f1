/* score.c - gradient, Fisher, magnitude and activation statistics per group
 * member and unit, in bounded memory, and a shard's partial stream (score.h);
 * the sums in score_reduce.c, the merge of shards in score_merge.c.
 *
 * Letters: S samples, T tokens per sample, L layers, U units of a group, M
 * members of a group, R x C a member tensor (C = 1 for a vector), I a linear
 * map's input width.
 *
 * The backward pass calls the sink once per layer, from the last to the first,
 * then once with layer -1 (embedding, final norm, LM head); the linear maps'
 * gradients come before their layer's call, a panel of rows at a time, except
 * in a shard's batch pass, whose sums take whole tensors. A "position" orders
 * those calls: layer l is at L-1-l, the outer tensors at L. Every tensor named by
 * a group member is a "tref"; within a position the trefs go in name order, which
 * is also the order of a partial stream's sum records. When F is held
 * element-wise, the trefs in that order are cut into "pieces" (runs of rows;
 * whole tensors for a shard) and the pieces into chunks that fit the budget. */
#include "prune/groups_stream.h"
#include "prune/score.h"
#include "prune/score_reduce.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/memory.h"
#include "base/progress.h"
#include "base/parallel.h"
#include "base/util.h"
#include "compute/backward.h"
#include "format/stream.h"

/* l1 and l2 from the weights. */
static void reduce_magnitudes(scorer *s)
{
    unsigned mask = s->stats & MAG_STATS;
    if (!mask)
        return;
    for (int i = 0; i < s->n_t; i++)
        scorer_reduce(s, &s->t[i], s->t[i].w, mask, &(score_rows){.r0 = 0, .r1 = s->t[i].rows});
}

static void act_sink(void *ctx, const char *tensor, const float *x, int N, int nin)
{
    scorer *s = ctx;
    act_acc *a = scorer_find_act(s, tensor, nin);
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * nin; /* (I) */
        for (int i = 0; i < nin; i++) {
            double v = xr[i];
            a->sum[i] += v;
            a->sumsq[i] += v * v;
        }
    }
    a->tokens += N;
}

/* ------------------------------------------------------------------ partial records */

static float *tmp_buf(scorer *s, size_t n) { return scratch_floats(&s->tmp, &s->tmp_n, n); }

/* {"t": "sum", "tensor", "quantity", "shape", "data": bin float32 (R, C)} of
 * w * w^wpow... : quantity "wg" = w * x * scale, "wfw" = w * w * x. */
static void write_sum(scorer *s, const tref *t, const char *quantity, const float *x, double scale)
{
    size_t n = (size_t)(t->rows * t->cols);
    float *o = tmp_buf(s, n); /* (R, C) */
    bool fisher = !strcmp(quantity, "wfw");
    tensor_get_f32(t->w, 0, (int64_t)n, o);
    for (size_t i = 0; i < n; i++) {
        double w = o[i];
        o[i] = (float)(fisher ? w * w * (double)x[i] : w * (double)x[i] * scale);
    }
    stream_writer *pw = s->pw;
    stream_begin_record(pw, "sum", 5);
    mp_pack_kv_str(&pw->pk, "tensor", t->name);
    mp_pack_kv_str(&pw->pk, "quantity", quantity);
    mp_pack_str(&pw->pk, "shape");
    msgpack_pack_array(&pw->pk, 2);
    msgpack_pack_int64(&pw->pk, t->rows);
    msgpack_pack_int64(&pw->pk, t->cols);
    stream_write_payload(pw, "data", o, n * sizeof(float));
}

/* ------------------------------------------------------------------ sinks */

/* Whether this pass writes a shard's sums, which take whole tensors. */
static bool writes_sums(const scorer *s) { return s->pw && s->pass == PASS_BATCH; }

/* Rows fed to reduction k of t, which spans t's rows [first, last): begun at its
 * first row, ended after its last. */
static void reduce_span(scorer *s, int k, const tref *t, unsigned mask, int64_t first, int64_t last,
                        const score_rows *rows)
{
    if (rows->r0 == first)
        scorer_reduce_begin(s, k, t, t->w, mask);
    scorer_reduce_rows(s, k, rows);
    if (rows->r1 == last)
        scorer_reduce_end(s, k);
}

/* Rows [r0, r1) of tref t's gradient g ((r1 - r0, C)), with the weight's rows w
 * in fp32 or NULL, into what this pass makes of them: element-wise F, or the
 * reductions of the whole tensor (separable element2, or the first-order
 * statistics once, in the first batch pass) and of this chunk's pieces (F's
 * statistics), or a shard's sums. The rows of a tensor come in row order, whole
 * or a panel at a time. */
static void feed_rows(scorer *s, const tref *t, int64_t r0, int64_t r1, const float *w, const float *g)
{
    double inv_s = 1.0 / s->n_samples;
    int64_t C = t->cols;
    unsigned first = s->stats & ((1u << SCORE_VECTOR) | (1u << SCORE_ELEMENT1));
    score_rows whole = {.r0 = r0, .r1 = r1, .w = w};
    unsigned mask = 0;
    if (s->pass == PASS_E2) {
        whole.f = g, whole.sf = inv_s, whole.f_is_grad = true;
        mask = 1u << SCORE_ELEMENT2;
    } else if (s->pass == PASS_BATCH && !s->pw && s->chunk == 0) {
        whole.g = g, whole.sg = 1.0;
        mask = first;
    }
    if (mask)
        reduce_span(s, RED_WHOLE, t, mask, 0, t->rows, &whole);
    if (s->pass == PASS_E2 || !s->n_pieces)
        return;
    /* the pieces of this chunk: F, or the Fisher statistics, or a shard's sums */
    for (int k = s->chunk ? s->chunk_end[s->chunk - 1] : 0; k < s->chunk_end[s->chunk]; k++) {
        piece *p = &s->pieces[k];
        int64_t a = p->r0 > r0 ? p->r0 : r0, b = p->r1 < r1 ? p->r1 : r1; /* the rows of both */
        if (&s->t[p->t] != t || a >= b)
            continue;
        const float *ga = g + (a - r0) * C;    /* (b - a, C) */
        float *fa = p->f + (a - p->r0) * C;
        if (s->pass == PASS_FISHER) {
            size_t numel = (size_t)((b - a) * C);
            for (size_t e = 0; e < numel; e++)
                fa[e] += ga[e] * ga[e];
        } else if (s->pw) { /* whole tensors */
            if (s->stats & GRAD_STATS)
                write_sum(s, t, "wg", g, s->targets);
            if (s->stats & SCORE_FISHER)
                write_sum(s, t, "wfw", p->f, 1.0);
        } else {
            score_rows rows = {.r0 = a, .r1 = b, .w = w ? w + (a - r0) * C : NULL, .g = ga, .sg = 1.0, .f = fa,
                               .sf = inv_s};
            reduce_span(s, RED_PIECE, t, s->stats & SCORE_FISHER, p->r0, p->r1, &rows);
        }
    }
}

/* The gradient of tensor name in this call, or NULL (the outer tensors come in
 * more than one call: backward.h). */
static const float *grad_named(const weight_grad *grads, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(grads[i].name, name))
            return grads[i].grad;
    return NULL;
}

/* A layer's gradients (or the outer tensors'), whole: those the groups name, in
 * name order (a shard's sum records'). */
static void grad_sink(void *ctx, int layer, const weight_grad *grads, int n)
{
    scorer *s = ctx;
    int pos = scorer_position(s, layer);
    for (int i = 0; i < s->n_t; i++) {
        const float *g = s->t[i].pos == pos ? grad_named(grads, n, s->t[i].name) : NULL;
        if (g)
            feed_rows(s, &s->t[i], 0, s->t[i].rows, NULL, g);
    }
}

/* A linear map's gradient a panel of rows at a time (backward.h). */
static void grad_rows(void *ctx, const tensor *w, int64_t r0, int64_t r1, const float *w_rows, const float *grad)
{
    scorer *s = ctx;
    const tref *t = scorer_find_tref(s, w->name);
    if (t)
        feed_rows(s, t, r0, r1, w_rows, grad);
}

/* ------------------------------------------------------------------ passes */

/* Cut the trefs, in sink order (position, then name), into chunks whose F fits in
 * budget bytes: by rows with split, else whole tensors (each chunk holds at least
 * one row, or one tensor). Fills s->pieces and s->chunk_end. */
static void plan_chunks(scorer *s, size_t budget, bool split)
{
    free(s->pieces);
    free(s->chunk_end);
    s->pieces = NULL;
    s->chunk_end = NULL;
    s->n_pieces = s->n_chunks = 0;
    int cap = 0;
    size_t used = 0;
    for (int pos = 0; pos <= s->L; pos++)
        for (int i = 0; i < s->n_t; i++) {
            const tref *t = &s->t[i];
            if (t->pos != pos)
                continue;
            size_t row = (size_t)t->cols * sizeof(float);
            for (int64_t r0 = 0; r0 < t->rows;) {
                size_t room = budget > used ? budget - used : 0;
                int64_t k = split ? (int64_t)(room / row) : t->rows;
                if (k > t->rows - r0)
                    k = t->rows - r0;
                if ((k < 1 || (!split && used + (size_t)k * row > budget)) && used > 0) {
                    s->chunk_end = xrealloc(s->chunk_end, (size_t)(s->n_chunks + 1) * sizeof *s->chunk_end);
                    s->chunk_end[s->n_chunks++] = s->n_pieces;
                    used = 0;
                    continue;
                }
                if (k < 1)
                    k = 1;
                GROW(s->pieces, cap, s->n_pieces + 1, 64);
                s->pieces[s->n_pieces++] = (piece){i, r0, r0 + k, NULL};
                used += (size_t)k * row;
                r0 += k;
            }
        }
    s->chunk_end = xrealloc(s->chunk_end, (size_t)(s->n_chunks + 1) * sizeof *s->chunk_end);
    s->chunk_end[s->n_chunks++] = s->n_pieces;
}

/* Floats of chunk c's pieces. */
static size_t chunk_floats(const scorer *s, int c)
{
    size_t n = 0;
    for (int k = c ? s->chunk_end[c - 1] : 0; k < s->chunk_end[c]; k++)
        n += (size_t)((s->pieces[k].r1 - s->pieces[k].r0) * s->t[s->pieces[k].t].cols);
    return n;
}

typedef struct {
    const calib *c;
    int first, step;          /* the samples: first, first + step, ... */
    int n;                    /* S' of them */
    int *tokens, *targets;    /* (S', T) */
    bool fisher_chunks;       /* F held element-wise, chunk by chunk */
    bool e2_separable;        /* per-sample element2 reductions */
    bool batch;               /* a batch pass is needed */
    int chunks;
    size_t keep_memory;       /* score_options' */
    progress pr;
    char what[96];
    int64_t done;
    score_summary *sum;
} runner;

static void run_pass(scorer *s, runner *r, backward_state *tr, const int *tokens, const int *targets, int B, bool act)
{
    backward_state_set_rows_sink(tr, writes_sums(s) ? NULL : grad_rows);
    double loss = model_loss_backward(s->m, tr, tokens, targets, grad_sink, act ? act_sink : NULL, s);
    if (s->pass == PASS_BATCH)
        r->sum->loss = loss;
    r->sum->passes++;
    r->done += (int64_t)B * r->c->seq_len;
    r->sum->tokens += (int64_t)B * r->c->seq_len;
    progress_update(&r->pr, r->done);
}

/* A backward state for B x T tokens that keeps what the budget allows and skips
 * the outer tensors' gradients when no group names one. */
static backward_state *scorer_backward_state(scorer *s, runner *r, int B, int T)
{
    backward_state *tr = backward_state_new(s->m, B, T);
    backward_state_keep(tr, s->m, r->keep_memory);
    bool outer = false;
    for (int i = 0; i < s->n_t; i++)
        outer |= s->t[i].pos == s->L;
    backward_state_skip_outer(tr, !outer);
    return tr;
}

static void per_sample_passes(scorer *s, runner *r)
{
    int T = r->c->seq_len;
    backward_state *tr = scorer_backward_state(s, r, 1, T);
    for (int b = 0; b < r->n; b++) {
        snprintf(r->what, sizeof r->what, "chunk %d/%d, sample %d/%d", s->chunk + 1, r->chunks, b + 1, r->n);
        run_pass(s, r, tr, r->tokens + (size_t)b * T, r->targets + (size_t)b * T, 1, false);
    }
    backward_state_free(tr);
}

static void batch_pass(scorer *s, runner *r)
{
    backward_state *tr = scorer_backward_state(s, r, r->n, r->c->seq_len);
    snprintf(r->what, sizeof r->what, "chunk %d/%d, batch of %d", s->chunk + 1, r->chunks, r->n);
    s->pass = PASS_BATCH;
    run_pass(s, r, tr, r->tokens, r->targets, r->n, s->chunk == 0 && (s->stats & (1u << SCORE_ACTIVATIONS)));
    backward_state_free(tr);
}

static bool needs_fisher_chunks(unsigned stats, bool partial)
{
    return (stats & SCORE_FISHER) && (partial || (stats & (1u << SCORE_MIX)));
}

size_t score_default_keep_memory(void) { return memory_available() / 4; }

size_t score_default_fisher_memory(const model *m, int samples, int seq_len)
{
    size_t weights = 0;
    for (int i = 0; i < m->n_tensors; i++)
        weights += (size_t)m->tensors[i].numel * sizeof(float);
    backward_state *t = backward_state_new(m, samples, seq_len); /* its size; its pages are never touched */
    size_t train = backward_state_bytes(t);
    backward_state_free(t);
    size_t want = weights * 2 / 5, floor_ = (size_t)16 << 20;
    return want > train + floor_ ? want - train : floor_;
}

/* Decide the passes for o over the samples first, first + step, ... */
static void runner_init(runner *r, scorer *s, const calib *c, const score_options *o, bool partial,
                        score_summary *sum)
{
    memset(r, 0, sizeof *r);
    memset(sum, 0, sizeof *sum);
    sum->loss = NAN;
    r->sum = sum;
    r->c = c;
    r->keep_memory = o->keep_memory;
    r->first = o->shards > 0 ? o->shard : 0;
    r->step = o->shards > 0 ? o->shards : 1;
    r->n = calib_batch(c, r->first, r->step, &r->tokens, &r->targets);
    if (r->n < 1)
        die("shard %d of %d has no samples (the calibration has %d)", o->shard, o->shards, c->samples);
    unsigned st = s->stats;
    r->fisher_chunks = needs_fisher_chunks(st, partial);
    r->e2_separable = (st & SCORE_FISHER) && !r->fisher_chunks;
    r->batch = (st & ((1u << SCORE_VECTOR) | (1u << SCORE_ELEMENT1) | (1u << SCORE_ACTIVATIONS))) ||
               r->fisher_chunks || (partial && (st & GRAD_STATS));
    if (r->fisher_chunks)
        plan_chunks(s, o->fisher_memory ? o->fisher_memory : score_default_fisher_memory(s->m, r->n, c->seq_len),
                    !partial);
    else if (partial && r->batch)
        plan_chunks(s, SIZE_MAX, false); /* one chunk of whole tensors: the sums to write */
    r->chunks = s->n_pieces ? s->n_chunks : 1;
    sum->chunks = r->chunks;
    int64_t per = (int64_t)r->n * c->seq_len, total = 0;
    if (r->fisher_chunks)
        total = r->chunks * 2 * per;
    else
        total = (r->e2_separable ? per : 0) + (r->batch ? per : 0);
    s->n_samples = c->samples;
    s->targets = (double)r->n * (c->seq_len - 1);
    snprintf(r->what, sizeof r->what, "scoring");
    progress_start(&r->pr, r->what, "tok", total);
}

static void runner_free(runner *r)
{
    free(r->tokens);
    free(r->targets);
}

/* Every pass of r: per chunk the per-sample passes (F or separable element2),
 * then the batch pass. */
static void run_all(scorer *s, runner *r)
{
    double t0 = now_seconds();
    float *arena = NULL;
    if (r->fisher_chunks) {
        size_t most = 0;
        for (int c = 0; c < s->n_chunks; c++)
            most = chunk_floats(s, c) > most ? chunk_floats(s, c) : most;
        arena = xmalloc_aligned((most > 0 ? most : 1) * sizeof(float));
    }
    for (int c = 0; c < r->chunks; c++) {
        s->chunk = c;
        if (r->fisher_chunks) {
            size_t off = 0;
            for (int k = c ? s->chunk_end[c - 1] : 0; k < s->chunk_end[c]; k++) {
                piece *p = &s->pieces[k];
                p->f = arena + off;
                off += (size_t)((p->r1 - p->r0) * s->t[p->t].cols);
            }
            parallel_zero(arena, off * sizeof(float));
            s->pass = PASS_FISHER;
            per_sample_passes(s, r);
        } else if (r->e2_separable) {
            s->pass = PASS_E2;
            per_sample_passes(s, r);
        }
        if (r->batch)
            batch_pass(s, r);
    }
    free(arena);
    r->sum->seconds = now_seconds() - t0;
    progress_end(&r->pr, r->done);
}

int score_chunks(const model *m, const group_set *gs, const score_options *o, int samples, int seq_len)
{
    bool partial = o->shards > 0;
    if (!needs_fisher_chunks(o->stats, partial))
        return 1;
    scorer s;
    scorer_init(&s, m, (group_set *)gs, o->stats, m->cfg.n_layers);
    int n_samples = partial ? (samples - o->shard + o->shards - 1) / o->shards : samples;
    plan_chunks(&s, o->fisher_memory ? o->fisher_memory : score_default_fisher_memory(m, n_samples, seq_len),
                !partial);
    int n = s.n_chunks;
    scorer_free(&s);
    return n;
}

/* ------------------------------------------------------------------ whole runs */

static void check_model(const model *m)
{
    if (!m->has_weights)
        die("%s: a bare config has no weights to score", m->source);
}

void score_run(const model *m, const calib *c, group_set *gs, const score_options *o, score_summary *sum)
{
    check_model(m);
    score_options whole = *o;
    whole.shards = 0;
    scorer s;
    scorer_init(&s, m, gs, o->stats, m->cfg.n_layers);
    for (int i = 0; i < s.n_t; i++)
        scorer_check_shape(&s, &s.t[i]);
    runner r;
    runner_init(&r, &s, c, &whole, false, sum);
    reduce_magnitudes(&s);
    run_all(&s, &r);
    scorer_finalize_stats(&s, o->stats & ((1u << NS) - 1), false);
    scorer_finalize_acts(&s); /* none unless asked for: a scores stream's old ones go */
    json_decref(gs->calibration);
    gs->calibration = calib_to_json(c);
    runner_free(&r);
    scorer_free(&s);
}

static void pack_stats_list(msgpack_packer *pk, unsigned mask)
{
    int n = 0;
    for (int k = 0; k < SCORE_STAT_COUNT; k++)
        n += (mask >> k) & 1;
    msgpack_pack_array(pk, (size_t)n);
    for (int k = 0; k < SCORE_STAT_COUNT; k++)
        if (mask & (1u << k))
            mp_pack_str(pk, score_stat_name(k));
}

void score_write_partial(const model *m, const calib *c, group_set *gs, const score_options *o, const char *out,
                         int argc, char **argv, score_summary *sum)
{
    check_model(m);
    if (o->shards < 1 || o->shard < 0 || o->shard >= o->shards)
        die("score_write_partial: bad shard %d/%d", o->shard, o->shards);
    scorer s;
    scorer_init(&s, m, gs, o->stats, m->cfg.n_layers);
    for (int i = 0; i < s.n_t; i++)
        scorer_check_shape(&s, &s.t[i]);
    runner r;
    runner_init(&r, &s, c, o, true, sum);
    reduce_magnitudes(&s);
    scorer_finalize_stats(&s, o->stats & MAG_STATS, false);

    stream_writer w;
    stream_writer_open(&w, out);
    s.pw = &w;
    stream_write_header(&w, "partial", argc, argv, 5);
    msgpack_packer *pk = &w.pk;
    mp_pack_str(pk, "model");
    msgpack_pack_map(pk, 3);
    mp_pack_kv_str(pk, "fingerprint", gs->fingerprint);
    mp_pack_str(pk, "config");
    mp_pack_json(pk, gs->config);
    mp_pack_str(pk, "weights");
    gs->weights ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    mp_pack_str(pk, "calibration");
    json_t *cj = calib_to_json(c);
    mp_pack_json(pk, cj);
    json_decref(cj);
    mp_pack_str(pk, "stats");
    pack_stats_list(pk, o->stats);
    mp_pack_str(pk, "shard");
    msgpack_pack_map(pk, 3);
    mp_pack_kv_int(pk, "index", o->shard);
    mp_pack_kv_int(pk, "count", o->shards);
    mp_pack_str(pk, "samples");
    msgpack_pack_array(pk, (size_t)r.n);
    for (int k = o->shard; k < c->samples; k += o->shards)
        msgpack_pack_int(pk, k);
    mp_pack_kv_int(pk, "targets", (int64_t)s.targets);
    stream_end_record(&w);
    for (int i = 0; i < gs->n; i++)
        group_write_record(&w, &gs->g[i]);

    run_all(&s, &r);

    for (int i = 0; i < s.n_a; i++) {
        const act_acc *a = &s.a[i];
        stream_begin_record(&w, "act_sum", 5);
        mp_pack_kv_str(pk, "tensor", a->tensor);
        mp_pack_kv_int(pk, "tokens", a->tokens);
        mp_pack_kv_int(pk, "channels", a->I);
        stream_write_payload(&w, "data", a->sum, 2 * (size_t)a->I * sizeof(double));
    }
    stream_writer_close(&w);
    runner_free(&r);
    scorer_free(&s);
}
