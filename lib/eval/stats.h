/* stats.h - the numbers of the paper's efficiency table for any model: parameters,
 * MACs, weight memory, and measured latency and throughput.
 *
 * MACs follow LLM-Pruner's test_speedup.py (ptflops on a 1 x 64 input, with its
 * hooks) with every width taken from the model itself: each linear map T*in*out
 * (q, k, v, o, gate, up, down and the LM head), per layer with attention rotary
 * 2*(T*H*hd)*2 and attention's own products H*(T*T*hd + T*T + T*T*hd)
 * (QK^T, softmax, PV), RMSNorm 2*T*D each, SiLU T*F; embeddings, residual sums and
 * the gate product are not counted. For LLaMA-7B this gives the paper's 424.02G,
 * for its 20% block-pruned model 339.60G. */
#ifndef PARE_STATS_H
#define PARE_STATS_H

#include <stdint.h>

#include <jansson.h>

#include "model/model.h"

struct lora_set; /* LoRA adapters (lora.h), passed beside the model */

int64_t stats_macs(const model_config *c, int T);

typedef struct {
    int64_t params;           /* weights the config implies (a tied LM head once) */
    int64_t macs;             /* for one sequence of macs_tokens */
    int macs_tokens;          /* 64 */
    int64_t bytes;            /* weight bytes as pare holds them (each in its dtype) */
    int64_t bytes_f16;        /* the same weights in f16, as the paper's memory column */
    int64_t peak_rss;         /* peak resident memory of this process so far, bytes */
    double latency_s;         /* median time of a forward pass over 1 x macs_tokens */
    int batch;                /* 4 */
    double tokens_per_s;      /* forward passes over batch x macs_tokens */
    double decode_tokens_per_s; /* one token at a time with the key/value cache */
    int threads;
} model_stats;

/* Count, then measure (each timing repeated for at least min_seconds, median). */
void stats_measure(const model *m, struct lora_set *lora, double min_seconds, model_stats *s);
json_t *stats_to_json(const model_stats *s);

#endif
