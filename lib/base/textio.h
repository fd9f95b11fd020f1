/* textio.h - read a text file, plain or compressed (gzip, xz, zstd, bzip2, ...),
 * through libarchive; a tar or zip archive gives its regular files concatenated. */
#ifndef PARE_TEXTIO_H
#define PARE_TEXTIO_H

#include <stddef.h>

/* Whole contents, NUL-terminated, *len set. Dies naming the file on failure. */
char *read_text_file(const char *path, size_t *len);

#endif
