/* generate.h - sampled text generation the way LLM-Pruner's generation test runs
 * Hugging Face generate(): the prompt with BOS, then tokens drawn with
 * temperature 1, top-k 50 and top-p 0.95 until max_length tokens in all (prompt
 * included) or the end-of-sequence token. Decoding is incremental: the prompt is
 * run once into a key/value cache (kv_cache), then one token per step.
 * The random numbers are pare's own (deterministic in the seed), not PyTorch's.
 *
 * ChatGLM-6B generates in its own prompt form by default (mask PREFIX, as its
 * modeling_chatglm.py does): the prompt's tokens and [gMASK] (its tokenizer puts
 * [gMASK] <sop> after the text) see each other, bidirectionally, at positions
 * 0.. and block positions 0; <sop> and every generated token see them and,
 * causally, each other, at [gMASK]'s position and block positions 1, 2, ...;
 * <eop> (the tokenizer's EOS) ends. Mask CAUSAL reads the same tokens causally at
 * positions 0, 1, ..., block positions 0, as other models are read. */
#ifndef PARE_GENERATE_H
#define PARE_GENERATE_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "eval/prompt_mask.h"
#include "model/model.h"
#include "text/tokenizer.h"

struct lora_set; /* LoRA adapters (lora.h), passed beside the model */

typedef struct {
    int top_k;          /* 50; 0 = off */
    double top_p;       /* 0.95; 1 = off */
    double temperature; /* 1 */
    int max_length;     /* 128: tokens in all, BOS and prompt included */
    uint64_t seed;
    enum prompt_mask mask; /* AUTO: ChatGLM-6B's prefix form for it, causal otherwise */
} gen_params;

void gen_params_default(gen_params *p);

/* LLM-Pruner's five prompts (LLMPruner/templates/prompts.py). */
#define GEN_PAPER_PROMPTS 5
extern const char *const gen_paper_prompts[GEN_PAPER_PROMPTS];

#define GEN_FORM_MAX 512
typedef struct {
    char *text;         /* the generated continuation (valid UTF-8), malloc'd */
    int prompt_tokens;  /* BOS included */
    int new_tokens;     /* generated, an end-of-sequence token included */
    double seconds;
    enum prompt_mask mask;  /* the mask used (PREFIX or CAUSAL) */
    char prompt_form[GEN_FORM_MAX]; /* the reading in words */
} gen_result;

/* Generate from prompt; stream is the random stream (e.g. the prompt's index), so
 * every prompt has its own draw for a given seed. */
void generate(const model *m, struct lora_set *lora, const tokenizer *tok, const char *prompt, const gen_params *p, uint64_t stream,
              gen_result *res);

/* The tokens of one generation after the prompt ids (P >= 1): drawn with p from
 * the random stream, until total tokens in all (at least one new) or eos (kept).
 * prefix: ChatGLM-6B's form, ids ending in [gMASK] <sop> (P >= 2), else causal.
 * out (at least max(total - P, 1)) gets the new tokens and, when not NULL, logits
 * (the same rows, V) the logits each was drawn from. Returns their count. */
int gen_tokens(const model *m, struct lora_set *lora, const int *ids, int P, bool prefix, int eos, const gen_params *p,
               uint64_t stream, int total, int *out, float *logits);

/* The report's "sample" record of a generation (without "t"): prompt and text
 * (invalid UTF-8 replaced), token counts, and the sampling protocol with the mask
 * and prompt form. */
json_t *gen_record(const char *prompt, const gen_params *p, uint64_t stream, const gen_result *g);

/* One sampling step over logits (V): the Hugging Face warpers in their order
 * (temperature; top-k, keeping ties with the k-th; top-p, keeping the most likely
 * tokens while those before them have less than p, at least one), then the token whose
 * cumulative probability first exceeds u in [0, 1). work: V entries of scratch.
 * Exposed for tests. */
typedef struct {
    float logit;
    int id;
} gen_pair;
int gen_sample(const float *logits, int V, const gen_params *p, double u, gen_pair *work);

#endif
