/* checkpoint.c - the checkpoint stream: header with config and provenance, one
 * "tensor" record per tensor (or per 1 GiB chunk of one), one "tokenizer" record. */
#include "format/checkpoint.h"

#include <stdlib.h>
#include <string.h>

#include "base/util.h"

#define CHUNK_BYTES ((size_t)1 << 30) /* tensors above this are split into records */

static void write_bytes(void *w, const void *p, size_t n) { stream_write_bytes(w, p, n); }

/* Values [off, off + n) of t as one payload in its stored dtype, converted a block
 * at a time when memory holds them in another (a vector widened by model_bind). */
static void write_values(stream_writer *w, const tensor *t, int64_t off, int64_t n)
{
    stream_begin_payload(w, "data", (size_t)n * dtype_size(t->stored));
    tensor_write_as(t, off, n, t->stored, write_bytes, w);
}

static void write_tensor(stream_writer *w, const tensor *held, const tensor_source *values)
{
    tensor tmp;
    const tensor *t = tensor_values(held, values, &tmp);
    size_t per_chunk = CHUNK_BYTES / dtype_size(t->stored);
    for (int64_t off = 0; off < t->numel || (off == 0 && t->numel == 0); off += (int64_t)per_chunk) {
        int64_t n = t->numel - off < (int64_t)per_chunk ? t->numel - off : (int64_t)per_chunk;
        bool split = t->numel > (int64_t)per_chunk;
        stream_begin_record(w, "tensor", 5 + split);
        mp_pack_kv_str(&w->pk, "name", t->name);
        mp_pack_kv_str(&w->pk, "dtype", dtype_name(t->stored));
        mp_pack_str(&w->pk, "shape");
        msgpack_pack_array(&w->pk, (size_t)t->ndim);
        for (int d = 0; d < t->ndim; d++)
            msgpack_pack_int64(&w->pk, t->shape[d]);
        if (split)
            mp_pack_kv_int(&w->pk, "offset", off);
        write_values(w, t, off, n);
        if (t->numel == 0)
            break;
    }
    tensor_values_done(t, &tmp);
}

void checkpoint_write(const model *m, const char *path, int argc, char **argv, json_t *provenance)
{
    if (!m->has_weights)
        die("%s: a bare config has no weights to write", m->source);
    stream_writer w;
    stream_writer_open(&w, path);

    char fp[17];
    model_bound_fingerprint(m, fp); /* taken while binding or pruning, else computed now */
    json_t *config = model_config_json(m);
    stream_write_header(&w, "checkpoint", argc, argv, provenance ? 3 : 2);
    mp_pack_str(&w.pk, "config");
    mp_pack_json(&w.pk, config);
    mp_pack_kv_str(&w.pk, "fingerprint", fp);
    if (provenance) {
        mp_pack_str(&w.pk, "provenance");
        mp_pack_json(&w.pk, provenance);
    }
    stream_end_record(&w);
    json_decref(config);

    for (int i = 0; i < m->n_tensors; i++)
        write_tensor(&w, &m->tensors[i], m->values);
    if (m->tok.size) {
        stream_begin_record(&w, "tokenizer", 3);
        mp_pack_kv_str(&w.pk, "format", m->tok.format);
        stream_write_payload(&w, "data", m->tok.data, m->tok.size);
    }
    stream_writer_close(&w);
}

/* ------------------------------------------------------------------ reading */

typedef struct {
    tensor *t;
    int n, cap;
    int64_t *filled; /* elements read so far, per tensor */
    tensor_map *map; /* the file mapped, when the stream is a regular file */
} tensor_list;

static tensor *find_or_add(stream_reader *r, tensor_list *tl, const char *name, int ndim, const int64_t *shape,
                           enum dtype dtype)
{
    for (int i = tl->n - 1; i >= 0; i--) {
        tensor *t = &tl->t[i];
        if (strcmp(t->name, name) != 0)
            continue;
        if (t->ndim != ndim || t->shape[0] != shape[0] || (ndim == 2 && t->shape[1] != shape[1]))
            stream_die(r, "tensor '%s' appears twice with different shapes", name);
        if (t->dtype != dtype)
            stream_die(r, "tensor '%s' appears twice with different dtypes", name);
        return t;
    }
    /* A new tensor's values must fit in the rest of the stream before its buffer is
     * allocated (read_tensor_record checked that the shape has at most 2^40 elements). */
    uint64_t bytes = (uint64_t)tensor_shape_numel(ndim, shape) * dtype_size(dtype);
    if (bytes > stream_bytes_left(r))
        stream_die(r, "tensor '%s' of %llu bytes does not fit in the rest of the stream", name,
                   (unsigned long long)bytes);
    if (tl->n == tl->cap) {
        tl->cap = tl->cap ? 2 * tl->cap : 64;
        tl->t = xrealloc(tl->t, (size_t)tl->cap * sizeof *tl->t);
        tl->filled = xrealloc(tl->filled, (size_t)tl->cap * sizeof *tl->filled);
    }
    tensor *t = &tl->t[tl->n];
    memset(t, 0, sizeof *t);
    t->name = xstrdup(name);
    t->ndim = ndim;
    t->shape[0] = shape[0];
    t->shape[1] = ndim == 2 ? shape[1] : 0;
    t->numel = tensor_shape_numel(ndim, shape);
    t->stored = t->dtype = dtype; /* storage comes with its first record */
    tl->filled[tl->n] = 0;
    tl->n++;
    return t;
}

/* A tensor record: its values kept (in place in the mapped file when they can be),
 * and scanned (checked and fingerprinted, model_bind_scanned) while they are fresh
 * from the stream's own pass over them. */
static void read_tensor_record(stream_reader *r, const msgpack_object *rec, tensor_list *tl, model_scan *scan)
{
    char *name = mp_strdup(mp_get(rec, "name"));
    char *dt = mp_strdup(mp_get(rec, "dtype"));
    const msgpack_object *shape = mp_get(rec, "shape");
    if (!name || !dt || !shape || shape->type != MSGPACK_OBJECT_ARRAY || !r->payload_key)
        stream_die(r, "tensor record %llu lacks a name, dtype, shape or data", (unsigned long long)r->records);
    int dtype = dtype_from_name(dt);
    if (dtype < 0)
        stream_die(r, "tensor '%s' has unknown dtype '%s'", name, dt);
    int ndim = (int)shape->via.array.size;
    int64_t dims[2] = {0, 0};
    if (ndim < 1 || ndim > 2)
        stream_die(r, "tensor '%s' has %d dimensions (1 or 2 expected)", name, ndim);
    for (int d = 0; d < ndim; d++)
        if (!mp_int(&shape->via.array.ptr[d], &dims[d]) || dims[d] <= 0)
            stream_die(r, "tensor '%s' has an invalid shape", name);
    if (tensor_shape_numel(ndim, dims) < 0)
        stream_die(r, "tensor '%s' has more than 2^40 elements", name);
    size_t esize = dtype_size((enum dtype)dtype);
    tensor *t = find_or_add(r, tl, name, ndim, dims, (enum dtype)dtype);
    int64_t *filled = &tl->filled[t - tl->t];
    int64_t offset = 0;
    const msgpack_object *off = mp_get(rec, "offset");
    if (off && !mp_int(off, &offset))
        stream_die(r, "tensor '%s' has an invalid offset", name);
    if (r->payload_len % esize)
        stream_die(r, "tensor '%s': %llu payload bytes is not a whole number of %s values", name,
                   (unsigned long long)r->payload_len, dt);
    int64_t n = (int64_t)(r->payload_len / esize);
    if (offset < 0 || offset != *filled || n > t->numel - offset)
        stream_die(r, "tensor '%s': chunk at offset %lld of %lld values does not continue the tensor (%lld of %lld read)",
                   name, (long long)offset, (long long)n, (long long)*filled, (long long)t->numel);
    /* Values are kept as stored: a tensor whose payload is whole is used in place
     * in the mapped file, wherever it lies (tensor_aligned); one in chunks is read. */
    uint64_t at = stream_payload_file_offset(r);
    if (!t->data && n == t->numel && tl->map && at != UINT64_MAX) {
        const char *p = tensor_map_base(tl->map) + at;
        tensor_use_map(t, tl->map, p, (enum dtype)dtype);
        stream_pass_payload(r, p, (uint64_t)n * esize);
    } else {
        if (!t->data)
            tensor_alloc(t);
        stream_read_payload(r, (char *)t->data + (size_t)offset * esize, (uint64_t)n * esize);
    }
    model_scan_values(scan, t, offset, n);
    *filled += n;
    free(name);
    free(dt);
}

static int cmp_tensor(const void *a, const void *b)
{
    return strcmp(((const tensor *)a)->name, ((const tensor *)b)->name);
}

void checkpoint_read(model *m, FILE *f, const char *name, const uint8_t *prefix, size_t prefix_len)
{
    stream_reader r;
    stream_reader_open_file(&r, f, name, prefix, prefix_len, "checkpoint");
    const msgpack_object *cfg = mp_get(&r.header, "config");
    if (!cfg || cfg->type != MSGPACK_OBJECT_MAP)
        stream_die(&r, "checkpoint header has no config");

    memset(m, 0, sizeof *m);
    m->source = xstrdup(name);
    json_t *cj = mp_to_json(cfg);
    model_set_config(m, cj, name);
    json_decref(cj);
    const msgpack_object *prov = mp_get(&r.header, "provenance");
    if (prov)
        m->provenance = mp_to_json(prov);

    tensor_list tl = {0};
    model_scan *scan = model_scan_begin(&m->cfg);
    if (r.file_start != UINT64_MAX)
        tl.map = tensor_map_file(fileno(f), (size_t)(r.file_start + r.size));
    msgpack_object rec;
    while (stream_next(&r, &rec)) {
        const msgpack_object *t = mp_get(&rec, "t");
        if (mp_is_str(t, "tensor")) {
            read_tensor_record(&r, &rec, &tl, scan);
        } else if (mp_is_str(t, "tokenizer")) {
            char *format = mp_strdup(mp_get(&rec, "format"));
            if (!format || !r.payload_key)
                stream_die(&r, "tokenizer record lacks a format or data");
            free(m->tok.format);
            free(m->tok.data);
            m->tok.format = format;
            m->tok.size = (size_t)r.payload_len;
            m->tok.data = xmalloc(m->tok.size);
            stream_read_payload(&r, m->tok.data, m->tok.size);
        }
        /* other record types: ignored (forward compatibility) */
    }
    for (int i = 0; i < tl.n; i++)
        if (tl.filled[i] != tl.t[i].numel)
            stream_die(&r, "tensor '%s' is incomplete (%lld of %lld values)", tl.t[i].name, (long long)tl.filled[i],
                       (long long)tl.t[i].numel);
    stream_reader_close(&r);
    tensor_map_release(tl.map);

    if (tl.n) /* a stream without tensors has none to sort (tl.t is NULL) */
        qsort(tl.t, (size_t)tl.n, sizeof *tl.t, cmp_tensor);
    m->tensors = tl.t;
    m->n_tensors = tl.n;
    m->has_weights = true;
    free(tl.filled);
    model_bind_scanned(m, scan); /* one pass: the stream's checksum, the values' check, the fingerprint */
}
