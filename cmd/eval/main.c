/* pare-eval - measure a model: perplexity (the paper's protocol) for now. */
#include <getopt.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "blas.h"
#include "model.h"
#include "ppl.h"
#include "progress.h"
#include "report.h"
#include "tokenizer.h"
#include "util.h"

static const char usage[] =
    "usage: pare-eval -m MODEL [--tokenizer FILE] --ppl FILE [--ppl FILE ...] [options]\n"
    "\n"
    "Evaluate a model and write a report stream (stdout or -o FILE); a table goes to stderr.\n"
    "\n"
    "  -m, --model PATH        model: HF folder, llama2.c .bin, checkpoint stream ('-' = stdin)\n"
    "      --tokenizer FILE    tokenizer (tokenizer.model or llama2.c tok*.bin) if the model has none\n"
    "      --ppl FILE          perplexity on FILE (plain or compressed); may be repeated\n"
    "      --ppl-format F      auto (default: by file name), wikitext, ptb or text\n"
    "      --seq-len N         window length in tokens (default 128)\n"
    "      --batch N           windows per forward pass (default 4)\n"
    "      --limit N           evaluate at most N windows per data set\n"
    "  -t, --threads N         threads (default: PARE_THREADS or all cores)\n"
    "  -o, --output FILE       write the report stream to FILE (atomically)\n"
    "      --json              print the report as one JSON object on stdout instead\n"
    "      --progress          show progress even when stderr is not a terminal\n"
    "  -q, --quiet             no progress and no table\n"
    "  -h, --help              show this help\n"
    "      --version           show the version\n";

int main(int argc, char **argv)
{
    set_progname(argv[0]);
    blas_init(argc, argv);

    const char *model_path = NULL, *tok_path = NULL, *out = NULL;
    const char **ppl_files = xcalloc((size_t)argc, sizeof *ppl_files);
    int n_ppl = 0, seq_len = 128, batch = 4, threads = 0;
    int64_t limit = 0;
    enum ppl_format format = PPL_AUTO;
    bool json = false;

    enum { OPT_TOK = 256, OPT_PPL, OPT_FORMAT, OPT_SEQ, OPT_BATCH, OPT_LIMIT, OPT_JSON, OPT_PROGRESS, OPT_VERSION };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},      {"tokenizer", required_argument, 0, OPT_TOK},
        {"ppl", required_argument, 0, OPT_PPL},    {"ppl-format", required_argument, 0, OPT_FORMAT},
        {"seq-len", required_argument, 0, OPT_SEQ}, {"batch", required_argument, 0, OPT_BATCH},
        {"limit", required_argument, 0, OPT_LIMIT}, {"threads", required_argument, 0, 't'},
        {"output", required_argument, 0, 'o'},     {"json", no_argument, 0, OPT_JSON},
        {"progress", no_argument, 0, OPT_PROGRESS}, {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},             {"version", no_argument, 0, OPT_VERSION},
        {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "m:t:o:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model_path = optarg; break;
        case OPT_TOK: tok_path = optarg; break;
        case OPT_PPL: ppl_files[n_ppl++] = optarg; break;
        case OPT_FORMAT: {
            int f = ppl_format_from_name(optarg);
            if (f < 0)
                usage_die("--ppl-format: unknown format '%s' (auto, wikitext, ptb, text)", optarg);
            format = (enum ppl_format)f;
            break;
        }
        case OPT_SEQ: seq_len = (int)parse_long("--seq-len", optarg, 2, 1 << 20); break;
        case OPT_BATCH: batch = (int)parse_long("--batch", optarg, 1, 4096); break;
        case OPT_LIMIT: limit = parse_long("--limit", optarg, 1, INT64_MAX); break;
        case 't': threads = (int)parse_long("--threads", optarg, 1, 4096); break;
        case 'o': out = optarg; break;
        case OPT_JSON: json = true; break;
        case OPT_PROGRESS: g_progress_mode = 1; break;
        case 'q': g_quiet = true; g_progress_mode = 0; break;
        case 'h': fputs(usage, stdout); return 0;
        case OPT_VERSION: printf("pare-eval %s\n", PARE_VERSION); return 0;
        default: usage_die("unknown option");
        }
    }
    if (optind < argc)
        usage_die("unexpected argument '%s'", argv[optind]);
    if (!model_path)
        usage_die("no model given (-m MODEL)");
    if (n_ppl == 0)
        usage_die("nothing to evaluate (give --ppl FILE)");
    blas_set_threads(threads);

    model m;
    model_load(&m, model_path, tok_path);
    if (!m.has_weights)
        die("%s: a bare config has no weights to evaluate", model_path);
    if (!m.tok.size)
        die("%s: the model has no tokenizer (give --tokenizer FILE)", model_path);
    tokenizer *tok = tokenizer_load_blob(m.tok.format, m.tok.data, m.tok.size, model_path);
    if (tokenizer_vocab_size(tok) > m.cfg.vocab)
        die("%s: tokenizer has %d tokens, the model only %d", model_path, tokenizer_vocab_size(tok), m.cfg.vocab);

    char fp[17];
    model_fingerprint(&m, fp);
    report rep;
    report_init(&rep, fp, model_path);
    for (int i = 0; i < n_ppl; i++) {
        ppl_dataset d;
        ppl_dataset_load(&d, ppl_files[i], format);
        int *ids;
        size_t n = tokenizer_encode(tok, d.text, d.len, true, &ids);
        ppl_result res;
        ppl_evaluate(&m, ids, n, seq_len, batch, limit, d.task, &res);
        json_t *protocol = json_pack(
            "{s:s,s:s,s:s,s:i,s:s,s:s,s:I,s:I}", "dataset", ppl_files[i], "split", d.split, "format",
            ppl_format_name(d.format), "window", seq_len, "bos", "once, at the start of the text", "tokenization",
            d.format == PPL_TEXT ? "the file as one text, tokenized once"
                                 : "rows joined with \"\\n\\n\", tokenized once",
            "windows", (json_int_t)res.windows, "tokens", (json_int_t)res.tokens);
        report_add_metric(&rep, d.task, "ppl", res.ppl, res.predicted, NAN, protocol);
        info("%s: ppl %.4f over %lld tokens (%lld windows of %d) in %.2f s, %.0f tok/s", d.task, res.ppl,
             (long long)res.predicted, (long long)res.windows, seq_len, res.seconds,
             (double)res.windows * seq_len / res.seconds);
        free(ids);
        ppl_dataset_free(&d);
    }

    if (!g_quiet)
        report_print_table(&rep, stderr);
    if (json) {
        json_t *j = report_to_json(&rep);
        json_dumpf(j, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
        putchar('\n');
        json_decref(j);
    } else if (out || !isatty(STDOUT_FILENO)) {
        report_write(&rep, out, argc, argv);
    }
    report_free(&rep);
    tokenizer_free(tok);
    model_free(&m);
    free(ppl_files);
    if (fflush(stdout) != 0 || ferror(stdout))
        die("cannot write the report: write error");
    return 0;
}
