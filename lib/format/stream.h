/* stream.h - pare's MessagePack streams (DESIGN.md section 2, man/pare-stream.5).
 *
 * A stream is a header map, records (maps with a "t" key), and an end record
 * {"t":"end","records":N,"xxh64":H} whose H is the XXH64 (seed 0) of every byte
 * before the end record. Writers pack with msgpack-c; the reader is a pull parser
 * that builds msgpack_object trees for small values and leaves a record's final bulk
 * payload unread so the caller can fread it straight into its destination. */
#ifndef PARE_STREAM_H
#define PARE_STREAM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <msgpack.h>
#include <xxhash.h>

#define STREAM_VERSION 1

/* ---- writing ---- */

typedef struct {
    FILE *f;
    char *name;             /* for messages: the path, or "stdout" */
    msgpack_packer pk;      /* packs into buf; pack a record's values on &w->pk */
    msgpack_sbuffer buf;    /* the record being built */
    XXH64_state_t *hash;
    uint64_t offset;        /* bytes written to f so far */
    uint64_t records;       /* records written (header and end excluded) */
    char *tmp_path;         /* -o FILE: written here, renamed on close */
    char *final_path;
} stream_writer;

/* Open stdout (path NULL or "-") or, for -o FILE, a temporary file beside FILE
 * that stream_writer_close renames into place. Refuses a terminal on stdout. */
void stream_writer_open(stream_writer *w, const char *path);
/* Header map: "pare", "version", "producer", "argv", then extra_pairs pairs that
 * the caller packs on &w->pk, then stream_end_record(w). */
void stream_write_header(stream_writer *w, const char *kind, int argc, char **argv, int extra_pairs);
/* Start a record map of n_pairs entries (the "t" pair counts) and pack "t": type.
 * The caller packs the other pairs, then calls stream_end_record, or, when the last
 * value is a bulk payload, stream_write_payload (which ends the record). */
void stream_begin_record(stream_writer *w, const char *type, int n_pairs);
void stream_end_record(stream_writer *w);
/* Pack key and a bin payload of n bytes as the record's last pair and end the
 * record. Payloads of STREAM_ALIGN_MIN bytes or more start on a 64-byte boundary
 * from the stream start: a "pad" record is written first when needed. The bytes
 * go from data straight to the file (no copy). */
#define STREAM_ALIGN_MIN 1024
void stream_write_payload(stream_writer *w, const char *key, const void *data, size_t n);
/* The same written in pieces: stream_begin_payload packs key and the payload's
 * header and ends the record; the caller then writes exactly n bytes with
 * stream_write_bytes (a payload converted a block at a time). */
void stream_begin_payload(stream_writer *w, const char *key, size_t n);
void stream_write_bytes(stream_writer *w, const void *data, size_t n);
/* Write the end record, flush, and for -o fsync and rename into place. Dies on any
 * write error (a full disk, a closed pipe). */
void stream_writer_close(stream_writer *w);

/* Small packing helpers. */
void mp_pack_str(msgpack_packer *pk, const char *s);
void mp_pack_kv_str(msgpack_packer *pk, const char *k, const char *v);
void mp_pack_kv_int(msgpack_packer *pk, const char *k, int64_t v);
void mp_pack_kv_double(msgpack_packer *pk, const char *k, double v);
/* JSON value -> msgpack (for configs kept as json_t). */
struct json_t;
void mp_pack_json(msgpack_packer *pk, const struct json_t *j);

/* ---- reading ---- */

typedef struct {
    FILE *f;
    char *name;             /* for messages: the path, or "stdin" */
    bool own_file;
    uint8_t *prefix;        /* bytes sniffed from f before the reader took over */
    size_t prefix_len, prefix_pos;
    XXH64_state_t *hash;
    XXH64_state_t *hash_at_record; /* state before the current record */
    uint64_t offset;
    uint64_t size;          /* bytes in a regular file (prefix included), else UINT64_MAX */
    uint64_t file_start;    /* offset in that file of the stream's first byte, else UINT64_MAX */
    uint64_t records;
    char kind[16];
    int version;
    msgpack_zone zone;      /* holds the current header/record objects */
    msgpack_object header;  /* valid until stream_reader_close */
    msgpack_zone header_zone;
    /* current record */
    const char *payload_key; /* key of an unread final bin payload, or NULL */
    uint64_t payload_len;
    bool done;
} stream_reader;

/* Open a path ("-" = stdin) and read the header. kind: required kind, or NULL for
 * any (e.g. pare show). Dies with "NAME: ..." on wrong kind/version/garbage. */
void stream_reader_open(stream_reader *r, const char *path, const char *kind);
/* Same, on an already-open FILE whose first bytes may have been peeked into
 * prefix (prefix_len bytes, consumed from f already). */
void stream_reader_open_file(stream_reader *r, FILE *f, const char *name, const uint8_t *prefix,
                             size_t prefix_len, const char *kind);
/* Next record: fills *rec (a map, owned by the reader until the next call) and
 * returns true; returns false after the end record has been verified. A record's
 * last value, when it is a bin, is left unread: r->payload_key names it and
 * r->payload_len gives its size; read it with stream_read_payload or skip it (the
 * next stream_next skips it). "pad" records are skipped silently. */
bool stream_next(stream_reader *r, msgpack_object *rec);
void stream_read_payload(stream_reader *r, void *dst, uint64_t n);
/* Where the unread payload of the current record starts in the file being read,
 * or UINT64_MAX when the stream is not a regular file (a pipe): a caller that
 * maps the file can use the payload in place. stream_pass_payload then moves past
 * n of its bytes without reading them, given the caller's view of the same bytes
 * (which the end record's checksum still covers). */
uint64_t stream_payload_file_offset(const stream_reader *r);
void stream_pass_payload(stream_reader *r, const void *same, uint64_t n);
/* Bytes of the stream not read yet (a record's unread payload included), or
 * UINT64_MAX when that is unknown (a pipe): what a count read from the stream can
 * be checked against before anything is allocated for it. */
uint64_t stream_bytes_left(const stream_reader *r);
void stream_reader_close(stream_reader *r);
/* Die with "NAME: MSG" (the stream's name prefixed). */
_Noreturn void stream_die(const stream_reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* msgpack_object helpers: NULL / defaults when absent or of another type. */
const msgpack_object *mp_get(const msgpack_object *map, const char *key);
bool mp_is_str(const msgpack_object *o, const char *s);
char *mp_strdup(const msgpack_object *o);            /* NULL unless a str */
bool mp_int(const msgpack_object *o, int64_t *v);    /* false unless an int */
bool mp_double(const msgpack_object *o, double *v);  /* ints and floats */
struct json_t *mp_to_json(const msgpack_object *o);  /* bins become {"bin": N} */

/* True if the bytes look like the start of a pare stream (a map whose first key is
 * "pare"). */
bool stream_sniff(const uint8_t *p, size_t n);

#endif
