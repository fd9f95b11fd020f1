/* fuzz_gguf - a GGUF file (llama or deci): header, key/value pairs (the
 * tokenizer.ggml.* arrays among them), tensor infos, alignment and data, read
 * from memory as gguf_read reads the file it maps. */
#include "format/gguf.h"
#include "fuzz.h"
#include "model/model.h"

static void one(const uint8_t *data, size_t size)
{
    model m;
    gguf_read_mem(&m, data, size, "model.gguf");
    model_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_run(one, data, size);
    return 0;
}
