/* hf_json.h - Hugging Face tokenizer.json (byte-level BPE: Llama 3, Qwen2/2.5/3)
 * as a kind of tokenizer (tokenizer_kind.h), format "hf-json".
 *
 * The bytes: tokenizer.json, then, when the model folder has one, a NUL byte and
 * tokenizer_config.json (JSON holds no raw NUL, so the cut is unambiguous): the
 * config names the EOS token (eos_token), which tokenizer.json does not. The
 * encoder is hf_tokenizer.h's; BOS is what its post-processor puts first (Llama
 * 3's <|begin_of_text|>; Qwen none). Pieces decode as the ByteLevel decoder
 * gives them; special tokens decode to nothing. */
#ifndef PARE_HF_JSON_H
#define PARE_HF_JSON_H

#include "text/tokenizer_kind.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

extern const tokenizer_kind hf_json_kind;

/* Whether data looks like a JSON object (its first byte past white space is '{'). */
bool hf_json_sniff(const uint8_t *data, size_t n);

/* The length of the tokenizer.json part of the bytes, and where the
 * tokenizer_config.json part starts (NULL, *config_n 0 when there is none). */
size_t hf_json_parts(const uint8_t *data, size_t n, const uint8_t **config, size_t *config_n);

#endif
