/* progress.h - one status line on stderr for long work: done/total, rate, time left.
 * Shown when stderr is a terminal, or when forced by --progress; --quiet hides it. */
#ifndef PARE_PROGRESS_H
#define PARE_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    const char *what;    /* "wikitext2" */
    const char *unit;    /* "tok" */
    int64_t total;
    double start, last;
    bool shown;
} progress;

/* -1: decide from isatty(stderr); 0: never; 1: always. Set by --progress/--quiet. */
extern int g_progress_mode;

void progress_start(progress *p, const char *what, const char *unit, int64_t total);
void progress_update(progress *p, int64_t done);   /* rate-limited to ~4 lines/s */
void progress_end(progress *p, int64_t done);      /* final line, with the total time */

/* Decimals to print a rate r with ("%.*f", rate_decimals(r), r): none from 100 up,
 * more below, so a 7B model's 0.44 tok/s does not print as 0. */
int rate_decimals(double r);

#endif
