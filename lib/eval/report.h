/* report.h - the report stream of pare-eval: metrics with the protocol that produced
 * them, per-item results, generation samples and model statistics; a human table on
 * stderr, or one JSON object; reading reports back and merging shards. */
#ifndef PARE_REPORT_H
#define PARE_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

typedef struct {
    char *task;        /* "wikitext2", "piqa", "average" */
    char *metric;      /* "ppl", "acc", "acc_norm", "paper" */
    double value;
    int64_t n;         /* tokens predicted, or items */
    double stderr_;    /* NAN when not defined */
    int64_t correct;   /* items right, for accuracies (what shards add up); -1 otherwise */
    bool paper;        /* the metric the paper reports for this task */
    json_t *protocol;  /* dataset, split, window, bos, tokenization, ... (owned) */
} report_metric;

typedef struct {
    char fingerprint[17];
    char *model_source;
    char *path;        /* where it was read from (report_read), for messages */
    int shard, shards; /* a partial report of items shard, shard+shards, ...; shards 0: whole */
    report_metric *metrics;
    int n_metrics;
    json_t *items;     /* array of "item" records */
    json_t *samples;   /* array of "sample" records */
    json_t *stats;     /* the "stats" record, or NULL */
    json_t *other;     /* records of other types, passed through */
} report;

void report_init(report *r, const char *fingerprint, const char *model_source);
void report_free(report *r);

/* Takes ownership of protocol (may be NULL). stderr_ NAN when not defined. */
void report_add_metric(report *r, const char *task, const char *metric, double value, int64_t n, double stderr_,
                       json_t *protocol);
/* An accuracy: value correct/n, stderr sqrt(p(1-p)/(n-1)). */
void report_add_accuracy(report *r, const char *task, const char *metric, int64_t correct, int64_t n, bool paper,
                         json_t *protocol);
/* "average"/"paper": the plain mean of the paper's metric of every task present
 * (none is added when no accuracy is marked paper). */
void report_add_average(report *r);
/* Records of the other types (the report takes ownership; "t" is set). */
void report_add_item(report *r, json_t *item);
void report_add_sample(report *r, json_t *sample);
void report_set_stats(report *r, json_t *stats);

void report_write(const report *r, const char *path, int argc, char **argv);
void report_print_table(const report *r, FILE *f);
/* n reports side by side, column k headed names[k]: a row per task and metric any of
 * them has (in the order they first appear; "-" where a report lacks it), then the
 * parameters and speeds of their statistics where any has them. */
void report_print_comparison(const report *r, int n, const char *const *names, FILE *f);
json_t *report_to_json(const report *r);

/* Read a report stream (dies naming path on anything wrong). */
void report_read(report *r, const char *path);
/* Merge n reports into out: either the shards 0..k-1 of one sharded run (every
 * shard exactly once; accuracies add their counts, so the result is the report of
 * the unsharded run), or whole reports of the same model (their records joined; a
 * task/metric twice is an error). The average is computed again. */
void report_merge(report *out, report *in, int n);

#endif
