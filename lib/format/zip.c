/* zip.c - read the directory of a zip archive of stored entries (zip.h).
 *
 * Layout (PKWARE APPNOTE 6.3): local headers with the data, then the central
 * directory, then the end-of-central-directory record (EOCD, signature PK\5\6,
 * possibly followed by a comment of up to 65535 bytes). A Zip64 archive puts a
 * Zip64 EOCD locator (PK\6\7) just before the EOCD; entries whose sizes or offset
 * read 0xFFFFFFFF carry them in a Zip64 extra field (id 1). */
#include "format/zip.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

static uint64_t le(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

uint32_t zip_crc32(uint32_t crc, const void *data, size_t n)
{
    const uint8_t *p = data;
    static uint32_t table[256];
    static bool ready;
    if (!ready) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
        ready = true;
    }
    uint32_t c = crc ^ 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++)
        c = table[(c ^ p[i]) & 0xff] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

/* The Zip64 extra field of a directory entry: replace the values that read
 * 0xFFFFFFFF, in the order usize, csize, offset. */
static void zip64_extra(const zip_archive *z, const uint8_t *x, size_t xlen, uint64_t *usize,
                        uint64_t *csize, uint64_t *offset, const char *name)
{
    size_t i = 0;
    while (i + 4 <= xlen) {
        unsigned id = (unsigned)le(x + i, 2), len = (unsigned)le(x + i + 2, 2);
        if (i + 4 + len > xlen)
            break;
        if (id == 1) {
            const uint8_t *q = x + i + 4;
            size_t left = len;
            uint64_t *want[3] = {usize, csize, offset};
            for (int k = 0; k < 3; k++) {
                if (*want[k] != 0xFFFFFFFFu)
                    continue;
                if (left < 8)
                    die("%s: zip entry %s: short Zip64 extra field", z->source, name);
                *want[k] = le(q, 8);
                q += 8;
                left -= 8;
            }
            return;
        }
        i += 4 + len;
    }
    if (*usize == 0xFFFFFFFFu || *csize == 0xFFFFFFFFu || *offset == 0xFFFFFFFFu)
        die("%s: zip entry %s: no Zip64 extra field for its sizes", z->source, name);
}

void zip_open(zip_archive *z, const uint8_t *p, size_t n, const char *source)
{
    memset(z, 0, sizeof *z);
    z->source = source;
    if (n < 22)
        die("%s: not a zip archive (too short)", source);
    size_t eocd = n - 22, stop = n > 22 + 65535 ? n - 22 - 65535 : 0;
    while (memcmp(p + eocd, "PK\5\6", 4)) {
        if (eocd == stop)
            die("%s: not a zip archive (no end-of-central-directory record)", source);
        eocd--;
    }
    if (le(p + eocd + 4, 2) != 0 || le(p + eocd + 6, 2) != 0)
        die("%s: a zip archive spanning several files", source);
    uint64_t count = le(p + eocd + 10, 2), cd_size = le(p + eocd + 12, 4), cd_off = le(p + eocd + 16, 4);
    if (count == 0xFFFF || cd_size == 0xFFFFFFFFu || cd_off == 0xFFFFFFFFu) {
        if (eocd < 20 || memcmp(p + eocd - 20, "PK\6\7", 4))
            die("%s: zip archive: Zip64 values without a Zip64 locator", source);
        uint64_t z64 = le(p + eocd - 20 + 8, 8);
        if (n < 56 || z64 > n - 56 || memcmp(p + z64, "PK\6\6", 4))
            die("%s: zip archive: bad Zip64 end-of-central-directory record", source);
        count = le(p + z64 + 32, 8);
        cd_size = le(p + z64 + 40, 8);
        cd_off = le(p + z64 + 48, 8);
    }
    if (cd_off > n || cd_size > n - cd_off || count > cd_size / 46)
        die("%s: zip archive: the central directory lies outside the file", source);
    z->entries = xcalloc(count ? count : 1, sizeof *z->entries);
    const uint8_t *q = p + cd_off, *end = q + cd_size;
    for (uint64_t i = 0; i < count; i++) {
        if (end - q < 46 || memcmp(q, "PK\1\2", 4))
            die("%s: zip archive: bad central directory entry %llu", source, (unsigned long long)i);
        unsigned flags = (unsigned)le(q + 8, 2), method = (unsigned)le(q + 10, 2);
        uint32_t crc = (uint32_t)le(q + 16, 4);
        uint64_t csize = le(q + 20, 4), usize = le(q + 24, 4), off = le(q + 42, 4);
        size_t nl = (size_t)le(q + 28, 2), xl = (size_t)le(q + 30, 2), cl = (size_t)le(q + 32, 2);
        if ((size_t)(end - q) < 46 + nl + xl + cl)
            die("%s: zip archive: bad central directory entry %llu", source, (unsigned long long)i);
        char *name = xmalloc(nl + 1);
        memcpy(name, q + 46, nl);
        name[nl] = 0;
        if (strlen(name) != nl)
            die("%s: zip archive: an entry name holds a NUL byte", source);
        zip_entry *e = &z->entries[z->n++];
        e->name = name;
        zip64_extra(z, q + 46 + nl, xl, &usize, &csize, &off, name);
        if (flags & 1)
            die("%s: zip entry %s is encrypted", source, name);
        if (method != 0)
            die("%s: zip entry %s is compressed (method %u); torch.save stores entries "
                "uncompressed, and pare reads only those", source, name, method);
        if (csize != usize)
            die("%s: zip entry %s: stored, but its sizes differ", source, name);
        if (n < 30 || off > n - 30 || memcmp(p + off, "PK\3\4", 4))
            die("%s: zip entry %s: no local header at offset %llu", source, name,
                (unsigned long long)off);
        uint64_t data = off + 30 + le(p + off + 26, 2) + le(p + off + 28, 2);
        if (data > n || usize > n - data)
            die("%s: zip entry %s lies outside the file (truncated?)", source, name);
        e->data = p + data;
        e->size = usize;
        e->crc = crc;
        q += 46 + nl + xl + cl;
    }
}

void zip_close(zip_archive *z)
{
    for (int i = 0; i < z->n; i++)
        free(z->entries[i].name);
    free(z->entries);
    memset(z, 0, sizeof *z);
}

zip_entry *zip_find(const zip_archive *z, const char *name)
{
    for (int i = 0; i < z->n; i++)
        if (!strcmp(z->entries[i].name, name))
            return &z->entries[i];
    return NULL;
}

const uint8_t *zip_entry_data(const zip_archive *z, zip_entry *e)
{
    if (!e->checked) {
        if (zip_crc32(0, e->data, (size_t)e->size) != e->crc)
            die("%s: zip entry %s: CRC-32 mismatch (corrupt file)", z->source, e->name);
        e->checked = 1;
    }
    return e->data;
}
