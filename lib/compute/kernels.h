/* kernels.h - the building blocks of every architecture's layer in fp32, each forward beside its backward
 * (llm.c style). The products with weights (linear maps, the embedding) are in
 * matmul.h.
 *
 * A backward takes the gradient of the forward's output (dout) and ADDS the
 * gradients of its inputs and weights into the buffers it is given (+=, so that
 * uses that share an input sum up): callers zero them first. The exceptions say so.
 *
 * Letters: B sequences, T tokens per sequence, N = B*T rows, D hidden, V vocab,
 * H query heads, KV key/value heads, hd head dim, F MLP width, I/O a linear map's
 * input/output width (nin/nout in code). Weights are in the Hugging Face [out, in] layout. */
#ifndef PARE_KERNELS_H
#define PARE_KERNELS_H

#include <stdint.h>

#include "model/rope_style.h"

/* out (N, D) = x * rsqrt(mean(x^2) + eps) * w, the mean over D taken in double.
 * rstd (N), if not NULL, receives rsqrt(mean(x^2) + eps) for the backward pass.
 * out may equal x. */
void rmsnorm_forward(float *out, float *rstd, const float *x, const float *w, int N, int D, float eps);
/* dx (N, D) += d out / d x, dw (D) += d out / d w, given dout (N, D), the forward's
 * input x (N, D), weight w (D) and rstd (N). dx must not alias dout or x. */
void rmsnorm_backward(float *dx, float *dw, const float *dout, const float *x, const float *w, const float *rstd,
                      int N, int D);

/* LayerNorm: out (N, D) = (x - mean) * rsqrt(var + eps) * w + b over D, the sums in
 * double; rstd (N), if not NULL, receives rsqrt(var + eps). out may equal x. */
void layernorm_forward(float *out, float *rstd, const float *x, const float *w, const float *b, int N, int D,
                       float eps);
/* dx (N, D) +=, dw, db (D) += the gradients given dout, the forward's x, w and
 * rstd (the mean is recomputed from x). dx must not alias dout or x. */
void layernorm_backward(float *dx, float *dw, float *db, const float *dout, const float *x, const float *w,
                        const float *rstd, int N, int D);

/* Rotary tables for positions 0..T-1: cos, sin (T, half), angle pos * inv_freq[i],
 * computed in fp32 the way Hugging Face and llama2.c do (the angle rounded to
 * float, its cosine and sine exact). */
void rope_tables_freq(float *cos_t, float *sin_t, int T, int half, const float *inv_freq);
/* Rotate x (B, T, nh, hd) in place, token t of each sequence at position t.
 * ROPE_HALF pairs (i, i + hd/2) (Hugging Face); ROPE_INTERLEAVED pairs (2i, 2i+1)
 * (Meta, llama2.c). Row stride of x is ld floats (>= nh*hd). */
void rope_forward(float *x, const float *cos_t, const float *sin_t, int B, int T, int nh, int hd, int ld,
                  enum rope_style style);
/* In place: dx (B, T, nh, hd) of the rotated x becomes the gradient of x before
 * rotation (the inverse rotation, by -angle). Row stride ld. */
void rope_backward(float *dx, const float *cos_t, const float *sin_t, int B, int T, int nh, int hd, int ld,
                   enum rope_style style);

/* Rotate channels [off, off + rd) of each head of x (B, T, nh, hd) (row stride
 * ld) in place, pairs as rope_forward's within those channels, token t at
 * position pos[t] (NULL: t; positions < the tables' rows, which are (., rd/2)).
 * The channels outside pass through. Partial rotary (ChatGLM2: the first half of
 * a head) and 2D rotary (ChatGLM-6B: each half by its own positions). */
void rope_part_forward(float *x, const float *cos_t, const float *sin_t, int B, int T, int nh, int hd, int rd,
                       int off, const int *pos, int ld, enum rope_style style);
/* Its backward, in place: the inverse rotation. */
void rope_part_backward(float *dx, const float *cos_t, const float *sin_t, int B, int T, int nh, int hd, int rd,
                        int off, const int *pos, int ld, enum rope_style style);

/* Masked attention with scale 1/sqrt(hd); query head h reads key/value head
 * h / (H/KV). Token i sees tokens 0..i and, with prefix P > 0, all of the first P
 * tokens (ChatGLM's bidirectional prompt); prefix 0 is causal. q (N, H*hd), k and v (N, KV*hd), ctx (N, H*hd). att (B, H, T, T)
 * receives the softmax probabilities (zero above the diagonal). Scores and P@V are
 * one sgemm per (sequence, head). */
void attention_forward(float *ctx, float *att, const float *q, const float *k, const float *v, int B, int T, int H,
                       int KV, int hd, int prefix);
/* dq (N, H*hd), dk and dv (N, KV*hd) += the gradients of q, k, v given dctx
 * (N, H*hd) and the forward's att, q, k, v; a key/value head sums the gradients
 * of the query heads that read it. Four sgemms per (sequence, head), the pairs
 * of (sequence, key/value head) spread over parallel_for's threads. */
void attention_backward(float *dq, float *dk, float *dv, const float *dctx, const float *att,
                        const float *q, const float *k, const float *v, int B, int T, int H, int KV, int hd,
                        int prefix);

/* hid (n) = silu(gate) * up, silu(x) = x / (1 + exp(-x)). hid may equal gate or up. */
void swiglu_forward(float *hid, const float *gate, const float *up, int64_t n);
/* dgate, dup (n) = (not +=) the gradients of gate and up given dhid (n). Element-wise:
 * dgate may equal gate, dup may equal up. */
void swiglu_backward(float *dgate, float *dup, const float *dhid, const float *gate, const float *up, int64_t n);

/* out (n) = gelu(x), the tanh approximation (ChatGLM-6B); out may equal x. */
void gelu_forward(float *out, const float *x, int64_t n);
/* dx (n) = (not +=) dout * gelu'(x); dx may equal dout. */
void gelu_backward(float *dx, const float *dout, const float *x, int64_t n);

/* Row-wise softmax of x (n, V) into p (may equal x), in fp32 with the max
 * subtracted; the sum in double. The loops of this and the next are the CPU's
 * (base/cpu.h). */
void softmax_forward(float *p, const float *x, int n, int V);
/* log sum_j exp(row[j]) over V values, in double: log softmax(row)[j] = row[j] - this. */
double logsumexp_row(const float *row, int V);
/* -log softmax(logits)[target] for one row, log-sum-exp in double. */
double crossentropy_row(const float *logits, int V, int target);
/* dlogits (n, V) = (not +=) (softmax(logits) - onehot(target)) * dloss, the
 * gradient of dloss * sum of crossentropy_row over the rows; a row whose target is
 * negative gets zeros. dlogits may equal logits (in place). Targets < V (the
 * caller checks, nll_accumulate does). */
void crossentropy_softmax_backward(float *dlogits, const float *logits, const int *targets, int n, int V,
                                   float dloss);

#endif
