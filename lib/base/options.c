/* options.c - a program's options as one table (options.h). */
#include "base/options.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "base/progress.h"
#include "base/util.h"

void option_quiet(const char *name, const char *arg, void *value)
{
    (void)name, (void)arg, (void)value;
    g_quiet = true;
    g_progress_mode = 0;
}

void option_progress(const char *name, const char *arg, void *value)
{
    (void)name, (void)arg, (void)value;
    g_progress_mode = 1;
}

static const option help_opts[] = {
    OPT_FLAG('h', "help", "show this help", NULL),
    OPT_FLAG(0, "version", "show the version", NULL),
};

/* "-m, --model PATH" or "    --seq-len N": the left column of an entry. */
static int left_of(const option *o, char *buf, size_t n)
{
    char s[8] = "    ";
    if (o->short_name)
        snprintf(s, sizeof s, "-%c, ", o->short_name);
    return snprintf(buf, n, "%s--%s%s%s", s, o->long_name, o->arg ? " " : "", o->arg ? o->arg : "");
}

static void print_entry(const option *o, int col, FILE *f)
{
    char left[128];
    int w = left_of(o, left, sizeof left);
    fprintf(f, "  %s", left);
    const char *h = o->help ? o->help : "";
    bool first = true;
    for (;;) {
        const char *nl = strchr(h, '\n');
        int len = nl ? (int)(nl - h) : (int)strlen(h);
        if (first)
            fprintf(f, "%*s%.*s", w < col ? col - w : 1, "", len, h);
        else
            fprintf(f, "%*s%.*s", col + 2, "", len, h);
        first = false;
        if (!nl)
            break;
        fputc('\n', f);
        h = nl + 1;
    }
    if (o->def)
        fprintf(f, " (default %s)", o->def);
    fputc('\n', f);
}

void options_help(const option *opts, const char *usage, FILE *f)
{
    int col = 0;
    char left[128];
    for (const option *o = opts; o->kind != OPTK_END; o++)
        if (o->kind != OPTK_SECTION && left_of(o, left, sizeof left) + 2 > col)
            col = left_of(o, left, sizeof left) + 2;
    for (size_t i = 0; i < sizeof help_opts / sizeof *help_opts; i++)
        if (left_of(&help_opts[i], left, sizeof left) + 2 > col)
            col = left_of(&help_opts[i], left, sizeof left) + 2;
    fputs(usage, f);
    for (const option *o = opts; o->kind != OPTK_END; o++) {
        if (o->kind == OPTK_SECTION)
            fprintf(f, "%s\n", o->help);
        else
            print_entry(o, col, f);
    }
    for (size_t i = 0; i < sizeof help_opts / sizeof *help_opts; i++)
        print_entry(&help_opts[i], col, f);
}

/* The entry's name as messages write it: "--seq-len", or "-x" when it has no long name. */
static const char *name_of(const option *o, char *buf, size_t n)
{
    if (o->long_name)
        snprintf(buf, n, "--%s", o->long_name);
    else
        snprintf(buf, n, "-%c", o->short_name);
    return buf;
}

static void apply(const option *o, const char *arg)
{
    char name[64];
    name_of(o, name, sizeof name);
    switch (o->kind) {
    case OPTK_STRING: *(const char **)o->value = arg; break;
    case OPTK_FLAG: *(bool *)o->value = true; break;
    case OPTK_INT: *(int *)o->value = (int)parse_long(name, arg, (long)o->min, (long)o->max); break;
    case OPTK_INT64: *(int64_t *)o->value = parse_long(name, arg, (long)o->min, (long)o->max); break;
    case OPTK_DOUBLE: *(double *)o->value = parse_double(name, arg, o->dmin, o->dmax); break;
    case OPTK_FUNC: o->func(name, arg, o->value); break;
    default: break;
    }
}

const char *options_one_operand(int argc, char **argv, int first, const char *def)
{
    if (argc - first > 1)
        usage_die("unexpected argument '%s'", argv[first + 1]);
    return first < argc ? argv[first] : def;
}

bool options_given(const option *opts, const char *long_name)
{
    for (const option *o = opts; o->kind != OPTK_END; o++)
        if (o->long_name && !strcmp(o->long_name, long_name))
            return o->given;
    die("options_given: no option --%s", long_name);
}

int options_parse(option *opts, const char *usage, int argc, char **argv)
{
    int n = 0;
    while (opts[n].kind != OPTK_END)
        n++;
    struct option *lopts = xcalloc((size_t)n + 3, sizeof *lopts);
    char *sopts = xmalloc(2 * (size_t)n + 8);
    int nl = 0, ns = 0;
    for (int i = 0; i < n; i++) {
        const option *o = &opts[i];
        if (o->kind == OPTK_SECTION)
            continue;
        int val = o->short_name ? o->short_name : 256 + i;
        if (o->long_name)
            lopts[nl++] = (struct option){o->long_name, o->arg ? required_argument : no_argument, 0, val};
        if (o->short_name) {
            sopts[ns++] = o->short_name;
            if (o->arg)
                sopts[ns++] = ':';
        }
    }
    lopts[nl++] = (struct option){"help", no_argument, 0, 'h'};
    lopts[nl++] = (struct option){"version", no_argument, 0, 256 + n};
    sopts[ns++] = 'h';
    sopts[ns] = 0;
    int c;
    while ((c = getopt_long(argc, argv, sopts, lopts, NULL)) != -1) {
        if (c == 'h') {
            options_help(opts, usage, stdout);
            exit(0);
        }
        if (c == 256 + n) {
            printf("%s %s\n", progname(), PARE_VERSION);
            exit(0);
        }
        const option *o = NULL;
        for (int i = 0; i < n && !o; i++)
            if (opts[i].kind != OPTK_SECTION && (opts[i].short_name ? opts[i].short_name == c : 256 + i == c))
                o = &opts[i];
        if (!o)
            usage_die("unknown option");
        apply(o, optarg);
        opts[o - opts].given = true;
    }
    free(lopts);
    free(sopts);
    return optind;
}
