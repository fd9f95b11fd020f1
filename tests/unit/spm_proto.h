/* spm_proto.h - SentencePiece ModelProtos written by hand, for tests and fuzz
 * targets that need a tokenizer of a chosen shape: pieces (with score and type),
 * then the trainer and normalizer specs. */
#ifndef PARE_SPM_PROTO_H
#define PARE_SPM_PROTO_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    uint8_t b[1 << 14];
    size_t n;
} proto;

static inline void put_varint(proto *p, uint64_t v)
{
    do {
        p->b[p->n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
}

static inline void put_bytes_field(proto *p, int field, const void *s, size_t n)
{
    put_varint(p, (uint64_t)field << 3 | 2);
    put_varint(p, n);
    memcpy(p->b + p->n, s, n);
    p->n += n;
}

static inline void put_varint_field(proto *p, int field, uint64_t v)
{
    put_varint(p, (uint64_t)field << 3);
    put_varint(p, v);
}

/* type: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte. */
static inline void put_piece(proto *p, const char *piece, float score, int type)
{
    proto sub = {.n = 0};
    put_bytes_field(&sub, 1, piece, strlen(piece));
    put_varint(&sub, 2 << 3 | 5);
    memcpy(sub.b + sub.n, &score, 4);
    sub.n += 4;
    put_varint_field(&sub, 3, (uint64_t)type);
    put_bytes_field(p, 1, sub.b, sub.n);
}

/* model_type: 1 unigram, 2 BPE; normalizer flags -1: absent (proto default true). */
static inline void put_specs(proto *p, int model_type, bool byte_fallback, int add_dummy_prefix, int remove_extra_ws)
{
    proto ts = {.n = 0}, ns = {.n = 0};
    put_varint_field(&ts, 3, (uint64_t)model_type);
    if (byte_fallback)
        put_varint_field(&ts, 35, 1);
    put_bytes_field(p, 2, ts.b, ts.n);
    put_bytes_field(&ns, 1, "identity", 8);
    if (add_dummy_prefix >= 0)
        put_varint_field(&ns, 3, (uint64_t)add_dummy_prefix);
    if (remove_extra_ws >= 0)
        put_varint_field(&ns, 4, (uint64_t)remove_extra_ws);
    put_bytes_field(p, 3, ns.b, ns.n);
}

#endif
