/* rope_layout.c - convert q/k rows between the half and interleaved layouts. */
#include "format/rope_layout.h"

#include <stdlib.h>
#include <string.h>

#include "base/util.h"

void rope_permute_rows(float *dst, const float *src, int64_t rows, int64_t cols, int hd,
                       enum rope_style from, enum rope_style to)
{
    size_t row_bytes = (size_t)cols * sizeof(float);
    if (from == to) {
        memcpy(dst, src, (size_t)rows * row_bytes);
        return;
    }
    int half = hd / 2;
    for (int64_t h = 0; h < rows / hd; h++)
        for (int j = 0; j < 2; j++)
            for (int i = 0; i < half; i++) {
                int64_t hr = h * hd + j * half + i, ir = h * hd + 2 * i + j;
                int64_t d = to == ROPE_INTERLEAVED ? ir : hr, s = to == ROPE_INTERLEAVED ? hr : ir;
                memcpy(dst + d * cols, src + s * cols, row_bytes);
            }
}

void model_set_rope_style(model *m, enum rope_style to)
{
    if (m->cfg.rope_style == to)
        return;
    m->fingerprint[0] = 0; /* another config, rows moved */
    for (int l = 0; l < m->cfg.n_layers; l++)
        for (int k = 0; k < LW_COUNT; k++) {
            if (!layer_weight_is_rotary(k) || !model_layer_weight_suffix(&m->cfg, k))
                continue;
            char name[256];
            layer_weight_name(&m->cfg, name, sizeof name, l, k);
            tensor *t = model_tensor(m, name);
            if (!t)
                continue;
            int64_t cols = t->ndim == 2 ? t->shape[1] : 1;
            float *from = xmalloc((size_t)t->numel * sizeof(float));
            float *tmp = xmalloc((size_t)t->numel * sizeof(float));
            tensor_get_f32(t, 0, t->numel, from);
            rope_permute_rows(tmp, from, t->shape[0], cols, m->cfg.head_dim, m->cfg.rope_style, to);
            tensor_set_f32(t, 0, t->numel, tmp);
            free(from);
            free(tmp);
        }
    m->cfg.rope_style = to;
}
