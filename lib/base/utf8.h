/* utf8.h - the one rule pare holds UTF-8 to: well-formed as the Unicode Standard
 * defines it (chapter 3, table 3-7; RFC 3629): no overlong forms, no surrogates
 * (U+D800..U+DFFF), nothing above U+10FFFF, no sequence cut short. U+0000 (a NUL
 * byte) is well-formed UTF-8; where a NUL cannot go (a C string, a text file that
 * is really UTF-16) the caller says so. The tokenizer (SentencePiece's DecodeUTF8),
 * the task readers and the JSON writers all use this rule. */
#ifndef PARE_UTF8_H
#define PARE_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Length (1 to 4) of the well-formed character at the start of s[0..n), or 0 if
 * none starts there (or n is 0). */
size_t utf8_char_len(const char *s, size_t n);

/* Offset of the first byte of s[0..n) that does not start a well-formed
 * character, or -1 if s is well-formed throughout. */
long utf8_invalid_at(const char *s, size_t n);

/* A copy of s[0..n) in which each byte that does not start a well-formed
 * character, and each NUL, is replaced by U+FFFD (one per byte);
 * NUL-terminated, malloc'd. */
char *utf8_replace_invalid(const char *s, size_t n);

/* Length of the maximal subpart at the start of s[0..n) (Unicode chapter 3,
 * "U+FFFD Substitution of Maximal Subparts"): the well-formed character there,
 * or else the longest start of one that s holds before it goes wrong, at least
 * one byte. *ok says which. Python's bytes.decode(errors="replace") and the
 * WHATWG TextDecoder replace each ill-formed subpart by one U+FFFD. 0 when n is 0. */
size_t utf8_subpart_len(const char *s, size_t n, bool *ok);

/* Whether byte c continues a character (10xxxxxx). */
static inline int utf8_is_continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

/* The code point of the well-formed character at s, and its length in *len. */
unsigned utf8_decode(const char *s, size_t *len);
/* Code point cp (at most U+10FFFF) written as UTF-8 to out; its length (1 to 4). */
size_t utf8_encode(unsigned cp, char *out);
/* The characters of a well-formed NUL-terminated string. */
size_t utf8_chars(const char *s);

#endif
