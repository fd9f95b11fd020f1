/* pytorch.h - PyTorch checkpoints (pytorch_model.bin) written by torch.save of a
 * state_dict:
 *   zip (PyTorch >= 1.6): ARCHIVE/data.pkl, the pickle of the state_dict, whose
 *     tensors name storages by key; ARCHIVE/data/KEY, each storage's raw bytes,
 *     stored uncompressed;
 *   legacy (before 1.6): five pickles in a row (magic number, protocol version
 *     1001, system info, the state_dict, the list of storage keys) and then each
 *     storage in that order: its element count as int64 and its raw bytes.
 * The pickles are parsed by pickle.c (never executed). Storages may be FloatStorage,
 * HalfStorage or BFloat16Storage, little-endian; tensors share storages and start
 * at offsets within them. */
#ifndef PARE_PYTORCH_H
#define PARE_PYTORCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/tensor.h"

/* Read every tensor of a checkpoint file as fp32 and append it to *ts (count *n,
 * capacity *cap, as safetensors_read does). Dies "PATH: ..." on anything else. */
void pytorch_read(const char *path, tensor **ts, int *n, int *cap);
/* The same from len bytes in memory; source names them in messages. */
void pytorch_read_mem(const uint8_t *p, size_t len, const char *source, tensor **ts, int *n, int *cap);
/* The first bytes of a file look like a PyTorch checkpoint (zip or legacy). */
bool pytorch_sniff(const uint8_t *p, size_t n);

/* Write n tensors to path as torch.save(OrderedDict) of PyTorch >= 1.6 writes a
 * state_dict to a file (the zip format, archive named after the file, one
 * storage per tensor, 64-byte aligned), stored as dtype (rounded to nearest even).
 * A tensor without values (data NULL) gets them from src, one at a time. The file
 * appears under its name only when complete (pytorch_write.c); for test fixtures
 * and the folders pare-mkmodel writes. */
void pytorch_write(const char *path, const tensor *ts, int n, enum dtype dtype, const tensor_source *src);

#endif
