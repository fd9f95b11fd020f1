/* sp_normalize.h - SentencePiece's normalizer (normalizer.cc): the text a
 * SentencePiece model's encoder cuts, from the NormalizerSpec of its file.
 *
 * User-defined pieces are matched first and kept as they are (PrefixMatcher);
 * then the precompiled charsmap's longest rule (a darts-clone double array of
 * replacements); else one UTF-8 character, a malformed byte being one U+FFFD.
 * Around that: leading, trailing and repeated spaces removed
 * (remove_extra_whitespaces), a space put before the text (add_dummy_prefix;
 * after it with TrainerSpec's treat_whitespace_as_suffix), and every space
 * written as U+2581 (escape_whitespaces). */
#ifndef PARE_SP_NORMALIZE_H
#define PARE_SP_NORMALIZE_H

#include "base/util.h"
#include "text/tokenizer_kind.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SPACE_SYMBOL "\xe2\x96\x81" /* U+2581 LOWER ONE EIGHTH BLOCK */

typedef struct {
    bool add_dummy_prefix, remove_extra_ws, escape_ws; // NormalizerSpec
    bool ws_suffix; // TrainerSpec's treat_whitespace_as_suffix
    uint32_t *trie; // (trie_n) darts-clone double array of the precompiled charsmap
    size_t trie_n;
    char *norm; // (norm_n) NUL-terminated replacement strings the trie points into
    size_t norm_n;
    piece_map user; // USER_DEFINED pieces
    uint8_t user_first[32]; // bitset of their first bytes
    bool has_user;
} sp_normalizer;

/* The proto's defaults: add_dummy_prefix, remove_extra_whitespaces and
 * escape_whitespaces on, no charsmap, no user-defined pieces. */
void sp_normalizer_init(sp_normalizer *nz);
/* Reads a NormalizerSpec message; dies naming source when it is corrupt. */
void sp_normalizer_read(sp_normalizer *nz, const uint8_t *d, size_t n, const char *source);
/* Room for the user-defined pieces of a vocabulary of n_vocab, then each one. */
void sp_normalizer_user_init(sp_normalizer *nz, int n_vocab);
void sp_normalizer_add_user(sp_normalizer *nz, const tokenizer *t, int id);
void sp_normalizer_free(sp_normalizer *nz);

/* PrefixMatcher::PrefixMatch: the length of the longest user-defined piece at s, 0 if none. */
size_t sp_user_match(const sp_normalizer *nz, const tokenizer *t, const char *s, size_t n);
/* Normalizer::Normalize of in[0..n), appended to out. */
void sp_normalize(const sp_normalizer *nz, const tokenizer *t, const char *in, size_t n, bytes *out);

#endif
