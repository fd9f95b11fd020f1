/* kernels.c - the building blocks of every architecture's layer in fp32: each forward, with the place of
 * its backward marked beside it (llm.c style).
 *
 * Letters: B sequences, T tokens per sequence, N = B*T rows, D hidden, V vocab,
 * H query heads, KV key/value heads, hd head dim, F MLP width, I/O a linear map's
 * input/output width (nin/nout in code). Matrices are row-major; weights are [out, in]. */
#include "compute/kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "base/cpu.h"
#include "base/parallel.h"
#include "base/util.h"

/* Rows or values per piece of parallel_for, for items of width values each: a
 * thread is woken for no fewer than PIECE_VALUES values. Each row or value is
 * computed alone, so the result is the same however the range is cut. */
enum { PIECE_VALUES = 1 << 15 };
static int64_t grain(int64_t width) { return width >= PIECE_VALUES ? 1 : PIECE_VALUES / (width > 0 ? width : 1); }

/* ---- RMSNorm ---- */

typedef struct {
    float *out, *rstd;
    const float *x, *w, *b;
    int D;
    float eps;
} norm_job;

static void rmsnorm_rows(void *ctx, int64_t begin, int64_t end)
{
    const norm_job *j = ctx;
    int D = j->D;
    for (int64_t n = begin; n < end; n++) {
        const float *xr = j->x + (size_t)n * D;
        double ss = cpu()->sum_squares(xr, (size_t)D);
        float r = (float)(1.0 / sqrt(ss / D + (double)j->eps));
        if (j->rstd)
            j->rstd[n] = r;
        cpu()->scale_mul(j->out + (size_t)n * D, xr, j->w, r, (size_t)D);
    }
}

void rmsnorm_forward(float *out, float *rstd, const float *x, const float *w, int N, int D, float eps)
{
    norm_job j = {out, rstd, x, w, NULL, D, eps};
    parallel_for(N, grain(D), rmsnorm_rows, &j);
}

/* With y = w * x * r, r = rstd: dw += sum_n dy * x * r and
 * dx += r * (dy * w) - x * r^3 / D * sum_i(dy * w * x), the sums in double. */
void rmsnorm_backward(float *dx, float *dw, const float *dout, const float *x, const float *w, const float *rstd,
                      int N, int D)
{
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * D, *dy = dout + (size_t)n * D;
        float *dxr = dx + (size_t)n * D;
        float r = rstd[n];
        double dot = 0;
        for (int i = 0; i < D; i++)
            dot += (double)dy[i] * w[i] * xr[i];
        float c = (float)(dot * r * r * r / D);
        for (int i = 0; i < D; i++) {
            dxr[i] += r * dy[i] * w[i] - c * xr[i];
            dw[i] += dy[i] * xr[i] * r;
        }
    }
}

/* y = (x - mean) * r * w + b, r = rsqrt(var + eps): with xh = (x - mean) * r and
 * g = dy * w, dx += r * (g - mean(g) - xh * mean(g * xh)), dw += dy * xh, db += dy. */
static void layernorm_rows(void *ctx, int64_t begin, int64_t end)
{
    const norm_job *j = ctx;
    int D = j->D;
    const float *w = j->w, *b = j->b;
    for (int64_t n = begin; n < end; n++) {
        const float *xr = j->x + (size_t)n * D;
        float *o = j->out + (size_t)n * D;
        double s = 0, ss = 0;
        for (int i = 0; i < D; i++)
            s += xr[i];
        float mean = (float)(s / D);
        for (int i = 0; i < D; i++)
            ss += ((double)xr[i] - mean) * ((double)xr[i] - mean);
        float r = (float)(1.0 / sqrt(ss / D + (double)j->eps));
        if (j->rstd)
            j->rstd[n] = r;
        for (int i = 0; i < D; i++)
            o[i] = w[i] * ((xr[i] - mean) * r) + b[i];
    }
}

void layernorm_forward(float *out, float *rstd, const float *x, const float *w, const float *b, int N, int D,
                       float eps)
{
    norm_job j = {out, rstd, x, w, b, D, eps};
    parallel_for(N, grain(D), layernorm_rows, &j);
}

void layernorm_backward(float *dx, float *dw, float *db, const float *dout, const float *x, const float *w,
                        const float *rstd, int N, int D)
{
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * D, *dy = dout + (size_t)n * D;
        float *dxr = dx + (size_t)n * D;
        float r = rstd[n];
        double s = 0, sg = 0, sgx = 0;
        for (int i = 0; i < D; i++)
            s += xr[i];
        float mean = (float)(s / D);
        for (int i = 0; i < D; i++) {
            double g = (double)dy[i] * w[i], xh = ((double)xr[i] - mean) * r;
            sg += g;
            sgx += g * xh;
        }
        float mg = (float)(sg / D), mgx = (float)(sgx / D);
        for (int i = 0; i < D; i++) {
            float xh = (xr[i] - mean) * r;
            dxr[i] += r * (dy[i] * w[i] - mg - xh * mgx);
            dw[i] += dy[i] * xh;
            db[i] += dy[i];
        }
    }
}

/* ---- rotary embedding ---- */

void rope_tables_freq(float *cos_t, float *sin_t, int T, int half, const float *inv_freq)
{
    for (int i = 0; i < half; i++)
        for (int t = 0; t < T; t++) {
            float angle = (float)t * inv_freq[i];
            cos_t[(size_t)t * half + i] = (float)cos((double)angle);
            sin_t[(size_t)t * half + i] = (float)sin((double)angle);
        }
}

/* One rotation of every pair of channels [off, off + rd) of each head by +angle
 * (sign 1) or -angle (sign -1), token t at position pos[t] (t without pos). */
typedef struct {
    float *x;
    const float *cos_t, *sin_t;
    const int *pos;
    int T, nh, hd, rd, off, ld;
    enum rope_style style;
    float sign;
} rope_job;

/* Rows [begin, end) of the B*T. */
static void rope_rows(void *ctx, int64_t begin, int64_t end)
{
    const rope_job *j = ctx;
    int half = j->rd / 2;
    /* element pair i of the rotated channels: (i, i + rd/2) or (2i, 2i + 1) */
    int step = j->style == ROPE_HALF ? 1 : 2;
    int other = j->style == ROPE_HALF ? half : 1;
    for (int64_t r = begin; r < end; r++) {
        int t = (int)(r % j->T), at = j->pos ? j->pos[t] : t;
        const float *c = j->cos_t + (size_t)at * half, *s = j->sin_t + (size_t)at * half;
        float *row = j->x + (size_t)r * j->ld;
        for (int h = 0; h < j->nh; h++) {
            float *v = row + (size_t)h * j->hd + j->off;
            for (int i = 0; i < half; i++) {
                float *p0 = v + i * step, *p1 = p0 + other;
                float x0 = *p0, x1 = *p1;
                float si = j->sign * s[i];
                *p0 = x0 * c[i] - x1 * si;
                *p1 = x1 * c[i] + x0 * si;
            }
        }
    }
}

static void rope_rotate(float *x, const float *cos_t, const float *sin_t, int B, int T, int nh, int hd, int rd,
                        int off, const int *pos, int ld, enum rope_style style, float sign)
{
    rope_job j = {x, cos_t, sin_t, pos, T, nh, hd, rd, off, ld, style, sign};
    parallel_for((int64_t)B * T, grain((int64_t)nh * rd), rope_rows, &j);
}

void rope_forward(float *x, const float *cos_t, const float *sin_t, int B, int T, int nh, int hd, int ld,
                  enum rope_style style)
{
    rope_rotate(x, cos_t, sin_t, B, T, nh, hd, hd, 0, NULL, ld, style, 1.0f);
}

/* The rotation is orthogonal: its transpose turns by -angle. */
void rope_backward(float *dx, const float *cos_t, const float *sin_t, int B, int T, int nh, int hd, int ld,
                   enum rope_style style)
{
    rope_rotate(dx, cos_t, sin_t, B, T, nh, hd, hd, 0, NULL, ld, style, -1.0f);
}

void rope_part_forward(float *x, const float *cos_t, const float *sin_t, int B, int T, int nh, int hd, int rd,
                       int off, const int *pos, int ld, enum rope_style style)
{
    rope_rotate(x, cos_t, sin_t, B, T, nh, hd, rd, off, pos, ld, style, 1.0f);
}

void rope_part_backward(float *dx, const float *cos_t, const float *sin_t, int B, int T, int nh, int hd, int rd,
                        int off, const int *pos, int ld, enum rope_style style)
{
    rope_rotate(dx, cos_t, sin_t, B, T, nh, hd, rd, off, pos, ld, style, -1.0f);
}

/* ---- causal self-attention ---- */

/* The last key row i attends to: itself and before, and the whole prefix. */
static int last_key(int i, int prefix, int T)
{
    int last = i > prefix - 1 ? i : prefix - 1;
    return last < T ? last : T - 1;
}

/* One call's operands, for the pieces of parallel_for. */
typedef struct {
    float *ctx, *att, *dq, *dk, *dv;
    const float *q, *k, *v, *dctx, *p;
    int B, T, H, KV, hd, prefix;
} attn_job;

/* Sequence b, query head h: scores, masked softmax into att, ctx = P v. */
static void attend_one(const attn_job *j, int b, int h)
{
    int T = j->T, hd = j->hd, ldq = j->H * hd, ldkv = j->KV * hd, kvh = h / (j->H / j->KV);
    float scale = (float)(1.0 / sqrt((double)hd));
    const float *qb = j->q + (size_t)b * T * ldq + (size_t)h * hd;    /* (T, hd), ld ldq */
    const float *kb = j->k + (size_t)b * T * ldkv + (size_t)kvh * hd; /* (T, hd), ld ldkv */
    const float *vb = j->v + (size_t)b * T * ldkv + (size_t)kvh * hd; /* (T, hd), ld ldkv */
    float *p = j->att + ((size_t)b * j->H + h) * T * T;               /* (T, T) */
    float *cb = j->ctx + (size_t)b * T * ldq + (size_t)h * hd;        /* (T, hd), ld ldq */
    /* scores = scale * q k^T */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd, scale, qb, ldq, kb, ldkv, 0.0f, p, T);
    /* masked softmax per row; zero after the last visible key */
    for (int i = 0; i < T; i++) {
        float *row = p + (size_t)i * T;
        int last = last_key(i, j->prefix, T);
        softmax_forward(row, row, 1, last + 1);
        for (int c = last + 1; c < T; c++)
            row[c] = 0.0f;
    }
    /* ctx = P v */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, T, 1.0f, p, T, vb, ldkv, 0.0f, cb, ldq);
}

/* Items [begin, end) of (sequence, query head) pairs, b * H + h. */
static void attend_pairs(void *ctx, int64_t begin, int64_t end)
{
    const attn_job *j = ctx;
    for (int64_t i = begin; i < end; i++)
        attend_one(j, (int)(i / j->H), (int)(i % j->H));
}

void attention_forward(float *ctx, float *att, const float *q, const float *k, const float *v, int B, int T, int H,
                       int KV, int hd, int prefix)
{
    attn_job j = {.ctx = ctx, .att = att, .q = q, .k = k, .v = v, .B = B, .T = T, .H = H, .KV = KV, .hd = hd,
                  .prefix = prefix};
    parallel_for((int64_t)B * H, 1, attend_pairs, &j);
}

/* Sequence b, query head h, with dp (T, T) scratch; adds into dk and dv of its
 * key/value head, so the heads of one key/value head run in order, on one thread. */
static void attend_one_backward(const attn_job *j, int b, int h, float *dp)
{
    int T = j->T, hd = j->hd, ldq = j->H * hd, ldkv = j->KV * hd, kvh = h / (j->H / j->KV);
    float scale = (float)(1.0 / sqrt((double)hd));
    size_t qo = (size_t)b * T * ldq + (size_t)h * hd, kvo = (size_t)b * T * ldkv + (size_t)kvh * hd;
    const float *p = j->p + ((size_t)b * j->H + h) * T * T; /* (T, T) */
    const float *dc = j->dctx + qo;                         /* (T, hd), ld ldq */
    /* dP = dctx v^T, then dS in place */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd, 1.0f, dc, ldq, j->v + kvo, ldkv, 0.0f, dp, T);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hd, T, 1.0f, p, T, dc, ldq, 1.0f, j->dv + kvo, ldkv);
    for (int i = 0; i < T; i++) {
        const float *pr = p + (size_t)i * T;
        float *dr = dp + (size_t)i * T;
        int last = last_key(i, j->prefix, T);
        double dot = 0;
        for (int c = 0; c <= last; c++)
            dot += (double)pr[c] * dr[c];
        float s = (float)dot;
        for (int c = 0; c <= last; c++)
            dr[c] = pr[c] * (dr[c] - s);
        for (int c = last + 1; c < T; c++)
            dr[c] = 0.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, T, scale, dp, T, j->k + kvo, ldkv, 1.0f,
                j->dq + qo, ldq);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hd, T, scale, dp, T, j->q + qo, ldq, 1.0f,
                j->dk + kvo, ldkv);
}

/* Items [begin, end) of (sequence, key/value head) pairs, b * KV + kvh: each
 * with its query heads in order and a dP scratch of its own. */
static void attend_groups_backward(void *ctx, int64_t begin, int64_t end)
{
    const attn_job *j = ctx;
    int group = j->H / j->KV;
    float *dp = xmalloc((size_t)j->T * j->T * sizeof(float));
    for (int64_t i = begin; i < end; i++) {
        int b = (int)(i / j->KV), kvh = (int)(i % j->KV);
        for (int h = kvh * group; h < (kvh + 1) * group; h++)
            attend_one_backward(j, b, h, dp);
    }
    free(dp);
}

/* Per (sequence, head), with P the saved probabilities and S the scaled scores:
 *   dP = dctx v^T,  dv += P^T dctx,  dS = P * (dP - rowsum(P * dP)),
 *   dq += scale * dS k,  dk += scale * dS^T q.
 * P is zero above the diagonal, so dS is too. */
void attention_backward(float *dq, float *dk, float *dv, const float *dctx, const float *att, const float *q,
                        const float *k, const float *v, int B, int T, int H, int KV, int hd, int prefix)
{
    attn_job j = {.dq = dq, .dk = dk, .dv = dv, .dctx = dctx, .p = att, .q = q, .k = k, .v = v, .B = B, .T = T,
                  .H = H, .KV = KV, .hd = hd, .prefix = prefix};
    parallel_for((int64_t)B * KV, 1, attend_groups_backward, &j);
}

/* ---- SwiGLU ---- */

/* The element-wise activations' operands: out0 (and out1) of in0 (in1, in2), for
 * the pieces of parallel_for. */
typedef struct {
    float *out0, *out1;
    const float *in0, *in1, *in2;
} elementwise_job;

static void elementwise(int64_t n, void (*fn)(void *, int64_t, int64_t), elementwise_job j)
{
    parallel_for(n, PIECE_VALUES, fn, &j);
}

static void swiglu_part(void *ctx, int64_t b, int64_t e)
{
    const elementwise_job *j = ctx;
    cpu()->swiglu(j->out0 + b, j->in0 + b, j->in1 + b, (size_t)(e - b));
}

void swiglu_forward(float *hid, const float *gate, const float *up, int64_t n)
{
    elementwise(n, swiglu_part, (elementwise_job){hid, NULL, gate, up, NULL});
}

/* hid = silu(g) * u: dg = dh * u * s * (1 + g * (1 - s)), s = sigmoid(g);
 * du = dh * silu(g). Element-wise, so dgate may equal gate and dup may equal up. */
static void swiglu_backward_part(void *ctx, int64_t b, int64_t e)
{
    const elementwise_job *j = ctx;
    for (int64_t i = b; i < e; i++) {
        float dh = j->in0[i], g = j->in1[i], u = j->in2[i];
        float s = 1.0f / (1.0f + expf(-g));
        j->out0[i] = dh * u * s * (1.0f + g * (1.0f - s));
        j->out1[i] = dh * g * s;
    }
}

void swiglu_backward(float *dgate, float *dup, const float *dhid, const float *gate, const float *up, int64_t n)
{
    elementwise(n, swiglu_backward_part, (elementwise_job){dgate, dup, dhid, gate, up});
}

/* gelu(x) = 0.5 x (1 + tanh(c (x + 0.044715 x^3))), c = sqrt(2/pi) (ChatGLM's
 * gelu_impl); d/dx = 0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 * 0.044715 x^2). */
#define GELU_C 0.7978845608028654f
static void gelu_part(void *ctx, int64_t b, int64_t e)
{
    const elementwise_job *j = ctx;
    for (int64_t i = b; i < e; i++) {
        float v = j->in0[i];
        j->out0[i] = 0.5f * v * (1.0f + tanhf(GELU_C * v * (1.0f + 0.044715f * v * v)));
    }
}

void gelu_forward(float *out, const float *x, int64_t n)
{
    elementwise(n, gelu_part, (elementwise_job){out, NULL, x, NULL, NULL});
}

static void gelu_backward_part(void *ctx, int64_t b, int64_t e)
{
    const elementwise_job *j = ctx;
    for (int64_t i = b; i < e; i++) {
        float v = j->in1[i];
        float t = tanhf(GELU_C * v * (1.0f + 0.044715f * v * v));
        j->out0[i] = j->in0[i] * (0.5f * (1.0f + t) +
                                  0.5f * v * (1.0f - t * t) * GELU_C * (1.0f + 3.0f * 0.044715f * v * v));
    }
}

void gelu_backward(float *dx, const float *dout, const float *x, int64_t n)
{
    elementwise(n, gelu_backward_part, (elementwise_job){dx, NULL, dout, x, NULL});
}

/* ---- softmax and cross-entropy ---- */

void softmax_forward(float *p, const float *x, int n, int V)
{
    for (int r = 0; r < n; r++) {
        const float *xr = x + (size_t)r * V;
        float *pr = p + (size_t)r * V;
        float mx = cpu()->max(xr, (size_t)V);
        double sum = cpu()->exp_sum(pr, xr, mx, (size_t)V);
        cpu()->scale(pr, (float)(1.0 / sum), (size_t)V);
    }
}

double logsumexp_row(const float *row, int V)
{
    double mx = cpu()->max(row, (size_t)V);
    double sum = cpu()->exp_sum_f64(row, mx, (size_t)V);
    return mx + log(sum);
}

double crossentropy_row(const float *logits, int V, int target)
{
    return logsumexp_row(logits, V) - (double)logits[target];
}

/* dlogits = (softmax(logits) - onehot(target)) * dloss per row; rows with a
 * negative target are zero. */
typedef struct {
    float *dlogits;
    const float *logits;
    const int *targets;
    int V;
    float dloss;
} crossentropy_job;

static void crossentropy_rows(void *ctx, int64_t begin, int64_t end)
{
    const crossentropy_job *j = ctx;
    int V = j->V;
    for (int64_t r = begin; r < end; r++) {
        float *d = j->dlogits + (size_t)r * V;
        if (j->targets[r] < 0) {
            memset(d, 0, (size_t)V * sizeof(float));
            continue;
        }
        softmax_forward(d, j->logits + (size_t)r * V, 1, V);
        d[j->targets[r]] -= 1.0f;
        cpu()->scale(d, j->dloss, (size_t)V);
    }
}

void crossentropy_softmax_backward(float *dlogits, const float *logits, const int *targets, int n, int V,
                                   float dloss)
{
    crossentropy_job j = {dlogits, logits, targets, V, dloss};
    parallel_for(n, grain(V), crossentropy_rows, &j);
}
