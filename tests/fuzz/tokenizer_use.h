/* tokenizer_use.h - what the tokenizer targets (fuzz_tokenizer, fuzz_hf_tokenizer)
 * do with a tokenizer that loaded: encode texts that reach every step of every
 * kind (valid and ill-formed UTF-8, spaces, tabs, newlines, special tokens written
 * as text, digits, combining marks, a long word), with and without BOS, give the
 * pieces of the ids, then every piece, its id back, and every merge; then free it.
 * Static: included by the targets that use it. */
#ifndef PARE_FUZZ_TOKENIZER_USE_H
#define PARE_FUZZ_TOKENIZER_USE_H

#include <stdlib.h>
#include <string.h>

#include "text/tokenizer.h"

static void tokenizer_use(tokenizer *t)
{
    static const char *texts[] = {
        "", " ", "Hello world, it's 123456 ok", "  two  spaces\n\tand a tab\r\n",
        "caf\xc3\xa9 \xe2\x96\x81 <s> <0x0A> e\xcc\x81 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd",
        "\xff\xfe bad \xc3", "x", "<n>[gMASK]<|blank_3|>    \t\t\n", "<|begin_of_text|>x<|im_start|>y</s><think>",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        int *ids;
        size_t n = tokenizer_encode(t, texts[i], strlen(texts[i]), i & 1, &ids);
        for (size_t k = 0; k < n; k++) {
            size_t len;
            tokenizer_piece(t, ids[k], &len);
        }
        free(ids);
    }
    int v = tokenizer_vocab_size(t);
    for (int id = 0; id < v; id++) {
        size_t len;
        const char *p = tokenizer_piece_raw(t, id, &len);
        tokenizer_piece(t, id, &len);
        tokenizer_piece_id(t, p, len);
    }
    for (int i = 0; i < tokenizer_merge_count(t); i++) {
        size_t len;
        tokenizer_merge(t, i, &len);
    }
    tokenizer_pre_name(t);
    tokenizer_free(t);
}

#endif
