/* adapter.h - the adapter stream (pare-stream(5) "adapter"): LoRA sets (lora.h) in
 * and out of files, and a base model with its adapters merged as a checkpoint. */
#ifndef PARE_ADAPTER_H
#define PARE_ADAPTER_H

#include <jansson.h>

#include "compute/lora.h"
#include "model/model.h"

/* Write the adapter stream (pare-stream(5) "adapter"): header with the base
 * model's fingerprint and config, rank, alpha, dropout, targets, and the caller's
 * training summary and loss curve (either may be NULL); one tensor record per A
 * and B. path NULL or "-" = stdout; -o is atomic. */
void adapter_write(const lora_set *s, const model *m, const char *path, int argc, char **argv, json_t *training,
                   json_t *curve);
/* Merge s into m (lora_merge, lora.h) and write m as a checkpoint stream whose provenance names the base
 * (fingerprint, provenance) and the adapter (rank, alpha, targets, training). The merge is
 * rounded to the dtype each matrix is held in (the base's, to nearest even); with dtype >= 0,
 * the adapted matrices are held in dtype first and every tensor is written as dtype. */
void adapter_write_merged(lora_set *s, model *m, int dtype, const char *path, int argc, char **argv, json_t *training);
/* Write m, every weight of it trained (pare-lora --full), as a checkpoint stream
 * whose provenance names the base (base_fp, m's provenance) and the training
 * (training). With dtype >= 0 every tensor is written as dtype; else each in
 * the dtype its base stored (rounded to nearest even). */
void trained_write(model *m, const char *base_fp, int dtype, const char *path, int argc, char **argv,
                   json_t *training);
/* Read an adapter stream made for m (its fingerprint must be m's). */
void adapter_read(lora_set *s, const char *path, const model *m);
/* The adapter at path, read for m (adapter_read), allocated: passes given it compute
 * base + adapter, unmerged. lora_destroy frees it. */
lora_set *adapter_load(const char *path, const model *m);

#endif
