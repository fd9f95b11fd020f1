/* protobuf.c - the protobuf wire format, read (protobuf.h). */
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
