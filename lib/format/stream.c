/* stream.c - writing and reading pare's MessagePack streams.
 *
 * Writing: every record is packed into a memory buffer and then written with the
 * running XXH64 and byte offset updated, so the writer always knows where the next
 * bulk payload will land and can put a "pad" record before it. Bulk payloads go
 * from the caller's array to the file directly.
 *
 * Reading: a pull parser over a FILE that hashes every byte it consumes. Small
 * values become msgpack_object trees in a zone; a record's final bin value is left
 * in the file for the caller to read into its own buffer. */
#include "format/stream.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "base/utf8.h"
#include "base/util.h"

/* ------------------------------------------------------------------ writing */

static int sbuffer_write(void *data, const char *buf, size_t len)
{
    return msgpack_sbuffer_write((msgpack_sbuffer *)data, buf, len);
}

static void writer_emit(stream_writer *w, const void *p, size_t n)
{
    if (n == 0)
        return;
    if (fwrite(p, 1, n, w->f) != n)
        die("cannot write '%s': %s", w->name, strerror(errno));
    XXH64_update(w->hash, p, n);
    w->offset += n;
}

static void writer_flush_record(stream_writer *w)
{
    writer_emit(w, w->buf.data, w->buf.size);
    msgpack_sbuffer_clear(&w->buf);
}

void stream_writer_open(stream_writer *w, const char *path)
{
    memset(w, 0, sizeof *w);
    if (!path || strcmp(path, "-") == 0) {
        if (isatty(STDOUT_FILENO))
            usage_die("refusing to write a binary stream to a terminal (redirect stdout, or write to a file)");
        w->f = stdout;
        w->name = xstrdup("stdout");
    } else {
        w->final_path = xstrdup(path);
        const char *slash = strrchr(path, '/');
        w->tmp_path = slash ? xasprintf("%.*s/.%s.tmp.%d", (int)(slash - path), path, slash + 1, (int)getpid())
                            : xasprintf(".%s.tmp.%d", path, (int)getpid());
        w->f = fopen(w->tmp_path, "wb");
        if (!w->f)
            die("cannot write '%s': %s", path, strerror(errno));
        w->name = xstrdup(path);
    }
    w->hash = XXH64_createState();
    XXH64_reset(w->hash, 0);
    msgpack_sbuffer_init(&w->buf);
    msgpack_packer_init(&w->pk, &w->buf, sbuffer_write);
}

void mp_pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

void mp_pack_kv_str(msgpack_packer *pk, const char *k, const char *v)
{
    mp_pack_str(pk, k);
    mp_pack_str(pk, v);
}

void mp_pack_kv_int(msgpack_packer *pk, const char *k, int64_t v)
{
    mp_pack_str(pk, k);
    msgpack_pack_int64(pk, v);
}

void mp_pack_kv_double(msgpack_packer *pk, const char *k, double v)
{
    mp_pack_str(pk, k);
    msgpack_pack_double(pk, v);
}

static int cmp_cstr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void mp_pack_json(msgpack_packer *pk, const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        /* Sorted keys, so that equal configs pack to equal bytes. */
        size_t n = json_object_size(j), i = 0;
        const char **keys = xmalloc((n ? n : 1) * sizeof *keys);
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)j, key, v) keys[i++] = key;
        qsort(keys, n, sizeof *keys, cmp_cstr);
        msgpack_pack_map(pk, n);
        for (i = 0; i < n; i++) {
            mp_pack_str(pk, keys[i]);
            mp_pack_json(pk, json_object_get(j, keys[i]));
        }
        free(keys);
        break;
    }
    case JSON_ARRAY:
        msgpack_pack_array(pk, json_array_size(j));
        for (size_t i = 0; i < json_array_size(j); i++)
            mp_pack_json(pk, json_array_get(j, i));
        break;
    case JSON_STRING:
        msgpack_pack_str(pk, json_string_length(j));
        msgpack_pack_str_body(pk, json_string_value(j), json_string_length(j));
        break;
    case JSON_INTEGER: msgpack_pack_int64(pk, json_integer_value(j)); break;
    case JSON_REAL: msgpack_pack_double(pk, json_real_value(j)); break;
    case JSON_TRUE: msgpack_pack_true(pk); break;
    case JSON_FALSE: msgpack_pack_false(pk); break;
    case JSON_NULL: msgpack_pack_nil(pk); break;
    }
}

void stream_write_header(stream_writer *w, const char *kind, int argc, char **argv, int extra_pairs)
{
    msgpack_packer *pk = &w->pk;
    msgpack_pack_map(pk, 4 + extra_pairs);
    mp_pack_kv_str(pk, "pare", kind);
    mp_pack_kv_int(pk, "version", STREAM_VERSION);
    char *producer = xasprintf("%s %s", progname(), PARE_VERSION);
    mp_pack_kv_str(pk, "producer", producer);
    free(producer);
    mp_pack_str(pk, "argv");
    /* argv[0] as the program's name, not the path it was run by, so that the
     * same command gives the same bytes however it was invoked */
    msgpack_pack_array(pk, argc > 0 ? (size_t)argc : 0);
    for (int i = 0; i < argc; i++)
        mp_pack_str(pk, i == 0 ? progname() : argv[i]);
    /* The caller's pairs follow; stream_end_record flushes the header. The header
     * is not counted as a record. */
    w->records--;
}

void stream_begin_record(stream_writer *w, const char *type, int n_pairs)
{
    msgpack_pack_map(&w->pk, (size_t)n_pairs);
    mp_pack_kv_str(&w->pk, "t", type);
}

void stream_end_record(stream_writer *w)
{
    writer_flush_record(w);
    w->records++;
}

static size_t bin_header_len(size_t n) { return n < 256 ? 2 : n < 65536 ? 3 : 5; }

void stream_begin_payload(stream_writer *w, const char *key, size_t n)
{
    mp_pack_str(&w->pk, key);
    if (n >= STREAM_ALIGN_MIN) {
        /* Payload would start at offset + record prefix + bin header. A pad record
         * is 14 bytes plus k bytes of padding (fixmap, "t", "pad", "data", bin8). */
        uint64_t start = w->offset + w->buf.size + bin_header_len(n);
        if (start % 64) {
            size_t k = (size_t)((64 - (start + 14) % 64) % 64);
            static const char zeros[64];
            msgpack_sbuffer rec;
            msgpack_sbuffer_init(&rec);
            msgpack_packer pp;
            msgpack_packer_init(&pp, &rec, sbuffer_write);
            msgpack_pack_map(&pp, 2);
            mp_pack_kv_str(&pp, "t", "pad");
            mp_pack_str(&pp, "data");
            msgpack_pack_bin(&pp, k);
            msgpack_pack_bin_body(&pp, zeros, k);
            writer_emit(w, rec.data, rec.size);
            msgpack_sbuffer_destroy(&rec);
            w->records++;
        }
    }
    msgpack_pack_bin(&w->pk, n);
    writer_flush_record(w);
    w->records++;
}

void stream_write_bytes(stream_writer *w, const void *data, size_t n)
{
    writer_emit(w, data, n);
}

void stream_write_payload(stream_writer *w, const char *key, const void *data, size_t n)
{
    stream_begin_payload(w, key, n);
    writer_emit(w, data, n);
}

void stream_writer_close(stream_writer *w)
{
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)XXH64_digest(w->hash));
    msgpack_pack_map(&w->pk, 3);
    mp_pack_kv_str(&w->pk, "t", "end");
    mp_pack_kv_int(&w->pk, "records", (int64_t)w->records);
    mp_pack_kv_str(&w->pk, "xxh64", hex);
    writer_flush_record(w);
    if (fflush(w->f) != 0 || ferror(w->f))
        die("cannot write '%s': %s", w->name, strerror(errno));
    if (w->tmp_path) {
        if (fsync(fileno(w->f)) != 0 || fclose(w->f) != 0)
            die("cannot write '%s': %s", w->name, strerror(errno));
        if (rename(w->tmp_path, w->final_path) != 0)
            die("cannot rename '%s' to '%s': %s", w->tmp_path, w->final_path, strerror(errno));
    }
    XXH64_freeState(w->hash);
    msgpack_sbuffer_destroy(&w->buf);
    free(w->tmp_path);
    free(w->final_path);
    free(w->name);
    memset(w, 0, sizeof *w);
}

/* ------------------------------------------------------------------ reading */

#define MAX_DEPTH 64
#define MAX_SMALL_BYTES (256u << 20)  /* a str or a non-final bin */
#define MAX_ITEMS (1u << 24)          /* elements of one array or map */

void stream_die(const stream_reader *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    die("%s: %s", r->name, msg);
}

static void rd_bytes(stream_reader *r, void *dst, size_t n)
{
    size_t got = 0;
    if (r->prefix_pos < r->prefix_len) {
        got = r->prefix_len - r->prefix_pos < n ? r->prefix_len - r->prefix_pos : n;
        memcpy(dst, r->prefix + r->prefix_pos, got);
        r->prefix_pos += got;
    }
    if (got < n)
        got += fread((char *)dst + got, 1, n - got, r->f);
    if (got != n) {
        if (ferror(r->f))
            stream_die(r, "read error: %s", strerror(errno));
        stream_die(r, "truncated stream: unexpected end at byte %llu (no end record; did an upstream stage fail?)",
                   (unsigned long long)(r->offset + got));
    }
    XXH64_update(r->hash, dst, n);
    r->offset += n;
}

static uint64_t rd_be(stream_reader *r, int n)
{
    uint8_t b[8];
    rd_bytes(r, b, (size_t)n);
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | b[i];
    return v;
}

static void rd_value(stream_reader *r, msgpack_zone *z, msgpack_object *o, int depth);

/* Bytes of the stream not read yet; UINT64_MAX when unknown (a pipe). */
uint64_t stream_bytes_left(const stream_reader *r)
{
    return r->size == UINT64_MAX ? UINT64_MAX : r->offset < r->size ? r->size - r->offset : 0;
}

/* Refuse n bytes (or values: each takes a byte at least) that the rest of a
 * file cannot hold, before anything is allocated for them. */
static void need_bytes(stream_reader *r, uint64_t n, const char *what)
{
    if (n > stream_bytes_left(r))
        stream_die(r, "truncated stream: %s of %llu at byte %llu, but the file ends at byte %llu", what,
                   (unsigned long long)n, (unsigned long long)r->offset, (unsigned long long)r->size);
}

static char *rd_raw(stream_reader *r, msgpack_zone *z, uint64_t n)
{
    if (n > MAX_SMALL_BYTES)
        stream_die(r, "corrupt stream: a %llu-byte string at byte %llu", (unsigned long long)n,
                   (unsigned long long)r->offset);
    need_bytes(r, n, "a string");
    char *p = msgpack_zone_malloc(z, n + 1);
    if (!p)
        die("out of memory");
    rd_bytes(r, p, n);
    p[n] = 0;
    return p;
}

/* The values of an array or map, read into memory that grows with the values
 * actually read (a count that the input does not back up allocates nothing),
 * then moved into the zone. */
typedef struct {
    msgpack_object *p;
    size_t n, cap;
} objbuf;

static msgpack_object *objbuf_next(objbuf *b)
{
    GROW(b->p, b->cap, b->n + 1, 16);
    return &b->p[b->n++];
}

static void *objbuf_to_zone(objbuf *b, msgpack_zone *z)
{
    void *p = NULL;
    if (b->n) {
        p = msgpack_zone_malloc(z, b->n * sizeof *b->p);
        if (!p)
            die("out of memory");
        memcpy(p, b->p, b->n * sizeof *b->p);
    }
    free(b->p);
    return p;
}

/* count values read into the zone (what: "an array", "a map" in messages). */
static void *rd_items(stream_reader *r, msgpack_zone *z, uint64_t count, const char *what, int depth)
{
    need_bytes(r, count, what);
    objbuf b = {0};
    for (uint64_t i = 0; i < count; i++)
        rd_value(r, z, objbuf_next(&b), depth + 1);
    return objbuf_to_zone(&b, z);
}

static void rd_array(stream_reader *r, msgpack_zone *z, msgpack_object *o, uint64_t n, int depth)
{
    if (n > MAX_ITEMS)
        stream_die(r, "corrupt stream: an array of %llu items", (unsigned long long)n);
    o->type = MSGPACK_OBJECT_ARRAY;
    o->via.array.size = (uint32_t)n;
    o->via.array.ptr = rd_items(r, z, n, "an array", depth);
}

/* A map's n pairs, as 2n objects (msgpack_object_kv is a key and a value). */
static void rd_map(stream_reader *r, msgpack_zone *z, msgpack_object *o, uint64_t n, int depth)
{
    if (n > MAX_ITEMS)
        stream_die(r, "corrupt stream: a map of %llu entries", (unsigned long long)n);
    o->type = MSGPACK_OBJECT_MAP;
    o->via.map.size = (uint32_t)n;
    o->via.map.ptr = rd_items(r, z, 2 * n, "a map", depth);
}

/* A str or bin object of the next n bytes. */
static void rd_blob(stream_reader *r, msgpack_zone *z, msgpack_object *o, msgpack_object_type type, uint64_t n)
{
    char *p = rd_raw(r, z, n);
    o->type = type;
    if (type == MSGPACK_OBJECT_STR)
        o->via.str.size = (uint32_t)n, o->via.str.ptr = p;
    else
        o->via.bin.size = (uint32_t)n, o->via.bin.ptr = p;
}

/* One value whose first byte c has been read. */
static void rd_value_tag(stream_reader *r, msgpack_zone *z, msgpack_object *o, int depth, uint8_t c)
{
    if (depth > MAX_DEPTH)
        stream_die(r, "corrupt stream: values nested too deeply");
    if (c <= 0x7f) {
        o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
        o->via.u64 = c;
    } else if (c >= 0xe0) {
        o->type = MSGPACK_OBJECT_NEGATIVE_INTEGER;
        o->via.i64 = (int8_t)c;
    } else if ((c & 0xf0) == 0x80) {
        rd_map(r, z, o, c & 0x0f, depth);
    } else if ((c & 0xf0) == 0x90) {
        rd_array(r, z, o, c & 0x0f, depth);
    } else if ((c & 0xe0) == 0xa0) {
        rd_blob(r, z, o, MSGPACK_OBJECT_STR, c & 0x1f);
    } else {
        switch (c) {
        case 0xc0: o->type = MSGPACK_OBJECT_NIL; break;
        case 0xc2: o->type = MSGPACK_OBJECT_BOOLEAN; o->via.boolean = false; break;
        case 0xc3: o->type = MSGPACK_OBJECT_BOOLEAN; o->via.boolean = true; break;
        case 0xc4: case 0xc5: case 0xc6:
            rd_blob(r, z, o, MSGPACK_OBJECT_BIN, rd_be(r, c == 0xc4 ? 1 : c == 0xc5 ? 2 : 4));
            break;
        case 0xca:
            o->type = MSGPACK_OBJECT_FLOAT32;
            o->via.f64 = float_from_bits((uint32_t)rd_be(r, 4));
            break;
        case 0xcb: {
            uint64_t u = rd_be(r, 8);
            memcpy(&o->via.f64, &u, 8);
            o->type = MSGPACK_OBJECT_FLOAT64;
            break;
        }
        case 0xcc: case 0xcd: case 0xce: case 0xcf:
            o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
            o->via.u64 = rd_be(r, 1 << (c - 0xcc));
            break;
        case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
            int nb = 1 << (c - 0xd0);
            uint64_t u = rd_be(r, nb);
            int64_t v = nb == 8 ? (int64_t)u : (int64_t)(u << (64 - 8 * nb)) >> (64 - 8 * nb);
            o->type = v < 0 ? MSGPACK_OBJECT_NEGATIVE_INTEGER : MSGPACK_OBJECT_POSITIVE_INTEGER;
            o->via.i64 = v;
            break;
        }
        case 0xd9: case 0xda: case 0xdb:
            rd_blob(r, z, o, MSGPACK_OBJECT_STR, rd_be(r, c == 0xd9 ? 1 : c == 0xda ? 2 : 4));
            break;
        case 0xdc: case 0xdd: rd_array(r, z, o, rd_be(r, c == 0xdc ? 2 : 4), depth); break;
        case 0xde: case 0xdf: rd_map(r, z, o, rd_be(r, c == 0xde ? 2 : 4), depth); break;
        default:
            stream_die(r, "corrupt stream: unsupported MessagePack byte 0x%02x at byte %llu", c,
                       (unsigned long long)(r->offset - 1));
        }
    }
}

static void rd_value(stream_reader *r, msgpack_zone *z, msgpack_object *o, int depth)
{
    uint8_t c;
    rd_bytes(r, &c, 1);
    rd_value_tag(r, z, o, depth, c);
}

static uint64_t map_len_from_tag(stream_reader *r, uint8_t c, bool *ok)
{
    *ok = true;
    if ((c & 0xf0) == 0x80)
        return c & 0x0f;
    if (c == 0xde)
        return rd_be(r, 2);
    if (c == 0xdf)
        return rd_be(r, 4);
    *ok = false;
    return 0;
}

/* A record: a map whose final value, when a bin, is left unread. */
static void rd_record(stream_reader *r, msgpack_object *o)
{
    uint8_t c;
    rd_bytes(r, &c, 1);
    bool ok;
    uint64_t n = map_len_from_tag(r, c, &ok);
    if (!ok)
        stream_die(r, "corrupt stream: expected a record (a map) at byte %llu", (unsigned long long)(r->offset - 1));
    if (n > MAX_ITEMS || n == 0)
        stream_die(r, "corrupt stream: a record of %llu entries", (unsigned long long)n);
    need_bytes(r, 2 * n, "a record");
    objbuf b = {0};
    uint32_t size = (uint32_t)n;
    for (uint64_t i = 0; i < n; i++) {
        msgpack_object *key = objbuf_next(&b), *val = objbuf_next(&b);
        rd_value(r, &r->zone, key, 1);
        uint8_t t;
        rd_bytes(r, &t, 1);
        if (i == n - 1 && (t == 0xc4 || t == 0xc5 || t == 0xc6)) {
            r->payload_len = rd_be(r, t == 0xc4 ? 1 : t == 0xc5 ? 2 : 4);
            need_bytes(r, r->payload_len, "a payload");
            val->type = MSGPACK_OBJECT_NIL; /* the payload is read separately */
            size = (uint32_t)n - 1;
        } else {
            rd_value_tag(r, &r->zone, val, 1, t);
        }
    }
    o->type = MSGPACK_OBJECT_MAP;
    o->via.map.size = size;
    o->via.map.ptr = objbuf_to_zone(&b, &r->zone);
    if (size < n) {
        const msgpack_object *key = &o->via.map.ptr[size].key;
        r->payload_key = key->type == MSGPACK_OBJECT_STR ? key->via.str.ptr : "";
    }
}

static void skip_payload(stream_reader *r)
{
    uint8_t buf[1 << 16];
    while (r->payload_len) {
        size_t n = r->payload_len < sizeof buf ? (size_t)r->payload_len : sizeof buf;
        rd_bytes(r, buf, n);
        r->payload_len -= n;
    }
    r->payload_key = NULL;
}

void stream_read_payload(stream_reader *r, void *dst, uint64_t n)
{
    if (!r->payload_key || n > r->payload_len)
        stream_die(r, "record payload is %llu bytes, %llu expected", (unsigned long long)r->payload_len,
                   (unsigned long long)n);
    rd_bytes(r, dst, (size_t)n);
    r->payload_len -= n;
    if (r->payload_len == 0)
        r->payload_key = NULL;
}

uint64_t stream_payload_file_offset(const stream_reader *r)
{
    if (!r->payload_key || r->file_start == UINT64_MAX || r->prefix_pos < r->prefix_len)
        return UINT64_MAX;
    return r->file_start + r->offset;
}

void stream_pass_payload(stream_reader *r, const void *same, uint64_t n)
{
    if (stream_payload_file_offset(r) == UINT64_MAX || n > r->payload_len)
        stream_die(r, "record payload is %llu bytes, %llu expected", (unsigned long long)r->payload_len,
                   (unsigned long long)n);
    if (fseeko(r->f, (off_t)n, SEEK_CUR) != 0)
        stream_die(r, "read error: %s", strerror(errno));
    XXH64_update(r->hash, same, (size_t)n);
    r->offset += n;
    r->payload_len -= n;
    if (r->payload_len == 0)
        r->payload_key = NULL;
}

static const char *str_or(const msgpack_object *o, const char *dflt)
{
    return o && o->type == MSGPACK_OBJECT_STR ? o->via.str.ptr : dflt;
}

/* A stream kind: "checkpoint", "lora-state", ... (fits stream_reader.kind). */
static bool is_kind_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= sizeof ((stream_reader *)0)->kind)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
              s[i] == '-' || s[i] == '_'))
            return false;
    return true;
}

void stream_reader_open_file(stream_reader *r, FILE *f, const char *name, const uint8_t *prefix,
                             size_t prefix_len, const char *kind)
{
    memset(r, 0, sizeof *r);
    r->f = f;
    r->name = xstrdup(name);
    r->hash = XXH64_createState();
    r->hash_at_record = XXH64_createState();
    XXH64_reset(r->hash, 0);
    msgpack_zone_init(&r->zone, 1 << 14);
    msgpack_zone_init(&r->header_zone, 1 << 12);

    /* The size of a regular file bounds every count and length read from it. */
    struct stat st;
    long pos = ftell(f);
    r->size = fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && pos >= 0 && pos <= st.st_size
                  ? (uint64_t)(st.st_size - pos) + prefix_len
                  : UINT64_MAX;
    r->file_start = r->size != UINT64_MAX && (uint64_t)pos >= prefix_len ? (uint64_t)pos - prefix_len : UINT64_MAX;
    /* Bytes a caller already read from f while sniffing are consumed first. */
    if (prefix_len) {
        r->prefix = xmalloc(prefix_len);
        memcpy(r->prefix, prefix, prefix_len);
        r->prefix_len = prefix_len;
    }
    uint8_t c;
    rd_bytes(r, &c, 1);
    bool ok;
    uint64_t n = map_len_from_tag(r, c, &ok);
    if (!ok || n == 0)
        die("%s: not a pare stream (it does not start with a header map)", name);
    if (n > MAX_ITEMS)
        die("%s: not a pare stream (a header of %llu entries)", name, (unsigned long long)n);
    need_bytes(r, 2 * n, "a header");
    objbuf b = {0};
    for (uint64_t i = 0; i < 2 * n; i++) {
        rd_value(r, &r->header_zone, objbuf_next(&b), 1);
        if (i == 0 && !(b.p[0].type == MSGPACK_OBJECT_STR && b.p[0].via.str.size == 4 &&
                        memcmp(b.p[0].via.str.ptr, "pare", 4) == 0))
            die("%s: not a pare stream (its first key is not \"pare\")", name);
    }
    msgpack_object *h = &r->header;
    h->type = MSGPACK_OBJECT_MAP;
    h->via.map.size = (uint32_t)n;
    h->via.map.ptr = objbuf_to_zone(&b, &r->header_zone);
    const char *got = str_or(mp_get(h, "pare"), NULL);
    if (!got)
        die("%s: not a pare stream (no kind in its header)", name);
    if (!is_kind_name(got))
        die("%s: not a pare stream (its kind is not a name of 1 to %zu letters, digits, '-' or '_')", name,
            sizeof r->kind - 1);
    snprintf(r->kind, sizeof r->kind, "%s", got);
    int64_t version = 0;
    if (!mp_int(mp_get(h, "version"), &version))
        die("%s: pare stream without a version", name);
    if (version > STREAM_VERSION)
        die("%s: stream version %lld is newer than this pare reads (%d); upgrade pare", name, (long long)version,
            STREAM_VERSION);
    r->version = (int)version;
    if (kind && strcmp(kind, got) != 0)
        die("%s: expected a %s stream, got a %s stream", name, kind, got);
}

void stream_reader_open(stream_reader *r, const char *path, const char *kind)
{
    bool is_stdin = strcmp(path, "-") == 0;
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f)
        die("cannot read '%s': %s", path, strerror(errno));
    stream_reader_open_file(r, f, is_stdin ? "stdin" : path, NULL, 0, kind);
    r->own_file = !is_stdin;
}

bool stream_next(stream_reader *r, msgpack_object *rec)
{
    if (r->done)
        return false;
    if (r->payload_key)
        skip_payload(r);
    for (;;) {
        msgpack_zone_clear(&r->zone);
        XXH64_copyState(r->hash_at_record, r->hash);
        rd_record(r, rec);
        const char *t = str_or(mp_get(rec, "t"), NULL);
        if (!t)
            stream_die(r, "corrupt stream: record %llu has no type", (unsigned long long)r->records + 1);
        if (strcmp(t, "end") == 0) {
            int64_t n = -1;
            const char *hex = str_or(mp_get(rec, "xxh64"), "");
            if (!mp_int(mp_get(rec, "records"), &n) || n != (int64_t)r->records)
                stream_die(r, "corrupt stream: end record counts %lld records, %llu were read", (long long)n,
                           (unsigned long long)r->records);
            char want[17];
            snprintf(want, sizeof want, "%016llx", (unsigned long long)XXH64_digest(r->hash_at_record));
            if (strcmp(hex, want) != 0)
                stream_die(r, "corrupt stream: digest mismatch (xxh64 %s recorded, %s computed)", hex, want);
            r->done = true;
            return false;
        }
        r->records++;
        if (strcmp(t, "pad") == 0) {
            if (r->payload_key)
                skip_payload(r);
            continue;
        }
        return true;
    }
}

void stream_reader_close(stream_reader *r)
{
    if (r->own_file && r->f)
        fclose(r->f);
    XXH64_freeState(r->hash);
    XXH64_freeState(r->hash_at_record);
    msgpack_zone_destroy(&r->zone);
    msgpack_zone_destroy(&r->header_zone);
    free(r->prefix);
    free(r->name);
    memset(r, 0, sizeof *r);
}

/* ------------------------------------------------------------------ objects */

const msgpack_object *mp_get(const msgpack_object *map, const char *key)
{
    if (!map || map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    size_t n = strlen(key);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == n && memcmp(k->via.str.ptr, key, n) == 0)
            return &map->via.map.ptr[i].val;
    }
    return NULL;
}

bool mp_is_str(const msgpack_object *o, const char *s)
{
    return o && o->type == MSGPACK_OBJECT_STR && o->via.str.size == strlen(s) &&
           memcmp(o->via.str.ptr, s, o->via.str.size) == 0;
}

char *mp_strdup(const msgpack_object *o)
{
    if (!o || o->type != MSGPACK_OBJECT_STR)
        return NULL;
    char *s = xmalloc(o->via.str.size + 1);
    memcpy(s, o->via.str.ptr, o->via.str.size);
    s[o->via.str.size] = 0;
    return s;
}

bool mp_int(const msgpack_object *o, int64_t *v)
{
    if (!o)
        return false;
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (o->via.u64 > INT64_MAX)
            return false;
        *v = (int64_t)o->via.u64;
        return true;
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *v = o->via.i64;
        return true;
    }
    return false;
}

bool mp_double(const msgpack_object *o, double *v)
{
    int64_t i;
    if (o && (o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32)) {
        *v = o->via.f64;
        return true;
    }
    if (mp_int(o, &i)) {
        *v = (double)i;
        return true;
    }
    return false;
}

json_t *mp_to_json(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: return json_null();
    case MSGPACK_OBJECT_BOOLEAN: return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER: return json_integer((json_int_t)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return json_integer(o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: return json_real(o->via.f64);
    case MSGPACK_OBJECT_STR: {
        /* JSON strings are UTF-8: other bytes become U+FFFD */
        json_t *j = json_stringn(o->via.str.ptr, o->via.str.size);
        if (!j) {
            char *s = utf8_replace_invalid(o->via.str.ptr, o->via.str.size);
            j = json_string(s);
            free(s);
        }
        return j;
    }
    case MSGPACK_OBJECT_BIN: return json_pack("{s:I}", "bin", (json_int_t)o->via.bin.size);
    case MSGPACK_OBJECT_ARRAY: {
        json_t *a = json_array();
        for (uint32_t i = 0; i < o->via.array.size; i++)
            json_array_append_new(a, mp_to_json(&o->via.array.ptr[i]));
        return a;
    }
    case MSGPACK_OBJECT_MAP: {
        json_t *m = json_object();
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object *k = &o->via.map.ptr[i].key;
            char *key = k->type == MSGPACK_OBJECT_STR ? utf8_replace_invalid(k->via.str.ptr, k->via.str.size)
                                                      : xstrdup("?");
            json_object_set_new(m, key, mp_to_json(&o->via.map.ptr[i].val));
            free(key);
        }
        return m;
    }
    default: return json_null();
    }
}

bool stream_sniff(const uint8_t *p, size_t n)
{
    /* fixmap or map16/32, then the fixstr "pare" */
    size_t at;
    if (n < 1)
        return false;
    if ((p[0] & 0xf0) == 0x80)
        at = 1;
    else if (p[0] == 0xde)
        at = 3;
    else if (p[0] == 0xdf)
        at = 5;
    else
        return false;
    return n >= at + 5 && p[at] == 0xa4 && memcmp(p + at + 1, "pare", 4) == 0;
}
