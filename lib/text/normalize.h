/* normalize.h - Unicode normalization forms (NFC, NFD, NFKC, NFKD) through
 * utf8proc, as Hugging Face tokenizers' normalizers of those names apply them
 * (normalizers/unicode.rs). */
#ifndef PARE_NORMALIZE_H
#define PARE_NORMALIZE_H

#include <stddef.h>

enum unicode_form { FORM_NFC, FORM_NFD, FORM_NFKC, FORM_NFKD };
extern const char *const unicode_form_names[4]; // "NFC", "NFD", "NFKC", "NFKD"

/* s[0..n) (well-formed UTF-8, NULs allowed) in the form; malloc'd, *out_n set.
 * Dies only when out of memory. */
char *unicode_normalize(enum unicode_form form, const char *s, size_t n, size_t *out_n);

#endif
