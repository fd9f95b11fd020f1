/* fuzz_instruct - training data for pare-lora: Alpaca records (a JSON array or
 * JSON lines, plain or compressed) and raw text windows, tokenized with
 * stories260K's tok512.bin at a cutoff of 32 tokens. */
#include <stdlib.h>

#include "base/util.h"
#include "fuzz.h"
#include "text/instruct.h"

static tokenizer *g_tok;

static void alpaca(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file("data.json", data, size);
    instruct_data d;
    instruct_load_alpaca(&d, path, g_tok, 32, size & 1);
    instruct_free(&d);
}

static void text(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file("data.txt", data, size);
    instruct_data d;
    instruct_load_text(&d, path, g_tok, 32);
    instruct_free(&d);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *dir = getenv("PARE_DATA");
    char *path = path_join(dir && *dir ? dir : "../shared/data", "models/stories260K/tok512.bin");
    g_tok = tokenizer_load_file(path);
    free(path);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_run(alpaca, data, size);
    fuzz_run(text, data, size);
    return 0;
}
