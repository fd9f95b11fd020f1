/* rank.c - Spearman rank correlation of criteria with ablation (rank.h).
 * Letters: U units of a group, n values ranked. */
#include "prune/rank.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

typedef struct {
    double v;
    int64_t i;
} item;

static int cmp_item(const void *a, const void *b)
{
    const item *x = a, *y = b;
    if (x->v != y->v)
        return x->v < y->v ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

/* ranks (1-based, ties averaged) of the n values of x into r */
static void ranks(const double *x, int64_t n, double *r)
{
    item *it = xmalloc((size_t)(n > 0 ? n : 1) * sizeof *it);
    for (int64_t i = 0; i < n; i++)
        it[i] = (item){x[i], i};
    qsort(it, (size_t)n, sizeof *it, cmp_item);
    for (int64_t a = 0; a < n;) {
        int64_t b = a;
        while (b + 1 < n && it[b + 1].v == it[a].v)
            b++;
        for (int64_t k = a; k <= b; k++)
            r[it[k].i] = 0.5 * (double)(a + b) + 1.0;
        a = b + 1;
    }
    free(it);
}

double rank_spearman(const double *x, const double *y, int64_t n)
{
    if (n < 2)
        return NAN;
    double *rx = xmalloc((size_t)n * sizeof *rx), *ry = xmalloc((size_t)n * sizeof *ry);
    ranks(x, n, rx);
    ranks(y, n, ry);
    double mx = 0, my = 0;
    for (int64_t i = 0; i < n; i++) {
        mx += rx[i];
        my += ry[i];
    }
    mx /= (double)n;
    my /= (double)n;
    double sxy = 0, sxx = 0, syy = 0;
    for (int64_t i = 0; i < n; i++) {
        sxy += (rx[i] - mx) * (ry[i] - my);
        sxx += (rx[i] - mx) * (rx[i] - mx);
        syy += (ry[i] - my) * (ry[i] - my);
    }
    free(rx);
    free(ry);
    return sxx > 0 && syy > 0 ? sxy / sqrt(sxx * syy) : NAN;
}

bool rank_check(const model *m, const group_set *gs, enum group_kind k, enum prune_criterion c,
                enum prune_aggregate agg, uint64_t seed, const char *stream_name, rank_result *r)
{
    memset(r, 0, sizeof *r);
    r->within = r->pooled = NAN;
    int64_t total = 0;
    int n_groups = 0;
    for (int gi = 0; gi < gs->n; gi++) {
        const group *g = &gs->g[gi];
        if (g->kind != k || !group_find_stat(g, "ablation"))
            continue;
        if (!prune_criterion_serves(m, gs, g, c))
            return false;
        total += g->units;
        n_groups++;
    }
    if (!n_groups)
        return false;
    double *px = xmalloc((size_t)total * sizeof *px), *py = xmalloc((size_t)total * sizeof *py); /* pooled */
    double sum = 0;
    for (int gi = 0; gi < gs->n; gi++) {
        const group *g = &gs->g[gi];
        const group_stat *abl = group_find_stat(g, "ablation");
        if (g->kind != k || !abl)
            continue;
        const group_stat *flag = group_find_stat(g, "ablated");
        double *imp = xmalloc((size_t)g->units * sizeof *imp); /* (U) */
        prune_importance(m, gs, g, c, agg, seed, stream_name, imp);
        int64_t n0 = r->units;
        for (int64_t u = 0; u < g->units; u++)
            if (!flag || flag->values[u] != 0) {
                px[r->units] = imp[u];
                py[r->units++] = abl->values[u];
            }
        double rho = rank_spearman(px + n0, py + n0, r->units - n0);
        if (r->units - n0 >= 3 && !isnan(rho)) {
            sum += rho;
            r->groups++;
        }
        free(imp);
    }
    r->within = r->groups ? sum / r->groups : NAN;
    r->pooled = rank_spearman(px, py, r->units);
    free(px);
    free(py);
    return true;
}

static void cell(FILE *f, double v)
{
    if (isnan(v))
        fprintf(f, " %8s", "-");
    else
        fprintf(f, " %8.3f", v);
}

void rank_check_print(const model *m, const group_set *gs, enum prune_aggregate agg, uint64_t seed,
                      const char *stream_name, FILE *f)
{
    int64_t units[GROUP_KIND_COUNT] = {0};
    bool any = false;
    for (int gi = 0; gi < gs->n; gi++) {
        const group *g = &gs->g[gi];
        const group_stat *abl = group_find_stat(g, "ablation"), *flag = group_find_stat(g, "ablated");
        if (!abl)
            continue;
        any = true;
        for (int64_t u = 0; u < g->units; u++)
            units[g->kind] += !flag || flag->values[u] != 0;
    }
    if (!any)
        die("%s: no group has the 'ablation' statistic to check the criteria against (pare-score computes it)",
            stream_name);
    fprintf(f, "rank check: Spearman's rho of each criterion with ablation (the calibration loss change of\n"
               "removing the unit), within each group (mean over groups) and pooled over a kind's groups\n");
    fprintf(f, "%-10s", "criterion");
    for (int k = 0; k < GROUP_KIND_COUNT; k++)
        if (units[k])
            fprintf(f, " %8s %8s", group_kind_name((enum group_kind)k), "");
    fprintf(f, "\n%-10s", "");
    for (int k = 0; k < GROUP_KIND_COUNT; k++)
        if (units[k])
            fprintf(f, " %8s %8s", "within", "pooled");
    fprintf(f, "\n");
    for (int c = PRUNE_CRIT_VECTOR; c < PRUNE_CRIT_MANUAL; c++) {
        if (c == PRUNE_CRIT_ABLATION)
            continue;
        rank_result r[GROUP_KIND_COUNT];
        bool shown = false, ok[GROUP_KIND_COUNT] = {false};
        for (int k = 0; k < GROUP_KIND_COUNT; k++)
            if (units[k]) {
                ok[k] = rank_check(m, gs, (enum group_kind)k, (enum prune_criterion)c, agg, seed, stream_name, &r[k]);
                shown |= ok[k];
            }
        if (!shown)
            continue;
        fprintf(f, "%-10s", prune_criterion_name((enum prune_criterion)c));
        for (int k = 0; k < GROUP_KIND_COUNT; k++)
            if (units[k]) {
                cell(f, ok[k] ? r[k].within : NAN);
                cell(f, ok[k] ? r[k].pooled : NAN);
            }
        fprintf(f, "\n");
    }
    fprintf(f, "%-10s", "units");
    for (int k = 0; k < GROUP_KIND_COUNT; k++)
        if (units[k])
            fprintf(f, " %17lld", (long long)units[k]);
    fprintf(f, "\n");
}
