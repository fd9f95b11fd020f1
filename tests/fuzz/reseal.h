/* reseal.h - a pare stream re-sealed for fuzzing (fuzz_stream_reseal, fuzz_state):
 * a trailing end record is dropped and a fresh one appended whose record count
 * and XXH64 match the bytes, so that mutations reach the parsers behind the
 * checksum (as a malicious file would). Static: included by the targets that use it. */
#ifndef PARE_FUZZ_RESEAL_H
#define PARE_FUZZ_RESEAL_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "format/stream.h"

/* Offsets of the top-level MessagePack values of p[0..n) that are whole; returns
 * how many (at most max). Values are skipped without being built. */
static size_t top_values(const uint8_t *p, size_t n, size_t *start, size_t max)
{
    size_t at = 0, count = 0;
    while (at < n && count < max) {
        size_t begin = at;
        uint64_t pending = 1;
        while (pending && at < n) {
            uint8_t c = p[at++];
            pending--;
            uint64_t skip = 0, items = 0;
            int len_bytes = 0;
            if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3)
                ;
            else if ((c & 0xf0) == 0x80)
                items = 2 * (uint64_t)(c & 0x0f);
            else if ((c & 0xf0) == 0x90)
                items = c & 0x0f;
            else if ((c & 0xe0) == 0xa0)
                skip = c & 0x1f;
            else if (c == 0xc4 || c == 0xd9)
                len_bytes = 1;
            else if (c == 0xc5 || c == 0xda)
                len_bytes = 2;
            else if (c == 0xc6 || c == 0xdb)
                len_bytes = 4;
            else if (c == 0xca)
                skip = 4;
            else if (c == 0xcb)
                skip = 8;
            else if (c >= 0xcc && c <= 0xcf)
                skip = 1u << (c - 0xcc);
            else if (c >= 0xd0 && c <= 0xd3)
                skip = 1u << (c - 0xd0);
            else if (c == 0xdc || c == 0xde)
                len_bytes = 2;
            else if (c == 0xdd || c == 0xdf)
                len_bytes = 4;
            else
                return count; /* not MessagePack the reader knows */
            if (len_bytes) {
                if (n - at < (size_t)len_bytes)
                    return count;
                uint64_t v = 0;
                for (int i = 0; i < len_bytes; i++)
                    v = v << 8 | p[at++];
                if (c == 0xdc || c == 0xdd)
                    items = v;
                else if (c == 0xde || c == 0xdf)
                    items = 2 * v;
                else
                    skip = v;
            }
            if (skip > n - at)
                return count;
            at += (size_t)skip;
            pending += items;
        }
        if (pending)
            return count;
        start[count++] = begin;
        (void)begin;
    }
    return count;
}

static uint8_t *reseal(const uint8_t *data, size_t size, size_t *out_len)
{
    static size_t start[1 << 16];
    size_t k = top_values(data, size, start, sizeof start / sizeof *start);
    size_t body = size;
    static const uint8_t end_prefix[] = {0x83, 0xa1, 't', 0xa3, 'e', 'n', 'd'};
    if (k >= 2 && size - start[k - 1] >= sizeof end_prefix &&
        memcmp(data + start[k - 1], end_prefix, sizeof end_prefix) == 0) {
        body = start[k - 1];
        k--;
    }
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    if (body)
        msgpack_sbuffer_write(&sb, (const char *)data, body);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)XXH64(data, body, 0));
    msgpack_pack_map(&pk, 3);
    mp_pack_kv_str(&pk, "t", "end");
    mp_pack_kv_int(&pk, "records", k ? (int64_t)k - 1 : 0);
    mp_pack_kv_str(&pk, "xxh64", hex);
    *out_len = sb.size;
    return (uint8_t *)msgpack_sbuffer_release(&sb);
}

#endif
