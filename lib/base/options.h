/* options.h - a program's options as one table (git's parse-options): each
 * entry names the option (short letter, long name, argument), says what it does
 * (help text, default), and where its value goes. The same table drives the
 * parser (getopt_long) and the --help text, so the two cannot drift apart.
 *
 *     option opts[] = {
 *         OPT_STRING('m', "model", "PATH", "the model", &model_path),
 *         OPT_SECTION("perplexity:"),
 *         OPT_INT(0, "seq-len", "N", "window length in tokens", &seq_len, 2, 1 << 20, "128"),
 *         OPT_FLAG('q', "quiet", "no progress", &quiet),
 *         OPT_END,
 *     };
 *     int first = options_parse(opts, usage, argc, argv); // argv[first..] are the operands
 *
 * A help text of several lines continues under the first. --help (-h) and
 * --version are every program's, answered by options_parse (usage text, then
 * the table; the program's name and PARE_VERSION) with exit status 0. Bad
 * values are usage errors naming the option (exit 2). */
#ifndef PARE_OPTIONS_H
#define PARE_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum option_kind {
    OPTK_END,
    OPTK_SECTION, /* a heading in --help */
    OPTK_STRING,  /* const char **value = the argument */
    OPTK_FLAG,    /* bool *value = true */
    OPTK_INT,     /* int *value, in [min, max] */
    OPTK_INT64,   /* int64_t *value, in [min, max] */
    OPTK_DOUBLE,  /* double *value, in [dmin, dmax] */
    OPTK_FUNC,    /* func(name, argument (NULL for a flag), value) */
};

/* What a function option gets: the option as written in messages ("--tasks"),
 * its argument (NULL when it takes none) and the entry's value pointer. */
typedef void (*option_func)(const char *name, const char *arg, void *value);

typedef struct {
    enum option_kind kind;
    char short_name;       /* 0: none */
    const char *long_name; /* NULL: none (a section) */
    const char *arg;       /* the argument's name in --help; NULL: a flag */
    const char *help;
    const char *def;       /* the default, shown "(default DEF)"; NULL: none shown */
    void *value;
    int64_t min, max;
    double dmin, dmax;
    option_func func;
    bool given;            /* set by options_parse when the option is on the command line */
} option;

#define OPT_END {.kind = OPTK_END}
#define OPT_SECTION(title) {.kind = OPTK_SECTION, .help = (title)}
#define OPT_STRING(s, l, a, h, v) {.kind = OPTK_STRING, .short_name = (s), .long_name = (l), .arg = (a), .help = (h), .value = (v)}
#define OPT_FLAG(s, l, h, v) {.kind = OPTK_FLAG, .short_name = (s), .long_name = (l), .help = (h), .value = (v)}
#define OPT_INT(s, l, a, h, v, lo, hi, d) \
    {.kind = OPTK_INT, .short_name = (s), .long_name = (l), .arg = (a), .help = (h), .value = (v), .min = (lo), .max = (hi), .def = (d)}
#define OPT_INT64(s, l, a, h, v, lo, hi, d) \
    {.kind = OPTK_INT64, .short_name = (s), .long_name = (l), .arg = (a), .help = (h), .value = (v), .min = (lo), .max = (hi), .def = (d)}
#define OPT_DOUBLE(s, l, a, h, v, lo, hi, d) \
    {.kind = OPTK_DOUBLE, .short_name = (s), .long_name = (l), .arg = (a), .help = (h), .value = (v), .dmin = (lo), .dmax = (hi), .def = (d)}
#define OPT_FUNC(s, l, a, h, f, v) {.kind = OPTK_FUNC, .short_name = (s), .long_name = (l), .arg = (a), .help = (h), .func = (f), .value = (v)}

/* The options every program that does these shares, in one wording. */
#define OPT_THREADS(v) OPT_INT('t', "threads", "N", "threads (default: PARE_THREADS, else all cores)", (v), 1, 4096, NULL)
#define OPT_OUTPUT(h, v) OPT_STRING('o', "output", "FILE", (h), (v))
#define OPT_QUIET(h) OPT_FUNC('q', "quiet", NULL, (h), option_quiet, NULL)
#define OPT_PROGRESS OPT_FUNC(0, "progress", NULL, "show progress even when stderr is not a terminal", option_progress, NULL)
#define OPT_SEED(h, v, d) OPT_INT64(0, "seed", "N", (h), (v), 0, INT64_MAX, (d))
#define OPT_TOKENIZER(v)                                                                                            \
    OPT_STRING(0, "tokenizer", "FILE",                                                                              \
               "tokenizer (tokenizer.model, tok*.bin, tokenizer.json or a model folder) if the model has none", (v))

/* -q: no progress or summaries; --progress: progress even when stderr is not a terminal. */
void option_quiet(const char *name, const char *arg, void *value);
void option_progress(const char *name, const char *arg, void *value);

/* Parse argv by the table (ending with OPT_END; -h, --help and --version are
 * added); usage is the text --help prints before the options (usage lines and a
 * description). Returns the index of the first operand. */
int options_parse(option *opts, const char *usage, int argc, char **argv);
/* The one operand a program takes, argv[first], or def when there is none; a
 * usage error when there are more. */
const char *options_one_operand(int argc, char **argv, int first, const char *def);
/* Whether the option of that long name was on the command line. */
bool options_given(const option *opts, const char *long_name);
/* The --help text: usage, then the table. */
void options_help(const option *opts, const char *usage, FILE *f);

#endif
