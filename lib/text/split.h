/* split.h - Hugging Face tokenizers' Split pre-tokenizer (and the Pattern it
 * cuts by): a regex, read through PCRE2 in UTF mode with Unicode properties
 * (UCP) and its JIT, or a literal string; the matches and the text between them
 * become pieces, kept, dropped or joined as the behavior says
 * (tokenizer/normalizer.rs SplitDelimiterBehavior); empty pieces are dropped.
 *
 * The regex is read as Oniguruma reads it in the library: \s and \S are
 * Unicode's White_Space (PCRE2's own \s also takes U+180E); (?i:...) folds case
 * by Unicode's rules in both ('s also matches 'ſ U+017F). Matches are found
 * left to right; an empty match right where the previous one ended is skipped
 * by one character (onig's find_iter). */
#ifndef PARE_SPLIT_H
#define PARE_SPLIT_H

#include <stdbool.h>
#include <stddef.h>

/* SplitDelimiterBehavior, in the order of split_behavior_names. */
enum split_behavior { SPLIT_REMOVED, SPLIT_ISOLATED, SPLIT_MERGED_WITH_PREVIOUS, SPLIT_MERGED_WITH_NEXT, SPLIT_CONTIGUOUS };
extern const char *const split_behavior_names[5]; // "Removed", "Isolated", ... as tokenizer.json writes them

typedef struct split split;

/* The pattern p[0..n): a regex, or with literal the string itself. NULL when
 * PCRE2 cannot compile it, with its message (and offset) in err. */
split *split_new(const char *p, size_t n, bool literal, enum split_behavior behavior, bool invert, char *err,
                 size_t err_size);
void split_free(split *sp);

/* A piece: bytes [start, end) of the text. */
typedef struct {
    size_t start, end;
} span;

/* The pieces of s[0..n) (well-formed UTF-8), appended to *out (count *n_out,
 * room *cap; grown with xrealloc), with offset added to each. Returns 0, or a
 * PCRE2 error code (a match limit reached), with its message in err. */
int split_run(const split *sp, const char *s, size_t n, size_t offset, span **out, size_t *n_out, size_t *cap,
              char *err, size_t err_size);

#endif
