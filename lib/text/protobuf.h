/* protobuf.h - the protobuf wire format, read one field at a time and written
 * (all that SentencePiece's ModelProto needs: varints, fixed32/64 and
 * length-delimited fields; groups are refused). */
#ifndef PARE_PROTOBUF_H
#define PARE_PROTOBUF_H

#include "base/util.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const uint8_t *p, *end;
} pb_reader;

typedef struct {
    uint32_t field;
    int wire; // 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32
    uint64_t v; // wire 0, 1, 5
    const uint8_t *data; // wire 2
    size_t len;
} pb_field;

/* Reads the next field: 1, 0 at the end, -1 when malformed. */
int pb_next(pb_reader *r, pb_field *f);

/* Fields appended to out: a varint (wire 0), a fixed32 float (wire 5), bytes (wire 2). */
void pb_put_int(bytes *out, int field, uint64_t v);
void pb_put_float(bytes *out, int field, float v);
void pb_put_bytes(bytes *out, int field, const void *p, size_t n);

#endif
