/* test_forward.c - the batched fp32 forward pass against the double-precision
 * reference (ref_llama.h) on random tiny models built by hand; the kernels against their formulas; and
 * stories260K (llama2.c .bin, and its Hugging Face conversion) against logits from
 * llama2.c's run.c.
 *
 * Letters: B sequences, T tokens, N = B*T, D hidden, V vocab, H query heads,
 * KV key/value heads, hd head dim, F MLP width. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "base/blas.h"
#include "base/util.h"
#include "check.h"
#include "compute/forward.h"
#include "compute/kernels.h"
#include "compute/layer.h"
#include "compute/matmul.h"
#include "fixture.h"
#include "format/model_load.h"
#include "model/model.h"
#include "ref_llama.h"

/* ---- random tiny models ---- */


typedef struct {
    int D, L, V, hd;
    const int *H, *KV, *F; /* [L] */
    bool tied, bias;
    enum rope_style style;
    float theta;
} tiny_spec;

/* A new tensor of m, uniform in offset + scale * [-1, 1) (rows x cols, cols 0 for a vector). */
static void rand_tensor(model *m, const char *name, int64_t rows, int64_t cols, float scale, float offset)
{
    int64_t shape[2] = {rows, cols};
    float *p = model_new_tensor(m, name, cols ? 2 : 1, shape)->data;
    for (int64_t i = 0; i < rows * (cols ? cols : 1); i++)
        p[i] = offset + scale * (float)fixture_urand();
}

static void rand_layer_tensor(model *m, int l, int id, int64_t rows, int64_t cols, float scale, float offset)
{
    char name[160];
    layer_weight_name(&m->cfg, name, sizeof name, l, id);
    rand_tensor(m, name, rows, cols, scale, offset);
}


/* Fill m by hand the way a loader would, then bind it. */
static void tiny_model(model *m, const tiny_spec *sp, uint64_t seed)
{
    memset(m, 0, sizeof *m);
    fixture_rng = seed;
    model_config *c = &m->cfg;
    strcpy(c->model_type, "llama");
    c->dim = sp->D;
    c->n_layers = sp->L;
    c->vocab = sp->V;
    c->head_dim = sp->hd;
    c->max_seq = 64;
    c->n_heads = xmalloc((size_t)sp->L * sizeof(int));
    c->n_kv_heads = xmalloc((size_t)sp->L * sizeof(int));
    c->ffn_dim = xmalloc((size_t)sp->L * sizeof(int));
    c->norm_eps = 1e-5f;
    c->rope_theta = sp->theta;
    c->rope_style = sp->style;
    c->tied = sp->tied;
    c->qkv_bias = sp->bias;
    c->o_bias = c->down_bias = sp->bias; /* "bias": every bias the forward supports */
    int D = sp->D, hd = sp->hd;
    float sD = 1.0f / sqrtf((float)D);
    rand_tensor(m, "model.embed_tokens.weight", sp->V, D, 1.0f, 0.0f);
    rand_tensor(m, "model.norm.weight", D, 0, 0.2f, 1.0f);
    if (!sp->tied)
        rand_tensor(m, "lm_head.weight", sp->V, D, 1.0f, 0.0f);
    for (int l = 0; l < sp->L; l++) {
        int H = sp->H[l], KV = sp->KV[l], F = sp->F[l];
        c->n_heads[l] = H;
        c->n_kv_heads[l] = KV;
        c->ffn_dim[l] = F;
        if (H) {
            rand_layer_tensor(m, l, LW_ATTN_NORM, D, 0, 0.2f, 1.0f);
            rand_layer_tensor(m, l, LW_Q, (int64_t)H * hd, D, sD, 0.0f);
            rand_layer_tensor(m, l, LW_K, (int64_t)KV * hd, D, sD, 0.0f);
            rand_layer_tensor(m, l, LW_V, (int64_t)KV * hd, D, sD, 0.0f);
            rand_layer_tensor(m, l, LW_O, D, (int64_t)H * hd, 1.0f / sqrtf((float)(H * hd)), 0.0f);
            if (sp->bias) {
                rand_layer_tensor(m, l, LW_BQ, (int64_t)H * hd, 0, 0.3f, 0.0f);
                rand_layer_tensor(m, l, LW_BK, (int64_t)KV * hd, 0, 0.3f, 0.0f);
                rand_layer_tensor(m, l, LW_BV, (int64_t)KV * hd, 0, 0.3f, 0.0f);
                rand_layer_tensor(m, l, LW_BO, D, 0, 0.3f, 0.0f);
            }
        }
        if (F) {
            rand_layer_tensor(m, l, LW_FFN_NORM, D, 0, 0.2f, 1.0f);
            rand_layer_tensor(m, l, LW_GATE, F, D, sD, 0.0f);
            rand_layer_tensor(m, l, LW_UP, F, D, sD, 0.0f);
            rand_layer_tensor(m, l, LW_DOWN, D, F, 1.0f / sqrtf((float)F), 0.0f);
            if (sp->bias)
                rand_layer_tensor(m, l, LW_BDOWN, D, 0, 0.3f, 0.0f);
        }
    }
    model_bind(m);
}

static void tiny_free(model *m) { model_free(m); }

/* ---- forward vs reference ---- */

static int *rand_tokens(int n, int V)
{
    int *t = xmalloc((size_t)n * sizeof(int));
    for (int i = 0; i < n; i++)
        t[i] = fixture_irand(V);
    return t;
}

/* max over all logits of |got - ref| / max(1, |ref|) */
static double rel_err(const float *got, const double *ref, int64_t n)
{
    double e = 0;
    for (int64_t i = 0; i < n; i++)
        e = fmax(e, fabs(got[i] - ref[i]) / fmax(1.0, fabs(ref[i])));
    return e;
}

static void check_against_reference(const char *what, const tiny_spec *sp, int B, int T, uint64_t seed)
{
    model m;
    tiny_model(&m, sp, seed);
    int *tokens = rand_tokens(B * T, sp->V);
    forward_state s;
    forward_state_init(&s, &m, B, T);
    model_forward(&m, &s, tokens);
    double *ref = xmalloc((size_t)B * T * sp->V * sizeof(double));
    ref_model r;
    ref_model_init(&r, &m);
    ref_forward(&r, tokens, B, T, NULL, ref);
    ref_model_free(&r);
    double e = rel_err(s.logits, ref, (int64_t)B * T * sp->V);
    double mag = 0;
    for (int64_t i = 0; i < (int64_t)B * T * sp->V; i++)
        mag = fmax(mag, fabs(ref[i]));
    if (!(e <= 1e-5))
        fprintf(stderr, "    %s: max relative error %.3g (max |logit| %.3g)\n", what, e, mag);
    CHECK(e <= 1e-5);
    CHECK(mag > 0.5); /* the logits are not trivially small */
    free(ref);
    free(tokens);
    forward_state_free(&s);
    tiny_free(&m);
}

static const int one4[] = {4, 4}, f64[] = {64, 64};

static void test_mha_tied(void)
{
    tiny_spec sp = {.D = 32, .L = 2, .V = 50, .hd = 8, .H = one4, .KV = one4, .F = f64,
                    .tied = true, .style = ROPE_HALF, .theta = 10000.0f};
    check_against_reference("mha tied half", &sp, 1, 7, 1);
    sp.style = ROPE_INTERLEAVED;
    check_against_reference("mha tied interleaved", &sp, 2, 7, 2);
}

static void test_gqa2_untied(void)
{
    static const int H[] = {4, 4, 4}, KV[] = {2, 2, 2}, F[] = {48, 48, 48};
    tiny_spec sp = {.D = 24, .L = 3, .V = 40, .hd = 6, .H = H, .KV = KV, .F = F,
                    .tied = false, .style = ROPE_INTERLEAVED, .theta = 10000.0f};
    check_against_reference("gqa2 untied interleaved", &sp, 2, 6, 3);
    sp.style = ROPE_HALF;
    sp.theta = 500000.0f;
    check_against_reference("gqa2 untied half theta 5e5", &sp, 2, 6, 4);
}

static void test_gqa4_bias(void)
{
    static const int H[] = {8, 8}, KV[] = {2, 2}, F[] = {40, 40};
    tiny_spec sp = {.D = 32, .L = 2, .V = 37, .hd = 4, .H = H, .KV = KV, .F = F,
                    .tied = false, .bias = true, .style = ROPE_HALF, .theta = 1000000.0f};
    check_against_reference("gqa4 bias half", &sp, 3, 5, 5);
    sp.style = ROPE_INTERLEAVED;
    sp.tied = true;
    check_against_reference("gqa4 bias interleaved tied", &sp, 3, 5, 6);
}

static double max_abs_diff_d(const double *a, const double *b, size_t n)
{
    double e = 0;
    for (size_t i = 0; i < n; i++)
        e = fmax(e, fabs(a[i] - b[i]));
    return e;
}

/* logits (B*T, V) of m's reference and of its forward pass, the error between them */
static double today_error(const model *m, const int *tokens, int B, int T, double *ref)
{
    forward_state s;
    forward_state_init(&s, m, B, T);
    model_forward(m, &s, tokens);
    ref_model r;
    ref_model_init(&r, m);
    ref_forward(&r, tokens, B, T, NULL, ref);
    ref_model_free(&r);
    double e = rel_err(s.logits, ref, (int64_t)B * T * m->cfg.vocab);
    forward_state_free(&s);
    return e;
}

/* Today's models (tests/configs: Llama 3 with llama3 rope scaling, Qwen2 with
 * biases, Qwen3 with q/k norms whose weights are not 1), tied and untied, and Llama 3
 * with linear scaling: the forward pass against the reference, which reads the
 * config as transformers does. The scaling and the norms matter: without them the
 * reference computes other logits. */
static void test_today_models(void)
{
    enum { B = 2, T = 40 }; /* positions past original_max_position_embeddings / 4 = 16 */
    for (int i = 0; i < FIXTURE_TODAY_COUNT; i++)
        for (int variant = 0; variant < 3; variant++) {
            json_t *j = fixture_config_json(fixture_today[i]);
            bool tied = json_is_true(json_object_get(j, "tie_word_embeddings"));
            if (variant == 1)
                json_object_set_new(j, "tie_word_embeddings", json_boolean(!tied));
            if (variant == 2 && i != 0) {
                json_decref(j);
                continue;
            }
            if (variant == 2)
                json_object_set_new(j, "rope_scaling", json_pack("{s:s, s:f}", "type", "linear", "factor", 4.0));
            model m;
            fixture_json_model(&m, j, 40 + i);
            json_decref(j);
            size_t n = (size_t)B * T * m.cfg.vocab;
            int *tokens = rand_tokens(B * T, m.cfg.vocab);
            double *ref = xmalloc(n * sizeof *ref), *plain = xmalloc(n * sizeof *plain);
            double e = today_error(&m, tokens, B, T, ref);
            fprintf(stderr, "    %s%s: max relative logit error %.2g\n", fixture_today[i],
                    variant == 1 ? (tied ? " untied" : " tied") : variant == 2 ? " linear scaling" : "", e);
            CHECK(e <= 1e-5);
            /* what the reference computes without the scaling, or with norms of 1 */
            if (m.cfg.rope_scaling.type != ROPE_SCALING_NONE) {
                m.cfg.rope_scaling.type = ROPE_SCALING_NONE;
                CHECK(today_error(&m, tokens, B, T, plain) <= 1e-5);
                CHECK(max_abs_diff_d(ref, plain, n) > 1e-2);
            }
            if (model_archs[m.cfg.arch].qk_norm) {
                for (int l = 0; l < m.cfg.n_layers; l++) {
                    const tensor *w[2] = {m.layers[l].q_norm, m.layers[l].k_norm};
                    for (int k = 0; k < 2; k++)
                        for (int64_t x = 0; x < w[k]->numel; x++)
                            ((float *)w[k]->data)[x] = 1.0f;
                }
                CHECK(today_error(&m, tokens, B, T, plain) <= 1e-5);
                CHECK(max_abs_diff_d(ref, plain, n) > 1e-2);
            }
            free(ref), free(plain), free(tokens);
            model_free(&m);
        }
}

/* config_rope_inv_freq of the tiny Llama 3 (theta 5e5, hd 16, llama3: factor 8,
 * low 1, high 4, original 64) against the formula by hand: pair 0 (wavelength
 * 2 pi < 64/4) keeps its frequency, pair 1 (wavelength 32.4, between 16 and 64)
 * is mixed with s = (64/32.4 - 1)/3, the rest (wavelength > 64) divided by 8;
 * linear divides them all. */
static void test_rope_scaling(void)
{
    json_t *j = fixture_config_json("tiny-llama3.json");
    model_config c;
    config_from_json(&c, j, "tiny-llama3.json");
    float inv[8];
    config_rope_inv_freq(&c, inv);
    for (int i = 0; i < 8; i++) {
        double f = pow(500000.0, -2.0 * i / 16), wl = 2 * M_PI / f, want = f / 8;
        if (i == 0)
            want = f;
        if (i == 1) {
            double s = (64 / wl - 1) / 3;
            CHECK(wl > 16 && wl < 64 && s > 0.3 && s < 0.35);
            want = (1 - s) * f / 8 + s * f;
        }
        CHECK_CLOSE(inv[i], want, 2e-7 * want);
    }
    c.rope_scaling.type = ROPE_SCALING_LINEAR;
    config_rope_inv_freq(&c, inv);
    for (int i = 0; i < 8; i++)
        CHECK_CLOSE(inv[i], pow(500000.0, -2.0 * i / 16) / 8, 2e-7 * inv[i]);
    /* the tables of the model's config turn by those frequencies */
    float cos_t[3 * 8], sin_t[3 * 8];
    rope_tables(cos_t, sin_t, 3, &c);
    CHECK_CLOSE(cos_t[2 * 8 + 1], cos(2.0f * inv[1]), 1e-7);
    CHECK_CLOSE(sin_t[2 * 8 + 5], sin(2.0f * inv[5]), 1e-7);
    config_free(&c);
    json_decref(j);
}

/* Pruned shapes: heads and widths differ per layer, one layer without attention,
 * one without MLP. */
static void test_heterogeneous(void)
{
    static const int H[] = {4, 0, 2, 6, 3}, KV[] = {2, 0, 1, 3, 3}, F[] = {48, 40, 0, 24, 7};
    tiny_spec sp = {.D = 16, .L = 5, .V = 33, .hd = 8, .H = H, .KV = KV, .F = F,
                    .tied = false, .bias = true, .style = ROPE_HALF, .theta = 10000.0f};
    check_against_reference("heterogeneous half bias", &sp, 2, 9, 7);
    sp.style = ROPE_INTERLEAVED;
    sp.bias = false;
    sp.tied = true;
    check_against_reference("heterogeneous interleaved", &sp, 2, 9, 8);
}

/* A batch of B different sequences gives, row for row, what each sequence gives
 * alone: batching does not mix sequences. */
static void test_batch_independence(void)
{
    static const int H[] = {4, 4}, KV[] = {1, 1}, F[] = {32, 32};
    tiny_spec sp = {.D = 16, .L = 2, .V = 29, .hd = 4, .H = H, .KV = KV, .F = F,
                    .tied = true, .style = ROPE_HALF, .theta = 10000.0f};
    model m;
    tiny_model(&m, &sp, 9);
    int B = 4, T = 11, V = sp.V;
    int *tokens = rand_tokens(B * T, V);
    tokens[T] = tokens[0]; /* sequences 0 and 1 share a first token, then differ */
    forward_state s, s1;
    forward_state_init(&s, &m, B, T);
    forward_state_init(&s1, &m, 1, T);
    model_forward(&m, &s, tokens);
    double e = 0;
    for (int b = 0; b < B; b++) {
        model_forward(&m, &s1, tokens + b * T);
        for (int i = 0; i < T * V; i++)
            e = fmax(e, fabs(s1.logits[i] - s.logits[(size_t)b * T * V + i]));
    }
    CHECK(e <= 1e-5);
    /* the saved softmax: rows sum to one, nothing above the diagonal */
    double rowerr = 0, upper = 0;
    for (int bh = 0; bh < B * 4; bh++)
        for (int i = 0; i < T; i++) {
            double sum = 0;
            for (int j = 0; j < T; j++) {
                float p = s.att[((size_t)bh * T + i) * T + j];
                sum += p;
                if (j > i)
                    upper = fmax(upper, fabs(p));
            }
            rowerr = fmax(rowerr, fabs(sum - 1));
        }
    CHECK(rowerr < 1e-5);
    CHECK(upper == 0);
    free(tokens);
    forward_state_free(&s);
    forward_state_free(&s1);
    tiny_free(&m);
}

/* With logits_from F, a pass gives the rows of positions F.. of each sequence,
 * one after the other, as the whole pass gives them; F outside (0, T) dies. */
static void logits_from_out_of_range(void *arg)
{
    forward_state *s = arg;
    s->logits_from = s->T;
    model_forward(NULL, s, NULL);
}

static void test_logits_from(void)
{
    static const int H[] = {4, 4}, KV[] = {2, 2}, F[] = {32, 32};
    tiny_spec sp = {.D = 16, .L = 2, .V = 29, .hd = 4, .H = H, .KV = KV, .F = F,
                    .tied = false, .style = ROPE_HALF, .theta = 10000.0f};
    model m;
    tiny_model(&m, &sp, 10);
    int B = 5, T = 12, V = sp.V, from = 7;
    int *tokens = rand_tokens(B * T, V);
    forward_state s, s1;
    forward_state_init(&s, &m, B, T);
    forward_state_init(&s1, &m, B, T);
    model_forward(&m, &s, tokens);
    s1.logits_from = from;
    model_forward(&m, &s1, tokens);
    double e = 0;
    for (int b = 0; b < B; b++)
        for (int t = from; t < T; t++)
            for (int v = 0; v < V; v++)
                e = fmax(e, fabs(s1.logits[((size_t)b * (T - from) + t - from) * V + v] -
                                 s.logits[((size_t)b * T + t) * V + v]));
    CHECK(e <= 1e-6);
    CHECK(dies_with(logits_from_out_of_range, &s1, "model_forward: logits from position 12 of 12", NULL));
    free(tokens);
    forward_state_free(&s);
    forward_state_free(&s1);
    tiny_free(&m);
}

/* Grouped-query attention equals multi-head attention whose key/value weights
 * repeat each kv head for the query heads that share it (h -> h / (H/KV)). */
static void test_gqa_equals_repeated_mha(void)
{
    static const int H[] = {6}, KV[] = {2}, KVm[] = {6}, F[] = {16};
    int D = 24, hd = 4, V = 31, B = 2, T = 8;
    tiny_spec sp = {.D = D, .L = 1, .V = V, .hd = hd, .H = H, .KV = KV, .F = F,
                    .tied = true, .bias = true, .style = ROPE_INTERLEAVED, .theta = 10000.0f};
    model g, m;
    tiny_model(&g, &sp, 10);
    sp.KV = KVm;
    tiny_model(&m, &sp, 10);
    /* copy every weight of g into m, repeating k/v heads */
    memcpy(m.embed->data, g.embed->data, (size_t)V * D * sizeof(float));
    memcpy(m.final_norm->data, g.final_norm->data, (size_t)D * sizeof(float));
    layer_weights *wg = &g.layers[0], *wm = &m.layers[0];
    memcpy(wm->attn_norm->data, wg->attn_norm->data, (size_t)D * sizeof(float));
    memcpy(wm->ffn_norm->data, wg->ffn_norm->data, (size_t)D * sizeof(float));
    memcpy(wm->wq->data, wg->wq->data, (size_t)6 * hd * D * sizeof(float));
    memcpy(wm->bq->data, wg->bq->data, (size_t)6 * hd * sizeof(float));
    memcpy(wm->wo->data, wg->wo->data, (size_t)D * 6 * hd * sizeof(float));
    memcpy(wm->w_gate->data, wg->w_gate->data, (size_t)16 * D * sizeof(float));
    memcpy(wm->w_up->data, wg->w_up->data, (size_t)16 * D * sizeof(float));
    memcpy(wm->w_down->data, wg->w_down->data, (size_t)D * 16 * sizeof(float));
    memcpy(wm->bo->data, wg->bo->data, (size_t)D * sizeof(float));
    memcpy(wm->bdown->data, wg->bdown->data, (size_t)D * sizeof(float));
    for (int h = 0; h < 6; h++) {
        int kvh = h / 3;
        memcpy(tensor_f32(wm->wk) + (size_t)h * hd * D, tensor_f32(wg->wk) + (size_t)kvh * hd * D, (size_t)hd * D * sizeof(float));
        memcpy(tensor_f32(wm->wv) + (size_t)h * hd * D, tensor_f32(wg->wv) + (size_t)kvh * hd * D, (size_t)hd * D * sizeof(float));
        memcpy(tensor_f32(wm->bk) + h * hd, tensor_f32(wg->bk) + kvh * hd, (size_t)hd * sizeof(float));
        memcpy(tensor_f32(wm->bv) + h * hd, tensor_f32(wg->bv) + kvh * hd, (size_t)hd * sizeof(float));
    }
    int *tokens = rand_tokens(B * T, V);
    forward_state sg, sm;
    forward_state_init(&sg, &g, B, T);
    forward_state_init(&sm, &m, B, T);
    model_forward(&g, &sg, tokens);
    model_forward(&m, &sm, tokens);
    double e = 0;
    for (int i = 0; i < B * T * V; i++)
        e = fmax(e, fabs(sg.logits[i] - sm.logits[i]));
    CHECK(e <= 1e-5);
    free(tokens);
    forward_state_free(&sg);
    forward_state_free(&sm);
    tiny_free(&g);
    tiny_free(&m);
}

/* ---- kernels against their formulas ---- */

/* rope_forward rotates each pair by pos * theta^(-2i/hd): check by hand. */
static void test_rope_formula(void)
{
    enum { T = 40, hd = 16, nh = 2 };
    float theta = 10000.0f;
    float cos_t[T * hd / 2], sin_t[T * hd / 2], inv[hd / 2];
    for (int i = 0; i < hd / 2; i++)
        inv[i] = (float)(1.0 / pow(theta, 2.0 * i / hd));
    rope_tables_freq(cos_t, sin_t, T, hd / 2, inv);
    for (int style = 0; style < 2; style++) {
        float x[T * nh * hd], x0[T * nh * hd];
        fixture_rng = 11 + style;
        for (int i = 0; i < T * nh * hd; i++)
            x0[i] = x[i] = (float)fixture_urand();
        rope_forward(x, cos_t, sin_t, 1, T, nh, hd, nh * hd, (enum rope_style)style);
        double e = 0, enorm = 0;
        for (int t = 0; t < T; t++)
            for (int h = 0; h < nh; h++) {
                const float *a = x0 + (t * nh + h) * hd;
                const float *r = x + (t * nh + h) * hd;
                double n0 = 0, n1 = 0;
                for (int i = 0; i < hd / 2; i++) {
                    double ang = t / pow(theta, 2.0 * i / hd);
                    int p = style == ROPE_HALF ? i : 2 * i, q = style == ROPE_HALF ? i + hd / 2 : 2 * i + 1;
                    double want0 = a[p] * cos(ang) - a[q] * sin(ang);
                    double want1 = a[p] * sin(ang) + a[q] * cos(ang);
                    e = fmax(e, fmax(fabs(r[p] - want0), fabs(r[q] - want1)));
                }
                for (int i = 0; i < hd; i++)
                    n0 += (double)a[i] * a[i], n1 += (double)r[i] * r[i];
                enorm = fmax(enorm, fabs(sqrt(n1) - sqrt(n0)));
            }
        CHECK(e < 2e-5); /* positions up to 39: the fp32 angle is off by <= 39 * 2^-24 */
        CHECK(enorm < 1e-5);
    }
    /* position 0 is the identity; position 1, pair 0 turns by exactly 1 radian */
    CHECK(cos_t[0] == 1.0f && sin_t[0] == 0.0f);
    CHECK_CLOSE(cos_t[hd / 2], cos(1.0), 1e-7);
    CHECK_CLOSE(sin_t[hd / 2], sin(1.0), 1e-7);
    /* a strided buffer: the columns past nh*hd are left alone */
    float y[3 * 20];
    for (int i = 0; i < 60; i++)
        y[i] = (float)i;
    rope_forward(y, cos_t, sin_t, 1, 3, 1, hd, 20, ROPE_INTERLEAVED);
    for (int t = 0; t < 3; t++)
        for (int i = hd; i < 20; i++)
            CHECK(y[t * 20 + i] == (float)(t * 20 + i));
}

static void test_matmul_bias(void)
{
    enum { N = 13, NI = 17, NO = 11 };
    float in[N * NI], w[NO * NI], b[NO], out[N * NO];
    fixture_rng = 12;
    for (int i = 0; i < N * NI; i++)
        in[i] = (float)fixture_urand();
    for (int i = 0; i < NO * NI; i++)
        w[i] = (float)fixture_urand();
    for (int i = 0; i < NO; i++)
        b[i] = (float)fixture_urand();
    tensor wt = tensor_wrap(w, NO, NI), bt = tensor_wrap(b, NO, 0);
    matmul_forward(out, in, &wt, &bt, N);
    double e = 0;
    for (int n = 0; n < N; n++)
        for (int o = 0; o < NO; o++) {
            double s = b[o];
            for (int i = 0; i < NI; i++)
                s += (double)in[n * NI + i] * w[o * NI + i];
            e = fmax(e, fabs(out[n * NO + o] - s));
        }
    CHECK(e < 1e-5);
    /* accumulate adds on top */
    float acc[N * NO];
    for (int i = 0; i < N * NO; i++)
        acc[i] = 1.0f;
    matmul_accumulate(acc, in, &wt, NULL, N);
    e = 0;
    for (int n = 0; n < N; n++)
        for (int o = 0; o < NO; o++)
            e = fmax(e, fabs(acc[n * NO + o] - (1.0f + out[n * NO + o] - b[o])));
    CHECK(e < 1e-5);
    /* and with a bias: 1 + in W^T + b */
    for (int i = 0; i < N * NO; i++)
        acc[i] = 1.0f;
    matmul_accumulate(acc, in, &wt, &bt, N);
    e = 0;
    for (int n = 0; n < N; n++)
        for (int o = 0; o < NO; o++)
            e = fmax(e, fabs(acc[n * NO + o] - (1.0f + out[n * NO + o])));
    CHECK(e < 1e-5);
}

static void test_small_kernels(void)
{
    /* rmsnorm */
    float x[2 * 5] = {1, 2, 3, 4, 5, -1, 0, 0, 0, 0}, w[5] = {1, 2, 1, 0.5f, 1}, out[10], rstd[2];
    rmsnorm_forward(out, rstd, x, w, 2, 5, 1e-5f);
    double r0 = 1 / sqrt(55.0 / 5 + 1e-5);
    CHECK_CLOSE(rstd[0], r0, 1e-6);
    CHECK_CLOSE(out[3], 4 * r0 * 0.5, 1e-6);
    CHECK_CLOSE(out[5], -1 / sqrt(0.2 + 1e-5), 1e-6);
    /* swiglu */
    float g[3] = {-2, 0, 3}, u[3] = {1.5f, 7, -2}, hid[3];
    swiglu_forward(hid, g, u, 3);
    CHECK_CLOSE(hid[0], -2 / (1 + exp(2.0)) * 1.5, 1e-6);
    CHECK(hid[1] == 0);
    CHECK_CLOSE(hid[2], 3 / (1 + exp(-3.0)) * -2, 1e-6);
    /* softmax and cross-entropy, stable for large logits */
    float lg[2 * 3] = {1000, 1001, 1002, -5, 0, 5}, p[6];
    softmax_forward(p, lg, 2, 3);
    double z = 1 + exp(1.0) + exp(2.0);
    CHECK_CLOSE(p[0], 1 / z, 1e-6);
    CHECK_CLOSE(p[2], exp(2.0) / z, 1e-6);
    CHECK_CLOSE(p[3] + p[4] + p[5], 1, 1e-6);
    CHECK_CLOSE(crossentropy_row(lg, 3, 0), log(z) - 0, 1e-9);
    int targets[2] = {2, -1};
    double sum = 0;
    int64_t count = 0;
    nll_accumulate(lg, targets, 2, 3, &sum, &count);
    CHECK(count == 1);
    CHECK_CLOSE(sum, log(z) - 2, 1e-9);
    targets[1] = 1;
    nll_accumulate(lg, targets, 2, 3, &sum, &count);
    CHECK(count == 3);
    CHECK_CLOSE(sum, 2 * (log(z) - 2) + log(exp(-10.0) + exp(-5.0) + 1) + 5, 1e-9);
}

/* Every kernel that splits its rows or values among threads: the same bits on
 * two threads as on one (each row and value is computed alone), on sizes that
 * cut into pieces at odd places (the values cover 5 binades and both signs). */
enum { KR = 301, KD = 517, KV_ = 2 * KD }; /* rows; a norm's width; a row of rope's heads or of logits */

static void fill(float *x, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = ((float)(seed >> 40) / (float)(1 << 24) - 0.5f) * 32.0f * (float)(1 + i % 3);
    }
}

/* The kernels' outputs at the current thread count, one after another in out
 * (KERNEL_OUT floats). */
enum { KERNEL_OUT = 3 * KR * KD + KR + 7 * KR * KV_ };
static void kernels_once(float *out)
{
    size_t n = (size_t)KR * KV_;
    float *a = xmalloc(n * sizeof(float)), *b = xmalloc(n * sizeof(float)), *c = xmalloc(n * sizeof(float));
    float *w = xmalloc(KD * sizeof(float)), *bias = xmalloc(KD * sizeof(float));
    float *cs = xmalloc((size_t)KR * 64 * sizeof(float)), *sn = xmalloc((size_t)KR * 64 * sizeof(float));
    int *targets = xmalloc(KR * sizeof(int)), *pos = xmalloc(KR * sizeof(int));
    fill(a, n, 1), fill(b, n, 2), fill(c, n, 3), fill(w, KD, 4), fill(bias, KD, 5);
    for (int i = 0; i < KR; i++)
        targets[i] = i % 7 == 3 ? -1 : (i * 37) % KV_, pos[i] = (i * 5) % KR;
    for (int i = 0; i < KR * 64; i++)
        cs[i] = cosf(0.01f * (float)i), sn[i] = sinf(0.01f * (float)i);
    float *o = out;
    rmsnorm_forward(o, o + KR * KD, a, w, KR, KD, 1e-5f), o += KR * KD + KR;
    layernorm_forward(o, NULL, a, w, bias, KR, KD, 1e-5f), o += KR * KD;
    memcpy(o, a, (size_t)KR * KD * sizeof(float));
    rmsnorm_forward(o, NULL, o, w, KR, KD, 1e-5f), o += KR * KD; /* in place */
    swiglu_forward(o, a, b, (int64_t)n), o += n;
    memcpy(o, a, n * sizeof(float));
    memcpy(o + n, b, n * sizeof(float));
    swiglu_backward(o, o + n, c, o, o + n, (int64_t)n), o += 2 * n; /* in place, as layer.c calls it */
    gelu_forward(o, a, (int64_t)n), o += n;
    gelu_backward(o, b, a, (int64_t)n), o += n;
    memcpy(o, a, n * sizeof(float));
    /* 8 heads of 128 (rotated: 64 channels at 32 of each) in rows of KV_, 7 sequences of 43 */
    rope_part_forward(o, cs, sn, 7, 43, 8, 128, 64, 32, pos, KV_, ROPE_INTERLEAVED);
    rope_part_backward(o, cs, sn, 7, 43, 8, 128, 64, 0, NULL, KV_, ROPE_HALF), o += n;
    crossentropy_softmax_backward(o, a, targets, KR, KV_, 0.25f), o += n;
    CHECK(o == out + KERNEL_OUT);
    free(a), free(b), free(c), free(w), free(bias), free(cs), free(sn), free(targets), free(pos);
}

static void test_kernels_threads(void)
{
    float *one = xmalloc(KERNEL_OUT * sizeof(float)), *two = xmalloc(KERNEL_OUT * sizeof(float));
    blas_set_threads(1);
    kernels_once(one);
    blas_set_threads(2);
    kernels_once(two);
    blas_set_threads(0);
    CHECK(!memcmp(one, two, KERNEL_OUT * sizeof(float)));
    free(one), free(two);
}

/* ---- golden: stories260K against llama2.c run.c ---- */

/* Logits at the last position for each sequence of the golden file, within 1e-4
 * (absolute). model_dir is relative to $PARE_DATA. */
static void check_golden(const char *model_rel)
{
    const char *data = check_data_dir();
    char *path = xasprintf("%s/%s", data, model_rel);
    char *gold = xasprintf("%s/../golden/stories260K-logits.txt", data);
    if (!path_exists(path) || !path_exists(gold)) {
        fprintf(stderr, "    (skipped: %s or %s missing)\n", path, gold);
        free(path), free(gold);
        return;
    }
    model m;
    model_load(&m, path, NULL);
    FILE *f = fopen(gold, "r");
    CHECK(f != NULL);
    char *line = NULL;
    size_t cap = 0;
    int cases = 0;
    double worst = 0;
    while (f && getline(&line, &cap, f) > 0) {
        if (strncmp(line, "tokens:", 7) != 0)
            continue;
        int tokens[1024], T = 0, used;
        const char *p = line + 7;
        while (T < 1024 && sscanf(p, "%d%n", &tokens[T], &used) == 1)
            T++, p += used;
        if (getline(&line, &cap, f) <= 0)
            break;
        int V = m.cfg.vocab;
        forward_state s;
        forward_state_init(&s, &m, 1, T);
        model_forward(&m, &s, tokens);
        const float *last = s.logits + (size_t)(T - 1) * V;
        p = line;
        double e = 0, want;
        int n = 0;
        while (n < V && sscanf(p, "%lf%n", &want, &used) == 1) {
            e = fmax(e, fabs(last[n] - want));
            n++, p += used;
        }
        CHECK(n == V);
        CHECK(e <= 1e-4);
        worst = fmax(worst, e);
        cases++;
        forward_state_free(&s);
    }
    free(line);
    if (f)
        fclose(f);
    CHECK(cases >= 3);
    fprintf(stderr, "    %s (rope %s): %d sequences, max |logit error| %.2g\n", model_rel,
            m.cfg.rope_style == ROPE_HALF ? "half" : "interleaved", cases, worst);
    model_free(&m);
    free(path), free(gold);
}

static void test_golden_stories260k(void)
{
    check_golden("models/stories260K/stories260K.bin");
}

/* The same model converted to Hugging Face layout (q/k rows permuted for the
 * half-split rotation) gives the same logits. */
static void test_golden_stories260k_hf(void)
{
    check_golden("models/stories260K-hf");
}

int main(int argc, char **argv)
{
    blas_init(argc, argv);
    set_progname(argv[0]);
    blas_set_threads(0);
    TEST(test_rope_formula);
    TEST(test_matmul_bias);
    TEST(test_small_kernels);
    TEST(test_kernels_threads);
    TEST(test_mha_tied);
    TEST(test_gqa2_untied);
    TEST(test_gqa4_bias);
    TEST(test_heterogeneous);
    TEST(test_rope_scaling);
    TEST(test_today_models);
    TEST(test_batch_independence);
    TEST(test_logits_from);
    TEST(test_gqa_equals_repeated_mha);
    TEST(test_golden_stories260k);
    TEST(test_golden_stories260k_hf);
    return check_report();
}
