/* model_load.h - load a model from any supported source: which file format a
 * path holds, and which loader reads it. The loaders (llama2c.c, safetensors.c,
 * pytorch.c, gguf.c, checkpoint.c) depend on the model type (model.h); the model type
 * knows no file format. */
#ifndef PARE_MODEL_LOAD_H
#define PARE_MODEL_LOAD_H

#include "model/model.h"

/* Load any supported model; dies with "FILE: problem" on anything unsupported or
 * inconsistent. tokenizer_path (may be NULL) overrides/supplies the tokenizer.
 * path is one of:
 *   a folder      Hugging Face: config.json + model.safetensors, or the shards of
 *                 model.safetensors.index.json (or PyTorch .bin files);
 *                 its tokenizer as tokenizer_read_folder finds it. rope_style
 *                 "half" unless config.json says otherwise.
 *   FILE.json     a bare config.json: has_weights false, no tensors.
 *   a pare checkpoint stream (sniffed), or "-" for one on stdin.
 *   a GGUF file   (sniffed) llama or deci, F32/F16/BF16 (rope_style "interleaved").
 *   anything else a llama2.c .bin (rope_style "interleaved", q/k as in the file).
 * The result is bound (model_bind) unless it has no weights. */
void model_load(model *m, const char *path, const char *tokenizer_path);
/* model_load, but a Hugging Face folder's values are left unread
 * (model_bind_unscanned) for a caller that reads them all in a pass of its own and
 * finishes binding there (model_scan_finish); returns true then. Other sources are
 * bound as model_load binds them (false): a checkpoint is scanned as its stream is
 * read, which costs no pass of its own. */
bool model_load_unscanned(model *m, const char *path, const char *tokenizer_path);

#endif
