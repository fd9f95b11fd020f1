/* fuzz_config - the JSON files of a Hugging Face folder: the input is read as a
 * bare config.json (model_load of FILE.json), then as the shard index
 * model.safetensors.index.json of a folder (its weight_map). */
#include <stdlib.h>

#include "base/util.h"
#include "format/model_load.h"
#include "format/hf_folder.h"
#include "fuzz.h"
#include "model/model.h"
#include "model/tensor.h"

static void as_config(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file("config.json", data, size);
    model m;
    model_load(&m, path, NULL);
    model_free(&m);
}

static void as_index(const uint8_t *data, size_t size)
{
    fuzz_file("model.safetensors.index.json", data, size);
    tensor *ts = NULL;
    int n = 0;
    hf_read_weights(fuzz_dir(), &ts, &n);
    tensors_free(ts, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_run(as_config, data, size);
    fuzz_run(as_index, data, size);
    return 0;
}
