/* report.c - report stream, table and JSON. */
#include "report.h"

#include <math.h>
#include <string.h>

#include "stream.h"
#include "util.h"

void report_init(report *r, const char *fingerprint, const char *model_source)
{
    memset(r, 0, sizeof *r);
    snprintf(r->fingerprint, sizeof r->fingerprint, "%s", fingerprint);
    r->model_source = xstrdup(model_source);
}

void report_add_metric(report *r, const char *task, const char *metric, double value, int64_t n, double stderr_,
                       json_t *protocol)
{
    r->metrics = xrealloc(r->metrics, (size_t)(r->n_metrics + 1) * sizeof *r->metrics);
    report_metric *m = &r->metrics[r->n_metrics++];
    m->task = xstrdup(task);
    m->metric = xstrdup(metric);
    m->value = value;
    m->n = n;
    m->stderr_ = stderr_;
    m->protocol = protocol;
}

static json_t *metric_json(const report_metric *m)
{
    json_t *j = json_pack("{s:s,s:s,s:s,s:f,s:I}", "t", "metric", "task", m->task, "metric", m->metric, "value",
                          m->value, "n", (json_int_t)m->n);
    json_object_set_new(j, "stderr", isnan(m->stderr_) ? json_null() : json_real(m->stderr_));
    if (m->protocol)
        json_object_set(j, "protocol", m->protocol);
    return j;
}

void report_write(const report *r, const char *path, int argc, char **argv)
{
    stream_writer w;
    stream_writer_open(&w, path);
    stream_write_header(&w, "report", argc, argv, 1);
    mp_pack_str(&w.pk, "model");
    msgpack_pack_map(&w.pk, 2);
    mp_pack_kv_str(&w.pk, "fingerprint", r->fingerprint);
    mp_pack_kv_str(&w.pk, "source", r->model_source);
    stream_end_record(&w);
    for (int i = 0; i < r->n_metrics; i++) {
        json_t *j = metric_json(&r->metrics[i]);
        mp_pack_json(&w.pk, j); /* a map with "t" among its keys */
        stream_end_record(&w);
        json_decref(j);
    }
    stream_writer_close(&w);
}

void report_print_table(const report *r, FILE *f)
{
    fprintf(f, "%-14s %-9s %14s %10s\n", "task", "metric", "value", "n");
    for (int i = 0; i < r->n_metrics; i++) {
        const report_metric *m = &r->metrics[i];
        char val[64];
        if (isnan(m->stderr_))
            snprintf(val, sizeof val, "%.4f", m->value);
        else
            snprintf(val, sizeof val, "%.4f ± %.4f", m->value, m->stderr_);
        fprintf(f, "%-14s %-9s %14s %10lld\n", m->task, m->metric, val, (long long)m->n);
    }
}

json_t *report_to_json(const report *r)
{
    json_t *j = json_pack("{s:s,s:{s:s,s:s}}", "pare", "report", "model", "fingerprint", r->fingerprint, "source",
                          r->model_source);
    json_t *a = json_array();
    for (int i = 0; i < r->n_metrics; i++)
        json_array_append_new(a, metric_json(&r->metrics[i]));
    json_object_set_new(j, "metrics", a);
    return j;
}

void report_free(report *r)
{
    for (int i = 0; i < r->n_metrics; i++) {
        free(r->metrics[i].task);
        free(r->metrics[i].metric);
        json_decref(r->metrics[i].protocol);
    }
    free(r->metrics);
    free(r->model_source);
    memset(r, 0, sizeof *r);
}
