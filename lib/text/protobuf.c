/* protobuf.c - the protobuf wire format, read and written (protobuf.h). */
#include "base/util.h"
#include "text/protobuf.h"

#include <stdbool.h>

static bool pb_varint(pb_reader *r, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (r->p >= r->end)
            return false;
        uint8_t b = *r->p++;
        x |= (uint64_t)(b & 0x7f) << (shift < 64 ? shift : 63);
        if (!(b & 0x80)) {
            *v = x;
            return true;
        }
    }
    return false;
}

int pb_next(pb_reader *r, pb_field *f)
{
    if (r->p == r->end)
        return 0;
    uint64_t tag, n;
    if (!pb_varint(r, &tag) || tag >> 3 == 0 || tag >> 3 > 0x1fffffff)
        return -1;
    f->field = (uint32_t)(tag >> 3);
    f->wire = (int)(tag & 7);
    size_t left = (size_t)(r->end - r->p);
    switch (f->wire) {
    case 0:
        return pb_varint(r, &f->v) ? 1 : -1;
    case 1:
    case 5:
        n = f->wire == 1 ? 8 : 4;
        if (left < n)
            return -1;
        f->v = load_le(r->p, (int)n);
        r->p += n;
        return 1;
    case 2:
        if (!pb_varint(r, &n) || n > (uint64_t)(r->end - r->p))
            return -1;
        f->data = r->p;
        f->len = (size_t)n;
        r->p += n;
        return 1;
    default: // groups (3, 4) are not used by sentencepiece_model.proto
        return -1;
    }
}

static void put_varint(bytes *out, uint64_t v)
{
    uint8_t x[10];
    int n = 0;
    do {
        x[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v)
            x[n] |= 0x80;
        n++;
    } while (v);
    bytes_put(out, x, (size_t)n);
}

void pb_put_int(bytes *out, int field, uint64_t v)
{
    put_varint(out, (uint64_t)field << 3);
    put_varint(out, v);
}

void pb_put_float(bytes *out, int field, float v)
{
    put_varint(out, (uint64_t)field << 3 | 5);
    bytes_put(out, &v, 4);
}

void pb_put_bytes(bytes *out, int field, const void *p, size_t n)
{
    put_varint(out, (uint64_t)field << 3 | 2);
    put_varint(out, n);
    bytes_put(out, p, n);
}
