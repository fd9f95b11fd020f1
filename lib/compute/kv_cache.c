/* kv_cache.c - the forward pass over new tokens that continue cached ones
 * (see kv_cache.h).
 *
 * Letters: S slots, P tokens cached in a slot, R sequences, T new tokens of a
 * sequence, N rows (the new tokens of all sequences), D hidden, V vocab, H query
 * heads, KV key/value heads, hd head dim, F MLP width (per layer). */
#include "compute/kv_cache.h"

#include <math.h>
#include <string.h>

#include <cblas.h>

#include "base/arena.h"
#include "base/util.h"
#include "compute/kernels.h"
#include "compute/layer.h"
#include "compute/matmul.h"

void kv_cache_init(kv_cache *c, const model *m, int S, int pool, int rows, int out_rows)
{
    const model_config *cf = &m->cfg;
    if (S <= 0 || pool <= 0 || rows <= 0 || out_rows <= 0)
        die("kv_cache_init: bad sizes: %d slots, pool of %d, %d rows, %d outputs", S, pool, rows, out_rows);
    if (cf->head_dim <= 0 || cf->head_dim % 2)
        die("%s: head_dim %d must be even and positive", m->source ? m->source : "model", cf->head_dim);
    memset(c, 0, sizeof *c);
    c->S = S;
    c->pool = pool;
    c->rows = rows;
    c->out_rows = out_rows;
    size_t maxH = 0, maxKV = 0, maxF = 0, hd = (size_t)cf->head_dim;
    for (int l = 0; l < cf->n_layers; l++) {
        maxH = (size_t)cf->n_heads[l] > maxH ? (size_t)cf->n_heads[l] : maxH;
        maxKV = (size_t)cf->n_kv_heads[l] > maxKV ? (size_t)cf->n_kv_heads[l] : maxKV;
        maxF = (size_t)cf->ffn_dim[l] > maxF ? (size_t)cf->ffn_dim[l] : maxF;
    }
    c->kvd = (int)(maxKV * hd);
    size_t N = (size_t)rows, D = (size_t)cf->dim, V = (size_t)cf->vocab, positions = (size_t)pool + N;
    size_t cache = (size_t)cf->n_layers * pool * (size_t)c->kvd;
    arena_part bufs[] = {
        {&c->kc, cache},
        {&c->vc, cache},
        {&c->x, N * D},
        {&c->xn, N * D},
        {&c->q, N * maxH * hd},
        {&c->k, N * maxKV * hd},
        {&c->v, N * maxKV * hd},
        {&c->ctx, N * maxH * hd},
        {&c->gate, N * maxF},
        {&c->up, N * maxF},
        {&c->sc, N * positions},
        {&c->hn, (size_t)out_rows * D},
        {&c->logits, (size_t)out_rows * V},
        {&c->rope_cos, positions * (size_t)config_rope_dim(cf) / 2},
        {&c->rope_sin, positions * (size_t)config_rope_dim(cf) / 2},
        {&c->fused, N * (size_t)layer_fused_width(m)},
    };
    c->arena = arena_alloc(bufs, sizeof bufs / sizeof bufs[0], NULL);
    c->off = xcalloc((size_t)S, sizeof *c->off);
    c->cap = xcalloc((size_t)S, sizeof *c->cap);
    c->len = xcalloc((size_t)S, sizeof *c->len);
    c->start = xcalloc((size_t)rows, sizeof *c->start);
    c->prompt = xcalloc((size_t)S, sizeof *c->prompt);
    c->pos = xcalloc((size_t)rows * 2, sizeof *c->pos);
    c->block_pos = c->pos + rows;
    for (int s = 0; s < S; s++) {
        c->off[s] = (int)((int64_t)pool * s / S);
        c->cap[s] = (int)((int64_t)pool * (s + 1) / S) - c->off[s];
    }
    rope_tables(c->rope_cos, c->rope_sin, (int)positions, cf);
}

void kv_cache_free(kv_cache *c)
{
    free(c->arena);
    free(c->off);
    free(c->cap);
    free(c->len);
    free(c->start);
    free(c->prompt);
    free(c->pos);
    memset(c, 0, sizeof *c);
}

void kv_cache_layout(kv_cache *c, int n, const int *cap)
{
    if (n > c->S)
        die("kv_cache_layout: %d slots, the cache has %d", n, c->S);
    int at = 0;
    for (int s = 0; s < c->S; s++) {
        int k = s < n ? cap[s] : 0;
        if (k < 0 || at + k > c->pool)
            die("kv_cache_layout: slots of %d tokens overflow the pool of %d", at + k, c->pool);
        c->off[s] = at;
        c->cap[s] = k;
        c->len[s] = 0;
        c->prompt[s] = 0;
        at += k;
    }
}

/* Four floats at a time with GCC/clang vector extensions (SSE on x86-64, NEON on
 * arm64): attention's softmax is most of the work of models with small heads. */
typedef float v4f __attribute__((vector_size(16)));
typedef int v4i __attribute__((vector_size(16)));

static v4f load4(const float *p)
{
    v4f v;
    memcpy(&v, p, sizeof v);
    return v;
}

static void store4(float *p, v4f v) { memcpy(p, &v, sizeof v); }

/* e^x for x <= 0 (Cephes expf: 2^n times a polynomial on [-ln2/2, ln2/2]; about
 * one ulp). Arguments below -87 give about 1e-38 instead of underflowing. */
static v4f exp4(v4f x)
{
    const v4f lo = {-87.0f, -87.0f, -87.0f, -87.0f}, magic = {12582912.0f, 12582912.0f, 12582912.0f, 12582912.0f};
    v4i below = x < lo;
    x = (v4f)((below & (v4i)lo) | (~below & (v4i)x));
    v4f n = (x * 1.44269504088896341f + magic) - magic; /* round to nearest */
    v4f r = x - n * 0.693359375f + n * 2.12194440e-4f;
    v4f p = {1.9875691500e-4f, 1.9875691500e-4f, 1.9875691500e-4f, 1.9875691500e-4f};
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    v4i bits = (__builtin_convertvector(n, v4i) + 127) << 23;
    return p * (v4f)bits;
}

/* Causal softmax of the scores of one (sequence, head): row i of sc (T, P+T) sees
 * the P cached columns and new columns 0..i, or all T new ones when bidir; the
 * others become zero. */
static void softmax_prefix_causal(float *sc, int T, int P, bool bidir)
{
    int ld = P + T;
    for (int i = 0; i < T; i++) {
        float *row = sc + (size_t)i * ld;
        int n = bidir ? ld : P + i + 1, j = 0;
        float mx = row[0];
        if (n >= 4) {
            v4f m4 = load4(row);
            for (j = 4; j + 4 <= n; j += 4) {
                v4f v = load4(row + j);
                v4i gt = v > m4;
                m4 = (v4f)((gt & (v4i)v) | (~gt & (v4i)m4));
            }
            for (int k = 0; k < 4; k++)
                mx = m4[k] > mx ? m4[k] : mx;
        }
        for (; j < n; j++)
            mx = row[j] > mx ? row[j] : mx;
        j = 0;
        v4f acc = {0, 0, 0, 0};
        for (; j + 4 <= n; j += 4) {
            v4f e = exp4(load4(row + j) - mx);
            store4(row + j, e);
            acc += e;
        }
        double sum = (double)acc[0] + acc[1] + acc[2] + acc[3];
        for (; j < n; j++) {
            row[j] = expf(row[j] - mx);
            sum += row[j];
        }
        float inv = (float)(1.0 / sum);
        for (j = 0; j + 4 <= n; j += 4)
            store4(row + j, load4(row + j) * inv);
        for (; j < n; j++)
            row[j] *= inv;
        for (j = n; j < ld; j++)
            row[j] = 0.0f;
    }
}

/* What the attend hook needs of a call. */
typedef struct {
    kv_cache *c;
    int R;
    const int *start, *len, *slot;
    bool append;
} cache_call;

/* Rotate the T new tokens x (T, nh heads, row stride ld) of a sequence that
 * continues P cached tokens: at positions P.., or with blocks (Q the prompt's
 * tokens, T when P = 0) at ChatGLM-6B's positions and block positions. */
static void rope_new(kv_cache *c, const model_config *cf, float *x, int nh, int ld, int T, int P, int Q)
{
    int hd = cf->head_dim, rd = config_rope_dim(cf), half = rd / 2;
    if (!c->blocks) {
        const float *cs = c->rope_cos + (size_t)P * half, *sn = c->rope_sin + (size_t)P * half;
        rope_part_forward(x, cs, sn, 1, T, nh, hd, rd, 0, NULL, ld, cf->rope_style);
        return;
    }
    layer_positions(P, T, Q, c->pos, c->block_pos);
    rope_part_forward(x, c->rope_cos, c->rope_sin, 1, T, nh, hd, rd, 0, c->pos, ld, cf->rope_style);
    rope_part_forward(x, c->rope_cos, c->rope_sin, 1, T, nh, hd, rd, rd, c->block_pos, ld, cf->rope_style);
}

/* The attend hook: sequence r (rows start[r] .. start[r]+len[r]) is rotated at
 * positions P.., P its slot's cached tokens, and attends to them and, causally, to
 * its own (with blocks: see kv_cache.h); with append its keys and values are
 * stored after the cached ones. */
static void attend_cached(void *ctx, const model *m, int l, layer_acts *a, int N)
{
    const cache_call *cc = ctx;
    kv_cache *c = cc->c;
    const model_config *cf = &m->cfg;
    int hd = cf->head_dim;
    int H = cf->n_heads[l], KV = cf->n_kv_heads[l], group = H / KV;
    int qd = H * hd, kvd = KV * hd, ldc = c->kvd;
    float scale = (float)(1.0 / sqrt((double)hd));
    (void)N;
    size_t layer_off = (size_t)l * c->pool * ldc;
    for (int r = 0; r < cc->R; r++) {
        int s = cc->slot[r], P = c->len[s], T = cc->len[r];
        bool prompt = c->blocks && P == 0; /* the new tokens are a prompt: they see each other */
        int Q = prompt ? T : c->prompt[s];
        float *qr = a->q + (size_t)cc->start[r] * qd;    /* (T, H*hd) */
        float *kr = a->k + (size_t)cc->start[r] * kvd;   /* (T, KV*hd) */
        float *vr = a->v + (size_t)cc->start[r] * kvd;   /* (T, KV*hd) */
        float *cr = a->ctx + (size_t)cc->start[r] * qd;  /* (T, H*hd) */
        rope_new(c, cf, qr, H, qd, T, P, Q);
        rope_new(c, cf, kr, KV, kvd, T, P, Q);
        const float *kp = c->kc + layer_off + (size_t)c->off[s] * ldc; /* (P, ldc) */
        const float *vp = c->vc + layer_off + (size_t)c->off[s] * ldc; /* (P, ldc) */
        int ld = P + T;
        for (int h = 0; h < H; h++) {
            int kvh = h / group;
            /* scores (T, P+T) = scale * q [K_cached; K_new]^T */
            if (P > 0)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, P, hd, scale, qr + h * hd, qd,
                            kp + kvh * hd, ldc, 0.0f, c->sc, ld);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd, scale, qr + h * hd, qd, kr + kvh * hd,
                        kvd, 0.0f, c->sc + P, ld);
            softmax_prefix_causal(c->sc, T, P, prompt);
            /* ctx (T, hd) = P_cached V_cached + P_new V_new */
            if (P > 0)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, P, 1.0f, c->sc, ld, vp + kvh * hd,
                            ldc, 0.0f, cr + h * hd, qd);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, T, 1.0f, c->sc + P, ld, vr + kvh * hd,
                        kvd, P > 0 ? 1.0f : 0.0f, cr + h * hd, qd);
        }
        if (cc->append) {
            float *kd = c->kc + layer_off + ((size_t)c->off[s] + P) * ldc;
            float *vd = c->vc + layer_off + ((size_t)c->off[s] + P) * ldc;
            for (int t = 0; t < T; t++) {
                memcpy(kd + (size_t)t * ldc, kr + (size_t)t * kvd, (size_t)kvd * sizeof(float));
                memcpy(vd + (size_t)t * ldc, vr + (size_t)t * kvd, (size_t)kvd * sizeof(float));
            }
        }
    }
}

void kv_cache_forward(const model *m, kv_cache *c, const int *tokens, int R, const int *len, const int *slot,
                         bool append, const int *out, int n_out)
{
    const model_config *cf = &m->cfg;
    int D = cf->dim, N = 0;
    if (R <= 0 || R > c->rows || n_out > c->out_rows)
        die("kv_cache_forward: %d sequences and %d outputs exceed the cache's %d rows and %d outputs", R, n_out,
            c->rows, c->out_rows);
    if (c->blocks && !model_archs[cf->arch].rope_2d)
        die("%s: ChatGLM-6B's prompt form (a bidirectional prompt, block positions) is not a %s model's",
            m->source ? m->source : "model", model_archs[cf->arch].name);
    int *start = c->start;
    for (int r = 0; r < R; r++) {
        if (slot[r] < 0 || slot[r] >= c->S || len[r] < 1)
            die("kv_cache_forward: sequence %d: bad slot %d or length %d", r, slot[r], len[r]);
        int P = c->len[slot[r]];
        if (c->blocks && P > 0 && c->prompt[slot[r]] == 0)
            die("kv_cache_forward: slot %d was not filled with a prompt", slot[r]);
        if (P + len[r] > c->pool + c->rows || (append && P + len[r] > c->cap[slot[r]]))
            die("kv_cache_forward: sequence %d of %d tokens does not fit slot %d (%d cached, room for %d)", r,
                len[r], slot[r], P, append ? c->cap[slot[r]] : c->pool + c->rows);
        if (append)
            for (int q = 0; q < r; q++)
                if (slot[q] == slot[r])
                    die("kv_cache_forward: two sequences append to slot %d", slot[r]);
        start[r] = N;
        N += len[r];
        if (N > c->rows)
            die("kv_cache_forward: %d rows or more, the cache takes %d", N, c->rows);
    }
    cache_call cc = {c, R, start, len, slot, append};
    layer_hooks h = {.attend = attend_cached, .attend_ctx = &cc, .lora = c->lora};
    layer_acts a = {.xn_a = c->xn, .q = c->q, .k = c->k, .v = c->v, .ctx = c->ctx, .xn_m = c->xn,
                    .gate = c->gate, .up = c->up, .hid = c->gate, .fused = c->fused};
    layers_forward(m, &h, &a, tokens, c->x, N);
    if (append)
        for (int r = 0; r < R; r++) {
            if (c->blocks && c->len[slot[r]] == 0)
                c->prompt[slot[r]] = len[r];
            c->len[slot[r]] += len[r];
        }
    for (int i = 0; i < n_out; i++) {
        if (out[i] < 0 || out[i] >= N)
            die("kv_cache_forward: output row %d out of range (%d rows)", out[i], N);
        layer_norm_forward(m, m->final_norm, m->final_norm_b, c->hn + (size_t)i * D, NULL, c->x + (size_t)out[i] * D,
                           1);
    }
    if (n_out > 0)
        matmul_forward(c->logits, c->hn, m->lm_head, NULL, n_out);
}
