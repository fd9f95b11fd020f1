/* fuzz_llama2c - a llama2.c checkpoint (.bin): the seven int32 of its header
 * against the size of the file. */
#include "format/llama2c.h"
#include "fuzz.h"
#include "model/model.h"

static void one(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file("model.bin", data, size);
    model m;
    llama2c_load(&m, path);
    model_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_run(one, data, size);
    return 0;
}
