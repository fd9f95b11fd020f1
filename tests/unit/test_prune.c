/* test_prune.c - pare-prune's library: structural equivalence of physical pruning
 * (the pruned model computes what the original computes with the removed units
 * masked), on random fixtures of every shape and on stories260K; the ratio rule
 * and the paper's counts; magnitude importance against direct sums; aggregates;
 * local, global, layer and --target-params plans; provenance replay; checkpoint
 * round trips of pruned models.
 *
 * Letters: B sequences, T tokens, D hidden, L layers, V vocab, H query heads, KV
 * key/value heads, hd head dim, F MLP width, U units of a group. */
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/rng.h"
#include "base/util.h"
#include "check.h"
#include "compute/forward.h"
#include "fixture.h"
#include "format/checkpoint.h"
#include "format/model_load.h"
#include "model/model.h"
#include "prune/groups.h"
#include "prune/groups_stream.h"
#include "prune/prune.h"
#include "ref_llama.h"

/* The fp32 values of a weight, or NULL. */
#define F32(t) ((t) ? tensor_f32(t) : NULL)

static uint64_t rng = 88172645463325252ull; /* the fixtures' stream (rng.h) */
static int64_t rand_below(int64_t n) { return n > 0 ? (int64_t)rng_below(&rng, (uint64_t)n) : 0; }

/* ---- fixtures ---- */

typedef struct {
    const char *name;
    int D, L, V, hd;
    int H[4], KV[4], F[4];
    bool tied, bias;
    enum rope_style style;
} prune_fixture;

static const prune_fixture fixtures[] = {
    {"mha tied", 32, 3, 40, 8, {4, 4, 4}, {4, 4, 4}, {48, 48, 48}, true, false, ROPE_HALF},
    {"gqa2 untied", 32, 3, 40, 8, {4, 4, 4}, {2, 2, 2}, {40, 40, 40}, false, false, ROPE_INTERLEAVED},
    {"gqa4 bias", 48, 2, 33, 6, {8, 8}, {2, 2}, {36, 36}, false, true, ROPE_HALF},
    {"pruned heterogeneous", 24, 4, 30, 4, {4, 2, 0, 6}, {2, 1, 0, 3}, {20, 0, 12, 8}, true, false, ROPE_HALF},
};

static void prune_fixture_config(model_config *c, const prune_fixture *f)
{
    memset(c, 0, sizeof *c);
    snprintf(c->model_type, sizeof c->model_type, "%s", f->bias ? "qwen2" : "llama");
    c->dim = f->D;
    c->n_layers = f->L;
    c->vocab = f->V;
    c->head_dim = f->hd;
    c->max_seq = 64;
    c->n_heads = xmalloc((size_t)f->L * sizeof(int));
    c->n_kv_heads = xmalloc((size_t)f->L * sizeof(int));
    c->ffn_dim = xmalloc((size_t)f->L * sizeof(int));
    for (int l = 0; l < f->L; l++) {
        c->n_heads[l] = f->H[l];
        c->n_kv_heads[l] = f->KV[l];
        c->ffn_dim[l] = f->F[l];
    }
    c->norm_eps = 1e-5f;
    c->rope_theta = 10000;
    c->rope_style = f->style;
    c->tied = f->tied;
    c->qkv_bias = f->bias;
    c->bos_id = 1;
    c->eos_id = 2;
}

static void prune_fixture_model(model *m, const prune_fixture *f, uint64_t seed)
{
    model_config c;
    prune_fixture_config(&c, f);
    model_init_random(m, &c, seed);
    config_free(&c);
}

static int *rand_tokens(int n, int V)
{
    int *t = xmalloc((size_t)n * sizeof *t);
    for (int i = 0; i < n; i++)
        t[i] = (int)rand_below(V);
    return t;
}

/* logits (B*T, V) of m, a copy */
static float *logits_of(const model *m, int B, int T, const int *tokens)
{
    forward_state s;
    forward_state_init(&s, m, B, T);
    model_forward(m, &s, tokens);
    size_t n = (size_t)B * T * m->cfg.vocab;
    float *out = xmalloc(n * sizeof *out);
    memcpy(out, s.logits, n * sizeof *out);
    forward_state_free(&s);
    return out;
}

/* max over rows (n_rows of V) of max |a - b| / max(1, max |b|): float32 logits
 * are compared relative to the scale of their row. */
static double max_row_diff(const float *a, const double *bd, const float *bf, int n_rows, int V)
{
    double e = 0;
    for (int r = 0; r < n_rows; r++) {
        double scale = 1, d = 0;
        for (int i = r * V; i < (r + 1) * V; i++) {
            double b = bd ? bd[i] : bf[i];
            scale = fmax(scale, fabs(b));
            d = fmax(d, fabs(a[i] - b));
        }
        e = fmax(e, d / scale);
    }
    return e;
}

/* max |a - b| / max(1, |b|) of two double arrays */
static double max_rel_diff_d(const double *a, const double *b, size_t n)
{
    double e = 0;
    for (size_t i = 0; i < n; i++)
        e = fmax(e, fabs(a[i] - b[i]) / fmax(1.0, fabs(b[i])));
    return e;
}

static int find_group(const group_set *gs, enum group_kind k, int layer)
{
    for (int i = 0; i < gs->n; i++)
        if (gs->g[i].kind == k && (k == GROUP_HIDDEN || gs->g[i].layer == layer))
            return i;
    return -1;
}

static void free_choices(prune_choice *c, int n)
{
    for (int i = 0; i < n; i++)
        free(c[i].removed);
    free(c);
}

/* ---- the reference for the hidden group ----
 *
 * Removing hidden channels is NOT the same as zeroing them: every RMSNorm takes the
 * mean of x^2 over all D channels, and a zeroed channel still counts in D. So for
 * the hidden group the pruned model is compared with the double-precision reference
 * (ref_llama.h) over the ORIGINAL weights, in which the residual stream only has the
 * kept channels and each norm averages over the kept channels only. */

/* Reference logits (B*T, V) of B sequences; keep NULL keeps every channel. */
static double *ref_logits(const model *m, const bool *keep, const int *tokens, int B, int T)
{
    ref_model r;
    ref_model_init(&r, m);
    ref_hooks hooks = {.keep = keep};
    double *out = xmalloc((size_t)B * T * m->cfg.vocab * sizeof *out);
    ref_forward(&r, tokens, B, T, &hooks, out);
    ref_model_free(&r);
    return out;
}

/* ---- equivalence ---- */

/* Block and layer mode: prune m physically by a random choice of units, and
 * compare with a copy (made by reload) whose removed slices are zeroed. */
typedef void (*reload_fn)(model *m, const void *arg);

static void check_masked_equivalence(const model *orig, reload_fn reload, const void *arg, enum prune_mode mode,
                                     int trials, const char *what)
{
    group_set gs;
    groups_discover(orig, GROUP_KIND_ALL, &gs);
    int B = 2, T = 9;
    for (int trial = 0; trial < trials; trial++) {
        prune_choice *c = xcalloc((size_t)gs.n, sizeof *c);
        int n = 0;
        for (int i = 0; i < gs.n; i++) {
            const group *g = &gs.g[i];
            if (mode == PRUNE_BLOCK && (g->kind == GROUP_ATTN || g->kind == GROUP_FFN))
                /* sometimes every unit: the sub-block goes, with its norm */
                c[n++] = fixture_choice(&rng, i, g->units, 0, g->units);
            else if (mode == PRUNE_LAYER && g->kind == GROUP_LAYER && rand_below(2))
                c[n++] = fixture_choice(&rng, i, 1, 1, 1);
        }
        if (mode == PRUNE_LAYER && n == gs.n - find_group(&gs, GROUP_LAYER, 0)) {
            free(c[--n].removed); /* keep at least one layer */
        }
        prune_plan p;
        prune_plan_manual(&p, orig, &gs, mode, n, c);
        model src, pruned, masked;
        reload(&src, arg);
        prune_apply(&src, &gs, &p, trial % 2 == 0, &pruned); /* lazy: sliced when made whole */
        if (trial % 2 == 0)
            model_materialize(&pruned);
        reload(&masked, arg);
        prune_mask(&masked, &gs, &p);
        int V = orig->cfg.vocab, *tokens = rand_tokens(B * T, V);
        /* exact: the reference forward in double of both models */
        double *ra = ref_logits(&pruned, NULL, tokens, B, T), *rb = ref_logits(&masked, NULL, tokens, B, T);
        double ex = max_rel_diff_d(ra, rb, (size_t)B * T * V);
        /* the forward pass: float32, summed in another order once slices are gone */
        float *a = logits_of(&pruned, B, T, tokens), *b = logits_of(&masked, B, T, tokens);
        double e = max_row_diff(a, NULL, b, B * T, V);
        if (ex > 1e-9 || e > 1e-5)
            fprintf(stderr, "    %s %s trial %d: pruned vs masked logits differ by %g (reference, double), %g (forward)\n",
                    what, prune_mode_name(mode), trial, ex, e);
        CHECK(ex <= 1e-9);
        CHECK(e <= 1e-5);
        free(ra);
        free(rb);
        CHECK(config_param_count(&pruned.cfg) == config_param_count(&p.after));
        free(a);
        free(b);
        free(tokens);
        model_free(&src);
        model_free(&pruned);
        model_free(&masked);
        prune_plan_free(&p);
        free_choices(c, n);
    }
    group_set_free(&gs);
}

/* Channel mode: the pruned model against the reference with kept channels. */
static void check_hidden_equivalence(const model *orig, int trials, const char *what)
{
    group_set gs;
    groups_discover(orig, 1u << GROUP_HIDDEN, &gs);
    int T = 7, D = orig->cfg.dim, V = orig->cfg.vocab;
    bool *keep = xmalloc((size_t)D * sizeof *keep);
    for (int trial = 0; trial < trials; trial++) {
        int *tokens = rand_tokens(T, V);
        prune_choice c = fixture_choice(&rng, 0, D, trial == 0 ? 0 : 1, D - 1);
        prune_plan p;
        prune_plan_manual(&p, orig, &gs, PRUNE_CHANNEL, 1, &c);
        model pruned;
        prune_apply((model *)orig, &gs, &p, false, &pruned);
        for (int d = 0; d < D; d++)
            keep[d] = true;
        for (int64_t k = 0; k < c.n_removed; k++)
            keep[c.removed[k]] = false;
        /* exact in double, then the float32 forward pass */
        double *ref = ref_logits(orig, keep, tokens, 1, T), *rp = ref_logits(&pruned, NULL, tokens, 1, T);
        double ex = max_rel_diff_d(rp, ref, (size_t)T * V);
        float *a = logits_of(&pruned, 1, T, tokens);
        double e = max_row_diff(a, ref, NULL, T, V);
        if (ex > 1e-9 || e > 1e-5)
            fprintf(stderr, "    %s channel trial %d (%lld removed): pruned vs reference differ by %g (double), %g (forward)\n",
                    what, trial, (long long)c.n_removed, ex, e);
        CHECK(ex <= 1e-9);
        CHECK(e <= 1e-5);
        free(ref);
        free(rp);
        CHECK(pruned.cfg.dim == D - c.n_removed);
        free(a);
        free(tokens);
        free(c.removed);
        model_free(&pruned);
        prune_plan_free(&p);
    }
    free(keep);
    group_set_free(&gs);
}

static void reload_fixture(model *m, const void *arg) { prune_fixture_model(m, arg, 5); }

static void test_equivalence_fixtures(void)
{
    for (size_t i = 0; i < sizeof fixtures / sizeof *fixtures; i++) {
        model m;
        prune_fixture_model(&m, &fixtures[i], 5);
        /* the reference itself, all channels kept, is the forward pass */
        int T = 6, V = m.cfg.vocab;
        int *tokens = rand_tokens(T, V);
        double *ref = ref_logits(&m, NULL, tokens, 1, T);
        float *a = logits_of(&m, 1, T, tokens);
        CHECK(max_row_diff(a, ref, NULL, T, V) <= 1e-5);
        free(a);
        free(ref);
        free(tokens);

        check_masked_equivalence(&m, reload_fixture, &fixtures[i], PRUNE_BLOCK, 6, fixtures[i].name);
        check_masked_equivalence(&m, reload_fixture, &fixtures[i], PRUNE_LAYER, 3, fixtures[i].name);
        check_hidden_equivalence(&m, 4, fixtures[i].name);
        model_free(&m);
    }
}

static void reload_today(model *m, const void *arg)
{
    json_t *j = fixture_config_json(arg);
    fixture_json_model(m, j, 6);
    json_decref(j);
}

/* Today's models: Llama 3 (GQA, rope scaling), Qwen2 (q/k/v biases), Qwen3 (its
 * q_norm and k_norm stay whole when heads go, and go with their layer). */
static void test_equivalence_today(void)
{
    for (int i = 0; i < FIXTURE_TODAY_COUNT; i++) {
        model m;
        reload_today(&m, fixture_today[i]);
        check_masked_equivalence(&m, reload_today, fixture_today[i], PRUNE_BLOCK, 6, fixture_today[i]);
        check_masked_equivalence(&m, reload_today, fixture_today[i], PRUNE_LAYER, 3, fixture_today[i]);
        check_hidden_equivalence(&m, 4, fixture_today[i]);
        model_free(&m);
    }
}

static char *stories_path(void) { return path_join(check_data_dir(), "models/stories260K/stories260K.bin"); }

static void reload_stories(model *m, const void *arg)
{
    (void)arg;
    char *p = stories_path();
    model_load(m, p, NULL);
    free(p);
}

static void test_equivalence_stories260k(void)
{
    char *p = stories_path();
    if (access(p, R_OK) != 0) {
        fprintf(stderr, "    data missing: %s (set PARE_DATA)\n", p);
        CHECK(!"stories260K present");
        free(p);
        return;
    }
    model m;
    model_load(&m, p, NULL);
    check_masked_equivalence(&m, reload_stories, NULL, PRUNE_BLOCK, 4, "stories260K");
    check_masked_equivalence(&m, reload_stories, NULL, PRUNE_LAYER, 2, "stories260K");
    check_hidden_equivalence(&m, 3, "stories260K");
    model_free(&m);
    free(p);
}

/* ---- counts and the ratio rule ---- */

static void test_local_count(void)
{
    CHECK(prune_local_count(32, 128, 0.25) == 8);      /* LLaMA-7B heads */
    CHECK(prune_local_count(11008, 1, 0.25) == 2752);  /* its MLP */
    CHECK(prune_local_count(4096, 1, 0.2) == 820);     /* hidden: 3276 remain */
    CHECK(prune_local_count(32, 128, 0.2) == 6);       /* floor(820 / 128) */
    CHECK(prune_local_count(11008, 1, 0.2) == 2202);
    CHECK(prune_local_count(8, 512, 0.25) == 2);       /* Llama-3-8B kv units (n_rep 4) */
    CHECK(prune_local_count(10, 1, 0.3) == 3);
    CHECK(prune_local_count(10, 1, 0) == 0);
    CHECK(prune_local_count(4, 8, 0.8) == 3);          /* 6 of 32 channels remain: 26 / 8 */
    CHECK(prune_local_count(4, 8, 0.99) == 4);         /* none remain: unclamped */
}

/* The LLaMA groups written out by hand (as a check independent of
 * pare-discover, and cheap for a 7B config): per layer attn (q rows with the
 * n_rep query heads of a kv head, k and v rows, o columns, biases) and ffn (gate
 * and up rows, down columns); the hidden group; one layer group per block. */
static void add_member(group *g, char *name, int axis, int64_t stride, int64_t width)
{
    g->members = xrealloc(g->members, (size_t)(g->n_members + 1) * sizeof *g->members);
    g->members[g->n_members++] = (group_member){name, axis, 0, stride, width};
}

static group *add_group(group_set *gs, enum group_kind kind, int layer, int64_t units)
{
    gs->g = xrealloc(gs->g, (size_t)(gs->n + 1) * sizeof *gs->g);
    group *g = &gs->g[gs->n];
    memset(g, 0, sizeof *g);
    g->id = gs->n++;
    g->kind = kind;
    g->layer = layer;
    g->units = units;
    return g;
}

static char *lname(int l, const char *what) { return xasprintf("model.layers.%d.%s", l, what); }

static void hand_groups(const model *m, group_set *gs)
{
    const model_config *c = &m->cfg;
    memset(gs, 0, sizeof *gs);
    model_fingerprint(m, gs->fingerprint);
    int64_t hd = c->head_dim, D = c->dim;
    for (int l = 0; l < c->n_layers; l++) {
        int64_t H = c->n_heads[l], KV = c->n_kv_heads[l], F = c->ffn_dim[l];
        if (H > 0) {
            int64_t w = H / KV * hd;
            group *g = add_group(gs, GROUP_ATTN, l, KV);
            add_member(g, lname(l, "self_attn.q_proj.weight"), 0, w, w);
            add_member(g, lname(l, "self_attn.k_proj.weight"), 0, hd, hd);
            add_member(g, lname(l, "self_attn.v_proj.weight"), 0, hd, hd);
            add_member(g, lname(l, "self_attn.o_proj.weight"), 1, w, w);
            if (c->qkv_bias) {
                add_member(g, lname(l, "self_attn.q_proj.bias"), 0, w, w);
                add_member(g, lname(l, "self_attn.k_proj.bias"), 0, hd, hd);
                add_member(g, lname(l, "self_attn.v_proj.bias"), 0, hd, hd);
            }
        }
        if (F > 0) {
            group *g = add_group(gs, GROUP_FFN, l, F);
            add_member(g, lname(l, "mlp.gate_proj.weight"), 0, 1, 1);
            add_member(g, lname(l, "mlp.up_proj.weight"), 0, 1, 1);
            add_member(g, lname(l, "mlp.down_proj.weight"), 1, 1, 1);
        }
    }
    group *g = add_group(gs, GROUP_HIDDEN, -1, D);
    add_member(g, xstrdup("model.embed_tokens.weight"), 1, 1, 1);
    for (int l = 0; l < c->n_layers; l++) {
        if (c->n_heads[l] > 0) {
            add_member(g, lname(l, "input_layernorm.weight"), 0, 1, 1);
            add_member(g, lname(l, "self_attn.q_proj.weight"), 1, 1, 1);
            add_member(g, lname(l, "self_attn.k_proj.weight"), 1, 1, 1);
            add_member(g, lname(l, "self_attn.v_proj.weight"), 1, 1, 1);
            add_member(g, lname(l, "self_attn.o_proj.weight"), 0, 1, 1);
        }
        if (c->ffn_dim[l] > 0) {
            add_member(g, lname(l, "post_attention_layernorm.weight"), 0, 1, 1);
            add_member(g, lname(l, "mlp.gate_proj.weight"), 1, 1, 1);
            add_member(g, lname(l, "mlp.up_proj.weight"), 1, 1, 1);
            add_member(g, lname(l, "mlp.down_proj.weight"), 0, 1, 1);
        }
    }
    add_member(g, xstrdup("model.norm.weight"), 0, 1, 1);
    if (!c->tied)
        add_member(g, xstrdup("lm_head.weight"), 1, 1, 1);
    for (int l = 0; l < c->n_layers; l++) {
        g = add_group(gs, GROUP_LAYER, l, 1);
        add_member(g, lname(l, "mlp.gate_proj.weight"), 0, c->ffn_dim[l], c->ffn_dim[l]);
    }
}

static void test_paper_counts(void)
{
    char *p = path_join(check_data_dir(), "configs/llama-7b.json");
    model m;
    model_load(&m, p, NULL);
    CHECK(config_param_count(&m.cfg) == 6738415616LL);
    group_set gs;
    hand_groups(&m, &gs);
    prune_options o = {.mode = PRUNE_BLOCK, .ratio = 0.25, .target_params = -1, .first_layer = 4, .last_layer = 29,
                       .aggregate = PRUNE_AGG_SUM};
    prune_plan plan;
    prune_plan_make(&plan, &m, &gs, "groups", "groups", &o);
    CHECK(config_param_count(&plan.after) == 5422977024LL);
    CHECK(plan.after.n_heads[4] == 24 && plan.after.ffn_dim[29] == 8256 && plan.after.n_heads[30] == 32);
    prune_plan_free(&plan);
    o.mode = PRUNE_CHANNEL;
    o.ratio = 0.2;
    o.first_layer = o.last_layer = -1;
    prune_plan_make(&plan, &m, &gs, "groups", "groups", &o);
    CHECK(config_param_count(&plan.after) == 5389416396LL);
    CHECK(plan.after.dim == 3276);
    prune_plan_free(&plan);
    /* the default layers for 32: 4-29 */
    o.mode = PRUNE_BLOCK;
    o.ratio = 0.25;
    prune_plan_make(&plan, &m, &gs, "groups", "groups", &o);
    CHECK(plan.first_layer == 4 && plan.last_layer == 29);
    CHECK(config_param_count(&plan.after) == 5422977024LL);
    prune_plan_free(&plan);
    /* GQA: Llama-3-8B (8 kv heads of 4 query heads): 2 kv units and 3584 of 14336
     * MLP channels go per layer at 0.25 on layers 4-29 (more_results in LLM-Pruner) */
    {
        prune_fixture f3 = {"llama-3-8b", 4096, 1, 128256, 128, {32}, {8}, {14336}, false, false, ROPE_HALF};
        model_config c3;
        prune_fixture_config(&c3, &f3); /* one layer, widened to 32 below */
        c3.n_layers = 32;
        c3.n_heads = xrealloc(c3.n_heads, 32 * sizeof(int));
        c3.n_kv_heads = xrealloc(c3.n_kv_heads, 32 * sizeof(int));
        c3.ffn_dim = xrealloc(c3.ffn_dim, 32 * sizeof(int));
        for (int l = 0; l < 32; l++) {
            c3.n_heads[l] = 32;
            c3.n_kv_heads[l] = 8;
            c3.ffn_dim[l] = 14336;
        }
        model m3 = {0};
        config_copy(&m3.cfg, &c3);
        m3.source = xstrdup("llama-3-8b");
        group_set g3;
        hand_groups(&m3, &g3);
        CHECK(config_param_count(&c3) == 8030261248LL);
        o.mode = PRUNE_BLOCK;
        o.ratio = 0.25;
        o.first_layer = 4;
        o.last_layer = 29;
        prune_plan_make(&plan, &m3, &g3, "groups", "groups", &o);
        CHECK(plan.after.n_kv_heads[4] == 6 && plan.after.n_heads[4] == 24 && plan.after.ffn_dim[4] == 10752);
        CHECK(config_param_count(&plan.after) == 6612586496LL);
        prune_plan_free(&plan);
        group_set_free(&g3);
        model_free(&m3);
        config_free(&c3);
    }
    /* MACs: per layer and the LM head */
    int64_t T = 128, D = 4096, F = 11008;
    CHECK(prune_macs(&m.cfg, 128) == 32 * (T * (4 * D * D + 3 * D * F) + 2 * 32 * T * T * 128) + T * D * 32000);
    group_set_free(&gs);
    model_free(&m);
    free(p);
}

/* ---- importance ---- */

static void test_magnitude_importance(void)
{
    model m;
    prune_fixture_model(&m, &fixtures[2], 3); /* GQA, 4 query heads per kv head, biases */
    group_set gs;
    groups_discover(&m, GROUP_KIND_ALL, &gs);
    const model_config *c = &m.cfg;
    int D = c->dim, hd = c->head_dim, H = c->n_heads[1], KV = c->n_kv_heads[1], rep = H / KV, F = c->ffn_dim[1];
    const layer_weights *w = &m.layers[1];

    const group *ga = &gs.g[find_group(&gs, GROUP_ATTN, 1)];
    double *imp = xmalloc((size_t)ga->units * sizeof *imp);
    prune_importance(&m, NULL, ga, PRUNE_CRIT_L1, PRUNE_AGG_SUM, 0, "test", imp);
    for (int u = 0; u < KV; u++) {
        double s = 0;
        for (int r = u * rep * hd; r < (u + 1) * rep * hd; r++) {
            for (int d = 0; d < D; d++)
                s += fabs(F32(w->wq)[(size_t)r * D + d]) + fabs(F32(w->wo)[(size_t)d * H * hd + r]);
            s += fabs(F32(w->bq)[r]);
        }
        for (int r = u * hd; r < (u + 1) * hd; r++) {
            for (int d = 0; d < D; d++)
                s += fabs(F32(w->wk)[(size_t)r * D + d]) + fabs(F32(w->wv)[(size_t)r * D + d]);
            s += fabs(F32(w->bk)[r]) + fabs(F32(w->bv)[r]);
        }
        CHECK_CLOSE(imp[u], s, 1e-9);
    }
    free(imp);

    const group *gf = &gs.g[find_group(&gs, GROUP_FFN, 1)];
    imp = xmalloc((size_t)gf->units * sizeof *imp);
    double *mx = xmalloc((size_t)gf->units * sizeof *mx), *first = xmalloc((size_t)gf->units * sizeof *first);
    prune_importance(&m, NULL, gf, PRUNE_CRIT_L2, PRUNE_AGG_SUM, 0, "test", imp);
    prune_importance(&m, NULL, gf, PRUNE_CRIT_L2, PRUNE_AGG_MAX, 0, "test", mx);
    prune_importance(&m, NULL, gf, PRUNE_CRIT_L2, PRUNE_AGG_FIRST, 0, "test", first);
    for (int u = 0; u < F; u++) {
        double sg = 0, su = 0, sd = 0;
        for (int d = 0; d < D; d++) {
            sg += (double)F32(w->w_gate)[(size_t)u * D + d] * F32(w->w_gate)[(size_t)u * D + d];
            su += (double)F32(w->w_up)[(size_t)u * D + d] * F32(w->w_up)[(size_t)u * D + d];
            sd += (double)F32(w->w_down)[(size_t)d * F + u] * F32(w->w_down)[(size_t)d * F + u];
        }
        CHECK_CLOSE(imp[u], sg + su + sd, 1e-9);
        CHECK_CLOSE(mx[u], fmax(sg, fmax(su, sd)), 1e-9);
        CHECK_CLOSE(first[u], sg, 1e-9);
    }
    free(imp);
    free(mx);
    free(first);

    /* the hidden group: one value per channel of a norm */
    const group *gh = &gs.g[find_group(&gs, GROUP_HIDDEN, -1)];
    imp = xmalloc((size_t)gh->units * sizeof *imp);
    prune_importance(&m, NULL, gh, PRUNE_CRIT_L1, PRUNE_AGG_SUM, 0, "test", imp);
    double s0 = 0;
    for (int k = 0; k < gh->n_members; k++) {
        const tensor *t = model_tensor(&m, gh->members[k].tensor);
        int axis = gh->members[k].axis;
        int64_t cols = t->ndim == 2 ? t->shape[1] : 1;
        for (int64_t i = 0; i < (axis == 0 ? cols : t->shape[0]); i++)
            s0 += fabs(axis == 0 ? tensor_f32(t)[i] : tensor_f32(t)[i * cols]);
    }
    CHECK_CLOSE(imp[0], s0, 1e-9);
    free(imp);
    group_set_free(&gs);
    model_free(&m);
}

static void test_aggregates_and_stats(void)
{
    group_member mem[3] = {{"a", 0, 0, 1, 1}, {"b", 0, 0, 1, 1}, {"c", 0, 0, 1, 1}};
    float vals[6] = {1, 2, 3, 4, 5, 0.5f}; /* (3 members, 2 units) */
    group_stat st = {"element1", vals};
    group g = {.id = 3, .kind = GROUP_FFN, .layer = 0, .units = 2, .n_members = 3, .members = mem,
               .n_stats = 1, .stats = &st};
    model m = {0};
    double imp[2];
    prune_importance(&m, NULL, &g, PRUNE_CRIT_ELEMENT1, PRUNE_AGG_SUM, 0, "t", imp);
    CHECK(imp[0] == 9 && imp[1] == 6.5);
    prune_importance(&m, NULL, &g, PRUNE_CRIT_ELEMENT1, PRUNE_AGG_MEAN, 0, "t", imp);
    CHECK_CLOSE(imp[0], 3, 1e-12);
    CHECK_CLOSE(imp[1], 6.5 / 3, 1e-12);
    prune_importance(&m, NULL, &g, PRUNE_CRIT_ELEMENT1, PRUNE_AGG_MAX, 0, "t", imp);
    CHECK(imp[0] == 5 && imp[1] == 4);
    prune_importance(&m, NULL, &g, PRUNE_CRIT_ELEMENT1, PRUNE_AGG_PROD, 0, "t", imp);
    CHECK(imp[0] == 15 && imp[1] == 4);
    prune_importance(&m, NULL, &g, PRUNE_CRIT_ELEMENT1, PRUNE_AGG_FIRST, 0, "t", imp);
    CHECK(imp[0] == 1 && imp[1] == 2);
    /* random: deterministic in (seed, group id, unit), in [0, 1) */
    double r1[2], r2[2], r3[2];
    prune_importance(&m, NULL, &g, PRUNE_CRIT_RANDOM, PRUNE_AGG_SUM, 42, "t", r1);
    prune_importance(&m, NULL, &g, PRUNE_CRIT_RANDOM, PRUNE_AGG_SUM, 42, "t", r2);
    prune_importance(&m, NULL, &g, PRUNE_CRIT_RANDOM, PRUNE_AGG_SUM, 43, "t", r3);
    CHECK(r1[0] == r2[0] && r1[1] == r2[1] && r1[0] != r1[1] && r1[0] != r3[0]);
    CHECK(r1[0] >= 0 && r1[0] < 1 && r1[1] >= 0 && r1[1] < 1);
}

/* ---- plans ---- */

static void plan_for(prune_plan *p, const model *m, const group_set *gs, const prune_options *o)
{
    prune_plan_make(p, m, gs, "groups", "test", o);
}

static prune_options opts(enum prune_mode mode, double ratio)
{
    return (prune_options){.mode = mode, .ratio = ratio, .target_params = -1, .first_layer = -1, .last_layer = -1,
                           .aggregate = PRUNE_AGG_SUM, .criterion = PRUNE_CRIT_L2, .seed = 42};
}

/* The same over layers first..last. */
static prune_options opts_range(enum prune_mode mode, double ratio, int first, int last)
{
    prune_options o = opts(mode, ratio);
    o.first_layer = first;
    o.last_layer = last;
    return o;
}

static void test_local_plan(void)
{
    model m;
    prune_fixture_model(&m, &fixtures[1], 9); /* GQA 2, 3 layers, F 40 */
    group_set gs;
    groups_discover(&m, GROUP_KIND_ALL, &gs);
    prune_options o = opts_range(PRUNE_BLOCK, 0.5, 0, 2);
    prune_plan p;
    plan_for(&p, &m, &gs, &o);
    CHECK(p.n == 6);
    for (int i = 0; i < p.n; i++) {
        const group *g = &gs.g[p.c[i].group];
        CHECK(p.c[i].n_removed == g->units / 2);
        /* the removed are the least important, ascending indices */
        double worst_removed = -1, best_kept = 1e300;
        for (int64_t u = 0; u < g->units; u++) {
            bool rm = false;
            for (int64_t k = 0; k < p.c[i].n_removed; k++)
                rm |= p.c[i].removed[k] == u;
            if (rm)
                worst_removed = fmax(worst_removed, p.imp[i][u]);
            else
                best_kept = fmin(best_kept, p.imp[i][u]);
        }
        CHECK(worst_removed <= best_kept);
        for (int64_t k = 1; k < p.c[i].n_removed; k++)
            CHECK(p.c[i].removed[k - 1] < p.c[i].removed[k]);
    }
    CHECK(p.after.n_heads[1] == 2 && p.after.n_kv_heads[1] == 1 && p.after.ffn_dim[2] == 20);

    /* survivors keep their order: the pruned gate rows are the kept rows in order */
    model src, out;
    prune_fixture_model(&src, &fixtures[1], 9);
    prune_apply(&src, &gs, &p, false, &out);
    int gi = find_group(&gs, GROUP_FFN, 0), pi = -1;
    for (int i = 0; i < p.n; i++)
        pi = p.c[i].group == gi ? i : pi;
    const tensor *a = model_tensor(&src, "model.layers.0.mlp.gate_proj.weight");
    const tensor *b = model_tensor(&out, "model.layers.0.mlp.gate_proj.weight");
    int64_t r = 0, k = 0, D = a->shape[1];
    bool same = b->shape[0] == a->shape[0] - p.c[pi].n_removed;
    for (int64_t u = 0; u < a->shape[0] && same; u++) {
        if (k < p.c[pi].n_removed && p.c[pi].removed[k] == u) {
            k++;
            continue;
        }
        same = !memcmp(tensor_f32(a) + u * D, tensor_f32(b) + r * D, (size_t)D * sizeof(float));
        r++;
    }
    CHECK(same);
    model_free(&src);
    model_free(&out);
    prune_plan_free(&p);

    /* clamping: a ratio that would empty every group keeps one unit each ... */
    o.ratio = 0.999;
    plan_for(&p, &m, &gs, &o);
    for (int i = 0; i < p.n; i++)
        CHECK(p.c[i].n_removed == gs.g[p.c[i].group].units - 1);
    prune_plan_free(&p);
    /* ... unless asked: then the sub-blocks go, with their norms */
    o.allow_empty = true;
    plan_for(&p, &m, &gs, &o);
    CHECK(p.after.n_heads[0] == 0 && p.after.n_kv_heads[0] == 0 && p.after.ffn_dim[2] == 0);
    prune_fixture_model(&src, &fixtures[1], 9);
    prune_apply(&src, &gs, &p, true, &out);
    CHECK(!model_tensor(&out, "model.layers.0.input_layernorm.weight"));
    CHECK(!model_tensor(&out, "model.layers.0.post_attention_layernorm.weight"));
    CHECK(config_param_count(&out.cfg) == m.cfg.vocab * (int64_t)m.cfg.dim * 2 + m.cfg.dim);
    model_free(&src);
    model_free(&out);
    prune_plan_free(&p);

    /* ratio 0 removes nothing */
    o = opts(PRUNE_BLOCK, 0);
    plan_for(&p, &m, &gs, &o);
    CHECK(config_param_count(&p.after) == config_param_count(&m.cfg));
    prune_plan_free(&p);
    group_set_free(&gs);
    model_free(&m);
}

static void test_global_and_layer_plans(void)
{
    model m;
    prune_fixture_model(&m, &fixtures[0], 11); /* MHA, 3 layers of 4 heads, F 48 */
    group_set gs;
    groups_discover(&m, GROUP_KIND_ALL, &gs);
    prune_options o = opts_range(PRUNE_BLOCK, 0.5, 0, 2);
    o.select = PRUNE_SELECT_GLOBAL;
    prune_plan p;
    plan_for(&p, &m, &gs, &o);
    int64_t heads = 0, ch = 0;
    for (int l = 0; l < 3; l++) {
        heads += 4 - p.after.n_heads[l];
        ch += 48 - p.after.ffn_dim[l];
        CHECK(p.after.n_heads[l] >= 1 && p.after.ffn_dim[l] >= 1);
    }
    CHECK(heads == 6 && ch == 72); /* the totals the local rule removes */
    /* the removed of a kind are the least important across layers */
    double worst = -1, best = 1e300;
    for (int i = 0; i < p.n; i++) {
        const group *g = &gs.g[p.c[i].group];
        if (g->kind != GROUP_FFN)
            continue;
        for (int64_t u = 0; u < g->units; u++) {
            bool rm = false;
            for (int64_t k = 0; k < p.c[i].n_removed; k++)
                rm |= p.c[i].removed[k] == u;
            if (rm)
                worst = fmax(worst, p.imp[i][u]);
            else
                best = fmin(best, p.imp[i][u]);
        }
    }
    CHECK(worst <= best);
    prune_plan_free(&p);

    /* layer mode: floor(3 * 0.7) = 2 layers go, the least important, renumbered */
    o = opts_range(PRUNE_LAYER, 0.7, 0, 2);
    plan_for(&p, &m, &gs, &o);
    CHECK(p.after.n_layers == 1);
    int kept = -1;
    for (int l = 0; l < 3; l++)
        if (p.layer_map[l] >= 0)
            kept = l;
    for (int i = 0; i < p.n; i++)
        if (gs.g[p.c[i].group].layer != kept)
            CHECK(p.imp[i][0] <= p.imp[kept][0]);
    model src, out;
    prune_fixture_model(&src, &fixtures[0], 11);
    prune_apply(&src, &gs, &p, false, &out);
    char name[64];
    snprintf(name, sizeof name, "model.layers.%d.mlp.up_proj.weight", kept);
    const tensor *a = model_tensor(&src, name), *b = model_tensor(&out, "model.layers.0.mlp.up_proj.weight");
    CHECK(a && b && !memcmp(a->data, b->data, (size_t)a->numel * sizeof(float)));
    CHECK(!model_tensor(&out, "model.layers.1.mlp.up_proj.weight"));
    model_free(&src);
    model_free(&out);
    prune_plan_free(&p);
    group_set_free(&gs);
    model_free(&m);
}

static void test_target_params(void)
{
    model m;
    prune_fixture_model(&m, &fixtures[1], 4);
    group_set gs;
    groups_discover(&m, GROUP_KIND_ALL, &gs);
    int64_t total = config_param_count(&m.cfg);
    double targets[] = {0.05, 0.1, 0.2};
    enum prune_mode modes[] = {PRUNE_BLOCK, PRUNE_CHANNEL, PRUNE_LAYER};
    for (int mi = 0; mi < 3; mi++)
        for (int ti = 0; ti < 3; ti++) {
            prune_options o = opts(modes[mi], -1);
            o.target_params = targets[ti];
            if (modes[mi] != PRUNE_CHANNEL) {
                o.first_layer = 0;
                o.last_layer = 2;
            }
            prune_plan p;
            plan_for(&p, &m, &gs, &o);
            double got = 1 - (double)config_param_count(&p.after) / (double)total;
            CHECK(got >= targets[ti]);
            /* no ratio on a grid of 1/1000 below the one found reaches the target */
            for (int k = 0; k < 1000 && k / 1000.0 < p.ratio - 1e-5; k++) {
                double r = k / 1000.0;
                prune_plan q;
                o.target_params = -1;
                o.ratio = r;
                plan_for(&q, &m, &gs, &o);
                double f = 1 - (double)config_param_count(&q.after) / (double)total;
                if (f >= targets[ti]) {
                    fprintf(stderr, "    mode %d target %g: ratio %g found, %g reaches it\n", mi, targets[ti],
                            p.ratio, r);
                    CHECK(f < targets[ti]);
                    k = 1000;
                }
                prune_plan_free(&q);
                o.target_params = targets[ti];
            }
            prune_plan_free(&p);
        }
    group_set_free(&gs);
    model_free(&m);
}

/* ---- scores streams ---- */


typedef struct {
    const model *m;
    const group_set *gs;
    const char *kind;
    prune_options o;
} plan_call;

static void make_plan(void *arg)
{
    plan_call *c = arg;
    prune_plan p;
    prune_plan_make(&p, c->m, c->gs, c->kind, "scores.pare", &c->o);
}

/* Adaptive selection (FLAP's AL-AM): every unit's importance standardised within
 * its group (z, checked against a two-pass formula here), the lowest z go across
 * attention and MLP while the removed parameters come nearer to R of the units'
 * parameters; one more unit would overshoot by more than it undershoots. */
static void test_adaptive_plan(void)
{
    model m;
    prune_fixture_model(&m, &fixtures[0], 11); /* MHA, 3 layers of 4 heads, F 48 */
    group_set gs;
    groups_discover(&m, GROUP_KIND_ALL, &gs);
    prune_options o = opts_range(PRUNE_BLOCK, 0.3, 0, 2);
    o.select = PRUNE_SELECT_ADAPTIVE;
    prune_plan p;
    plan_for(&p, &m, &gs, &o);
    double total = 0, removed = 0, z_removed = -1e300, z_kept = 1e300, next_cost = 0;
    for (int i = 0; i < p.n; i++) {
        const group *g = &gs.g[p.c[i].group];
        double mean = 0, var = 0;
        for (int64_t u = 0; u < g->units; u++)
            mean += p.imp[i][u] / (double)g->units;
        for (int64_t u = 0; u < g->units; u++)
            var += (p.imp[i][u] - mean) * (p.imp[i][u] - mean) / (double)(g->units - 1);
        double z[64];
        prune_standardise(p.imp[i], g->units, z);
        for (int64_t u = 0; u < g->units; u++) {
            CHECK_CLOSE(z[u], (p.imp[i][u] - mean) / sqrt(var), 1e-12);
            bool rm = false;
            for (int64_t k = 0; k < p.c[i].n_removed; k++)
                rm |= p.c[i].removed[k] == u;
            if (rm)
                z_removed = fmax(z_removed, z[u]);
            else if (z[u] < z_kept) {
                z_kept = z[u];
                next_cost = (double)g->unit_params;
            }
        }
        total += (double)g->units * (double)g->unit_params;
        removed += (double)p.c[i].n_removed * (double)g->unit_params;
    }
    CHECK(z_removed <= z_kept);
    CHECK(removed <= 0.3 * total + 0.5 * next_cost && removed + next_cost >= 0.3 * total - 1e-9);
    json_t *prov = prune_provenance(&p, &gs, &m);
    CHECK(!strcmp(json_string_value(json_object_get(prov, "selection")), "adaptive"));
    json_decref(prov);
    prune_plan_free(&p);
    /* --target-params solves for the ratio as for the other selections */
    o.ratio = -1;
    o.target_params = 0.2;
    plan_for(&p, &m, &gs, &o);
    CHECK(1.0 - (double)config_param_count(&p.after) / (double)config_param_count(&p.before) >= 0.2);
    prune_plan_free(&p);
    /* it ranks attention and MLP together: block mode only */
    o = opts(PRUNE_LAYER, 0.3);
    o.select = PRUNE_SELECT_ADAPTIVE;
    plan_call call = {&m, &gs, "groups", o};
    CHECK(dies_with(make_plan, &call, "serves block mode only"));
    group_set_free(&gs);
    model_free(&m);
}


static void test_scores_stream(void)
{
    model m;
    prune_fixture_model(&m, &fixtures[1], 13);
    group_set gs;
    groups_discover(&m, GROUP_KIND_ALL, &gs);
    /* element1 and mix: made-up values with a known order; no vector */
    for (int i = 0; i < gs.n; i++) {
        group *g = &gs.g[i];
        g->n_stats = 2;
        g->stats = xcalloc(2, sizeof *g->stats);
        for (int s = 0; s < 2; s++) {
            g->stats[s].name = xstrdup(s ? "mix" : "element1");
            g->stats[s].values = xmalloc((size_t)g->n_members * (size_t)g->units * sizeof(float));
            for (int k = 0; k < g->n_members; k++)
                for (int64_t u = 0; u < g->units; u++) /* element1 favours high units, mix low ones */
                    g->stats[s].values[(size_t)k * g->units + u] = (float)(s ? g->units - u : u + 1) * (k + 1);
        }
    }
    char dir[] = "/tmp/pare-test-scores-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char *path = path_join(dir, "s.pare");
    char *argv[] = {"test_prune", NULL};
    groups_write(&gs, "scores", path, 1, argv);
    group_set rd;
    char kind[16];
    groups_read(&rd, path, kind);
    CHECK(!strcmp(kind, "scores"));

    /* default criterion for a scores stream: element1 -> the lowest units go */
    prune_options o = opts(PRUNE_BLOCK, 0.5);
    o.criterion = PRUNE_CRIT_DEFAULT;
    o.first_layer = 0;
    o.last_layer = 2;
    prune_plan p;
    prune_plan_make(&p, &m, &rd, kind, "scores.pare", &o);
    CHECK(!strcmp(prune_criterion_name(p.criterion), "element1"));
    for (int i = 0; i < p.n; i++)
        for (int64_t k = 0; k < p.c[i].n_removed; k++)
            CHECK(p.c[i].removed[k] == k);
    prune_plan_free(&p);
    /* mix -> the highest units go */
    o.criterion = PRUNE_CRIT_MIX;
    prune_plan_make(&p, &m, &rd, kind, "scores.pare", &o);
    for (int i = 0; i < p.n; i++) {
        int64_t U = rd.g[p.c[i].group].units;
        for (int64_t k = 0; k < p.c[i].n_removed; k++)
            CHECK(p.c[i].removed[k] == U - p.c[i].n_removed + k);
    }
    prune_plan_free(&p);
    /* l2 is not in the stream: computed from the weights, as for a groups stream */
    o.criterion = PRUNE_CRIT_L2;
    prune_plan_make(&p, &m, &rd, kind, "scores.pare", &o);
    prune_plan q;
    prune_plan_make(&q, &m, &gs, "groups", "groups.pare", &o);
    for (int i = 0; i < p.n; i++)
        CHECK(p.c[i].n_removed == q.c[i].n_removed &&
              !memcmp(p.c[i].removed, q.c[i].removed, (size_t)p.c[i].n_removed * sizeof(int64_t)));
    prune_plan_free(&p);
    prune_plan_free(&q);
    /* vector is missing */
    plan_call call = {&m, &rd, kind, o};
    call.o.criterion = PRUNE_CRIT_VECTOR;
    CHECK(dies_with(make_plan, &call, "scores.pare: group 0 has no 'vector' statistic"));
    /* the other errors of a plan */
    call.o.criterion = PRUNE_CRIT_L2;
    call.o.last_layer = 3;
    CHECK(dies_with(make_plan, &call, "layers 0-3 are outside the model's layers 0-2"));
    call.o.last_layer = 2;
    call.o.ratio = -1;
    call.o.target_params = 0.99;
    CHECK(dies_with(make_plan, &call, "can remove at most"));

    unlink(path);
    rmdir(dir);
    free(path);
    group_set_free(&rd);
    group_set_free(&gs);
    model_free(&m);
}

/* ---- provenance and checkpoints ---- */

static void test_provenance_replay_and_checkpoint(void)
{
    model m;
    prune_fixture_model(&m, &fixtures[3], 21); /* heterogeneous, already pruned */
    group_set gs;
    groups_discover(&m, GROUP_KIND_ALL, &gs);
    prune_options o = opts_range(PRUNE_BLOCK, 0.5, 0, 3);
    prune_plan p;
    plan_for(&p, &m, &gs, &o);
    json_t *prov = prune_provenance(&p, &gs, &m);
    CHECK(!strcmp(json_string_value(json_object_get(prov, "base_fingerprint")), gs.fingerprint));
    CHECK(!strcmp(json_string_value(json_object_get(prov, "criterion")), "l2"));
    CHECK(json_integer_value(json_object_get(prov, "params_after")) == config_param_count(&p.after));

    /* replay: the provenance's lists give the same model */
    json_t *groups = json_object_get(prov, "groups");
    int n = (int)json_array_size(groups);
    prune_choice *c = xcalloc((size_t)n, sizeof *c);
    for (int i = 0; i < n; i++) {
        json_t *g = json_array_get(groups, (size_t)i), *rm = json_object_get(g, "removed");
        c[i].group = (int)json_integer_value(json_object_get(g, "id")); /* ids are indices here */
        c[i].n_removed = (int64_t)json_array_size(rm);
        c[i].removed = xmalloc((size_t)(c[i].n_removed + 1) * sizeof(int64_t));
        for (int64_t k = 0; k < c[i].n_removed; k++)
            c[i].removed[k] = json_integer_value(json_array_get(rm, (size_t)k));
    }
    prune_plan q;
    prune_plan_manual(&q, &m, &gs, PRUNE_BLOCK, n, c);
    model a, b;
    prune_apply(&m, &gs, &p, false, &a);
    prune_apply(&m, &gs, &q, true, &b); /* lazy: the matrices sliced when asked */
    CHECK(b.values && !b.layers[0].slot[LW_Q]->data);
    char fa[17], fb[17];
    model_fingerprint(&a, fa);
    model_fingerprint(&b, fb);
    CHECK(!strcmp(fa, fb));

    /* the checkpoint loads back to the same model, provenance included */
    char dir[] = "/tmp/pare-test-prune-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char *path = path_join(dir, "p.ckpt");
    char *argv[] = {"test_prune", NULL};
    checkpoint_write(&a, path, 1, argv, prov);
    model r;
    model_load(&r, path, NULL);
    model_fingerprint(&r, fb);
    CHECK(!strcmp(fa, fb));
    CHECK(r.provenance && json_equal(json_object_get(r.provenance, "groups"), groups));
    CHECK(r.cfg.n_heads[2] == 0 && r.cfg.ffn_dim[1] == 0);
    /* the lazy model writes the same bytes, in bf16 too */
    char *path2 = path_join(dir, "q.ckpt");
    for (int half = 0; half < 2; half++) {
        if (half) {
            model_set_dtype(&a, DTYPE_BF16);
            model_set_dtype(&b, DTYPE_BF16);
        }
        checkpoint_write(&a, path, 1, argv, prov);
        checkpoint_write(&b, path2, 1, argv, prov);
        size_t na, nb;
        char *ba = read_whole_file(path, &na), *bb = read_whole_file(path2, &nb);
        CHECK(na == nb && !memcmp(ba, bb, na));
        free(ba);
        free(bb);
    }
    CHECK(!b.layers[0].slot[LW_Q]->data);
    unlink(path);
    unlink(path2);
    rmdir(dir);
    free(path);
    free(path2);
    model_free(&r);
    model_free(&a);
    model_free(&b);
    prune_plan_free(&q);
    free_choices(c, n);
    json_decref(prov);
    prune_plan_free(&p);
    group_set_free(&gs);
    model_free(&m);
}

/* ---- the pass before writing a pruned model ---- */

static struct {
    model *src, *out;
} g_scan_call;

static void scan_both(void *arg)
{
    (void)arg;
    prune_scan(g_scan_call.src, g_scan_call.out, true, true);
}

/* prune_scan against fingerprints computed on their own: the source's (whose
 * values it checks) and the lazily pruned model's, the same as the model pruned
 * whole; block mode keeps the source's name order, layer mode renumbers layers
 * (layers.10 sorts before layers.2) and so takes slices out of it. */
static void test_prune_scan(void)
{
    model m;
    prune_fixture_model(&m, &fixtures[0], 11); /* MHA, 3 layers of 4 heads, F 48 */
    group_set gs;
    groups_discover(&m, GROUP_KIND_ALL, &gs);
    char want_src[17], want[17];
    model_fingerprint(&m, want_src);
    for (int mode = 0; mode < 2; mode++) {
        prune_options o = mode ? opts(PRUNE_LAYER, 0.34) : opts(PRUNE_BLOCK, 0.5);
        prune_plan p;
        plan_for(&p, &m, &gs, &o);
        model whole, lazy;
        prune_apply(&m, &gs, &p, false, &whole);
        prune_apply(&m, &gs, &p, true, &lazy);
        model_fingerprint(&whole, want);
        CHECK(lazy.fingerprint[0] == 0); /* its matrices have no values yet */
        m.fingerprint[0] = 0;
        prune_scan(&m, &lazy, true, true);
        CHECK(!strcmp(lazy.fingerprint, want));
        CHECK(!strcmp(m.fingerprint, want_src));
        /* the source alone, for an output that carries no fingerprint */
        m.fingerprint[0] = lazy.fingerprint[0] = 0;
        prune_scan(&m, &lazy, true, false);
        CHECK(!strcmp(m.fingerprint, want_src) && lazy.fingerprint[0] == 0);
        /* the pruned model's only: the source as it was */
        prune_scan(&m, &lazy, false, true);
        CHECK(!strcmp(lazy.fingerprint, want));
        /* a non-finite value of the source is refused, in the first tensor or a later one */
        for (int k = 0; k < 2; k++) {
            const char *name = k ? "model.layers.2.mlp.down_proj.weight" : m.tensors[0].name;
            tensor *t = model_tensor(&m, name);
            CHECK(t && t->dtype == DTYPE_F32);
            float old = tensor_f32(t)[7];
            tensor_f32(t)[7] = NAN;
            g_scan_call.src = &m;
            g_scan_call.out = &lazy;
            CHECK(dies_with(scan_both, NULL, name, "has a non-finite value (nan) at index 7"));
            tensor_f32(t)[7] = old;
        }
        model_free(&whole);
        model_free(&lazy);
        prune_plan_free(&p);
    }
    group_set_free(&gs);
    model_free(&m);
}

int main(void)
{
    TEST(test_local_count);
    TEST(test_paper_counts);
    TEST(test_aggregates_and_stats);
    TEST(test_magnitude_importance);
    TEST(test_local_plan);
    TEST(test_global_and_layer_plans);
    TEST(test_adaptive_plan);
    TEST(test_target_params);
    TEST(test_scores_stream);
    TEST(test_provenance_replay_and_checkpoint);
    TEST(test_prune_scan);
    TEST(test_equivalence_fixtures);
    TEST(test_equivalence_today);
    TEST(test_equivalence_stories260k);
    return check_report();
}
