/* test_loglik.c - the cached forward pass against model_forward on whole sequences;
 * log-likelihoods against the harness's definition computed here from
 * model_forward (left truncation included); the sampling warpers; the MAC count
 * against the paper's numbers.
 *
 * Letters: T tokens, V vocab, P context tokens. */
#include <math.h>
#include <string.h>

#include "base/blas.h"
#include "base/util.h"
#include "check.h"
#include "fixture.h"
#include "compute/forward.h"
#include "compute/kv_cache.h"
#include "eval/generate.h"
#include "eval/loglik.h"
#include "eval/stats.h"
#include "model/model.h"

/* Layers: full with GQA, attention only, MLP only. */
static void het_config(model_config *c)
{
    fixture_shape sh = {16, 3, 40, 6, (const int[]){4, 2, 0}, (const int[]){2, 1, 0}, (const int[]){24, 0, 20},
                        false, true, false, false, ROPE_HALF};
    fixture_config(c, &sh);
}

static model g_model;

static void tokens_of(int *t, int n, int seed)
{
    for (int i = 0; i < n; i++)
        t[i] = (seed * 7 + i * 13 + i * i) % 40;
}

/* logits (T, V) of one sequence with the plain forward pass */
static float *full_logits(const int *tok, int T)
{
    forward_state s;
    forward_state_init(&s, &g_model, 1, T);
    model_forward(&g_model, &s, tok);
    float *out = xmalloc((size_t)T * g_model.cfg.vocab * sizeof *out);
    memcpy(out, s.logits, (size_t)T * g_model.cfg.vocab * sizeof *out);
    forward_state_free(&s);
    return out;
}

static double max_diff(const float *a, const float *b, int n)
{
    double d = 0;
    for (int i = 0; i < n; i++)
        d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
}

static void test_cache_equals_forward(void)
{
    const int V = g_model.cfg.vocab, T = 12, P = 5;
    int a[12], b[9];
    tokens_of(a, T, 1);
    tokens_of(b, 9, 2);
    float *ra = full_logits(a, T), *rb = full_logits(b, 9);
    kv_cache c;
    kv_cache_init(&c, &g_model, 4, 32, 16, 16);
    int cap[2] = {12, 9};
    kv_cache_layout(&c, 2, cap);
    /* two contexts packed in one call: a[0..5) and b[0..4) */
    int tok[9], len[2] = {P, 4}, slot[2] = {0, 1}, out[2] = {P - 1, P + 3};
    memcpy(tok, a, P * sizeof *tok);
    memcpy(tok + P, b, 4 * sizeof *tok);
    kv_cache_forward(&g_model, &c, tok, 2, len, slot, true, out, 2);
    CHECK(c.len[0] == P && c.len[1] == 4);
    CHECK(max_diff(c.logits, ra + (size_t)(P - 1) * V, V) < 1e-4);
    CHECK(max_diff(c.logits + V, rb + (size_t)3 * V, V) < 1e-4);
    /* continuations without append: a[5..12) after slot 0, b[4..9) after slot 1,
     * and a second, shorter continuation of slot 0 */
    int tok2[14], len2[3] = {7, 5, 2}, slot2[3] = {0, 1, 0}, out2[14];
    memcpy(tok2, a + P, 7 * sizeof *tok2);
    memcpy(tok2 + 7, b + 4, 5 * sizeof *tok2);
    memcpy(tok2 + 12, a + P, 2 * sizeof *tok2);
    for (int i = 0; i < 14; i++)
        out2[i] = i;
    kv_cache_forward(&g_model, &c, tok2, 3, len2, slot2, false, out2, 14);
    CHECK(c.len[0] == P && c.len[1] == 4);
    CHECK(max_diff(c.logits, ra + (size_t)P * V, 7 * V) < 1e-4);
    CHECK(max_diff(c.logits + (size_t)7 * V, rb + (size_t)4 * V, 5 * V) < 1e-4);
    CHECK(max_diff(c.logits + (size_t)12 * V, ra + (size_t)P * V, 2 * V) < 1e-4);
    /* one token at a time, appending: the rest of a */
    for (int t = P; t < T; t++) {
        int one = 1, s0 = 0, o = 0;
        kv_cache_forward(&g_model, &c, &a[t], 1, &one, &s0, true, &o, 1);
        CHECK(max_diff(c.logits, ra + (size_t)t * V, V) < 1e-4);
    }
    CHECK(c.len[0] == T);
    kv_cache_free(&c);
    free(ra);
    free(rb);
}

/* The harness's definition, from model_forward: read the last max_len+1 tokens of
 * ctx+cont without the final one; sum log softmax at the continuation's positions. */
static double harness_ll(const int *ctx, int nc, const int *cont, int nx, int max_len)
{
    int n = nc + nx;
    int *all = xmalloc((size_t)n * sizeof *all);
    memcpy(all, ctx, (size_t)nc * sizeof *all);
    memcpy(all + nc, cont, (size_t)nx * sizeof *all);
    int start = n - (max_len + 1) > 0 ? n - (max_len + 1) : 0;
    int inplen = n - 1 - start;
    float *lg = full_logits(all + start, inplen);
    int V = g_model.cfg.vocab;
    double ll = 0;
    /* a continuation longer than the window: its last inplen tokens (pare's rule) */
    for (int j = nx > inplen ? nx - inplen : 0; j < nx; j++) {
        const float *row = lg + (size_t)(inplen - nx + j) * V;
        double mx = row[0], s = 0;
        for (int v = 1; v < V; v++)
            mx = fmax(mx, row[v]);
        for (int v = 0; v < V; v++)
            s += exp(row[v] - mx);
        ll += row[cont[j]] - mx - log(s);
    }
    free(lg);
    free(all);
    return ll;
}

static void test_loglik_matches_harness(void)
{
    const int max_len = 10;
    int ctx1[6], ctx2[3], ctx3[12], x1[1], x2[4], x3[7], x4[2], x5[14];
    tokens_of(ctx1, 6, 3);
    tokens_of(ctx2, 3, 4);
    tokens_of(ctx3, 12, 5); /* longer than max_len: always truncated */
    tokens_of(x1, 1, 6);
    tokens_of(x2, 4, 7);
    tokens_of(x3, 7, 8); /* with ctx1: 13 tokens, truncated */
    tokens_of(x4, 2, 9);
    tokens_of(x5, 14, 10); /* longer than max_len */
#define REQ(c, nc, x, nx) {.ctx = c, .n_ctx = nc, .cont = x, .n_cont = nx}
    loglik_request req[] = {
        REQ(ctx1, 6, x1, 1),  REQ(ctx1, 6, x2, 4),  REQ(ctx1, 6, x3, 7),  REQ(ctx1, 6, x4, 2), REQ(ctx2, 3, x2, 4),
        REQ(ctx2, 3, x1, 1),  REQ(ctx3, 12, x4, 2), REQ(ctx3, 12, x3, 7), REQ(ctx2, 3, x3, 7), REQ(ctx2, 3, x5, 14),
    };
    int n = (int)(sizeof req / sizeof *req);
    for (int budget = 1; budget <= 64; budget *= 4) {
        loglik_engine e;
        loglik_init(&e, &g_model, NULL, max_len, budget);
        for (int i = 0; i < n; i++)
            req[i].ll = NAN;
        loglik_run(&e, req, n, NULL);
        for (int i = 0; i < n; i++)
            CHECK_CLOSE(req[i].ll, harness_ll(req[i].ctx, req[i].n_ctx, req[i].cont, req[i].n_cont, max_len), 1e-4);
        CHECK(req[9].scored == max_len && req[8].scored == 7);
        loglik_free(&e);
    }
}

static void test_sample(void)
{
    gen_params p;
    gen_params_default(&p);
    float logits[6] = {1.0f, 3.0f, 2.0f, 3.0f, -1.0f, 0.5f};
    gen_pair work[6];
    /* u = 0 takes the most likely; ties by id */
    CHECK(gen_sample(logits, 6, &p, 0.0, work) == 1);
    /* top-k 2 keeps ids 1 and 3 only, evenly */
    p.top_k = 2;
    p.top_p = 1.0;
    CHECK(gen_sample(logits, 6, &p, 0.49, work) == 1);
    CHECK(gen_sample(logits, 6, &p, 0.51, work) == 3);
    CHECK(gen_sample(logits, 6, &p, 0.999999, work) == 3);
    /* top-k 3 with a tie at the 3rd: ids 1, 3, 2 and nothing else */
    float tie[5] = {0.0f, 2.0f, 1.0f, 1.0f, 2.0f};
    p.top_k = 3;
    int seen[5] = {0};
    for (int i = 0; i < 100; i++)
        seen[gen_sample(tie, 5, &p, i / 100.0, work)]++;
    CHECK(seen[0] == 0 && seen[1] && seen[2] && seen[3] && seen[4]);
    /* top-p: probabilities 0.5, 0.25, 0.125, 0.125 (logits log2 apart); p = 0.7
     * keeps the first two (0.5 < 0.7, then 0.75 reaches it) */
    float pw[4] = {3 * 0.6931472f, 2 * 0.6931472f, 0.6931472f, 0.6931472f};
    p.top_k = 0;
    p.top_p = 0.7;
    int seen2[4] = {0};
    for (int i = 0; i < 300; i++)
        seen2[gen_sample(pw, 4, &p, (i + 0.5) / 300.0, work)]++;
    CHECK(seen2[0] == 200 && seen2[1] == 100 && !seen2[2] && !seen2[3]);
    /* p = 0.5 exactly: the first token alone reaches it */
    p.top_p = 0.5;
    CHECK(gen_sample(pw, 4, &p, 0.99, work) == 0);
    /* temperature 0.5 squares the odds: 0.5 vs 0.25 become 4:1 */
    p.top_p = 1.0;
    p.temperature = 0.5;
    float two[2] = {0.6931472f, 0.0f};
    CHECK(gen_sample(two, 2, &p, 0.79, work) == 0);
    CHECK(gen_sample(two, 2, &p, 0.81, work) == 1);
}

static void llama7b(model_config *c, int pruned_heads, int pruned_ffn)
{
    static int heads[32], kv[32], ffn[32];
    for (int l = 0; l < 32; l++) {
        bool p = pruned_heads && l >= 4 && l < 30;
        heads[l] = kv[l] = p ? pruned_heads : 32;
        ffn[l] = p ? pruned_ffn : 11008;
    }
    memset(c, 0, sizeof *c);
    c->dim = 4096;
    c->n_layers = 32;
    c->vocab = 32000;
    c->head_dim = 128;
    c->n_heads = heads;
    c->n_kv_heads = kv;
    c->ffn_dim = ffn;
}

static void test_macs(void)
{
    model_config c;
    /* the paper's table (LLaMA-7B, and Block 20%: ratio 0.25 on layers 4-29):
     * 424.02G and 339.60G MACs, 6.74B and 5.42B parameters */
    llama7b(&c, 0, 0);
    CHECK(stats_macs(&c, 64) == 424021065728LL);
    llama7b(&c, 24, 8256);
    CHECK(stats_macs(&c, 64) == 339602644992LL);
    /* by hand: D 2, one layer, H 1, hd 2, F 3, V 5, T 4 */
    static int h1[] = {1}, f1[] = {3};
    model_config s = {.dim = 2, .n_layers = 1, .vocab = 5, .head_dim = 2, .n_heads = h1, .n_kv_heads = h1, .ffn_dim = f1};
    int64_t want = 4 * 4 * 2 * 2               /* q, k, v, o */
                   + 2 * (4 * 1 * 2) * 2        /* rotary */
                   + 1 * (16 * 2 + 16 + 16 * 2) /* QK^T, softmax, PV */
                   + 3 * 4 * 2 * 3 + 4 * 3      /* MLP, SiLU */
                   + 3 * 2 * 4 * 2              /* three RMSNorms */
                   + 4 * 2 * 5;                 /* LM head */
    CHECK(stats_macs(&s, 4) == want);
}

int main(int argc, char **argv)
{
    blas_init(argc, argv);
    set_progname("test_loglik");
    model_config c;
    het_config(&c);
    model_init_random(&g_model, &c, 11);
    config_free(&c);
    TEST(test_cache_equals_forward);
    TEST(test_loglik_matches_harness);
    TEST(test_sample);
    TEST(test_macs);
    model_free(&g_model);
    return check_report();
}
