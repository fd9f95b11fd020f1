/* prompt_mask.c - ChatGLM-6B's prompt form or the causal reading (prompt_mask.h). */
#include "eval/prompt_mask.h"

#include <stdio.h>
#include <string.h>

#include "base/util.h"

static const char *const mask_names[PROMPT_MASK_COUNT] = {"auto", "prefix", "causal"};

int prompt_mask_from_name(const char *s)
{
    for (int k = 0; k < PROMPT_MASK_COUNT; k++)
        if (!strcmp(s, mask_names[k]))
            return k;
    return -1;
}

const char *prompt_mask_name(enum prompt_mask k) { return mask_names[k]; }

enum prompt_mask prompt_mask_resolve(const model *m, const tokenizer *tok, enum prompt_mask k, int *gmask, int *sop,
                                     bool *bos)
{
    const arch_desc *A = &model_archs[m->cfg.arch];
    const char *format = tokenizer_format(tok);
    *gmask = *sop = -1;
    /* the tokenizer's own prefix where it puts one when encoding: ChatGLM2's [gMASK]
     * sop, a tokenizer.json's post-processor's BOS (Llama 3's <|begin_of_text|>;
     * Qwen's puts none); LLaMA's SentencePiece requests go without BOS, as the
     * harness of the paper encodes them */
    *bos = !strcmp(format, "chatglm2") || !strcmp(format, "hf-json");
    if (k == PROMPT_MASK_AUTO)
        k = A->rope_2d ? PROMPT_MASK_PREFIX : PROMPT_MASK_CAUSAL;
    if (k == PROMPT_MASK_CAUSAL)
        return k;
    if (!A->rope_2d)
        die("%s: the prefix mask ([gMASK] <sop> prompt form) is ChatGLM-6B's; this is a %s model",
            m->source ? m->source : "model", A->name);
    const int *ids;
    if (strcmp(format, "chatglm") || tokenizer_prefix(tok, &ids) != 2)
        die("%s: the [gMASK] <sop> prompt form needs ChatGLM-6B's tokenizer (ice_text.model); this one is %s "
            "(the causal mask does without it)",
            m->source ? m->source : "model", format);
    *gmask = ids[0];
    *sop = ids[1];
    return k;
}

void prompt_form_describe(char *out, size_t n, const model *m, enum prompt_mask mask, const char *first,
                          const char *then, const char *then_tokens, const char *tail, const char *order)
{
    if (mask == PROMPT_MASK_PREFIX)
        snprintf(out, n,
                 "%s [gMASK] <sop> %s (ChatGLM-6B's): the %s and [gMASK] see each other, <sop> and the %s see them "
                 "and, causally, each other; positions 0.. over the %s and [gMASK], then [gMASK]'s; block positions "
                 "0 over the %s and [gMASK], then 1, 2, ... from <sop>; <sop> predicts the first %s token%s",
                 first, then, first, then_tokens, first, first, then, tail);
    else
        snprintf(out, n, "%s, causal: every token sees those before it%s%s", order,
                 model_archs[m->cfg.arch].rope_2d ? "; " : "", model_archs[m->cfg.arch].rope_2d ? PROMPT_FORM_NOT_NATIVE : "");
}
