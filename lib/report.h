/* report.h - the report stream of pare-eval: metrics with the protocol that produced
 * them, a human table on stderr, or one JSON object. */
#ifndef PARE_REPORT_H
#define PARE_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

typedef struct {
    char *task;        /* "wikitext2", "piqa" */
    char *metric;      /* "ppl", "acc", "acc_norm" */
    double value;
    int64_t n;         /* tokens predicted, or items */
    double stderr_;    /* NAN when not defined */
    json_t *protocol;  /* dataset, split, window, bos, tokenization, ... (owned) */
} report_metric;

typedef struct {
    char fingerprint[17];
    char *model_source;
    report_metric *metrics;
    int n_metrics;
} report;

void report_init(report *r, const char *fingerprint, const char *model_source);
/* Takes ownership of protocol (may be NULL). stderr_ NAN when not defined. */
void report_add_metric(report *r, const char *task, const char *metric, double value, int64_t n, double stderr_,
                       json_t *protocol);
void report_write(const report *r, const char *path, int argc, char **argv);
void report_print_table(const report *r, FILE *f);
json_t *report_to_json(const report *r);
void report_free(report *r);

#endif
