/* open.h - what the programs that run a model do first: load it, require its
 * weights, and take the tokenizer it carries, checked against its vocabulary. */
#ifndef PARE_OPEN_H
#define PARE_OPEN_H

#include "model/model.h"
#include "text/tokenizer.h"

/* Load path into m (model_load; tok_path, if not NULL, supplies the tokenizer).
 * Dies "PATH: a bare config has no weights to PURPOSE" when it has no weights,
 * and when its tokenizer has more tokens than its vocabulary. Returns the
 * tokenizer (tokenizer_free), or NULL when the model has none: the program says
 * how to give one. */
tokenizer *model_open(model *m, const char *path, const char *tok_path, const char *purpose);

#endif
