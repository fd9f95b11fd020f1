/* logits.c - the logits stream (pare-stream(5) "logits"): a teacher's top-k
 * next-token distributions written per sample, and read back for the data set
 * they were made for, every row checked once when read.
 *
 * Letters: S samples, k kept tokens of a position, V vocabulary. */
#include "format/logits.h"

#include <math.h>
#include <string.h>

#include "base/util.h"

void logits_write_open(stream_writer *w, const char *path, int argc, char **argv, const model *m, const char *fp,
                       const instruct_data *d, int k, double tau)
{
    stream_writer_open(w, path);
    stream_write_header(w, "logits", argc, argv, 5);
    json_t *mj = json_pack("{s:s,s:o}", "fingerprint", fp, "config", model_config_json(m));
    mp_pack_str(&w->pk, "model");
    mp_pack_json(&w->pk, mj);
    json_decref(mj);
    json_t *dj = instruct_to_json(d);
    mp_pack_str(&w->pk, "data");
    mp_pack_json(&w->pk, dj);
    json_decref(dj);
    mp_pack_kv_int(&w->pk, "top_k", k);
    mp_pack_kv_double(&w->pk, "temperature", tau);
    mp_pack_kv_int(&w->pk, "positions", d->scored);
    stream_end_record(w);
}

void logits_write_sample(stream_writer *w, int sample, int positions, const void *rows, int k)
{
    stream_begin_record(w, "logits", 4);
    mp_pack_kv_int(&w->pk, "sample", sample);
    mp_pack_kv_int(&w->pk, "positions", positions);
    stream_write_payload(w, "data", rows, (size_t)positions * logits_row_bytes(k));
}

/* Row p of the rows at base into ids, logp, rest (they may be unaligned). */
static void unpack_row(const uint8_t *base, int k, int64_t p, int32_t *ids, float *logp, float *rest)
{
    const uint8_t *row = base + (size_t)p * logits_row_bytes(k);
    memcpy(ids, row, (size_t)k * 4);
    memcpy(logp, row + (size_t)k * 4, (size_t)k * 4);
    memcpy(rest, row + (size_t)k * 8, 4);
}

void logits_row(const logits_file *f, int sample, int64_t p, int32_t *ids, float *logp, float *rest)
{
    unpack_row(f->rows[sample], f->k, p, ids, logp, rest);
}

/* Scored positions of sample i. */
static int64_t scored_of(const instruct_data *d, int i)
{
    int64_t n = 0;
    for (int64_t j = d->off[i]; j < d->off[i + 1]; j++)
        n += d->targets[j] >= 0;
    return n;
}

/* Every row of a sample's payload (n rows) is a distribution over V tokens. */
static void check_rows(stream_reader *r, const uint8_t *base, int64_t n, int k, int V, int sample, uint8_t *mark)
{
    int32_t *ids = xmalloc((size_t)k * sizeof *ids);
    float *logp = xmalloc((size_t)k * sizeof *logp), rest;
    for (int64_t p = 0; p < n; p++) {
        unpack_row(base, k, p, ids, logp, &rest);
        double mass = 0;
        const char *bad = NULL;
        for (int i = 0; i < k && !bad; i++) {
            if (ids[i] < 0 || ids[i] >= V)
                bad = "a token id outside the vocabulary";
            else if (mark[ids[i]])
                bad = "a token id twice";
            else if (!isfinite(logp[i]) || logp[i] > 1e-6f)
                bad = "a log-probability that is not finite or above 0";
            else
                mark[ids[i]] = 1, mass += exp((double)logp[i]);
        }
        for (int i = 0; i < k; i++)
            if (ids[i] >= 0 && ids[i] < V)
                mark[ids[i]] = 0;
        if (!bad && (isnan(rest) || rest > 1e-6f || rest == INFINITY))
            bad = "a rest that is not the log of a mass";
        if (!bad && fabs(mass + exp((double)rest) - 1) > 1e-3)
            bad = "probabilities that do not add up to 1";
        if (bad)
            stream_die(r, "sample %d, position %lld: %s", sample, (long long)p, bad);
    }
    free(ids);
    free(logp);
}

/* The header's int and double values, or a death naming the key. */
static int64_t need_int(stream_reader *r, const msgpack_object *map, const char *key)
{
    int64_t v;
    if (!mp_int(mp_get(map, key), &v))
        stream_die(r, "logits header lacks '%s'", key);
    return v;
}

void logits_read(logits_file *f, const char *path, const instruct_data *d, int V)
{
    memset(f, 0, sizeof *f);
    stream_reader r;
    stream_reader_open(&r, path, "logits");
    const msgpack_object *mo = mp_get(&r.header, "model"), *dj = mp_get(&r.header, "data");
    char *fp = mo ? mp_strdup(mp_get(mo, "fingerprint")) : NULL;
    const msgpack_object *cfg = mo ? mp_get(mo, "config") : NULL;
    char *digest = dj ? mp_strdup(mp_get(dj, "xxh64")) : NULL;
    if (!fp || strlen(fp) != 16 || !cfg || !digest)
        stream_die(&r, "logits header lacks the teacher's fingerprint and config or the data's digest");
    memcpy(f->fingerprint, fp, 17);
    free(fp);
    int64_t vocab = need_int(&r, cfg, "vocab_size"), k = need_int(&r, &r.header, "top_k"),
            positions = need_int(&r, &r.header, "positions"), samples = need_int(&r, dj, "samples");
    if (!mp_double(mp_get(&r.header, "temperature"), &f->temperature) || !(f->temperature > 0) ||
        !isfinite(f->temperature))
        stream_die(&r, "logits header lacks a positive temperature");
    if (vocab != V)
        stream_die(&r, "the teacher's vocabulary has %lld tokens, the model's %d: the teacher must share the "
                   "model's vocabulary", (long long)vocab, V);
    if (k < 1 || k >= V)
        stream_die(&r, "top_k %lld is outside 1..%d", (long long)k, V - 1);
    if (strcmp(digest, d->xxh64) || samples != d->n || positions != d->scored)
        stream_die(&r, "made for other data: %lld samples with %lld scored positions, digest %s; this run's data "
                   "(%s) has %d samples with %lld, digest %s (the same --data, --text, --cutoff, --train-on-inputs "
                   "and vocabulary make the same samples)",
                   (long long)samples, (long long)positions, digest, d->source, d->n, (long long)d->scored, d->xxh64);
    free(digest);
    f->k = (int)k;
    f->n = d->n;
    f->rows = xcalloc((size_t)d->n, sizeof *f->rows);
    if (r.file_start != UINT64_MAX)
        f->map = tensor_map_file(fileno(r.f), (size_t)(r.file_start + r.size));
    if (!f->map)
        f->owned = xcalloc((size_t)d->n, sizeof *f->owned);
    uint8_t *mark = xcalloc((size_t)V, 1);
    int last = -1;
    msgpack_object rec;
    while (stream_next(&r, &rec)) {
        if (!mp_is_str(mp_get(&rec, "t"), "logits"))
            continue;
        int64_t i, n;
        if (!mp_int(mp_get(&rec, "sample"), &i) || !mp_int(mp_get(&rec, "positions"), &n) || !r.payload_key)
            stream_die(&r, "logits record %llu lacks its sample, positions or data", (unsigned long long)r.records);
        if (i <= last || i >= d->n)
            stream_die(&r, "sample %lld out of order or outside the data's %d", (long long)i, d->n);
        int64_t want = scored_of(d, (int)i);
        if (n != want || n < 1 || r.payload_len != (uint64_t)n * logits_row_bytes(f->k))
            stream_die(&r, "sample %lld: %lld positions in %llu bytes; the data scores %lld of its tokens",
                       (long long)i, (long long)n, (unsigned long long)r.payload_len, (long long)want);
        uint64_t at = stream_payload_file_offset(&r);
        if (f->map && at != UINT64_MAX) {
            const uint8_t *p = (const uint8_t *)tensor_map_base(f->map) + at;
            check_rows(&r, p, n, f->k, V, (int)i, mark);
            stream_pass_payload(&r, p, r.payload_len);
            f->rows[i] = p;
        } else {
            if (!f->owned)
                f->owned = xcalloc((size_t)d->n, sizeof *f->owned);
            f->owned[i] = xmalloc((size_t)r.payload_len);
            stream_read_payload(&r, f->owned[i], r.payload_len);
            check_rows(&r, f->owned[i], n, f->k, V, (int)i, mark);
            f->rows[i] = f->owned[i];
        }
        last = (int)i;
    }
    for (int i = 0; i < d->n; i++)
        if (!f->rows[i] && scored_of(d, i) > 0)
            stream_die(&r, "no logits for sample %d, which has scored positions", i);
    free(mark);
    stream_reader_close(&r);
}

void logits_free(logits_file *f)
{
    if (f->owned)
        for (int i = 0; i < f->n; i++)
            free(f->owned[i]);
    free(f->owned);
    free(f->rows);
    tensor_map_release(f->map);
    memset(f, 0, sizeof *f);
}
