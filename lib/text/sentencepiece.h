/* sentencepiece.h - SentencePiece's tokenizer.model (a protobuf ModelProto) as a
 * kind of tokenizer (tokenizer_kind.h), BPE and unigram models, giving exactly
 * the ids of SentencePiece 0.1.9x; and ChatGLM's two forms around it
 * (tokenizer.h: the formats chatglm and chatglm2). */
#ifndef PARE_SENTENCEPIECE_H
#define PARE_SENTENCEPIECE_H

#include "base/util.h"
#include "text/tokenizer_kind.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The formats sentencepiece, chatglm and chatglm2. */
extern const tokenizer_kind sentencepiece_kinds[3];

/* Whether data is a whole ModelProto: pieces, and a TrainerSpec after them. */
bool sentencepiece_sniff(const uint8_t *data, size_t n);

/* A BPE ModelProto written (what GGUF's tokenizer.ggml.* arrays hold): every
 * piece in id order (types as tokenizer_piece_type's), then the specs: the
 * TrainerSpec (BPE, byte_fallback, the pieces BOS and EOS are, NULL for the
 * defaults) and a NormalizerSpec without charsmap or extra-whitespace removal. */
void sentencepiece_put_piece(bytes *model, const char *s, size_t n, float score, int type);
void sentencepiece_put_bpe_specs(bytes *model, bool byte_fallback, const char *bos, size_t bos_len, const char *eos,
                                 size_t eos_len, bool add_dummy_prefix);

#endif
