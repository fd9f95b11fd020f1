/* loglik.h - log-likelihoods of continuations, the lm-evaluation-harness way
 * (BaseLM._loglikelihood_tokens at 4d21ab6b): for context tokens c and continuation
 * tokens x, the model reads the last max_len+1 tokens of c + x without the final one
 * (left truncation), and ll = sum over j of log softmax(logits at the position before
 * x_j)[x_j], natural log.
 *
 * Requests that share a context (the same ctx pointer and the same truncation)
 * compute it once: a batch of contexts is run into a key/value cache
 * (kv_cache), then every continuation of every context in the batch is scored
 * from the cache in one more forward pass. Batches hold about `budget` token rows.
 *
 * ChatGLM-6B's prompt form (gmask >= 0): the model reads c + [gMASK] as a
 * bidirectional prompt and <sop> + x without its last token after it, at the
 * positions of layer_positions; ll = sum over j of log softmax(logits at <sop> or
 * x_{j-1})[x_j]. Left truncation keeps the last max_len - 1 - |x| tokens of c. */
#ifndef PARE_LOGLIK_H
#define PARE_LOGLIK_H

#include "base/progress.h"
#include "compute/kv_cache.h"
#include "model/model.h"

struct lora_set; /* LoRA adapters (lora.h), passed beside the model */

typedef struct {
    const int *ctx;    /* context tokens; requests with the same pointer (and length) share it */
    int n_ctx;         /* >= 1 */
    const int *cont;   /* continuation tokens */
    int n_cont;        /* 1 .. max_len */
    double ll;         /* out: summed log-probability of the continuation */
    int scored;        /* out: continuation tokens scored (n_cont unless clipped) */
    int item;          /* the caller's: the item it belongs to (for messages) */
} loglik_request;

typedef struct {
    const model *m;
    struct lora_set *lora; /* adapters beside the model, or NULL */
    int max_len;       /* the model's maximum length */
    int budget;        /* token rows per forward pass */
    kv_cache cache; /* sized for the largest batch seen so far */
    bool ready;
    const char *what;  /* task name, for messages and progress */
    int gmask, sop;    /* ChatGLM-6B's prompt form: the ids of [gMASK] and <sop>,
                          set by the caller; -1 (loglik_init's): causal */
} loglik_engine;

void loglik_init(loglik_engine *e, const model *m, struct lora_set *lora, int max_len, int budget);
void loglik_free(loglik_engine *e);
/* Fill req[i].ll for every request. Progress (if p) counts requests. Dies when a
 * context or continuation is empty. A continuation longer than max_len (the harness
 * asserts it never is; with a small model it can be) is read without its context
 * and scored on its last max_len tokens (max_len - 1 in ChatGLM-6B's form, after
 * [gMASK] <sop>): req[i].scored tells. */
void loglik_run(loglik_engine *e, loglik_request *req, int n, progress *p);

#endif
