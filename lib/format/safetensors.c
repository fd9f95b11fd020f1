/* safetensors.c - read and write .safetensors files.
 *
 * Reading keeps every tensor in its file's dtype: the file is mapped privately
 * (tensor_map_file) and every tensor points into the mapping, wherever its payload
 * lies: the reference implementation pads the header to 8 bytes, so that each is
 * aligned to its values, but a file whose header has another length is read in
 * place too (tensor_aligned: the products widen such a tensor a panel at a time).
 * Only a file that cannot be mapped is read into buffers, as stored. */
#include "format/safetensors.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/atomic_file.h"
#include "base/util.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "pare reads little-endian payloads straight into memory: little-endian hosts only"
#endif

#define MAX_HEADER (100u << 20) /* the reference implementation's limit */

typedef struct {
    const char *name;       /* points into the header JSON */
    enum dtype dtype;
    int ndim;
    int64_t shape[2];
    int64_t numel;
    uint64_t begin, end;    /* byte offsets from the start of the data */
} st_entry;

static int cmp_offset(const void *a, const void *b)
{
    const st_entry *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

static bool st_dtype(const char *s, enum dtype *t)
{
    if (!strcmp(s, "F32"))
        *t = DTYPE_F32;
    else if (!strcmp(s, "F16"))
        *t = DTYPE_F16;
    else if (!strcmp(s, "BF16"))
        *t = DTYPE_BF16;
    else
        return false;
    return true;
}

static const char *st_dtype_name(enum dtype t)
{
    return t == DTYPE_F32 ? "F32" : t == DTYPE_F16 ? "F16" : "BF16";
}

/* Parse one header entry; dies naming path and tensor on anything malformed. */
static void parse_entry(const char *path, const char *name, json_t *v, uint64_t data_size,
                        st_entry *e)
{
    e->name = name;
    json_t *dt = json_object_get(v, "dtype");
    json_t *shape = json_object_get(v, "shape");
    json_t *off = json_object_get(v, "data_offsets");
    if (!json_is_object(v) || !json_is_string(dt) || !json_is_array(shape) || !json_is_array(off) ||
        json_array_size(off) != 2)
        die("%s: bad safetensors header entry for tensor %s", path, name);
    if (!st_dtype(json_string_value(dt), &e->dtype))
        die("%s: tensor %s has dtype %s; pare reads F32, F16 and BF16", path, name,
            json_string_value(dt));
    size_t nd = json_array_size(shape);
    if (nd < 1 || nd > 2)
        die("%s: tensor %s has %zu dimensions; pare reads 1- and 2-dimensional tensors", path,
            name, nd);
    e->ndim = (int)nd;
    e->shape[1] = 0;
    for (size_t i = 0; i < nd; i++) {
        json_t *d = json_array_get(shape, i);
        if (!json_is_integer(d) || json_integer_value(d) < 0)
            die("%s: tensor %s has a bad shape", path, name);
        e->shape[i] = json_integer_value(d);
    }
    e->numel = tensor_shape_numel(e->ndim, e->shape);
    if (e->numel < 0)
        die("%s: tensor %s is too large (more than 2^40 elements)", path, name);
    json_t *b = json_array_get(off, 0), *en = json_array_get(off, 1);
    if (!json_is_integer(b) || !json_is_integer(en) || json_integer_value(b) < 0 ||
        json_integer_value(en) < json_integer_value(b))
        die("%s: tensor %s has bad data_offsets", path, name);
    e->begin = (uint64_t)json_integer_value(b);
    e->end = (uint64_t)json_integer_value(en);
    if (e->end - e->begin != (uint64_t)e->numel * dtype_size(e->dtype))
        die("%s: tensor %s: data_offsets span %llu bytes, but its shape and dtype need %llu", path,
            name, (unsigned long long)(e->end - e->begin),
            (unsigned long long)((uint64_t)e->numel * dtype_size(e->dtype)));
    if (e->end > data_size)
        die("%s: truncated: tensor %s ends at data byte %llu, but the file holds only %llu", path,
            name, (unsigned long long)e->end, (unsigned long long)data_size);
}

void safetensors_read(const char *path, tensor **ts, int *n, int *cap)
{
    uint64_t size;
    FILE *f = open_read(path, &size);
    uint8_t lb[8];
    if (size < 8 || fread(lb, 1, 8, f) != 8)
        die("%s: not a safetensors file (too short)", path);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | lb[i];
    if (hlen < 2 || hlen > MAX_HEADER || hlen > size - 8)
        die("%s: not a safetensors file (header length %llu, file size %llu)", path,
            (unsigned long long)hlen, (unsigned long long)size);
    char *hdr = xmalloc(hlen);
    if (fread(hdr, 1, hlen, f) != hlen)
        die("%s: cannot read the safetensors header", path);
    json_error_t err;
    json_t *j = json_loadb(hdr, hlen, JSON_REJECT_DUPLICATES, &err);
    free(hdr);
    if (!j || !json_is_object(j))
        die("%s: bad safetensors header: %s", path, j ? "not a JSON object" : err.text);
    uint64_t data_start = 8 + hlen, data_size = size - data_start;

    size_t count = json_object_size(j), ne = 0;
    st_entry *es = xcalloc(count ? count : 1, sizeof *es);
    const char *key;
    json_t *v;
    json_object_foreach(j, key, v) {
        if (!strcmp(key, "__metadata__"))
            continue;
        parse_entry(path, key, v, data_size, &es[ne++]);
    }
    qsort(es, ne, sizeof *es, cmp_offset); /* read the file front to back */

    if (*n + (int64_t)ne > *cap) {
        *cap = (int)((*n + (int64_t)ne) * 2);
        *ts = xrealloc(*ts, (size_t)*cap * sizeof **ts);
    }
    tensor_map *map = tensor_map_file(fileno(f), (size_t)size);
    for (size_t i = 0; i < ne; i++) {
        st_entry *e = &es[i];
        tensor *t = &(*ts)[(*n)++];
        memset(t, 0, sizeof *t);
        t->name = xstrdup(e->name);
        t->ndim = e->ndim;
        t->shape[0] = e->shape[0];
        t->shape[1] = e->shape[1];
        t->numel = e->numel;
        size_t bytes = (size_t)(e->end - e->begin);
        uint64_t at = data_start + e->begin;
        if (map) {
            tensor_use_map(t, map, tensor_map_base(map) + at, e->dtype);
            continue;
        }
        /* Not mappable: read it as stored. */
        t->stored = t->dtype = e->dtype;
        t->data = xmalloc_aligned(bytes ? bytes : 1);
        if (fseeko(f, (off_t)at, SEEK_SET) != 0 || fread(t->data, 1, bytes, f) != bytes)
            die("%s: cannot read tensor %s: %s", path, e->name,
                ferror(f) ? strerror(errno) : "unexpected end of file");
    }
    tensor_map_release(map);
    free(es);
    json_decref(j);
    fclose(f);
}

/* ---- writing ---- */

static void af_out(void *ctx, const void *p, size_t n) { af_write(ctx, p, n); }

void safetensors_write(const char *path, const tensor *ts, int n, enum dtype dtype, const tensor_source *src)
{
    size_t es = dtype_size(dtype);
    json_t *h = json_object();
    json_t *meta = json_object();
    json_object_set_new(meta, "format", json_string("pt"));
    json_object_set_new(h, "__metadata__", meta);
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        const tensor *t = &ts[i];
        json_t *e = json_object();
        json_t *shape = json_array();
        for (int d = 0; d < t->ndim; d++)
            json_array_append_new(shape, json_integer(t->shape[d]));
        json_t *offs = json_array();
        json_array_append_new(offs, json_integer((json_int_t)off));
        off += (uint64_t)t->numel * es;
        json_array_append_new(offs, json_integer((json_int_t)off));
        json_object_set_new(e, "dtype", json_string(st_dtype_name(dtype)));
        json_object_set_new(e, "shape", shape);
        json_object_set_new(e, "data_offsets", offs);
        if (json_object_set_new(h, t->name, e) != 0)
            die("%s: cannot write tensor %s", path, t->name);
    }
    char *hs = json_dumps(h, JSON_COMPACT);
    json_decref(h);
    if (!hs)
        die("out of memory");
    size_t hlen = strlen(hs), padded = (hlen + 7) / 8 * 8; /* pad with spaces, as HF does */
    uint8_t lb[8];
    for (int i = 0; i < 8; i++)
        lb[i] = (uint8_t)((uint64_t)padded >> (8 * i));

    atomic_file a;
    af_open(&a, path);
    af_write(&a, lb, 8);
    af_write(&a, hs, hlen);
    af_write(&a, "        ", padded - hlen);
    free(hs);
    for (int i = 0; i < n; i++) {
        tensor tmp;
        const tensor *t = tensor_values(&ts[i], src, &tmp);
        tensor_write_as(t, 0, t->numel, dtype, af_out, &a);
        tensor_values_done(t, &tmp);
    }
    af_close(&a);
}
