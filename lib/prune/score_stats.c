/* score_stats.c - the statistics pare-score computes, by name (score_stats.h). */
#include "prune/score_stats.h"

#include <string.h>

#include "base/util.h"

static const char *const stat_names[SCORE_STAT_COUNT] = {"vector", "element1",    "element2", "mix",      "l1",
                                                         "l2",     "activations", "ablation", "influence"};

const char *score_stat_name(int s) { return (unsigned)s < SCORE_STAT_COUNT ? stat_names[s] : "?"; }

int score_stat_from_name(const char *s)
{
    for (int i = 0; i < SCORE_STAT_COUNT; i++)
        if (!strcmp(s, stat_names[i]))
            return i;
    return -1;
}

unsigned score_stats_parse(const char *list, char *bad, size_t bad_size)
{
    return parse_name_list(list, stat_names, SCORE_STAT_COUNT, SCORE_ALL, bad, bad_size);
}
