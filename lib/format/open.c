/* open.c - a model and its tokenizer, for a program (open.h). */
#include "format/open.h"

#include "base/util.h"
#include "format/model_load.h"

tokenizer *model_open(model *m, const char *path, const char *tok_path, const char *purpose)
{
    model_load(m, path, tok_path);
    if (!m->has_weights)
        die("%s: a bare config has no weights to %s", path, purpose);
    if (!m->tok.size)
        return NULL;
    tokenizer *tok = tokenizer_load_blob(m->tok.format, m->tok.data, m->tok.size, path);
    if (tokenizer_vocab_size(tok) > m->cfg.vocab)
        die("%s: tokenizer has %d tokens, the model only %d", path, tokenizer_vocab_size(tok), m->cfg.vocab);
    return tok;
}
