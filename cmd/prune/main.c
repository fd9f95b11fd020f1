/* pare-prune - cut a model down: read groups (or scores), rank each group's units,
 * remove the least important ones from every member tensor, and write the smaller
 * model as a checkpoint stream (or, with --dry-run, print the plan). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/options.h"
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
    "\n";

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

/* --layers A-B */
static void layers_option(const char *name, const char *arg, void *value)
{
    (void)name;
    prune_options *o = value;
    parse_layers(arg, &o->first_layer, &o->last_layer);
}

/* --ratio R, --target-params P */
static void fraction_option(const char *name, const char *arg, void *value) { *(double *)value = parse_fraction(name, arg); }

static void mode_option(const char *name, const char *arg, void *value)
{
    int m = prune_mode_from_name(arg);
    if (m < 0)
        usage_die("%s: unknown mode '%s' (block, channel, layer)", name, arg);
    *(enum prune_mode *)value = (enum prune_mode)m;
}

static void global_option(const char *name, const char *arg, void *value)
{
    (void)name, (void)arg;
    *(enum prune_select *)value = PRUNE_SELECT_GLOBAL;
}

static void select_option(const char *name, const char *arg, void *value)
{
    int s = prune_select_from_name(arg);
    if (s < 0)
        usage_die("%s: unknown selection '%s' (local, global, adaptive)", name, arg);
    *(enum prune_select *)value = (enum prune_select)s;
}

/* --criterion C: a criterion, or auto (PRUNE_CRIT_DEFAULT, with the option given) */
static void criterion_option(const char *name, const char *arg, void *value)
{
    int k = prune_criterion_from_name(arg);
    if (k < 0 && strcmp(arg, "auto"))
        usage_die("%s: unknown criterion '%s' (vector, element1, element2, mix, flap, wanda, ablation, influence, l1, "
                  "l2, random, auto)",
                  name, arg);
    *(enum prune_criterion *)value = k < 0 ? PRUNE_CRIT_DEFAULT : (enum prune_criterion)k;
}

static void aggregate_option(const char *name, const char *arg, void *value)
{
    int a = prune_aggregate_from_name(arg);
    if (a < 0)
        usage_die("%s: unknown aggregate '%s' (sum, mean, max, prod, first)", name, arg);
    *(enum prune_aggregate *)value = (enum prune_aggregate)a;
}

static void dtype_option(const char *name, const char *arg, void *value) { *(int *)value = (int)parse_dtype(name, arg); }

int main(int argc, char **argv)
{
    set_progname(argv[0]);
    const char *model_path = NULL, *tok_path = NULL, *out = NULL, *input = "-";
    prune_options o = {.mode = PRUNE_BLOCK, .ratio = -1, .target_params = -1, .first_layer = -1,
                       .last_layer = -1, .aggregate = PRUNE_AGG_SUM, .seed = 42};
    bool dry_run = false, rank_check = false;
    int dtype = -1; /* --dtype, or -1: each tensor as read */
    const char *validate = NULL;
    option opts[] = {
        OPT_STRING('m', "model", "PATH",
                   "the model the stream was made for (HF folder, llama2.c .bin,\n"
                   "checkpoint; config.json alone with --dry-run)",
                   &model_path),
        OPT_STRING(0, "tokenizer", "FILE", "tokenizer to put in the checkpoint if the model has none", &tok_path),
        OPT_FUNC(0, "ratio", "R", "remove this fraction of each group's channels, R in [0, 1)", fraction_option,
                 &o.ratio),
        OPT_FUNC(0, "target-params", "P", "instead remove the fraction P of all parameters (solves for R)",
                 fraction_option, &o.target_params),
        OPT_FUNC(0, "mode", "M",
                 "block (attention heads and MLP channels; default), channel\n"
                 "(hidden size) or layer (whole blocks)",
                 mode_option, &o.mode),
        OPT_FUNC(0, "layers", "A-B",
                 "layers to prune, inclusive (default: all but the first L/8\n"
                 "and the last L/16)",
                 layers_option, &o),
        OPT_FUNC(0, "select", "S",
                 "how units are ranked: local (per group; default), global\n"
                 "(across the selected layers, per kind) or adaptive (scores\n"
                 "standardised per layer and kind, attention and MLP ranked\n"
                 "together by parameter cost: FLAP's AL-AM)",
                 select_option, &o.select),
        OPT_FUNC(0, "global", NULL, "the same as --select global", global_option, &o.select),
        OPT_FUNC(0, "criterion", "C",
                 "vector, element1, element2, mix, flap, wanda, ablation, influence\n"
                 "(scores streams), l1, l2, random (default: element1 for scores,\n"
                 "l2 for groups), or auto (with --validate)",
                 criterion_option, &o.criterion),
        OPT_STRING(0, "validate", "FILE",
                   "with --criterion auto: try every criterion the stream serves with\n"
                   "local, global and adaptive selection, keep the plan whose pruned\n"
                   "model has the lowest loss on FILE (16 windows of 128 tokens)",
                   &validate),
        OPT_FLAG(0, "rank-check",
                 "with --dry-run: Spearman's rho of each criterion with the\n"
                 "stream's ablation statistic, per group kind",
                 &rank_check),
        OPT_FLAG(0, "no-compensation", "flap: no bias compensation of the removed channels", &o.no_compensation),
        OPT_FUNC(0, "aggregate", "A", "combine a unit's members: sum (default), mean, max, prod, first",
                 aggregate_option, &o.aggregate),
        OPT_SEED("seed of the random criterion", (int64_t *)&o.seed, "42"),
        OPT_FLAG(0, "allow-empty", "let a layer lose its whole attention or MLP", &o.allow_empty),
        OPT_FLAG(0, "dry-run", "print the plan on stdout instead of pruning (needs no weights)", &dry_run),
        OPT_FUNC(0, "dtype", "T", "write the weights as f32, f16 or bf16 (default: as read)", dtype_option, &dtype),
        OPT_OUTPUT("write the checkpoint to FILE (atomically; FILE.gguf: a GGUF for llama.cpp)", &out),
        OPT_QUIET("no summary line on stderr"),
        OPT_END,
    };
    int first = options_parse(opts, usage, argc, argv);
    bool layers_given = options_given(opts, "layers");
    bool auto_crit = options_given(opts, "criterion") && o.criterion == PRUNE_CRIT_DEFAULT;
    input = options_one_operand(argc, argv, first, "-");
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

    /* Writing the pruned model reads every value of the model: its check and
     * fingerprint are taken in that pass (prune_scan), not in one of their own as
     * it is loaded, once the stream is known to be of a model of its config. */
    model m;
    bool unscanned = false;
    if (!dry_run && !auto_crit)
        unscanned = model_load_unscanned(&m, model_path, tok_path);
    else
        model_load(&m, model_path, tok_path);
    if (!m.has_weights && !dry_run)
        die("%s: a bare config has no weights to prune (--dry-run prints the plan)", model_path);
    group_set gs;
    char kind[16];
    groups_read(&gs, input, kind);
    const char *stream_name = strcmp(input, "-") ? input : "stdin";
    if (unscanned && !groups_config_is(&gs, &m)) {
        model_scan_finish(&m, NULL);
        unscanned = false;
    }
    if (!unscanned)
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
        model pruned;
        prune_apply(&m, &gs, &plan, true, &pruned);
        if (dtype >= 0)
            model_set_dtype(&pruned, (enum dtype)dtype);
        enum model_out to = model_out_of_path(out);
        prune_scan(&m, &pruned, unscanned, to == MODEL_OUT_CHECKPOINT);
        if (unscanned)
            groups_check_model(&gs, &m, stream_name);
        info("%s: %lld -> %lld parameters (%.2f%% kept), ratio %.6g, criterion %s%s", prune_mode_name(o.mode),
             (long long)config_param_count(&plan.before), (long long)config_param_count(&plan.after),
             100.0 * (double)config_param_count(&plan.after) / (double)config_param_count(&plan.before), plan.ratio,
             prune_criterion_name(plan.criterion), plan.compensate ? " with bias compensation" : "");
        json_t *provenance = prune_provenance(&plan, &gs, &m);
        if (auto_crit)
            json_object_set_new(provenance, "auto", recipe_to_json(&rr));
        model_save(&pruned, out, to, -1, argc, argv, provenance);
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
