/* hf_json_write.h - hf-json's bytes (hf_json.h: tokenizer.json, a NUL,
 * tokenizer_config.json) written from what a GGUF "gpt2" tokenizer holds, so
 * that a GGUF file pare or llama.cpp's convert_hf_to_gguf.py wrote reads back
 * to the tokenizer it was written from: the tokens (normal ones into
 * model.vocab; control ones as special added tokens, user-defined ones as other
 * added tokens; unused ones, llama.cpp's [PADn], left out), the merges in rank
 * order, and the pre-tokenizer by llama.cpp's name (hf_pre_regex: its Split
 * regex, Qwen2's NFC, Llama 3's ignore_merges), a ByteLevel decoder, and a
 * TemplateProcessing post-processor putting BOS first when add_bos; BOS and EOS
 * go to tokenizer_config.json. */
#ifndef PARE_HF_JSON_WRITE_H
#define PARE_HF_JSON_WRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    int n; // token ids 0 .. n-1
    const char *const *token; // (n) as GGUF holds them ("Ġthe", "<|begin_of_text|>")
    const size_t *len; // (n)
    const int32_t *type; // (n) GGUF token types: 1 normal, 3 control, 4 user-defined, 5 unused
    int n_merges;
    const char *const *merge; // (n_merges) "left right"
    const size_t *merge_len; // (n_merges)
    const char *pre; // tokenizer.ggml.pre
    int bos, eos; // -1: none
    bool add_bos;
} hf_vocab;

/* The bytes (malloc'd, *n set), or NULL with what is wrong in err (a token type
 * or pre-tokenizer it cannot write, a token that is not UTF-8 or repeats another). */
uint8_t *hf_json_from_vocab(const hf_vocab *v, size_t *n, char *err, size_t err_size);

#endif
