/* test_utf8.c - lib/utf8 against the definition of well-formed UTF-8 written here
 * the other way round: decode by the bit layout alone (0xxxxxxx, 110xxxxx 10xxxxxx,
 * ...), then accept only the shortest form of a scalar value (not a surrogate, at
 * most U+10FFFF). Every 1-, 2- and 3-byte string, and every 4-byte string with
 * the last two bytes drawn from a set that covers each class, must agree; then
 * utf8_invalid_at and utf8_replace_invalid on strings made of those pieces; every
 * scalar value encoded, checked by the definition's decoding, and decoded back. */
#include <stdbool.h>
#include <string.h>

#include "base/rng.h"
#include "base/utf8.h"
#include "base/util.h"
#include "check.h"

/* Length of the well-formed character at s[0..n) by the definition, 0 if none. */
static size_t def_len(const unsigned char *s, size_t n)
{
    if (n == 0)
        return 0;
    size_t len = s[0] < 0x80 ? 1 : (s[0] & 0xE0) == 0xC0 ? 2 : (s[0] & 0xF0) == 0xE0 ? 3 : (s[0] & 0xF8) == 0xF0 ? 4 : 0;
    if (len == 0 || len > n)
        return 0;
    unsigned long cp = len == 1 ? s[0] : s[0] & (0x7F >> len);
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[k] & 0x3F);
    }
    static const unsigned long min[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

static void test_every_short_string(void)
{
    int wrong = 0;
    unsigned char s[4];
    for (unsigned a = 0; a < 256; a++) {
        s[0] = (unsigned char)a;
        wrong += utf8_char_len((char *)s, 1) != def_len(s, 1);
        for (unsigned b = 0; b < 256; b++) {
            s[1] = (unsigned char)b;
            wrong += utf8_char_len((char *)s, 2) != def_len(s, 2);
            for (unsigned c = 0; c < 256; c++) {
                s[2] = (unsigned char)c;
                wrong += utf8_char_len((char *)s, 3) != def_len(s, 3);
            }
        }
    }
    /* 4 bytes: every lead and second byte, the last two from each class */
    static const unsigned char tail[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC2, 0xF4, 0xFF};
    for (unsigned a = 0; a < 256; a++)
        for (unsigned b = 0; b < 256; b++)
            for (size_t i = 0; i < sizeof tail; i++)
                for (size_t j = 0; j < sizeof tail; j++) {
                    s[0] = (unsigned char)a, s[1] = (unsigned char)b, s[2] = tail[i], s[3] = tail[j];
                    wrong += utf8_char_len((char *)s, 4) != def_len(s, 4);
                }
    CHECK(wrong == 0);
    CHECK(utf8_char_len("", 0) == 0);
    CHECK(utf8_char_len("\0", 1) == 1); /* U+0000 is well-formed */
}

static void test_strings(void)
{
    CHECK(utf8_invalid_at("ok\xC3\xA9 \xF0\x9F\x98\x80", 9) == -1);
    CHECK(utf8_invalid_at("a\0b", 3) == -1);
    CHECK(utf8_invalid_at("ok\xE9 latin-1", 11) == 2);
    CHECK(utf8_invalid_at("\xF4\x90\x80\x80", 4) == 0); /* U+110000 */
    CHECK(utf8_invalid_at("ab\xF0\x9F\x98", 5) == 2);   /* cut short */
    char *r = utf8_replace_invalid("a\xC0\x80z\0\xE2\x82\xAC", 8);
    CHECK(!strcmp(r, "a\xEF\xBF\xBD\xEF\xBF\xBDz\xEF\xBF\xBD\xE2\x82\xAC")); /* one U+FFFD per bad byte, NUL too */
    free(r);
    /* whatever goes in, what comes out is well-formed and has no NUL */
    uint64_t x = 99;
    int bad = 0;
    for (int trial = 0; trial < 2000; trial++) {
        char in[24];
        for (int i = 0; i < 24; i++)
            in[i] = (char)(rng_next(&x) >> 56);
        char *o = utf8_replace_invalid(in, sizeof in);
        bad += utf8_invalid_at(o, strlen(o)) != -1;
        free(o);
    }
    CHECK(bad == 0);
}

/* Maximal subparts by their definition: the longest start of s that begins
 * some well-formed sequence. Strings of up to 4 bytes drawn from bytes that
 * stand for every class of table 3-7 (each edge of each range); a start is a
 * "beginning" when some well-formed string over the same bytes has it as a prefix. */
static const unsigned char edge[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2,
                                     0xDF, 0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF};
#define N_EDGE (sizeof edge)
#define N_STRINGS (N_EDGE * N_EDGE * N_EDGE * N_EDGE)

static size_t str_index(const unsigned char *digit, size_t len) // digits in edge[] -> slot
{
    size_t k = 0;
    for (size_t i = 0; i < len; i++)
        k = k * N_EDGE + digit[i];
    return k;
}

static void test_maximal_subparts(void)
{
    static bool begins[5][N_STRINGS]; // [len][index]: some well-formed string starts so
    unsigned char d[4], s[4];
    for (size_t len = 1, count = N_EDGE; len <= 4; len++, count *= N_EDGE)
        for (size_t k = 0; k < count; k++) {
            size_t r = k;
            for (size_t i = len; i-- > 0; r /= N_EDGE) {
                d[i] = (unsigned char)(r % N_EDGE);
                s[i] = edge[d[i]];
            }
            if (def_len(s, len) == len)
                for (size_t p = 1; p <= len; p++)
                    begins[p][str_index(d, p)] = true;
        }
    int wrong = 0;
    for (size_t len = 1; len <= 4; len++) {
        size_t count = 1;
        for (size_t i = 0; i < len; i++)
            count *= N_EDGE;
        for (size_t k = 0; k < count; k++) {
            size_t r = k;
            for (size_t i = len; i-- > 0; r /= N_EDGE) {
                d[i] = (unsigned char)(r % N_EDGE);
                s[i] = edge[d[i]];
            }
            size_t want = def_len(s, len), p;
            bool want_ok = want > 0;
            if (!want_ok)
                for (want = 1, p = 2; p <= len; p++)
                    if (begins[p][str_index(d, p)])
                        want = p;
            bool ok;
            size_t got = utf8_subpart_len((const char *)s, len, &ok);
            if (got != want || ok != want_ok) {
                if (wrong++ < 5)
                    fprintf(stderr, "    %zu bytes %02x %02x %02x %02x: subpart %zu (%d), want %zu (%d)\n", len,
                            s[0], len > 1 ? s[1] : 0, len > 2 ? s[2] : 0, len > 3 ? s[3] : 0, got, ok, want, want_ok);
            }
        }
    }
    CHECK(wrong == 0);
    bool ok;
    CHECK(utf8_subpart_len("", 0, &ok) == 0 && !ok);
    CHECK(utf8_subpart_len("\xE2\x82", 2, &ok) == 2 && !ok);             /* cut short: one subpart */
    CHECK(utf8_subpart_len("\xED\xA0\x80", 3, &ok) == 1 && !ok);         /* a surrogate: three */
    CHECK(utf8_subpart_len("\xF0\x9F\x98\x80", 4, &ok) == 4 && ok);
}

/* Every scalar value: utf8_encode gives the one well-formed form the definition
 * decodes to it, utf8_decode gives it back; utf8_chars counts characters. */
static void test_code_points(void)
{
    int wrong = 0;
    for (unsigned cp = 0; cp <= 0x10FFFF; cp++) {
        if (cp >= 0xD800 && cp <= 0xDFFF)
            continue;
        unsigned char s[4];
        size_t n = utf8_encode(cp, (char *)s), back_len;
        unsigned long def_cp = n == 1 ? s[0] : s[0] & (0x7F >> n);
        for (size_t k = 1; k < n; k++)
            def_cp = def_cp << 6 | (s[k] & 0x3F);
        wrong += def_len(s, n) != n || def_cp != cp || utf8_decode((char *)s, &back_len) != cp || back_len != n;
    }
    CHECK(wrong == 0);
    CHECK(utf8_chars("caf\xC3\xA9 \xF0\x9F\x98\x80") == 6);
    CHECK(utf8_chars("") == 0);
}

int main(void)
{
    TEST(test_every_short_string);
    TEST(test_strings);
    TEST(test_maximal_subparts);
    TEST(test_code_points);
    return check_report();
}
