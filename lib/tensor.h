/* tensor.h - a named tensor (shape, storage, values), and the storage dtypes pare
 * reads and writes.
 *
 * Who may read a tensor's data directly: the loaders and writers (llama2c.c,
 * safetensors.c, pytorch.c, gguf.c, checkpoint.c, model_random.c), matmul.c
 * (every product with a weight) and tensor.c. Everyone else reads values through
 * tensor_vector (1-D tensors) or tensor_get_f32 / tensor_set_f32, so that a
 * change of storage (bf16 weights) touches only those.
 *
 * Storage today: every tensor is held in fp32. Holding matrices in their file's
 * dtype changes tensor_init (and the struct: a dtype beside data), the
 * tensor_get/set_f32 conversions, tensor_equal and tensor_first_non_finite,
 * matmul.c (which widens panels of a weight for each product) and the loaders;
 * 1-D tensors stay fp32 (tensor_vector). The fingerprint (model.c) hashes the
 * values as tensor_get_f32 gives them, so it follows values, not storage. */
#ifndef PARE_TENSOR_H
#define PARE_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum dtype { DTYPE_F32, DTYPE_F16, DTYPE_BF16 };

typedef struct tensor {
    char *name;          /* Hugging Face name, e.g. "model.layers.3.self_attn.q_proj.weight" */
    int ndim;            /* 1 or 2 */
    int64_t shape[2];    /* [out, in] for matrices, [n] for vectors */
    int64_t numel;
    enum dtype stored;   /* dtype of the file it came from (memory is always fp32) */
    float *data;         /* (numel), 64-byte aligned, owned; see the top of this file */
} tensor;

/* t named name (copied), shape (ndim 1: shape[0] values), with uninitialised,
 * 64-byte aligned storage; tensor_free releases name and storage. */
void tensor_init(tensor *t, const char *name, int ndim, const int64_t shape[2]);
void tensor_free(tensor *t);
/* Release t's values only (a consumed input), keeping its name and shape. */
void tensor_drop_data(tensor *t);
/* The fp32 values of a 1-D tensor (a norm's scale, a bias): vectors are held in
 * fp32 whatever the file's dtype (they are a few kilobytes). NULL for NULL. */
static inline const float *tensor_vector(const tensor *t) { return t ? t->data : 0; }
/* Values [start, start + n) of t (flat, row-major) as fp32 into out (n). */
void tensor_get_f32(const tensor *t, int64_t start, int64_t n, float *out);
/* Set values [start, start + n) of t from fp32 in (n), in t's storage. */
void tensor_set_f32(tensor *t, int64_t start, int64_t n, const float *in);
/* Whether a and b hold the same number of values, bit for bit the same as fp32. */
bool tensor_equal(const tensor *a, const tensor *b);
/* Index of t's first non-finite value, or -1. */
int64_t tensor_first_non_finite(const tensor *t);
/* A tensor over fp32 memory the caller owns (no name): rows x cols, or a vector of
 * rows values when cols is 0. For tests and benchmarks that build weights by hand. */
tensor tensor_wrap(float *data, int64_t rows, int64_t cols);

const char *dtype_name(enum dtype t);              /* "f32", "f16", "bf16" */
int dtype_from_name(const char *s);                /* -1 if unknown; accepts "F32", "BF16"... too */
size_t dtype_size(enum dtype t);

float bf16_to_f32(uint16_t h);
float f16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f);                     /* round to nearest even */
uint16_t f32_to_f16(float f);

/* Widen n little-endian values of dtype t to fp32 in place. The values were read
 * into the upper part of dst's bytes, at ((char *)dst + n*4 - n*dtype_size(t));
 * on return dst holds n floats.
 * This lets a reader fread a half-precision payload straight into its final
 * fp32 buffer with no second copy. */
void dtype_widen_in_place(float *dst, size_t n, enum dtype t);

#endif
