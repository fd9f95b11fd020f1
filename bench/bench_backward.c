/* bench_backward.c - peak memory and speed of the layer-at-a-time backward pass.
 *
 * A random-weight model of more than 1 GB of fp32 weights (D 2048, 8 layers of 16
 * heads of 128, F 5632, vocabulary 32000, untied: 2.17 GB) runs one forward +
 * backward (model_loss_backward) over the paper's calibration batch, 10 x 64
 * tokens, with a gradient sink that only reads the gradients (a sum of squares).
 * Prints the weight bytes, backward_state_bytes, the resident size before the pass
 * and its peak (getrusage ru_maxrss) and peak / weights, which the design keeps
 * below 1.5; then the time per forward + backward, tokens/s, and GFLOP/s beside
 * the sgemm GFLOP/s measured in the same run on the same weights.
 *
 * FLOPs counted are those executed: 2 per weight per token for every linear map
 * in the forward pass, twice that in the backward (input and weight gradients;
 * the LM head too), the layers' forward once more (recomputed, without
 * down_proj), and the attention products (q k^T and P v, forward and recomputed;
 * four of that size backward), counted as full T x T since each (sequence, head)
 * is one dense sgemm. Norms, RoPE, softmax and SiLU are not counted, though their
 * time is.
 *
 * Then the same pass again, alternating the gradients whole with the linear maps'
 * gradients by panels of rows (backward_state_set_rows_sink, pare-score's way),
 * two of each: the best times and their ratio.
 *
 * PARE_BENCH_LAYERS overrides the layer count (weights shrink by 205 MB a layer).
 * Exits 1 when the peak reaches 1.5 x weights, so `make bench` stops on a memory
 * regression. About a minute on two cores, a third of it building the model.
 *
 * Letters: B sequences, T tokens, N = B*T, D hidden, V vocab, H heads, hd head dim,
 * F MLP width, L layers. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <cblas.h>

#include "base/blas.h"
#include "base/util.h"
#include "bench_mem.h"
#include "compute/backward.h"
#include "model/model.h"

/* The gradient sink: reads every gradient, nothing more. */
typedef struct {
    double sumsq;
    int64_t values;
    int calls;
} reader;

static void read_grads(void *ctx, int layer, const weight_grad *g, int n)
{
    (void)layer;
    reader *r = ctx;
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (int64_t j = 0; j < g[i].w->numel; j++)
            s += (double)g[i].grad[j] * g[i].grad[j];
        r->sumsq += s;
        r->values += g[i].w->numel;
    }
    r->calls++;
}

/* The rows sink (backward_state_set_rows_sink): reads each panel of the linear
 * maps' gradients as it is made, as pare-score's statistics take them. */
static void read_rows(void *ctx, const tensor *w, int64_t r0, int64_t r1, const float *w_rows, const float *g)
{
    (void)w_rows;
    reader *r = ctx;
    int64_t n = (r1 - r0) * w->shape[1];
    double s = 0;
    for (int64_t j = 0; j < n; j++)
        s += (double)g[j] * g[j];
    r->sumsq += s;
    r->values += n;
}

/* FLOPs executed by one forward + backward, as counted above. */
static double train_flops(const model_config *c, int B, int T)
{
    double N = (double)B * T, D = c->dim, fwd = 0, recompute = 0, attn = 0;
    for (int l = 0; l < c->n_layers; l++) {
        double qd = (double)config_q_dim(c, l), kvd = (double)config_kv_dim(c, l), F = c->ffn_dim[l];
        double qkvo = 2 * N * (D * qd + 2 * D * kvd + qd * D), mlp = 2 * N * 3 * D * F;
        fwd += qkvo + mlp;
        recompute += qkvo - 2 * N * qd * D + 2 * N * 2 * D * F;
        attn += 2.0 * 2 * c->head_dim * c->n_heads[l] * (double)T * T * B; /* one pass of q k^T and P v */
    }
    double head = 2 * N * D * c->vocab;
    return (fwd + head) * 3 + recompute + attn * (1 + 1 + 2);
}

int main(int argc, char **argv)
{
    blas_init(argc, argv);
    set_progname(argv[0]);
    blas_set_threads(0);
    int L = 8, B = 10, T = 64, N = B * T;
    if (getenv("PARE_BENCH_LAYERS"))
        L = (int)parse_long("PARE_BENCH_LAYERS", getenv("PARE_BENCH_LAYERS"), 1, 64);
    model_config c;
    bench_config(&c, L, 32000, 2048);
    double weights = (double)config_param_count(&c) * sizeof(float);
    model m;
    double built = bench_model(&m, &c, "bench_backward");
    double rss_model = rss_bytes();
    printf("weights                  %8.1f MB (%lld parameters; built in %.1f s)\n", weights / 1e6,
           (long long)config_param_count(&c), built);

    int *tokens = xmalloc(N * sizeof(int)), *targets = xmalloc(N * sizeof(int));
    for (int i = 0; i < N; i++)
        tokens[i] = (int)((unsigned)(i * 2654435761u) % 32000u);
    for (int i = 0; i < N; i++)
        targets[i] = i % T + 1 < T ? tokens[i + 1] : -1;
    backward_state *t = backward_state_new(&m, B, T);
    reader r = {0, 0, 0};
    double t0 = now_seconds();
    double loss = model_loss_backward(&m, t, tokens, targets, read_grads, NULL, &r);
    double dt = now_seconds() - t0;
    double peak = peak_rss_bytes();
    printf("backward_state_bytes        %8.1f MB (= %.3f x weights)\n", (double)backward_state_bytes(t) / 1e6,
           (double)backward_state_bytes(t) / weights);
    printf("RSS before the pass      %8.1f MB\n", rss_model / 1e6);
    printf("peak RSS                 %8.1f MB = %.3f x weights (target < 1.5)\n", peak / 1e6, peak / weights);
    printf("gradients read           %lld values in %d sink calls, loss %.4f, |grad| %.4g\n", (long long)r.values,
           r.calls, loss, sqrt(r.sumsq));

    /* sgemm speed on these weights: N rows against gate_proj of layer 0, as the
     * forward pass calls it (RowMajor NoTrans x Trans) */
    const tensor *w = model_tensor(&m, "model.layers.0.mlp.gate_proj.weight");
    int F = (int)w->shape[0], D = (int)w->shape[1];
    float *a = xmalloc_aligned((size_t)N * D * sizeof(float)), *cc = xmalloc_aligned((size_t)N * F * sizeof(float));
    for (size_t i = 0; i < (size_t)N * D; i++)
        a[i] = (float)((i * 2654435761u) % 1000u) / 1000.0f - 0.5f;
    double best = 1e30, start = now_seconds();
    do {
        double s0 = now_seconds();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, F, D, 1.0f, a, D, w->data, D, 0.0f, cc, F);
        double s = now_seconds() - s0;
        best = s < best ? s : best;
    } while (now_seconds() - start < 2.0);
    double sg = 2.0 * N * F * D / best / 1e9, gf = train_flops(&c, B, T) / dt / 1e9;
    printf("forward + backward       B x T = %d x %d %7.2f s %8.1f tokens/s %6.1f GFLOP/s = %5.1f%% of sgemm "
           "(%.1f GFLOP/s, %d x %d x %d)\n",
           B, T, dt, N / dt, gf, 100 * gf / sg, sg, N, F, D);
    /* the same pass with the maps' gradients by rows, alternating with whole ones
     * (the first pass above paid for the buffers' first touch): the best of two each */
    double best_whole = 1e30, best_rows = 1e30;
    reader rw = {0, 0, 0}, rr = {0, 0, 0};
    for (int k = 0; k < 4; k++) {
        bool rows = k % 2;
        reader *rd = rows ? &rr : &rw;
        *rd = (reader){0, 0, 0};
        backward_state_set_rows_sink(t, rows ? read_rows : NULL);
        double s0 = now_seconds();
        model_loss_backward(&m, t, tokens, targets, read_grads, NULL, rd);
        double s = now_seconds() - s0;
        if (rows)
            best_rows = s < best_rows ? s : best_rows;
        else
            best_whole = s < best_whole ? s : best_whole;
    }
    printf("gradients whole          %7.2f s (best of 2), %lld values, |grad| %.6g\n", best_whole,
           (long long)rw.values, sqrt(rw.sumsq));
    printf("gradients by rows        %7.2f s (best of 2), %lld values, |grad| %.6g: %.2fx the whole pass's speed\n",
           best_rows, (long long)rr.values, sqrt(rr.sumsq), best_whole / best_rows);
    free(a), free(cc);
    backward_state_free(t);
    free(tokens), free(targets);
    config_free(&c);
    model_free(&m);
    return peak / weights < 1.5 ? 0 : 1;
}
