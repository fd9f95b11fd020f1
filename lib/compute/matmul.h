/* matmul.h - every product with a weight tensor: the one place (with the loaders
 * and tensor.c) that knows how a weight's values are stored. The passes
 * (layer.c, forward.c, kv_cache.c, backward.c) and LoRA merging reach weights
 * only through these functions, so a new storage dtype changes this file, the
 * loaders and the tensor type, nothing else.
 *
 * A weight is a tensor in the Hugging Face [out, in] layout: W (O, I), O = the
 * shape[0] rows, I = shape[1]. Activations and gradients are fp32, row-major.
 * Letters: N rows, I/O a map's input/output width (nin/nout in code), V
 * vocabulary, D hidden, r a low-rank update's rank. */
#ifndef PARE_MATMUL_H
#define PARE_MATMUL_H

#include "model/tensor.h"

/* out (N, O) = in (N, I) @ W^T (+ bias (O) if not NULL). */
void matmul_forward(float *out, const float *in, const tensor *w, const tensor *bias, int N);
/* out (N, O) += in (N, I) @ W^T (+ bias (O) if not NULL): a linear map added onto
 * the residual stream. */
void matmul_accumulate(float *out, const float *in, const tensor *w, const tensor *bias, int N);
/* Backward of both: din (N, I) += dout (N, O) @ W; dw (O, I) += dout^T @ in (fp32,
 * W's shape); db (O) += sum over rows of dout. Any of din, dw, db may be NULL (not
 * wanted). */
void matmul_backward(float *din, float *dw, float *db, const float *dout, const float *in, const tensor *w, int N);

/* Where a weight's gradient goes a panel of rows at a time: fn(ctx, w, r0, r1,
 * w_rows, grad_rows) with rows [r0, r1) of dw ((r1 - r0, I), fp32) and of w as
 * fp32 (the same shape), or w_rows NULL where the product did not widen them
 * (AMX tiles, pare's own AVX2 product: base/gemm.h); both valid only during the
 * call. The panels come in row order. */
typedef void weight_rows_fn(void *ctx, const tensor *w, int64_t r0, int64_t r1, const float *w_rows,
                            const float *grad_rows);
typedef struct {
    weight_rows_fn *fn;
    void *ctx;
} weight_rows_sink;

/* matmul_backward with dw's rows handed to rows panel by panel instead of added
 * into a whole (O, I) buffer: no gradient the size of W is held, and a
 * half-precision W that sgemm multiplies is widened once for both din and the
 * sink. dw's rows are those matmul_backward adds into a zeroed dw, as the
 * product makes them for a block of rows (pare's own AVX2 product and
 * OpenBLAS's SkylakeX kernels give the same bits as for the whole product;
 * OpenBLAS's Haswell kernels round about 3% of them by one unit in the last
 * place differently). */
void matmul_backward_rows(float *din, float *db, const float *dout, const float *in, const tensor *w, int N,
                          const weight_rows_sink *rows);

/* The rows of w in a panel of its products (the last panel may have fewer):
 * about 8 MB of fp32 values, at least 16 rows. */
int matmul_panel_rows(const tensor *w);

/* out (N, D) = rows tokens (N) of emb (V, D). Dies on a token outside [0, V). */
void embedding_forward(float *out, const int *tokens, const tensor *emb, int N);
/* demb (V, D, fp32) += dout (N, D) rows at rows tokens (N) (checked by the forward). */
void embedding_backward(float *demb, const float *dout, const int *tokens, int N, int D);

/* W (O, I) += scale * B (O, r) @ A (r, I), in W's storage (LoRA merging). */
void matmul_add_lowrank(tensor *w, float scale, const float *B, const float *A, int r);

#endif
