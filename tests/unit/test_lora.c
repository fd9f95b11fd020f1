/* test_lora.c - LoRA adapters: the adapters' gradients from the training pass
 * (model_loss_backward with a frozen base) against central finite differences of
 * the double-precision references (ref_llama.h, ref_chatglm.h) with the adapters
 * (dropout included), on tiny random models of every shape (MHA, GQA, biases,
 * pruned layers; ChatGLM-6B and ChatGLM2 with adapters on their fused maps); the
 * same with the distillation loss (a teacher's distribution, whole or top-k, the
 * gradient through the student only: compute/distill.h against ref_distill.h); the
 * same loss from the eval forward passes (model_forward, kv_cache_forward);
 * the merged model against base + adapter; the adapter stream round trip;
 * initialisation, dropout, targets and their names per architecture.
 *
 * A gradient passes when, for every checked element, |analytic - fd| <= 1e-3 *
 * max(|fd|, floor), the floor being 1e-3 of the largest |fd| of the tensor.
 *
 * Letters: B sequences, T tokens, N = B*T, D hidden, V vocab, H query heads,
 * KV key/value heads, hd head dim, F MLP width, r rank, I/O a map's in/out width. */
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "base/blas.h"
#include "base/util.h"
#include "check.h"
#include "compute/backward.h"
#include "compute/distill.h"
#include "compute/forward.h"
#include "compute/kv_cache.h"
#include "compute/lora.h"
#include "fixture.h"
#include "format/adapter.h"
#include "model/model.h"
#include "ref_chatglm.h"
#include "ref_distill.h"
#include "ref_llama.h"

static const double FD_TOL = 1e-3, FD_FLOOR = 1e-3, FD_STEP = 1e-5;


/* ---- the double-precision references (ref_llama.h, ref_chatglm.h) with the adapters as doubles ---- */

static struct {
    const model *m;
    ref_model r;  /* the base model (LLaMA) */
    const lora_set *s;
    double *p;    /* (n_params) the adapters (perturbed by the finite differences) */
    const int *tokens, *targets;
    int B, T;
    int b;        /* the sequence the ChatGLM reference is at */
    bool drop;    /* the training pass's dropout */
    const distill_teacher *teacher; /* the distillation loss's teacher, or NULL: cross-entropy */
    float tau, w;
} R;

/* y (O) += scale * B A drop(x) for row n of adapter a, from R.p. */
static void add_adapter(const lora_adapter *a, int n, const double *x, int nin, double *y, int nout)
{
    int r = R.s->rank;
    double u[64];
    for (int k = 0; k < r; k++) {
        double s = 0;
        for (int i = 0; i < nin; i++) {
            double f = R.drop ? lora_dropout_factor(R.s, a->layer, a->target, n, i) : 1.0;
            s += R.p[a->a + (size_t)k * nin + i] * x[i] * f;
        }
        u[k] = s;
    }
    for (int o = 0; o < nout; o++) {
        double s = 0;
        for (int k = 0; k < r; k++)
            s += R.p[a->b + (size_t)o * r + k] * u[k];
        y[o] += R.s->scale * s;
    }
}

/* The LLaMA reference's hook: the adapter of (l, map), if any. */
static void ref_adapter(void *ctx, int l, enum ref_linear which, int n, const double *x, int nin, double *y, int nout)
{
    (void)ctx;
    static const int target[] = {[REF_LINEAR_Q] = LORA_Q,       [REF_LINEAR_K] = LORA_K,
                                 [REF_LINEAR_V] = LORA_V,       [REF_LINEAR_O] = LORA_O,
                                 [REF_LINEAR_GATE] = LORA_GATE, [REF_LINEAR_UP] = LORA_UP,
                                 [REF_LINEAR_DOWN] = LORA_DOWN};
    if (which == REF_LINEAR_HEAD)
        return;
    const lora_adapter *a = lora_find(R.s, l, target[which]);
    if (a)
        add_adapter(a, n, x, nin, y, nout);
}

/* The ChatGLM reference's hook: the adapter of the weight so named, if any (an
 * adapter names the weight it adapts: pare-stream(5)); row n of the batch is
 * token t of sequence R.b. */
static void glm_adapter(void *ctx, const char *weight, int t, const double *x, int nin, double *y, int nout)
{
    (void)ctx;
    for (int k = 0; k < R.s->n; k++)
        if (!strcmp(R.s->ad[k].name, weight)) {
            if (R.s->ad[k].nin != nin || R.s->ad[k].nout != nout)
                CHECK(!"an adapter's shape is its map's");
            else
                add_adapter(&R.s->ad[k], R.b * R.T + t, x, nin, y, nout);
        }
}

/* The logits (B*T, V) of R.tokens with the adapters, the reference's. */
static void ref_logits_at_R(double *lg)
{
    int V = R.m->cfg.vocab, T = R.T;
    if (R.m->cfg.arch == ARCH_LLAMA) {
        ref_hooks hooks = {.linear = ref_adapter};
        ref_forward(&R.r, R.tokens, R.B, T, &hooks, lg);
        return;
    }
    ref_chatglm_hooks hooks = {.linear = glm_adapter};
    for (R.b = 0; R.b < R.B; R.b++)
        ref_chatglm_logits_hooked(R.m, R.tokens + R.b * T, T, 0, &hooks, lg + (size_t)R.b * T * V);
}

/* The loss of R.tokens against R.targets with the adapters: the mean
 * cross-entropy, or with R.teacher the distillation loss (ref_distill.h). */
static double ref_loss_at_R(void)
{
    int N = R.B * R.T, V = R.m->cfg.vocab;
    double *lg = xmalloc((size_t)N * V * sizeof *lg);
    ref_logits_at_R(lg);
    double loss = ref_distill_loss(lg, R.targets, N, V, R.teacher, R.teacher ? R.tau : 1, R.teacher ? R.w : 0,
                                   NULL, NULL);
    free(lg);
    return loss;
}

/* The training pass's loss and adapters' gradients: model_loss_backward, or
 * with R.teacher the distillation loss between its two halves. */
static double lib_loss_backward(const model *m, backward_state *t, const int *tokens, const int *targets)
{
    if (!R.teacher)
        return model_loss_backward(m, t, tokens, targets, NULL, NULL, NULL);
    int N = R.B * R.T, V = m->cfg.vocab;
    int64_t count = 0;
    for (int i = 0; i < N; i++)
        count += targets[i] >= 0;
    float *logits = model_forward_kept(m, t, tokens, NULL, NULL);
    distill_sums s = {0};
    uint8_t *mark = xcalloc((size_t)V, 1);
    distill_loss(logits, logits, targets, N, V, R.teacher, R.tau, R.w, (float)(1.0 / count), &s, mark);
    model_backward_from_logits(m, t, tokens, NULL, NULL);
    free(mark);
    return (R.w * s.kd + (1 - R.w) * s.ce) / count;
}

/* ---- models and adapters ---- */


/* Adapters on targets with A as initialised and B random (of the size A B's term
 * needs to matter), so that both gradients are non-trivial. */
static lora_set *random_adapters(const model *m, unsigned targets, int rank, double alpha, float dropout,
                                 uint64_t seed)
{
    lora_set *s = xcalloc(1, sizeof *s);
    lora_init(s, m, targets, rank, alpha);
    lora_init_weights(s, seed);
    for (int k = 0; k < s->n; k++)
        for (size_t i = 0; i < (size_t)s->ad[k].nout * rank; i++)
            s->params[s->ad[k].b + i] = (float)(0.3 * fixture_urand() / sqrt((double)rank));
    s->dropout = dropout;
    s->seed = seed;
    s->pass = 12345;
    return s;
}

/* Central differences of the reference's loss at R.p[idx[j]] against ga. */
static double fd_check_at(const char *what, const int64_t *idx, int n_idx, const float *ga)
{
    double *fd = xmalloc((size_t)n_idx * sizeof(double)), scale = 0;
    for (int j = 0; j < n_idx; j++) {
        double x0 = R.p[idx[j]], h = FD_STEP * fmax(1.0, fabs(x0));
        R.p[idx[j]] = x0 + h;
        double fp = ref_loss_at_R();
        R.p[idx[j]] = x0 - h;
        double fm = ref_loss_at_R();
        R.p[idx[j]] = x0;
        fd[j] = (fp - fm) / (2 * h);
        scale = fmax(scale, fabs(fd[j]));
    }
    double floor = fmax(FD_FLOOR * scale, 1e-300), worst = 0;
    int worst_j = -1;
    for (int j = 0; j < n_idx; j++) {
        double e = fabs(ga[idx[j]] - fd[j]) / fmax(fabs(fd[j]), floor);
        if (e > worst)
            worst = e, worst_j = j;
    }
    if (!(worst < FD_TOL) && worst_j >= 0)
        fprintf(stderr, "    %s: element %lld: analytic %.9g, finite difference %.9g (rel %.3g)\n", what,
                (long long)idx[worst_j], ga[idx[worst_j]], fd[worst_j], worst);
    CHECK(worst < FD_TOL);
    CHECK(scale > 0);
    free(fd);
    return worst;
}

static double worst_all;

/* The adapters' gradients of m + s at a random batch against finite differences:
 * every A and B, n_rand random elements of each plus its largest gradient. */
static void check_gradient(const char *what, const model *m, lora_set *s, int B, int T)
{
    int N = B * T, V = m->cfg.vocab;
    int *tokens = xmalloc(N * sizeof(int)), *targets = xmalloc(N * sizeof(int));
    fixture_batch(tokens, targets, B, T, V);
    lora_alloc_grads(s);
    backward_state *t = backward_state_new(m, B, T);
    backward_state_set_lora(t, s);
    R.m = m, R.s = s, R.tokens = tokens, R.targets = targets, R.B = B, R.T = T, R.drop = true;
    double loss = lib_loss_backward(m, t, tokens, targets);
    /* every layer's internals kept from the forward pass (dropout and all): the
     * same loss and gradients, bit for bit */
    float *g0 = xmalloc(s->n_params * sizeof(float));
    memcpy(g0, s->grads, s->n_params * sizeof(float));
    memset(s->grads, 0, s->n_params * sizeof(float));
    size_t all = 0;
    for (int l = 0; l < m->cfg.n_layers; l++)
        all += backward_layer_kept_bytes(m, l, B, T);
    CHECK(backward_state_keep(t, m, all) == all);
    CHECK(lib_loss_backward(m, t, tokens, targets) == loss);
    CHECK(!memcmp(g0, s->grads, s->n_params * sizeof(float)));
    free(g0);

    if (m->cfg.arch == ARCH_LLAMA)
        ref_model_init(&R.r, m);
    R.p = xmalloc(s->n_params * sizeof(double));
    for (size_t i = 0; i < s->n_params; i++)
        R.p[i] = s->params[i];
    CHECK_CLOSE(ref_loss_at_R(), loss, 1e-5);

    double worst = 0;
    int checked = 0;
    enum { n_rand = 6 };
    int64_t idx[n_rand + 1];
    for (int k = 0; k < s->n; k++) {
        const lora_adapter *a = &s->ad[k];
        for (int which = 0; which < 2; which++) {
            size_t off = which ? a->b : a->a, n = (size_t)a->nin * s->rank;
            if (which)
                n = (size_t)a->nout * s->rank;
            size_t top = 0;
            for (size_t i = 1; i < n; i++)
                if (fabsf(s->grads[off + i]) > fabsf(s->grads[off + top]))
                    top = i;
            idx[0] = (int64_t)(off + top);
            for (int j = 1; j <= n_rand; j++)
                idx[j] = (int64_t)(off + (size_t)fixture_irand((int)n));
            char label[200];
            snprintf(label, sizeof label, "%s: %s.lora_%c", what, a->name, which ? 'B' : 'A');
            worst = fmax(worst, fd_check_at(label, idx, n_rand + 1, s->grads));
            checked += n_rand + 1;
        }
    }
    fprintf(stderr, "    %-34s loss %.4f, %4d elements of %2d adapters, worst relative error %.2g\n", what, loss,
            checked, s->n, worst);
    worst_all = fmax(worst_all, worst);

    /* without dropout the training pass's loss is the eval forward's */
    double p = s->dropout;
    s->dropout = 0;
    double loss0 = lib_loss_backward(m, t, tokens, targets);
    forward_state st;
    forward_state_init(&st, m, B, T);
    st.lora = s;
    model_forward(m, &st, tokens);
    double nll = 0;
    int64_t count = 0;
    if (R.teacher) { /* validation's loss */
        distill_sums ds = {0};
        uint8_t *mark = xcalloc((size_t)V, 1);
        distill_loss(st.logits, NULL, targets, N, V, R.teacher, R.tau, R.w, 1, &ds, mark);
        nll = R.w * ds.kd + (1 - R.w) * ds.ce, count = ds.count;
        free(mark);
    } else {
        nll_accumulate(st.logits, targets, N, V, &nll, &count);
    }
    CHECK_CLOSE(loss0, nll / count, 1e-6);
    R.drop = false;
    CHECK_CLOSE(ref_loss_at_R(), loss0, 1e-5);
    s->dropout = p;

    forward_state_free(&st);
    if (m->cfg.arch == ARCH_LLAMA)
        ref_model_free(&R.r);
    free(R.p);
    backward_state_free(t);
    free(tokens), free(targets);
}

/* Gradients of random adapters on targets of m, which it frees. */
static void check_model(const char *what, model *m, unsigned targets, float dropout, int B, int T, uint64_t seed)
{
    lora_set *s = random_adapters(m, targets, 4, 8.0, dropout, seed);
    check_gradient(what, m, s, B, T);
    lora_destroy(s);
    model_free(m);
}

static void check_shape(const char *what, const fixture_shape *sp, unsigned targets, float dropout, int B, int T,
                        uint64_t seed)
{
    model m;
    fixture_model(&m, sp, seed);
    check_model(what, &m, targets, dropout, B, T, seed);
}

static const int h4[] = {4, 4, 4}, f24[] = {24, 24, 24}, kv2[] = {2, 2, 2}, kv1[] = {1, 1, 1};

static void test_gradient_mha(void)
{
    fixture_shape sp = {.D = 16, .L = 2, .V = 23, .hd = 4, .H = h4, .KV = h4, .F = f24, .tied = true, .style = ROPE_HALF};
    check_shape("mha tied, all targets, dropout", &sp, LORA_ALL_TARGETS, 0.2f, 2, 5, 1);
    sp.tied = false, sp.style = ROPE_INTERLEAVED;
    check_shape("mha untied, all targets, no dropout", &sp, LORA_ALL_TARGETS, 0.0f, 2, 5, 2);
}

static void test_gradient_gqa(void)
{
    fixture_shape sp = {.D = 16, .L = 3, .V = 19, .hd = 4, .H = h4, .KV = kv2, .F = f24, .style = ROPE_HALF};
    check_shape("gqa 2:1, all targets, dropout", &sp, LORA_ALL_TARGETS, 0.1f, 2, 6, 3);
    sp.KV = kv1, sp.tied = true;
    check_shape("mqa, q and v only, dropout", &sp, (1u << LORA_Q) | (1u << LORA_V), 0.3f, 1, 7, 4);
}

static void test_gradient_bias(void)
{
    fixture_shape sp = {.D = 16, .L = 2, .V = 21, .hd = 4, .H = h4, .KV = kv2, .F = f24, .qkv_bias = true,
                .o_bias = true, .down_bias = true, .style = ROPE_HALF};
    check_shape("gqa all biases, dropout", &sp, LORA_ALL_TARGETS, 0.05f, 2, 5, 5);
}

static void test_gradient_pruned(void)
{
    static const int H[] = {4, 0, 2, 6, 0}, KV[] = {2, 0, 1, 3, 0}, F[] = {20, 12, 0, 7, 0};
    fixture_shape sp = {.D = 12, .L = 5, .V = 17, .hd = 4, .H = H, .KV = KV, .F = F, .qkv_bias = true, .down_bias = true,
                .style = ROPE_INTERLEAVED};
    check_shape("pruned layers, dropout", &sp, LORA_ALL_TARGETS, 0.1f, 2, 4, 6);
}

/* Tiny ChatGLM-6B and ChatGLM2 models (head dim 4): whole, and pruned (per-layer
 * heads and MLP widths, sub-blocks removed). */
static const char glm6b[] =
    "{\"model_type\":\"chatglm\",\"hidden_size\":16,\"num_layers\":2,\"vocab_size\":23,\"num_attention_heads\":4,"
    "\"inner_hidden_size\":24,\"position_encoding_2d\":true,\"residual_scale_layers\":6}";
static const char glm6b_pruned[] =
    "{\"model_type\":\"chatglm\",\"hidden_size\":16,\"num_layers\":3,\"vocab_size\":19,\"num_attention_heads\":[4,2,3],"
    "\"head_dim\":4,\"inner_hidden_size\":[24,9,0],\"position_encoding_2d\":true}";
static const char glm2[] =
    "{\"model_type\":\"chatglm\",\"hidden_size\":16,\"num_layers\":2,\"padded_vocab_size\":23,"
    "\"num_attention_heads\":4,\"multi_query_attention\":true,\"multi_query_group_num\":2,\"kv_channels\":4,"
    "\"ffn_hidden_size\":24,\"add_qkv_bias\":true}";
static const char glm2_pruned[] =
    "{\"model_type\":\"chatglm\",\"hidden_size\":16,\"num_layers\":4,\"padded_vocab_size\":17,"
    "\"num_attention_heads\":[4,0,2,2],\"multi_query_attention\":true,\"multi_query_group_num\":[2,0,1,2],"
    "\"kv_channels\":4,\"ffn_hidden_size\":[24,12,0,7],\"add_qkv_bias\":true}";

static void check_config(const char *what, const char *config, unsigned targets, float dropout, int B, int T,
                         uint64_t seed)
{
    model m;
    fixture_config_model(&m, config, seed);
    check_model(what, &m, targets, dropout, B, T, seed);
}

static void test_gradient_chatglm(void)
{
    unsigned qkv = 1u << LORA_QKV, gate_up = 1u << LORA_GATE_UP;
    check_config("chatglm-6b, all targets, dropout", glm6b, LORA_ALL_TARGETS, 0.1f, 2, 5, 51);
    check_config("chatglm-6b, query_key_value only", glm6b, qkv, 0.0f, 2, 5, 52);
    check_config("chatglm-6b pruned, all, dropout", glm6b_pruned, LORA_ALL_TARGETS, 0.2f, 2, 4, 53);
    check_config("chatglm2, all targets, dropout", glm2, LORA_ALL_TARGETS, 0.1f, 2, 5, 54);
    check_config("chatglm2, fused maps only", glm2, qkv | gate_up, 0.0f, 2, 5, 55);
    check_config("chatglm2 pruned, all, dropout", glm2_pruned, LORA_ALL_TARGETS, 0.1f, 2, 4, 56);
    fprintf(stderr, "    worst relative error of the adapters' gradients: %.2g\n", worst_all);
}

/* The distillation loss's gradient through the student: a teacher of random
 * logits (N, V) at scale 3, whole or its top k (k > 0) at tau. */
static void check_distill(const char *what, model *m, unsigned targets, float dropout, int B, int T, uint64_t seed,
                          int k, float tau, float w)
{
    int N = B * T, V = m->cfg.vocab;
    float *y = xmalloc((size_t)N * V * sizeof *y);
    for (int i = 0; i < N * V; i++)
        y[i] = (float)(3 * fixture_urand());
    distill_teacher t;
    fixture_teacher(&t, y, N, V, k, tau);
    R.teacher = &t, R.tau = tau, R.w = w;
    check_model(what, m, targets, dropout, B, T, seed);
    R.teacher = NULL;
    fixture_teacher_free(&t);
    free(y);
}

static void test_gradient_distill(void)
{
    fixture_shape sp = {.D = 16, .L = 2, .V = 23, .hd = 4, .H = h4, .KV = kv2, .F = f24, .style = ROPE_HALF};
    model m;
    fixture_model(&m, &sp, 61);
    check_distill("kd gqa whole, tau 2, w .7, dropout", &m, LORA_ALL_TARGETS, 0.1f, 2, 5, 61, 0, 2, 0.7f);
    sp.KV = h4, sp.tied = true, sp.style = ROPE_INTERLEAVED;
    fixture_model(&m, &sp, 62);
    check_distill("kd mha tied top-4, tau 1, w 1", &m, LORA_ALL_TARGETS, 0.0f, 2, 5, 62, 4, 1, 1);
    fixture_config_model(&m, glm2, 63);
    check_distill("kd chatglm2 whole, tau 1, w 1", &m, LORA_ALL_TARGETS, 0.1f, 2, 5, 63, 0, 1, 1);
    fixture_config_model(&m, glm6b, 64);
    check_distill("kd chatglm-6b top-5, tau .5, w .5", &m, LORA_ALL_TARGETS, 0.1f, 2, 4, 64, 5, 0.5f, 0.5f);
}

/* A frozen base: no sink, no base gradient; the adapters' gradients are those a
 * pass with a sink gives. */
static void count_sink(void *ctx, int layer, const weight_grad *g, int n)
{
    (void)layer, (void)g;
    *(int *)ctx += n;
}

static void test_frozen_base(void)
{
    fixture_shape sp = {.D = 16, .L = 2, .V = 23, .hd = 4, .H = h4, .KV = kv2, .F = f24, .style = ROPE_HALF};
    model m;
    fixture_model(&m, &sp, 11);
    lora_set *s = random_adapters(&m, LORA_ALL_TARGETS, 2, 4.0, 0.1f, 11);
    int B = 2, T = 6, tokens[12], targets[12];
    fixture_batch(tokens, targets, B, T, sp.V);
    backward_state *t = backward_state_new(&m, B, T);
    backward_state_set_lora(t, s);
    lora_alloc_grads(s);
    int delivered = 0;
    double l1 = model_loss_backward(&m, t, tokens, targets, count_sink, NULL, &delivered);
    float *g1 = xmalloc(s->n_params * sizeof(float));
    memcpy(g1, s->grads, s->n_params * sizeof(float));
    lora_alloc_grads(s);
    double l2 = model_loss_backward(&m, t, tokens, targets, NULL, NULL, NULL);
    CHECK(delivered == m.n_tensors);
    CHECK(l1 == l2);
    CHECK(!memcmp(g1, s->grads, s->n_params * sizeof(float)));
    /* gradients add up over passes (accumulation) */
    model_loss_backward(&m, t, tokens, targets, NULL, NULL, NULL);
    double e = 0;
    for (size_t i = 0; i < s->n_params; i++)
        e = fmax(e, fabs(s->grads[i] - 2 * g1[i]));
    CHECK(e < 1e-6);
    free(g1);
    backward_state_free(t);
    lora_destroy(s);
    model_free(&m);
}

/* The merged model's logits are base + adapter's, in both eval forward passes:
 * mg is m with s merged (lora_merge), m the base the adapters run beside. */
static void check_merge(const char *what, const model *m, const model *mg, lora_set *s, int B, int T)
{
    int N = B * T, V = m->cfg.vocab, *tokens = xmalloc((size_t)N * sizeof(int)), *targets = xmalloc((size_t)N * sizeof(int));
    fixture_batch(tokens, targets, B, T, V);
    forward_state a, b, c;
    forward_state_init(&a, m, B, T);
    a.lora = s;
    forward_state_init(&b, mg, B, T);
    model_forward(m, &a, tokens);
    model_forward(mg, &b, tokens);
    double e = 0, diff = 0;
    for (int i = 0; i < N * V; i++)
        e = fmax(e, fabs(a.logits[i] - b.logits[i]) / fmax(1, fabs(b.logits[i])));
    /* and the adapter matters */
    forward_state_init(&c, m, B, T);
    model_forward(m, &c, tokens);
    for (int i = 0; i < N * V; i++)
        diff = fmax(diff, fabs(a.logits[i] - c.logits[i]));
    fprintf(stderr, "    %s: merged vs base + adapter: max relative logit difference %.2g (adapter moves them %.2g)\n",
            what, e, diff);
    CHECK(e < 1e-5);
    CHECK(diff > 1e-2);
    /* the cached forward (zero-shot tasks, generation) adds the adapters too */
    kv_cache kc;
    kv_cache_init(&kc, m, 1, T, T, T);
    kc.lora = s;
    int len = T, slot = 0, *out = xmalloc((size_t)T * sizeof(int));
    for (int i = 0; i < T; i++)
        out[i] = i;
    kv_cache_forward(m, &kc, tokens, 1, &len, &slot, true, out, T);
    double ec = 0;
    for (int i = 0; i < T * V; i++)
        ec = fmax(ec, fabs(kc.logits[i] - b.logits[i]) / fmax(1, fabs(b.logits[i])));
    CHECK(ec < 1e-5);
    kv_cache_free(&kc);
    /* a smaller batch in the same buffers */
    forward_state_set_batch(&a, 1, 4);
    model_forward(m, &a, tokens);
    double es = 0;
    for (int t = 0; t < 4; t++)
        for (int v = 0; v < V; v++)
            es = fmax(es, fabs(a.logits[t * V + v] - b.logits[t * V + v]) / fmax(1, fabs(b.logits[t * V + v])));
    CHECK(es < 1e-5);
    forward_state_free(&a), forward_state_free(&b), forward_state_free(&c);
    free(out), free(tokens), free(targets);
}

static void test_merge(void)
{
    fixture_shape sp = {.D = 16, .L = 3, .V = 31, .hd = 4, .H = h4, .KV = kv2, .F = f24, .qkv_bias = true,
                .down_bias = true, .style = ROPE_HALF};
    model m, mg;
    fixture_model(&m, &sp, 21);
    fixture_model(&mg, &sp, 21);
    lora_set *s = random_adapters(&m, LORA_ALL_TARGETS, 8, 16.0, 0.05f, 21);
    lora_merge(s, &mg);
    check_merge("llama", &m, &mg, s, 2, 7);
    lora_destroy(s);
    model_free(&m), model_free(&mg);
    /* ChatGLM, the fused maps merged whole */
    const char *configs[] = {glm6b, glm2, glm2_pruned}, *names[] = {"chatglm-6b", "chatglm2", "chatglm2 pruned"};
    for (int k = 0; k < 3; k++) {
        fixture_config_model(&m, configs[k], 22 + k);
        fixture_config_model(&mg, configs[k], 22 + k);
        s = random_adapters(&m, LORA_ALL_TARGETS, 4, 8.0, 0.05f, 22 + k);
        lora_merge(s, &mg);
        check_merge(names[k], &m, &mg, s, 2, 6);
        lora_destroy(s);
        model_free(&m), model_free(&mg);
    }
}

/* Write, read back: the same adapters; a model with other weights is refused
 * (checked in lora.bats, as it dies). */
static void test_stream_round_trip(void)
{
    fixture_shape sp = {.D = 16, .L = 2, .V = 23, .hd = 4, .H = h4, .KV = kv2, .F = f24, .style = ROPE_HALF};
    model m;
    fixture_model(&m, &sp, 31);
    lora_set *s = random_adapters(&m, (1u << LORA_Q) | (1u << LORA_DOWN) | (1u << LORA_O), 3, 5.0, 0.05f, 31);
    char path[] = "/tmp/test_lora_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    char *argv[] = {"test_lora"};
    json_t *training = json_pack("{s:i}", "steps", 3);
    adapter_write(s, &m, path, 1, argv, training, NULL);
    json_decref(training);
    lora_set back;
    adapter_read(&back, path, &m);
    CHECK(back.rank == 3 && back.alpha == 5.0 && back.targets == s->targets && back.n == s->n);
    CHECK(back.n_params == s->n_params && !memcmp(back.params, s->params, s->n_params * sizeof(float)));
    CHECK(!strcmp(back.fingerprint, s->fingerprint));
    lora_free(&back);
    /* loaded for the model, to be passed beside it */
    lora_set *loaded = adapter_load(path, &m);
    CHECK(loaded && loaded->n == s->n);
    lora_destroy(loaded);
    unlink(path);
    lora_free(s);
    free(s);
    model_free(&m);
}

static void test_init_dropout_targets(void)
{
    fixture_shape sp = {.D = 32, .L = 2, .V = 23, .hd = 4, .H = h4, .KV = kv2, .F = f24, .style = ROPE_HALF};
    model m;
    fixture_model(&m, &sp, 41);
    lora_set s;
    lora_init(&s, &m, LORA_ALL_TARGETS, 8, 16.0);
    lora_init_weights(&s, 42);
    CHECK(s.n == 2 * 7 && s.scale == 2.0f);
    double mean = 0, sq = 0;
    int64_t cnt = 0;
    bool bounded = true, b_zero = true;
    for (int k = 0; k < s.n; k++) {
        const lora_adapter *a = &s.ad[k];
        double bound = 1 / sqrt((double)a->nin);
        for (size_t i = 0; i < (size_t)s.rank * a->nin; i++) {
            double v = s.params[a->a + i];
            bounded &= fabs(v) <= bound;
            mean += v / bound, sq += v * v / (bound * bound), cnt++;
        }
        for (size_t i = 0; i < (size_t)a->nout * s.rank; i++)
            b_zero &= s.params[a->b + i] == 0;
    }
    CHECK(bounded && b_zero);
    CHECK(fabs(mean / cnt) < 0.05);           /* uniform on [-b, b]: mean 0 */
    CHECK(fabs(sq / cnt - 1.0 / 3) < 0.03);   /* variance b^2 / 3 */
    /* the same seed, the same A; adapters do not depend on the targets chosen */
    lora_set q;
    lora_init(&q, &m, 1u << LORA_Q, 8, 16.0);
    lora_init_weights(&q, 42);
    CHECK(q.n == 2 && !memcmp(q.params + q.ad[1].a, s.params + s.ad[7].a, (size_t)8 * 32 * sizeof(float)));
    lora_free(&q);
    /* dropout: the rate, determinism, a new mask per pass and per adapter */
    s.dropout = 0.25f, s.seed = 7, s.pass = 3;
    int dropped = 0, same_pass = 0, other_pass = 0, other_target = 0, n = 4000;
    for (int i = 0; i < n; i++) {
        float f = lora_dropout_factor(&s, 1, LORA_UP, i / 32, i % 32);
        CHECK(f == 0.0f || f == (float)(1.0 / 0.75));
        dropped += f == 0;
        same_pass += f == lora_dropout_factor(&s, 1, LORA_UP, i / 32, i % 32);
        other_target += f == lora_dropout_factor(&s, 1, LORA_GATE, i / 32, i % 32);
    }
    s.pass = 4;
    for (int i = 0; i < n; i++) {
        s.pass = 3;
        float f = lora_dropout_factor(&s, 1, LORA_UP, i / 32, i % 32);
        s.pass = 4;
        other_pass += f == lora_dropout_factor(&s, 1, LORA_UP, i / 32, i % 32);
    }
    CHECK(fabs(dropped / (double)n - 0.25) < 0.03);
    CHECK(same_pass == n && other_pass < n * 0.8 && other_target < n * 0.8);
    lora_free(&s);
    /* targets */
    unsigned llama_all = lora_arch_targets(ARCH_LLAMA);
    CHECK(lora_targets_parse(ARCH_LLAMA, "q_proj,v_proj") == ((1u << LORA_Q) | (1u << LORA_V)));
    CHECK(lora_targets_parse(ARCH_LLAMA, "all") == llama_all);
    CHECK(lora_targets_parse(ARCH_LLAMA, "q,k,v,o,gate,up,down") == llama_all);
    CHECK(lora_targets_parse(ARCH_LLAMA, "q_proj,lm_head") == 0 && lora_targets_parse(ARCH_LLAMA, "") == 0);
    char *str = lora_targets_string(ARCH_LLAMA, (1u << LORA_DOWN) | (1u << LORA_K));
    CHECK(!strcmp(str, "k_proj,down_proj"));
    free(str);
    model_free(&m);
}

/* ChatGLM's targets are its modules' names, as PEFT's target_modules give them;
 * a target another architecture has is refused; the adapters name the weights
 * they adapt; the stream of adapters on fused maps reads back. */
static void test_chatglm_targets(void)
{
    struct {
        const char *config;
        enum model_arch arch;
        unsigned up; /* the target of dense_h_to_4h */
    } cases[] = {{glm6b, ARCH_CHATGLM, 1u << LORA_UP}, {glm2, ARCH_CHATGLM2, 1u << LORA_GATE_UP}};
    for (int c = 0; c < 2; c++) {
        enum model_arch a = cases[c].arch;
        unsigned all = (1u << LORA_QKV) | (1u << LORA_O) | cases[c].up | (1u << LORA_DOWN);
        CHECK(lora_arch_targets(a) == all);
        CHECK(lora_targets_parse(a, "all") == all);
        CHECK(lora_targets_parse(a, "query_key_value,dense,dense_h_to_4h,dense_4h_to_h") == all);
        CHECK(lora_targets_parse(a, "dense_h_to_4h") == cases[c].up);
        CHECK(lora_targets_parse(a, "dense") == 1u << LORA_O);
        CHECK(lora_targets_parse(a, "q_proj") == 0 && lora_targets_parse(a, "o_proj") == 0);
        CHECK(lora_targets_parse(a, "q") == 0 && lora_targets_parse(a, "query_key_value,up_proj") == 0);
        CHECK(lora_targets_parse(a, "dense_h_to_4h.weight") == 0 && lora_targets_parse(a, "attention.dense") == 0);
        CHECK(lora_targets_parse(ARCH_LLAMA, "query_key_value") == 0 && lora_targets_parse(ARCH_LLAMA, "dense") == 0);
        char *str = lora_targets_string(a, LORA_ALL_TARGETS);
        CHECK(!strcmp(str, "query_key_value,dense,dense_h_to_4h,dense_4h_to_h"));
        free(str);
        CHECK(!strcmp(lora_target_name(a, LORA_QKV), "query_key_value") && !lora_target_name(a, LORA_Q));
        CHECK(!lora_target_name(ARCH_LLAMA, LORA_QKV) && !lora_target_name(ARCH_LLAMA, LORA_GATE_UP));

        model m;
        fixture_config_model(&m, cases[c].config, 61 + c);
        lora_set *s = random_adapters(&m, LORA_ALL_TARGETS, 3, 6.0, 0.0f, 61 + c);
        CHECK(s->n == 2 * 4 && s->targets == all);
        const char *prefix = a == ARCH_CHATGLM ? "transformer.layers.1." : "transformer.encoder.layers.1.";
        const char *att = a == ARCH_CHATGLM ? "attention." : "self_attention.";
        char want[4][160];
        snprintf(want[0], sizeof want[0], "%s%squery_key_value.weight", prefix, att);
        snprintf(want[1], sizeof want[1], "%s%sdense.weight", prefix, att);
        snprintf(want[2], sizeof want[2], "%smlp.dense_h_to_4h.weight", prefix);
        snprintf(want[3], sizeof want[3], "%smlp.dense_4h_to_h.weight", prefix);
        for (int k = 0; k < 4; k++) { /* layer 1's, in the forward's order, the fused maps whole */
            const lora_adapter *ad = &s->ad[4 + k];
            const tensor *w = model_tensor(&m, want[k]);
            CHECK(!strcmp(ad->name, want[k]) && w && ad->nout == w->shape[0] && ad->nin == w->shape[1]);
        }
        char path[] = "/tmp/test_lora_XXXXXX";
        int fd = mkstemp(path);
        CHECK(fd >= 0);
        close(fd);
        char *argv[] = {"test_lora"};
        adapter_write(s, &m, path, 1, argv, NULL, NULL);
        lora_set back;
        adapter_read(&back, path, &m);
        CHECK(back.targets == all && back.n == s->n && back.n_params == s->n_params);
        CHECK(!memcmp(back.params, s->params, s->n_params * sizeof(float)));
        lora_free(&back);
        unlink(path);
        lora_destroy(s);
        model_free(&m);
    }
}

int main(int argc, char **argv)
{
    blas_init(argc, argv);
    blas_set_threads(1);
    TEST(test_gradient_mha);
    TEST(test_gradient_gqa);
    TEST(test_gradient_bias);
    TEST(test_gradient_pruned);
    TEST(test_gradient_chatglm);
    TEST(test_gradient_distill);
    TEST(test_frozen_base);
    TEST(test_merge);
    TEST(test_stream_round_trip);
    TEST(test_init_dropout_targets);
    TEST(test_chatglm_targets);
    return check_report();
}
