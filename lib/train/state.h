/* state.h - the training state of a pare-lora run: everything a step computes
 * follows from it (the parameters, AdamW's moments, the gradient accumulated so
 * far in the step, the epoch's order, the loss sums and curve, exactly: floats as
 * stored, doubles as float64), so a run resumed from a saved state computes what
 * the run that saved it would have. Saved in DIR/state.pare, a pare stream of
 * kind "lora-state" (pare-lora(1)), written under a temporary name, fsynced and
 * renamed into place; one table of its fields serves saving and loading.
 *
 * Letters: P trained parameters. */
#ifndef PARE_STATE_H
#define PARE_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "train/params.h"

typedef struct {
    int64_t step;        /* optimiser steps done */
    int64_t micro;       /* micro-batches of the current step done */
    int64_t perm_epoch;  /* the epoch perm orders (-1: none yet) */
    int64_t best_step;   /* the step of best_val (-1: none yet) */
    int64_t log_n;       /* steps since the last curve point */
    int64_t step_tokens; /* tokens of the current step's micro-batches */
    int64_t tokens;      /* trained on */
    double best_val;     /* the lowest validation loss (NAN: none yet) */
    double first_val;    /* validation loss before training (NAN: none) */
    double step_kl, step_ce; /* sums of the current step's micro-batch losses, by term */
    double log_kl, log_ce;   /* sums of the step means since the last curve point */
    double last_loss;    /* the train loss of the last curve point (NAN: none) */
    double last_lr;      /* the learning rate of the last step */
    bool done;           /* the last step is taken */
    json_t *curve;       /* the loss curve's points */
    int *perm;           /* (n_train) the epoch's order of the training samples */
    float *m1, *m2;      /* (P) AdamW's moments */
    float *best;         /* (P) the parameters of the lowest validation loss */
} train_state;

/* A state at the start of a run of n_train samples: best = p's values. */
void train_state_init(train_state *st, int n_train, const train_params *p);
void train_state_free(train_state *st);

/* Create dir if needed and remove the temporary files a killed save left there. */
void train_state_prepare_dir(const char *dir);
/* Save st and p (values and gradient) in dir with identity (what the state must
 * be resumed with), atomically. */
void train_state_save(const char *dir, const train_state *st, const train_params *p, int n_train, json_t *identity);

/* What a loaded state must fit: its step within total, its micro-batch within
 * n_micro, its order's epoch within epochs. */
typedef struct {
    int64_t total, n_micro, epochs;
} train_state_bounds;
/* Load the state in dir into st and p; false when there is none. Dies on a
 * state made with another identity (a key whose value differs, named by
 * key_name(ctx, key)), and on one whose counters lie outside b (a broken or
 * forged file whose checksum holds). */
bool train_state_load(const char *dir, train_state *st, train_params *p, int n_train, json_t *identity,
                      const char *(*key_name)(const void *ctx, const char *key), const void *ctx,
                      train_state_bounds b);

#endif
