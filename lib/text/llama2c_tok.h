/* llama2c_tok.h - llama2.c's tok*.bin as a kind of tokenizer (tokenizer_kind.h):
 * the ids of llama2.c's run.c encode().
 *
 * The file: int32 max_token_length, then (float score, int32 length, bytes)
 * for each token. Id 0 is <unk>, 1 and 2 <s> and </s>, 3 to 258 the bytes. */
#ifndef PARE_LLAMA2C_TOK_H
#define PARE_LLAMA2C_TOK_H

#include "text/tokenizer_kind.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

extern const tokenizer_kind llama2c_kind;

/* Whether data is exactly a tok.bin: its records fill it. */
bool llama2c_tok_sniff(const uint8_t *data, size_t n);

#endif
