/* sentencepiece.h - SentencePiece's tokenizer.model (a protobuf ModelProto) as a
 * kind of tokenizer (tokenizer_kind.h), BPE and unigram models, giving exactly
 * the ids of SentencePiece 0.1.9x; and ChatGLM's two forms around it
 * (tokenizer.h: the formats chatglm and chatglm2). */
#ifndef PARE_SENTENCEPIECE_H
#define PARE_SENTENCEPIECE_H

#include "text/tokenizer_kind.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The formats sentencepiece, chatglm and chatglm2. */
extern const tokenizer_kind sentencepiece_kinds[3];

/* Whether data is a whole ModelProto: pieces, and a TrainerSpec after them. */
bool sentencepiece_sniff(const uint8_t *data, size_t n);

#endif
