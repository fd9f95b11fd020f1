/* textio.c - plain or compressed text through libarchive. */
#include "base/textio.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#include <archive.h>
#include <archive_entry.h>

#include "base/util.h"

static void append(char **buf, size_t *len, size_t *cap, const void *p, size_t n)
{
    GROW(*buf, *cap, *len + n + 1, 1 << 16);
    memcpy(*buf + *len, p, n);
    *len += n;
}

/* Text may expand this much over its file: real text compresses 3 to 10 times, a
 * compression bomb a million times. */
#define MAX_EXPANSION 256
#define MAX_EXPANSION_BASE ((size_t)1 << 20)

char *read_text_file(const char *path, size_t *len)
{
    struct stat st;
    bool is_stdin = strcmp(path, "-") == 0;
    size_t limit = SIZE_MAX;
    if ((is_stdin ? fstat(0, &st) : stat(path, &st)) == 0 && S_ISREG(st.st_mode) &&
        (uint64_t)st.st_size < (SIZE_MAX - MAX_EXPANSION_BASE) / MAX_EXPANSION)
        limit = MAX_EXPANSION_BASE + MAX_EXPANSION * (size_t)st.st_size;
    struct archive *a = archive_read_new();
    archive_read_support_filter_all(a);
    archive_read_support_format_tar(a);
    archive_read_support_format_zip(a);
    archive_read_support_format_raw(a);
    int rc = is_stdin ? archive_read_open_FILE(a, stdin) : archive_read_open_filename(a, path, 1 << 16);
    if (rc != ARCHIVE_OK)
        die("cannot read '%s': %s", path, archive_error_string(a));
    char *buf = NULL;
    size_t n = 0, cap = 0;
    struct archive_entry *e;
    char chunk[1 << 16];
    while ((rc = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
        if (archive_format(a) != ARCHIVE_FORMAT_RAW && archive_entry_filetype(e) != AE_IFREG)
            continue;
        la_ssize_t got;
        while ((got = archive_read_data(a, chunk, sizeof chunk)) > 0) {
            if ((size_t)got > limit - n)
                die("cannot read '%s': it expands to more than %zu bytes (1 MiB and %d times its size)", path, limit,
                    MAX_EXPANSION);
            append(&buf, &n, &cap, chunk, (size_t)got);
        }
        if (got < 0)
            die("cannot read '%s': %s", path, archive_error_string(a));
    }
    if (rc != ARCHIVE_EOF)
        die("cannot read '%s': %s", path, archive_error_string(a));
    archive_read_free(a);
    if (!buf)
        buf = xcalloc(1, 1);
    buf[n] = 0;
    *len = n;
    return buf;
}
