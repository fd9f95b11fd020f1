/* zip_write.c - write zip archives of stored entries as torch.save does (zip_write.h).
 *
 * Layout (PKWARE APPNOTE 6.3), as PyTorch writes it: for each entry a local header
 * (PK\3\4, flags 0x0808: sizes in a data descriptor, UTF-8 name; CRC and sizes 0),
 * the name, an extra field of id "FB" filled with 'Z' up to the next multiple of
 * 64, the data, a data descriptor (PK\7\8, CRC, sizes); then one central directory
 * entry (PK\1\2) per entry, and the end-of-central-directory record (PK\5\6). */
#include "format/zip_write.h"

#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "format/zip.h"

#define ZIP_ALIGN 64
#define ZIP_LIMIT 0xFFFFFFFFu /* from here on a value needs Zip64 */

static void put(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void emit(zip_writer *z, const void *p, size_t n)
{
    af_write(&z->af, p, n);
    z->pos += n;
    if (z->pos >= ZIP_LIMIT)
        die("%s: a zip archive of 4 GiB or more, which needs Zip64; write more shards", z->path);
}

void zip_writer_open(zip_writer *z, const char *path)
{
    memset(z, 0, sizeof *z);
    z->path = path;
    af_open(&z->af, path);
}

void zip_writer_begin(zip_writer *z, const char *name)
{
    if (z->open)
        die("%s: zip entry %s begun inside another", z->path, name);
    GROW(z->entries, z->cap, z->n + 1, 64);
    size_t nl = strlen(name);
    if (nl > 0xFFFF)
        die("%s: zip entry name too long", z->path);
    zip_written *e = &z->entries[z->n++];
    *e = (zip_written){.name = xstrdup(name), .offset = z->pos};
    z->open = true;

    /* The extra field pads the data to the next multiple of 64 (at least its 4-byte header). */
    uint64_t data = z->pos + 30 + nl + 4;
    size_t pad = (size_t)((ZIP_ALIGN - data % ZIP_ALIGN) % ZIP_ALIGN), xl = 4 + pad;
    uint8_t h[30] = {'P', 'K', 3, 4};
    put(h + 6, 0x0808, 2);        /* data descriptor follows; name in UTF-8 */
    put(h + 26, nl, 2);
    put(h + 28, xl, 2);
    emit(z, h, 30);
    emit(z, name, nl);
    uint8_t x[4 + ZIP_ALIGN];
    memcpy(x, "FB", 2);
    put(x + 2, pad, 2);
    memset(x + 4, 'Z', pad);
    emit(z, x, xl);
}

void zip_writer_data(zip_writer *z, const void *p, size_t n)
{
    if (!z->open)
        die("%s: zip data outside an entry", z->path);
    zip_written *e = &z->entries[z->n - 1];
    e->crc = zip_crc32(e->crc, p, n);
    e->size += n;
    emit(z, p, n);
}

void zip_writer_end(zip_writer *z)
{
    if (!z->open)
        die("%s: no zip entry to end", z->path);
    const zip_written *e = &z->entries[z->n - 1];
    uint8_t d[16] = {'P', 'K', 7, 8};
    put(d + 4, e->crc, 4);
    put(d + 8, e->size, 4);
    put(d + 12, e->size, 4);
    emit(z, d, 16);
    z->open = false;
}

void zip_writer_entry(zip_writer *z, const char *name, const void *p, size_t n)
{
    zip_writer_begin(z, name);
    zip_writer_data(z, p, n);
    zip_writer_end(z);
}

void zip_writer_close(zip_writer *z)
{
    if (z->open)
        die("%s: zip entry %s not ended", z->path, z->entries[z->n - 1].name);
    if (z->n > 0xFFFF)
        die("%s: more than 65535 zip entries, which needs Zip64; write more shards", z->path);
    uint64_t cd = z->pos;
    for (int i = 0; i < z->n; i++) {
        const zip_written *e = &z->entries[i];
        size_t nl = strlen(e->name);
        uint8_t h[46] = {'P', 'K', 1, 2};
        put(h + 8, 0x0808, 2);
        put(h + 16, e->crc, 4);
        put(h + 20, e->size, 4);
        put(h + 24, e->size, 4);
        put(h + 28, nl, 2);
        put(h + 42, e->offset, 4);
        emit(z, h, 46);
        emit(z, e->name, nl);
    }
    uint8_t end[22] = {'P', 'K', 5, 6};
    put(end + 8, (uint64_t)z->n, 2);
    put(end + 10, (uint64_t)z->n, 2);
    put(end + 12, z->pos - cd, 4);
    put(end + 16, cd, 4);
    emit(z, end, 22);
    af_close(&z->af);
    for (int i = 0; i < z->n; i++)
        free(z->entries[i].name);
    free(z->entries);
    memset(z, 0, sizeof *z);
}
