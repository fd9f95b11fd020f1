/* pare-eval - measure a model as the LLM-Pruner paper does: perplexity, the seven
 * zero-shot tasks, generation samples, size and speed; or merge shard reports. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/blas.h"
#include "base/options.h"
#include "base/progress.h"
#include "base/util.h"
#include "compute/lora.h"
#include "eval/generate.h"
#include "eval/ppl.h"
#include "eval/report.h"
#include "eval/stats.h"
#include "eval/tasks.h"
#include "eval/zeroshot.h"
#include "format/adapter.h"
#include "format/open.h"
#include "model/model.h"
#include "text/tokenizer.h"

static const char usage[] =
    "usage: pare-eval -m MODEL [--tokenizer FILE] [--ppl FILE ...] [--tasks LIST] [--generate] [--stats]\n"
    "                 [--shard I/N] [options]\n"
    "       pare-eval --merge REPORT [REPORT ...] [-o FILE | --json]\n"
    "\n"
    "Evaluate a model and write a report stream (stdout or -o FILE); a table goes to stderr.\n"
    "\n";

/* --tasks LIST: set want[id] for each name. */
static void parse_tasks(const char *list, bool *want)
{
    char *copy = xstrdup(list), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (!strcmp(t, "all")) {
            for (int i = 0; i < TASK_COUNT; i++)
                want[i] = true;
            continue;
        }
        const task_info *ti = task_info_find(t);
        if (!ti)
            usage_die("--tasks: unknown task '%s' (boolq, piqa, hellaswag, winogrande, arc_easy, arc_challenge, "
                      "openbookqa, all)",
                      t);
        want[task_info_id(ti)] = true;
    }
    free(copy);
}

static void tasks_option(const char *name, const char *arg, void *value)
{
    (void)name;
    parse_tasks(arg, value);
}

/* The tasks asked for, and the files given for some. */
typedef struct {
    bool want[TASK_COUNT];
    const char *file[TASK_COUNT];
} task_choice;

/* --task-file T=FILE */
static void task_file_option(const char *name, const char *arg, void *value)
{
    task_choice *tc = value;
    const char *eq = strchr(arg, '=');
    char task[32];
    if (!eq || eq == arg || (size_t)(eq - arg) >= sizeof task || !eq[1])
        usage_die("%s: expected TASK=FILE, got '%s'", name, arg);
    snprintf(task, sizeof task, "%.*s", (int)(eq - arg), arg);
    const task_info *ti = task_info_find(task);
    if (!ti)
        usage_die("%s: unknown task '%s'", name, task);
    tc->file[task_info_id(ti)] = eq + 1;
    tc->want[task_info_id(ti)] = true;
}

/* A repeated option's arguments, in order. */
typedef struct {
    const char **items;
    int n;
    bool *also; /* set when one is given (--prompt: generate) */
} arg_list;

static void list_option(const char *name, const char *arg, void *value)
{
    (void)name;
    arg_list *l = value;
    l->items[l->n++] = arg;
    if (l->also)
        *l->also = true;
}

static void ppl_format_option(const char *name, const char *arg, void *value)
{
    int f = ppl_format_from_name(arg);
    if (f < 0)
        usage_die("%s: unknown format '%s' (auto, wikitext, ptb, text)", name, arg);
    *(enum ppl_format *)value = (enum ppl_format)f;
}

static void ppl_protocol_option(const char *name, const char *arg, void *value)
{
    int p = ppl_protocol_from_name(arg);
    if (p < 0)
        usage_die("%s: unknown protocol '%s' (llm-pruner, llama.cpp)", name, arg);
    *(enum ppl_protocol *)value = (enum ppl_protocol)p;
}

static void glm_mask_option(const char *name, const char *arg, void *value)
{
    int k = prompt_mask_from_name(arg);
    if (k < 0 || k == PROMPT_MASK_AUTO)
        usage_die("%s: unknown mask '%s' (prefix, causal)", name, arg);
    *(enum prompt_mask *)value = (enum prompt_mask)k;
}

/* --shard I/N into int[2] */
static void shard_option(const char *name, const char *arg, void *value)
{
    int *v = value;
    parse_shard(name, arg, &v[0], &v[1]);
}

static void print_task_line(const report *rep, const task_info *t, const zeroshot_result *res)
{
    int k = t->has_acc_norm ? 2 : 1;
    const report_metric *a = &rep->metrics[rep->n_metrics - k];
    char norm[80] = "";
    if (t->has_acc_norm)
        snprintf(norm, sizeof norm, ", acc_norm %.4f ± %.4f", rep->metrics[rep->n_metrics - 1].value,
                 rep->metrics[rep->n_metrics - 1].stderr_);
    info("%s: acc %.4f ± %.4f%s over %lld items (%lld requests, %lld truncated) in %.2f s (%.2f s CPU), "
         "%.1f items/s",
         t->name, a->value, a->stderr_, norm, (long long)res->items, (long long)res->requests,
         (long long)res->truncated, res->seconds, res->cpu_seconds,
         res->seconds > 0 ? (double)res->items / res->seconds : 0.0);
}

static void output(report *rep, const char *out, bool json, int argc, char **argv)
{
    if (!g_quiet)
        report_print_table(rep, stderr);
    if (json) {
        json_t *j = report_to_json(rep);
        json_dumpf(j, stdout, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(17));
        putchar('\n');
        json_decref(j);
    } else if (out || !isatty(STDOUT_FILENO)) {
        report_write(rep, out, argc, argv);
    }
}

int main(int argc, char **argv)
{
    set_progname(argv[0]);
    blas_init(argc, argv);

    const char *model_path = NULL, *tok_path = NULL, *out = NULL, *data_dir = NULL, *adapter_path = NULL;
    task_choice tc = {0};
    bool *want = tc.want;
    const char **task_file = tc.file;
    int seq_len = 128, batch = 4, threads = 0, shard_of[2] = {0, 0};
    int64_t limit = 0;
    enum ppl_format format = PPL_AUTO;
    enum ppl_protocol protocol = PPL_PROTOCOL_LLM_PRUNER;
    enum prompt_mask glm_mask = PROMPT_MASK_AUTO;
    bool json = false, items = false, gen = false, stats = false, merge = false;
    gen_params gp;
    gen_params_default(&gp);
    arg_list ppl = {xcalloc((size_t)argc, sizeof(char *)), 0, NULL}, prompt = {xcalloc((size_t)argc, sizeof(char *)), 0, &gen};
    option opts[] = {
        OPT_STRING('m', "model", "PATH", "model: HF folder, llama2.c .bin, checkpoint stream ('-' = stdin)",
                   &model_path),
        OPT_STRING('a', "adapter", "FILE", "evaluate the model with this LoRA adapter stream (pare-lora), unmerged",
                   &adapter_path),
        OPT_TOKENIZER(&tok_path),
        OPT_SECTION("perplexity:"),
        OPT_FUNC(0, "ppl", "FILE", "perplexity on FILE (plain or compressed); may be repeated", list_option, &ppl),
        OPT_FUNC(0, "ppl-format", "F", "auto (default; by the file name; with --ppl-protocol\n"
                 "llama.cpp the file as it is), wikitext, ptb or text", ppl_format_option,
                 &format),
        OPT_FUNC(0, "ppl-protocol", "P",
                 "llm-pruner (the default; every token of each window scored) or\n"
                 "llama.cpp (llama-perplexity's: BOS first in each window, its second half scored)",
                 ppl_protocol_option, &protocol),
        OPT_INT(0, "seq-len", "N", "window length in tokens (default 128; llama-perplexity's -c)", &seq_len, 2,
                1 << 20, NULL),
        OPT_INT(0, "batch", "N", "windows per forward pass", &batch, 1, 4096, "4"),
        OPT_SECTION("zero-shot tasks (lm-evaluation-harness 4d21ab6b, 0-shot):"),
        OPT_FUNC(0, "tasks", "LIST",
                 "comma-separated: boolq, piqa, hellaswag, winogrande, arc_easy,\n"
                 "arc_challenge, openbookqa, or all",
                 tasks_option, want),
        OPT_FUNC(0, "task-file", "T=FILE", "read task T from FILE (adds T to the tasks)", task_file_option, &tc),
        OPT_STRING(0, "data-dir", "DIR", "folder of the default task files (default: PARE_DATA, else ../shared/data)",
                   &data_dir),
        OPT_FLAG(0, "items", "add one record per item (contexts, token ids, log-likelihoods)", &items),
        OPT_FUNC(0, "glm-mask", "MASK",
                 "ChatGLM-6B's reading of a request and of a generation prompt: prefix (the\n"
                 "default: context [gMASK] <sop> continuation, or prompt [gMASK] <sop> generated,\n"
                 "the context or prompt bidirectional) or causal (context continuation; the\n"
                 "prompt [gMASK] <sop> and what follows read causally)",
                 glm_mask_option, &glm_mask),
        OPT_INT64(0, "limit", "N", "at most N windows per perplexity data set and the first N items per task", &limit,
                  1, INT64_MAX, NULL),
        OPT_SECTION("generation (top-k 50, top-p 0.95, temperature 1):"),
        OPT_FLAG(0, "generate", "sample from the paper's five prompts", &gen),
        OPT_FUNC(0, "prompt", "TEXT", "sample from TEXT instead; may be repeated", list_option, &prompt),
        OPT_INT(0, "max-length", "N", "tokens in all, prompt included", &gp.max_length, 2, 1 << 20, "128"),
        OPT_SEED("random seed", (int64_t *)&gp.seed, "42"),
        OPT_SECTION("statistics:"),
        OPT_FLAG(0, "stats", "parameters, MACs, weight memory, peak RSS, latency, tokens/s", &stats),
        OPT_SECTION("sharding:"),
        OPT_FUNC(0, "shard", "I/N", "evaluate items I, I+N, ... of each task; a partial report", shard_option,
                 shard_of),
        OPT_FLAG(0, "merge", "merge the REPORT files given as operands (shards or whole reports)", &merge),
        OPT_SECTION("output:"),
        OPT_THREADS(&threads),
        OPT_OUTPUT("write the report stream to FILE (atomically)", &out),
        OPT_FLAG(0, "json", "print the report as one JSON object on stdout instead", &json),
        OPT_PROGRESS,
        OPT_QUIET("no progress and no table"),
        OPT_END,
    };
    int first = options_parse(opts, usage, argc, argv);
    int shard = shard_of[0], shards = shard_of[1], n_ppl = ppl.n, n_prompts = prompt.n;
    const char **ppl_files = ppl.items, **prompts = prompt.items;
    bool any_task = false;
    for (int i = 0; i < TASK_COUNT; i++)
        any_task |= want[i];

    report rep;
    if (merge) {
        if (model_path || adapter_path || n_ppl || any_task || gen || stats || shards)
            usage_die("--merge takes report files only, no model or evaluation options");
        int n = argc - first;
        if (n < 1)
            usage_die("--merge: no report files given");
        report *in = xcalloc((size_t)n, sizeof *in);
        for (int i = 0; i < n; i++)
            report_read(&in[i], argv[first + i]);
        report_merge(&rep, in, n);
        for (int i = 0; i < n; i++)
            report_free(&in[i]);
        free(in);
    } else {
        if (first < argc)
            usage_die("unexpected argument '%s'", argv[first]);
        if (!model_path)
            usage_die("no model given (-m MODEL)");
        if (!n_ppl && !any_task && !gen && !stats)
            usage_die("nothing to evaluate (give --ppl FILE, --tasks LIST, --generate or --stats)");
        blas_set_threads(threads);
        if (!data_dir)
            data_dir = getenv("PARE_DATA") && *getenv("PARE_DATA") ? getenv("PARE_DATA") : "../shared/data";

        model m;
        tokenizer *tok = model_open(&m, model_path, tok_path, "evaluate");
        if (!tok)
            die("%s: the model has no tokenizer (give --tokenizer FILE)", model_path);
        lora_set *lora = adapter_path ? adapter_load(adapter_path, &m) : NULL;

        char fp[17];
        model_bound_fingerprint(&m, fp);
        report_init(&rep, fp, model_path);
        rep.shard = shard;
        rep.shards = shards;
        /* perplexity, samples and statistics are not sharded: shard 0 does them */
        bool whole = shard == 0;
        for (int i = 0; whole && i < n_ppl; i++) {
            ppl_dataset d;
            ppl_dataset_load(&d, ppl_files[i], format, protocol);
            int *ids;
            size_t n = tokenizer_encode(tok, d.text, d.len, true, &ids);
            ppl_result res;
            ppl_options po = {.protocol = protocol, .seq_len = seq_len, .batch = batch, .max_windows = limit,
                              .bos = tokenizer_bos(tok)};
            ppl_evaluate(&m, lora, ids, n, &po, d.task, &res);
            bool llamacpp = protocol == PPL_PROTOCOL_LLAMA_CPP;
            json_t *protocol_j = json_pack(
                "{s:s,s:s,s:s,s:s,s:i,s:s,s:s,s:I,s:I}", "protocol", ppl_protocol_name(protocol), "dataset",
                ppl_files[i], "split", d.split, "format", ppl_format_name(d.format), "window", seq_len, "bos",
                tokenizer_bos(tok) < 0 ? "none (the tokenizer adds none)"
                : llamacpp             ? "first token of every window"
                                       : "once, at the start of the text",
                "tokenization",
                d.format == PPL_TEXT ? (llamacpp ? "the file as one text (less a final newline, as llama-perplexity's "
                                                   "-f reads it), tokenized once"
                                                 : "the file as one text, tokenized once")
                                     : "rows joined with \"\\n\\n\", tokenized once",
                "windows", (json_int_t)res.windows, "tokens", (json_int_t)res.tokens);
            if (llamacpp)
                json_object_set_new(protocol_j, "scored", json_string("second half of every window"));
            json_object_set_new(protocol_j, "mask", json_string("causal"));
            if (model_archs[m.cfg.arch].rope_2d)
                json_object_set_new(protocol_j, "prompt_form",
                                    json_string("the windows read causally: " PROMPT_FORM_NOT_NATIVE));
            report_add_metric(&rep, d.task, "ppl", res.ppl, res.predicted, llamacpp ? res.ppl_err : NAN,
                              protocol_j);
            double rate = (double)res.windows * seq_len / res.seconds;
            if (llamacpp)
                info("%s: PPL = %.4f +/- %.5f over %lld tokens (%lld windows of %d, llama.cpp protocol) in "
                     "%.2f s", d.task, res.ppl, res.ppl_err, (long long)res.predicted, (long long)res.windows,
                     seq_len, res.seconds);
            else
                info("%s: ppl %.4f over %lld tokens (%lld windows of %d) in %.2f s, %.*f tok/s", d.task,
                     res.ppl, (long long)res.predicted, (long long)res.windows, seq_len, res.seconds,
                     rate_decimals(rate), rate);
            free(ids);
            ppl_dataset_free(&d);
        }
        gp.mask = glm_mask;
        zeroshot_options zo = {.limit = limit, .shard = shard, .shards = shards, .budget = ZEROSHOT_BUDGET,
                               .items = items, .mask = glm_mask};
        for (int i = 0; i < TASK_COUNT; i++) {
            if (!want[i])
                continue;
            const task_info *t = task_info_get((enum task_id)i);
            char *path = task_file[i] ? xstrdup(task_file[i]) : path_join(data_dir, t->default_file);
            zeroshot_result res;
            zeroshot_run(&m, lora, tok, t, path, &zo, &rep, &res);
            print_task_line(&rep, t, &res);
            free(path);
        }
        if (any_task)
            report_add_average(&rep);
        for (int i = 0; whole && gen && i < (n_prompts ? n_prompts : GEN_PAPER_PROMPTS); i++) {
            const char *prompt = n_prompts ? prompts[i] : gen_paper_prompts[i];
            gen_result g;
            generate(&m, lora, tok, prompt, &gp, (uint64_t)i, &g);
            report_add_sample(&rep, gen_record(prompt, &gp, (uint64_t)i, &g));
            info("sample %d: %d + %d tokens in %.2f s", i + 1, g.prompt_tokens, g.new_tokens, g.seconds);
            free(g.text);
        }
        if (whole && stats) {
            model_stats st;
            stats_measure(&m, lora, 0.5, &st);
            report_set_stats(&rep, stats_to_json(&st));
        }
        tokenizer_free(tok);
        if (lora)
            lora_destroy(lora);
        model_free(&m);
    }
    output(&rep, out, json, argc, argv);
    report_free(&rep);
    free(ppl_files);
    free(prompts);
    if (fflush(stdout) != 0 || ferror(stdout))
        die("cannot write the report: write error");
    return 0;
}
