/* tensor.h - a named tensor (shape, storage, values), and the storage dtypes pare
 * reads and writes.
 *
 * A matrix keeps the dtype of its file in memory (f32, f16 or bf16), either in
 * its own buffer or in a private, copy-on-write mapping of the file it came from
 * (tensor_map). Vectors (norm scales, biases) are held in fp32 whatever the file
 * says (model_bind widens them; they are a few kilobytes).
 *
 * Who may read a tensor's data directly: the loaders and writers (llama2c.c,
 * safetensors.c, pytorch.c, gguf.c, checkpoint.c, model_random.c), matmul.c
 * (every product with a weight) and tensor.c. Everyone else reads values through
 * tensor_vector (1-D tensors), tensor_get_f32 and tensor_set_f32, which work on
 * every dtype. The fingerprint (model.c) hashes the values as tensor_get_f32
 * gives them, so it follows values, not storage. */
#ifndef PARE_TENSOR_H
#define PARE_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum dtype { DTYPE_F32, DTYPE_F16, DTYPE_BF16 };

/* A read-write private mapping of a file that tensors' data point into; unmapped
 * when the last tensor using it is freed. */
typedef struct tensor_map tensor_map;

typedef struct tensor {
    char *name;          /* Hugging Face name, e.g. "model.layers.3.self_attn.q_proj.weight" */
    int ndim;            /* 1 or 2 */
    int64_t shape[2];    /* [out, in] for matrices, [n] for vectors */
    int64_t numel;
    enum dtype stored;   /* dtype of the file it came from; writers keep it by default */
    enum dtype dtype;    /* dtype of data in memory: stored for matrices, f32 for bound vectors */
    void *data;          /* (numel) values of dtype; see the top of this file */
    tensor_map *map;     /* the mapping data lies in, or NULL: data is owned (64-byte aligned) */
} tensor;

/* The most elements pare reads in one tensor (2^40: 4 TiB of fp32). */
#define TENSOR_MAX_NUMEL ((int64_t)1 << 40)
/* The element count of shape[0..ndim), or -1 when a dimension is negative or
 * exceeds TENSOR_MAX_NUMEL, or their product does. Every reader sizes a tensor from its file's
 * dimensions with this: the limit is checked before each multiplication, so no
 * product can overflow, whatever dimensions the file claims. */
int64_t tensor_shape_numel(int ndim, const int64_t *shape);

/* t named name (copied), shape (ndim 1: shape[0] values), with uninitialised,
 * 64-byte aligned fp32 storage (tensor_init) or storage of dtype (tensor_init_as,
 * which also sets stored); tensor_free releases name and storage. */
void tensor_init(tensor *t, const char *name, int ndim, const int64_t shape[2]);
void tensor_init_as(tensor *t, const char *name, int ndim, const int64_t shape[2], enum dtype dtype);
/* The two halves of tensor_init_as: name and shape without storage (data NULL;
 * the caller sets dtype and stored), then storage of t->dtype for such a tensor. */
void tensor_init_shape(tensor *t, const char *name, int ndim, const int64_t shape[2]);
void tensor_alloc(tensor *t);
void tensor_free(tensor *t);
/* Free n tensors and the array that holds them (what the readers return). */
void tensors_free(tensor *ts, int n);
/* Release t's values only (a consumed input), keeping its name and shape. */
void tensor_drop_data(tensor *t);
/* Whether t's values lie at an address aligned to their size. A tensor mapped from
 * a file whose payload is not (a safetensors header of odd length) stays in the
 * mapping: tensor_get_f32 and tensor_set_f32 read and write it through aligned
 * blocks, and matmul.c widens it a panel at a time, as any half-precision weight;
 * only direct readers of data (the fp32 fast paths) must ask. */
static inline bool tensor_aligned(const tensor *t)
{
    return (uintptr_t)t->data % (t->dtype == DTYPE_F32 ? 4 : 2) == 0;
}
/* Bytes of t's values in memory. */
static inline size_t tensor_bytes(const tensor *t) { return (size_t)t->numel * (t->dtype == DTYPE_F32 ? 4 : 2); }
/* Hold t's values in dtype (rounded to nearest even when narrower), in a buffer of
 * its own (also when t is of dtype but not aligned); its stored dtype is kept.
 * Vectors are made fp32 this way for tensor_vector. */
void tensor_convert(tensor *t, enum dtype dtype);
/* Round t's values to those dtype can hold (to nearest even), in t's storage. */
void tensor_round_to(tensor *t, enum dtype dtype);
/* Where the values of tensors that have none (data NULL) come from: fill gives t
 * (a copy of such a tensor's header) storage of t->dtype (tensor_alloc) and its
 * values. A model made this way (model.values) is read once per pass, a tensor
 * at a time, by the fingerprint and the writers: a model larger than memory is
 * written without ever being whole. release, if set, frees ctx (model_free). */
typedef struct {
    void (*fill)(tensor *t, void *ctx);
    void *ctx;
    void (*release)(void *ctx);
} tensor_source;

/* The values of t for one pass: t itself, or for a tensor without data, tmp
 * filled from src (dies naming t when src is NULL); tensor_values_done(v, tmp)
 * drops what was filled. */
const tensor *tensor_values(const tensor *t, const tensor_source *src, tensor *tmp);
void tensor_values_done(const tensor *v, tensor *tmp);

/* The fp32 values of a 1-D tensor (a norm's scale, a bias): model_bind holds
 * vectors in fp32 whatever the file's dtype. NULL for NULL. */
static inline const float *tensor_vector(const tensor *t) { return t ? (const float *)t->data : 0; }

/* The values of a tensor held in fp32 (tests and code that made it so). */
static inline float *tensor_f32(const tensor *t) { return (float *)t->data; }

/* Map len bytes of the open file fd privately (writes stay in memory); NULL when
 * the system cannot. The caller holds one reference (tensor_map_release). */
tensor_map *tensor_map_file(int fd, size_t len);
/* Start of the mapping. */
const char *tensor_map_base(const tensor_map *m);
/* Point t (shape set, no data) at values of dtype at p inside m; takes a reference. */
void tensor_use_map(tensor *t, tensor_map *m, const void *p, enum dtype dtype);
void tensor_map_release(tensor_map *m);
/* Start reading t's values from its file (madvise MADV_WILLNEED) when they lie in a
 * mapping, so that a pass over the layers finds the next layer's weights read while
 * it computes this one's (under a memory cap the weights do not stay cached);
 * nothing for values in memory. A hint: it returns at once, and never fails. */
void tensor_prefetch(const tensor *t);
/* Values [start, start + n) of t (flat, row-major) as fp32 into out (n). */
void tensor_get_f32(const tensor *t, int64_t start, int64_t n, float *out);
/* Set values [start, start + n) of t from fp32 in (n), in t's storage. */
void tensor_set_f32(tensor *t, int64_t start, int64_t n, const float *in);
/* Values [start, start + n) of t stored as dtype (t's own bytes when it is of
 * dtype, else converted a block at a time, rounding to nearest even), handed to
 * out(ctx, bytes, size) in pieces: how the writers put a tensor into a file. */
void tensor_write_as(const tensor *t, int64_t start, int64_t n, enum dtype dtype,
                     void (*out)(void *ctx, const void *p, size_t n), void *ctx);
/* Whether a and b hold the same number of values, bit for bit the same as fp32
 * (whatever the dtype of each). */
bool tensor_equal(const tensor *a, const tensor *b);
/* Index of the first non-finite value among values [start, start + n) of t, or -1. */
int64_t tensor_first_non_finite(const tensor *t, int64_t start, int64_t n);
/* A tensor over fp32 memory the caller owns (no name): rows x cols, or a vector of rows values
 * when cols is 0. For tests and benchmarks that build weights by hand. */
tensor tensor_wrap(float *data, int64_t rows, int64_t cols);

const char *dtype_name(enum dtype t);              /* "f32", "f16", "bf16" */
int dtype_from_name(const char *s);                /* -1 if unknown; accepts "F32", "BF16"... too */
/* dtype_from_name(s), or a usage error naming option opt. */
enum dtype parse_dtype(const char *opt, const char *s);
size_t dtype_size(enum dtype t);

float bf16_to_f32(uint16_t h);
float f16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f);                     /* round to nearest even */
uint16_t f32_to_f16(float f);
/* n values of dtype t at src (little-endian) as fp32 into dst; the reverse,
 * rounding to nearest even. */
void dtype_to_f32(float *dst, const void *src, size_t n, enum dtype t);
void dtype_from_f32(void *dst, const float *src, size_t n, enum dtype t);


#endif
