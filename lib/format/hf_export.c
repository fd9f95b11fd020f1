/* hf_export.c - write a model as a transformers LLaMA folder (hf_export.h). */
#include "format/hf_export.h"

#include "base/util.h"
#include "format/rope_layout.h"
#include "format/safetensors.h"

void hf_export(model *m, const char *dir, enum dtype dtype)
{
    const model_config *c = &m->cfg;
    if (!m->has_weights)
        die("%s: the model has no weights (a bare config)", m->source);
    for (int l = 0; l < c->n_layers; l++)
        if (c->n_heads[l] != c->n_heads[0] || c->n_kv_heads[l] != c->n_kv_heads[0] ||
            c->ffn_dim[l] != c->ffn_dim[0] || c->n_heads[l] == 0 || c->ffn_dim[l] == 0)
            die("%s: layer %d has %d heads, %d key/value heads and MLP width %d, unlike layer 0 "
                "(%d, %d, %d); transformers' LLaMA has one width for every layer: write GGUF "
                "(--to gguf) for llama.cpp's deci architecture, which has per-layer widths",
                m->source, l, c->n_heads[l], c->n_kv_heads[l], c->ffn_dim[l], c->n_heads[0],
                c->n_kv_heads[0], c->ffn_dim[0]);
    if (c->down_bias || (c->o_bias && !c->qkv_bias))
        die("%s: the model has output biases (FLAP's compensation), which transformers' LLaMA "
            "cannot express: write GGUF (--to gguf) instead", m->source);
    model_set_rope_style(m, ROPE_HALF);
    hf_write_folder(m, dir, dtype, 1);
}
