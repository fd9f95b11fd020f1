/* zeroshot.h - one zero-shot task, end to end: read its file, tokenize every context
 * and continuation separately (dummy prefix, no BOS; ChatGLM's prompt forms
 * below), score them (loglik), decide
 * acc and acc_norm per item, and add the metrics, with the protocol that produced
 * them, to a report. */
#ifndef PARE_ZEROSHOT_H
#define PARE_ZEROSHOT_H

#include <stdbool.h>
#include <stdint.h>

#include "eval/prompt_mask.h"
#include "eval/report.h"
#include "eval/tasks.h"
#include "model/model.h"
#include "text/tokenizer.h"

struct lora_set; /* LoRA adapters (lora.h), passed beside the model */

/* Token rows per forward pass: large enough for OpenBLAS to run at speed. */
#define ZEROSHOT_BUDGET 512

typedef struct {
    int64_t limit;     /* the first limit items of the file only; 0: all */
    int shard, shards; /* items i with i % shards == shard (of those); shards 0: all */
    int budget;        /* token rows per forward pass */
    bool items;        /* add an "item" record per item */
    enum prompt_mask mask;
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
