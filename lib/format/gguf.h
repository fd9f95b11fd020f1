/* gguf.h - GGUF files (ggml's docs/gguf.md, version 3) for llama.cpp: architecture
 * "llama" when every layer has the same widths, "deci" (per-layer head counts and
 * MLP widths, arrays of block_count entries) when they differ.
 *
 * Layout: "GGUF", uint32 version 3, uint64 tensor count, uint64 key/value count;
 * the key/value pairs (string key, uint32 type, value); the tensor infos (string
 * name, uint32 n_dims, uint64 ne[n_dims] innermost first, uint32 ggml type,
 * uint64 offset into the data); padding to general.alignment (32); the data, each
 * tensor at a multiple of the alignment. Strings are uint64 length + bytes; all
 * little-endian.
 *
 * q/k rows are stored in the interleaved rotary layout llama.cpp computes with
 * (rope_layout.h): pare permutes a half-layout model on writing and reads GGUF as
 * rope_style "interleaved". 1-dimensional tensors are always F32 (as llama.cpp's
 * converters write them); matrices F32, F16 or BF16.
 *
 * gguf_read.c reads, gguf_write.c writes; the format's numbers below serve both. */
#ifndef PARE_GGUF_H
#define PARE_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/model.h"
#include "model/tensor.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "pare reads little-endian payloads straight into memory: little-endian hosts only"
#endif

#define GGUF_VERSION 3
#define GGUF_ALIGNMENT 32

/* The types of key/value values. */
enum gguf_type {
    GT_UINT8, GT_INT8, GT_UINT16, GT_INT16, GT_UINT32, GT_INT32, GT_FLOAT32, GT_BOOL,
    GT_STRING, GT_ARRAY, GT_UINT64, GT_INT64, GT_FLOAT64, GT_COUNT
};

/* The tensor types pare reads and writes. */
enum ggml_type { GGML_F32 = 0, GGML_F16 = 1, GGML_BF16 = 30 };

/* Write m (bound, with a SentencePiece or llama2.c tokenizer) to path, atomically,
 * matrices stored as dtype. Dies with a message naming the rule when llama.cpp
 * could not run the model: layer 0 without attention heads; a layer that keeps
 * its attention but lost its MLP (llama.cpp's deci drops that layer's output); q/k/v
 * biases whose width differs from the hidden size; no tokenizer. */
void gguf_write(const model *m, const char *path, enum dtype dtype);

/* Read a llama or deci GGUF with F32/F16/BF16 tensors into m (config, tensors,
 * tokenizer as a SentencePiece model built from tokenizer.ggml.*), bound. */
void gguf_read(model *m, const char *path);
/* The same from the n bytes at p (the file's contents; path names it in messages). */
void gguf_read_mem(model *m, const uint8_t *p, size_t n, const char *path);

/* The bytes start like a GGUF file. */
bool gguf_sniff(const uint8_t *p, size_t n);

#endif
