/* pare-prune - cut a model down: read groups (or scores), rank each group's units,
 * remove the least important ones from every member tensor, and write the smaller
 * model as a checkpoint stream (or, with --dry-run, print the plan). */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "format/model_load.h"
#include "format/model_save.h"
#include "model/model.h"
#include "prune/groups.h"
#include "prune/groups_stream.h"
#include "prune/prune.h"
#include "prune/rank.h"
#include "prune/recipe.h"
#include "text/calib.h"
#include "text/tokenizer.h"

static const char usage[] =
    "usage: pare-prune -m MODEL (--ratio R | --target-params P) [options] [INPUT]\n"
    "\n"
    "Prune MODEL with the groups or scores stream INPUT (default stdin) and write the\n"
    "pruned model as a checkpoint stream (stdout or -o FILE).\n"
    "\n"
    "  -m, --model PATH        the model the stream was made for (HF folder, llama2.c .bin,\n"
    "                          checkpoint; config.json alone with --dry-run)\n"
    "      --tokenizer FILE    tokenizer to put in the checkpoint if the model has none\n"
    "      --ratio R           remove this fraction of each group's channels, R in [0, 1)\n"
    "      --target-params P   instead remove the fraction P of all parameters (solves for R)\n"
    "      --mode M            block (attention heads and MLP channels; default), channel\n"
    "                          (hidden size) or layer (whole blocks)\n"
    "      --layers A-B        layers to prune, inclusive (default: all but the first L/8\n"
    "                          and the last L/16)\n"
    "      --select S          how units are ranked: local (per group; default), global\n"
    "                          (across the selected layers, per kind) or adaptive (scores\n"
    "                          standardised per layer and kind, attention and MLP ranked\n"
    "                          together by parameter cost: FLAP's AL-AM)\n"
    "      --global            the same as --select global\n"
    "      --criterion C       vector, element1, element2, mix, flap, wanda, ablation, influence\n"
    "                          (scores streams), l1, l2, random (default: element1 for scores,\n"
    "                          l2 for groups), or auto (with --validate)\n"
    "      --validate FILE     with --criterion auto: try every criterion the stream serves with\n"
    "                          local, global and adaptive selection, keep the plan whose pruned\n"
    "                          model has the lowest loss on FILE (16 windows of 128 tokens)\n"
    "      --rank-check        with --dry-run: Spearman's rho of each criterion with the\n"
    "                          stream's ablation statistic, per group kind\n"
    "      --no-compensation   flap: no bias compensation of the removed channels\n"
    "      --aggregate A       combine a unit's members: sum (default), mean, max, prod, first\n"
    "      --seed N            seed of the random criterion (default 42)\n"
    "      --allow-empty       let a layer lose its whole attention or MLP\n"
    "      --dry-run           print the plan on stdout instead of pruning (needs no weights)\n"
    "      --dtype T           write the weights as f32, f16 or bf16 (default: as read)\n"
    "  -o, --output FILE       write the checkpoint to FILE (atomically; FILE.gguf: a GGUF for llama.cpp)\n"
    "  -q, --quiet             no summary line on stderr\n"
    "  -h, --help              show this help\n"
    "      --version           show the version\n";

/* "A-B" or "A" */
static void parse_layers(const char *s, int *first, int *last)
{
    char *copy = xstrdup(s), *dash = strchr(copy, '-');
    if (dash)
        *dash = 0;
    *first = (int)parse_long("--layers", copy, 0, 1 << 20);
    *last = dash ? (int)parse_long("--layers", dash + 1, 0, 1 << 20) : *first;
    free(copy);
    if (*first > *last)
        usage_die("--layers: '%s' is not a range A-B with A <= B", s);
}

/* a number in [0, 1) */
static double parse_fraction(const char *opt, const char *s)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= 0 && v < 1))
        usage_die("%s: invalid value '%s' (expected a number in [0, 1))", opt, s);
    return v;
}

/* The validation windows of --validate: 16 of 128 tokens (fewer tokens when the
 * model's context is shorter), drawn with seed 42, tokenized with m's tokenizer. */
static void load_validation(calib *v, const model *m, const char *path)
{
    if (!m->tok.size)
        die("%s: the model has no tokenizer to read --validate with (give --tokenizer FILE)", m->source);
    tokenizer *tok = tokenizer_load_blob(m->tok.format, m->tok.data, m->tok.size, m->source);
    int T = m->cfg.max_seq > 0 && m->cfg.max_seq < 128 ? m->cfg.max_seq : 128;
    calib_load(v, path, CALIB_AUTO, tok, 16, T, 42);
    tokenizer_free(tok);
}

int main(int argc, char **argv)
{
    set_progname(argv[0]);
    const char *model_path = NULL, *tok_path = NULL, *out = NULL, *input = "-";
    prune_options o = {.mode = PRUNE_BLOCK, .ratio = -1, .target_params = -1, .first_layer = -1,
                       .last_layer = -1, .aggregate = PRUNE_AGG_SUM, .seed = 42};
    bool dry_run = false, layers_given = false, auto_crit = false, rank_check = false;
    int dtype = -1; /* --dtype, or -1: each tensor as read */
    const char *validate = NULL;

    enum { OPT_TOK = 256, OPT_RATIO, OPT_TARGET, OPT_MODE, OPT_LAYERS, OPT_GLOBAL, OPT_SELECT, OPT_CRIT, OPT_AGG,
           OPT_SEED, OPT_EMPTY, OPT_DRY, OPT_VERSION, OPT_NOCOMP, OPT_VALIDATE, OPT_RANKCHECK, OPT_DTYPE };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},        {"tokenizer", required_argument, 0, OPT_TOK},
        {"ratio", required_argument, 0, OPT_RATIO},  {"target-params", required_argument, 0, OPT_TARGET},
        {"mode", required_argument, 0, OPT_MODE},    {"layers", required_argument, 0, OPT_LAYERS},
        {"global", no_argument, 0, OPT_GLOBAL},      {"criterion", required_argument, 0, OPT_CRIT},
        {"aggregate", required_argument, 0, OPT_AGG}, {"seed", required_argument, 0, OPT_SEED},
        {"allow-empty", no_argument, 0, OPT_EMPTY},  {"dry-run", no_argument, 0, OPT_DRY},
        {"no-compensation", no_argument, 0, OPT_NOCOMP}, {"select", required_argument, 0, OPT_SELECT},
        {"validate", required_argument, 0, OPT_VALIDATE}, {"rank-check", no_argument, 0, OPT_RANKCHECK},
        {"dtype", required_argument, 0, OPT_DTYPE},  {"output", required_argument, 0, 'o'},
        {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},               {"version", no_argument, 0, OPT_VERSION},
        {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "m:o:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model_path = optarg; break;
        case OPT_TOK: tok_path = optarg; break;
        case OPT_RATIO: o.ratio = parse_fraction("--ratio", optarg); break;
        case OPT_TARGET: o.target_params = parse_fraction("--target-params", optarg); break;
        case OPT_MODE: {
            int m = prune_mode_from_name(optarg);
            if (m < 0)
                usage_die("--mode: unknown mode '%s' (block, channel, layer)", optarg);
            o.mode = (enum prune_mode)m;
            break;
        }
        case OPT_LAYERS:
            parse_layers(optarg, &o.first_layer, &o.last_layer);
            layers_given = true;
            break;
        case OPT_GLOBAL: o.select = PRUNE_SELECT_GLOBAL; break;
        case OPT_SELECT: {
            int s = prune_select_from_name(optarg);
            if (s < 0)
                usage_die("--select: unknown selection '%s' (local, global, adaptive)", optarg);
            o.select = (enum prune_select)s;
            break;
        }
        case OPT_CRIT: {
            int k = prune_criterion_from_name(optarg);
            auto_crit = !strcmp(optarg, "auto");
            if (k < 0 && !auto_crit)
                usage_die("--criterion: unknown criterion '%s' (vector, element1, element2, mix, flap, wanda, "
                          "ablation, influence, l1, l2, random, auto)",
                          optarg);
            o.criterion = k < 0 ? PRUNE_CRIT_DEFAULT : (enum prune_criterion)k;
            break;
        }
        case OPT_VALIDATE: validate = optarg; break;
        case OPT_RANKCHECK: rank_check = true; break;
        case OPT_AGG: {
            int a = prune_aggregate_from_name(optarg);
            if (a < 0)
                usage_die("--aggregate: unknown aggregate '%s' (sum, mean, max, prod, first)", optarg);
            o.aggregate = (enum prune_aggregate)a;
            break;
        }
        case OPT_SEED: o.seed = (uint64_t)parse_long("--seed", optarg, 0, INT64_MAX); break;
        case OPT_EMPTY: o.allow_empty = true; break;
        case OPT_DRY: dry_run = true; break;
        case OPT_NOCOMP: o.no_compensation = true; break;
        case OPT_DTYPE: dtype = (int)parse_dtype("--dtype", optarg); break;
        case 'o': out = optarg; break;
        case 'q': g_quiet = true; break;
        case 'h': fputs(usage, stdout); return 0;
        case OPT_VERSION: printf("pare-prune %s\n", PARE_VERSION); return 0;
        default: usage_die("unknown option");
        }
    }
    if (argc - optind > 1)
        usage_die("unexpected argument '%s'", argv[optind + 1]);
    if (optind < argc)
        input = argv[optind];
    if (!model_path)
        usage_die("no model given (-m MODEL)");
    if ((o.ratio < 0) == (o.target_params < 0))
        usage_die("give exactly one of --ratio R and --target-params P");
    if (auto_crit != (validate != NULL))
        usage_die("--criterion auto and --validate FILE go together");
    if (rank_check && !dry_run)
        usage_die("--rank-check: only with --dry-run");
    if (layers_given && o.mode == PRUNE_CHANNEL)
        usage_die("--layers: the hidden channels of --mode channel span every layer");
    if (!strcmp(model_path, "-") && !strcmp(input, "-"))
        usage_die("the model and the stream cannot both come from stdin");
    if (!strcmp(input, "-") && isatty(STDIN_FILENO))
        usage_die("no groups or scores stream on stdin (pare-discover -m MODEL | pare-prune -m MODEL ...)");

    model m;
    model_load(&m, model_path, tok_path);
    if (!m.has_weights && !dry_run)
        die("%s: a bare config has no weights to prune (--dry-run prints the plan)", model_path);
    group_set gs;
    char kind[16];
    groups_read(&gs, input, kind);
    const char *stream_name = strcmp(input, "-") ? input : "stdin";
    groups_check_model(&gs, &m, stream_name);
    if (layers_given && o.last_layer >= m.cfg.n_layers)
        die("--layers %d-%d: out of range (the model has layers 0-%d)", o.first_layer, o.last_layer,
            m.cfg.n_layers - 1);

    prune_plan plan;
    recipe_result rr = {0};
    if (auto_crit) {
        calib val;
        load_validation(&val, &m, validate);
        recipe_auto(&m, &gs, kind, stream_name, &o, &val, &plan, &rr);
        calib_free(&val);
        if (!g_quiet)
            recipe_print(&rr, stderr);
    } else {
        prune_plan_make(&plan, &m, &gs, kind, stream_name, &o);
    }
    if (dry_run) {
        prune_plan_print(&plan, 128, stdout);
        if (rank_check)
            rank_check_print(&m, &gs, o.aggregate, o.seed, stream_name, stdout);
    } else {
        info("%s: %lld -> %lld parameters (%.2f%% kept), ratio %.6g, criterion %s%s", prune_mode_name(o.mode),
             (long long)config_param_count(&plan.before), (long long)config_param_count(&plan.after),
             100.0 * (double)config_param_count(&plan.after) / (double)config_param_count(&plan.before), plan.ratio,
             prune_criterion_name(plan.criterion), plan.compensate ? " with bias compensation" : "");
        json_t *provenance = prune_provenance(&plan, &gs, &m);
        if (auto_crit)
            json_object_set_new(provenance, "auto", recipe_to_json(&rr));
        model pruned;
        prune_apply(&m, &gs, &plan, true, &pruned);
        if (dtype >= 0)
            model_set_dtype(&pruned, (enum dtype)dtype);
        model_save(&pruned, out, model_out_of_path(out), -1, argc, argv, provenance);
        json_decref(provenance);
        model_free(&pruned);
    }
    prune_plan_free(&plan);
    if (auto_crit)
        recipe_free(&rr);
    group_set_free(&gs);
    model_free(&m);
    if (fflush(stdout) != 0 || ferror(stdout))
        die("cannot write the output: write error");
    return 0;
}
