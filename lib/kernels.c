/* kernels.c - the LLaMA building blocks in fp32: each forward, with the place of
 * its backward marked beside it (llm.c style).
 *
 * Letters: B sequences, T tokens per sequence, N = B*T rows, D hidden, V vocab,
 * H query heads, KV key/value heads, hd head dim, F MLP width, I/O a linear map's
 * input/output width (nin/nout in code). Matrices are row-major; weights are [out, in]. */
#include "kernels.h"

#include <math.h>
#include <string.h>

#include <cblas.h>

#include "util.h"

/* ---- embedding ---- */

void embedding_forward(float *out, const int *tokens, const float *emb, int N, int D, int V)
{
    for (int n = 0; n < N; n++) {
        int tok = tokens[n];
        if (tok < 0 || tok >= V)
            die("token id %d out of range (vocabulary of %d)", tok, V);
        memcpy(out + (size_t)n * D, emb + (size_t)tok * D, (size_t)D * sizeof(float));
    }
}

/* embedding_backward goes here. */

/* ---- RMSNorm ---- */

void rmsnorm_forward(float *out, float *rstd, const float *x, const float *w, int N, int D, float eps)
{
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * D;
        float *o = out + (size_t)n * D;
        double ss = 0;
        for (int i = 0; i < D; i++)
            ss += (double)xr[i] * xr[i];
        float r = (float)(1.0 / sqrt(ss / D + (double)eps));
        if (rstd)
            rstd[n] = r;
        for (int i = 0; i < D; i++)
            o[i] = w[i] * (xr[i] * r);
    }
}

/* rmsnorm_backward goes here. */

/* ---- linear maps ---- */

void matmul_forward(float *out, const float *in, const float *w, const float *bias, int N, int nin, int nout)
{
    float beta = 0.0f;
    if (bias) {
        for (int n = 0; n < N; n++)
            memcpy(out + (size_t)n * nout, bias, (size_t)nout * sizeof(float));
        beta = 1.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, nout, nin, 1.0f, in, nin, w, nin, beta, out, nout);
}

void matmul_accumulate(float *out, const float *in, const float *w, int N, int nin, int nout)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, nout, nin, 1.0f, in, nin, w, nin, 1.0f, out, nout);
}

/* matmul_backward goes here. */

/* ---- rotary embedding ---- */

void rope_tables(float *cos_t, float *sin_t, int T, int hd, float theta)
{
    int half = hd / 2;
    for (int i = 0; i < half; i++) {
        float inv_freq = (float)(1.0 / pow((double)theta, (double)(2 * i) / hd));
        for (int t = 0; t < T; t++) {
            float angle = (float)t * inv_freq;
            cos_t[(size_t)t * half + i] = (float)cos((double)angle);
            sin_t[(size_t)t * half + i] = (float)sin((double)angle);
        }
    }
}

void rope_forward(float *x, const float *cos_t, const float *sin_t, int B, int T, int nh, int hd, int ld,
                  enum rope_style style)
{
    int half = hd / 2;
    /* element pair i of a head: (i, i + hd/2) or (2i, 2i + 1) */
    int step = style == ROPE_HALF ? 1 : 2;
    int other = style == ROPE_HALF ? half : 1;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            const float *c = cos_t + (size_t)t * half, *s = sin_t + (size_t)t * half;
            float *row = x + ((size_t)b * T + t) * ld;
            for (int h = 0; h < nh; h++) {
                float *v = row + (size_t)h * hd;
                for (int i = 0; i < half; i++) {
                    float *p0 = v + i * step, *p1 = p0 + other;
                    float x0 = *p0, x1 = *p1;
                    *p0 = x0 * c[i] - x1 * s[i];
                    *p1 = x1 * c[i] + x0 * s[i];
                }
            }
        }
}

/* rope_backward goes here (the same rotation by -angle). */

/* ---- causal self-attention ---- */

void attention_forward(float *ctx, float *att, const float *q, const float *k, const float *v, int B, int T, int H,
                       int KV, int hd)
{
    int group = H / KV;                 /* query heads per key/value head */
    int ldq = H * hd, ldkv = KV * hd;   /* row strides of q/ctx and k/v */
    float scale = (float)(1.0 / sqrt((double)hd));
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            int kvh = h / group;
            const float *qb = q + (size_t)b * T * ldq + (size_t)h * hd;    /* (T, hd), ld ldq */
            const float *kb = k + (size_t)b * T * ldkv + (size_t)kvh * hd; /* (T, hd), ld ldkv */
            const float *vb = v + (size_t)b * T * ldkv + (size_t)kvh * hd; /* (T, hd), ld ldkv */
            float *p = att + ((size_t)b * H + h) * T * T;                  /* (T, T) */
            float *cb = ctx + (size_t)b * T * ldq + (size_t)h * hd;        /* (T, hd), ld ldq */
            /* scores = scale * q k^T */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd, scale, qb, ldq, kb, ldkv, 0.0f, p, T);
            /* causal softmax per row; zero above the diagonal */
            for (int i = 0; i < T; i++) {
                float *row = p + (size_t)i * T;
                float mx = row[0];
                for (int j = 1; j <= i; j++)
                    mx = row[j] > mx ? row[j] : mx;
                double sum = 0;
                for (int j = 0; j <= i; j++) {
                    row[j] = expf(row[j] - mx);
                    sum += row[j];
                }
                float inv = (float)(1.0 / sum);
                for (int j = 0; j <= i; j++)
                    row[j] *= inv;
                for (int j = i + 1; j < T; j++)
                    row[j] = 0.0f;
            }
            /* ctx = P v */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, T, 1.0f, p, T, vb, ldkv, 0.0f, cb, ldq);
        }
}

/* attention_backward goes here. */

/* ---- SwiGLU ---- */

void swiglu_forward(float *hid, const float *gate, const float *up, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        float g = gate[i];
        hid[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

/* swiglu_backward goes here. */

/* ---- softmax and cross-entropy ---- */

void softmax_forward(float *p, const float *x, int n, int V)
{
    for (int r = 0; r < n; r++) {
        const float *xr = x + (size_t)r * V;
        float *pr = p + (size_t)r * V;
        float mx = xr[0];
        for (int j = 1; j < V; j++)
            mx = xr[j] > mx ? xr[j] : mx;
        double sum = 0;
        for (int j = 0; j < V; j++) {
            pr[j] = expf(xr[j] - mx);
            sum += pr[j];
        }
        float inv = (float)(1.0 / sum);
        for (int j = 0; j < V; j++)
            pr[j] *= inv;
    }
}

double crossentropy_row(const float *logits, int V, int target)
{
    double mx = logits[0];
    for (int j = 1; j < V; j++)
        mx = logits[j] > mx ? logits[j] : mx;
    double sum = 0;
    for (int j = 0; j < V; j++)
        sum += exp((double)logits[j] - mx);
    return log(sum) + mx - (double)logits[target];
}

/* crossentropy_softmax_backward goes here: dlogits = (softmax - onehot) * dloss. */
