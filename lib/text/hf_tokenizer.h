/* hf_tokenizer.h - Hugging Face tokenizer.json, byte-level BPE (Llama 3,
 * Qwen2/2.5/3, GPT-2 and their kin), giving the ids the tokenizers library
 * gives (encode with or without add_special_tokens):
 *
 *   1. added tokens (added_tokens.h) are found in the text as it is, then in
 *      each text piece between them after normalization (normalized tokens);
 *   2. the normalizer: null, NFC, NFD, NFKC, NFKD, or a Sequence of them;
 *   3. the pre-tokenizer: Split steps (split.h) then ByteLevel (optionally with
 *      GPT-2's own regex and a prefix space), or a Sequence of them;
 *   4. the model: BPE (bpe.h) over the bytes of each pre-token, ignore_merges,
 *      unk_token/fuse_unk, merges as "a b" strings or ["a", "b"] pairs;
 *   5. with add_special_tokens, the post-processor: TemplateProcessing's single
 *      template (what comes before and after the text), ByteLevel (ids
 *      unchanged), or a Sequence of them.
 * A text that is not well-formed UTF-8 is first made so: each maximal ill-formed
 * subpart becomes U+FFFD (as Python's errors="replace" and JavaScript's
 * TextDecoder read bytes into the strings the library takes).
 *
 * tokenizer_config.json, when given, names bos_token and eos_token (a string
 * or {"content": ...}); the post-processor alone decides what encoding puts
 * first. Anything else is refused by name: "FILE: KEY: what is wrong". */
#ifndef PARE_HF_TOKENIZER_H
#define PARE_HF_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct hf_tokenizer hf_tokenizer;

/* From tokenizer.json's bytes, and tokenizer_config.json's (NULL, 0 when there
 * is none); source names the file in messages. Dies on what it cannot read. */
hf_tokenizer *hf_tokenizer_load(const uint8_t *json, size_t n, const uint8_t *config, size_t config_n,
                                const char *source);
void hf_tokenizer_free(hf_tokenizer *h);

/* One past the largest id of the vocabulary and the added tokens. */
int hf_vocab_size(const hf_tokenizer *h);
/* The first token the post-processor puts before a text (-1: none);
 * tokenizer_config.json's eos_token (-1: none named); the model's unk_token. */
int hf_bos(const hf_tokenizer *h);
int hf_eos(const hf_tokenizer *h);
int hf_unk(const hf_tokenizer *h);
/* What the post-processor puts before and after a text (ids valid while h lives). */
int hf_prefix(const hf_tokenizer *h, const int **ids);
int hf_suffix(const hf_tokenizer *h, const int **ids);

/* The ids of text[0..len) (any bytes); with special, the post-processor's
 * tokens around them. *ids malloc'd, never NULL. */
size_t hf_encode(const hf_tokenizer *h, const char *text, size_t len, bool special, int **ids);

/* A token's bytes as the ByteLevel decoder gives them ("Ġthe" -> " the");
 * special added tokens give nothing (decode's skip_special_tokens); an id
 * with no token gives nothing. Valid while h lives. */
const char *hf_piece(const hf_tokenizer *h, int id, size_t *len);
/* The token as the file writes it ("Ġthe", "<|begin_of_text|>"); "" for none. */
const char *hf_piece_raw(const hf_tokenizer *h, int id, size_t *len);
/* GGUF's token type, as llama.cpp's convert_hf_to_gguf.py gives it: 1 normal,
 * 3 control (a special added token, or one written <|...|>), 4 user-defined
 * (another added token), 5 unused (an id no token has). */
int hf_piece_type(const hf_tokenizer *h, int id);
/* The id of the token written exactly so (vocabulary or added), -1 if none. */
int hf_piece_id(const hf_tokenizer *h, const char *s, size_t len);

/* The merges in rank order, each as "left right" in the file's characters. */
int hf_merge_count(const hf_tokenizer *h);
const char *hf_merge(const hf_tokenizer *h, int i, size_t *len);

/* The name llama.cpp gives the pre-tokenizer (tokenizer.ggml.pre): "llama-bpe"
 * for Llama 3's Split regex, "qwen2" for Qwen2's; NULL for any other. */
const char *hf_pre_name(const hf_tokenizer *h);
/* The other way: the Split regex of a tokenizer.json whose pre-tokenizer
 * llama.cpp names so, with what else such a file has (Qwen2's NFC normalizer,
 * Llama 3's ignore_merges); NULL for a name not above. */
const char *hf_pre_regex(const char *name, bool *nfc, bool *ignore_merges);

#endif
