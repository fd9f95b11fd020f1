/* test_discover.c - the generic dependency analysis on LLaMA and Qwen3 configs of every
 * shape (MHA, GQA, biases, tied and untied, heterogeneous pruned layers) and on a
 * toy architecture written only for this test, which shows that a new
 * architecture needs a description and no change to the analysis. Expected
 * slices are derived here from the shapes, independently of discover.c. */
#include <string.h>

#include "base/util.h"
#include "check.h"
#include "fixture.h"
#include "model/model.h"
#include "prune/graph.h"
#include "prune/groups.h"

static void make_config(model_config *c, int L, int D, int hd, const int *H, const int *KV, const int *F, bool tied,
                        bool bias)
{
    fixture_shape sh = {D, L, 50, hd, H, KV, F, tied, bias, false, false, ROPE_HALF};
    fixture_config(c, &sh);
}

static const group_member *member(const group *g, const char *tensor, int axis)
{
    for (int m = 0; m < g->n_members; m++)
        if (!strcmp(g->members[m].tensor, tensor) && g->members[m].axis == axis)
            return &g->members[m];
    return NULL;
}

static bool slice_is(const group_member *m, int64_t start, int64_t stride, int64_t width)
{
    return m && m->start == start && m->stride == stride && m->width == width;
}

static void check_llama(const model_config *c)
{
    model m;
    model_init_random(&m, c, 7);
    group_set gs;
    groups_discover(&m, GROUP_KIND_ALL, &gs);
    int64_t hidden_params = 0, total = config_param_count(c), layer_params = 0;
    int n_attn = 0, n_ffn = 0, n_hidden = 0, n_layer = 0;
    char name[128];
    for (int i = 0; i < gs.n; i++) {
        const group *g = &gs.g[i];
        CHECK(g->id == i);
        int l = g->layer, hd = c->head_dim;
        if (g->kind == GROUP_ATTN) {
            n_attn++;
            int rep = c->n_heads[l] / c->n_kv_heads[l];
            CHECK(g->units == c->n_kv_heads[l]);
            snprintf(name, sizeof name, "model.layers.%d.self_attn.q_proj.weight", l);
            CHECK(!strcmp(g->members[0].tensor, name)); /* the first member gives the channel count */
            CHECK(slice_is(member(g, name, 0), 0, rep * hd, rep * hd));
            snprintf(name, sizeof name, "model.layers.%d.self_attn.k_proj.weight", l);
            CHECK(slice_is(member(g, name, 0), 0, hd, hd));
            snprintf(name, sizeof name, "model.layers.%d.self_attn.v_proj.weight", l);
            CHECK(slice_is(member(g, name, 0), 0, hd, hd));
            snprintf(name, sizeof name, "model.layers.%d.self_attn.o_proj.weight", l);
            CHECK(slice_is(member(g, name, 1), 0, rep * hd, rep * hd));
            snprintf(name, sizeof name, "model.layers.%d.self_attn.k_proj.bias", l);
            CHECK(c->qkv_bias ? slice_is(member(g, name, 0), 0, hd, hd) : member(g, name, 0) == NULL);
            CHECK(g->n_members == (c->qkv_bias ? 7 : 4));
            int64_t per_unit = (int64_t)(2 * rep + 2) * hd * c->dim + (c->qkv_bias ? (rep + 2) * hd : 0);
            CHECK(g->unit_params == per_unit);
        } else if (g->kind == GROUP_FFN) {
            n_ffn++;
            CHECK(g->units == c->ffn_dim[l]);
            CHECK(g->n_members == 3);
            snprintf(name, sizeof name, "model.layers.%d.mlp.down_proj.weight", l);
            CHECK(slice_is(member(g, name, 1), 0, 1, 1));
            CHECK(g->unit_params == 3 * c->dim);
        } else if (g->kind == GROUP_HIDDEN) {
            n_hidden++;
            CHECK(g->units == c->dim && g->layer == -1);
            CHECK(slice_is(member(g, "model.embed_tokens.weight", 1), 0, 1, 1));
            CHECK(slice_is(member(g, "model.norm.weight", 0), 0, 1, 1));
            CHECK(c->tied ? member(g, "lm_head.weight", 1) == NULL : slice_is(member(g, "lm_head.weight", 1), 0, 1, 1));
            hidden_params = g->unit_params * g->units;
        } else {
            n_layer++;
            CHECK(g->units == 1);
            layer_params += g->unit_params;
            /* Qwen3's q_norm and k_norm (hd each, shared by the heads) go with their
             * layer, and with no group of heads or channels */
            snprintf(name, sizeof name, "model.layers.%d.self_attn.q_norm.weight", l);
            bool qk = model_archs[c->arch].qk_norm && c->n_heads[l] > 0;
            CHECK(qk ? slice_is(member(g, name, 0), 0, hd, hd) : member(g, name, 0) == NULL);
        }
    }
    int attn_layers = 0, ffn_layers = 0;
    for (int l = 0; l < c->n_layers; l++) {
        attn_layers += c->n_heads[l] > 0;
        ffn_layers += c->ffn_dim[l] > 0;
    }
    CHECK(n_attn == attn_layers && n_ffn == ffn_layers && n_hidden == 1);
    /* the layer groups hold every per-layer tensor; the rest is embedding, final
     * norm and head */
    int64_t outside = (int64_t)c->vocab * c->dim * (c->tied ? 1 : 2) + c->dim;
    CHECK(layer_params + outside == total);
    /* every LLaMA tensor but a bias (and Qwen3's per-head norms) has one axis along
     * the hidden size, so the hidden group covers every parameter except those */
    int64_t biases = 0;
    for (int l = 0; l < c->n_layers && c->qkv_bias; l++)
        biases += config_q_dim(c, l) + 2 * config_kv_dim(c, l);
    for (int l = 0; l < c->n_layers && model_archs[c->arch].qk_norm; l++)
        biases += c->n_heads[l] > 0 ? 2 * c->head_dim : 0;
    CHECK(hidden_params == total - biases);
    (void)n_layer;
    group_set_free(&gs);
    model_free(&m);
}

static void test_shapes(void)
{
    model_config c;
    int H1[] = {4, 4}, K1[] = {4, 4}, F1[] = {12, 12};
    make_config(&c, 2, 16, 4, H1, K1, F1, true, false); /* MHA, tied */
    check_llama(&c);
    config_free(&c);
    int H2[] = {8, 8, 8}, K2[] = {4, 4, 4}, F2[] = {10, 10, 10};
    make_config(&c, 3, 32, 4, H2, K2, F2, false, false); /* GQA 2 per kv, untied */
    check_llama(&c);
    config_free(&c);
    int H3[] = {8, 8}, K3[] = {2, 2}, F3[] = {6, 6};
    make_config(&c, 2, 32, 4, H3, K3, F3, false, true); /* GQA 4 per kv, biases */
    check_llama(&c);
    config_free(&c);
    int H4[] = {8, 0, 4, 6}, K4[] = {4, 0, 2, 3}, F4[] = {10, 7, 0, 3};
    make_config(&c, 4, 32, 4, H4, K4, F4, true, false); /* pruned, heterogeneous */
    check_llama(&c);
    /* Qwen3: the same groups, q_norm and k_norm in the layer groups only */
    snprintf(c.model_type, sizeof c.model_type, "qwen3");
    c.arch = ARCH_QWEN3;
    check_llama(&c);
    config_free(&c);
    make_config(&c, 2, 16, 8, H2, K2, F2, false, true); /* Qwen3 with head_dim 8: q is 64 wide */
    snprintf(c.model_type, sizeof c.model_type, "qwen3");
    c.arch = ARCH_QWEN3;
    check_llama(&c);
    config_free(&c);
}

/* A toy architecture: x -> norm -> [up: D->F] -> act -> [down: F->D] -> + x, twice,
 * with a 2-channel "pair" coupling written as attention with head_dim 2 over a
 * separate branch. Its groups follow from the description alone. */
static void test_toy_architecture(void)
{
    graph g = {0};
    const int D = 6, F = 5;
    int x = graph_value_new(&g, D, -1, "embed");
    graph_op *op = graph_op_new(&g, OP_EMBED, -1, x, -1, -1, -1);
    op->weight = xstrdup("emb");
    op->rows = 9;
    for (int l = 0; l < 2; l++) {
        char w[32];
        int xn = graph_value_new(&g, D, l, "n%d", l);
        op = graph_op_new(&g, OP_NORM, l, xn, x, -1, -1);
        snprintf(w, sizeof w, "norm%d", l);
        op->weight = xstrdup(w);
        int h = graph_value_new(&g, F, l, "h%d", l);
        op = graph_op_new(&g, OP_LINEAR, l, h, xn, -1, -1);
        snprintf(w, sizeof w, "up%d", l);
        op->weight = xstrdup(w);
        int a = graph_value_new(&g, F, l, "a%d", l);
        graph_op_new(&g, OP_ACT, l, a, h, -1, -1);
        int o = graph_value_new(&g, D, l, "o%d", l);
        op = graph_op_new(&g, OP_LINEAR, l, o, a, -1, -1);
        snprintf(w, sizeof w, "down%d", l);
        op->weight = xstrdup(w);
        int x2 = graph_value_new(&g, D, -1, "r%d", l);
        graph_op_new(&g, OP_ADD, -1, x2, x, o, -1);
        x = x2;
    }
    group_set gs = {0};
    groups_from_graph(&g, 2, GROUP_KIND_ALL, &gs);
    /* ffn l0, ffn l1, hidden, layer 0, layer 1 */
    CHECK(gs.n == 5);
    if (gs.n == 5) {
        CHECK(gs.g[0].kind == GROUP_FFN && gs.g[0].layer == 0 && gs.g[0].units == F);
        CHECK(slice_is(member(&gs.g[0], "up0", 0), 0, 1, 1) && slice_is(member(&gs.g[0], "down0", 1), 0, 1, 1));
        CHECK(gs.g[2].kind == GROUP_HIDDEN && gs.g[2].units == D && gs.g[2].n_members == 7);
        CHECK(gs.g[2].unit_params == 9 + 2 + 2 * (F + F));
        CHECK(gs.g[3].kind == GROUP_LAYER && gs.g[3].unit_params == D + 2 * D * F);
    }
    group_set_free(&gs);
    graph_free(&g);
}

int main(void)
{
    set_progname("test_discover");
    TEST(test_shapes);
    TEST(test_toy_architecture);
    return check_report();
}
