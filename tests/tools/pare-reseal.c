/* pare-reseal - test tool: a pare stream re-sealed as fuzz_stream_reseal and
 * fuzz_state re-seal their inputs (tests/fuzz/reseal.h): the trailing end record
 * dropped and a fresh one appended whose record count and XXH64 match the bytes.
 * Turns what those fuzzers found into the file the programs read
 * (tests/fuzz/crashes/).
 *
 *   pare-reseal IN OUT */
#include <stdio.h>
#include <stdlib.h>

#include "../fuzz/reseal.h"
#include "base/util.h"

int main(int argc, char **argv)
{
    set_progname("pare-reseal");
    if (argc != 3)
        usage_die("usage: pare-reseal IN OUT");
    size_t n, m;
    char *in = read_whole_file(argv[1], &n);
    uint8_t *out = reseal((const uint8_t *)in, n, &m);
    FILE *f = fopen(argv[2], "wb");
    if (!f || fwrite(out, 1, m, f) != m || fclose(f) != 0)
        die("cannot write '%s'", argv[2]);
    free(out);
    free(in);
    return 0;
}
