/* utf8.c - well-formed UTF-8 (utf8.h). */
#include "base/utf8.h"

#include <string.h>

#include "base/util.h"

size_t utf8_subpart_len(const char *str, size_t n, bool *ok)
{
    const unsigned char *s = (const unsigned char *)str;
    *ok = false;
    if (n == 0)
        return 0;
    unsigned c = s[0], lo = 0x80, hi = 0xBF; /* the second byte's range (table 3-7) */
    size_t len;
    if (c < 0x80) {
        *ok = true;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        lo = c == 0xE0 ? 0xA0 : lo; /* not overlong */
        hi = c == 0xED ? 0x9F : hi; /* not a surrogate */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        lo = c == 0xF0 ? 0x90 : lo; /* not overlong */
        hi = c == 0xF4 ? 0x8F : hi; /* not above U+10FFFF */
    } else {
        return 1;
    }
    if (n < 2 || s[1] < lo || s[1] > hi)
        return 1;
    size_t k = 2;
    while (k < len && k < n && (s[k] & 0xC0) == 0x80)
        k++;
    *ok = k == len;
    return k;
}

size_t utf8_char_len(const char *str, size_t n)
{
    bool ok;
    size_t len = utf8_subpart_len(str, n, &ok);
    return ok ? len : 0;
}

long utf8_invalid_at(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t len = utf8_char_len(s + i, n - i);
        if (!len)
            return (long)i;
        i += len;
    }
    return -1;
}

char *utf8_replace_invalid(const char *s, size_t n)
{
    char *out = xmalloc(3 * n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t len = utf8_char_len(s + i, n - i);
        if (len && s[i] != 0) {
            memcpy(out + o, s + i, len);
            o += len;
            i += len;
        } else {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    out[o] = 0;
    return out;
}

unsigned utf8_decode(const char *str, size_t *len)
{
    const unsigned char *s = (const unsigned char *)str;
    if (s[0] < 0x80) {
        *len = 1;
        return s[0];
    }
    if (s[0] < 0xE0) {
        *len = 2;
        return (unsigned)(s[0] & 0x1F) << 6 | (s[1] & 0x3F);
    }
    if (s[0] < 0xF0) {
        *len = 3;
        return (unsigned)(s[0] & 0x0F) << 12 | (unsigned)(s[1] & 0x3F) << 6 | (s[2] & 0x3F);
    }
    *len = 4;
    return (unsigned)(s[0] & 0x07) << 18 | (unsigned)(s[1] & 0x3F) << 12 | (unsigned)(s[2] & 0x3F) << 6 |
           (s[3] & 0x3F);
}

size_t utf8_encode(unsigned cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += !utf8_is_continuation((unsigned char)*s);
    return n;
}
