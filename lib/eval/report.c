/* report.c - report stream, table, JSON, reading back and merging shards. */
#include "eval/report.h"

#include <math.h>
#include <string.h>

#include "base/util.h"
#include "eval/tasks.h"
#include "format/stream.h"

void report_init(report *r, const char *fingerprint, const char *model_source)
{
    memset(r, 0, sizeof *r);
    snprintf(r->fingerprint, sizeof r->fingerprint, "%s", fingerprint);
    r->model_source = xstrdup(model_source);
    r->items = json_array();
    r->samples = json_array();
    r->other = json_array();
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
    free(r->path);
    json_decref(r->items);
    json_decref(r->samples);
    json_decref(r->stats);
    json_decref(r->other);
    memset(r, 0, sizeof *r);
}

static report_metric *add(report *r, const char *task, const char *metric)
{
    r->metrics = xrealloc(r->metrics, (size_t)(r->n_metrics + 1) * sizeof *r->metrics);
    report_metric *m = &r->metrics[r->n_metrics++];
    memset(m, 0, sizeof *m);
    m->task = xstrdup(task);
    m->metric = xstrdup(metric);
    m->correct = -1;
    m->stderr_ = NAN;
    return m;
}

void report_add_metric(report *r, const char *task, const char *metric, double value, int64_t n, double stderr_,
                       json_t *protocol)
{
    report_metric *m = add(r, task, metric);
    m->value = value;
    m->n = n;
    m->stderr_ = stderr_;
    m->protocol = protocol;
}

void report_add_accuracy(report *r, const char *task, const char *metric, int64_t correct, int64_t n, bool paper,
                         json_t *protocol)
{
    report_metric *m = add(r, task, metric);
    m->value = n > 0 ? (double)correct / (double)n : NAN;
    m->n = n;
    m->stderr_ = task_stderr(correct, n);
    m->correct = correct;
    m->paper = paper;
    m->protocol = protocol;
}

void report_add_average(report *r)
{
    double sum = 0;
    int k = 0;
    json_t *of = json_array();
    for (int i = 0; i < r->n_metrics; i++) {
        const report_metric *m = &r->metrics[i];
        if (!m->paper)
            continue;
        sum += m->value;
        k++;
        json_array_append_new(of, json_sprintf("%s/%s", m->task, m->metric));
    }
    if (k == 0) {
        json_decref(of);
        return;
    }
    json_t *p = json_pack("{s:o,s:s}", "of", of, "definition",
                          "plain mean of the metric the paper reports for each task (BoolQ, PIQA, WinoGrande, "
                          "ARC-e: acc; HellaSwag, ARC-c, OBQA: acc_norm)");
    report_add_metric(r, "average", "paper", sum / k, k, NAN, p);
}

static void add_record(json_t *array, json_t *rec, const char *type)
{
    json_object_set_new(rec, "t", json_string(type));
    json_array_append_new(array, rec);
}

void report_add_item(report *r, json_t *item) { add_record(r->items, item, "item"); }
void report_add_sample(report *r, json_t *sample) { add_record(r->samples, sample, "sample"); }

void report_set_stats(report *r, json_t *stats)
{
    json_decref(r->stats);
    json_object_set_new(stats, "t", json_string("stats"));
    r->stats = stats;
}

static json_t *real_or_null(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static json_t *metric_json(const report_metric *m)
{
    json_t *j = json_pack("{s:s,s:s,s:s,s:o,s:I}", "t", "metric", "task", m->task, "metric", m->metric, "value",
                          real_or_null(m->value), "n", (json_int_t)m->n);
    json_object_set_new(j, "stderr", real_or_null(m->stderr_));
    if (m->correct >= 0)
        json_object_set_new(j, "correct", json_integer(m->correct));
    if (m->paper)
        json_object_set_new(j, "paper", json_true());
    if (m->protocol)
        json_object_set(j, "protocol", m->protocol);
    return j;
}

/* Every record in stream order: metrics, items, samples, stats, others. */
static json_t *records(const report *r)
{
    json_t *a = json_array();
    for (int i = 0; i < r->n_metrics; i++)
        json_array_append_new(a, metric_json(&r->metrics[i]));
    json_array_extend(a, r->items);
    json_array_extend(a, r->samples);
    if (r->stats)
        json_array_append(a, r->stats);
    json_array_extend(a, r->other);
    return a;
}

void report_write(const report *r, const char *path, int argc, char **argv)
{
    stream_writer w;
    stream_writer_open(&w, path);
    stream_write_header(&w, "report", argc, argv, r->shards ? 2 : 1);
    mp_pack_str(&w.pk, "model");
    msgpack_pack_map(&w.pk, 2);
    mp_pack_kv_str(&w.pk, "fingerprint", r->fingerprint);
    mp_pack_kv_str(&w.pk, "source", r->model_source);
    if (r->shards) {
        mp_pack_str(&w.pk, "shard");
        msgpack_pack_map(&w.pk, 2);
        mp_pack_kv_int(&w.pk, "index", r->shard);
        mp_pack_kv_int(&w.pk, "count", r->shards);
    }
    stream_end_record(&w);
    json_t *recs = records(r);
    for (size_t i = 0; i < json_array_size(recs); i++) {
        mp_pack_json(&w.pk, json_array_get(recs, i)); /* a map with "t" among its keys */
        stream_end_record(&w);
    }
    json_decref(recs);
    stream_writer_close(&w);
}

json_t *report_to_json(const report *r)
{
    json_t *j = json_pack("{s:s,s:{s:s,s:s}}", "pare", "report", "model", "fingerprint", r->fingerprint, "source",
                          r->model_source);
    if (r->shards)
        json_object_set_new(j, "shard", json_pack("{s:i,s:i}", "index", r->shard, "count", r->shards));
    json_t *a = json_array();
    for (int i = 0; i < r->n_metrics; i++)
        json_array_append_new(a, metric_json(&r->metrics[i]));
    json_object_set_new(j, "metrics", a);
    if (json_array_size(r->items))
        json_object_set(j, "items", r->items);
    if (json_array_size(r->samples))
        json_object_set(j, "samples", r->samples);
    if (r->stats)
        json_object_set(j, "stats", r->stats);
    if (json_array_size(r->other))
        json_object_set(j, "other", r->other);
    return j;
}

/* ---- the table on stderr ---- */

static void print_text(FILE *f, const char *s, const char *indent)
{
    fputs(indent, f);
    for (; *s; s++) {
        fputc(*s, f);
        if (*s == '\n' && s[1])
            fputs(indent, f);
    }
    fputc('\n', f);
}

static double num(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

void report_print_table(const report *r, FILE *f)
{
    if (r->n_metrics) {
        bool any_paper = false;
        fprintf(f, "%-14s %-9s %20s %9s\n", "task", "metric", "value", "n");
        for (int i = 0; i < r->n_metrics; i++) {
            const report_metric *m = &r->metrics[i];
            char val[64];
            if (isnan(m->stderr_))
                snprintf(val, sizeof val, "%.4f", m->value);
            else
                snprintf(val, sizeof val, "%.4f ± %.4f", m->value, m->stderr_);
            /* "±" is two bytes and one column */
            int width = isnan(m->stderr_) ? 20 : 21;
            fprintf(f, "%-14s %-9s %*s %9lld%s\n", m->task, m->metric, width, val, (long long)m->n,
                    m->paper ? " *" : "");
            any_paper |= m->paper;
        }
        if (any_paper)
            fprintf(f, "* the metric the paper reports; average/paper is their plain mean\n");
    }
    for (size_t i = 0; i < json_array_size(r->samples); i++) {
        const json_t *s = json_array_get(r->samples, i);
        fprintf(f, "-- sample %zu (%lld tokens):\n", i + 1, (long long)num(s, "tokens"));
        const char *p = json_string_value(json_object_get(s, "prompt"));
        const char *t = json_string_value(json_object_get(s, "text"));
        char *both = xasprintf("%s%s", p ? p : "", t ? t : "");
        print_text(f, both, "   ");
        free(both);
    }
    if (r->stats) {
        const json_t *s = r->stats;
        fprintf(f, "-- statistics\n");
        fprintf(f, "   params %.0f (%.4g M), MACs %.4g G for %d tokens\n", num(s, "params"), num(s, "params") / 1e6,
                num(s, "macs") / 1e9, (int)num(s, "macs_tokens"));
        fprintf(f, "   weights %.1f MiB as f32 (%.1f MiB as f16), peak RSS %.1f MiB\n", num(s, "bytes") / 1048576.0,
                num(s, "bytes_f16") / 1048576.0, num(s, "peak_rss") / 1048576.0);
        fprintf(f, "   latency %.3f ms for 1 x %d tokens; %.0f tokens/s for %d x %d; decoding %.0f tokens/s\n",
                num(s, "latency_s") * 1e3, (int)num(s, "macs_tokens"), num(s, "tokens_per_s"), (int)num(s, "batch"),
                (int)num(s, "macs_tokens"), num(s, "decode_tokens_per_s"));
    }
}

/* Row (task, metric) of the comparison: its index in rows, added when new. */
static int comparison_row(const report_metric **rows, int *n, const report_metric *m)
{
    for (int i = 0; i < *n; i++)
        if (!strcmp(rows[i]->task, m->task) && !strcmp(rows[i]->metric, m->metric))
            return i;
    rows[*n] = m;
    return (*n)++;
}

static const report_metric *report_find(const report *r, const char *task, const char *metric)
{
    for (int i = 0; i < r->n_metrics; i++)
        if (!strcmp(r->metrics[i].task, task) && !strcmp(r->metrics[i].metric, metric))
            return &r->metrics[i];
    return NULL;
}

void report_print_comparison(const report *r, int n, const char *const *names, FILE *f)
{
    int total = 0, width = 12;
    for (int k = 0; k < n; k++) {
        total += r[k].n_metrics;
        if ((int)strlen(names[k]) + 2 > width)
            width = (int)strlen(names[k]) + 2;
    }
    const report_metric **rows = xcalloc((size_t)total + 1, sizeof *rows);
    int n_rows = 0, label_width = 16; /* "decode tokens/s" */
    for (int k = 0; k < n; k++)
        for (int i = 0; i < r[k].n_metrics; i++)
            comparison_row(rows, &n_rows, &r[k].metrics[i]);
    for (int i = 0; i < n_rows; i++) {
        int w = (int)(strlen(rows[i]->task) + strlen(rows[i]->metric)) + 2;
        label_width = w > label_width ? w : label_width;
    }
    fprintf(f, "%-*s", label_width, "");
    for (int k = 0; k < n; k++)
        fprintf(f, "%*s", width, names[k]);
    fputc('\n', f);
    for (int i = 0; i < n_rows; i++) {
        char *label = xasprintf("%s %s", rows[i]->task, rows[i]->metric);
        fprintf(f, "%-*s", label_width, label);
        free(label);
        for (int k = 0; k < n; k++) {
            const report_metric *m = report_find(&r[k], rows[i]->task, rows[i]->metric);
            if (!m)
                fprintf(f, "%*s", width, "-");
            else
                fprintf(f, "%*.*f", width, strcmp(m->metric, "ppl") ? 4 : 2, m->value);
        }
        fputc('\n', f);
    }
    static const struct {
        const char *key, *label;
        double scale;
        int digits;
    } stats[] = {
        {"params", "params (M)", 1e-6, 3},
        {"tokens_per_s", "tokens/s", 1, 0},
        {"decode_tokens_per_s", "decode tokens/s", 1, 0},
    };
    for (size_t s = 0; s < sizeof stats / sizeof *stats; s++) {
        bool any = false;
        for (int k = 0; k < n; k++)
            any |= r[k].stats && !isnan(num(r[k].stats, stats[s].key));
        if (!any)
            continue;
        fprintf(f, "%-*s", label_width, stats[s].label);
        for (int k = 0; k < n; k++) {
            double v = r[k].stats ? num(r[k].stats, stats[s].key) : NAN;
            if (isnan(v))
                fprintf(f, "%*s", width, "-");
            else
                fprintf(f, "%*.*f", width, stats[s].digits, v * stats[s].scale);
        }
        fputc('\n', f);
    }
    free(rows);
}

/* ---- reading ---- */

static char *obj_str(const report *r, json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_string(v))
        die("%s: a metric record without a string \"%s\"", r->path, key);
    return xstrdup(json_string_value(v));
}

void report_read(report *r, const char *path)
{
    stream_reader rd;
    stream_reader_open(&rd, path, "report");
    const msgpack_object *model = mp_get(&rd.header, "model");
    const msgpack_object *fp = model ? mp_get(model, "fingerprint") : NULL;
    char *fps = fp ? mp_strdup(fp) : NULL, *src = model ? mp_strdup(mp_get(model, "source")) : NULL;
    if (!fps)
        stream_die(&rd, "the header has no model fingerprint");
    report_init(r, fps, src ? src : "");
    free(fps);
    free(src);
    r->path = xstrdup(path);
    const msgpack_object *sh = mp_get(&rd.header, "shard");
    if (sh) {
        int64_t i, n;
        if (!mp_int(mp_get(sh, "index"), &i) || !mp_int(mp_get(sh, "count"), &n) || n < 1 || i < 0 || i >= n)
            stream_die(&rd, "a bad \"shard\" in the header");
        r->shard = (int)i;
        r->shards = (int)n;
    }
    msgpack_object rec;
    while (stream_next(&rd, &rec)) {
        json_t *j = mp_to_json(&rec);
        const char *t = json_string_value(json_object_get(j, "t"));
        if (t && !strcmp(t, "metric")) {
            report_metric *m = add(r, "", "");
            free(m->task);
            free(m->metric);
            m->task = obj_str(r, j, "task");
            m->metric = obj_str(r, j, "metric");
            json_t *v = json_object_get(j, "value");
            m->value = json_is_number(v) ? json_number_value(v) : NAN;
            json_t *n = json_object_get(j, "n"), *c = json_object_get(j, "correct");
            m->n = json_is_integer(n) ? json_integer_value(n) : 0;
            v = json_object_get(j, "stderr");
            m->stderr_ = json_is_number(v) ? json_number_value(v) : NAN;
            m->correct = json_is_integer(c) ? json_integer_value(c) : -1;
            m->paper = json_is_true(json_object_get(j, "paper"));
            m->protocol = json_incref(json_object_get(j, "protocol"));
            json_decref(j);
        } else if (t && !strcmp(t, "item"))
            json_array_append_new(r->items, j);
        else if (t && !strcmp(t, "sample"))
            json_array_append_new(r->samples, j);
        else if (t && !strcmp(t, "stats")) {
            json_decref(r->stats);
            r->stats = j;
        } else
            json_array_append_new(r->other, j);
    }
    stream_reader_close(&rd);
}

/* ---- merging ---- */

static report_metric *find_metric(report *r, const char *task, const char *metric)
{
    for (int i = 0; i < r->n_metrics; i++)
        if (!strcmp(r->metrics[i].task, task) && !strcmp(r->metrics[i].metric, metric))
            return &r->metrics[i];
    return NULL;
}

static void copy_metric(report *out, const report_metric *m)
{
    report_metric *o = add(out, m->task, m->metric);
    o->value = m->value;
    o->n = m->n;
    o->stderr_ = m->stderr_;
    o->correct = m->correct;
    o->paper = m->paper;
    o->protocol = json_incref(m->protocol);
}

static const char *item_task(const json_t *it) { return json_string_value(json_object_get(it, "task")); }

/* Items in the order of an unsharded run: by task (in the order of the metrics),
 * then by index. */
static const report *sort_ctx;
static int task_rank(const char *task)
{
    for (int i = 0; task && i < sort_ctx->n_metrics; i++)
        if (!strcmp(sort_ctx->metrics[i].task, task))
            return i;
    return sort_ctx->n_metrics;
}

static int cmp_items(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    int rx = task_rank(item_task(x)), ry = task_rank(item_task(y));
    if (rx != ry)
        return rx < ry ? -1 : 1;
    json_int_t ix = json_integer_value(json_object_get(x, "index")), iy = json_integer_value(json_object_get(y, "index"));
    return ix < iy ? -1 : ix > iy;
}

static void merge_items(report *out, report *in, int n)
{
    size_t total = 0;
    for (int k = 0; k < n; k++)
        total += json_array_size(in[k].items);
    json_t **all = xmalloc((total ? total : 1) * sizeof *all);
    size_t at = 0;
    for (int k = 0; k < n; k++)
        for (size_t i = 0; i < json_array_size(in[k].items); i++)
            all[at++] = json_array_get(in[k].items, i);
    sort_ctx = out;
    qsort(all, total, sizeof *all, cmp_items);
    for (size_t i = 0; i < total; i++)
        json_array_append(out->items, all[i]);
    free(all);
}

static bool has_average(const report *r) { return find_metric((report *)r, "average", "paper") != NULL; }

void report_merge(report *out, report *in, int n)
{
    if (n < 1)
        die("nothing to merge");
    for (int k = 1; k < n; k++) {
        if (strcmp(in[k].fingerprint, in[0].fingerprint))
            die("%s: a report of model %s, but %s is of model %s", in[k].path, in[k].fingerprint, in[0].path,
                in[0].fingerprint);
        if ((in[k].shards == 0) != (in[0].shards == 0))
            die("%s: cannot merge a %s report with the %s report %s", in[k].path,
                in[k].shards ? "partial" : "whole", in[0].shards ? "partial" : "whole", in[0].path);
    }
    report_init(out, in[0].fingerprint, in[0].model_source);
    bool average = false;
    if (in[0].shards) {
        /* the shards of one run: each index once */
        int count = in[0].shards;
        report **by = xcalloc((size_t)count, sizeof *by);
        for (int k = 0; k < n; k++) {
            if (in[k].shards != count)
                die("%s: shard %d/%d, but %s is shard %d/%d", in[k].path, in[k].shard, in[k].shards, in[0].path,
                    in[0].shard, count);
            if (by[in[k].shard])
                die("%s: shard %d/%d is given twice (also %s)", in[k].path, in[k].shard, count, by[in[k].shard]->path);
            by[in[k].shard] = &in[k];
        }
        for (int s = 0; s < count; s++)
            if (!by[s])
                die("shard %d/%d is missing", s, count);
        report *t = by[0]; /* the template: shard 0 also holds perplexities, samples, stats */
        for (int i = 0; i < t->n_metrics; i++) {
            const report_metric *m = &t->metrics[i];
            if (!strcmp(m->task, "average") && !strcmp(m->metric, "paper")) {
                average = true;
                continue;
            }
            if (m->correct < 0) {
                copy_metric(out, m);
                continue;
            }
            int64_t correct = 0, items = 0;
            for (int s = 0; s < count; s++) {
                report_metric *o = find_metric(by[s], m->task, m->metric);
                if (!o || o->correct < 0)
                    die("%s: shard %d/%d has no %s/%s", by[s]->path, s, count, m->task, m->metric);
                if (!json_equal(o->protocol, m->protocol))
                    die("%s: the protocol of %s/%s differs from that of %s", by[s]->path, m->task, m->metric,
                        t->path);
                correct += o->correct;
                items += o->n;
            }
            report_add_accuracy(out, m->task, m->metric, correct, items, m->paper, json_incref(m->protocol));
        }
        for (int s = 1; s < count; s++)
            for (int i = 0; i < by[s]->n_metrics; i++) {
                const report_metric *o = &by[s]->metrics[i];
                if (o->correct >= 0 && !find_metric(t, o->task, o->metric))
                    die("%s: %s/%s is not in shard 0 (%s)", by[s]->path, o->task, o->metric, t->path);
            }
        json_array_extend(out->samples, t->samples);
        if (t->stats)
            out->stats = json_incref(t->stats);
        json_array_extend(out->other, t->other);
        free(by);
    } else {
        /* whole reports: their records joined */
        for (int k = 0; k < n; k++) {
            average |= has_average(&in[k]);
            for (int i = 0; i < in[k].n_metrics; i++) {
                const report_metric *m = &in[k].metrics[i];
                if (!strcmp(m->task, "average") && !strcmp(m->metric, "paper"))
                    continue;
                if (find_metric(out, m->task, m->metric))
                    die("%s: %s/%s is in two of the reports", in[k].path, m->task, m->metric);
                copy_metric(out, m);
            }
            json_array_extend(out->samples, in[k].samples);
            if (in[k].stats && !out->stats)
                out->stats = json_incref(in[k].stats);
            json_array_extend(out->other, in[k].other);
        }
    }
    merge_items(out, in, n);
    if (average)
        report_add_average(out);
}
