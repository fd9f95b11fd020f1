/* fuzz_tokenizer - a tokenizer file: a SentencePiece ModelProto (tokenizer.model,
 * BPE or unigram) or llama2.c's tok*.bin, detected as the programs detect it; a
 * tokenizer that loads then encodes a few texts (valid and invalid UTF-8) and
 * gives every piece. A ModelProto is then read in the ChatGLM2 and ChatGLM-6B
 * modes too (the latter dies unless the model has ChatGLM's special pieces). */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "text/tokenizer.h"

static void exercise(tokenizer *t)
{
    static const char *texts[] = {"", " ", "Hello world", "  two  spaces\n\tand a tab",
                                  "caf\xc3\xa9 \xe2\x96\x81 <s> <0x0A>", "\xff\xfe bad \xc3", "x",
                                  "<n>[gMASK]<|blank_3|>    \t\t\n"};
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        int *ids;
        size_t n = tokenizer_encode(t, texts[i], strlen(texts[i]), i & 1, &ids);
        for (size_t k = 0; k < n; k++) {
            size_t len;
            tokenizer_piece(t, ids[k], &len);
        }
        free(ids);
    }
    int v = tokenizer_vocab_size(t);
    for (int id = 0; id < v; id++) {
        size_t len;
        const char *p = tokenizer_piece_raw(t, id, &len);
        tokenizer_piece(t, id, &len);
        tokenizer_piece_id(t, p, len);
    }
    tokenizer_free(t);
}

static void one(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file("tokenizer", data, size);
    exercise(tokenizer_load_file(path));
    const char *format = tokenizer_sniff(data, size);
    if (!format || strcmp(format, "sentencepiece") != 0)
        return;
    exercise(tokenizer_load_blob("chatglm2", data, size, path));
    exercise(tokenizer_load_blob("chatglm", data, size, path));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_run(one, data, size);
    return 0;
}
