/* zip_write.h - write a zip archive of stored (uncompressed) entries the way
 * torch.save does (PyTorch's PyTorchStreamWriter over miniz): every entry's data
 * start at a multiple of 64 bytes from the start of the file (the local header's
 * extra field "FB" pads to it), the CRC-32 and sizes follow the data in a data
 * descriptor (flag bit 3) and are recorded in the central directory. An entry is
 * written a piece at a time, so a storage larger than memory never has to be
 * whole. The archive appears under its name only when closed (atomic_file).
 * Archives that would need Zip64 (an entry or an offset of 4 GiB or more) are
 * refused: write more, smaller shards. */
#ifndef PARE_ZIP_WRITE_H
#define PARE_ZIP_WRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/atomic_file.h"

typedef struct {
    char *name;
    uint32_t crc;
    uint64_t size, offset;  /* of the data; of the local header */
} zip_written;

typedef struct {
    atomic_file af;
    const char *path;
    uint64_t pos;           /* bytes written so far */
    zip_written *entries;
    int n, cap;
    bool open;              /* an entry is being written (the last of entries) */
} zip_writer;

void zip_writer_open(zip_writer *z, const char *path);
/* Start entry name; its data follow with zip_writer_data, until zip_writer_end. */
void zip_writer_begin(zip_writer *z, const char *name);
void zip_writer_data(zip_writer *z, const void *p, size_t n);
void zip_writer_end(zip_writer *z);
/* A whole entry at once. */
void zip_writer_entry(zip_writer *z, const char *name, const void *p, size_t n);
/* Write the central directory and put the file in place. */
void zip_writer_close(zip_writer *z);

#endif
