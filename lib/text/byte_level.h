/* byte_level.h - GPT-2's byte-level alphabet, as Hugging Face tokenizers' ByteLevel
 * pre-tokenizer and decoder use it: each of the 256 bytes is shown as one
 * printable character. The bytes that are printable as Latin-1 ('!'..'~',
 * U+00A1..U+00AC, U+00AE..U+00FF) show as themselves; the other 68 (controls,
 * space, DEL, U+0080..U+00A0, U+00AD) show as U+0100, U+0101, ... in byte order,
 * so space is U+0120 'Ġ' and '\n' U+010A 'Ċ'. A byte-level BPE's vocabulary
 * and merges are written in these characters. */
#ifndef PARE_BYTE_LEVEL_H
#define PARE_BYTE_LEVEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The code point that shows byte b. */
uint32_t byte_level_char(uint8_t b);
/* The byte code point c shows, -1 when c is not in the alphabet. */
int byte_level_byte(uint32_t c);

/* The bytes a token written in the alphabet stands for, into out (room for n
 * bytes: never longer than s). True when every character of s[0..n) is in the
 * alphabet; false otherwise, with out untouched (the ByteLevel decoder then
 * gives the token's own bytes). */
bool byte_level_decode(const char *s, size_t n, uint8_t *out, size_t *out_n);
/* s[0..n) written in the alphabet: up to 2 bytes a byte; out has room for 2n. */
size_t byte_level_encode(const uint8_t *s, size_t n, char *out);

#endif
