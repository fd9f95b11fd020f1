/* byte_level.c - GPT-2's byte-level alphabet (byte_level.h). */
#include "text/byte_level.h"

#include "base/utf8.h"

#include <pthread.h>

/* Whether byte b is printable as Latin-1 and so shows as itself. */
static bool shows_as_itself(unsigned b)
{
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

uint32_t byte_level_char(uint8_t b)
{
    if (shows_as_itself(b))
        return b;
    uint32_t k = 0; // how many bytes below b do not show as themselves
    for (unsigned x = 0; x < b; x++)
        k += !shows_as_itself(x);
    return 256 + k;
}

int byte_level_byte(uint32_t c)
{
    if (c < 256)
        return shows_as_itself(c) ? (int)c : -1;
    uint32_t k = c - 256;
    for (unsigned x = 0; x < 256; x++)
        if (!shows_as_itself(x) && k-- == 0)
            return (int)x;
    return -1;
}

/* The byte each character U+0000..U+0143 shows (-1 for none), and the
 * character each byte shows; filled once. */
static int16_t byte_of[256 + 68];
static uint16_t char_of[256];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static void fill_tables(void)
{
    for (uint32_t c = 0; c < 256 + 68; c++)
        byte_of[c] = (int16_t)byte_level_byte(c);
    for (unsigned b = 0; b < 256; b++)
        char_of[b] = (uint16_t)byte_level_char((uint8_t)b);
}

bool byte_level_decode(const char *s, size_t n, uint8_t *out, size_t *out_n)
{
    pthread_once(&tables_once, fill_tables);
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        const unsigned char *u = (const unsigned char *)s + i;
        uint32_t c;
        if (u[0] < 0x80) {
            c = u[0];
            i++;
        } else if ((u[0] & 0xE0) == 0xC0 && utf8_char_len(s + i, n - i) == 2) {
            c = (uint32_t)(u[0] & 0x1F) << 6 | (u[1] & 0x3F);
            i += 2;
        } else {
            return false; // 3- and 4-byte characters, and bad bytes, are not in the alphabet
        }
        if (c >= 256 + 68 || byte_of[c] < 0)
            return false;
        out[o++] = (uint8_t)byte_of[c];
    }
    *out_n = o;
    return true;
}

size_t byte_level_encode(const uint8_t *s, size_t n, char *out)
{
    pthread_once(&tables_once, fill_tables);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = char_of[s[i]];
        if (c < 0x80) {
            out[o++] = (char)c;
        } else {
            out[o++] = (char)(0xC0 | c >> 6);
            out[o++] = (char)(0x80 | (c & 0x3F));
        }
    }
    return o;
}
