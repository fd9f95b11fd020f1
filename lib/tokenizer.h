/* tokenizer.h - SentencePiece-style BPE tokenizers: the protobuf tokenizer.model
 * (Llama, Llama-2) and llama2.c's tok*.bin. Both encode the way SentencePiece's
 * BPE does: dummy-prefix space, spaces as U+2581, merge the best-scoring adjacent
 * pair first (leftmost on ties), unknown characters as <0xNN> byte tokens. */
#ifndef PARE_TOKENIZER_H
#define PARE_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tokenizer tokenizer;

/* Load from a file (format detected: protobuf ModelProto or llama2.c tok.bin).
 * Dies naming the file when it is neither. */
tokenizer *tokenizer_load_file(const char *path);
/* Load from bytes held in a checkpoint; format "sentencepiece" or "llama2c". */
tokenizer *tokenizer_load_blob(const char *format, const uint8_t *data, size_t n, const char *source);
/* Format name of the bytes in a file ("sentencepiece" or "llama2c"), NULL if neither. */
const char *tokenizer_sniff(const uint8_t *data, size_t n);
void tokenizer_free(tokenizer *t);

int tokenizer_vocab_size(const tokenizer *t);
int tokenizer_bos(const tokenizer *t);
int tokenizer_eos(const tokenizer *t);

/* Encode len bytes of text (any bytes; invalid UTF-8 handled as SentencePiece does).
 * Returns the number of ids; *ids is malloc'd (caller frees). bos: put BOS first.
 * dummy_prefix: add the leading space SentencePiece adds (true for normal use). */
size_t tokenizer_encode(const tokenizer *t, const char *text, size_t len, bool bos, int **ids);

/* The bytes of one token as text (byte tokens give their byte, U+2581 gives a
 * space). Valid until the tokenizer is freed; *len set. */
const char *tokenizer_piece(const tokenizer *t, int id, size_t *len);

#endif
