/* pare - the front end: "pare VERB ..." runs pare-VERB (git style), and four verbs
 * of its own: show (any stream as JSON lines), compare (reports side by side),
 * convert (any model to a checkpoint stream), tokenize (text to token ids). */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "base/options.h"
#include "base/util.h"
#include "eval/report.h"
#include "format/model_load.h"
#include "format/model_save.h"
#include "format/show.h"
#include "model/model.h"
#include "text/tokenizer.h"

static const char usage[] =
    "usage: pare VERB [options]\n"
    "\n"
    "Structural pruning of large language models (LLM-Pruner) as small programs.\n"
    "\n"
    "Verbs of pare itself:\n"
    "  show [--data] [STREAM]          print any pare stream as JSON lines\n"
    "  compare [--name N]... REPORT... print reports side by side: metrics, parameters, speed\n"
    "  convert -m MODEL [--tokenizer P] [--to FORMAT] [--dtype T] [-o PATH]\n"
    "                                  write a model as a checkpoint stream, GGUF or HF folder\n"
    "  tokenize (-m MODEL | --tokenizer PATH) [--bos] [FILE]\n"
    "                                  print the token ids of a text (stdin by default)\n"
    "Programs (pare VERB runs pare-VERB), in the order of a pipeline:\n"
    "  discover                        find the coupled structures of a model (groups stream)\n"
    "  score                           importance statistics of the groups, from calibration text\n"
    "  prune                           remove the least important structures (checkpoint stream)\n"
    "  lora                            recover a pruned model with LoRA adapters (resumable)\n"
    "  eval                            perplexity, zero-shot tasks, generation, size and speed\n"
    "\n"
    "  -h, --help     show this help; 'pare VERB --help' for a verb\n"
    "      --version  show the version\n";

/* --name NAME, repeated: the names in order */
typedef struct {
    const char **items;
    int n;
} name_list;

static void name_option(const char *name, const char *arg, void *value)
{
    (void)name;
    name_list *l = value;
    l->items[l->n++] = arg;
}

static int cmd_compare(int argc, char **argv)
{
    static const char help[] = "usage: pare compare [-n NAME]... REPORT...\n"
                               "Print report streams (pare-eval's) side by side on stdout: a row per task and\n"
                               "metric, a column per report, then parameters and tokens/s where measured.\n";
    name_list nl = {xcalloc((size_t)argc, sizeof(char *)), 0};
    option opts[] = {
        OPT_FUNC('n', "name", "NAME", "the next report's column heading (default: its file name)", name_option, &nl),
        OPT_END,
    };
    int first = options_parse(opts, help, argc, argv);
    const char **names = nl.items;
    int n_names = nl.n;
    int n = argc - first;
    if (n < 1)
        usage_die("compare takes one or more report streams");
    if (n_names > n)
        usage_die("%d names for %d reports", n_names, n);
    report *r = xcalloc((size_t)n, sizeof *r);
    for (int k = 0; k < n; k++) {
        report_read(&r[k], argv[first + k]);
        if (k >= n_names) {
            const char *slash = strrchr(argv[first + k], '/');
            names[k] = slash ? slash + 1 : argv[first + k];
        }
    }
    report_print_comparison(r, n, names, stdout);
    for (int k = 0; k < n; k++)
        report_free(&r[k]);
    free(r);
    free(names);
    return 0;
}

static int cmd_show(int argc, char **argv)
{
    static const char help[] = "usage: pare show [--data] [STREAM]\n"
                               "Print a pare stream (stdin by default) as JSON lines: header, records, end.\n";
    bool data = false;
    option opts[] = {
        OPT_FLAG(0, "data", "decode bulk payloads (tensors as numbers) instead of summarising them", &data),
        OPT_END,
    };
    int first = options_parse(opts, help, argc, argv);
    if (argc - first > 1)
        usage_die("show takes one stream");
    show_stream(first < argc ? argv[first] : "-", data, stdout);
    return 0;
}

static void dtype_option(const char *name, const char *arg, void *value) { *(int *)value = (int)parse_dtype(name, arg); }

static int cmd_convert(int argc, char **argv)
{
    static const char help[] =
        "usage: pare convert -m MODEL [--tokenizer PATH] [--to FORMAT] [--dtype T] [-o PATH]\n"
        "\n"
        "Write MODEL (HF folder, PyTorch folder, GGUF, llama2.c .bin, checkpoint) as FORMAT.\n";
    const char *model_path = NULL, *tok = NULL, *out = NULL, *to = NULL;
    int dtype = -1; /* --dtype, or -1: the format's default */
    option opts[] = {
        OPT_STRING('m', "model", "PATH", "the model", &model_path),
        OPT_STRING(0, "tokenizer", "PATH", "a tokenizer to include (tokenizer.model, tok*.bin, tokenizer.json or a folder)",
                   &tok),
        OPT_STRING(0, "to", "FORMAT",
                   "checkpoint (the default, but gguf for -o FILE.gguf; a stream on stdout\n"
                   "or -o FILE), gguf (llama.cpp: llama, qwen2, qwen3, or deci for\n"
                   "per-layer widths; -o FILE), hf (-o DIR)",
                   &to),
        OPT_FUNC(0, "dtype", "T",
                 "f32, f16 or bf16 for the matrices (gguf, hf: default f32;\n"
                 "checkpoint: default each tensor as read)",
                 dtype_option, &dtype),
        OPT_STRING('o', "output", "PATH", "write to PATH (atomically) instead of stdout", &out),
        OPT_END,
    };
    int first = options_parse(opts, help, argc, argv);
    if (first < argc)
        usage_die("unexpected argument '%s'", argv[first]);
    if (!model_path)
        usage_die("no model given (-m MODEL)");
    int fmt = to ? model_out_from_name(to) : (int)model_out_of_path(out);
    if (fmt < 0)
        usage_die("--to: unknown format '%s' (checkpoint, gguf, hf)", to);
    if (fmt != MODEL_OUT_CHECKPOINT && (!out || !strcmp(out, "-")))
        usage_die("--to %s needs -o %s", to ? to : "gguf", fmt == MODEL_OUT_GGUF ? "FILE" : "DIR");
    model m;
    model_load(&m, model_path, tok);
    if (fmt == MODEL_OUT_CHECKPOINT && dtype >= 0)
        model_set_dtype(&m, (enum dtype)dtype);
    model_save(&m, out, (enum model_out)fmt, dtype >= 0 ? dtype : DTYPE_F32, argc, argv, m.provenance);
    model_free(&m);
    return 0;
}

static int cmd_tokenize(int argc, char **argv)
{
    static const char help[] = "usage: pare tokenize (-m MODEL | --tokenizer PATH) [--bos] [FILE]\n"
                               "Print the token ids of a text (FILE or stdin) on one line, space-separated.\n";
    const char *model_path = NULL, *tok_path = NULL;
    bool bos = false;
    option opts[] = {
        OPT_STRING('m', "model", "PATH", "use the model's tokenizer", &model_path),
        OPT_STRING(0, "tokenizer", "PATH", "tokenizer.model, llama2.c tok*.bin, tokenizer.json or a model folder",
                   &tok_path),
        OPT_FLAG(0, "bos", "put the BOS id first ([gMASK] <sop> for ChatGLM)", &bos),
        OPT_END,
    };
    int first = options_parse(opts, help, argc, argv);
    if (argc - first > 1)
        usage_die("tokenize takes one text file");
    if (!model_path && !tok_path)
        usage_die("give -m MODEL or --tokenizer PATH");
    tokenizer *t;
    model m = {0};
    if (tok_path) {
        t = tokenizer_load_file(tok_path);
    } else {
        model_load(&m, model_path, NULL);
        if (!m.tok.size)
            die("%s: the model has no tokenizer (give --tokenizer FILE)", model_path);
        t = tokenizer_load_blob(m.tok.format, m.tok.data, m.tok.size, model_path);
        model_free(&m);
    }
    size_t len;
    char *text = read_whole_file(first < argc ? argv[first] : "-", &len);
    int *ids;
    size_t n = tokenizer_encode(t, text, len, bos, &ids);
    for (size_t i = 0; i < n; i++)
        printf(i ? " %d" : "%d", ids[i]);
    putchar('\n');
    free(ids);
    free(text);
    tokenizer_free(t);
    return 0;
}

/* Run pare-VERB from the folder of this executable, else from PATH. */
static int run_program(const char *verb, int argc, char **argv)
{
    char self[PATH_MAX];
    char *name = xasprintf("pare-%s", verb);
    argv[0] = name;
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = 0;
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = 0;
            char *path = path_join(self, name);
            if (access(path, X_OK) == 0)
                execv(path, argv);
            free(path);
        }
    }
    execvp(name, argv);
    if (errno == ENOENT)
        usage_die("'%s' is not a pare verb or program (see 'pare --help')", verb);
    die("cannot run '%s': %s", name, strerror(errno));
    (void)argc;
}

int main(int argc, char **argv)
{
    set_progname("pare");
    if (argc < 2)
        usage_die("no verb given");
    const char *verb = argv[1];
    if (!strcmp(verb, "-h") || !strcmp(verb, "--help") || !strcmp(verb, "help")) {
        fputs(usage, stdout);
        return 0;
    }
    if (!strcmp(verb, "--version")) {
        printf("pare %s\n", PARE_VERSION);
        return 0;
    }
    int rc;
    if (!strcmp(verb, "show") || !strcmp(verb, "compare") || !strcmp(verb, "convert") || !strcmp(verb, "tokenize")) {
        char *name = xasprintf("pare %s", verb);
        set_progname(name);
        argv[1] = argv[0];
        argc--;
        argv++;
        rc = !strcmp(verb, "show") ? cmd_show(argc, argv)
             : !strcmp(verb, "compare") ? cmd_compare(argc, argv)
             : !strcmp(verb, "convert") ? cmd_convert(argc, argv)
                                        : cmd_tokenize(argc, argv);
        if (fflush(stdout) != 0 || ferror(stdout))
            die("write error on stdout");
        return rc;
    }
    return run_program(verb, argc - 1, argv + 1);
}
