/* fuzz_calib - a calibration file for pare-score: plain text, JSON lines or a
 * JSON array of records, compressed or archived (libarchive), format detected;
 * then tokenized with stories260K's tok512.bin and cut into windows. */
#include <stdlib.h>

#include "calib.h"
#include "fuzz.h"
#include "util.h"

static tokenizer *g_tok;

static void one(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file("calib", data, size);
    calib c;
    calib_load(&c, path, CALIB_AUTO, g_tok, 2, 8, 42);
    calib_free(&c);
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
    fuzz_run(one, data, size);
    return 0;
}
