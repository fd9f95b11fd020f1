/* chatglm_text.h - ChatGLM-6B's text form around its SentencePiece model
 * (THUDM/chatglm-6b tokenization_chatglm.py, SPTokenizer._preprocess and
 * postprocess). Before encoding, "\n" becomes "<n>", "\t" becomes "<|tab|>" and
 * each run of 2 to 80 spaces becomes "<|blank_N|>"; a longer run becomes blanks
 * of 80 from its start, then the rest (a lone space stays a space), exactly
 * what the reference's replace() calls, longest first, give. Decoding reverses
 * it. Bytes are bytes: invalid UTF-8 passes through untouched. */
#ifndef PARE_CHATGLM_TEXT_H
#define PARE_CHATGLM_TEXT_H

#include <stddef.h>

#define CHATGLM_MAX_BLANK 80

/* The substituted form of s[0..n); malloc'd, NUL-terminated, *out_n its length. */
char *chatglm_escape(const char *s, size_t n, size_t *out_n);
/* The text of s[0..n) with "<n>", "<|tab|>" and "<|blank_N|>" (2 <= N <= 80)
 * replaced back, in the reference's order; malloc'd, NUL-terminated. */
char *chatglm_unescape(const char *s, size_t n, size_t *out_n);

#endif
