/* textio.c - plain or compressed text through libarchive. */
#include "textio.h"

#include <string.h>

#include <archive.h>
#include <archive_entry.h>

#include "util.h"

static void append(char **buf, size_t *len, size_t *cap, const void *p, size_t n)
{
    if (*len + n + 1 > *cap) {
        while (*len + n + 1 > *cap)
            *cap = *cap ? 2 * *cap : 1 << 16;
        *buf = xrealloc(*buf, *cap);
    }
    memcpy(*buf + *len, p, n);
    *len += n;
}

char *read_text_file(const char *path, size_t *len)
{
    struct archive *a = archive_read_new();
    archive_read_support_filter_all(a);
    archive_read_support_format_tar(a);
    archive_read_support_format_zip(a);
    archive_read_support_format_raw(a);
    int rc = strcmp(path, "-") == 0 ? archive_read_open_FILE(a, stdin) : archive_read_open_filename(a, path, 1 << 16);
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
        while ((got = archive_read_data(a, chunk, sizeof chunk)) > 0)
            append(&buf, &n, &cap, chunk, (size_t)got);
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
