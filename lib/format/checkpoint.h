/* checkpoint.h - the checkpoint stream: a model's config, tensors and tokenizer. */
#ifndef PARE_CHECKPOINT_H
#define PARE_CHECKPOINT_H

#include <stdio.h>

#include "format/stream.h"
#include "model/model.h"

/* Read a checkpoint stream from f (name for messages; prefix = bytes already read
 * from f while sniffing the format). Fills m completely (tensors, config,
 * tokenizer, provenance) and binds it. */
void checkpoint_read(model *m, FILE *f, const char *name, const uint8_t *prefix, size_t prefix_len);
/* Write m as a checkpoint stream to path (NULL/"-" = stdout). provenance may be NULL.
 * (model_save.h chooses between this and the other formats a model goes out as.) */
void checkpoint_write(const model *m, const char *path, int argc, char **argv, json_t *provenance);

#endif
