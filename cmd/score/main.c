/* pare-score - importance statistics for every group of a model: read a groups
 * stream, run the model forward and backward on calibration samples, and write
 * the groups again with their scores (or a shard's partial sums; or merge them). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/blas.h"
#include "base/memory.h"
#include "base/options.h"
#include "base/progress.h"
#include "base/util.h"
#include "format/open.h"
#include "model/model.h"
#include "prune/ablate.h"
#include "prune/groups.h"
#include "prune/groups_stream.h"
#include "prune/score.h"
#include "text/calib.h"
#include "text/tokenizer.h"

static const char usage[] =
    "usage: pare-score -m MODEL --calib FILE [options] [INPUT]\n"
    "       pare-score --merge PARTIAL... [-o FILE]\n"
    "\n"
    "Score the groups of the groups stream INPUT (default stdin) on calibration text and\n"
    "write them with their statistics as a scores stream (stdout or -o FILE).\n"
    "\n";
/* "123", "64M", "1.5G" -> bytes */
static size_t parse_bytes(const char *opt, const char *s)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    double mult = 1;
    switch (*end) {
    case 'k': case 'K': mult = 1024.0; end++; break;
    case 'm': case 'M': mult = 1024.0 * 1024; end++; break;
    case 'g': case 'G': mult = 1024.0 * 1024 * 1024; end++; break;
    case 't': case 'T': mult = 1024.0 * 1024 * 1024 * 1024; end++; break;
    default: break;
    }
    if (errno || end == s || *end || !(v > 0) || v * mult > 1e18)
        usage_die("%s: invalid size '%s' (bytes, or a number with K, M, G or T)", opt, s);
    return (size_t)(v * mult);
}

/* --fisher-memory B */
static void bytes_option(const char *name, const char *arg, void *value) { *(size_t *)value = parse_bytes(name, arg); }

/* --keep-memory B (0 allowed: none) */
static void keep_option(const char *name, const char *arg, void *value)
{
    *(size_t *)value = strcmp(arg, "0") ? parse_bytes(name, arg) : 0;
}

/* --stats LIST */
static void stats_option(const char *name, const char *arg, void *value)
{
    char bad[64];
    unsigned *stats = value;
    *stats = score_stats_parse(arg, bad, sizeof bad);
    if (!*stats && *bad)
        usage_die("%s: unknown statistic '%s' (vector, element1, element2, mix, l1, l2, activations, all)", name, bad);
    if (!*stats)
        usage_die("%s: no statistic given", name);
}

/* --calib-format F */
static void calib_format_option(const char *name, const char *arg, void *value)
{
    int f = calib_format_from_name(arg);
    if (f < 0)
        usage_die("%s: unknown format '%s' (auto, text, jsonl, json)", name, arg);
    *(enum calib_format *)value = (enum calib_format)f;
}

/* --shard I/N */
static void shard_option(const char *name, const char *arg, void *value)
{
    score_options *o = value;
    parse_shard(name, arg, &o->shard, &o->shards);
}

int main(int argc, char **argv)
{
    set_progname(argv[0]);
    blas_init(argc, argv);
    memory_keep_freed();
    const char *model_path = NULL, *tok_path = NULL, *calib_path = NULL, *out = NULL, *input = "-";
    enum calib_format format = CALIB_AUTO;
    int samples = 10, seq_len = 64, threads = 0;
    int64_t seed = 42;
    score_options o = {.stats = SCORE_ALL, .keep_memory = score_default_keep_memory()};
    ablate_options ao = {0};
    bool merge = false;
    option opts[] = {
        OPT_STRING('m', "model", "PATH",
                   "the model the groups were found for (HF folder, llama2.c .bin,\n"
                   "checkpoint; '-' = stdin when INPUT is a file)",
                   &model_path),
        OPT_TOKENIZER(&tok_path),
        OPT_STRING(0, "calib", "FILE",
                   "calibration text: plain, JSON lines or a JSON array of records\n"
                   "with \"text\" (or Alpaca instruction/input/output); .gz, .xz, .zst,\n"
                   ".bz2 and tar archives too",
                   &calib_path),
        OPT_FUNC(0, "calib-format", "F", "auto (default), text, jsonl or json", calib_format_option, &format),
        OPT_INT(0, "samples", "N", "calibration windows", &samples, 1, 1 << 20, "10"),
        OPT_INT(0, "seq-len", "N", "tokens per window", &seq_len, 2, 1 << 20, "64"),
        OPT_SEED("seed of the window draw", &seed, "42"),
        OPT_FUNC(0, "stats", "LIST",
                 "statistics to compute: vector, element1, element2, mix, l1, l2,\n"
                 "activations, or all (default all); and, not in all, ablation\n"
                 "(the loss change of removing each unit, by forward passes) and\n"
                 "influence (Block Influence of each layer group)",
                 stats_option, &o.stats),
        OPT_INT64(0, "ablate", "N",
                  "ablation of a sample of N units per group (seeded by --seed)\n"
                  "instead of every unit",
                  &ao.per_group, 1, INT32_MAX, NULL),
        OPT_FUNC(0, "fisher-memory", "B",
                 "bytes for the element-wise Fisher of a chunk of layers (mix and\n"
                 "shards; suffix K, M, G or T; default: 2/5 of the weights less the\n"
                 "backward pass's buffers, at least 16M)",
                 bytes_option, &o.fisher_memory),
        OPT_FUNC(0, "keep-memory", "B",
                 "bytes for the layers' internals kept from the forward pass for\n"
                 "the backward instead of recomputed (suffix K, M, G or T; 0: none;\n"
                 "default: a quarter of the memory available)",
                 keep_option, &o.keep_memory),
        OPT_SECTION("sharding:"),
        OPT_FUNC(0, "shard", "I/N", "score samples I, I+N, ... and write a partial stream", shard_option, &o),
        OPT_FLAG(0, "merge", "merge the PARTIAL files of every shard into the scores stream", &merge),
        OPT_SECTION("output:"),
        OPT_THREADS(&threads),
        OPT_OUTPUT("write the stream to FILE (atomically)", &out),
        OPT_PROGRESS,
        OPT_QUIET("no progress and no summary"),
        OPT_END,
    };
    int first = options_parse(opts, usage, argc, argv);
    bool calib_opts = false;
    for (const char *const *k = (const char *const[]){"calib-format", "samples", "seq-len", "seed", "stats", "ablate",
                                                      NULL};
         *k; k++)
        calib_opts |= options_given(opts, *k);

    group_set gs;
    if (merge) {
        if (model_path || tok_path || calib_path || calib_opts || o.shards)
            usage_die("--merge takes partial files only, no model, calibration or shard options");
        if (first >= argc)
            usage_die("--merge: no partial files given");
        score_merge(argv + first, argc - first, "--merge", &gs);
        groups_write(&gs, "scores", out, argc, argv);
        info("merged %d partials: %d groups scored", argc - first, gs.n);
        group_set_free(&gs);
        if (fflush(stdout) != 0 || ferror(stdout))
            die("cannot write the output: write error");
        return 0;
    }

    input = options_one_operand(argc, argv, first, "-");
    if (!model_path)
        usage_die("no model given (-m MODEL)");
    if (!calib_path)
        usage_die("no calibration text given (--calib FILE)");
    if (!strcmp(model_path, "-") && !strcmp(input, "-"))
        usage_die("the model and the groups cannot both come from stdin");
    if (!strcmp(input, "-") && isatty(STDIN_FILENO))
        usage_die("no groups stream on stdin (pare-discover -m MODEL | pare-score -m MODEL --calib FILE)");
    if (ao.per_group && !(o.stats & (1u << SCORE_ABLATION)))
        usage_die("--ablate: samples the units of --stats ablation, which is not asked for");
    if (o.shards && (o.stats & SCORE_FORWARD))
        usage_die("--shard: ablation and influence are not sharded (score them in one run)");
    if (o.shards > samples)
        usage_die("--shard %d/%d: more shards than the %d samples", o.shard, o.shards, samples);
    blas_set_threads(threads);

    model m;
    tokenizer *tok = model_open(&m, model_path, tok_path, "score");
    char kind[16];
    groups_read(&gs, input, kind);
    const char *stream_name = strcmp(input, "-") ? input : "stdin";
    if (!gs.n)
        die("%s: the stream holds no groups: nothing to score", stream_name);
    if (!gs.weights)
        die("%s: the groups were found from a bare config (planning only); run pare-discover on the model itself",
            stream_name);
    groups_check_model(&gs, &m, stream_name);
    if (!tok)
        die("%s: the model has no tokenizer (give --tokenizer FILE)", model_path);

    calib cal;
    calib_load(&cal, calib_path, format, tok, samples, seq_len, seed);
    score_summary sum;
    if (o.shards) {
        score_write_partial(&m, &cal, &gs, &o, out, argc, argv, &sum);
    } else {
        score_run(&m, &cal, &gs, &o, &sum);
        if (o.stats & (1u << SCORE_ABLATION)) {
            ao.seed = seed;
            ablate_summary as;
            ablate_run(&m, &cal, &gs, &ao, &as);
            info("ablation: %lld units, %lld forward passes in %.2f s, base loss %.4f", (long long)as.units,
                 (long long)as.passes, as.seconds, as.base_loss);
        }
        if (o.stats & (1u << SCORE_INFLUENCE))
            ablate_influence(&m, &cal, &gs);
        groups_write(&gs, "scores", out, argc, argv);
    }
    double rate = sum.seconds > 0 ? (double)sum.tokens / sum.seconds : 0.0;
    info("%d groups scored on %d samples of %d tokens (%lld in the text)%s: %lld passes in %d chunk%s, %.2f s, "
         "%.*f tok/s, loss %.4f",
         gs.n, o.shards ? (samples - o.shard + o.shards - 1) / o.shards : samples, seq_len,
         (long long)cal.n_tokens, o.shards ? " (a shard)" : "", (long long)sum.passes, sum.chunks,
         sum.chunks == 1 ? "" : "s", sum.seconds, rate_decimals(rate), rate, sum.loss);
    calib_free(&cal);
    tokenizer_free(tok);
    group_set_free(&gs);
    model_free(&m);
    if (fflush(stdout) != 0 || ferror(stdout))
        die("cannot write the output: write error");
    return 0;
}
