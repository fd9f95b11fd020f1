/* bench_forward.c - how close the fp32 forward pass runs to OpenBLAS's own sgemm
 * speed on this machine.
 *
 * Prints the OpenBLAS core and threads, the sgemm GFLOP/s of one LLaMA-7B-sized
 * product (M=512 rows, N=11008, K=4096, RowMajor NoTrans x Trans as the forward
 * pass calls it), then tokens/s, GFLOP/s and the ratio to that sgemm figure for
 *   (a) stories260K (llama2.c .bin from $PARE_DATA, if present), B x T = 4 x 128;
 *   (b) one decoder layer of LLaMA-7B shape (D 4096, 32 heads of 128, F 11008,
 *       random weights) at B x T = 4 x 128, with a 256-entry vocabulary so the
 *       embedding and LM head cost next to nothing; then the same layer on one
 *       thread, and the speed-up of all threads over one; then the same layer
 *       from bf16 weights (on AMX tiles where the CPU has them), likewise.
 * FLOPs counted: 2 per weight per token for every linear map (q, k, v, o, gate, up,
 * down, LM head), plus the causal attention products (q k^T and P v over the
 * T(T+1)/2 visible pairs, 2*hd each). Norms, RoPE, softmax and SiLU are not
 * counted, though their time is.
 *
 * Letters: B sequences, T tokens, N = B*T, D hidden, V vocab, H heads, hd head dim. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "base/blas.h"
#include "base/cpu.h"
#include "base/util.h"
#include "compute/forward.h"
#include "format/model_load.h"
#include "model/model.h"

static uint64_t rng = 88172645463325252ull;
static float urand(void) /* uniform in [-1, 1) */
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)(rng >> 40) / (float)(1ull << 23) - 1.0f;
}

static float *rand_vec(size_t n, float scale, float offset)
{
    float *p = xmalloc_aligned(n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        p[i] = offset + scale * urand();
    return p;
}

/* The reference product: M x N x K, RowMajor NoTrans x Trans. The machine may be
 * shared (on a 2-vCPU virtual machine a neighbour can take a core for seconds), so
 * every figure is the best of several runs, and the reference is timed again in
 * between the forward passes it is compared with. */
typedef struct {
    int M, N, K;
    float *a, *b, *c;
    double best; /* seconds, best so far */
} sgemm_ref;

static void sgemm_ref_init(sgemm_ref *r, int M, int N, int K)
{
    r->M = M, r->N = N, r->K = K;
    r->a = rand_vec((size_t)M * K, 1, 0), r->b = rand_vec((size_t)N * K, 1, 0);
    r->c = xmalloc_aligned((size_t)M * N * sizeof(float));
    r->best = 1e30;
}

static void sgemm_ref_run(sgemm_ref *r)
{
    double t0 = now_seconds();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, r->M, r->N, r->K, 1.0f, r->a, r->K, r->b, r->K, 0.0f,
                r->c, r->N);
    double dt = now_seconds() - t0;
    r->best = dt < r->best ? dt : r->best;
}

static double sgemm_ref_gflops(const sgemm_ref *r) { return 2.0 * r->M * r->N * r->K / r->best / 1e9; }

static void sgemm_ref_free(sgemm_ref *r) { free(r->a), free(r->b), free(r->c); }

/* FLOPs of one forward of B x T tokens, as counted above. */
static double forward_flops(const model *m, int B, int T)
{
    const model_config *c = &m->cfg;
    double per_token = 0, attn = 0;
    for (int l = 0; l < c->n_layers; l++) {
        double qd = (double)config_q_dim(c, l), kvd = (double)config_kv_dim(c, l), D = c->dim;
        per_token += 2 * (D * qd + 2 * D * kvd + qd * D) + 2 * 3 * D * c->ffn_dim[l];
        attn += 2.0 * 2 * c->head_dim * c->n_heads[l] * (T * (T + 1) / 2.0) * B;
    }
    per_token += 2.0 * c->dim * c->vocab;
    return per_token * B * T + attn;
}

/* Alternate rounds of one reference sgemm and forward passes for round_seconds,
 * until min_seconds have passed (after one warm-up); report the best of each and
 * return the forward's (seconds). */
static double bench_model(const char *name, const model *m, int B, int T, double min_seconds, double round_seconds,
                        sgemm_ref *ref)
{
    forward_state s;
    forward_state_init(&s, m, B, T);
    int *tokens = xmalloc((size_t)B * T * sizeof(int));
    for (int i = 0; i < B * T; i++)
        tokens[i] = (int)((unsigned)(i * 2654435761u) % (unsigned)m->cfg.vocab);
    model_forward(m, &s, tokens);
    ref->best = 1e30;
    int reps = 0;
    double start = now_seconds(), per = 1e30;
    do {
        sgemm_ref_run(ref);
        double round = now_seconds();
        do {
            double t0 = now_seconds();
            model_forward(m, &s, tokens);
            double dt = now_seconds() - t0;
            per = dt < per ? dt : per;
            reps++;
        } while (now_seconds() - round < round_seconds);
    } while (now_seconds() - start < min_seconds || reps < 3);
    double gflops = forward_flops(m, B, T) / per / 1e9, sg = sgemm_ref_gflops(ref);
    printf("%-24s B x T = %d x %-4d %7.3f s/forward %8.0f tokens/s %6.1f GFLOP/s = %5.1f%% of sgemm (%.1f)\n",
           name, B, T, per, B * T / per, gflops, 100 * gflops / sg, sg);
    free(tokens);
    forward_state_free(&s);
    return per;
}

/* A new tensor of m, uniform in offset + scale * [-1, 1) (rows x cols, cols 0 for a vector). */
static void rand_tensor(model *m, const char *name, int64_t rows, int64_t cols, float scale, float offset)
{
    int64_t shape[2] = {rows, cols};
    float *p = model_new_tensor(m, name, cols ? 2 : 1, shape)->data;
    for (int64_t i = 0; i < rows * (cols ? cols : 1); i++)
        p[i] = offset + scale * urand();
}

/* One LLaMA-7B decoder layer with random weights, filled by hand. */
static void llama7b_layer(model *m, int V)
{
    memset(m, 0, sizeof *m);
    model_config *c = &m->cfg;
    strcpy(c->model_type, "llama");
    c->dim = 4096, c->n_layers = 1, c->vocab = V, c->head_dim = 128, c->max_seq = 4096;
    c->n_heads = xmalloc(sizeof(int)), c->n_kv_heads = xmalloc(sizeof(int)), c->ffn_dim = xmalloc(sizeof(int));
    c->n_heads[0] = 32, c->n_kv_heads[0] = 32, c->ffn_dim[0] = 11008;
    c->norm_eps = 1e-5f, c->rope_theta = 10000.0f, c->rope_style = ROPE_HALF, c->tied = true;
    int64_t D = 4096, F = 11008;
    float sD = 1.0f / 64, sF = 1.0f / 105;
    rand_tensor(m, "model.embed_tokens.weight", V, D, 1, 0);
    rand_tensor(m, "model.norm.weight", D, 0, 0.1f, 1);
    const struct {
        int id;
        int64_t rows, cols;
        float scale, offset;
    } w[] = {
        {LW_ATTN_NORM, D, 0, 0.1f, 1}, {LW_FFN_NORM, D, 0, 0.1f, 1}, {LW_Q, D, D, sD, 0},
        {LW_K, D, D, sD, 0},           {LW_V, D, D, sD, 0},          {LW_O, D, D, sD, 0},
        {LW_GATE, F, D, sD, 0},        {LW_UP, F, D, sD, 0},         {LW_DOWN, D, F, sF, 0},
    };
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++) {
        char name[160];
        layer_weight_name(c, name, sizeof name, 0, w[i].id);
        rand_tensor(m, name, w[i].rows, w[i].cols, w[i].scale, w[i].offset);
    }
    model_bind(m);
}

static void llama7b_layer_free(model *m) { model_free(m); }

/* The layer on every thread, then on one, and the speed-up (seconds per forward
 * on every thread returned). */
static double bench_layer(const char *name, const model *m, sgemm_ref *ref)
{
    int threads = blas_threads();
    double all = bench_model(name, m, 4, 128, 8.0, 0.0, ref);
    if (threads > 1) { /* what the threads give: the same layer on one thread, its sgemm too */
        blas_set_threads(1);
        double one = bench_model("  the same, 1 thread", m, 4, 128, 8.0, 0.0, ref);
        printf("%-24s %d threads run the layer %.2fx as fast as 1 (ideal %d)\n", "thread scaling", threads,
               one / all, threads);
        blas_set_threads(threads);
    }
    return all;
}

int main(int argc, char **argv)
{
    blas_init(argc, argv);
    set_progname(argv[0]);
    blas_set_threads(0);
    const char *ct = getenv("OPENBLAS_CORETYPE");
    printf("bench_forward: OpenBLAS core %s (OPENBLAS_CORETYPE=%s), %d threads\n", blas_core_name(),
           ct ? ct : "unset", blas_threads());
    sgemm_ref ref;
    sgemm_ref_init(&ref, 512, 11008, 4096);
    sgemm_ref_run(&ref); /* warm-up */
    ref.best = 1e30;
    double start = now_seconds();
    do
        sgemm_ref_run(&ref);
    while (now_seconds() - start < 2.0);
    printf("%-24s M x N x K = 512 x 11008 x 4096 %6.1f GFLOP/s (best run)\n", "sgemm NoTrans x Trans", sgemm_ref_gflops(&ref));

    const char *data = getenv("PARE_DATA") && *getenv("PARE_DATA") ? getenv("PARE_DATA") : "../shared/data";
    char *path = xasprintf("%s/models/stories260K/stories260K.bin", data);
    if (path_exists(path)) {
        model m;
        model_load(&m, path, NULL);
        bench_model("stories260K", &m, 4, 128, 4.0, 0.5, &ref);
        model_free(&m);
    } else {
        printf("%-24s (skipped: %s not found)\n", "stories260K", path);
    }
    free(path);

    model m;
    llama7b_layer(&m, 256);
    double fp32 = bench_layer("LLaMA-7B shape, 1 layer", &m, &ref);
    for (int i = 0; i < m.n_tensors; i++) /* the matrices as bf16: on AMX tiles where the CPU has them */
        if (m.tensors[i].ndim == 2)
            tensor_convert(&m.tensors[i], DTYPE_BF16);
    char name[64];
    snprintf(name, sizeof name, "  bf16 weights (%s)", cpu()->name);
    double bf16 = bench_layer(name, &m, &ref);
    printf("%-24s the layer from bf16 weights runs %.2fx as fast as from fp32\n", "bf16 / fp32", fp32 / bf16);
    llama7b_layer_free(&m);
    sgemm_ref_free(&ref);
    return 0;
}
