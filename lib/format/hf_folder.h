/* hf_folder.h - Hugging Face model folders: config.json, the weights (safetensors
 * or PyTorch files, one or shards listed by STEM.EXT.index.json's weight_map
 * {NAME: SHARD}), and the tokenizer's files (tokenizer_folder.h). */
#ifndef PARE_HF_FOLDER_H
#define PARE_HF_FOLDER_H

#include "model/model.h"
#include "model/tensor.h"

/* Read a Hugging Face folder's weights into *ts, *n: the first there of
 * model.safetensors.index.json, model.safetensors, pytorch_model.bin.index.json
 * and pytorch_model.bin, shards checked against their weight_map. */
void hf_read_weights(const char *dir, tensor **ts, int *n);

/* Write m as a Hugging Face folder (created if missing): config.json (canonical
 * config, extra keys, torch_dtype) and model.safetensors, or with shards > 1,
 * model-0000i-of-0000N.safetensors and model.safetensors.index.json. A tokenizer of
 * m is written as tokenizer.model. Tensors without data get theirs from m->values,
 * one at a time. */
void hf_write_folder(const model *m, const char *dir, enum dtype dtype, int shards);
/* The same with the weights in format: HF_SAFETENSORS as above, or HF_PYTORCH,
 * torch.save's zip checkpoints (pytorch_write): pytorch_model.bin, or
 * pytorch_model-0000i-of-0000N.bin and pytorch_model.bin.index.json. */
enum hf_weights { HF_SAFETENSORS, HF_PYTORCH };
void hf_write_folder_as(const model *m, const char *dir, enum dtype dtype, int shards, enum hf_weights format);

/* Write m to dir (config.json, model.safetensors, tokenizer.model) in the layout
 * transformers' LlamaForCausalLM reads: q/k rows in the half rotary layout (m is
 * converted in place). Dies with a message pointing to GGUF when transformers has
 * no equivalent: layers of different widths, a removed sub-block, FLAP's output
 * biases without q/k/v biases. */
void hf_export(model *m, const char *dir, enum dtype dtype);

#endif
