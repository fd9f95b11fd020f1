/* pare-discover - find the coupled structures of a model by dependency analysis of
 * its dataflow, and write them as a groups stream. Needs no weights: a config.json
 * is enough to plan the pruning of a model not yet downloaded. */
#include <getopt.h>
#include <string.h>

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
    "\n"
    "  -m, --model PATH   HF folder, config.json alone, llama2.c .bin, checkpoint ('-' = stdin)\n"
    "      --kinds LIST   comma-separated kinds to write: attn,ffn,hidden,layer (default all)\n"
    "  -o, --output FILE  write to FILE (atomically) instead of stdout\n"
    "  -q, --quiet        no summary on stderr\n"
    "  -h, --help         show this help\n"
    "      --version      show the version\n";

int main(int argc, char **argv)
{
    set_progname(argv[0]);
    const char *model_path = NULL, *out = NULL;
    unsigned kinds = GROUP_KIND_ALL;
    enum { OPT_KINDS = 256, OPT_VERSION };
    static const struct option opts[] = {{"model", required_argument, 0, 'm'}, {"kinds", required_argument, 0, OPT_KINDS},
                                         {"output", required_argument, 0, 'o'}, {"quiet", no_argument, 0, 'q'},
                                         {"help", no_argument, 0, 'h'},        {"version", no_argument, 0, OPT_VERSION},
                                         {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "m:o:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model_path = optarg; break;
        case OPT_KINDS: {
            char bad[64];
            kinds = group_kinds_parse(optarg, bad, sizeof bad);
            if (!kinds && *bad)
                usage_die("--kinds: unknown kind '%s' (attn, ffn, hidden, layer)", bad);
            if (!kinds)
                usage_die("--kinds: no kind given");
            break;
        }
        case 'o': out = optarg; break;
        case 'q': g_quiet = true; break;
        case 'h': fputs(usage, stdout); return 0;
        case OPT_VERSION: printf("pare-discover %s\n", PARE_VERSION); return 0;
        default: usage_die("unknown option");
        }
    }
    if (optind < argc)
        usage_die("unexpected argument '%s'", argv[optind]);
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
