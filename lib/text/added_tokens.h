/* added_tokens.h - Hugging Face tokenizers' added tokens (special tokens and the
 * others), found in a text before it is pre-tokenized (tokenizer/
 * added_vocabulary.rs): leftmost-longest matches of their contents, each
 * matching as its flags say. single_word: only where no word character
 * (Unicode \w: Alphabetic, marks, decimal digits, connector punctuation,
 * join controls) touches it on either side; lstrip/rstrip: the whitespace
 * (White_Space) before/after it belongs to it; a match that is dropped as not a
 * single word still hides what overlaps it.
 *
 * A set holds either the tokens that match the text as it is (normalized
 * false) or those that match it normalized; the caller builds one of each,
 * giving the normalized set its contents normalized. */
#ifndef PARE_ADDED_TOKENS_H
#define PARE_ADDED_TOKENS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    const char *content; // not copied: valid while the set lives
    size_t len;
    int id;
    bool single_word, lstrip, rstrip;
} added_token;

typedef struct added_set added_set;

/* The set of n tokens (copied; the contents they point to are not). Empty
 * contents are skipped; where two tokens have the same content the later wins. */
added_set *added_set_new(const added_token *tokens, int n);
void added_set_free(added_set *a);
int added_set_count(const added_set *a);

/* A piece of a text: bytes [start, end), and the token it is (-1: text). */
typedef struct {
    size_t start, end;
    int id;
} added_piece;

/* s[0..n) (well-formed UTF-8) cut into text and tokens, appended to *out
 * (count *n_out, room *cap) with offset added to each; the pieces cover s. */
void added_set_find(const added_set *a, const char *s, size_t n, size_t offset, added_piece **out, size_t *n_out,
                    size_t *cap);

#endif
