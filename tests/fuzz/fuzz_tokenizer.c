/* fuzz_tokenizer - a tokenizer file: a SentencePiece ModelProto (tokenizer.model,
 * BPE or unigram) or llama2.c's tok*.bin, detected as the programs detect it; a
 * tokenizer that loads is used as tokenizer_use.h says. A ModelProto is then read
 * in the ChatGLM2 and ChatGLM-6B modes too (the latter dies unless the model has
 * ChatGLM's special pieces). */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "text/tokenizer.h"
#include "tokenizer_use.h"

static void one(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file("tokenizer", data, size);
    tokenizer_use(tokenizer_load_file(path));
    const char *format = tokenizer_sniff(data, size);
    if (!format || strcmp(format, "sentencepiece") != 0)
        return;
    tokenizer_use(tokenizer_load_blob("chatglm2", data, size, path));
    tokenizer_use(tokenizer_load_blob("chatglm", data, size, path));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_run(one, data, size);
    return 0;
}
