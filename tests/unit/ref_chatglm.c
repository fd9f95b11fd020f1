/* ref_chatglm.c - the double-precision ChatGLM reference (ref_chatglm.h).
 *
 * Letters: T tokens, D hidden (Dk kept), V vocab, H query heads, KV key/value
 * groups, hd head dim, F MLP width. */
#include "ref_chatglm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

typedef struct {
    const model *m;
    bool glm2;       /* ChatGLM2/3: RMSNorm, [Q|K|V], SwiGLU, partial interleaved rotary */
    int Dk, *kidx;   /* kept hidden channels */
    const ref_chatglm_hooks *h; /* or NULL */
} ref;

/* The hook after map fmt (of layer l) of token t, if any. */
static void hook(const ref *r, const char *fmt, int l, int t, const double *x, int64_t nin, double *y, int64_t nout)
{
    if (!r->h || !r->h->linear)
        return;
    char name[200];
    snprintf(name, sizeof name, fmt, l);
    r->h->linear(r->h->ctx, name, t, x, (int)nin, y, (int)nout);
}

static double *w(const ref *r, int64_t *rows, int64_t *cols, const char *fmt, int l);
static void norm(const ref *r, double *y, const double *x, const double *g, const double *b);

/* The layer's norm PREFIX+name (its weight, and ChatGLM-6B's bias) of each of
 * the T rows of x (T, Dk) into xn. */
static void norm_rows(const ref *r, const char *prefix, const char *name, int l, double *xn, const double *x, int T)
{
    char f[160];
    snprintf(f, sizeof f, "%s%s.weight", prefix, name);
    double *g = w(r, NULL, NULL, f, l), *b = NULL;
    if (!r->glm2) {
        snprintf(f, sizeof f, "%s%s.bias", prefix, name);
        b = w(r, NULL, NULL, f, l);
    }
    for (int t = 0; t < T; t++)
        norm(r, xn + (size_t)t * r->Dk, x + (size_t)t * r->Dk, g, b);
    free(g);
    free(b);
}

/* x (Dk) = the residual (ChatGLM2: x; ChatGLM-6B: alpha times the normed xn) + y. */
static void add_residual(const ref *r, double *x, const double *xn, const double *y, double alpha)
{
    for (int i = 0; i < r->Dk; i++)
        x[i] = (r->glm2 ? x[i] : alpha * xn[i]) + y[i];
}

/* Tensor "name" (printf-style) as doubles; dies when absent. */
static double *w(const ref *r, int64_t *rows, int64_t *cols, const char *fmt, int l)
{
    char name[200];
    snprintf(name, sizeof name, fmt, l);
    const tensor *t = model_tensor(r->m, name);
    if (!t) {
        fprintf(stderr, "ref_chatglm: no tensor %s\n", name);
        exit(1);
    }
    double *d = xmalloc((size_t)t->numel * sizeof *d);
    float *f = xmalloc((size_t)t->numel * sizeof *f);
    tensor_get_f32(t, 0, t->numel, f);
    for (int64_t i = 0; i < t->numel; i++)
        d[i] = f[i];
    free(f);
    if (rows)
        *rows = t->shape[0];
    if (cols)
        *cols = t->ndim == 2 ? t->shape[1] : 1;
    return d;
}

/* y (O) = W x + b over the kept input channels when in_hidden, into the kept
 * output rows when out_hidden (W is [out, in]). */
static void matvec(const ref *r, double *y, const double *W, const double *b, int64_t O, int64_t I, const double *x,
                   bool in_hidden, bool out_hidden)
{
    int64_t on = out_hidden ? r->Dk : O, in = in_hidden ? r->Dk : I;
    for (int64_t o = 0; o < on; o++) {
        int64_t row = out_hidden ? r->kidx[o] : o;
        double s = b ? b[row] : 0;
        for (int64_t i = 0; i < in; i++)
            s += W[row * I + (in_hidden ? r->kidx[i] : i)] * x[i];
        y[o] = s;
    }
}

/* LayerNorm (with bias) or RMSNorm of x (Dk) over the kept channels. */
static void norm(const ref *r, double *y, const double *x, const double *g, const double *b)
{
    double eps = r->m->cfg.norm_eps, mean = 0, var = 0;
    int n = r->Dk;
    if (!r->glm2)
        for (int i = 0; i < n; i++)
            mean += x[i] / n;
    for (int i = 0; i < n; i++)
        var += (x[i] - mean) * (x[i] - mean) / n;
    for (int i = 0; i < n; i++)
        y[i] = (x[i] - mean) / sqrt(var + eps) * g[r->kidx[i]] + (b ? b[r->kidx[i]] : 0);
}

/* Rotate n/2 pairs of v (n values) by position p: rotate-half pairs (i, i + n/2)
 * or interleaved (2i, 2i + 1); frequency base^(-2i/n). */
static void rotate(double *v, int n, double p, double base, bool interleaved)
{
    for (int i = 0; i < n / 2; i++) {
        double a = p * pow(base, -2.0 * i / n), c = cos(a), s = sin(a);
        double *x0 = interleaved ? &v[2 * i] : &v[i], *x1 = interleaved ? &v[2 * i + 1] : &v[i + n / 2];
        double u = *x0, z = *x1;
        *x0 = u * c - z * s;
        *x1 = z * c + u * s;
    }
}

static double gelu(double x) { return 0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))); }

static void logits_of(const model *m, const int *tokens, int T, int prefix, const bool *keep,
                      const ref_chatglm_hooks *h, double *logits)
{
    const model_config *c = &m->cfg;
    ref r = {m, c->arch == ARCH_CHATGLM2, 0, xmalloc((size_t)c->dim * sizeof(int)), h};
    for (int i = 0; i < c->dim; i++)
        if (!keep || keep[i])
            r.kidx[r.Dk++] = i;
    int Dk = r.Dk, V = c->vocab, L = c->n_layers, hd = c->head_dim;
    const char *P = r.glm2 ? "transformer.encoder.layers.%d." : "transformer.layers.%d.";
    const char *att = r.glm2 ? "self_attention." : "attention.";
    char f[160];
    double alpha = sqrt(2.0 * c->alpha_layers), base = r.glm2 ? c->rope_theta : 10000.0;
    double *x = xmalloc((size_t)T * Dk * sizeof *x), *xn = xmalloc((size_t)T * Dk * sizeof *xn);
    double *E = w(&r, NULL, NULL, r.glm2 ? "transformer.embedding.word_embeddings.weight" : "transformer.word_embeddings.weight", 0);
    for (int t = 0; t < T; t++)
        for (int i = 0; i < Dk; i++)
            x[t * Dk + i] = E[(size_t)tokens[t] * c->dim + r.kidx[i]];
    free(E);
    for (int l = 0; l < L; l++) {
        int H = c->n_heads[l], KV = c->n_kv_heads[l], F = c->ffn_dim[l];
        if (H > 0) {
            norm_rows(&r, P, "input_layernorm", l, xn, x, T);
            int64_t O, I;
            snprintf(f, sizeof f, "%s%squery_key_value.weight", P, att);
            double *Wq = w(&r, &O, &I, f, l);
            snprintf(f, sizeof f, "%s%squery_key_value.bias", P, att);
            double *bq = (r.glm2 && !c->qkv_bias) ? NULL : w(&r, NULL, NULL, f, l);
            double *qkv = xmalloc((size_t)T * O * sizeof *qkv);
            snprintf(f, sizeof f, "%s%squery_key_value.weight", P, att);
            for (int t = 0; t < T; t++) {
                matvec(&r, qkv + t * O, Wq, bq, O, I, xn + t * Dk, true, false);
                hook(&r, f, l, t, xn + t * Dk, I, qkv + t * O, O);
            }
            free(Wq);
            free(bq);
            /* q, k, v of head h / group g at token t */
            double *q = xmalloc((size_t)T * H * hd * sizeof *q), *k = xmalloc((size_t)T * KV * hd * sizeof *k);
            double *v = xmalloc((size_t)T * KV * hd * sizeof *v);
            for (int t = 0; t < T; t++) {
                const double *row = qkv + t * O;
                for (int h = 0; h < H; h++)
                    for (int i = 0; i < hd; i++)
                        q[(t * H + h) * hd + i] = r.glm2 ? row[h * hd + i] : row[h * 3 * hd + i];
                for (int g2 = 0; g2 < KV; g2++)
                    for (int i = 0; i < hd; i++) {
                        k[(t * KV + g2) * hd + i] = r.glm2 ? row[H * hd + g2 * hd + i] : row[g2 * 3 * hd + hd + i];
                        v[(t * KV + g2) * hd + i] = r.glm2 ? row[H * hd + KV * hd + g2 * hd + i] : row[g2 * 3 * hd + 2 * hd + i];
                    }
                int pos = prefix == 0 || t < prefix ? t : prefix - 1, bpos = prefix == 0 || t < prefix ? 0 : t - prefix + 1;
                for (int h = 0; h < H + KV; h++) {
                    double *u = h < H ? q + (t * H + h) * hd : k + (t * KV + h - H) * hd;
                    if (r.glm2) {
                        rotate(u, hd / 2, t, base, true);
                    } else {
                        rotate(u, hd / 2, pos, base, false);
                        rotate(u + hd / 2, hd / 2, bpos, base, false);
                    }
                }
            }
            free(qkv);
            double *ctx = xcalloc((size_t)T * H * hd, sizeof *ctx), *p = xmalloc((size_t)T * sizeof *p);
            for (int t = 0; t < T; t++)
                for (int h = 0; h < H; h++) {
                    int g2 = h / (H / KV);
                    double mx = -INFINITY, sum = 0;
                    for (int s = 0; s < T; s++) {
                        bool sees = s <= t || s < prefix;
                        double d = 0;
                        for (int i = 0; i < hd; i++)
                            d += q[(t * H + h) * hd + i] * k[(s * KV + g2) * hd + i];
                        p[s] = sees ? d / sqrt((double)hd) : -INFINITY;
                        mx = p[s] > mx ? p[s] : mx;
                    }
                    for (int s = 0; s < T; s++)
                        sum += (p[s] = exp(p[s] - mx));
                    for (int s = 0; s < T; s++)
                        for (int i = 0; i < hd; i++)
                            ctx[(t * H + h) * hd + i] += p[s] / sum * v[(s * KV + g2) * hd + i];
                }
            free(p);
            free(q);
            free(k);
            free(v);
            snprintf(f, sizeof f, "%s%sdense.weight", P, att);
            double *Wo = w(&r, &O, &I, f, l), *bo = NULL;
            if (!r.glm2) {
                snprintf(f, sizeof f, "%s%sdense.bias", P, att);
                bo = w(&r, NULL, NULL, f, l);
            }
            double *y = xmalloc((size_t)Dk * sizeof *y);
            for (int t = 0; t < T; t++) {
                matvec(&r, y, Wo, bo, O, I, ctx + t * H * hd, false, true);
                snprintf(f, sizeof f, "%s%sdense.weight", P, att);
                hook(&r, f, l, t, ctx + t * H * hd, I, y, O);
                add_residual(&r, x + t * Dk, xn + t * Dk, y, alpha);
            }
            free(y);
            free(Wo);
            free(bo);
            free(ctx);
        }
        if (F > 0) {
            norm_rows(&r, P, "post_attention_layernorm", l, xn, x, T);
            int64_t O, I, O2, I2;
            snprintf(f, sizeof f, "%smlp.dense_h_to_4h.weight", P);
            double *W1 = w(&r, &O, &I, f, l), *b1 = NULL;
            if (!r.glm2) {
                snprintf(f, sizeof f, "%smlp.dense_h_to_4h.bias", P);
                b1 = w(&r, NULL, NULL, f, l);
            }
            snprintf(f, sizeof f, "%smlp.dense_4h_to_h.weight", P);
            double *W2 = w(&r, &O2, &I2, f, l), *b2 = NULL;
            if (!r.glm2) {
                snprintf(f, sizeof f, "%smlp.dense_4h_to_h.bias", P);
                b2 = w(&r, NULL, NULL, f, l);
            }
            double *u = xmalloc((size_t)O * sizeof *u), *hid = xmalloc((size_t)F * sizeof *hid);
            double *y = xmalloc((size_t)Dk * sizeof *y);
            for (int t = 0; t < T; t++) {
                matvec(&r, u, W1, b1, O, I, xn + t * Dk, true, false);
                snprintf(f, sizeof f, "%smlp.dense_h_to_4h.weight", P);
                hook(&r, f, l, t, xn + t * Dk, I, u, O);
                for (int j = 0; j < F; j++) /* glm2: gate rows [0, F), up rows [F, 2F) */
                    hid[j] = r.glm2 ? u[j] / (1 + exp(-u[j])) * u[F + j] : gelu(u[j]);
                matvec(&r, y, W2, b2, O2, I2, hid, false, true);
                snprintf(f, sizeof f, "%smlp.dense_4h_to_h.weight", P);
                hook(&r, f, l, t, hid, I2, y, O2);
                add_residual(&r, x + t * Dk, xn + t * Dk, y, alpha);
            }
            free(u);
            free(hid);
            free(y);
            free(W1);
            free(b1);
            free(W2);
            free(b2);
        }
    }
    double *g = w(&r, NULL, NULL, r.glm2 ? "transformer.encoder.final_layernorm.weight" : "transformer.final_layernorm.weight", 0);
    double *b = r.glm2 ? NULL : w(&r, NULL, NULL, "transformer.final_layernorm.bias", 0);
    int64_t O, I;
    double *Wh = w(&r, &O, &I, r.glm2 ? "transformer.output_layer.weight" : "lm_head.weight", 0);
    for (int t = 0; t < T; t++) {
        norm(&r, xn + t * Dk, x + t * Dk, g, b);
        matvec(&r, logits + (size_t)t * V, Wh, NULL, O, I, xn + t * Dk, true, false);
    }
    free(g);
    free(b);
    free(Wh);
    free(x);
    free(xn);
    free(r.kidx);
}

void ref_chatglm_logits(const model *m, const int *tokens, int T, int prefix, const bool *keep, double *logits)
{
    logits_of(m, tokens, T, prefix, keep, NULL, logits);
}

void ref_chatglm_logits_hooked(const model *m, const int *tokens, int T, int prefix, const ref_chatglm_hooks *h,
                               double *logits)
{
    logits_of(m, tokens, T, prefix, NULL, h, logits);
}

/* log softmax(row)[i] of a row of V logits */
static double log_prob(const double *row, int V, int i)
{
    double mx = row[0], s = 0;
    for (int j = 1; j < V; j++)
        mx = row[j] > mx ? row[j] : mx;
    for (int j = 0; j < V; j++)
        s += exp(row[j] - mx);
    return row[i] - mx - log(s);
}

double ref_chatglm_loss(const model *m, const int *tokens, int T, int prefix)
{
    int V = m->cfg.vocab;
    double *lg = xmalloc((size_t)T * V * sizeof *lg), loss = 0;
    ref_chatglm_logits(m, tokens, T, prefix, NULL, lg);
    for (int t = 0; t + 1 < T; t++)
        loss -= log_prob(lg + (size_t)t * V, V, tokens[t + 1]);
    free(lg);
    return loss / (T - 1);
}

double ref_chatglm_loglik(const model *m, const int *ctx, int n_ctx, int gmask, int sop, const int *cont, int n_cont)
{
    int V = m->cfg.vocab, T = n_ctx + 1 + n_cont; /* the last continuation token is not read */
    int *seq = xmalloc((size_t)T * sizeof *seq);
    memcpy(seq, ctx, (size_t)n_ctx * sizeof *seq);
    seq[n_ctx] = gmask;
    seq[n_ctx + 1] = sop;
    memcpy(seq + n_ctx + 2, cont, (size_t)(n_cont - 1) * sizeof *seq);
    double *lg = xmalloc((size_t)T * V * sizeof *lg), ll = 0;
    ref_chatglm_logits(m, seq, T, n_ctx + 1, NULL, lg);
    for (int j = 0; j < n_cont; j++) /* <sop> at n_ctx + 1 predicts cont[0] */
        ll += log_prob(lg + (size_t)(n_ctx + 1 + j) * V, V, cont[j]);
    free(lg);
    free(seq);
    return ll;
}
