/* graph.c - dataflow descriptions: the builder functions and the architectures
 * of model_archs. This file says what the model computes; groups.c finds, from any
 * such description, what must be removed together. */
#include "prune/graph.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

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

/* ------------------------------------------------------------------ models */

/* Weight id of layer l (model.h's table) by name, or NULL when the config has none. */
static char *layer_weight(const model_config *c, int l, int id)
{
    int64_t shape[2];
    char name[200];
    if (id < 0 || !layer_weight_shape(c, l, id, shape))
        return NULL;
    layer_weight_name(c, name, sizeof name, l, id);
    return xstrdup(name);
}

static char *outer_weight(const model_config *c, int id)
{
    int64_t shape[2];
    return model_weight_shape(c, id, shape) ? xstrdup(model_weight_name(c, id)) : NULL;
}

static void linear(graph *g, const model_config *c, int l, int out, int in, int weight, int bias)
{
    graph_op *op = graph_op_new(g, OP_LINEAR, l, out, in, -1, -1);
    op->weight = layer_weight(c, l, weight);
    op->bias = layer_weight(c, l, bias);
}

/* The map weight (with bias) of layer l from in, one output value per part of
 * the map: outs[p] (dims[p] channels, named names[p]) - through slices of one
 * fused output when the weight is fused. */
static void linear_parts(graph *g, const model_config *c, int l, int in, int weight, int bias, int n,
                         const int64_t *dims, const char *const *names, int *outs)
{
    for (int p = 0; p < n; p++)
        outs[p] = graph_value_new(g, dims[p], l, "layers.%d.%s", l, names[p]);
    fused_part parts[3];
    if (!model_fused_parts(c, l, weight, parts)) {
        linear(g, c, l, outs[0], in, weight, bias);
        return;
    }
    int64_t total = 0;
    for (int p = 0; p < n; p++)
        total += dims[p];
    int fused = graph_value_new(g, total, l, "layers.%d.%s_fused", l, names[0]);
    linear(g, c, l, fused, in, weight, bias);
    for (int p = 0; p < n; p++)
        graph_op_new(g, OP_SLICE, l, outs[p], fused, -1, -1)->slice = parts[p];
}

static int norm(graph *g, const model_config *c, int l, int in, int weight, int bias, const char *name)
{
    int out = graph_value_new(g, c->dim, l, "layers.%d.%s", l, name);
    graph_op *op = graph_op_new(g, OP_NORM, l, out, in, -1, -1);
    op->weight = layer_weight(c, l, weight);
    op->bias = layer_weight(c, l, bias);
    return out;
}

/* Qwen3's q_norm or k_norm of in (heads of hd channels), one weight for every head. */
static int head_norm(graph *g, const model_config *c, int l, int in, int weight, const char *name)
{
    int out = graph_value_new(g, g->values[in].dim, l, "layers.%d.%s", l, name);
    graph_op *op = graph_op_new(g, OP_HEAD_NORM, l, out, in, -1, -1);
    op->weight = layer_weight(c, l, weight);
    op->head_dim = c->head_dim;
    return out;
}

/* The residual after a sub-block: its input x plus the branch, or with scaled
 * residuals alpha * (the normed input) plus the branch. */
static int residual(graph *g, const arch_desc *A, int l, int x, int xn, int branch, const char *name)
{
    int x2 = graph_value_new(g, g->values[x].dim, -1, "layers.%d.%s", l, name);
    graph_op_new(g, OP_ADD, -1, x2, A->scaled_residual ? xn : x, branch, -1);
    return x2;
}

void graph_model(const model_config *c, graph *g)
{
    memset(g, 0, sizeof *g);
    const arch_desc *A = &model_archs[c->arch];
    const int64_t D = c->dim;

    int x = graph_value_new(g, D, -1, "embed");
    graph_op *op = graph_op_new(g, OP_EMBED, -1, x, -1, -1, -1);
    op->weight = outer_weight(c, MW_EMBED);
    op->rows = c->vocab;

    for (int l = 0; l < c->n_layers; l++) {
        if (c->n_heads[l] > 0) {
            int64_t qd = config_q_dim(c, l), kvd = config_kv_dim(c, l);
            int xn = norm(g, c, l, x, LW_ATTN_NORM, LW_ATTN_NORM_B, "attn_in");
            static const char *const qkv_names[] = {"q", "k", "v"};
            int64_t dims[3] = {qd, kvd, kvd};
            int qkv[3];
            if (A->qkv == FUSED_NONE) {
                static const int w[3] = {LW_Q, LW_K, LW_V}, b[3] = {LW_BQ, LW_BK, LW_BV};
                for (int p = 0; p < 3; p++)
                    linear_parts(g, c, l, xn, w[p], b[p], 1, &dims[p], &qkv_names[p], &qkv[p]);
            } else {
                linear_parts(g, c, l, xn, LW_QKV, LW_BQKV, 3, dims, qkv_names, qkv);
            }
            if (A->qk_norm) {
                qkv[0] = head_norm(g, c, l, qkv[0], LW_Q_NORM, "q_norm");
                qkv[1] = head_norm(g, c, l, qkv[1], LW_K_NORM, "k_norm");
            }
            int qr = graph_value_new(g, qd, l, "layers.%d.q_rope", l);
            int kr = graph_value_new(g, kvd, l, "layers.%d.k_rope", l);
            graph_op_new(g, OP_ROPE, l, qr, qkv[0], -1, -1);
            graph_op_new(g, OP_ROPE, l, kr, qkv[1], -1, -1);
            int ctx = graph_value_new(g, qd, l, "layers.%d.attn_ctx", l);
            graph_op_new(g, OP_ATTENTION, l, ctx, qr, kr, qkv[2])->head_dim = c->head_dim;
            int ao = graph_value_new(g, D, l, "layers.%d.attn_out", l);
            linear(g, c, l, ao, ctx, LW_O, LW_BO);
            x = residual(g, A, l, x, xn, ao, "resid_attn");
        }
        if (c->ffn_dim[l] > 0) {
            int64_t F = c->ffn_dim[l];
            int xn = norm(g, c, l, x, LW_FFN_NORM, LW_FFN_NORM_B, "mlp_in");
            int hid = graph_value_new(g, F, l, "layers.%d.mlp_hidden", l);
            if (A->mlp == MLP_SWIGLU) {
                static const char *const names[] = {"gate", "up"};
                int64_t dims[2] = {F, F};
                int gu[2];
                if (A->fused_gate_up) {
                    linear_parts(g, c, l, xn, LW_GATE_UP, -1, 2, dims, names, gu);
                } else {
                    linear_parts(g, c, l, xn, LW_GATE, -1, 1, dims, names, &gu[0]);
                    linear_parts(g, c, l, xn, LW_UP, -1, 1, dims, names + 1, &gu[1]);
                }
                int act = graph_value_new(g, F, l, "layers.%d.gate_act", l);
                graph_op_new(g, OP_ACT, l, act, gu[0], -1, -1);
                graph_op_new(g, OP_MUL, l, hid, act, gu[1], -1);
            } else {
                int up = graph_value_new(g, F, l, "layers.%d.up", l);
                linear(g, c, l, up, xn, LW_UP, LW_BUP);
                graph_op_new(g, OP_ACT, l, hid, up, -1, -1);
            }
            int mo = graph_value_new(g, D, l, "layers.%d.mlp_out", l);
            linear(g, c, l, mo, hid, LW_DOWN, LW_BDOWN);
            x = residual(g, A, l, x, xn, mo, "resid_mlp");
        }
    }
    int xf = graph_value_new(g, D, -1, "final_norm");
    op = graph_op_new(g, OP_NORM, -1, xf, x, -1, -1);
    op->weight = outer_weight(c, MW_FINAL_NORM);
    op->bias = outer_weight(c, MW_FINAL_NORM_B);
    op = graph_op_new(g, OP_LINEAR, -1, -1, xf, -1, -1);
    op->weight = outer_weight(c, c->tied ? MW_EMBED : MW_LM_HEAD);
    op->rows = c->vocab;
}
