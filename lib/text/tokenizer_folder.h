/* tokenizer_folder.h - which tokenizer a Hugging Face model folder holds, in
 * which files, and writing it back: the one place that knows the file names.
 * Formats as in tokenizer.h. */
#ifndef PARE_TOKENIZER_FOLDER_H
#define PARE_TOKENIZER_FOLDER_H

#include <stddef.h>
#include <stdint.h>

/* The tokenizer of a Hugging Face model folder: with a tokenizer_config.json
 * naming ChatGLMTokenizer, ice_text.model ("chatglm") or else tokenizer.model
 * ("chatglm2"); otherwise tokenizer.model ("sentencepiece", or "llama2c" when
 * it is a tok.bin), else tokenizer.json ("hf-json", followed by a NUL and
 * tokenizer_config.json when the folder has one: hf_json.h). Returns the
 * format and the file's bytes in *data (malloc'd), or NULL when there is none.
 * Dies on an unreadable tokenizer_config.json or a missing ChatGLM model. */
const char *tokenizer_read_folder(const char *dir, uint8_t **data, size_t *n);
/* Writes into dir the files tokenizer_read_folder finds the same tokenizer in. */
void tokenizer_write_folder(const char *dir, const char *format, const uint8_t *data, size_t n);

#endif
