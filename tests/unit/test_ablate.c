/* test_ablate.c - ground-truth importance against physical removal: each unit's
 * "ablation" statistic (masking, ablate.c) equals the loss change of the model
 * with that unit cut out by prune_apply, measured here with a plain forward pass
 * (to float rounding); the weights come back bit for bit; a sample of units is
 * seeded, marked and gives the same values as the full run. Block Influence of
 * the first and last layers against hidden states obtained without the cut-model
 * trick ablate.c uses: the embedding rows, and the final residual of models with
 * layers physically removed. On a random GQA model with biases and on
 * stories260K. Spearman's rho against the textbook 1 - 6 sum d^2 / (n (n^2 - 1))
 * and a hand-computed case with ties; the automatic recipe's winner has the
 * lowest loss of its candidates and is the plan its criterion and selection
 * give directly.
 *
 * Letters: S samples, T tokens, N = S*T rows, D hidden, U units. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "check.h"
#include "compute/forward.h"
#include "format/model_load.h"
#include "model/model.h"
#include "prune/ablate.h"
#include "prune/groups.h"
#include "prune/prune.h"
#include "prune/rank.h"
#include "prune/recipe.h"
#include "text/calib.h"
#include "text/tokenizer.h"

static void random_model(model *m)
{
    static int H[3] = {4, 4, 4}, KV[3] = {2, 2, 2}, F[3] = {12, 20, 16};
    model_config c = {0};
    snprintf(c.model_type, sizeof c.model_type, "llama");
    c.dim = 16;
    c.n_layers = 3;
    c.vocab = 40;
    c.head_dim = 4;
    c.max_seq = 64;
    c.n_heads = H;
    c.n_kv_heads = KV;
    c.ffn_dim = F;
    c.norm_eps = 1e-5f;
    c.rope_theta = 10000;
    c.rope_style = ROPE_HALF;
    c.qkv_bias = c.o_bias = c.down_bias = true;
    c.bos_id = 1;
    c.eos_id = 2;
    model_init_random(m, &c, 7);
}

static void random_calib(calib *c, int V)
{
    int n = 300, *ids = xmalloc((size_t)n * sizeof *ids);
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        ids[i] = (int)(x % (uint64_t)V);
    }
    calib_from_ids(c, "random", ids, n, 4, 16, 3);
    free(ids);
}

/* Every weight of m, copied. */
static float **snapshot(const model *m)
{
    float **w = xmalloc((size_t)m->n_tensors * sizeof *w);
    for (int i = 0; i < m->n_tensors; i++) {
        size_t n = (size_t)m->tensors[i].shape[0] * (size_t)(m->tensors[i].ndim == 2 ? m->tensors[i].shape[1] : 1);
        w[i] = xmalloc(n * sizeof(float));
        memcpy(w[i], m->tensors[i].data, n * sizeof(float));
    }
    return w;
}

static bool same_weights(const model *m, float **w)
{
    bool same = true;
    for (int i = 0; i < m->n_tensors; i++) {
        size_t n = (size_t)m->tensors[i].shape[0] * (size_t)(m->tensors[i].ndim == 2 ? m->tensors[i].shape[1] : 1);
        same &= !memcmp(w[i], m->tensors[i].data, n * sizeof(float));
        free(w[i]);
    }
    free(w);
    return same;
}

/* The loss of m with exactly unit u of group gi removed physically. */
static double removed_loss(model *m, const group_set *gs, int gi, int64_t u, const calib *c)
{
    const group *g = &gs->g[gi];
    prune_choice ch = {.group = gi, .n_removed = 1, .removed = &u};
    prune_plan p;
    prune_plan_manual(&p, m, gs, g->kind == GROUP_LAYER ? PRUNE_LAYER : PRUNE_BLOCK, 1, &ch);
    model out;
    prune_apply(m, gs, &p, false, &out);
    double loss = ablate_loss(&out, c);
    model_free(&out);
    prune_plan_free(&p);
    return loss;
}

/* Every attn, ffn and layer unit of gs (all of them, or up to `most` per group)
 * against physical removal; returns the number compared. */
static int check_against_removal(model *m, group_set *gs, const calib *c, int most, double tol)
{
    double base = ablate_loss(m, c);
    int n = 0;
    for (int gi = 0; gi < gs->n; gi++) {
        const group *g = &gs->g[gi];
        if (g->kind == GROUP_HIDDEN)
            continue;
        const group_stat *st = group_find_stat(g, "ablation");
        CHECK(st != NULL);
        if (!st)
            continue;
        for (int64_t u = 0; u < g->units && u < most; u++) {
            double want = removed_loss(m, gs, gi, u, c) - base;
            for (int k = 0; k < g->n_members; k++) /* the same value in every member row */
                CHECK(st->values[k * g->units + u] == st->values[u]);
            CHECK_CLOSE(st->values[u], want, tol);
            n++;
        }
    }
    return n;
}

static void test_ablation_random_model(void)
{
    model m;
    random_model(&m);
    calib c;
    random_calib(&c, m.cfg.vocab);
    group_set gs;
    groups_discover(&m, GROUP_KIND_ALL, &gs);
    float **before = snapshot(&m);
    ablate_options o = {0};
    ablate_summary sum;
    ablate_run(&m, &c, &gs, &o, &sum);
    CHECK(same_weights(&m, before));
    CHECK_CLOSE(sum.base_loss, ablate_loss(&m, &c), 0);
    int64_t units = 0;
    for (int gi = 0; gi < gs.n; gi++)
        units += gs.g[gi].units;
    CHECK(sum.units == units && sum.passes == units + 1);
    CHECK(!group_find_stat(&gs.g[0], "ablated")); /* every unit: no sample marks */
    /* every head, channel and layer against the pruned model: float rounding */
    int n = check_against_removal(&m, &gs, &c, 1 << 30, 1e-6);
    CHECK(n == 3 * 2 + 12 + 20 + 16 + 3);

    /* a sample of 3 units per group: seeded, marked, the same values */
    group_set gs2;
    groups_discover(&m, GROUP_KIND_ALL, &gs2);
    o.per_group = 3;
    o.seed = 5;
    ablate_run(&m, &c, &gs2, &o, &sum);
    for (int gi = 0; gi < gs2.n; gi++) {
        const group *g = &gs2.g[gi];
        const group_stat *a = group_find_stat(g, "ablation"), *f = group_find_stat(g, "ablated");
        const group_stat *full = group_find_stat(&gs.g[gi], "ablation");
        if (g->units <= 3) {
            CHECK(f == NULL);
            continue;
        }
        CHECK(f != NULL);
        if (!f)
            continue;
        int marked = 0;
        for (int64_t u = 0; u < g->units; u++) {
            marked += f->values[u] == 1;
            CHECK(f->values[u] == 1 ? a->values[u] == full->values[u] : a->values[u] == 0);
        }
        CHECK(marked == 3);
    }
    /* the same seed draws the same sample, another seed another */
    group_set gs3;
    groups_discover(&m, GROUP_KIND_ALL, &gs3);
    ablate_run(&m, &c, &gs3, &o, &sum);
    int ffn = 0;
    while (gs2.g[ffn].kind != GROUP_FFN)
        ffn++;
    CHECK(!memcmp(group_find_stat(&gs2.g[ffn], "ablated")->values, group_find_stat(&gs3.g[ffn], "ablated")->values,
                  (size_t)gs2.g[ffn].units * sizeof(float)));
    group_set_free(&gs3);
    groups_discover(&m, GROUP_KIND_ALL, &gs3);
    o.seed = 6;
    ablate_run(&m, &c, &gs3, &o, &sum);
    CHECK(memcmp(group_find_stat(&gs2.g[ffn], "ablated")->values, group_find_stat(&gs3.g[ffn], "ablated")->values,
                 (size_t)gs2.g[ffn].units * sizeof(float)) != 0);
    group_set_free(&gs3);
    group_set_free(&gs2);
    group_set_free(&gs);
    calib_free(&c);
    model_free(&m);
}

/* The residual stream leaving the last layer of m over c's batch: (N, D). */
static float *final_residual(const model *m, const calib *c)
{
    int *tok, *tgt, S = calib_batch(c, 0, 1, &tok, &tgt);
    forward_state st;
    forward_state_init(&st, m, S, c->seq_len);
    model_forward(m, &st, tok);
    size_t n = (size_t)S * (size_t)c->seq_len * (size_t)m->cfg.dim;
    float *x = xmalloc(n * sizeof *x);
    memcpy(x, st.x, n * sizeof *x);
    forward_state_free(&st);
    free(tok);
    free(tgt);
    return x;
}

/* m without the layers of mask (bit l: remove layer l), physically. */
static void without_layers(model *m, const group_set *gs, unsigned mask, model *out)
{
    prune_choice ch[8];
    int64_t one = 0;
    int n = 0;
    for (int gi = 0; gi < gs->n; gi++)
        if (gs->g[gi].kind == GROUP_LAYER && (mask >> gs->g[gi].layer & 1))
            ch[n++] = (prune_choice){.group = gi, .n_removed = 1, .removed = &one};
    prune_plan p;
    prune_plan_manual(&p, m, gs, PRUNE_LAYER, n, ch);
    prune_apply(m, gs, &p, false, out);
    prune_plan_free(&p);
}

static double mean_cos_distance(const float *x, const float *y, int64_t N, int64_t D)
{
    double s = 0;
    for (int64_t i = 0; i < N; i++) {
        double xy = 0, xx = 0, yy = 0;
        for (int64_t d = 0; d < D; d++) {
            xy += (double)x[i * D + d] * y[i * D + d];
            xx += (double)x[i * D + d] * x[i * D + d];
            yy += (double)y[i * D + d] * y[i * D + d];
        }
        s += xy / sqrt(xx * yy);
    }
    return 1 - s / (double)N;
}

static void check_influence(model *m, const calib *c)
{
    group_set gs;
    groups_discover(m, GROUP_KIND_ALL, &gs);
    ablate_influence(m, c, &gs);
    int L = m->cfg.n_layers;
    int64_t D = m->cfg.dim, N = (int64_t)c->samples * c->seq_len;
    double bi[8] = {0};
    for (int gi = 0; gi < gs.n; gi++) {
        const group_stat *st = group_find_stat(&gs.g[gi], "influence");
        CHECK((st != NULL) == (gs.g[gi].kind == GROUP_LAYER));
        if (st) {
            bi[gs.g[gi].layer] = st->values[0];
            CHECK(st->values[0] >= 0 && st->values[0] <= 2);
        }
    }
    /* layer 0: its input is the embedding rows of the tokens, its output the
     * residual of the model with layers 1.. removed */
    const tensor *e = model_tensor(m, "model.embed_tokens.weight");
    int *tok, *tgt;
    calib_batch(c, 0, 1, &tok, &tgt);
    float *x0 = xmalloc((size_t)(N * D) * sizeof *x0);
    for (int64_t i = 0; i < N; i++)
        memcpy(x0 + i * D, tensor_f32(e) + (int64_t)tok[i] * D, (size_t)D * sizeof(float));
    model cut;
    without_layers(m, &gs, ((1u << L) - 1) & ~1u, &cut);
    float *x1 = final_residual(&cut, c);
    model_free(&cut);
    CHECK_CLOSE(bi[0], mean_cos_distance(x0, x1, N, D), 1e-5);
    /* the last layer: the full model's residual against the model without it */
    without_layers(m, &gs, 1u << (L - 1), &cut);
    float *xa = final_residual(&cut, c), *xb = final_residual(m, c);
    model_free(&cut);
    CHECK_CLOSE(bi[L - 1], mean_cos_distance(xa, xb, N, D), 1e-5);
    free(x0);
    free(x1);
    free(xa);
    free(xb);
    free(tok);
    free(tgt);
    group_set_free(&gs);
}

static void test_influence_random_model(void)
{
    model m;
    random_model(&m);
    calib c;
    random_calib(&c, m.cfg.vocab);
    check_influence(&m, &c);
    calib_free(&c);
    model_free(&m);
}

static void test_stories260k(void)
{
    char *dir = path_join(check_data_dir(), "models/stories260K");
    char *bin = path_join(dir, "stories260K.bin"), *tk = path_join(dir, "tok512.bin");
    char *text = path_join(check_data_dir(), "text/tinystories/tinystories_train_sample.txt");
    model m;
    model_load(&m, bin, tk);
    tokenizer *tok = tokenizer_load_file(tk);
    calib c;
    calib_load(&c, text, CALIB_AUTO, tok, 4, 32, 42);
    group_set gs;
    groups_discover(&m, GROUP_KIND_ALL, &gs);
    ablate_options o = {.per_group = 2, .seed = 1};
    ablate_summary sum;
    ablate_run(&m, &c, &gs, &o, &sum);
    /* sampled units only: compare those (and every layer) with the pruned model */
    double base = ablate_loss(&m, &c);
    int n = 0;
    for (int gi = 0; gi < gs.n; gi++) {
        const group *g = &gs.g[gi];
        const group_stat *a = group_find_stat(g, "ablation"), *f = group_find_stat(g, "ablated");
        if (g->kind == GROUP_HIDDEN)
            continue;
        for (int64_t u = 0; u < g->units; u++)
            if (!f || f->values[u] == 1) {
                CHECK_CLOSE(a->values[u], removed_loss(&m, &gs, gi, u, &c) - base, 1e-6);
                n++;
            }
    }
    CHECK(n == 5 * 2 + 5 * 2 + 5);
    check_influence(&m, &c);
    group_set_free(&gs);
    calib_free(&c);
    tokenizer_free(tok);
    model_free(&m);
    free(dir);
    free(bin);
    free(tk);
    free(text);
}

static void test_spearman(void)
{
    /* no ties: 1 - 6 sum d^2 / (n (n^2 - 1)) */
    double x[6] = {3.1, -2, 7, 0.5, 4, 10}, y[6] = {1, 2, 3, 4, 5, 6};
    double rx[6] = {3, 1, 5, 2, 4, 6}, d2 = 0;
    for (int i = 0; i < 6; i++)
        d2 += (rx[i] - y[i]) * (rx[i] - y[i]);
    CHECK_CLOSE(rank_spearman(x, y, 6), 1 - 6 * d2 / (6.0 * 35), 1e-12);
    /* ties: x ranks (1.5, 1.5, 3, 4), y ranks (1, 2, 3, 4): Pearson of the ranks
     * = 4.5 / sqrt(4.5 * 5) */
    double a[4] = {1, 1, 2, 3}, b[4] = {10, 20, 30, 40};
    CHECK_CLOSE(rank_spearman(a, b, 4), 4.5 / sqrt(4.5 * 5), 1e-12);
    CHECK_CLOSE(rank_spearman(b, b, 4), 1, 1e-12);
    double c[4] = {4, 3, 2, 1};
    CHECK_CLOSE(rank_spearman(c, b, 4), -1, 1e-12);
    CHECK(isnan(rank_spearman(a, b, 1)));
    double k[4] = {2, 2, 2, 2};
    CHECK(isnan(rank_spearman(k, b, 4)));
}

static void test_recipe(void)
{
    model m;
    random_model(&m);
    calib c, v;
    random_calib(&c, m.cfg.vocab);
    random_calib(&v, m.cfg.vocab);
    group_set gs;
    groups_discover(&m, GROUP_KIND_ALL, &gs);
    ablate_options ao = {0};
    ablate_summary sum;
    ablate_run(&m, &c, &gs, &ao, &sum);
    prune_options o = {.mode = PRUNE_BLOCK, .ratio = 0.4, .target_params = -1, .first_layer = 0, .last_layer = 2,
                       .aggregate = PRUNE_AGG_SUM, .seed = 42};
    prune_plan best;
    recipe_result r;
    recipe_auto(&m, &gs, "scores", "test", &o, &v, &best, &r);
    /* ablation, l1, l2, random (the stream has no other statistic) x 3 selections */
    CHECK(r.n == 12);
    for (int i = 0; i < r.n; i++)
        CHECK(r.c[r.best].loss <= r.c[i].loss);
    CHECK(best.criterion == r.c[r.best].criterion && best.select == r.c[r.best].select);
    o.criterion = r.c[r.best].criterion;
    o.select = r.c[r.best].select;
    prune_plan p;
    prune_plan_make(&p, &m, &gs, "scores", "test", &o);
    CHECK(p.n == best.n);
    for (int i = 0; i < p.n && i < best.n; i++)
        CHECK(p.c[i].n_removed == best.c[i].n_removed &&
              !memcmp(p.c[i].removed, best.c[i].removed, (size_t)p.c[i].n_removed * sizeof(int64_t)));
    model out;
    prune_apply(&m, &gs, &p, false, &out);
    CHECK(ablate_loss(&out, &v) == r.c[r.best].loss);
    json_t *j = recipe_to_json(&r);
    CHECK(json_array_size(json_object_get(j, "candidates")) == 12 &&
          json_integer_value(json_object_get(j, "winner")) == r.best);
    json_decref(j);
    model_free(&out);
    prune_plan_free(&p);
    prune_plan_free(&best);
    recipe_free(&r);
    group_set_free(&gs);
    calib_free(&c);
    calib_free(&v);
    model_free(&m);
}

int main(void)
{
    TEST(test_spearman);
    TEST(test_recipe);
    TEST(test_ablation_random_model);
    TEST(test_influence_random_model);
    TEST(test_stories260k);
    return check_report();
}
