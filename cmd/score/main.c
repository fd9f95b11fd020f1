/* pare-score - importance statistics for every group of a model: read a groups
 * stream, run the model forward and backward on calibration samples, and write
 * the groups again with their scores (or a shard's partial sums; or merge them). */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/blas.h"
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
    "\n"
    "  -m, --model PATH        the model the groups were found for (HF folder, llama2.c .bin,\n"
    "                          checkpoint; '-' = stdin when INPUT is a file)\n"
    "      --tokenizer FILE    tokenizer (tokenizer.model, tok*.bin, tokenizer.json or a model folder) if the model has none\n"
    "      --calib FILE        calibration text: plain, JSON lines or a JSON array of records\n"
    "                          with \"text\" (or Alpaca instruction/input/output); .gz, .xz, .zst,\n"
    "                          .bz2 and tar archives too\n"
    "      --calib-format F    auto (default), text, jsonl or json\n"
    "      --samples N         calibration windows (default 10)\n"
    "      --seq-len N         tokens per window (default 64)\n"
    "      --seed N            seed of the window draw (default 42)\n"
    "      --stats LIST        statistics to compute: vector, element1, element2, mix, l1, l2,\n"
    "                          activations, or all (default all); and, not in all, ablation\n"
    "                          (the loss change of removing each unit, by forward passes) and\n"
    "                          influence (Block Influence of each layer group)\n"
    "      --ablate N          ablation of a sample of N units per group (seeded by --seed)\n"
    "                          instead of every unit\n"
    "      --fisher-memory B   bytes for the element-wise Fisher of a chunk of layers (mix and\n"
    "                          shards; suffix K, M, G or T; default: 2/5 of the weights less the\n"
    "                          backward pass's buffers, at least 16M)\n"
    "sharding:\n"
    "      --shard I/N         score samples I, I+N, ... and write a partial stream\n"
    "      --merge             merge the PARTIAL files of every shard into the scores stream\n"
    "output:\n"
    "  -t, --threads N         threads (default: PARE_THREADS, else all cores)\n"
    "  -o, --output FILE       write the stream to FILE (atomically)\n"
    "      --progress          show progress even when stderr is not a terminal\n"
    "  -q, --quiet             no progress and no summary\n"
    "  -h, --help              show this help\n"
    "      --version           show the version\n";

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

int main(int argc, char **argv)
{
    set_progname(argv[0]);
    blas_init(argc, argv);
    const char *model_path = NULL, *tok_path = NULL, *calib_path = NULL, *out = NULL, *input = "-";
    enum calib_format format = CALIB_AUTO;
    int samples = 10, seq_len = 64, threads = 0;
    uint64_t seed = 42;
    score_options o = {.stats = SCORE_ALL};
    ablate_options ao = {0};
    bool merge = false, calib_opts = false;

    enum { OPT_TOK = 256, OPT_CALIB, OPT_FORMAT, OPT_SAMPLES, OPT_SEQ, OPT_SEED, OPT_STATS, OPT_FISHER, OPT_SHARD,
           OPT_MERGE, OPT_PROGRESS, OPT_VERSION, OPT_ABLATE };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},         {"tokenizer", required_argument, 0, OPT_TOK},
        {"calib", required_argument, 0, OPT_CALIB},   {"calib-format", required_argument, 0, OPT_FORMAT},
        {"samples", required_argument, 0, OPT_SAMPLES}, {"seq-len", required_argument, 0, OPT_SEQ},
        {"seed", required_argument, 0, OPT_SEED},     {"stats", required_argument, 0, OPT_STATS},
        {"fisher-memory", required_argument, 0, OPT_FISHER}, {"shard", required_argument, 0, OPT_SHARD},
        {"merge", no_argument, 0, OPT_MERGE},         {"threads", required_argument, 0, 't'},
        {"output", required_argument, 0, 'o'},        {"progress", no_argument, 0, OPT_PROGRESS},
        {"quiet", no_argument, 0, 'q'},               {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, OPT_VERSION},     {"ablate", required_argument, 0, OPT_ABLATE},
        {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "m:t:o:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model_path = optarg; break;
        case OPT_TOK: tok_path = optarg; break;
        case OPT_CALIB: calib_path = optarg; break;
        case OPT_FORMAT: {
            int f = calib_format_from_name(optarg);
            if (f < 0)
                usage_die("--calib-format: unknown format '%s' (auto, text, jsonl, json)", optarg);
            format = (enum calib_format)f;
            calib_opts = true;
            break;
        }
        case OPT_SAMPLES: samples = (int)parse_long("--samples", optarg, 1, 1 << 20); calib_opts = true; break;
        case OPT_SEQ: seq_len = (int)parse_long("--seq-len", optarg, 2, 1 << 20); calib_opts = true; break;
        case OPT_SEED: seed = (uint64_t)parse_long("--seed", optarg, 0, INT64_MAX); calib_opts = true; break;
        case OPT_STATS: {
            char bad[64];
            o.stats = score_stats_parse(optarg, bad, sizeof bad);
            if (!o.stats && *bad)
                usage_die("--stats: unknown statistic '%s' (vector, element1, element2, mix, l1, l2, activations, "
                          "all)",
                          bad);
            if (!o.stats)
                usage_die("--stats: no statistic given");
            calib_opts = true;
            break;
        }
        case OPT_FISHER: o.fisher_memory = parse_bytes("--fisher-memory", optarg); break;
        case OPT_SHARD: parse_shard("--shard", optarg, &o.shard, &o.shards); break;
        case OPT_MERGE: merge = true; break;
        case OPT_ABLATE: ao.per_group = parse_long("--ablate", optarg, 1, INT32_MAX); calib_opts = true; break;
        case 't': threads = (int)parse_long("--threads", optarg, 1, 4096); break;
        case 'o': out = optarg; break;
        case OPT_PROGRESS: g_progress_mode = 1; break;
        case 'q': g_quiet = true; g_progress_mode = 0; break;
        case 'h': fputs(usage, stdout); return 0;
        case OPT_VERSION: printf("pare-score %s\n", PARE_VERSION); return 0;
        default: usage_die("unknown option");
        }
    }

    group_set gs;
    if (merge) {
        if (model_path || tok_path || calib_path || calib_opts || o.shards)
            usage_die("--merge takes partial files only, no model, calibration or shard options");
        if (optind >= argc)
            usage_die("--merge: no partial files given");
        score_merge(argv + optind, argc - optind, "--merge", &gs);
        groups_write(&gs, "scores", out, argc, argv);
        info("merged %d partials: %d groups scored", argc - optind, gs.n);
        group_set_free(&gs);
        if (fflush(stdout) != 0 || ferror(stdout))
            die("cannot write the output: write error");
        return 0;
    }

    if (argc - optind > 1)
        usage_die("unexpected argument '%s'", argv[optind + 1]);
    if (optind < argc)
        input = argv[optind];
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
