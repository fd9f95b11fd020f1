/* prompt_mask.h - how a model reads a prompt: ChatGLM-6B's [gMASK] <sop> prompt
 * form with its prefix mask, or causally. Zero-shot (zeroshot.h) and generation
 * (generate.h) both read prompts this way; pare-eval's --glm-mask names it. */
#ifndef PARE_PROMPT_MASK_H
#define PARE_PROMPT_MASK_H

#include <stdbool.h>

#include "model/model.h"
#include "text/tokenizer.h"

/* How a prompt (a zero-shot request's context, a generation's prompt) is read.
 * ChatGLM-6B's prompt form (PROMPT_MASK_PREFIX): context [gMASK] <sop>
 * continuation, the context and [gMASK] seeing each other, the continuation causal
 * after them, at ChatGLM-6B's positions (loglik.h). Causal: context continuation
 * (ChatGLM2's tokenizer puts [gMASK] sop before the context), every token seeing
 * those before it. AUTO: the prefix form for ChatGLM-6B, causal for the others. */
enum prompt_mask { PROMPT_MASK_AUTO, PROMPT_MASK_PREFIX, PROMPT_MASK_CAUSAL, PROMPT_MASK_COUNT };
int prompt_mask_from_name(const char *s); /* "auto", "prefix", "causal"; -1 otherwise */
const char *prompt_mask_name(enum prompt_mask k);
/* How m reads a request or a prompt with tok under k: PREFIX (then *gmask, *sop
 * the ids of [gMASK] and <sop>) or CAUSAL (they -1); AUTO resolved as above; *bos:
 * the tokenizer's prefix goes first (ChatGLM2's [gMASK] sop; a tokenizer.json's
 * post-processor's BOS: Llama 3's, none for Qwen). Dies when PREFIX is
 * asked of a model other than ChatGLM-6B or without ChatGLM-6B's tokenizer. */
enum prompt_mask prompt_mask_resolve(const model *m, const tokenizer *tok, enum prompt_mask k, int *gmask, int *sop,
                                     bool *bos);

/* A protocol's prompt_form, in words, written to out (n bytes). Under
 * PROMPT_MASK_PREFIX, ChatGLM-6B's form: first is what comes before [gMASK]
 * ("context", "prompt"), then what follows <sop> ("continuation", "generated";
 * then_tokens its tokens, "continuation", "generated tokens") and a last
 * clause (tail: "" or "; <eop> ends"). Causally: order ("context
 * continuation") read causally, with PROMPT_FORM_NOT_NATIVE for a model of
 * ChatGLM-6B's 2D positions. */
void prompt_form_describe(char *out, size_t n, const model *m, enum prompt_mask mask, const char *first,
                          const char *then, const char *then_tokens, const char *tail, const char *order);
/* What a causal reading is for a model of ChatGLM-6B's 2D positions. */
#define PROMPT_FORM_NOT_NATIVE "positions 0, 1, ..., block positions 0 (not ChatGLM-6B's native [gMASK] <sop> form)"

#endif
