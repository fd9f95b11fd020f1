/* hf_export.h - a model as a Hugging Face transformers LLaMA folder. */
#ifndef PARE_HF_EXPORT_H
#define PARE_HF_EXPORT_H

#include "model/model.h"
#include "model/tensor.h"

/* Write m to dir (config.json, model.safetensors, tokenizer.model) in the layout
 * transformers' LlamaForCausalLM reads: q/k rows in the half rotary layout (m is
 * converted in place). Dies with a message pointing to GGUF when transformers has
 * no equivalent: layers of different widths, a removed sub-block, FLAP's output
 * biases without q/k/v biases. */
void hf_export(model *m, const char *dir, enum dtype dtype);

#endif
