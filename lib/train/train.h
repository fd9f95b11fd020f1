/* train.h - the trainer of pare-lora: alpaca-lora's recipe (micro-batches with
 * gradient accumulation, AdamW, linear warm-up then linear decay, gradient
 * clipping, validation and the best parameters kept) for LoRA adapters or every
 * weight of a model, on the data's next tokens (cross-entropy) and, with a
 * teacher, on its next-token distributions (distillation: compute/distill.h);
 * restartable from a state folder saved atomically, byte for byte the run it
 * continues.
 *
 * Letters: S samples, b sequences of a micro-batch, T its longest sample (tokens),
 * P trained parameters. */
#ifndef PARE_TRAIN_H
#define PARE_TRAIN_H

#include <stdint.h>

#include <jansson.h>

#include "compute/lora.h"
#include "model/model.h"
#include "text/instruct.h"
#include "train/teacher.h"

typedef struct {
    double lr;            /* peak learning rate (1e-4) */
    int warmup;           /* warm-up steps (100) */
    int batch;            /* samples per optimiser step (64) */
    int micro_batch;      /* samples per forward/backward pass (4) */
    int epochs;           /* 2 */
    int eval_every;       /* validation every N steps (100), and at the last */
    int save_every;       /* state saved every N steps (200), with --state */
    int log_every;        /* a loss-curve point and a progress line every N steps (10) */
    double max_grad_norm; /* clip the gradient's global norm (1.0; 0 = off) */
    double beta1, beta2, eps, weight_decay; /* AdamW (0.9, 0.999, 1e-8, 0) */
    double kd_weight;     /* w, with a teacher: loss = w kl + (1 - w) ce (1: distillation alone) */
    double kd_temp;       /* tau, with a teacher: the distributions' temperature (1) */
    uint64_t seed;        /* the epochs' shuffles (the adapters' init and dropout use their own) */
    const char *state_dir;/* NULL: no state */
    /* How messages name an identity key ("lr", "micro_batch", ...): the program
       gives its option's name, or NULL for the library's own words. May be NULL. */
    const char *(*key_name)(const char *key);
} train_options;

void train_options_default(train_options *o);

/* What a run trains, on what. */
typedef struct {
    model *m;             /* the student */
    lora_set *lora;       /* adapters beside m (initialised, dropout and seed set), m frozen;
                             NULL: every weight of m trains (held in fp32 from the start) */
    const instruct_data *d;
    const int *train, *val; /* the samples of d to train on (n_train) and to validate on (n_val, may be 0) */
    int n_train, n_val;
    teacher *teacher;     /* NULL: the data's next tokens alone (cross-entropy) */
} train_job;

typedef struct {
    json_t *training;     /* the summary for the output's header (new reference) */
    json_t *curve;        /* the "loss_curve" array (new reference) */
    char base_fingerprint[17]; /* the student's before training */
    int64_t steps;        /* optimiser steps in all */
    int64_t steps_run;    /* run by this process */
    int64_t tokens_run;   /* tokens trained on by this process */
    double seconds;       /* this process's training time */
    double first_val, best_val, final_loss; /* NAN when absent */
    int64_t best_step;    /* -1 when there was no validation */
    bool resumed;
} train_result;

/* Train job (pare-lora(1)): with o->state_dir, resumes from the state there
 * (refusing one made otherwise) and saves it every o->save_every steps, at the
 * end and on SIGINT/SIGTERM (then exits 1). A loss or gradient that is not
 * finite stops the run (exit 1), the state of the start of that step saved. On
 * return the trained parameters (the adapters, or m's weights) are the best
 * (the last when there is no validation). */
void train_run(const train_job *job, const train_options *o, train_result *res);
void train_result_free(train_result *r);

/* The learning rate of optimiser step s (0-based) of total: Hugging Face's
 * get_linear_schedule_with_warmup, lr * s/warmup while s < warmup, then
 * lr * (total - s)/(total - warmup), never below 0. */
double train_lr(double lr, int warmup, int64_t total, int64_t s);

#endif
