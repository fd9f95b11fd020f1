/* atomic_file.c - files that appear under their name only when complete. */
#include "base/atomic_file.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"

void af_open(atomic_file *a, const char *path)
{
    a->path = path;
    a->tmp = xasprintf("%s.tmp-%ld", path, (long)getpid());
    a->f = fopen(a->tmp, "wb");
    if (!a->f)
        die("cannot write '%s': %s", a->tmp, strerror(errno));
}

void af_write(atomic_file *a, const void *p, size_t n)
{
    if (n && fwrite(p, 1, n, a->f) != n)
        die("cannot write '%s': %s", a->tmp, strerror(errno));
}

void af_close(atomic_file *a)
{
    if (fflush(a->f) != 0 || ferror(a->f) || fclose(a->f) != 0)
        die("cannot write '%s': %s", a->tmp, strerror(errno));
    if (rename(a->tmp, a->path) != 0)
        die("cannot rename '%s' to '%s': %s", a->tmp, a->path, strerror(errno));
    free(a->tmp);
}
