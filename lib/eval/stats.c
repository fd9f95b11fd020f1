/* stats.c - parameters, MACs, memory, latency (see stats.h).
 *
 * Letters: T tokens, D hidden, V vocab, H query heads, KV key/value heads, hd head
 * dim, F MLP width (per layer), B sequences. */
#include "eval/stats.h"

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "base/blas.h"
#include "base/util.h"
#include "compute/forward.h"
#include "compute/kv_cache.h"

int64_t stats_macs(const model_config *c, int T)
{
    int64_t t = T, D = c->dim, hd = c->head_dim, macs = 0;
    for (int l = 0; l < c->n_layers; l++) {
        int64_t H = c->n_heads[l], KV = c->n_kv_heads[l], F = c->ffn_dim[l];
        if (H > 0) {
            macs += t * D * (H * hd) + 2 * t * D * (KV * hd) + t * (H * hd) * D; /* q, k, v, o */
            macs += 2 * (t * H * hd) * 2;                                         /* rotary */
            macs += H * (t * t * hd + t * t + t * t * hd);                        /* QK^T, softmax, PV */
            macs += 2 * t * D;                                                    /* input RMSNorm */
        }
        if (F > 0) {
            macs += 3 * t * D * F; /* gate, up, down */
            macs += t * F;         /* SiLU */
            macs += 2 * t * D;     /* post-attention RMSNorm */
        }
    }
    macs += 2 * t * D;                /* final RMSNorm */
    macs += t * D * (int64_t)c->vocab; /* LM head */
    return macs;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median seconds of forward passes over B x T tokens (all ones, as test_speedup.py). */
static double time_forward(const model *m, struct lora_set *lora, int B, int T, double min_seconds)
{
    forward_state s;
    forward_state_init(&s, m, B, T);
    s.lora = lora;
    int *tok = xmalloc((size_t)B * T * sizeof *tok);
    for (int i = 0; i < B * T; i++)
        tok[i] = 1 < m->cfg.vocab ? 1 : 0;
    model_forward(m, &s, tok); /* warm-up */
    double times[64], start = now_seconds();
    int n = 0;
    while (n < 64 && (n < 3 || now_seconds() - start < min_seconds)) {
        double t0 = now_seconds();
        model_forward(m, &s, tok);
        times[n++] = now_seconds() - t0;
    }
    qsort(times, (size_t)n, sizeof *times, cmp_double);
    free(tok);
    forward_state_free(&s);
    return times[n / 2];
}

/* Tokens per second decoding one at a time after a prompt of T tokens. */
static double time_decode(const model *m, struct lora_set *lora, int T, int steps)
{
    kv_cache c;
    kv_cache_init(&c, m, 1, T + steps, T, 1);
    c.lora = lora;
    int *tok = xmalloc((size_t)T * sizeof *tok);
    for (int i = 0; i < T; i++)
        tok[i] = 1 < m->cfg.vocab ? 1 : 0;
    int slot = 0, len = T, out = T - 1;
    kv_cache_forward(m, &c, tok, 1, &len, &slot, true, &out, 1);
    double t0 = now_seconds();
    for (int i = 0; i < steps; i++) {
        len = 1;
        out = 0;
        kv_cache_forward(m, &c, tok, 1, &len, &slot, true, &out, 1);
    }
    double dt = now_seconds() - t0;
    free(tok);
    kv_cache_free(&c);
    return steps / dt;
}

void stats_measure(const model *m, struct lora_set *lora, double min_seconds, model_stats *s)
{
    memset(s, 0, sizeof *s);
    s->params = config_param_count(&m->cfg);
    s->macs_tokens = 64;
    s->macs = stats_macs(&m->cfg, s->macs_tokens);
    for (int i = 0; i < m->n_tensors; i++)
        s->bytes += (int64_t)tensor_bytes(&m->tensors[i]);
    s->bytes_f16 = 2 * s->params;
    s->batch = 4;
    s->threads = blas_threads();
    s->latency_s = time_forward(m, lora, 1, s->macs_tokens, min_seconds);
    s->tokens_per_s = s->batch * s->macs_tokens / time_forward(m, lora, s->batch, s->macs_tokens, min_seconds);
    s->decode_tokens_per_s = time_decode(m, lora, s->macs_tokens, s->macs_tokens);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    s->peak_rss = (int64_t)ru.ru_maxrss * 1024;
}

json_t *stats_to_json(const model_stats *s)
{
    json_t *p = json_pack("{s:s,s:s,s:s,s:s,s:i}", "macs",
                          "LLM-Pruner test_speedup.py (ptflops hooks) with the model's own widths, one sequence",
                          "input", "token id 1 repeated (test_speedup.py's all-ones input)", "latency",
                          "median of forward passes over 1 x macs_tokens, fp32, after a warm-up", "decode",
                          "one token at a time with the key/value cache after a prompt of macs_tokens",
                          "threads", s->threads);
    return json_pack("{s:I,s:I,s:i,s:I,s:I,s:I,s:f,s:i,s:f,s:f,s:o}", "params", (json_int_t)s->params, "macs",
                     (json_int_t)s->macs, "macs_tokens", s->macs_tokens, "bytes", (json_int_t)s->bytes, "bytes_f16",
                     (json_int_t)s->bytes_f16, "peak_rss", (json_int_t)s->peak_rss, "latency_s", s->latency_s,
                     "batch", s->batch, "tokens_per_s", s->tokens_per_s, "decode_tokens_per_s",
                     s->decode_tokens_per_s, "protocol", p);
}
