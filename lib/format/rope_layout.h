/* rope_layout.h - the two row orders of q/k projections (rope_style.h).
 * Within a head of hd rows, the rotary pairs are rows (i, i + hd/2) in the
 * Hugging Face "half" layout and rows (2i, 2i + 1) in Meta's "interleaved" one
 * (llama.cpp's, llama2.c's): half row j*hd/2 + i is interleaved row 2i + j. */
#ifndef PARE_ROPE_LAYOUT_H
#define PARE_ROPE_LAYOUT_H

#include <stdint.h>

#include "model/model.h"

/* dst = the rows of src (rows = heads * hd, cols values each; a bias has cols 1)
 * reordered from layout from to layout to (a copy when they are equal). dst and
 * src must not overlap. */
void rope_permute_rows(float *dst, const float *src, int64_t rows, int64_t cols, int hd,
                       enum rope_style from, enum rope_style to);

/* Put every weight of a bound model m whose rows run along rotary heads
 * (layer_weight_is_rotary: q/k weights and biases, q/k norms) into layout to,
 * in place, and record it in m->cfg.rope_style. */
void model_set_rope_style(model *m, enum rope_style to);

#endif
