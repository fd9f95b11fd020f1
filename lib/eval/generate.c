/* generate.c - sampled generation with a key/value cache (see generate.h).
 *
 * Letters: V vocabulary, P prompt tokens (BOS included). */
#include "eval/generate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "base/utf8.h"
#include "base/util.h"
#include "compute/kv_cache.h"

const char *const gen_paper_prompts[GEN_PAPER_PROMPTS] = {
    "I believe the meaning of life is",
    "Simply put, the theory of relativity states that ",
    "Building a website can be done in 10 simple steps:\n",
    "Tweet: \"I hate it when my phone battery dies.\"\n"
    "Sentiment: Negative\n"
    "###\n"
    "Tweet: \"My day has been \xF0\x9F\x91\x8D\"\n"
    "Sentiment: Positive\n"
    "###\n"
    "Tweet: \"This is the link to the article\"\n"
    "Sentiment: Neutral\n"
    "###\n"
    "Tweet: \"This new music video was incredibile\"\n"
    "Sentiment:",
    "Translate English to French:\n"
    "\n"
    "sea otter => loutre de mer\n"
    "\n"
    "peppermint => menthe poivr\xC3\xA9" "e\n"
    "\n"
    "plush girafe => girafe peluche\n"
    "\n"
    "cheese =>",
};

void gen_params_default(gen_params *p)
{
    p->top_k = 50;
    p->top_p = 0.95;
    p->temperature = 1.0;
    p->max_length = 128;
    p->seed = 42;
    p->mask = PROMPT_MASK_AUTO;
}

/* ---- random numbers: splitmix64 seeding xoshiro256** ---- */

typedef struct {
    uint64_t s[4];
} rng;

static void rng_seed(rng *r, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ (0xD1B54A32D192ED03ull * (stream + 1));
    for (int i = 0; i < 4; i++)
        r->s[i] = rng_next(&x);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static double rng_uniform(rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return (double)(result >> 11) * 0x1.0p-53;
}

/* ---- one sampling step ---- */

static int cmp_desc(const void *a, const void *b)
{
    const gen_pair *x = a, *y = b;
    if (x->logit != y->logit)
        return x->logit > y->logit ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

int gen_sample(const float *logits, int V, const gen_params *p, double u, gen_pair *work)
{
    float inv_t = p->temperature > 0 && p->temperature != 1.0 ? (float)(1.0 / p->temperature) : 1.0f;
    for (int i = 0; i < V; i++)
        work[i] = (gen_pair){logits[i] * inv_t, i};
    qsort(work, (size_t)V, sizeof *work, cmp_desc);
    /* top-k: everything below the k-th largest goes (ties with it stay) */
    int n = V;
    if (p->top_k > 0 && p->top_k < V) {
        float kth = work[p->top_k - 1].logit;
        n = p->top_k;
        while (n < V && work[n].logit >= kth)
            n++;
    }
    /* softmax over the survivors, in double */
    double mx = work[0].logit, sum = 0;
    for (int i = 0; i < n; i++)
        sum += exp((double)work[i].logit - mx);
    /* top-p (transformers 4.28: tokens whose ascending cumulative probability is
     * at most 1-p go): keep the most likely tokens while the probability of those
     * before them is below p, at least one */
    if (p->top_p < 1.0) {
        double cum = 0;
        int keep = 0;
        while (keep < n && (keep == 0 || cum < p->top_p)) {
            cum += exp((double)work[keep].logit - mx) / sum;
            keep++;
        }
        n = keep;
        sum = 0;
        for (int i = 0; i < n; i++)
            sum += exp((double)work[i].logit - mx);
    }
    /* draw */
    double target = u * sum, cum = 0;
    for (int i = 0; i < n; i++) {
        cum += exp((double)work[i].logit - mx);
        if (cum > target)
            return work[i].id;
    }
    return work[n - 1].id;
}

/* ---- generation ---- */

int gen_tokens(const model *m, struct lora_set *lora, const int *ids, int P, bool prefix, int eos, const gen_params *p,
               uint64_t stream, int total, int *out, float *logits)
{
    int V = m->cfg.vocab;
    if (P < (prefix ? 2 : 1))
        die("generate: a prompt of %d tokens%s", P, prefix ? " cannot end in [gMASK] <sop>" : "");
    total = total > P ? total : P + 1;
    kv_cache c;
    kv_cache_init(&c, m, 1, total, P, 1);
    c.lora = lora;
    c.blocks = prefix;
    gen_pair *work = xmalloc((size_t)V * sizeof *work);
    rng r;
    rng_seed(&r, p->seed, stream);
    int slot = 0, len = P, row = P - 1, n = 0;
    if (prefix) {
        /* the prompt and [gMASK], bidirectional; then <sop>, whose logits give the first token */
        len = P - 1;
        kv_cache_forward(m, &c, ids, 1, &len, &slot, true, NULL, 0);
        len = 1;
        row = 0;
        kv_cache_forward(m, &c, ids + P - 1, 1, &len, &slot, true, &row, 1);
    } else
        kv_cache_forward(m, &c, ids, 1, &len, &slot, true, &row, 1);
    for (;;) {
        if (logits)
            memcpy(logits + (size_t)n * V, c.logits, (size_t)V * sizeof *logits);
        int next = gen_sample(c.logits, V, p, rng_uniform(&r), work);
        out[n++] = next;
        if (next == eos || P + n >= total)
            break;
        len = 1;
        row = 0;
        kv_cache_forward(m, &c, &next, 1, &len, &slot, true, &row, 1);
    }
    free(work);
    kv_cache_free(&c);
    return n;
}

/* The prompt form of a generation in words (as the zero-shot protocol's
 * prompt_form) into form (GEN_FORM_MAX). */
static void prompt_form(char *form, const model *m, const tokenizer *tok, enum prompt_mask mask)
{
    const char *format = tokenizer_format(tok), *order;
    const int *ids;
    if (!strcmp(format, "chatglm"))
        order = "prompt [gMASK] <sop> generated";
    else if (!strcmp(format, "chatglm2"))
        order = "[gMASK] sop prompt generated";
    else
        order = tokenizer_prefix(tok, &ids) > 0 ? "BOS prompt generated" : "prompt generated";
    prompt_form_describe(form, GEN_FORM_MAX, m, mask, "prompt", "generated", "generated tokens", "; <eop> ends",
                         order);
}

void generate(const model *m, struct lora_set *lora, const tokenizer *tok, const char *prompt, const gen_params *p, uint64_t stream,
              gen_result *res)
{
    double t0 = now_seconds();
    memset(res, 0, sizeof *res);
    int gmask, sop;
    bool bos;
    res->mask = prompt_mask_resolve(m, tok, p->mask, &gmask, &sop, &bos);
    prompt_form(res->prompt_form, m, tok, res->mask);
    bool prefix = res->mask == PROMPT_MASK_PREFIX;
    int *ids;
    int P = (int)tokenizer_encode_prompt(tok, prompt, strlen(prompt), &ids);
    int max_seq = m->cfg.max_seq > 0 ? m->cfg.max_seq : p->max_length;
    int total = p->max_length < max_seq ? p->max_length : max_seq;
    if (P == 0)
        die("generate: an empty prompt and no BOS token");
    if (P >= max_seq)
        die("generate: the prompt has %d tokens, the model reads at most %d", P, max_seq);
    if (prefix && (P < 2 || ids[P - 2] != gmask || ids[P - 1] != sop))
        die("generate: the prompt does not end in [gMASK] <sop>");
    if (total <= P) {
        warn("the prompt has %d tokens, max-length is %d: one token is generated (as Hugging Face does)", P, total);
        total = P + 1;
    }
    int *next = xmalloc((size_t)(total - P) * sizeof *next);
    int n = gen_tokens(m, lora, ids, P, prefix, tokenizer_eos(tok), p, stream, total, next, NULL);
    /* A model's vocabulary may be padded past its tokenizer's (Qwen's 151,936 rows
     * for 151,669 tokens): such an id decodes to nothing, as Hugging Face drops it. */
    bytes text = {0};
    for (int i = 0; i < n && next[i] != tokenizer_eos(tok); i++) {
        if (next[i] >= tokenizer_vocab_size(tok))
            continue;
        size_t pl;
        const char *piece = tokenizer_piece(tok, next[i], &pl);
        bytes_put(&text, piece, pl);
    }
    res->text = utf8_replace_invalid(text.n ? (const char *)text.p : "", text.n);
    res->prompt_tokens = P;
    res->new_tokens = n;
    res->seconds = now_seconds() - t0;
    free(text.p);
    free(next);
    free(ids);
}

json_t *gen_record(const char *prompt, const gen_params *p, uint64_t stream, const gen_result *g)
{
    char *pr = utf8_replace_invalid(prompt, strlen(prompt));
    json_t *j = json_pack("{s:s,s:s,s:i,s:i,s:{s:i,s:f,s:f,s:i,s:I,s:I,s:b}}", "prompt", pr, "text", g->text,
                          "prompt_tokens", g->prompt_tokens, "tokens", g->new_tokens, "protocol", "top_k", p->top_k,
                          "top_p", p->top_p, "temperature", p->temperature, "max_length", p->max_length, "seed",
                          (json_int_t)p->seed, "stream", (json_int_t)stream, "bos", 1);
    json_t *proto = json_object_get(j, "protocol");
    json_object_set_new(proto, "mask", json_string(prompt_mask_name(g->mask)));
    json_object_set_new(proto, "prompt_form", json_string(g->prompt_form));
    free(pr);
    return j;
}
