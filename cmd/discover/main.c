/* pare-discover - find the coupled structures of a model by dependency analysis of
 * its dataflow, and write them as a groups stream. Needs no weights: a config.json
 * is enough to plan the pruning of a model not yet downloaded. */
#include <string.h>

#include "base/options.h"
#include "base/util.h"
#include "format/model_load.h"
#include "model/model.h"
#include "prune/groups.h"
#include "prune/groups_stream.h"

static const char usage[] =
    "usage: pare-discover -m MODEL [--kinds LIST] [-o FILE]\n"
    "\n"
    "Find the groups of coupled structures of MODEL (attention heads with their key/value\n"
    "heads and output columns, MLP channels, hidden channels, layers) and write them as a\n"
    "groups stream on stdout.\n"
    "\n";

/* --kinds LIST */
static void kinds_option(const char *name, const char *arg, void *value)
{
    char bad[64];
    unsigned *kinds = value;
    *kinds = group_kinds_parse(arg, bad, sizeof bad);
    if (!*kinds && *bad)
        usage_die("%s: unknown kind '%s' (attn, ffn, hidden, layer)", name, bad);
    if (!*kinds)
        usage_die("%s: no kind given", name);
}

int main(int argc, char **argv)
{
    set_progname(argv[0]);
    const char *model_path = NULL, *out = NULL;
    unsigned kinds = GROUP_KIND_ALL;
    option opts[] = {
        OPT_STRING('m', "model", "PATH", "HF folder, config.json alone, llama2.c .bin, checkpoint ('-' = stdin)",
                   &model_path),
        OPT_FUNC(0, "kinds", "LIST", "comma-separated kinds to write: attn,ffn,hidden,layer (default all)",
                 kinds_option, &kinds),
        OPT_OUTPUT("write to FILE (atomically) instead of stdout", &out),
        OPT_QUIET("no summary on stderr"),
        OPT_END,
    };
    int first = options_parse(opts, usage, argc, argv);
    if (first < argc)
        usage_die("unexpected argument '%s'", argv[first]);
    if (!model_path)
        usage_die("no model given (-m MODEL)");

    model m;
    model_load(&m, model_path, NULL);
    group_set gs;
    groups_discover(&m, kinds, &gs);
    groups_write(&gs, "groups", out, argc, argv);

    int count[GROUP_KIND_COUNT] = {0};
    for (int i = 0; i < gs.n; i++)
        count[gs.g[i].kind]++;
    info("%d groups: %d attn, %d ffn, %d hidden, %d layer%s", gs.n, count[GROUP_ATTN], count[GROUP_FFN],
         count[GROUP_HIDDEN], count[GROUP_LAYER], m.has_weights ? "" : " (from the config alone: planning only)");
    group_set_free(&gs);
    model_free(&m);
    return 0;
}
