/* fuzz_gguf - a GGUF file (llama or deci): header, key/value pairs (the
 * tokenizer.ggml.* arrays among them), tensor infos, alignment and data. */
#include "fuzz.h"
#include "gguf.h"
#include "model.h"

static void one(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file("model.gguf", data, size);
    model m;
    gguf_read(&m, path);
    model_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_run(one, data, size);
    return 0;
}
