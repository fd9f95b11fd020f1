/* fuzz_calib - a calibration file for pare-score: plain text, JSON lines or a
 * JSON array of records, compressed or archived (libarchive), format detected
 * (calib_read_text; its tokenization is fuzz_encode's and fuzz_instruct's). */
#include <stdlib.h>

#include "fuzz.h"
#include "text/calib.h"

static void one(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file("calib", data, size);
    enum calib_format f = CALIB_AUTO;
    size_t len;
    free(calib_read_text(path, &f, &len));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_run(one, data, size);
    return 0;
}
