/* test_chatglm - the ChatGLM-6B and ChatGLM2 descriptions: logits against the
 * independent double-precision reference (ref_chatglm.h) in both masks, weight
 * gradients against finite differences of the reference's loss, and pruned
 * models against masked ones (block mode) or the reference with kept channels
 * (channel mode). Random tiny models; tolerances measured and printed.
 *
 * Letters: B sequences, T tokens, D hidden, V vocab. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "base/util.h"
#include "check.h"
#include "compute/backward.h"
#include "compute/forward.h"
#include "eval/generate.h"
#include "eval/loglik.h"
#include "fixture.h"
#include "prune/groups.h"
#include "prune/prune.h"
#include "ref_chatglm.h"

static uint64_t rng = 42;
static int64_t rand_below(int64_t n) { return n > 0 ? (int64_t)rng_below(&rng, (uint64_t)n) : 0; }

/* ChatGLM-6B: 4 heads of 8; ChatGLM2: 4 query heads in 2 groups of 8, q/k/v bias;
 * the layer counts differ so that ChatGLM-6B's alpha is not the default's. */
static const char *const configs[] = {
    "{\"model_type\":\"chatglm\",\"hidden_size\":32,\"num_layers\":2,\"vocab_size\":48,\"num_attention_heads\":4,"
    "\"inner_hidden_size\":40,\"position_encoding_2d\":true,\"residual_scale_layers\":28}",
    "{\"model_type\":\"chatglm\",\"hidden_size\":32,\"num_layers\":3,\"padded_vocab_size\":48,\"num_attention_heads\":4,"
    "\"multi_query_attention\":true,\"multi_query_group_num\":2,\"kv_channels\":8,\"ffn_hidden_size\":40,"
    "\"add_qkv_bias\":true,\"rope_ratio\":2.0}",
};
static const char *const names[] = {"chatglm", "chatglm2"};

static void make_model(model *m, int which, uint64_t seed) { fixture_config_model(m, configs[which], seed); }

static int *rand_tokens(int n, int V)
{
    int *t = xmalloc((size_t)n * sizeof *t);
    for (int i = 0; i < n; i++)
        t[i] = (int)rand_below(V);
    return t;
}

/* max over rows of max |a - b| / max(1, max |b|) */
static double row_diff(const float *a, const double *b, int rows, int V)
{
    double e = 0;
    for (int r = 0; r < rows; r++) {
        double scale = 1, d = 0;
        for (int i = r * V; i < (r + 1) * V; i++) {
            scale = fmax(scale, fabs(b[i]));
            d = fmax(d, fabs(a[i] - b[i]));
        }
        e = fmax(e, d / scale);
    }
    return e;
}

/* The float forward of B sequences (B*T, V) with a prefix. */
static float *forward(const model *m, const int *tokens, int B, int T, int prefix)
{
    forward_state s;
    forward_state_init(&s, m, B, T);
    s.prefix = prefix;
    model_forward(m, &s, tokens);
    float *out = xmalloc((size_t)B * T * m->cfg.vocab * sizeof *out);
    memcpy(out, s.logits, (size_t)B * T * m->cfg.vocab * sizeof *out);
    forward_state_free(&s);
    return out;
}

static double max_err_vs_ref(const model *m, const int *tokens, int B, int T, int prefix)
{
    int V = m->cfg.vocab;
    float *a = forward(m, tokens, B, T, prefix);
    double *ref = xmalloc((size_t)T * V * sizeof *ref), e = 0;
    for (int b = 0; b < B; b++) {
        ref_chatglm_logits(m, tokens + b * T, T, prefix, NULL, ref);
        e = fmax(e, row_diff(a + (size_t)b * T * V, ref, T, V));
    }
    free(a);
    free(ref);
    return e;
}

static void test_logits(void)
{
    for (int which = 0; which < 2; which++) {
        model m;
        make_model(&m, which, 7);
        int B = 2, T = 9, *tokens = rand_tokens(B * T, m.cfg.vocab);
        double e = max_err_vs_ref(&m, tokens, B, T, 0);
        fprintf(stderr, "    %s causal: max relative logit error %.2g\n", names[which], e);
        CHECK(e <= 2e-6);
        if (which == 0)
            for (int P = 1; P <= T; P += 3) { /* [gMASK] at P - 1, <sop> at P */
                e = max_err_vs_ref(&m, tokens, B, T, P);
                fprintf(stderr, "    %s prefix %d: max relative logit error %.2g\n", names[which], P, e);
                CHECK(e <= 2e-6);
            }
        /* the prefix changes the logits (the test can fail) */
        if (which == 0) {
            float *a = forward(&m, tokens, 1, T, 0), *b = forward(&m, tokens, 1, T, 5);
            double d = 0;
            for (int i = 0; i < T * m.cfg.vocab; i++)
                d = fmax(d, fabs(a[i] - b[i]));
            CHECK(d > 1e-3);
            free(a);
            free(b);
        }
        free(tokens);
        model_free(&m);
    }
}

/* ---- zero-shot log-likelihoods in ChatGLM-6B's prompt form ---- */

/* loglik_run with [gMASK] <sop> (the cache filled with bidirectional prompts,
 * continuations at block positions, batches of a few rows) against the
 * reference's sum of log-probabilities of the whole sequence; contexts shared
 * by several continuations, one continuation of one token, and left truncation
 * (a small max_len: the reference reads the context's last max_len - 1 - n). */
static void test_loglik_prefix(void)
{
    model m;
    make_model(&m, 0, 11);
    int V = m.cfg.vocab, gmask = V - 3, sop = V - 2;
    enum { NR = 7 };
    static const int n_ctx[NR] = {5, 5, 5, 1, 9, 9, 3}, n_cont[NR] = {3, 1, 4, 2, 2, 5, 6};
    static const int share[NR] = {-1, 0, 0, -1, -1, 4, -1}; /* the context of an earlier request */
    for (int pass = 0; pass < 2; pass++) {
        int max_len = pass == 0 ? 64 : 9, budget = pass == 0 ? 64 : 6;
        loglik_request req[NR];
        int *ctx[NR], *cont[NR];
        for (int i = 0; i < NR; i++) {
            ctx[i] = share[i] >= 0 ? ctx[share[i]] : rand_tokens(n_ctx[i], V - 4);
            cont[i] = rand_tokens(n_cont[i], V - 4);
            req[i] = (loglik_request){.ctx = ctx[i], .n_ctx = n_ctx[i], .cont = cont[i], .n_cont = n_cont[i],
                                      .item = i};
        }
        loglik_engine e;
        loglik_init(&e, &m, NULL, max_len, budget);
        e.gmask = gmask;
        e.sop = sop;
        loglik_run(&e, req, NR, NULL);
        loglik_free(&e);
        double worst = 0;
        for (int i = 0; i < NR; i++) {
            int keep = max_len - 1 - n_cont[i]; /* context tokens read */
            keep = keep < n_ctx[i] ? keep : n_ctx[i];
            CHECK(keep >= 0);
            double want = ref_chatglm_loglik(&m, ctx[i] + n_ctx[i] - keep, keep, gmask, sop, cont[i], n_cont[i]);
            CHECK(req[i].scored == n_cont[i]);
            CHECK_CLOSE(req[i].ll, want, 1e-5);
            worst = fmax(worst, fabs(req[i].ll - want) / fmax(1, fabs(want)));
        }
        fprintf(stderr, "    chatglm [gMASK] <sop> log-likelihoods, max_len %d: max relative error %.2g\n", max_len,
                worst);
        /* the form matters: the causal reading of the same requests differs */
        loglik_request causal[NR];
        memcpy(causal, req, sizeof req);
        loglik_init(&e, &m, NULL, max_len, budget);
        loglik_run(&e, causal, NR, NULL);
        loglik_free(&e);
        double d = 0;
        for (int i = 0; i < NR; i++)
            d = fmax(d, fabs(causal[i].ll - req[i].ll));
        CHECK(d > 1e-3);
        for (int i = 0; i < NR; i++) {
            if (share[i] < 0)
                free(ctx[i]);
            free(cont[i]);
        }
    }
    model_free(&m);
}

/* ---- generation in ChatGLM-6B's prompt form ---- */

/* The reference's greedy chain after the prompt ids (P): at each step the whole
 * sequence again (ref_chatglm_logits with prefix ref_prefix), its last row's
 * logits to lg (steps, V) and argmax to chain; stops after eos or steps tokens. */
static int ref_greedy(const model *m, const int *ids, int P, int ref_prefix, int eos, int steps, int *chain, double *lg)
{
    int V = m->cfg.vocab, n = 0;
    int *seq = xmalloc((size_t)(P + steps) * sizeof *seq);
    double *all = xmalloc((size_t)(P + steps) * V * sizeof *all);
    memcpy(seq, ids, (size_t)P * sizeof *seq);
    while (n < steps) {
        int T = P + n;
        ref_chatglm_logits(m, seq, T, ref_prefix, NULL, all);
        const double *row = all + (size_t)(T - 1) * V;
        memcpy(lg + (size_t)n * V, row, (size_t)V * sizeof *lg);
        int best = 0;
        for (int i = 1; i < V; i++)
            best = row[i] > row[best] ? i : best;
        chain[n++] = seq[T] = best;
        if (best == eos)
            break;
    }
    free(all);
    free(seq);
    return n;
}

/* gen_tokens with top-k 1 on ChatGLM-6B in its prefix form (prompt and [gMASK]
 * bidirectional in the cache, <sop> and the decoded tokens at [gMASK]'s position
 * and block positions 1, 2, ...), ChatGLM-6B causal and ChatGLM2: the tokens are
 * the reference's argmax chain, recomputed in full at every step with the same
 * mask, and each step's cached logits equal the reference's; generation stops
 * at eos (a token of the reference's chain); the two masks differ. */
static void test_generate(void)
{
    enum { CTX = 5, STEPS = 6 };
    gen_params p;
    gen_params_default(&p);
    p.top_k = 1;
    float *glm_logits[2] = {NULL, NULL};
    int V0 = 0;
    for (int run = 0; run < 3; run++) {
        int which = run == 2, prefix = run == 0;
        model m;
        make_model(&m, which, 23);
        int V = m.cfg.vocab, gmask = V - 3, sop = V - 2, P = CTX + 2;
        int ids[CTX + 2], *ctx = rand_tokens(CTX, V - 4);
        for (int i = 0; i < CTX; i++) /* ChatGLM-6B: text [gMASK] <sop>; ChatGLM2: [gMASK] sop text */
            ids[which ? i + 2 : i] = ctx[i];
        ids[which ? 0 : CTX] = gmask;
        ids[which ? 1 : CTX + 1] = sop;
        free(ctx);
        int chain[STEPS], out[STEPS];
        double *ref = xmalloc((size_t)STEPS * V * sizeof *ref);
        float *lg = xmalloc((size_t)STEPS * V * sizeof *lg);
        int nr = ref_greedy(&m, ids, P, prefix ? P - 1 : 0, -1, STEPS, chain, ref);
        int n = gen_tokens(&m, NULL, ids, P, prefix, -1, &p, 0, P + STEPS, out, lg);
        CHECK(n == STEPS && nr == STEPS);
        double e = 0;
        for (int k = 0; k < n && k < nr; k++) {
            CHECK(out[k] == chain[k]);
            e = fmax(e, row_diff(lg + (size_t)k * V, ref + (size_t)k * V, 1, V));
        }
        fprintf(stderr, "    %s %s generation, %d steps: tokens as the reference's chain, max relative logit error %.2g\n",
                names[which], prefix ? "prefix" : "causal", n, e);
        CHECK(e <= 2e-6);
        /* eos: the first token of the chain not seen before it, past the first */
        int stop = 1;
        while (stop < nr - 1) {
            int seen = 0;
            for (int k = 0; k < stop; k++)
                seen |= chain[k] == chain[stop];
            if (!seen)
                break;
            stop++;
        }
        n = gen_tokens(&m, NULL, ids, P, prefix, chain[stop], &p, 0, P + STEPS, out, NULL);
        CHECK(n == stop + 1 && out[n - 1] == chain[stop]);
        /* max length: total tokens, at least one new */
        CHECK(gen_tokens(&m, NULL, ids, P, prefix, -1, &p, 0, P + 2, out, NULL) == 2);
        CHECK(gen_tokens(&m, NULL, ids, P, prefix, -1, &p, 0, P, out, NULL) == 1);
        free(ref);
        if (which == 0) {
            glm_logits[run] = lg;
            V0 = V;
        }
        else
            free(lg);
        model_free(&m);
    }
    /* the prefix form changes ChatGLM-6B's first logits (the test can fail) */
    double d = 0;
    for (int i = 0; i < V0; i++)
        d = fmax(d, fabs(glm_logits[0][i] - glm_logits[1][i]));
    CHECK(d > 1e-3);
    free(glm_logits[0]);
    free(glm_logits[1]);
}

/* ---- gradients ---- */

typedef struct {
    int n;
    char **names;
    float **grads;
} grads;

static void keep_grads(void *ctx, int layer, const weight_grad *g, int n)
{
    grads *G = ctx;
    (void)layer;
    for (int i = 0; i < n; i++) {
        G->names = xrealloc(G->names, (size_t)(G->n + 1) * sizeof *G->names);
        G->grads = xrealloc(G->grads, (size_t)(G->n + 1) * sizeof *G->grads);
        G->names[G->n] = xstrdup(g[i].name);
        G->grads[G->n] = xmalloc((size_t)g[i].w->numel * sizeof(float));
        memcpy(G->grads[G->n], g[i].grad, (size_t)g[i].w->numel * sizeof(float));
        G->n++;
    }
}

static void test_gradients(void)
{
    for (int which = 0; which < 2; which++) {
        model m;
        make_model(&m, which, 11);
        int T = 7, *tokens = rand_tokens(T, m.cfg.vocab), targets[7];
        for (int t = 0; t < T; t++)
            targets[t] = t + 1 < T ? tokens[t + 1] : -1;
        backward_state *tr = backward_state_new(&m, 1, T);
        grads G = {0};
        double loss = model_loss_backward(&m, tr, tokens, targets, keep_grads, NULL, &G);
        double ref_loss = ref_chatglm_loss(&m, tokens, T, 0);
        CHECK(fabs(loss - ref_loss) <= 1e-5 * fmax(1, fabs(ref_loss)));
        CHECK(G.n == m.n_tensors);
        /* every layer's internals kept from the forward pass (fused maps too): the same bits */
        size_t all = 0;
        for (int l = 0; l < m.cfg.n_layers; l++)
            all += backward_layer_kept_bytes(&m, l, 1, T);
        CHECK(backward_state_keep(tr, &m, all) == all);
        grads K = {0};
        CHECK(model_loss_backward(&m, tr, tokens, targets, keep_grads, NULL, &K) == loss);
        CHECK(K.n == G.n);
        for (int k = 0; k < K.n && k < G.n; k++) {
            tensor *t = model_tensor(&m, G.names[k]);
            CHECK(!strcmp(K.names[k], G.names[k]) && !memcmp(K.grads[k], G.grads[k], (size_t)t->numel * sizeof(float)));
            free(K.names[k]);
            free(K.grads[k]);
        }
        free(K.names);
        free(K.grads);
        double worst = 0;
        int checked = 0;
        for (int k = 0; k < G.n; k++) {
            tensor *t = model_tensor(&m, G.names[k]);
            CHECK(t != NULL);
            if (!t)
                continue;
            for (int s = 0; s < 4; s++) {
                int64_t i = rand_below(t->numel);
                float *v = t->data, w0 = v[i];
                float h = 1e-2f * fmaxf(1.0f, fabsf(w0));
                v[i] = w0 + h;
                double up = ref_chatglm_loss(&m, tokens, T, 0);
                float hu = v[i] - w0;
                v[i] = w0 - h;
                double down = ref_chatglm_loss(&m, tokens, T, 0);
                float hd = w0 - v[i];
                v[i] = w0;
                double fd = (up - down) / ((double)hu + hd), g = G.grads[k][i];
                double err = fabs(g - fd) / fmax(1e-2, fabs(fd));
                if (err > worst)
                    worst = err;
                if (err > 2e-2)
                    fprintf(stderr, "    %s %s[%lld]: gradient %g, finite difference %g\n", names[which], G.names[k],
                            (long long)i, g, fd);
                CHECK(err <= 2e-2);
                checked++;
            }
        }
        fprintf(stderr, "    %s: %d gradient elements of %d tensors, worst error vs finite differences %.2g\n",
                names[which], checked, G.n, worst);
        for (int k = 0; k < G.n; k++) {
            free(G.names[k]);
            free(G.grads[k]);
        }
        free(G.names);
        free(G.grads);
        backward_state_free(tr);
        free(tokens);
        model_free(&m);
    }
}

/* ---- pruned equals masked ---- */

static void check_pruned(int which, enum prune_mode mode, int trials)
{
    model orig;
    make_model(&orig, which, 5);
    group_set gs;
    groups_discover(&orig, GROUP_KIND_ALL, &gs);
    int T = 8, V = orig.cfg.vocab, D = orig.cfg.dim;
    double worst = 0, worst_f = 0;
    for (int trial = 0; trial < trials; trial++) {
        prune_choice *c = xcalloc((size_t)gs.n, sizeof *c);
        int n = 0;
        bool *keep = NULL;
        for (int i = 0; i < gs.n; i++) {
            const group *g = &gs.g[i];
            /* ChatGLM-6B's residual runs through the norm, so a whole sub-block is not
             * a masked one: at least one unit stays there */
            int64_t hi = which == 0 ? g->units - 1 : g->units;
            if (mode == PRUNE_BLOCK && (g->kind == GROUP_ATTN || g->kind == GROUP_FFN))
                c[n++] = fixture_choice(&rng, i, g->units, 1, hi);
            if (mode == PRUNE_CHANNEL && g->kind == GROUP_HIDDEN)
                c[n++] = fixture_choice(&rng, i, g->units, 1, g->units - 1);
            if (mode == PRUNE_LAYER && g->kind == GROUP_LAYER && g->layer == 1)
                c[n++] = fixture_choice(&rng, i, 1, 1, 1);
        }
        prune_plan p;
        prune_plan_manual(&p, &orig, &gs, mode, n, c);
        model src, pruned, masked;
        make_model(&src, which, 5);
        prune_apply(&src, &gs, &p, false, &pruned);
        int *tokens = rand_tokens(T, V);
        double *rp = xmalloc((size_t)T * V * sizeof *rp), *rm = xmalloc((size_t)T * V * sizeof *rm);
        ref_chatglm_logits(&pruned, tokens, T, 0, NULL, rp);
        if (mode == PRUNE_CHANNEL) {
            keep = xmalloc((size_t)D * sizeof *keep);
            for (int d = 0; d < D; d++)
                keep[d] = true;
            for (int64_t k = 0; k < c[0].n_removed; k++)
                keep[c[0].removed[k]] = false;
            ref_chatglm_logits(&orig, tokens, T, 0, keep, rm);
        } else {
            make_model(&masked, which, 5);
            prune_mask(&masked, &gs, &p);
            ref_chatglm_logits(&masked, tokens, T, 0, NULL, rm);
            model_free(&masked);
        }
        double e = 0;
        for (int i = 0; i < T * V; i++)
            e = fmax(e, fabs(rp[i] - rm[i]) / fmax(1, fabs(rm[i])));
        float *a = forward(&pruned, tokens, 1, T, 0);
        double ef = row_diff(a, rm, T, V);
        worst = fmax(worst, e);
        worst_f = fmax(worst_f, ef);
        CHECK(e <= 1e-9);
        CHECK(ef <= 2e-6);
        CHECK(config_param_count(&pruned.cfg) == config_param_count(&p.after));
        free(a);
        free(rp);
        free(rm);
        free(keep);
        free(tokens);
        model_free(&src);
        model_free(&pruned);
        prune_plan_free(&p);
        for (int i = 0; i < n; i++)
            free(c[i].removed);
        free(c);
    }
    fprintf(stderr, "    %s %s: pruned vs %s: %.2g (double), %.2g (float forward)\n", names[which],
            prune_mode_name(mode), mode == PRUNE_CHANNEL ? "reference with kept channels" : "masked", worst, worst_f);
    group_set_free(&gs);
    model_free(&orig);
}

static void test_pruned_equals_masked(void)
{
    for (int which = 0; which < 2; which++) {
        check_pruned(which, PRUNE_BLOCK, 4);
        check_pruned(which, PRUNE_CHANNEL, 3);
    }
    check_pruned(1, PRUNE_LAYER, 1); /* ChatGLM2's plain residual: a masked block is no block */
}

int main(void)
{
    TEST(test_logits);
    TEST(test_loglik_prefix);
    TEST(test_generate);
    TEST(test_gradients);
    TEST(test_pruned_equals_masked);
    return check_report();
}
