/* normalize.c - Unicode normalization forms through utf8proc (normalize.h). */
#include "text/normalize.h"

#include "base/util.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

const char *const unicode_form_names[4] = {"NFC", "NFD", "NFKC", "NFKD"};

char *unicode_normalize(enum unicode_form form, const char *s, size_t n, size_t *out_n)
{
    static const utf8proc_option_t options[4] = {
        UTF8PROC_STABLE | UTF8PROC_COMPOSE,
        UTF8PROC_STABLE | UTF8PROC_DECOMPOSE,
        UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT,
        UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT,
    };
    // All-ASCII text is in every form already.
    size_t i = 0;
    while (i < n && (unsigned char)s[i] < 0x80)
        i++;
    if (i == n) {
        char *o = xmalloc(n + 1);
        memcpy(o, s, n);
        o[n] = 0;
        *out_n = n;
        return o;
    }
    utf8proc_uint8_t *out = NULL;
    utf8proc_ssize_t r = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &out, options[form]);
    if (r < 0) {
        if (r == UTF8PROC_ERROR_NOMEM)
            die("out of memory");
        die("unicode_normalize: %s", utf8proc_errmsg(r)); // the caller passes well-formed UTF-8
    }
    *out_n = (size_t)r;
    return (char *)out;
}
