/* show.c - print any pare stream as JSON lines: the header, then each record.
 * Bulk payloads are summarised as their size and XXH64 unless the caller asks for
 * the data, which is then decoded (tensors by dtype, score arrays as float32). */
#include "format/show.h"

#include <string.h>

#include <jansson.h>
#include <xxhash.h>

#include "base/utf8.h"
#include "base/util.h"
#include "format/stream.h"
#include "model/tensor.h"

static json_t *decode_floats(const void *p, size_t n, enum dtype t)
{
    json_t *a = json_array();
    size_t es = dtype_size(t), count = n / es;
    const uint8_t *b = p;
    for (size_t i = 0; i < count; i++) {
        float f;
        if (t == DTYPE_F32) {
            memcpy(&f, b + 4 * i, 4);
        } else {
            uint16_t h;
            memcpy(&h, b + 2 * i, 2);
            f = t == DTYPE_BF16 ? bf16_to_f32(h) : f16_to_f32(h);
        }
        json_array_append_new(a, json_real(f));
    }
    return a;
}

static json_t *bin_summary(const void *p, size_t n)
{
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)XXH64(p, n, 0));
    return json_pack("{s:I,s:s}", "bytes", (json_int_t)n, "xxh64", hex);
}

static json_t *bin_hex(const uint8_t *p, size_t n)
{
    char *s = xmalloc(2 * n + 1);
    s[0] = 0; /* an empty payload gives "" */
    for (size_t i = 0; i < n; i++)
        snprintf(s + 2 * i, 3, "%02x", p[i]);
    json_t *j = json_string(s);
    free(s);
    return j;
}

/* Like mp_to_json, but bins become summaries or decoded float32 arrays. */
static json_t *to_json(const msgpack_object *o, bool data)
{
    if (o->type == MSGPACK_OBJECT_BIN) {
        if (!data)
            return bin_summary(o->via.bin.ptr, o->via.bin.size);
        return decode_floats(o->via.bin.ptr, o->via.bin.size, DTYPE_F32);
    }
    if (o->type == MSGPACK_OBJECT_MAP) {
        json_t *m = json_object();
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object *k = &o->via.map.ptr[i].key;
            char *key = k->type == MSGPACK_OBJECT_STR ? utf8_replace_invalid(k->via.str.ptr, k->via.str.size) : NULL;
            json_object_set_new(m, key ? key : "?", to_json(&o->via.map.ptr[i].val, data));
            free(key);
        }
        return m;
    }
    if (o->type == MSGPACK_OBJECT_ARRAY) {
        json_t *a = json_array();
        for (uint32_t i = 0; i < o->via.array.size; i++)
            json_array_append_new(a, to_json(&o->via.array.ptr[i], data));
        return a;
    }
    return mp_to_json(o);
}

static void print_line(FILE *out, json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
    if (!s)
        die("cannot print a record as JSON");
    fputs(s, out);
    fputc('\n', out);
    free(s);
}

void show_stream(const char *path, bool data, FILE *out)
{
    stream_reader r;
    stream_reader_open(&r, path, NULL);
    json_t *h = to_json(&r.header, data);
    print_line(out, h);
    json_decref(h);

    msgpack_object rec;
    while (stream_next(&r, &rec)) {
        json_t *j = to_json(&rec, data);
        if (r.payload_key) {
            const char *key = r.payload_key;
            size_t n = (size_t)r.payload_len;
            uint8_t *buf = xmalloc(n);
            stream_read_payload(&r, buf, n);
            json_t *v;
            const msgpack_object *dt = mp_get(&rec, "dtype");
            int dtype = DTYPE_F32;
            if (dt) {
                char *s = mp_strdup(dt);
                dtype = s ? dtype_from_name(s) : -1;
                free(s);
            }
            if (!data)
                v = bin_summary(buf, n);
            else if (mp_is_str(mp_get(&rec, "t"), "tensor") && dtype >= 0)
                v = decode_floats(buf, n, (enum dtype)dtype);
            else
                v = bin_hex(buf, n);
            json_object_set_new(j, key, v);
            free(buf);
        }
        print_line(out, j);
        json_decref(j);
    }
    json_t *end = json_pack("{s:s,s:I}", "t", "end", "records", (json_int_t)r.records);
    print_line(out, end);
    json_decref(end);
    stream_reader_close(&r);
}
