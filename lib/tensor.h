/* tensor.h - a named fp32 tensor, and the storage dtypes pare reads and writes. */
#ifndef PARE_TENSOR_H
#define PARE_TENSOR_H

#include <stddef.h>
#include <stdint.h>

enum dtype { DTYPE_F32, DTYPE_F16, DTYPE_BF16 };

typedef struct {
    char *name;          /* Hugging Face name, e.g. "model.layers.3.self_attn.q_proj.weight" */
    int ndim;            /* 1 or 2 */
    int64_t shape[2];    /* [out, in] for matrices, [n] for vectors */
    int64_t numel;
    enum dtype stored;   /* dtype of the file it came from (memory is always fp32) */
    float *data;         /* (numel), 64-byte aligned, owned */
} tensor;

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
