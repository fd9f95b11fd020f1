/* zip.h - the entries of a zip archive held in memory, for archives whose entries
 * are stored uncompressed (as torch.save writes them): each entry's bytes are a
 * slice of the archive, checked against the CRC-32 its directory records.
 * Zip64 sizes and offsets are read; compressed, encrypted or spanned archives are
 * refused naming the entry. */
#ifndef PARE_ZIP_H
#define PARE_ZIP_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *name;
    const uint8_t *data;    /* into the archive */
    uint64_t size;
    uint32_t crc;
    int checked;            /* CRC verified (zip_entry_data does it once) */
} zip_entry;

typedef struct {
    const char *source;     /* for messages */
    zip_entry *entries;     /* in directory order */
    int n;
} zip_archive;

/* Read the central directory of the archive at p (n bytes, which must outlive z).
 * Dies "source: ..." on anything malformed. */
void zip_open(zip_archive *z, const uint8_t *p, size_t n, const char *source);
void zip_close(zip_archive *z);
/* The entry called name, NULL if absent. */
zip_entry *zip_find(const zip_archive *z, const char *name);
/* An entry's bytes, its CRC checked the first time. */
const uint8_t *zip_entry_data(const zip_archive *z, zip_entry *e);
/* The CRC-32 (zip's, IEEE 802.3) of n more bytes at p, continuing from crc (0 to
 * start). */
uint32_t zip_crc32(uint32_t crc, const void *p, size_t n);

#endif
