/* fuzz_tokenizer - a tokenizer file: a SentencePiece ModelProto (tokenizer.model)
 * or llama2.c's tok*.bin, detected as the programs detect it; a tokenizer that
 * loads then encodes a few texts (valid and invalid UTF-8) and gives every piece. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "tokenizer.h"

static void one(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file("tokenizer", data, size);
    tokenizer *t = tokenizer_load_file(path);
    static const char *texts[] = {"", " ", "Hello world", "  two  spaces\n\tand a tab",
                                  "caf\xc3\xa9 \xe2\x96\x81 <s> <0x0A>", "\xff\xfe bad \xc3", "x"};
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_run(one, data, size);
    return 0;
}
