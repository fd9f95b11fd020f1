/* bench_score.c - peak memory and time of pare-score's statistics on a model of
 * more than 1 GB of fp32 weights.
 *
 * A random-weight model (D 2048, 5 layers of 16 heads of 128, F 5632, vocabulary
 * 8000, untied: 1.16 GB) is scored with every statistic (vector, element1,
 * element2, mix, l1, l2, activations) on random calibration tokens, the way
 * pare-score does it: mix needs the Fisher diagonal element-wise, held for a chunk
 * of rows at a time within the default budget (score_default_fisher_memory), with
 * the per-sample passes run again for each chunk. Prints the weight bytes, the
 * backward pass's buffers, the budget, chunks, passes and time, the resident size
 * before scoring and the peak (getrusage ru_maxrss) against the weights. Exits 1
 * when the peak reaches 1.5 x the weights.
 *
 * PARE_BENCH_SAMPLES and PARE_BENCH_SEQ set the calibration (default 4 windows of
 * 32 tokens, to keep `make bench` to a minute or two on two cores; the paper's 10
 * of 64 cost about five times as long and change the peak by the larger batch's
 * activations only); PARE_BENCH_LAYERS the layer count (205 MB a layer).
 *
 * Letters: S samples, T tokens, D hidden, V vocab, F MLP width, L layers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "base/blas.h"
#include "base/util.h"
#include "bench_mem.h"
#include "compute/backward.h"
#include "model/model.h"
#include "prune/groups.h"
#include "prune/score.h"
#include "text/calib.h"

int main(int argc, char **argv)
{
    blas_init(argc, argv);
    set_progname(argv[0]);
    blas_set_threads(0);
    int L = env_int("PARE_BENCH_LAYERS", 5, 1, 64), S = env_int("PARE_BENCH_SAMPLES", 4, 1, 1000);
    int T = env_int("PARE_BENCH_SEQ", 32, 2, 4096);
    model_config c;
    bench_config(&c, L, 8000, 4096);
    double weights = (double)config_param_count(&c) * sizeof(float);
    model m;
    double built = bench_model(&m, &c, "bench_score");
    printf("weights                  %8.1f MB (%lld parameters; built in %.1f s)\n", weights / 1e6,
           (long long)config_param_count(&c), built);

    group_set gs;
    groups_discover(&m, GROUP_KIND_ALL, &gs);
    int n = S * T + 1000, *ids = xmalloc((size_t)n * sizeof *ids);
    for (int i = 0; i < n; i++)
        ids[i] = (int)((unsigned)(i * 2654435761u) % 8000u);
    calib cal;
    calib_from_ids(&cal, "bench", ids, n, S, T, 42);
    free(ids);

    backward_state *tr = backward_state_new(&m, S, T);
    double train = (double)backward_state_bytes(tr);
    backward_state_free(tr);
    size_t budget = score_default_fisher_memory(&m, S, T);
    score_options o = {.stats = SCORE_ALL};
    printf("calibration              %d samples of %d tokens\n", S, T);
    printf("backward buffers         %8.1f MB (= %.3f x weights, backward_state_bytes for the batch)\n", train / 1e6,
           train / weights);
    printf("Fisher budget            %8.1f MB (= %.3f x weights), %d chunks\n", (double)budget / 1e6,
           (double)budget / weights, score_chunks(&m, &gs, &o, S, T));
    double rss_before = rss_bytes();
    score_summary sum;
    score_run(&m, &cal, &gs, &o, &sum);
    double peak = peak_rss_bytes();
    printf("scoring                  %lld passes in %d chunks, %.1f s, %.0f tokens/s, loss %.4f\n",
           (long long)sum.passes, sum.chunks, sum.seconds, (double)sum.tokens / sum.seconds, sum.loss);
    printf("RSS before scoring       %8.1f MB\n", rss_before / 1e6);
    printf("peak RSS                 %8.1f MB = %.3f x weights (target < 1.5)\n", peak / 1e6, peak / weights);
    group_set_free(&gs);
    calib_free(&cal);
    config_free(&c);
    model_free(&m);
    if (peak >= 1.5 * weights) {
        fprintf(stderr, "bench_score: peak RSS %.3f x the weights, over 1.5\n", peak / weights);
        return 1;
    }
    return 0;
}
