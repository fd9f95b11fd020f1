/* tokenizer.h - tokenizers: SentencePiece's protobuf tokenizer.model (Llama,
 * Llama-2, ChatGLM's), llama2.c's tok*.bin, and Hugging Face's tokenizer.json
 * with a byte-level BPE (Llama 3, Qwen2/2.5/3).
 *
 * A SentencePiece model gives exactly the ids of SentencePiece 0.1.9x for any
 * bytes, BPE models (bpe_model.cc: merge the best-scoring adjacent pair first,
 * leftmost on ties) and unigram models (unigram.h: the best-scoring cut),
 * honouring the NormalizerSpec in the file (precompiled charsmap,
 * add_dummy_prefix, remove_extra_whitespaces, escape_whitespaces), user-defined,
 * unused and byte pieces, byte fallback and <unk>. tok*.bin gives the ids of
 * llama2.c's run.c encode(). A tokenizer.json gives the ids of Hugging Face's
 * tokenizers library (hf_tokenizer.h). Encoding is O(n log n).
 *
 * (tokenizer_folder.h finds the tokenizer of a model folder.)
 *
 * Formats (tokenizer_format, a checkpoint's tokenizer record):
 *   sentencepiece  a ModelProto as it is
 *   llama2c        a llama2.c tok*.bin
 *   chatglm        ChatGLM-6B's ice_text.model: "\n", "\t" and runs of spaces
 *                  become <n>, <|tab|>, <|blank_N|> before encoding and again
 *                  text in tokenizer_piece (chatglm_text.h); BOS is <sop>, EOS
 *                  <eop>, [gMASK] and the others are pieces of the model, and
 *                  they and <pad> decode to nothing
 *   chatglm2       ChatGLM2/3-6B's tokenizer.model, with [MASK] [gMASK] [sMASK]
 *                  sop eop appended as control pieces after the model's; BOS is
 *                  sop, EOS the model's </s>
 *   hf-json        a tokenizer.json, then a NUL and tokenizer_config.json when
 *                  the folder has one (hf_json.h); BOS is what its
 *                  post-processor puts first (Llama 3's <|begin_of_text|>, Qwen
 *                  none), EOS the config's eos_token; special tokens decode to
 *                  nothing
 * In both ChatGLM formats encoding with bos puts [gMASK] <sop> first: the
 * prompt ends there and the text is what follows it. Special tokens written in
 * a text are text in the SentencePiece formats (as SentencePiece treats <s>),
 * and those tokens in hf-json (as the tokenizers library finds added tokens). */
#ifndef PARE_TOKENIZER_H
#define PARE_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tokenizer tokenizer;

/* Load from a file (format detected: protobuf ModelProto, llama2.c tok.bin or
 * a JSON object, read as tokenizer.json) or a model folder (tokenizer_folder.h). Dies naming the file when it is
 * neither, or when it is corrupt. */
tokenizer *tokenizer_load_file(const char *path);
/* Load from bytes held in a checkpoint; format one of the formats above.
 * The bytes are copied; source names them in messages. */
tokenizer *tokenizer_load_blob(const char *format, const uint8_t *data, size_t n, const char *source);
/* Format name of the bytes in a file ("sentencepiece" or "llama2c"), NULL if neither. */
const char *tokenizer_sniff(const uint8_t *data, size_t n);
void tokenizer_free(tokenizer *t);

/* The format (above), and the bytes the tokenizer was loaded from (what a
 * checkpoint's tokenizer record holds). */
const char *tokenizer_format(const tokenizer *t);
const uint8_t *tokenizer_data(const tokenizer *t, size_t *n);

int tokenizer_vocab_size(const tokenizer *t);
/* Ids of BOS, EOS (ChatGLM: see above) and <unk>; -1 where the model has none. */
int tokenizer_bos(const tokenizer *t);
int tokenizer_eos(const tokenizer *t);
int tokenizer_unk(const tokenizer *t);

/* Encode len bytes of text (any bytes; invalid UTF-8 handled as SentencePiece does:
 * each bad byte is one U+FFFD). The leading dummy-prefix space is added when the
 * model says so (always for tok.bin) and the text is not empty.
 * Returns the number of ids; *ids is malloc'd (caller frees; never NULL).
 * bos: put the prefix first (tokenizer_prefix). */
size_t tokenizer_encode(const tokenizer *t, const char *text, size_t len, bool bos, int **ids);
/* What encoding with bos puts first: BOS (none when the model has none), or
 * ChatGLM's [gMASK] <sop>. Returns the count; *ids valid while t lives. A
 * ChatGLM-6B prompt with a context is: context ids, then these, then the
 * continuation's ids. */
int tokenizer_prefix(const tokenizer *t, const int **ids);
/* A prompt the model generates after, as its own tokenizer gives it: with the
 * prefix first, except for ChatGLM-6B (text, then [gMASK] <sop>, as
 * transformers' ChatGLMTokenizer builds its inputs). Like tokenizer_encode. */
size_t tokenizer_encode_prompt(const tokenizer *t, const char *text, size_t len, int **ids);

/* The bytes of one token as text, as SentencePiece decodes it: byte tokens give
 * their byte, U+2581 gives a space, control tokens (<s>, </s>) give nothing and
 * <unk> gives " \xE2\x81\x87 " (" ⁇ "). A caller decoding a whole sequence drops
 * the one leading space of the dummy prefix. Valid until the tokenizer is freed;
 * *len set. Dies on an id out of range. */
const char *tokenizer_piece(const tokenizer *t, int id, size_t *len);
/* The piece as stored in the file ("▁the", "<0x0A>", "<s>"; tok.bin: " the"). */
const char *tokenizer_piece_raw(const tokenizer *t, int id, size_t *len);
/* A piece's score, and its SentencePiece type: 1 normal, 2 unknown, 3 control,
 * 4 user-defined, 5 unused, 6 byte (GGUF's token types use the same numbers).
 * tok.bin: id 0 unknown, 1-2 control, 3-258 byte, the rest normal. */
float tokenizer_score(const tokenizer *t, int id);
int tokenizer_piece_type(const tokenizer *t, int id);
/* Whether encoding merges pairs by score (SentencePiece BPE, llama2.c), not a
 * unigram model's best cut. */
bool tokenizer_is_bpe(const tokenizer *t);
/* Whether encoding puts a space (U+2581) before the text. */
bool tokenizer_adds_dummy_prefix(const tokenizer *t);
/* Id of the piece stored exactly as these bytes, -1 if none. */
int tokenizer_piece_id(const tokenizer *t, const char *piece, size_t len);
/* What GGUF's "gpt2" tokenizer holds besides the pieces, for hf-json (0 merges
 * and NULL for the other formats): the merges in rank order, each "left right"
 * as tokenizer.json writes it, and the name llama.cpp gives the pre-tokenizer
 * (tokenizer.ggml.pre: "llama-bpe", "qwen2"; NULL when it has none for it). */
int tokenizer_merge_count(const tokenizer *t);
const char *tokenizer_merge(const tokenizer *t, int i, size_t *len);
const char *tokenizer_pre_name(const tokenizer *t);

#endif
