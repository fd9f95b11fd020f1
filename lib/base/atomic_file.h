/* atomic_file.h - write a file under a temporary name beside its path and rename
 * it into place when complete, so that it appears under its name only whole. */
#ifndef PARE_ATOMIC_FILE_H
#define PARE_ATOMIC_FILE_H

#include <stddef.h>
#include <stdio.h>

typedef struct {
    FILE *f;
    char *tmp;
    const char *path;
} atomic_file;

void af_open(atomic_file *a, const char *path);    /* dies "cannot write ..." */
void af_write(atomic_file *a, const void *p, size_t n);
void af_close(atomic_file *a);                     /* flush, close, rename */

#endif
