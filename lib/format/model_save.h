/* model_save.h - which file a model goes out as: the one place that chooses
 * between the checkpoint stream, a GGUF file for llama.cpp and a Hugging Face
 * folder, and hands the model to that writer (checkpoint.h, gguf.h,
 * hf_folder.h). The mirror of model_load.h. */
#ifndef PARE_MODEL_SAVE_H
#define PARE_MODEL_SAVE_H

#include <jansson.h>

#include "model/model.h"

enum model_out { MODEL_OUT_CHECKPOINT, MODEL_OUT_GGUF, MODEL_OUT_HF, MODEL_OUT_COUNT };

/* The output format named s ("checkpoint", "gguf", "hf"), -1 if none. */
int model_out_from_name(const char *s);
/* What a path asks for when no format is named: GGUF when its name ends in
 * ".gguf", else the checkpoint stream (NULL and "-": stdout). */
enum model_out model_out_of_path(const char *path);

/* Write m to path as to: the checkpoint stream (every tensor as it is held:
 * model_set_dtype first to change that; the header with argc/argv and
 * provenance, which may be NULL), GGUF (a file) or a Hugging Face folder in the
 * layout transformers reads (hf_export; m's q/k rows are converted in place),
 * these two with their matrices stored as dtype (-1: the dtype the embedding is
 * held in). Dies on a path the format cannot go to (GGUF and HF need a file or
 * folder name, not stdout). */
void model_save(model *m, const char *path, enum model_out to, int dtype, int argc, char **argv, json_t *provenance);

#endif
