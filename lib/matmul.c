/* matmul.c - products with weight tensors (see matmul.h). Weights are held in
 * fp32 today: each product is one OpenBLAS sgemm on the tensor's data.
 *
 * Letters: N rows, I/O a map's input/output width (nin/nout in code), r rank. */
#include "matmul.h"

#include <string.h>

#include <cblas.h>

#include "util.h"

/* A weight matrix's fp32 values (O, I). */
static const float *matrix_f32(const tensor *w)
{
    if (w->ndim != 2)
        die("%s: a linear map needs a matrix, not a tensor of %d dimension(s)", w->name ? w->name : "weight",
            w->ndim);
    return w->data;
}

void matmul_forward(float *out, const float *in, const tensor *w, const tensor *bias, int N)
{
    int nout = (int)w->shape[0], nin = (int)w->shape[1];
    float beta = 0.0f;
    if (bias) {
        const float *b = tensor_vector(bias);
        for (int n = 0; n < N; n++)
            memcpy(out + (size_t)n * nout, b, (size_t)nout * sizeof(float));
        beta = 1.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, nout, nin, 1.0f, in, nin, matrix_f32(w), nin, beta, out,
                nout);
}

void matmul_accumulate(float *out, const float *in, const tensor *w, const tensor *bias, int N)
{
    int nout = (int)w->shape[0], nin = (int)w->shape[1];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, nout, nin, 1.0f, in, nin, matrix_f32(w), nin, 1.0f, out,
                nout);
    if (bias) {
        const float *b = tensor_vector(bias);
        for (int n = 0; n < N; n++)
            for (int o = 0; o < nout; o++)
                out[(size_t)n * nout + o] += b[o];
    }
}

/* For out = in @ W^T + b: din (N, I) += dout (N, O) @ W (O, I), dw (O, I) +=
 * dout^T @ in, db (O) += column sums of dout. Any of din, dw, db may be NULL. */
void matmul_backward(float *din, float *dw, float *db, const float *dout, const float *in, const tensor *w, int N)
{
    int nout = (int)w->shape[0], nin = (int)w->shape[1];
    if (din)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, nin, nout, 1.0f, dout, nout, matrix_f32(w), nin,
                    1.0f, din, nin);
    if (dw)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nout, nin, N, 1.0f, dout, nout, in, nin, 1.0f, dw, nin);
    if (db)
        for (int n = 0; n < N; n++) {
            const float *d = dout + (size_t)n * nout;
            for (int o = 0; o < nout; o++)
                db[o] += d[o];
        }
}

void embedding_forward(float *out, const int *tokens, const tensor *emb, int N)
{
    const float *e = matrix_f32(emb);
    int V = (int)emb->shape[0], D = (int)emb->shape[1];
    for (int n = 0; n < N; n++) {
        int tok = tokens[n];
        if (tok < 0 || tok >= V)
            die("token id %d out of range (vocabulary of %d)", tok, V);
        memcpy(out + (size_t)n * D, e + (size_t)tok * D, (size_t)D * sizeof(float));
    }
}

/* demb (V, D) += dout's rows at their tokens' rows. */
void embedding_backward(float *demb, const float *dout, const int *tokens, int N, int D)
{
    for (int n = 0; n < N; n++) {
        float *g = demb + (size_t)tokens[n] * D;
        const float *d = dout + (size_t)n * D;
        for (int i = 0; i < D; i++)
            g[i] += d[i];
    }
}

void matmul_add_lowrank(tensor *w, float scale, const float *B, const float *A, int r)
{
    int nout = (int)w->shape[0], nin = (int)w->shape[1];
    matrix_f32(w);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nout, nin, r, scale, B, r, A, nin, 1.0f, w->data, nin);
}
