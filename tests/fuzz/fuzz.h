/* fuzz.h - what every libFuzzer target of pare shares (tests/fuzz/README.md).
 *
 * pare's library reports bad input with die(), which exits. A target sets a die
 * hook (lib/base/util.h) that longjmps back here, so that one rejected input does not
 * end the fuzzing process. Whatever the library had allocated or opened when it
 * died is released by the harness: the sanitizer's malloc/free hooks record every
 * block allocated while an input runs, fopen/fclose, archive_read_new/free and
 * mmap/munmap are wrapped by the linker (-Wl,--wrap=...), and after a die the open
 * archives and FILEs are closed, the mappings unmapped and the remaining blocks
 * freed. State a target keeps across inputs is made before the first
 * (LLVMFuzzerInitialize), or it would be freed under it. Leaks on the success path are
 * not reported (-detect_leaks=0): the programs free at exit. */
#ifndef PARE_FUZZ_H
#define PARE_FUZZ_H

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* One input: fn(data, size) with die() caught. Returns 1 when fn died. */
int fuzz_run(void (*fn)(const uint8_t *data, size_t size), const uint8_t *data, size_t size);
/* Write bytes to the file NAME in the target's private temporary folder (created
 * on first use, removed at exit); returns its path (valid until the next call). */
const char *fuzz_file(const char *name, const void *data, size_t size);
/* The temporary folder itself. */
const char *fuzz_dir(void);
/* A FILE on /dev/null for output nobody reads. */
FILE *fuzz_devnull(void);
/* The message of the last die() caught. */
const char *fuzz_last_error(void);

#endif
