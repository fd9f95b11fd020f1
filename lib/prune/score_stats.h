/* score_stats.h - the statistics pare-score computes, by name (score.h says what
 * each is). */
#ifndef PARE_SCORE_STATS_H
#define PARE_SCORE_STATS_H

#include <stddef.h>

enum score_stat {
    SCORE_VECTOR, SCORE_ELEMENT1, SCORE_ELEMENT2, SCORE_MIX, SCORE_L1, SCORE_L2, /* per member and unit */
    SCORE_ACTIVATIONS,                                                           /* per linear map input */
    SCORE_ABLATION, SCORE_INFLUENCE, /* per unit, from forward passes (ablate.h); not in "all" */
    SCORE_STAT_COUNT
};
#define SCORE_MEMBER_STATS 6
#define SCORE_ALL ((1u << (SCORE_ACTIVATIONS + 1)) - 1)
#define SCORE_FORWARD ((1u << SCORE_ABLATION) | (1u << SCORE_INFLUENCE))
#define SCORE_FISHER ((1u << SCORE_ELEMENT2) | (1u << SCORE_MIX))

const char *score_stat_name(int s);
int score_stat_from_name(const char *s); /* -1 if unknown */
/* "vector,mix" (or "all": every statistic but ablation and influence) -> mask;
 * 0 on an unknown name (copied into bad) or an empty list (bad = ""). */
unsigned score_stats_parse(const char *list, char *bad, size_t bad_size);

#endif
