/* fuzz_hf_tokenizer - a Hugging Face tokenizer.json (format hf-json: the JSON,
 * then, optionally, a NUL byte and a tokenizer_config.json), read as pare
 * tokenize reads a file; a tokenizer that loads is used as tokenizer_use.h says
 * (its texts reach added and special tokens, NFC, the Split regex, byte-level
 * BPE and ill-formed UTF-8). Seeds: Llama 3's and Qwen3's files cut small. */
#include "fuzz.h"
#include "text/tokenizer.h"
#include "tokenizer_use.h"

static void one(const uint8_t *data, size_t size)
{
    tokenizer_use(tokenizer_load_file(fuzz_file("tokenizer.json", data, size)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_run(one, data, size);
    return 0;
}
