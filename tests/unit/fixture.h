/* fixture.h - what the unit tests' random fixtures share: a stream of random
 * numbers (lib/base/rng.h's splitmix64), tiny random models of a given shape, and
 * next-token batches.
 *
 * Letters: B sequences, T tokens, D hidden, L layers, V vocab, H query heads, KV
 * key/value heads, hd head dim, F MLP width. */
#ifndef PARE_FIXTURE_H
#define PARE_FIXTURE_H

#include <stdbool.h>
#include <stdint.h>

#include "compute/distill.h"
#include "model/model.h"
#include "prune/prune.h"

extern uint64_t fixture_rng; /* the stream's state: set it to seed a fixture */

double fixture_urand(void); /* uniform in [-1, 1), exactly a float */
int fixture_irand(int n);   /* uniform in [0, n) */

typedef struct {
    int D, L, V, hd;
    const int *H, *KV, *F; /* [L] */
    bool tied, qkv_bias, o_bias, down_bias;
    enum rope_style style;
} fixture_shape;

/* The "llama" config of that shape (theta 1e4, eps 1e-5, 64 positions, BOS 1,
 * EOS 2), its per-layer arrays its own (config_free frees them). */
void fixture_config(model_config *c, const fixture_shape *sp);

/* A "llama" model of that shape (theta 1e4, eps 1e-5) with model_init_random's
 * weights from seed. Its scales give attention scores of order one: a softmax far
 * from uniform and far from one-hot. (Scores of order ten would amplify the fp32
 * rounding of the forward pass, |score| * 2^-24, past the finite differences'
 * tolerance.) */
void fixture_model(model *m, const fixture_shape *sp, uint64_t seed);

/* A model of the Hugging Face config.json text config (any architecture, e.g. a
 * ChatGLM one) with model_init_random's weights from seed. */
void fixture_config_model(model *m, const char *config, uint64_t seed);
/* The same from a config object. */
void fixture_json_model(model *m, json_t *config, uint64_t seed);
/* The config of tests/configs/FILE (a new reference; the tests run from the
 * repository's root). */
json_t *fixture_config_json(const char *file);

/* Small configs of today's models in tests/configs: Llama 3 (GQA, llama3 rope
 * scaling whose original_max_position_embeddings is 64, tied as Llama 3.2),
 * Qwen2 (q/k/v biases) and Qwen3 (q_norm/k_norm, head_dim 16 with hidden 32). */
#define FIXTURE_TODAY_COUNT 3
extern const char *const fixture_today[FIXTURE_TODAY_COUNT];

/* Tokens (B, T) at random, targets the next token (last of each sequence -1),
 * and one more target dropped to show unscored rows are left out. */
void fixture_batch(int *tokens, int *targets, int B, int T, int V);

/* A teacher of N rows from its logits y (N, V): whole (k 0: it points at y),
 * or its top k at tau (distill_topk; the arrays allocated here). */
void fixture_teacher(distill_teacher *t, const float *y, int N, int V, int k, float tau);
void fixture_teacher_free(distill_teacher *t);

/* A random choice of n units of a group of U (n in [lo, hi]), ascending, drawn
 * from the stream *rng (rng.h). */
prune_choice fixture_choice(uint64_t *rng, int group, int64_t U, int64_t lo, int64_t hi);

#endif
