/* test_score.c - pare-score's library against an independent double-precision
 * reference: the LLaMA forward and backward pass of ref_llama.h (written from the
 * model's definition, no lib/ numerics), its gradient checked here by central finite
 * differences, and the statistics of DESIGN.md "scores" folded per unit from the
 * config's meaning of a unit (not from the groups' slices). On stories260K and on
 * random models of other shapes: every statistic to 1e-4 relative, activations,
 * grouped-query attention's query rows, Fisher chunks, the separable element2,
 * shards and their merge, the calibration text and windows, and pare-prune
 * choosing the same units from the reference's statistics as from pare's.
 *
 * Letters: S samples, B sequences, T tokens, N = B*T rows, D hidden, L layers, V
 * vocab, H query heads, KV key/value heads, hd head dim, F MLP width, U units. */
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "check.h"
#include "fixture.h"
#include "format/model_load.h"
#include "model/model.h"
#include "prune/groups.h"
#include "prune/groups_stream.h"
#include "prune/prune.h"
#include "prune/score.h"
#include "prune/score_reduce.h"
#include "ref_llama.h"
#include "text/calib.h"
#include "text/tokenizer.h"

static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint64_t next_u64(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* ================================================================== reference */

static int tidx(const model *m, const char *name)
{
    const tensor *t = model_tensor(m, name);
    if (!t) {
        fprintf(stderr, "reference: no tensor %s\n", name);
        exit(1);
    }
    return (int)(t - m->tensors);
}

static int lidx(const model *m, int l, const char *suffix)
{
    char name[160];
    snprintf(name, sizeof name, "model.layers.%d.%s", l, suffix);
    return model_tensor(m, name) ? tidx(m, name) : -1;
}

/* Activation sums of one linear map's input. */
typedef struct {
    double *sum, *sq; /* (I) */
    int64_t I, tokens;
} ref_act;

/* The input sums of every linear map, through the reference's hook. */
static void act_hook(void *ctx, int l, enum ref_linear which, int n, const double *x, int nin, double *y, int nout)
{
    (void)n, (void)y, (void)nout;
    const model *m = ((void **)ctx)[0];
    ref_act *acts = ((void **)ctx)[1];
    static const char *const suffix[] = {
        [REF_LINEAR_Q] = "self_attn.q_proj.weight", [REF_LINEAR_K] = "self_attn.k_proj.weight",
        [REF_LINEAR_V] = "self_attn.v_proj.weight", [REF_LINEAR_O] = "self_attn.o_proj.weight",
        [REF_LINEAR_GATE] = "mlp.gate_proj.weight", [REF_LINEAR_UP] = "mlp.up_proj.weight",
        [REF_LINEAR_DOWN] = "mlp.down_proj.weight"};
    int ti = which == REF_LINEAR_HEAD ? tidx(m, m->cfg.tied ? "model.embed_tokens.weight" : "lm_head.weight")
                                      : lidx(m, l, suffix[which]);
    ref_act *a = &acts[ti];
    if (!a->sum) {
        a->sum = xcalloc((size_t)nin, sizeof(double));
        a->sq = xcalloc((size_t)nin, sizeof(double));
        a->I = nin;
    }
    for (int i = 0; i < nin; i++) {
        a->sum[i] += x[i];
        a->sq[i] += x[i] * x[i];
    }
    a->tokens++;
}

/* Mean cross-entropy of tokens (B, T) against targets (-1 unscored) by the
 * reference (ref_llama.h) at m's weights now; grads[ti] (numel doubles each) get
 * its gradient, absg (if not NULL) for the norm weights the magnitudes their
 * gradients sum, acts (if not NULL) the input sums of every linear map. */
static double ref_loss_grad_of(const model *m, const int *tokens, const int *targets, int B, int T, double **grads,
                               double **absg, ref_act *acts)
{
    ref_model r;
    ref_model_init(&r, m);
    double **g = ref_grads_new(&r), **ag = absg ? ref_grads_new(&r) : NULL;
    void *ctx[2] = {(void *)m, acts};
    ref_hooks hooks = {.linear = act_hook, .ctx = ctx};
    double loss = ref_loss_grad(&r, tokens, targets, B, T, acts ? &hooks : NULL, g, ag);
    for (int i = 0; i < m->n_tensors; i++) {
        int slot = ref_slot_named(&r, m->tensors[i].name);
        if (slot < 0) {
            fprintf(stderr, "reference: no weight %s\n", m->tensors[i].name);
            exit(1);
        }
        size_t bytes = (size_t)m->tensors[i].numel * sizeof(double);
        memcpy(grads[i], g[slot], bytes);
        if (absg)
            memcpy(absg[i], ag[slot], bytes);
    }
    ref_grads_free(&r, g);
    if (ag)
        ref_grads_free(&r, ag);
    ref_model_free(&r);
    return loss;
}

static double **grads_new(const model *m)
{
    double **g = xcalloc((size_t)m->n_tensors, sizeof *g);
    for (int i = 0; i < m->n_tensors; i++)
        g[i] = xcalloc((size_t)m->tensors[i].numel ? (size_t)m->tensors[i].numel : 1, sizeof(double));
    return g;
}

static void grads_free(const model *m, double **g)
{
    for (int i = 0; i < m->n_tensors; i++)
        free(g[i]);
    free(g);
}

/* The reference's G (batch), F (per-sample passes) and activations of a calibration. */
typedef struct {
    double **G, **F;
    double **absG; /* the magnitudes a norm weight's G sums (0 for other tensors) */
    ref_act *act;  /* per tensor index */
    double loss;
} reference;

static void reference_compute(reference *r, const model *m, const calib *c)
{
    int S = c->samples, T = c->seq_len;
    int *tok, *tgt;
    calib_batch(c, 0, 1, &tok, &tgt);
    r->G = grads_new(m);
    r->F = grads_new(m);
    r->absG = grads_new(m);
    r->act = xcalloc((size_t)m->n_tensors, sizeof *r->act);
    r->loss = ref_loss_grad_of(m, tok, tgt, S, T, r->G, r->absG, r->act);
    double **gs = grads_new(m);
    for (int s = 0; s < S; s++) {
        ref_loss_grad_of(m, tok + (size_t)s * T, tgt + (size_t)s * T, 1, T, gs, NULL, NULL);
        for (int i = 0; i < m->n_tensors; i++)
            for (int64_t e = 0; e < m->tensors[i].numel; e++)
                r->F[i][e] += gs[i][e] * gs[i][e] / S;
    }
    grads_free(m, gs);
    free(tok);
    free(tgt);
}

static void reference_free(reference *r, const model *m)
{
    grads_free(m, r->G);
    grads_free(m, r->F);
    grads_free(m, r->absG);
    for (int i = 0; i < m->n_tensors; i++) {
        free(r->act[i].sum);
        free(r->act[i].sq);
    }
    free(r->act);
}

/* Is channel ch (along the member's axis) part of unit u of group g? From the
 * config's meaning of a unit, not from the member's slice. */
static bool ref_in_unit(const model *m, const group *g, const group_member *mb, int64_t u, int64_t ch)
{
    const model_config *c = &m->cfg;
    switch (g->kind) {
    case GROUP_ATTN: {
        int hd = c->head_dim, rep = c->n_heads[g->layer] / c->n_kv_heads[g->layer];
        bool query_side = strstr(mb->tensor, "q_proj") || strstr(mb->tensor, "o_proj");
        int64_t head = ch / hd;
        return query_side ? head / rep == u : head == u; /* q head h reads kv head h / rep */
    }
    case GROUP_FFN:
    case GROUP_HIDDEN: return ch == u;
    case GROUP_LAYER: return true;
    default: return false;
    }
}

/* The reference value of statistic k for member mb, unit u; k = REF_MAGNITUDE:
 * sum |W| |dce| over the tokens, the magnitude a norm weight's W.G is summed from
 * (0 for the other tensors), the scale of its float32 rounding. */
#define REF_MAGNITUDE SCORE_MEMBER_STATS
static double ref_stat(const model *m, const reference *r, const group *g, const group_member *mb, int64_t u, int k)
{
    int ti = tidx(m, mb->tensor);
    const tensor *t = &m->tensors[ti];
    int64_t R = t->shape[0], C = t->ndim == 2 ? t->shape[1] : 1, n = mb->axis ? C : R;
    double total = 0;
    for (int64_t ch = 0; ch < n; ch++) {
        if (!ref_in_unit(m, g, mb, u, ch))
            continue;
        double s = 0;
        int64_t other = mb->axis ? R : C;
        for (int64_t j = 0; j < other; j++) {
            int64_t e = mb->axis ? j * C + ch : ch * C + j;
            double w = tensor_f32(t)[e], a = w * r->G[ti][e], b = w * r->F[ti][e] * w;
            switch (k) {
            case REF_MAGNITUDE: s += fabs(w) * r->absG[ti][e]; break;
            case SCORE_VECTOR: s += a; break;
            case SCORE_ELEMENT1: s += fabs(a); break;
            case SCORE_ELEMENT2: s += fabs(b); break;
            case SCORE_MIX: s += fabs(a - 0.5 * b); break;
            case SCORE_L1: s += fabs(w); break;
            case SCORE_L2: s += w * w; break;
            default: break;
            }
        }
        total += k == SCORE_VECTOR ? fabs(s) : s;
    }
    return total;
}

/* gs with every statistic replaced by the reference's (a deep copy of groups). */
static void reference_scores(const model *m, const reference *r, const group_set *src, group_set *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->fingerprint, sizeof out->fingerprint, "%s", src->fingerprint);
    out->config = json_deep_copy(src->config);
    out->weights = src->weights;
    out->n = src->n;
    out->g = xcalloc((size_t)src->n, sizeof *out->g);
    for (int i = 0; i < src->n; i++) {
        const group *a = &src->g[i];
        group *b = &out->g[i];
        *b = *a;
        b->members = xcalloc((size_t)a->n_members, sizeof *b->members);
        for (int k = 0; k < a->n_members; k++) {
            b->members[k] = a->members[k];
            b->members[k].tensor = xstrdup(a->members[k].tensor);
        }
        b->n_stats = SCORE_MEMBER_STATS + 1;
        b->stats = xcalloc(SCORE_MEMBER_STATS + 1, sizeof *b->stats);
        for (int k = 0; k <= REF_MAGNITUDE; k++) {
            b->stats[k].name = xstrdup(k == REF_MAGNITUDE ? "magnitude" : score_stat_name(k));
            b->stats[k].values = xmalloc((size_t)(a->n_members * a->units) * sizeof(float));
            for (int mi = 0; mi < a->n_members; mi++)
                for (int64_t u = 0; u < a->units; u++)
                    b->stats[k].values[mi * a->units + u] = (float)ref_stat(m, r, a, &a->members[mi], u, k);
        }
    }
    /* activations of every linear map with sums */
    for (int ti = 0; ti < m->n_tensors; ti++) {
        const ref_act *ra = &r->act[ti];
        if (!ra->sum)
            continue;
        out->act = xrealloc(out->act, (size_t)(out->n_act + 1) * sizeof *out->act);
        act_stat *a = &out->act[out->n_act++];
        memset(a, 0, sizeof *a);
        a->tensor = xstrdup(m->tensors[ti].name);
        a->tokens = ra->tokens;
        act_stat_alloc(a, ra->I);
        for (int64_t i = 0; i < ra->I; i++) {
            double mean = ra->sum[i] / ra->tokens;
            a->mean[i] = (float)mean;
            a->var[i] = (float)(ra->sq[i] / ra->tokens - mean * mean);
            a->sqnorm[i] = (float)ra->sq[i];
        }
    }
}

/* ================================================================== helpers */

/* Worst relative difference |a - b| / |b| over every statistic value of two
 * scored sets, per statistic into worst_of (when not NULL). A sum that cancels
 * is compared relative to the magnitudes it is summed from, the scale of its
 * float32 rounding: vector (|sum W.G| over a channel) relative to element1's
 * sum |W.G|, and a norm weight's gradient statistics (its gradient sums over
 * every token and cancels by up to 10^3 on stories260K) relative to the
 * reference's "magnitude", taken from scale (a reference set; NULL: b). Values
 * below 1e-6 of the member's largest are compared relative to that. */
static double stats_diff_by(const group_set *a, const group_set *b, const group_set *scale_set, const char *only,
                            bool verbose, double worst_of[SCORE_MEMBER_STATS])
{
    if (!scale_set)
        scale_set = b;
    double worst = 0;
    if (worst_of)
        for (int k = 0; k < SCORE_MEMBER_STATS; k++)
            worst_of[k] = 0;
    for (int i = 0; i < a->n; i++) {
        const group *ga = &a->g[i], *gb = &b->g[i];
        for (int s = 0; s < gb->n_stats; s++) {
            if (only && strcmp(gb->stats[s].name, only))
                continue;
            int k = score_stat_from_name(gb->stats[s].name);
            if (k < 0)
                continue;
            const group_stat *sa = group_find_stat(ga, gb->stats[s].name);
            if (!sa) {
                fprintf(stderr, "group %d lacks %s\n", ga->id, gb->stats[s].name);
                return INFINITY;
            }
            const group *gc = &scale_set->g[i];
            const group_stat *e1 = k == SCORE_VECTOR ? group_find_stat(gc, "element1") : NULL;
            const group_stat *mag = k != SCORE_ELEMENT2 && k <= SCORE_MIX ? group_find_stat(gc, "magnitude") : NULL;
            for (int mi = 0; mi < gb->n_members; mi++) {
                double scale = 0;
                for (int64_t u = 0; u < gb->units; u++)
                    scale = fmax(scale, fabs(gb->stats[s].values[mi * gb->units + u]));
                for (int64_t u = 0; u < gb->units; u++) {
                    double x = sa->values[mi * gb->units + u], y = gb->stats[s].values[mi * gb->units + u];
                    double ref = fmax(fabs(y), e1 ? e1->values[mi * gb->units + u] : 0);
                    ref = fmax(ref, mag ? mag->values[mi * gb->units + u] : 0);
                    double d = fabs(x - y) / fmax(ref, 1e-6 * scale + 1e-30);
                    if (worst_of && k >= 0 && k < SCORE_MEMBER_STATS)
                        worst_of[k] = fmax(worst_of[k], d);
                    if (d > worst && verbose && d > 1e-4)
                        fprintf(stderr, "  group %d (%s %d) %s %s unit %lld: %.9g vs %.9g\n", ga->id,
                                group_kind_name(ga->kind), ga->layer, gb->stats[s].name, gb->members[mi].tensor,
                                (long long)u, x, y);
                    worst = fmax(worst, d);
                }
            }
        }
    }
    return worst;
}

static double stats_diff(const group_set *a, const group_set *b, const char *only, bool verbose)
{
    return stats_diff_by(a, b, NULL, only, verbose, NULL);
}

static void print_worst(const char *what, const double w[SCORE_MEMBER_STATS])
{
    fprintf(stderr, "  %s:", what);
    for (int k = 0; k < SCORE_MEMBER_STATS; k++)
        fprintf(stderr, " %s %.1e", score_stat_name(k), w[k]);
    fputc('\n', stderr);
}

static double acts_diff(const group_set *a, const group_set *b)
{
    double worst = 0;
    if (a->n_act != b->n_act)
        return INFINITY;
    for (int i = 0; i < b->n_act; i++) {
        const act_stat *y = &b->act[i], *x = group_set_find_act(a, y->tensor);
        if (!x || x->channels != y->channels || x->tokens != y->tokens)
            return INFINITY;
        double scale = 0;
        for (int64_t c = 0; c < 3 * y->channels; c++)
            scale = fmax(scale, fabs(y->mean[c]));
        for (int64_t c = 0; c < 3 * y->channels; c++)
            worst = fmax(worst, fabs(x->mean[c] - y->mean[c]) / fmax(fabs(y->mean[c]), 1e-3 * scale));
    }
    return worst;
}

static void load_stories(model *m, tokenizer **tok)
{
    char *dir = path_join(check_data_dir(), "models/stories260K");
    char *bin = path_join(dir, "stories260K.bin"), *tk = path_join(dir, "tok512.bin");
    model_load(m, bin, tk);
    *tok = tokenizer_load_file(tk);
    free(dir);
    free(bin);
    free(tk);
}

static char *stories_text(void) { return path_join(check_data_dir(), "text/tinystories/tinystories_train_sample.txt"); }

/* stories260K with its tokenizer and samples x seq_len calibration windows of TinyStories drawn with seed. */
typedef struct {
    model m;
    tokenizer *tok;
    calib c;
} stories;

static void stories_open(stories *s, int samples, int seq_len, uint64_t seed)
{
    load_stories(&s->m, &s->tok);
    char *text = stories_text();
    calib_load(&s->c, text, CALIB_AUTO, s->tok, samples, seq_len, seed);
    free(text);
}

/* The same, and every statistic scored into gs. */
static void score_with(const model *m, const calib *c, unsigned stats, size_t fisher_memory, group_set *gs,
                       score_summary *sum);
static void stories_scored(stories *s, int samples, int seq_len, uint64_t seed, group_set *gs)
{
    stories_open(s, samples, seq_len, seed);
    score_summary sum;
    score_with(&s->m, &s->c, SCORE_ALL, 0, gs, &sum);
}

static void stories_close(stories *s)
{
    calib_free(&s->c);
    tokenizer_free(s->tok);
    model_free(&s->m);
}

/* ================================================================== tests */

/* The reference's gradient against central differences of its own loss. */
static void test_reference_gradient(void)
{
    fixture_shape sh = {16, 2, 24, 4, (const int[]){4, 4}, (const int[]){2, 2}, (const int[]){20, 12}, false, true,
                        true, true, ROPE_HALF};
    model m;
    fixture_model(&m, &sh, 7);
    int B = 2, T = 5, tok[10], tgt[10];
    for (int i = 0; i < B * T; i++) {
        tok[i] = (int)(next_u64() % 24);
        tgt[i] = i % T == T - 1 ? -1 : (int)(next_u64() % 24);
    }
    double **g = grads_new(&m), **dummy = grads_new(&m);
    ref_loss_grad_of(&m, tok, tgt, B, T, g, NULL, NULL);
    double worst = 0;
    int checked = 0;
    for (int ti = 0; ti < m.n_tensors; ti++) {
        tensor *t = &m.tensors[ti];
        for (int trial = 0; trial < 3; trial++) {
            int64_t e = (int64_t)(next_u64() % (uint64_t)t->numel);
            float keep = tensor_f32(t)[e];
            double h = 1e-3;
            tensor_f32(t)[e] = (float)(keep + h);
            double hp = (double)tensor_f32(t)[e] - keep;
            double lp = ref_loss_grad_of(&m, tok, tgt, B, T, dummy, NULL, NULL);
            tensor_f32(t)[e] = (float)(keep - h);
            double hm = keep - (double)tensor_f32(t)[e];
            double lm = ref_loss_grad_of(&m, tok, tgt, B, T, dummy, NULL, NULL);
            tensor_f32(t)[e] = keep;
            double fd = (lp - lm) / (hp + hm);
            if (fabs(fd) > 1e-5 || fabs(g[ti][e]) > 1e-5) {
                worst = fmax(worst, fabs(fd - g[ti][e]) / fmax(fabs(fd), 1e-4));
                checked++;
            }
        }
    }
    CHECK(checked > 20);
    CHECK(worst < 1e-3);
    if (worst >= 1e-3)
        fprintf(stderr, "  reference gradient vs finite differences: %g\n", worst);
    grads_free(&m, g);
    grads_free(&m, dummy);
    model_free(&m);
}

static void test_calib_text(void)
{
    char dir[] = "/tmp/pare-test-score-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    struct {
        const char *name, *body, *want;
        enum calib_format fmt;
    } cases[] = {
        {"a.txt", "[citation needed] plain\n", "[citation needed] plain\n", CALIB_TEXT},
        {"b.jsonl", "{\"text\": \"one\"}\n\n{\"text\": \"two\", \"x\": 1}\n", "one\n\ntwo", CALIB_JSONL},
        {"c.json", "[{\"text\": \"a\"}, {\"instruction\": \"Do\", \"input\": \"\", \"output\": \"Done\"}]",
         "a\n\nDo\nDone", CALIB_JSON},
        {"d.jsonl", "{\"instruction\": \"I\", \"input\": \"X\", \"output\": \"O\"}", "I\nX\nO", CALIB_JSONL},
        {"e.txt", "{not json} text", "{not json} text", CALIB_TEXT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *p = path_join(dir, cases[i].name);
        FILE *f = fopen(p, "w");
        fputs(cases[i].body, f);
        fclose(f);
        enum calib_format fmt = CALIB_AUTO;
        size_t len;
        char *text = calib_read_text(p, &fmt, &len);
        CHECK(fmt == cases[i].fmt);
        CHECK(!strcmp(text, cases[i].want));
        CHECK(len == strlen(cases[i].want));
        free(text);
        unlink(p);
        free(p);
    }
    rmdir(dir);
}

static void test_calib_windows(void)
{
    int64_t st[10], st2[10];
    calib_windows(1000, 10, 64, 42, "t", st);
    calib_windows(1000, 10, 64, 42, "t", st2);
    CHECK(!memcmp(st, st2, sizeof st));
    for (int i = 0; i < 10; i++) {
        CHECK(st[i] >= 0 && st[i] <= 1000 - 64);
        for (int j = 0; j < i; j++)
            CHECK(st[i] != st[j]);
    }
    calib_windows(1000, 10, 64, 43, "t", st2);
    CHECK(memcmp(st, st2, sizeof st) != 0);
    /* just enough text: every start drawn once */
    int64_t all[5];
    calib_windows(8, 5, 4, 1, "t", all);
    int seen = 0;
    for (int i = 0; i < 5; i++)
        seen |= 1 << all[i];
    CHECK(seen == 31);
    /* the windows are the token stream's slices, targets shifted by one */
    int ids[200];
    for (int i = 0; i < 200; i++)
        ids[i] = i;
    calib c;
    calib_from_ids(&c, "ids", ids, 200, 4, 16, 5);
    int *tok, *tgt;
    int n = calib_batch(&c, 1, 2, &tok, &tgt);
    CHECK(n == 2);
    CHECK(tok[0] == c.starts[1] && tok[16] == c.starts[3] && tok[15] == c.starts[1] + 15);
    CHECK(tgt[0] == c.starts[1] + 1 && tgt[15] == -1 && tgt[14] == c.starts[1] + 15);
    CHECK(strlen(c.xxh64) == 16);
    free(tok);
    free(tgt);
    calib_free(&c);
}

/* Score m on c with all statistics; compare with the reference. */
static void check_against_reference(const model *m, const calib *c, const char *what, double tol)
{
    group_set gs, ref;
    groups_discover(m, GROUP_KIND_ALL, &gs);
    score_options o = {.stats = SCORE_ALL};
    score_summary sum;
    score_run(m, c, &gs, &o, &sum);
    reference r;
    reference_compute(&r, m, c);
    reference_scores(m, &r, &gs, &ref);
    CHECK_CLOSE(sum.loss, r.loss, 1e-5);
    double w[SCORE_MEMBER_STATS];
    double d = stats_diff_by(&gs, &ref, NULL, NULL, true, w), da = acts_diff(&gs, &ref);
    print_worst(what, w);
    fprintf(stderr, "  %s: statistics within %.2g, activations within %.2g of the reference\n", what, d, da);
    CHECK(d < tol);
    CHECK(da < tol);
    CHECK(gs.n_act == ref.n_act && gs.n_act > 0);
    reference_free(&r, m);
    group_set_free(&ref);
    group_set_free(&gs);
}

static void test_stories_reference(void)
{
    stories st;
    stories_open(&st, 10, 64, 42);
    model *m = &st.m;
    calib *c = &st.c;
    CHECK(c->n_tokens > 10000);
    check_against_reference(m, c, "stories260K", 1e-4);
    stories_close(&st);
}

/* Random models of other shapes (fixture.h). */
static const struct {
    const char *name;
    fixture_shape shape;
} fixtures[] = {
    {"mha untied half", {24, 2, 40, 6, (const int[]){4, 4}, (const int[]){4, 4}, (const int[]){32, 32}, false, false,
                         false, false, ROPE_HALF}},
    {"gqa biases", {32, 2, 36, 8, (const int[]){4, 4}, (const int[]){2, 2}, (const int[]){24, 40}, true, true, true,
                    true, ROPE_INTERLEAVED}},
    {"pruned heterogeneous", {16, 3, 30, 4, (const int[]){4, 0, 2}, (const int[]){2, 0, 1}, (const int[]){12, 8, 0},
                              true, false, false, false, ROPE_HALF}},
};

static void random_calib(calib *c, int V, int samples, int T)
{
    int n = 400, *ids = xmalloc((size_t)n * sizeof *ids);
    for (int i = 0; i < n; i++)
        ids[i] = (int)(next_u64() % (uint64_t)V);
    calib_from_ids(c, "random", ids, n, samples, T, 3);
    free(ids);
}

static void test_fixtures_reference(void)
{
    for (size_t i = 0; i < sizeof fixtures / sizeof *fixtures; i++) {
        model m;
        fixture_model(&m, &fixtures[i].shape, 11 + i);
        calib c;
        random_calib(&c, fixtures[i].shape.V, 4, 12);
        check_against_reference(&m, &c, fixtures[i].name, 1e-4);
        calib_free(&c);
        model_free(&m);
    }
}

/* GQA: an attn unit's q_proj score is the sum over the query rows of its own
 * query heads (h / (H/KV) == u), which are contiguous. */
static void test_gqa_query_rows(void)
{
    model m;
    fixture_shape f = {16, 1, 20, 2, (const int[]){8}, (const int[]){2}, (const int[]){8}, true, false, false, false,
                       ROPE_HALF};
    fixture_model(&m, &f, 5);
    calib c;
    random_calib(&c, f.V, 3, 8);
    group_set gs;
    groups_discover(&m, 1u << GROUP_ATTN, &gs);
    score_options o = {.stats = (1u << SCORE_ELEMENT1) | (1u << SCORE_L1)};
    score_summary sum;
    score_run(&m, &c, &gs, &o, &sum);
    reference r;
    reference_compute(&r, &m, &c);
    const group *g = &gs.g[0];
    CHECK(g->kind == GROUP_ATTN && g->units == 2 && !strcmp(g->members[0].tensor, "model.layers.0.self_attn.q_proj.weight"));
    int ti = tidx(&m, "model.layers.0.self_attn.q_proj.weight");
    const tensor *t = &m.tensors[ti];
    const group_stat *e1 = group_find_stat(g, "element1"), *l1 = group_find_stat(g, "l1");
    for (int u = 0; u < 2; u++) {
        /* heads 4u .. 4u+3: rows 8u .. 8u+7 (hd 2) */
        double want_e = 0, want_l = 0, strided_l = 0;
        for (int64_t row = 0; row < t->shape[0]; row++)
            for (int64_t j = 0; j < t->shape[1]; j++) {
                double w = tensor_f32(t)[row * t->shape[1] + j];
                int64_t head = row / 2;
                if (head / 4 == u) {
                    want_e += fabs(w * r.G[ti][row * t->shape[1] + j]);
                    want_l += fabs(w);
                }
                if (head % 2 == u) /* LLM-Pruner llama3.py's fold: heads u, u + KV, ... */
                    strided_l += fabs(w);
            }
        CHECK_CLOSE(e1->values[u] / want_e, 1.0, 1e-4);
        CHECK_CLOSE(l1->values[u] / want_l, 1.0, 1e-5);
        CHECK(fabs(l1->values[u] / strided_l - 1) > 1e-3);
    }
    reference_free(&r, &m);
    group_set_free(&gs);
    calib_free(&c);
    model_free(&m);
}

/* A tensor's rows fed to a reduction in several calls (backward's panels),
 * with the weight's rows in fp32 or widened from the tensor, and two reductions
 * in progress at once, sum what one call over all rows sums, bit for bit: every
 * member statistic, over members of either axis and of both. */
static void test_reduce_any_cut(void)
{
    model m;
    fixture_model(&m, &fixtures[1].shape, 21);
    group_set gs;
    groups_discover(&m, GROUP_KIND_ALL, &gs);
    unsigned first = (1u << SCORE_VECTOR) | (1u << SCORE_ELEMENT1), rest = ((1u << NS) - 1) & ~first;
    scorer one, cut;
    scorer_init(&one, &m, &gs, first | rest, m.cfg.n_layers);
    scorer_init(&cut, &m, &gs, first | rest, m.cfg.n_layers);
    int both_axes = 0;
    for (int i = 0; i < one.n_t; i++) {
        const tref *t = &one.t[i];
        scorer_check_shape(&one, t);
        scorer_check_shape(&cut, &cut.t[i]);
        int64_t R = t->rows, C = t->cols, n = R * C;
        float *g = xmalloc((size_t)n * sizeof(float)), *f = xmalloc((size_t)n * sizeof(float));
        float *w = xmalloc((size_t)n * sizeof(float));
        for (int64_t e = 0; e < n; e++) {
            g[e] = (float)((double)next_u64() / 18446744073709551616.0 - 0.5);
            f[e] = (float)((double)next_u64() / 18446744073709551616.0);
        }
        tensor_get_f32(t->w, 0, n, w);
        score_rows all = {.r0 = 0, .r1 = R, .g = g, .sg = 0.75, .f = f, .sf = 0.3};
        scorer_reduce(&one, t, t->w, first, &all);
        scorer_reduce(&one, t, t->w, rest, &all);
        scorer_reduce_begin(&cut, RED_WHOLE, &cut.t[i], t->w, first);
        scorer_reduce_begin(&cut, RED_PIECE, &cut.t[i], t->w, rest);
        int64_t bounds[] = {0, R > 1, R / 3 > 1 ? R / 3 : R > 1, R - (R > 2), R};
        for (int k = 0; k < 4; k++) {
            int64_t r0 = bounds[k], r1 = bounds[k + 1];
            if (r1 <= r0)
                continue;
            score_rows part = {.r0 = r0, .r1 = r1, .w = k % 2 ? w + r0 * C : NULL, .g = g + r0 * C, .sg = 0.75,
                               .f = f + r0 * C, .sf = 0.3};
            scorer_reduce_rows(&cut, RED_WHOLE, &part);
            scorer_reduce_rows(&cut, RED_PIECE, &part);
        }
        scorer_reduce_end(&cut, RED_WHOLE);
        scorer_reduce_end(&cut, RED_PIECE);
        both_axes += one.red[RED_WHOLE].ax[0] && one.red[RED_WHOLE].ax[1];
        free(g), free(f), free(w);
    }
    int differ = 0;
    for (int gi = 0; gi < gs.n; gi++)
        differ += memcmp(one.acc[gi], cut.acc[gi], (size_t)gs.g[gi].n_members * NS * (size_t)gs.g[gi].units *
                                                       sizeof(double)) != 0;
    fprintf(stderr, "  %d trefs (%d on both axes) cut in four: %d of %d groups differ\n", one.n_t, both_axes,
            differ, gs.n);
    CHECK(differ == 0);
    CHECK(both_axes > 0);
    scorer_free(&one), scorer_free(&cut);
    group_set_free(&gs);
    model_free(&m);
}

static void score_with(const model *m, const calib *c, unsigned stats, size_t fisher_memory, group_set *gs,
                       score_summary *sum)
{
    groups_discover(m, GROUP_KIND_ALL, gs);
    score_options o = {.stats = stats, .fisher_memory = fisher_memory};
    score_run(m, c, gs, &o, sum);
}

/* Fisher held in chunks of layers gives what one chunk gives; element2 alone
 * (separable, no element-wise F) gives what the element-wise F gives. */
static void test_chunks_and_separable(void)
{
    stories st;
    stories_open(&st, 6, 32, 9);
    model *m = &st.m;
    calib *c = &st.c;
    group_set one, many, e2;
    score_summary s1, s2, s3;
    score_with(m, c, SCORE_ALL, 0, &one, &s1);
    score_with(m, c, SCORE_ALL, 100000, &many, &s2);
    CHECK(s1.chunks == 1);
    CHECK(s2.chunks >= 4);
    CHECK(s2.passes == (int64_t)s2.chunks * (6 + 1));
    score_options o = {.stats = SCORE_ALL, .fisher_memory = 100000};
    CHECK(score_chunks(m, &many, &o, 6, 32) == s2.chunks);
    CHECK(stats_diff(&many, &one, NULL, true) == 0);
    CHECK(acts_diff(&many, &one) == 0);
    score_with(m, c, 1u << SCORE_ELEMENT2, 0, &e2, &s3);
    CHECK(s3.passes == 6); /* per-sample passes only */
    CHECK(e2.g[0].n_stats == 1 && e2.n_act == 0);
    double d = stats_diff(&e2, &one, "element2", true);
    CHECK(d < 1e-5);
    /* no gradient statistic at all: no pass */
    group_set mag;
    score_summary s4;
    score_with(m, c, (1u << SCORE_L1) | (1u << SCORE_L2), 0, &mag, &s4);
    CHECK(s4.passes == 0);
    CHECK(stats_diff(&mag, &one, "l2", false) == 0);
    group_set_free(&one);
    group_set_free(&many);
    group_set_free(&e2);
    group_set_free(&mag);
    stories_close(&st);
}

/* The partial streams of shards 0..n-1 of m on c, every statistic, written
 * into dir as p0.pare, p1.pare, ... (paths[k], malloc'd); shard 1 holds its
 * Fisher in chunks of fisher_memory bytes. */
static void write_partials(const model *m, const calib *c, int n, size_t fisher_memory, const char *dir,
                           char **paths)
{
    for (int k = 0; k < n; k++) {
        char name[32];
        snprintf(name, sizeof name, "p%d.pare", k);
        paths[k] = path_join(dir, name);
        group_set gs;
        groups_discover(m, GROUP_KIND_ALL, &gs);
        score_options o = {.stats = SCORE_ALL, .shard = k, .shards = n, .fisher_memory = k == 1 ? fisher_memory : 0};
        char *argv[] = {"test"};
        score_summary sum;
        score_write_partial(m, c, &gs, &o, paths[k], 1, argv, &sum);
        group_set_free(&gs);
    }
}

/* Three shards merged give the unsharded statistics to float rounding, in any
 * order; merged twice, byte-identical streams. */
static void test_shards_merge(void)
{
    stories st;
    group_set whole;
    stories_scored(&st, 10, 64, 42, &whole);
    model *m = &st.m;
    calib *c = &st.c;

    char dir[] = "/tmp/pare-test-shards-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char *paths[3];
    write_partials(m, c, 3, 150000, dir, paths);
    char *order[3] = {paths[2], paths[0], paths[1]};
    group_set merged, ref;
    score_merge(order, 3, "merge", &merged);
    reference r;
    reference_compute(&r, m, c);
    reference_scores(m, &r, &whole, &ref);
    double w[SCORE_MEMBER_STATS];
    double d = stats_diff_by(&merged, &whole, &ref, NULL, true, w), da = acts_diff(&merged, &whole);
    print_worst("3 shards merged vs one run", w);
    fprintf(stderr, "  3 shards merged: statistics within %.2g, activations within %.2g of one run\n", d, da);
    CHECK(d < 1e-5);
    /* float rounding of sgemm kernels that block batch and per-sample products
     * differently: 1.2e-6 with OpenBLAS's Zen kernels, below 1e-6 with SkylakeX */
    CHECK(da < 1e-5);
    CHECK(stats_diff_by(&merged, &ref, NULL, NULL, false, NULL) < 1e-4);
    reference_free(&r, m);
    group_set_free(&ref);
    CHECK(json_equal(merged.calibration, whole.calibration));
    CHECK(!strcmp(merged.fingerprint, whole.fingerprint));
    CHECK(merged.n == whole.n && merged.g[0].n_stats == whole.g[0].n_stats);
    for (int s = 0; s < whole.g[0].n_stats; s++)
        CHECK(!strcmp(merged.g[0].stats[s].name, whole.g[0].stats[s].name));
    /* the merge is byte-identical whatever the order */
    char *out1 = path_join(dir, "m1.pare"), *out2 = path_join(dir, "m2.pare");
    char *argv[] = {"test"};
    groups_write(&merged, "scores", out1, 1, argv);
    group_set again;
    score_merge(paths, 3, "merge", &again);
    groups_write(&again, "scores", out2, 1, argv);
    size_t n1, n2;
    char *b1 = read_whole_file(out1, &n1), *b2 = read_whole_file(out2, &n2);
    CHECK(n1 == n2 && !memcmp(b1, b2, n1));
    free(b1);
    free(b2);
    /* the scores stream reads back with its activations */
    group_set back;
    char kind[16];
    groups_read(&back, out1, kind);
    CHECK(!strcmp(kind, "scores"));
    CHECK(back.n_act == merged.n_act && stats_diff(&back, &merged, NULL, false) == 0 && acts_diff(&back, &merged) == 0);
    group_set_free(&back);
    unlink(out1);
    unlink(out2);
    free(out1);
    free(out2);
    for (int k = 0; k < 3; k++) {
        unlink(paths[k]);
        free(paths[k]);
    }
    rmdir(dir);
    group_set_free(&again);
    group_set_free(&merged);
    group_set_free(&whole);
    stories_close(&st);
}

/* The worst over groups, statistics and members of max_u |a - b| / max_u |b|: the
 * error of a's values relative to the member's largest, per statistic in w. */
static double stats_diff_normwise(const group_set *a, const group_set *b, double w[SCORE_MEMBER_STATS])
{
    double worst = a->n == b->n ? 0 : INFINITY;
    for (int k = 0; k < SCORE_MEMBER_STATS; k++)
        w[k] = 0;
    for (int i = 0; i < a->n && i < b->n; i++) {
        const group *ga = &a->g[i], *gb = &b->g[i];
        for (int s = 0; s < gb->n_stats; s++) {
            int k = score_stat_from_name(gb->stats[s].name);
            const group_stat *sa = group_find_stat(ga, gb->stats[s].name);
            if (k < 0 || k >= SCORE_MEMBER_STATS)
                continue;
            if (!sa)
                return INFINITY;
            for (int mi = 0; mi < gb->n_members; mi++) {
                const float *x = sa->values + mi * gb->units, *y = gb->stats[s].values + mi * gb->units;
                double num = 0, den = 0;
                for (int64_t u = 0; u < gb->units; u++) {
                    num = fmax(num, fabs((double)x[u] - y[u]));
                    den = fmax(den, fabs((double)y[u]));
                }
                double d = num / fmax(den, 1e-30);
                w[k] = fmax(w[k], d);
                worst = fmax(worst, d);
            }
        }
    }
    return worst;
}

/* Two shards of a ChatGLM-6B-shaped random model merged give its unsharded
 * statistics (to 1e-5 of each member's largest unit): the merge takes the layer count from the model's config read as
 * every program reads it (ChatGLM's key is num_layers, not num_hidden_layers). */
static void test_shards_merge_chatglm(void)
{
    model m;
    fixture_config_model(&m,
                         "{\"model_type\":\"chatglm\",\"hidden_size\":16,\"num_layers\":3,\"vocab_size\":40,"
                         "\"num_attention_heads\":4,\"inner_hidden_size\":24,\"position_encoding_2d\":true}",
                         77);
    calib c;
    random_calib(&c, 40, 6, 24);
    group_set whole;
    score_summary sum;
    score_with(&m, &c, SCORE_ALL, 0, &whole, &sum);
    char dir[] = "/tmp/pare-test-shards-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char *paths[2];
    write_partials(&m, &c, 2, 4000, dir, paths);
    group_set merged;
    score_merge(paths, 2, "merge", &merged);
    double w[SCORE_MEMBER_STATS];
    double d = stats_diff_normwise(&merged, &whole, w), da = acts_diff(&merged, &whole);
    print_worst("ChatGLM-6B, 2 shards merged vs one run", w);
    fprintf(stderr, "  ChatGLM-6B, 2 shards merged: statistics within %.2g, activations within %.2g of one run\n", d,
            da);
    /* float rounding of batch products of other sizes, relative to each member's
     * largest unit (a unit of a layer-0 norm bias whose gradient nearly cancels
     * over the tokens differs by 5.5e-4 of itself) */
    CHECK(merged.n == whole.n && d < 1e-5 && da < 1e-5);
    CHECK(json_equal(merged.calibration, whole.calibration) && !strcmp(merged.fingerprint, whole.fingerprint));
    for (int k = 0; k < 2; k++) {
        unlink(paths[k]);
        free(paths[k]);
    }
    rmdir(dir);
    group_set_free(&merged);
    group_set_free(&whole);
    calib_free(&c);
    model_free(&m);
}

/* pare-prune keeps the same units from the reference's statistics as from pare's,
 * for every criterion. */
static void test_prune_same_units(void)
{
    stories st;
    stories_open(&st, 10, 64, 42);
    model *m = &st.m;
    calib *c = &st.c;
    group_set gs, ref;
    score_summary sum;
    score_with(m, c, SCORE_ALL, 0, &gs, &sum);
    reference r;
    reference_compute(&r, m, c);
    reference_scores(m, &r, &gs, &ref);
    const char *crit[] = {"vector", "element1", "element2", "mix", "l1", "l2", "random", "flap", "wanda"};
    double ratios[] = {0.25, 0.5};
    enum prune_mode modes[] = {PRUNE_BLOCK, PRUNE_CHANNEL, PRUNE_LAYER};
    int differ = 0, plans = 0;
    for (size_t k = 0; k < sizeof crit / sizeof *crit; k++)
        for (int ri = 0; ri < 2; ri++)
            for (int mi = 0; mi < 3; mi++) {
                bool act = !strcmp(crit[k], "flap") || !strcmp(crit[k], "wanda");
                if (act && modes[mi] == PRUNE_LAYER)
                    continue;
                prune_options o = {.mode = modes[mi], .ratio = ratios[ri], .target_params = -1, .first_layer = -1,
                                   .last_layer = -1, .criterion = prune_criterion_from_name(crit[k]), .aggregate = PRUNE_AGG_SUM, .seed = 42};
                if (modes[mi] == PRUNE_BLOCK) {
                    o.first_layer = 1;
                    o.last_layer = 3;
                }
                prune_plan a, b;
                prune_plan_make(&a, m, &gs, "scores", "pare", &o);
                prune_plan_make(&b, m, &ref, "scores", "reference", &o);
                bool same = a.n == b.n;
                for (int i = 0; same && i < a.n; i++)
                    same = a.c[i].n_removed == b.c[i].n_removed &&
                           !memcmp(a.c[i].removed, b.c[i].removed, (size_t)a.c[i].n_removed * sizeof(int64_t));
                if (!same) {
                    differ++;
                    fprintf(stderr, "  %s %s %.2f: different units\n", crit[k], prune_mode_name(modes[mi]), ratios[ri]);
                }
                plans++;
                prune_plan_free(&a);
                prune_plan_free(&b);
            }
    CHECK(differ == 0);
    CHECK(plans == 9 * 6 - 4);
    reference_free(&r, m);
    group_set_free(&ref);
    group_set_free(&gs);
    stories_close(&st);
}

/* flap and wanda from their definitions; FLAP's bias compensation: each removed
 * input channel c of o_proj / down_proj adds W[:, c] * mean(x_c) to the bias. */
static void test_flap_wanda(void)
{
    stories st;
    group_set gs;
    stories_scored(&st, 10, 64, 42, &gs);
    model *m = &st.m;
    const model_config *cf = &m->cfg;
    int hd = cf->head_dim, D = cf->dim;
    for (int i = 0; i < gs.n; i++) {
        const group *g = &gs.g[i];
        if (g->kind != GROUP_ATTN && g->kind != GROUP_FFN)
            continue;
        char name[128];
        snprintf(name, sizeof name, "model.layers.%d.%s", g->layer,
                 g->kind == GROUP_ATTN ? "self_attn.o_proj.weight" : "mlp.down_proj.weight");
        const tensor *t = model_tensor(m, name);
        const act_stat *a = group_set_find_act(&gs, name);
        CHECK(a && a->tokens == 640 && a->channels == t->shape[1]);
        double *fl = xmalloc((size_t)g->units * sizeof *fl), *wa = xmalloc((size_t)g->units * sizeof *wa);
        prune_importance(m, &gs, g, PRUNE_CRIT_FLAP, PRUNE_AGG_SUM, 0, "t", fl);
        prune_importance(m, &gs, g, PRUNE_CRIT_WANDA, PRUNE_AGG_SUM, 0, "t", wa);
        int rep = cf->n_heads[g->layer] / cf->n_kv_heads[g->layer];
        for (int64_t u = 0; u < g->units; u++) {
            double want_f = 0, want_w = 0;
            for (int64_t col = 0; col < t->shape[1]; col++) {
                bool mine = g->kind == GROUP_FFN ? col == u : col / hd / rep == u;
                for (int64_t r = 0; mine && r < t->shape[0]; r++) {
                    double w = tensor_f32(t)[r * t->shape[1] + col];
                    want_f += a->var[col] * w * w;
                    want_w += sqrt(a->sqnorm[col]) * fabs(w);
                }
            }
            CHECK_CLOSE(fl[u] / want_f, 1, 1e-9);
            CHECK_CLOSE(wa[u] / want_w, 1, 1e-9);
        }
        free(fl);
        free(wa);
    }

    /* adaptive selection with flap standardises as FLAP's code does: per input
     * channel of o_proj (Var(x_c) sum_r W^2)^2 over the layer's channels, averaged
     * over a unit's channels; per down_proj channel Var(x_c) sum_r W^2 */
    prune_options ao = {.mode = PRUNE_BLOCK, .ratio = 0.3, .target_params = -1, .first_layer = 0, .last_layer = 4,
                        .criterion = PRUNE_CRIT_FLAP, .select = PRUNE_SELECT_ADAPTIVE, .aggregate = PRUNE_AGG_SUM};
    prune_plan ap;
    prune_plan_make(&ap, m, &gs, "scores", "t", &ao);
    double rm_max = -1e300;
    double *zs[16] = {0};
    for (int i = 0; i < ap.n; i++) {
        const group *g = &gs.g[ap.c[i].group];
        char name[128];
        snprintf(name, sizeof name, "model.layers.%d.%s", g->layer,
                 g->kind == GROUP_ATTN ? "self_attn.o_proj.weight" : "mlp.down_proj.weight");
        const tensor *t = model_tensor(m, name);
        const act_stat *a = group_set_find_act(&gs, name);
        int64_t C = t->shape[1], R = t->shape[0];
        double *mc = xcalloc((size_t)C, sizeof *mc), mean = 0, var = 0;
        for (int64_t col = 0; col < C; col++) {
            for (int64_t r = 0; r < R; r++)
                mc[col] += (double)tensor_f32(t)[r * C + col] * tensor_f32(t)[r * C + col];
            mc[col] *= a->var[col];
            if (g->kind == GROUP_ATTN)
                mc[col] *= mc[col];
            mean += mc[col] / (double)C;
        }
        for (int64_t col = 0; col < C; col++)
            var += (mc[col] - mean) * (mc[col] - mean) / (double)(C - 1);
        int rep = cf->n_heads[g->layer] / cf->n_kv_heads[g->layer];
        zs[i] = xcalloc((size_t)g->units, sizeof(double));
        for (int64_t col = 0; col < C; col++) {
            int64_t u = g->kind == GROUP_FFN ? col : col / hd / rep;
            zs[i][u] += (mc[col] - mean) / sqrt(var) / (g->kind == GROUP_FFN ? 1.0 : (double)(hd * rep));
        }
        for (int64_t k = 0; k < ap.c[i].n_removed; k++)
            rm_max = fmax(rm_max, zs[i][ap.c[i].removed[k]]);
        free(mc);
    }
    int64_t below = 0, units_rm = 0;
    for (int i = 0; i < ap.n; i++) {
        const group *g = &gs.g[ap.c[i].group];
        units_rm += ap.c[i].n_removed;
        for (int64_t u = 0; u < g->units; u++) {
            bool rm = false;
            for (int64_t k = 0; k < ap.c[i].n_removed; k++)
                rm |= ap.c[i].removed[k] == u;
            /* a kept unit below a removed one only where its group keeps its last */
            if (!rm && zs[i][u] < rm_max - 1e-9) {
                below++;
                CHECK(ap.c[i].n_removed == g->units - 1);
            }
        }
        free(zs[i]);
    }
    CHECK(units_rm > 0 && below <= ap.n);
    prune_plan_free(&ap);

    prune_options o = {.mode = PRUNE_BLOCK, .ratio = 0.5, .target_params = -1, .first_layer = 1, .last_layer = 3,
                       .criterion = PRUNE_CRIT_FLAP, .aggregate = PRUNE_AGG_SUM, .seed = 42};
    prune_plan p;
    prune_plan_make(&p, m, &gs, "scores", "t", &o);
    CHECK(p.compensate && p.after.o_bias && p.after.down_bias);
    model out;
    prune_apply(m, &gs, &p, false, &out);
    CHECK(out.cfg.o_bias && out.cfg.down_bias);
    CHECK(config_param_count(&out.cfg) == config_param_count(&p.after));
    int64_t counted = 0;
    for (int l = 0; l < out.cfg.n_layers; l++)
        counted += prune_layer_params(&out.cfg, l);
    CHECK(counted == config_param_count(&out.cfg) - (int64_t)cf->vocab * D - D);
    for (int l = 0; l < cf->n_layers; l++)
        for (int which = 0; which < 2; which++) {
            char bname[128], wname[128];
            snprintf(bname, sizeof bname, "model.layers.%d.%s", l, which ? "mlp.down_proj.bias" : "self_attn.o_proj.bias");
            snprintf(wname, sizeof wname, "model.layers.%d.%s", l,
                     which ? "mlp.down_proj.weight" : "self_attn.o_proj.weight");
            const tensor *b = model_tensor(&out, bname), *w = model_tensor(m, wname);
            const act_stat *a = group_set_find_act(&gs, wname);
            CHECK(b && b->numel == D);
            const prune_choice *ch = NULL;
            for (int i = 0; i < p.n; i++) {
                const group *g = &gs.g[p.c[i].group];
                if (g->layer == l && g->kind == (which ? GROUP_FFN : GROUP_ATTN))
                    ch = &p.c[i];
            }
            CHECK((l >= 1 && l <= 3) == (ch != NULL && ch->n_removed > 0));
            int rep = cf->n_heads[l] / cf->n_kv_heads[l];
            double worst = 0;
            for (int r = 0; b && r < D; r++) {
                double want = 0;
                for (int64_t k = 0; ch && k < ch->n_removed; k++)
                    for (int64_t col = 0; col < w->shape[1]; col++)
                        if (which ? col == ch->removed[k] : col / hd / rep == ch->removed[k])
                            want += (double)tensor_f32(w)[r * w->shape[1] + col] * a->mean[col];
                worst = fmax(worst, fabs(tensor_f32(b)[r] - want) / fmax(fabs(want), 1e-6));
                if (!ch)
                    CHECK(tensor_f32(b)[r] == 0);
            }
            CHECK(worst < 1e-5);
        }
    /* without compensation: no biases */
    prune_plan q;
    o.no_compensation = true;
    prune_plan_make(&q, m, &gs, "scores", "t", &o);
    CHECK(!q.compensate && !q.after.o_bias && !q.after.down_bias);
    for (int i = 0; i < p.n; i++)
        CHECK(p.c[i].n_removed == q.c[i].n_removed &&
              !memcmp(p.c[i].removed, q.c[i].removed, (size_t)p.c[i].n_removed * sizeof(int64_t)));
    /* wanda does not compensate */
    o.no_compensation = false;
    o.criterion = PRUNE_CRIT_WANDA;
    prune_plan wp;
    prune_plan_make(&wp, m, &gs, "scores", "t", &o);
    CHECK(!wp.compensate);
    prune_plan_free(&wp);
    prune_plan_free(&q);
    prune_plan_free(&p);
    model_free(&out);
    group_set_free(&gs);
    stories_close(&st);
}

int main(void)
{
    TEST(test_reference_gradient);
    TEST(test_calib_text);
    TEST(test_calib_windows);
    TEST(test_stories_reference);
    TEST(test_fixtures_reference);
    TEST(test_gqa_query_rows);
    TEST(test_reduce_any_cut);
    TEST(test_chunks_and_separable);
    TEST(test_shards_merge);
    TEST(test_shards_merge_chatglm);
    TEST(test_prune_same_units);
    TEST(test_flap_wanda);
    return check_report();
}
