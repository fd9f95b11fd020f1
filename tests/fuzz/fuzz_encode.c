/* fuzz_encode - any bytes encoded by the real tokenizers: Llama-2's
 * tokenizer.model (precompiled charsmap, byte fallback) and stories260K's
 * tok512.bin, from $PARE_DATA (default ../shared/data). */
#include <stdio.h>
#include <stdlib.h>

#include "fuzz.h"
#include "tokenizer.h"
#include "util.h"

static tokenizer *g_tok[2];

static void one(const uint8_t *data, size_t size)
{
    for (int k = 0; k < 2; k++) {
        int *ids;
        size_t n = tokenizer_encode(g_tok[k], (const char *)data, size, size & 1, &ids);
        for (size_t i = 0; i < n; i++) {
            size_t len;
            tokenizer_piece(g_tok[k], ids[i], &len);
        }
        free(ids);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *dir = getenv("PARE_DATA");
    if (!dir || !*dir)
        dir = "../shared/data";
    static const char *files[2] = {"tokenizers/llama2/tokenizer.model", "models/stories260K/tok512.bin"};
    for (int k = 0; k < 2; k++) {
        char *path = path_join(dir, files[k]);
        g_tok[k] = tokenizer_load_file(path);
        free(path);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_run(one, data, size);
    return 0;
}
