/* fuzz_pytorch - a PyTorch checkpoint (pytorch_model.bin): the zip form (its
 * central directory, data.pkl and the stored storages) and the legacy form (five
 * pickles and the storages after them), parsed by pickle.c and zip.c. */
#include <stdlib.h>

#include "format/pytorch.h"
#include "fuzz.h"
#include "model/tensor.h"

static void one(const uint8_t *data, size_t size)
{
    tensor *ts = NULL;
    int n = 0, cap = 0;
    pytorch_read_mem(data, size, "pytorch_model.bin", &ts, &n, &cap);
    tensors_free(ts, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_run(one, data, size);
    return 0;
}
