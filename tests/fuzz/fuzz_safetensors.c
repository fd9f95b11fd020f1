/* fuzz_safetensors - a .safetensors file: the 8-byte length, the JSON header
 * (dtypes, shapes, data offsets) and the data behind it. */
#include <stdlib.h>

#include "format/safetensors.h"
#include "fuzz.h"
#include "model/tensor.h"

static void one(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file("model.safetensors", data, size);
    tensor *ts = NULL;
    int n = 0, cap = 0;
    safetensors_read(path, &ts, &n, &cap);
    tensors_free(ts, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_run(one, data, size);
    return 0;
}
