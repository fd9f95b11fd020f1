/* safetensors.h - the Hugging Face .safetensors format (folders of them: hf_folder.h).
 *
 * A .safetensors file is an 8-byte little-endian header length N, N bytes of JSON
 * {NAME: {"dtype": "F32"|"F16"|"BF16", "shape": [...], "data_offsets": [b, e]},
 *  "__metadata__": {...}}, then the data; offsets count from the end of the header.
 * A folder holds config.json and model.safetensors, or shards listed by
 * model.safetensors.index.json ({"weight_map": {NAME: SHARD}}). */
#ifndef PARE_SAFETENSORS_H
#define PARE_SAFETENSORS_H

#include "model/model.h"
#include "model/tensor.h"

/* Read every tensor of a .safetensors file, in its stored dtype, and append it to
 * *ts (count *n, capacity *cap; *ts may start NULL with *n = *cap = 0). Tensors
 * point into a private mapping of the file where their payload is aligned to its
 * values, else into buffers of their own. Dies "PATH: ..." on a bad header, an unsupported dtype
 * (naming the tensor), a tensor of other than 1 or 2 dimensions, or a short file. */
void safetensors_read(const char *path, tensor **ts, int *n, int *cap);

/* Write n tensors (in the given order) to path, stored as dtype (rounded to nearest
 * even). A tensor without values (data NULL) gets them from src, one at a time.
 * The file appears under its name only when complete. */
void safetensors_write(const char *path, const tensor *ts, int n, enum dtype dtype, const tensor_source *src);

#endif
