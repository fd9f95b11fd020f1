/* ref_llama.c - the unit tests' double-precision LLaMA (ref_llama.h): every
 * kernel straight from its formula, loops only, forward beside backward.
 *
 * Letters: B sequences, T tokens, N = B*T rows, D hidden, V vocab, H query heads,
 * KV key/value heads, hd head dim, F MLP width, I/O a linear map's in/out width. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "ref_llama.h"

/* ---- the weights ---- */

#define model_names(c) model_archs[(c)->arch].outer_names
/* A layer's weight k is named "model.layers.L." + its name in the architecture. */
#define layer_names(c, k) model_archs[(c)->arch].layer_names[k]

/* Qwen3's per-head q_norm and k_norm (transformers' Qwen3Attention). */
static bool has_qk_norm(const model_config *c) { return !strcmp(c->model_type, "qwen3"); }

/* Elements of weight k of layer l (l < 0: the model's) by the config; 0 if it has none. */
static int64_t weight_numel(const model_config *c, int l, int k)
{
    int64_t D = c->dim, V = c->vocab;
    if (l < 0)
        return k == REF_FINAL_NORM ? D : k == REF_EMBED || k == REF_LM_HEAD ? V * D : 0;
    int64_t H = c->n_heads[l], KV = c->n_kv_heads[l], F = c->ffn_dim[l], hd = c->head_dim;
    bool attn = H > 0, ffn = F > 0;
    switch (k) {
    case REF_ATTN_NORM: return attn ? D : 0;
    case REF_WQ: return attn ? H * hd * D : 0;
    case REF_BQ: return attn && c->qkv_bias ? H * hd : 0;
    case REF_WK:
    case REF_WV: return attn ? KV * hd * D : 0;
    case REF_BK:
    case REF_BV: return attn && c->qkv_bias ? KV * hd : 0;
    case REF_WO: return attn ? D * H * hd : 0;
    case REF_QNORM:
    case REF_KNORM: return attn && has_qk_norm(c) ? hd : 0;
    case REF_BO: return attn && c->o_bias ? D : 0;
    case REF_FFN_NORM: return ffn ? D : 0;
    case REF_WGATE:
    case REF_WUP:
    case REF_WDOWN: return ffn ? F * D : 0;
    case REF_BDOWN: return ffn && c->down_bias ? D : 0;
    default: return 0;
    }
}

/* The one place the reference reads the model: weight k of layer l (l < 0: the
 * model's own) as a new array of n doubles. */
static double *fetch(const model *m, int l, int k, int64_t n)
{
    const tensor *src;
    if (l < 0) {
        src = m->outer[k];
    } else {
        src = m->layers[l].slot[k];
    }
    if (!src || src->numel < n) {
        fprintf(stderr, "reference: the model has no %s%s (layer %d)\n", l < 0 ? "" : "layer's ",
                l < 0 ? model_names(&m->cfg)[k] : layer_names(&m->cfg, k), l);
        exit(1);
    }
    double *d = xmalloc((size_t)n * sizeof *d);
    float buf[1024];
    for (int64_t i = 0; i < n; i += 1024) {
        int64_t c = n - i < 1024 ? n - i : 1024;
        tensor_get_f32(src, i, c, buf);
        for (int64_t j = 0; j < c; j++)
            d[i + j] = buf[j];
    }
    return d;
}

void ref_model_init(ref_model *r, const model *m)
{
    const model_config *c = &m->cfg;
    r->cfg = c;
    r->n_slots = REF_MODEL_WEIGHTS + c->n_layers * REF_LAYER_WEIGHTS;
    r->w = xcalloc((size_t)r->n_slots, sizeof *r->w);
    r->numel = xcalloc((size_t)r->n_slots, sizeof *r->numel);
    for (int l = -1; l < c->n_layers; l++)
        for (int k = 0; k < (l < 0 ? REF_MODEL_WEIGHTS : REF_LAYER_WEIGHTS); k++) {
            int s = ref_slot(l, k);
            r->numel[s] = weight_numel(c, l, k);
            if (l < 0 && k == REF_LM_HEAD && c->tied)
                r->w[s] = r->w[REF_EMBED];
            else if (r->numel[s])
                r->w[s] = fetch(m, l, k, r->numel[s]);
        }
}

void ref_model_free(ref_model *r)
{
    ref_grads_free(r, r->w);
    free(r->numel);
}

int ref_slot_named(const ref_model *r, const char *name)
{
    int s = -1;
    for (int k = 0; k < REF_MODEL_WEIGHTS; k++)
        if (model_names(r->cfg)[k] && !strcmp(name, model_names(r->cfg)[k]))
            s = k;
    int l, at = 0;
    if (s < 0 && sscanf(name, "model.layers.%d.%n", &l, &at) == 1 && at > 0 && l >= 0 && l < r->cfg->n_layers)
        for (int k = 0; k < REF_LAYER_WEIGHTS; k++)
            if (layer_names(r->cfg, k) && !strcmp(name + at, layer_names(r->cfg, k)))
                s = ref_slot(l, k);
    if (s < 0 || !r->w[s] || (s == REF_LM_HEAD && r->cfg->tied))
        return -1;
    return s;
}

double **ref_grads_new(const ref_model *r)
{
    double **g = xcalloc((size_t)r->n_slots, sizeof *g);
    for (int s = 0; s < r->n_slots; s++)
        if (s == REF_LM_HEAD && r->cfg->tied)
            g[s] = g[REF_EMBED];
        else if (r->numel[s])
            g[s] = xcalloc((size_t)r->numel[s], sizeof(double));
    return g;
}

void ref_grads_free(const ref_model *r, double **g)
{
    for (int s = 0; s < r->n_slots; s++)
        if (!(s == REF_LM_HEAD && r->cfg->tied))
            free(g[s]);
    free(g);
}

/* ---- kernels, each forward beside its backward ---- */

static double *dz(size_t n) { return xcalloc(n ? n : 1, sizeof(double)); }

/* y (N, O) = x (N, I) W^T + b */
static void lin_fwd(double *y, const double *x, const double *w, const double *b, int N, int I, int O)
{
    for (int n = 0; n < N; n++)
        for (int o = 0; o < O; o++) {
            double s = b ? b[o] : 0;
            for (int i = 0; i < I; i++)
                s += x[(size_t)n * I + i] * w[(size_t)o * I + i];
            y[(size_t)n * O + o] = s;
        }
}

/* dx += dy W, dW += dy^T x, db += sum dy */
static void lin_bwd(double *dx, double *dw, double *db, const double *dy, const double *x, const double *w, int N,
                    int I, int O)
{
    for (int n = 0; n < N; n++)
        for (int o = 0; o < O; o++) {
            double g = dy[(size_t)n * O + o];
            if (db)
                db[o] += g;
            for (int i = 0; i < I; i++) {
                if (dx)
                    dx[(size_t)n * I + i] += g * w[(size_t)o * I + i];
                dw[(size_t)o * I + i] += g * x[(size_t)n * I + i];
            }
        }
}

/* y = x r w, r = (mean x^2 + eps)^-1/2, the mean over the kept channels (all when
 * keep is NULL); y is 0 on the others. */
static void rms_fwd(double *y, double *r, const double *x, const double *w, const bool *keep, int N, int D,
                    double eps)
{
    for (int n = 0; n < N; n++) {
        double ss = 0;
        int kept = 0;
        for (int i = 0; i < D; i++)
            if (!keep || keep[i]) {
                ss += x[(size_t)n * D + i] * x[(size_t)n * D + i];
                kept++;
            }
        r[n] = 1.0 / sqrt(ss / kept + eps);
        for (int i = 0; i < D; i++)
            y[(size_t)n * D + i] = !keep || keep[i] ? x[(size_t)n * D + i] * r[n] * w[i] : 0;
    }
}

/* dx += r w dy - x r^3 / D sum_j w_j dy_j x_j. adw (if not NULL) += the magnitudes
 * |dy x r| that dw sums (a norm weight's gradient cancels over the tokens: this is
 * the scale its float32 error has). */
static void rms_bwd(double *dx, double *dw, double *adw, const double *dy, const double *x, const double *w,
                    const double *r, int N, int D)
{
    for (int n = 0; n < N; n++) {
        const double *xr = x + (size_t)n * D, *g = dy + (size_t)n * D;
        double dot = 0;
        for (int i = 0; i < D; i++) {
            dot += w[i] * g[i] * xr[i];
            dw[i] += g[i] * xr[i] * r[n];
            if (adw)
                adw[i] += fabs(g[i] * xr[i] * r[n]);
        }
        for (int i = 0; i < D; i++)
            dx[(size_t)n * D + i] += r[n] * w[i] * g[i] - xr[i] * r[n] * r[n] * r[n] / D * dot;
    }
}

/* The inverse frequency of pair i: theta^(-2i/hd) in float as Hugging Face and
 * llama2.c compute it, then rope_scaling as transformers' modeling_rope_utils
 * defines it: linear divides every frequency by factor; llama3 divides those whose
 * wavelength 2 pi / f exceeds original_max_position_embeddings / low_freq_factor,
 * keeps those below original_max_position_embeddings / high_freq_factor, and
 * between the two mixes f / factor and f by s = (original / wavelength - low) /
 * (high - low). */
static double inv_freq(const model_config *c, int i, int hd)
{
    double f = 1.0f / powf(c->rope_theta, (float)(2 * i) / (float)hd);
    const rope_scaling_config *sc = &c->rope_scaling;
    if (sc->type == ROPE_SCALING_LINEAR)
        return f / sc->factor;
    if (sc->type != ROPE_SCALING_LLAMA3)
        return f;
    double wavelen = 2 * M_PI / f;
    if (wavelen < sc->original_max_seq / sc->high_freq_factor)
        return f;
    if (wavelen > sc->original_max_seq / sc->low_freq_factor)
        return f / sc->factor;
    double s = (sc->original_max_seq / wavelen - sc->low_freq_factor) / (sc->high_freq_factor - sc->low_freq_factor);
    return (1 - s) * f / sc->factor + s * f;
}

/* Rotate x (B, T, nh, hd) by +angle (dir 1) or -angle (dir -1, the backward).
 * Pairs (2i, 2i+1) interleaved or (i, i + hd/2) half; angle = pos * inv_freq(i),
 * the angle in float as Hugging Face and llama2.c compute it, cos and sin in double. */
static void rope(double *x, int B, int T, int nh, int hd, const model_config *c, int dir)
{
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int h = 0; h < nh; h++)
                for (int i = 0; i < hd / 2; i++) {
                    float ang = (float)t * (float)inv_freq(c, i, hd);
                    double cs = cos((double)ang), sn = dir * sin((double)ang);
                    double *v = x + (((size_t)b * T + t) * nh + h) * hd;
                    int i0 = c->rope_style == ROPE_INTERLEAVED ? 2 * i : i;
                    int i1 = c->rope_style == ROPE_INTERLEAVED ? 2 * i + 1 : i + hd / 2;
                    double a = v[i0], e = v[i1];
                    v[i0] = a * cs - e * sn;
                    v[i1] = a * sn + e * cs;
                }
}

/* Causal attention; query head h reads key/value head h / (H/KV). att (B, H, T, T)
 * keeps the probabilities. */
static void attn_fwd(double *ctx, double *att, const double *q, const double *k, const double *v, int B, int T, int H,
                     int KV, int hd)
{
    int rep = H / KV;
    double scale = 1.0 / sqrt((double)hd);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            int g = h / rep;
            for (int t = 0; t < T; t++) {
                double *p = att + (((size_t)b * H + h) * T + t) * T, mx = -INFINITY, z = 0;
                const double *qt = q + ((size_t)b * T + t) * H * hd + h * hd;
                for (int s = 0; s <= t; s++) {
                    const double *ks = k + ((size_t)b * T + s) * KV * hd + g * hd;
                    double d = 0;
                    for (int i = 0; i < hd; i++)
                        d += qt[i] * ks[i];
                    p[s] = d * scale;
                    mx = fmax(mx, p[s]);
                }
                for (int s = 0; s <= t; s++)
                    z += (p[s] = exp(p[s] - mx));
                for (int s = 0; s < T; s++)
                    p[s] = s <= t ? p[s] / z : 0;
                double *ct = ctx + ((size_t)b * T + t) * H * hd + h * hd;
                for (int i = 0; i < hd; i++) {
                    double a = 0;
                    for (int s = 0; s <= t; s++)
                        a += p[s] * v[((size_t)b * T + s) * KV * hd + g * hd + i];
                    ct[i] = a;
                }
            }
        }
}

static void attn_bwd(double *dq, double *dk, double *dv, const double *dctx, const double *att, const double *q,
                     const double *k, const double *v, int B, int T, int H, int KV, int hd)
{
    int rep = H / KV;
    double scale = 1.0 / sqrt((double)hd);
    double *dp = xmalloc((size_t)T * sizeof *dp);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            int g = h / rep;
            for (int t = 0; t < T; t++) {
                const double *p = att + (((size_t)b * H + h) * T + t) * T;
                const double *dc = dctx + ((size_t)b * T + t) * H * hd + h * hd;
                double dot = 0;
                for (int s = 0; s <= t; s++) {
                    const double *vs = v + ((size_t)b * T + s) * KV * hd + g * hd;
                    double d = 0;
                    for (int i = 0; i < hd; i++) {
                        d += dc[i] * vs[i];
                        dv[((size_t)b * T + s) * KV * hd + g * hd + i] += p[s] * dc[i];
                    }
                    dp[s] = d;
                    dot += p[s] * d;
                }
                for (int s = 0; s <= t; s++) {
                    double ds = p[s] * (dp[s] - dot) * scale;
                    for (int i = 0; i < hd; i++) {
                        dq[((size_t)b * T + t) * H * hd + h * hd + i] +=
                            ds * k[((size_t)b * T + s) * KV * hd + g * hd + i];
                        dk[((size_t)b * T + s) * KV * hd + g * hd + i] +=
                            ds * q[((size_t)b * T + t) * H * hd + h * hd + i];
                    }
                }
            }
        }
    free(dp);
}

/* ---- the model ---- */

/* What the forward keeps for the backward: per layer, and (at index L) the end. */
typedef struct {
    double *x;                  /* (N, D) the layer's input; at L: the last residual */
    double *xna, *ra;           /* (N, D), (N): input_layernorm's output and 1/rms; at L: the final norm's */
    double *q, *k, *v;          /* (N, H*hd), (N, KV*hd) x2, after rotation */
    double *qp, *kp, *rq, *rk;  /* Qwen3: q and k before their norms, (N*H), (N*KV) the heads' 1/rms */
    double *att, *ctx;          /* (B, H, T, T) probabilities, (N, H*hd) */
    double *xmid;               /* (N, D) after attention */
    double *xnm, *rm;           /* (N, D), (N): post_attention_layernorm's */
    double *gate, *up, *hid;    /* (N, F) */
} saved;

static void saved_free(saved *S, int L)
{
    for (int l = 0; l <= L; l++) {
        saved *s = &S[l];
        double *p[] = {s->x,   s->xna, s->ra,  s->q,   s->k,  s->v,  s->qp,   s->kp, s->rq,
                       s->rk,  s->att, s->ctx, s->xmid, s->xnm, s->rm, s->gate, s->up, s->hid};
        for (size_t i = 0; i < sizeof p / sizeof *p; i++)
            free(p[i]);
    }
    free(S);
}

static const double *W(const ref_model *r, int l, int k) { return r->w[ref_slot(l, k)]; }

static void linear(double *y, const double *x, const double *w, const double *b, int N, int I, int O,
                   const ref_hooks *hk, int l, enum ref_linear which)
{
    lin_fwd(y, x, w, b, N, I, O);
    if (hk && hk->linear)
        for (int n = 0; n < N; n++)
            hk->linear(hk->ctx, l, which, n, x + (size_t)n * I, I, y + (size_t)n * O, O);
}

/* out (N, D) = x + o on the kept channels */
static double *residual(const double *x, const double *o, const bool *keep, int N, int D)
{
    double *out = dz((size_t)N * D);
    for (int n = 0; n < N; n++)
        for (int i = 0; i < D; i++)
            out[(size_t)n * D + i] = x[(size_t)n * D + i] + (!keep || keep[i] ? o[(size_t)n * D + i] : 0);
    return out;
}

/* The forward pass: returns logits (N, V) and S[0..L] (new; saved_free). */
static double *forward(const ref_model *r, const int *tokens, int B, int T, const ref_hooks *hk, saved **out_S)
{
    const model_config *c = r->cfg;
    int L = c->n_layers, D = c->dim, V = c->vocab, hd = c->head_dim, N = B * T;
    double eps = c->norm_eps;
    const bool *keep = hk ? hk->keep : NULL;
    saved *S = xcalloc((size_t)L + 1, sizeof *S);
    double *x = dz((size_t)N * D);
    for (int n = 0; n < N; n++)
        for (int i = 0; i < D; i++)
            x[(size_t)n * D + i] = !keep || keep[i] ? W(r, -1, REF_EMBED)[(size_t)tokens[n] * D + i] : 0;
    for (int l = 0; l < L; l++) {
        saved *s = &S[l];
        int H = c->n_heads[l], KV = c->n_kv_heads[l], F = c->ffn_dim[l], qd = H * hd, kvd = KV * hd;
        s->x = x;
        double *o = dz((size_t)N * D);
        if (H > 0) {
            s->xna = dz((size_t)N * D);
            s->ra = dz((size_t)N);
            rms_fwd(s->xna, s->ra, x, W(r, l, REF_ATTN_NORM), keep, N, D, eps);
            s->q = dz((size_t)N * qd);
            s->k = dz((size_t)N * kvd);
            s->v = dz((size_t)N * kvd);
            linear(s->q, s->xna, W(r, l, REF_WQ), W(r, l, REF_BQ), N, D, qd, hk, l, REF_LINEAR_Q);
            linear(s->k, s->xna, W(r, l, REF_WK), W(r, l, REF_BK), N, D, kvd, hk, l, REF_LINEAR_K);
            linear(s->v, s->xna, W(r, l, REF_WV), W(r, l, REF_BV), N, D, kvd, hk, l, REF_LINEAR_V);
            if (has_qk_norm(c)) { /* every head of q and k RMS-normed over its hd channels */
                s->qp = s->q, s->q = dz((size_t)N * qd), s->rq = dz((size_t)N * H);
                s->kp = s->k, s->k = dz((size_t)N * kvd), s->rk = dz((size_t)N * KV);
                rms_fwd(s->q, s->rq, s->qp, W(r, l, REF_QNORM), NULL, N * H, hd, eps);
                rms_fwd(s->k, s->rk, s->kp, W(r, l, REF_KNORM), NULL, N * KV, hd, eps);
            }
            rope(s->q, B, T, H, hd, c, 1);
            rope(s->k, B, T, KV, hd, c, 1);
            s->att = dz((size_t)B * H * T * T);
            s->ctx = dz((size_t)N * qd);
            attn_fwd(s->ctx, s->att, s->q, s->k, s->v, B, T, H, KV, hd);
            linear(o, s->ctx, W(r, l, REF_WO), W(r, l, REF_BO), N, qd, D, hk, l, REF_LINEAR_O);
        }
        s->xmid = residual(x, o, keep, N, D);
        memset(o, 0, (size_t)N * D * sizeof *o);
        if (F > 0) {
            s->xnm = dz((size_t)N * D);
            s->rm = dz((size_t)N);
            rms_fwd(s->xnm, s->rm, s->xmid, W(r, l, REF_FFN_NORM), keep, N, D, eps);
            s->gate = dz((size_t)N * F);
            s->up = dz((size_t)N * F);
            s->hid = dz((size_t)N * F);
            linear(s->gate, s->xnm, W(r, l, REF_WGATE), NULL, N, D, F, hk, l, REF_LINEAR_GATE);
            linear(s->up, s->xnm, W(r, l, REF_WUP), NULL, N, D, F, hk, l, REF_LINEAR_UP);
            for (size_t i = 0; i < (size_t)N * F; i++)
                s->hid[i] = s->gate[i] / (1 + exp(-s->gate[i])) * s->up[i];
            linear(o, s->hid, W(r, l, REF_WDOWN), W(r, l, REF_BDOWN), N, F, D, hk, l, REF_LINEAR_DOWN);
        }
        x = residual(s->xmid, o, keep, N, D);
        free(o);
    }
    saved *f = &S[L];
    f->x = x;
    f->xna = dz((size_t)N * D);
    f->ra = dz((size_t)N);
    rms_fwd(f->xna, f->ra, x, W(r, -1, REF_FINAL_NORM), keep, N, D, eps);
    double *logits = dz((size_t)N * V);
    linear(logits, f->xna, W(r, -1, REF_LM_HEAD), NULL, N, D, V, hk, -1, REF_LINEAR_HEAD);
    *out_S = S;
    return logits;
}

void ref_forward(const ref_model *r, const int *tokens, int B, int T, const ref_hooks *hooks, double *logits)
{
    saved *S;
    double *lg = forward(r, tokens, B, T, hooks, &S);
    memcpy(logits, lg, (size_t)B * T * r->cfg->vocab * sizeof *lg);
    free(lg);
    saved_free(S, r->cfg->n_layers);
}

/* Mean cross-entropy of logits (N, V) against targets; dlog (if not NULL, (N, V))
 * gets its gradient. */
static double cross_entropy(const double *logits, const int *targets, int N, int V, double *dlog)
{
    int count = 0;
    for (int n = 0; n < N; n++)
        count += targets[n] >= 0;
    double loss = 0;
    for (int n = 0; n < N; n++) {
        if (targets[n] < 0)
            continue;
        const double *lg = logits + (size_t)n * V;
        double mx = -INFINITY, z = 0;
        for (int i = 0; i < V; i++)
            mx = fmax(mx, lg[i]);
        for (int i = 0; i < V; i++)
            z += exp(lg[i] - mx);
        loss += mx + log(z) - lg[targets[n]];
        if (dlog)
            for (int i = 0; i < V; i++)
                dlog[(size_t)n * V + i] = (exp(lg[i] - mx) / z - (i == targets[n])) / count;
    }
    return loss / count;
}

double ref_loss(const ref_model *r, const int *tokens, const int *targets, int B, int T, const ref_hooks *hooks)
{
    saved *S;
    double *logits = forward(r, tokens, B, T, hooks, &S);
    double loss = cross_entropy(logits, targets, B * T, r->cfg->vocab, NULL);
    free(logits);
    saved_free(S, r->cfg->n_layers);
    return loss;
}

double ref_loss_grad(const ref_model *r, const int *tokens, const int *targets, int B, int T, const ref_hooks *hooks,
                     double **grads, double **absg)
{
    const model_config *c = r->cfg;
    int L = c->n_layers, D = c->dim, V = c->vocab, hd = c->head_dim, N = B * T;
    if (hooks && hooks->keep) {
        fprintf(stderr, "reference: no backward with kept channels\n");
        exit(1);
    }
    for (int s = 0; s < r->n_slots; s++)
        if (grads[s]) {
            memset(grads[s], 0, (size_t)r->numel[s] * sizeof(double));
            if (absg)
                memset(absg[s], 0, (size_t)r->numel[s] * sizeof(double));
        }
    saved *S;
    double *logits = forward(r, tokens, B, T, hooks, &S);
    double *dlog = dz((size_t)N * V);
    double loss = cross_entropy(logits, targets, N, V, dlog);

    double **G = grads;
#define GRAD(l, k) G[ref_slot(l, k)]
#define ABSG(l, k) (absg ? absg[ref_slot(l, k)] : NULL)
    double *dxnf = dz((size_t)N * D), *dx = dz((size_t)N * D);
    lin_bwd(dxnf, GRAD(-1, REF_LM_HEAD), NULL, dlog, S[L].xna, W(r, -1, REF_LM_HEAD), N, D, V);
    rms_bwd(dx, GRAD(-1, REF_FINAL_NORM), ABSG(-1, REF_FINAL_NORM), dxnf, S[L].x, W(r, -1, REF_FINAL_NORM), S[L].ra,
            N, D);
    for (int l = L - 1; l >= 0; l--) {
        saved *s = &S[l];
        int H = c->n_heads[l], KV = c->n_kv_heads[l], F = c->ffn_dim[l], qd = H * hd, kvd = KV * hd;
        if (F > 0) {
            double *dhid = dz((size_t)N * F), *dg = dz((size_t)N * F), *du = dz((size_t)N * F);
            double *dxn = dz((size_t)N * D);
            lin_bwd(dhid, GRAD(l, REF_WDOWN), GRAD(l, REF_BDOWN), dx, s->hid, W(r, l, REF_WDOWN), N, F, D);
            for (size_t i = 0; i < (size_t)N * F; i++) {
                double g = s->gate[i], sg = 1 / (1 + exp(-g));
                du[i] = dhid[i] * g * sg;
                dg[i] = dhid[i] * s->up[i] * sg * (1 + g * (1 - sg));
            }
            lin_bwd(dxn, GRAD(l, REF_WGATE), NULL, dg, s->xnm, W(r, l, REF_WGATE), N, D, F);
            lin_bwd(dxn, GRAD(l, REF_WUP), NULL, du, s->xnm, W(r, l, REF_WUP), N, D, F);
            rms_bwd(dx, GRAD(l, REF_FFN_NORM), ABSG(l, REF_FFN_NORM), dxn, s->xmid, W(r, l, REF_FFN_NORM), s->rm, N,
                    D);
            free(dhid);
            free(dg);
            free(du);
            free(dxn);
        }
        if (H > 0) {
            double *dctx = dz((size_t)N * qd), *dq = dz((size_t)N * qd), *dk = dz((size_t)N * kvd);
            double *dv = dz((size_t)N * kvd), *dxn = dz((size_t)N * D);
            lin_bwd(dctx, GRAD(l, REF_WO), GRAD(l, REF_BO), dx, s->ctx, W(r, l, REF_WO), N, qd, D);
            attn_bwd(dq, dk, dv, dctx, s->att, s->q, s->k, s->v, B, T, H, KV, hd);
            rope(dq, B, T, H, hd, c, -1);
            rope(dk, B, T, KV, hd, c, -1);
            if (has_qk_norm(c)) {
                double *dqp = dz((size_t)N * qd), *dkp = dz((size_t)N * kvd);
                rms_bwd(dqp, GRAD(l, REF_QNORM), ABSG(l, REF_QNORM), dq, s->qp, W(r, l, REF_QNORM), s->rq, N * H, hd);
                rms_bwd(dkp, GRAD(l, REF_KNORM), ABSG(l, REF_KNORM), dk, s->kp, W(r, l, REF_KNORM), s->rk, N * KV,
                        hd);
                free(dq), free(dk);
                dq = dqp, dk = dkp;
            }
            lin_bwd(dxn, GRAD(l, REF_WQ), GRAD(l, REF_BQ), dq, s->xna, W(r, l, REF_WQ), N, D, qd);
            lin_bwd(dxn, GRAD(l, REF_WK), GRAD(l, REF_BK), dk, s->xna, W(r, l, REF_WK), N, D, kvd);
            lin_bwd(dxn, GRAD(l, REF_WV), GRAD(l, REF_BV), dv, s->xna, W(r, l, REF_WV), N, D, kvd);
            rms_bwd(dx, GRAD(l, REF_ATTN_NORM), ABSG(l, REF_ATTN_NORM), dxn, s->x, W(r, l, REF_ATTN_NORM), s->ra, N,
                    D);
            free(dctx);
            free(dq);
            free(dk);
            free(dv);
            free(dxn);
        }
    }
    for (int n = 0; n < N; n++)
        for (int i = 0; i < D; i++)
            GRAD(-1, REF_EMBED)[(size_t)tokens[n] * D + i] += dx[(size_t)n * D + i];
#undef GRAD
#undef ABSG
    free(logits);
    free(dlog);
    free(dxnf);
    free(dx);
    saved_free(S, L);
    return loss;
}
