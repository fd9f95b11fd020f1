/* progress.c - a progress line on stderr. */
#include "base/progress.h"

#include <stdio.h>
#include <unistd.h>

#include "base/util.h"

int g_progress_mode = -1;

int rate_decimals(double r) { return r >= 100 ? 0 : r >= 10 ? 1 : r >= 1 ? 2 : 3; }

static bool progress_visible(void)
{
    if (g_progress_mode >= 0)
        return g_progress_mode == 1;
    return !g_quiet && isatty(STDERR_FILENO);
}

void progress_start(progress *p, const char *what, const char *unit, int64_t total)
{
    p->what = what;
    p->unit = unit;
    p->total = total;
    p->start = p->last = now_seconds();
    p->shown = false;
}

static void print_line(progress *p, int64_t done, bool final)
{
    double t = now_seconds() - p->start;
    double rate = t > 0 ? (double)done / t : 0;
    double left = rate > 0 ? (double)(p->total - done) / rate : 0;
    bool tty = isatty(STDERR_FILENO);
    fprintf(stderr, "%s%s: %s %lld/%lld %s, %.*f %s/s, %s %.1f s%s", tty ? "\r" : "", progname(), p->what,
            (long long)done, (long long)p->total, p->unit, rate_decimals(rate), rate, p->unit, final ? "took" : "left",
            final ? t : left, tty && !final ? "\033[K" : "\n");
    if (final && tty)
        fputs("\033[K", stderr);
    fflush(stderr);
}

void progress_update(progress *p, int64_t done)
{
    if (!progress_visible())
        return;
    double t = now_seconds();
    if (t - p->last < (isatty(STDERR_FILENO) ? 0.25 : 5.0))
        return;
    p->last = t;
    p->shown = true;
    print_line(p, done, false);
}

void progress_end(progress *p, int64_t done)
{
    if (!progress_visible())
        return;
    print_line(p, done, true);
}
