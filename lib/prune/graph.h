/* graph.h - a model's dataflow, described as data: values (activations, each a
 * space of channels) and the operations between them, with the tensors each
 * operation reads and which axis of each tensor runs along which value's channels.
 * An architecture is one function that emits this description; the dependency
 * analysis (groups.c) walks any description and needs no knowledge of the
 * architecture. */
#ifndef PARE_GRAPH_H
#define PARE_GRAPH_H

#include <stdint.h>

#include "model/model.h"

enum op_type {
    OP_EMBED,     /* out = E[token]:               E axis 1 ~ out */
    OP_NORM,      /* out = norm(in) * w (+ b):     out ~ in, w and b axis 0 ~ out */
    OP_HEAD_NORM, /* out = norm of each head of in (head_dim channels) * w, one w
                     shared by the heads:          out ~ in, channels of one head are
                                                   inseparable; w runs along no value
                                                   (it stays whole: only a layer group
                                                   holds it) */
    OP_LINEAR,    /* out = in @ W^T (+ b):         W axis 1 ~ in, W axis 0 ~ out, b axis 0 ~ out */
    OP_ROPE,      /* out = rotate(in):             out ~ in */
    OP_ATTENTION, /* out = attention(q, k, v):     channels of one head are inseparable;
                                                   query head h reads key/value head h / group;
                                                   out head h ~ q head h */
    OP_ACT,       /* out = f(in), element-wise:    out ~ in */
    OP_MUL,       /* out = a * b, element-wise:    out ~ a ~ b */
    OP_ADD,       /* out = a + b, element-wise:    out ~ a ~ b */
    OP_SLICE,     /* out = part of in (a fused map's output): out channel j ~ in channel
                     offset + (j / block) * stride + j % block (slice) */
};

#define GRAPH_MAX_IN 3

typedef struct {
    char *name;       /* for messages: "layers.3.q" */
    int64_t dim;      /* channels */
    int block;        /* layer it belongs to, or -1 (embedding, final norm, head) */
} graph_value;

typedef struct {
    enum op_type type;
    int in[GRAPH_MAX_IN]; /* value ids, -1 unused */
    int out;              /* value id, -1 for none (the LM head's logits) */
    char *weight;         /* tensor name or NULL */
    char *bias;           /* tensor name or NULL */
    int head_dim;         /* OP_ATTENTION, OP_HEAD_NORM: channels per head */
    int64_t rows;         /* OP_EMBED, and OP_LINEAR with no out value: rows of the
                             weight (the vocabulary) */
    int block;            /* layer whose removable branch this op is in, or -1 */
    fused_part slice;     /* OP_SLICE: which channels of in */
} graph_op;

typedef struct {
    int n_values, n_ops;
    graph_value *values;
    graph_op *ops;
} graph;

/* Building blocks for descriptions. */
int graph_value_new(graph *g, int64_t dim, int block, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
graph_op *graph_op_new(graph *g, enum op_type type, int block, int out, int in0, int in1, int in2);
void graph_free(graph *g);

/* The dataflow of c's architecture (model_archs: separate or fused q/k/v, norms
 * with or without bias, per-head q/k norms, SwiGLU with separate or fused gate/up or a GeLU MLP,
 * plain or scaled residuals; optional biases, tied or untied head, per-layer head
 * counts and MLP widths; layers with no attention or no MLP omit that branch). */
void graph_model(const model_config *c, graph *g);

/* The dependency analysis (discover.c): the groups of any description, of the
 * kinds in mask (groups.h), blocks 0..n_layers-1. Fills gs->g and gs->n only. */
struct group_set;
void groups_from_graph(const graph *g, int n_layers, unsigned kinds, struct group_set *gs);

#endif
