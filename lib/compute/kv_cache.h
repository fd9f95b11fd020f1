/* kv_cache.h - the forward pass (any architecture) over new tokens that continue cached ones:
 * a key/value cache of S slots, each holding the keys (after rotary) and values of
 * every layer for a prefix. One call runs R sequences of T new tokens, each the
 * continuation of one slot; a sequence attends to its slot's cached tokens and,
 * causally, to its own new tokens. The same call
 *   - fills slots from scratch (append, the slots empty): the contexts of a batch
 *     of zero-shot items, or a prompt;
 *   - scores many continuations of one cached context at once (no append): the
 *     choices of an item share the computation of their context;
 *   - decodes one token at a time (R = 1, T = 1, append): generation.
 * With blocks set, the slots hold ChatGLM-6B prompts ending in [gMASK] and the
 * tokens after them are <sop> and what follows (layer_positions): a call into an
 * empty slot reads its tokens as the prompt (they see each other; positions t,
 * block positions 0), and a token at offset P + t of a slot whose prompt has Q
 * tokens is at position Q - 1 and block position P + t - Q + 1.
 * Each layer is layer_forward (layer.h) with an attend hook that reads and
 * fills the cache; linear maps are one product over all R*T rows, attention two
 * sgemms per (sequence, head): against the cached keys and against the new ones. Logits are
 * computed only for the rows asked for. It gives model_forward's numbers (forward.h) up to
 * float rounding.
 *
 * Letters: S slots, P tokens cached in a slot, R sequences, T new tokens of a
 * sequence, N rows (the new tokens of all sequences), D hidden, V vocab, H query heads, KV key/value heads,
 * hd head dim, F MLP width (per layer). */
#ifndef PARE_KV_CACHE_H
#define PARE_KV_CACHE_H

#include <stdbool.h>

#include "model/model.h"

struct lora_set; /* LoRA adapters (lora.h), passed beside the model */

typedef struct {
    int S;           /* slots */
    int pool;        /* cached tokens of all slots together */
    int rows;        /* most new rows (N) per call */
    int out_rows;    /* most logit rows per call */
    int kvd;         /* max KV*hd over layers: row stride of the cache */
    int *off, *cap;  /* (S) where each slot's tokens start in the pool, and how many fit */
    int *len;        /* (S) tokens cached per slot */
    int *start;      /* (rows) first row of each sequence of a call */
    int *prompt;     /* (S) with blocks: tokens of each slot's prompt */
    int *pos, *block_pos; /* (rows) with blocks: the positions of a sequence's new tokens */
    float *kc, *vc;  /* (L, pool, kvd) keys after rotary, values */
    float *arena;    /* the buffers below */
    float *x;        /* (N, D) residual stream */
    float *xn;       /* (N, D) normed input of a sub-block */
    float *q;        /* (N, maxH*hd) */
    float *k, *v;    /* (N, kvd) new keys and values */
    float *ctx;      /* (N, maxH*hd) */
    float *gate, *up;/* (N, maxF) */
    float *sc;       /* (T, P + T) attention scores of one (sequence, head) */
    float *hn;       /* (out_rows, D) normed rows that get logits */
    float *logits;   /* (out_rows, V) */
    float *rope_cos, *rope_sin; /* (pool + rows, rd/2): positions 0 .. pool+rows-1
                                   (rd = config_rope_dim; ChatGLM-6B without blocks:
                                   block positions 0) */
    float *fused;    /* (N, layer_fused_width) a fused map's output (ChatGLM) */
    struct lora_set *lora;      /* adapters every call adds (lora.h), or NULL: set by the
                                   caller, beside the model */
    bool blocks;     /* ChatGLM-6B's prompt form (see above), set by the caller; false:
                        causal, positions P + t (ChatGLM-6B: block positions 0) */
} kv_cache;

/* Up to S slots sharing a pool of cached tokens; calls of at most rows new rows and
 * out_rows logit rows. The slots start with the pool split evenly between them. */
void kv_cache_init(kv_cache *c, const model *m, int S, int pool, int rows, int out_rows);
void kv_cache_free(kv_cache *c);
/* Lay out n <= S slots: slot s gets cap[s] tokens of the pool (their sum <= pool),
 * and every slot is emptied. */
void kv_cache_layout(kv_cache *c, int n, const int *cap);

/* Run R sequences of new tokens, packed one after another (no padding): sequence r
 * has len[r] >= 1 tokens, rows start[r] = len[0] + ... + len[r-1], N = the sum of
 * len <= rows; tokens (N). Sequence r continues slot slot[r]: its token t sits at
 * position P + t, P the slot's cached tokens, and attends to them and, causally, to
 * its own new tokens (with blocks: see above). With append, its keys and values are stored after the cached
 * ones and the slot grows by len[r] (the slots of an append call must differ, and
 * must have room). Logits of the rows out[0..n_out) (n_out <= out_rows) go to
 * c->logits (n_out, V) in that order. */
void kv_cache_forward(const model *m, kv_cache *c, const int *tokens, int R, const int *len, const int *slot,
                         bool append, const int *out, int n_out);

#endif
