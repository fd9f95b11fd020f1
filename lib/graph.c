/* graph.c - dataflow descriptions: the builder functions and the LLaMA
 * architecture. This file says what the model computes; groups.c finds, from any
 * such description, what must be removed together. */
#include "graph.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

int graph_value_new(graph *g, int64_t dim, int block, const char *fmt, ...)
{
    char name[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    g->values = xrealloc(g->values, (size_t)(g->n_values + 1) * sizeof *g->values);
    g->values[g->n_values] = (graph_value){xstrdup(name), dim, block};
    return g->n_values++;
}

graph_op *graph_op_new(graph *g, enum op_type type, int block, int out, int in0, int in1, int in2)
{
    g->ops = xrealloc(g->ops, (size_t)(g->n_ops + 1) * sizeof *g->ops);
    graph_op *op = &g->ops[g->n_ops++];
    memset(op, 0, sizeof *op);
    op->type = type;
    op->block = block;
    op->out = out;
    op->in[0] = in0;
    op->in[1] = in1;
    op->in[2] = in2;
    return op;
}

void graph_free(graph *g)
{
    for (int i = 0; i < g->n_values; i++)
        free(g->values[i].name);
    for (int i = 0; i < g->n_ops; i++) {
        free(g->ops[i].weight);
        free(g->ops[i].bias);
    }
    free(g->values);
    free(g->ops);
    memset(g, 0, sizeof *g);
}

/* ------------------------------------------------------------------ LLaMA */

/* Weight id of layer l (model.h's table) by name, or NULL when the config has none. */
static char *layer_weight(const llama_config *c, int l, int id)
{
    int64_t shape[2];
    char name[160];
    if (!llama_layer_weight_shape(c, l, id, shape))
        return NULL;
    llama_layer_weight_name(name, sizeof name, l, id);
    return xstrdup(name);
}

static graph_op *linear(graph *g, const llama_config *c, int l, int out, int in, int weight, int bias)
{
    graph_op *op = graph_op_new(g, OP_LINEAR, l, out, in, -1, -1);
    op->weight = layer_weight(c, l, weight);
    op->bias = bias >= 0 ? layer_weight(c, l, bias) : NULL;
    return op;
}

static void norm(graph *g, const llama_config *c, int l, int out, int in, int weight)
{
    graph_op *op = graph_op_new(g, OP_NORM, l, out, in, -1, -1);
    op->weight = layer_weight(c, l, weight);
}

void graph_llama(const llama_config *c, graph *g)
{
    memset(g, 0, sizeof *g);
    const int64_t D = c->dim;

    int x = graph_value_new(g, D, -1, "embed");
    graph_op *op = graph_op_new(g, OP_EMBED, -1, x, -1, -1, -1);
    op->weight = xstrdup(llama_model_weight_names[MW_EMBED]);
    op->rows = c->vocab;

    for (int l = 0; l < c->n_layers; l++) {
        if (c->n_heads[l] > 0) {
            int64_t qd = llama_q_dim(c, l), kvd = llama_kv_dim(c, l);
            int xn = graph_value_new(g, D, l, "layers.%d.attn_in", l);
            norm(g, c, l, xn, x, LW_ATTN_NORM);
            int q = graph_value_new(g, qd, l, "layers.%d.q", l);
            int k = graph_value_new(g, kvd, l, "layers.%d.k", l);
            int v = graph_value_new(g, kvd, l, "layers.%d.v", l);
            linear(g, c, l, q, xn, LW_Q, LW_BQ);
            linear(g, c, l, k, xn, LW_K, LW_BK);
            linear(g, c, l, v, xn, LW_V, LW_BV);
            int qr = graph_value_new(g, qd, l, "layers.%d.q_rope", l);
            int kr = graph_value_new(g, kvd, l, "layers.%d.k_rope", l);
            graph_op_new(g, OP_ROPE, l, qr, q, -1, -1);
            graph_op_new(g, OP_ROPE, l, kr, k, -1, -1);
            int ctx = graph_value_new(g, qd, l, "layers.%d.attn_ctx", l);
            graph_op_new(g, OP_ATTENTION, l, ctx, qr, kr, v)->head_dim = c->head_dim;
            int ao = graph_value_new(g, D, l, "layers.%d.attn_out", l);
            linear(g, c, l, ao, ctx, LW_O, LW_BO);
            int x2 = graph_value_new(g, D, -1, "layers.%d.resid_attn", l);
            graph_op_new(g, OP_ADD, -1, x2, x, ao, -1);
            x = x2;
        }
        if (c->ffn_dim[l] > 0) {
            int64_t F = c->ffn_dim[l];
            int xn = graph_value_new(g, D, l, "layers.%d.mlp_in", l);
            norm(g, c, l, xn, x, LW_FFN_NORM);
            int gate = graph_value_new(g, F, l, "layers.%d.gate", l);
            int up = graph_value_new(g, F, l, "layers.%d.up", l);
            linear(g, c, l, gate, xn, LW_GATE, -1);
            linear(g, c, l, up, xn, LW_UP, -1);
            int act = graph_value_new(g, F, l, "layers.%d.gate_act", l);
            graph_op_new(g, OP_ACT, l, act, gate, -1, -1);
            int hid = graph_value_new(g, F, l, "layers.%d.mlp_hidden", l);
            graph_op_new(g, OP_MUL, l, hid, act, up, -1);
            int mo = graph_value_new(g, D, l, "layers.%d.mlp_out", l);
            linear(g, c, l, mo, hid, LW_DOWN, LW_BDOWN);
            int x2 = graph_value_new(g, D, -1, "layers.%d.resid_mlp", l);
            graph_op_new(g, OP_ADD, -1, x2, x, mo, -1);
            x = x2;
        }
    }
    int xf = graph_value_new(g, D, -1, "final_norm");
    op = graph_op_new(g, OP_NORM, -1, xf, x, -1, -1);
    op->weight = xstrdup(llama_model_weight_names[MW_FINAL_NORM]);
    op = graph_op_new(g, OP_LINEAR, -1, -1, xf, -1, -1);
    op->weight = xstrdup(llama_model_weight_names[c->tied ? MW_EMBED : MW_LM_HEAD]);
    op->rows = c->vocab;
}
