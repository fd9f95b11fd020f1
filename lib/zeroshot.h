/* zeroshot.h - one zero-shot task, end to end: read its file, tokenize every context
 * and continuation separately (dummy prefix, no BOS; ChatGLM's prompt forms
 * below), score them (loglik), decide
 * acc and acc_norm per item, and add the metrics, with the protocol that produced
 * them, to a report. */
#ifndef PARE_ZEROSHOT_H
#define PARE_ZEROSHOT_H

#include <stdbool.h>
#include <stdint.h>

#include "model.h"
#include "report.h"
#include "tasks.h"
#include "tokenizer.h"

struct lora_set; /* LoRA adapters (lora.h), passed beside the model */

/* Token rows per forward pass: large enough for OpenBLAS to run at speed. */
#define ZEROSHOT_BUDGET 512

/* How a request is read. ChatGLM-6B's prompt form (ZEROSHOT_MASK_PREFIX): context
 * [gMASK] <sop> continuation, the context and [gMASK] seeing each other, the
 * continuation causal after them, at ChatGLM-6B's positions (loglik.h). Causal:
 * context continuation (ChatGLM2's tokenizer puts [gMASK] sop before the
 * context), every token seeing those before it. AUTO: the prefix form for
 * ChatGLM-6B, causal for the others. */
enum zeroshot_mask { ZEROSHOT_MASK_AUTO, ZEROSHOT_MASK_PREFIX, ZEROSHOT_MASK_CAUSAL, ZEROSHOT_MASK_COUNT };
int zeroshot_mask_from_name(const char *s); /* "auto", "prefix", "causal"; -1 otherwise */
const char *zeroshot_mask_name(enum zeroshot_mask k);
/* How m reads a request or a prompt with tok under k: PREFIX (then *gmask, *sop
 * the ids of [gMASK] and <sop>) or CAUSAL (they -1); AUTO resolved as above; *bos:
 * the tokenizer's prefix goes first (ChatGLM2's [gMASK] sop). Dies when PREFIX is
 * asked of a model other than ChatGLM-6B or without ChatGLM-6B's tokenizer. Zero-shot
 * and generation (generate.h) share it. */
enum zeroshot_mask zeroshot_resolve_mask(const model *m, const tokenizer *tok, enum zeroshot_mask k, int *gmask,
                                         int *sop, bool *bos);

typedef struct {
    int64_t limit;     /* the first limit items of the file only; 0: all */
    int shard, shards; /* items i with i % shards == shard (of those); shards 0: all */
    int budget;        /* token rows per forward pass */
    bool items;        /* add an "item" record per item */
    enum zeroshot_mask mask;
} zeroshot_options;

typedef struct {
    int64_t items, requests, truncated;
    int64_t clipped;   /* continuations longer than max_length, scored on their last max_length tokens */
    double seconds;    /* reading, tokenizing and scoring: wall clock */
    double cpu_seconds;/* the same, CPU time of the process (all threads) */
} zeroshot_result;

/* The model's maximum length (max_position_embeddings; 2048 when unknown). */
int zeroshot_max_length(const model *m);

void zeroshot_run(const model *m, struct lora_set *lora, const tokenizer *tok, const task_info *task, const char *path,
                  const zeroshot_options *o, report *rep, zeroshot_result *res);

#endif
