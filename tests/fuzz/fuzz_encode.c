/* fuzz_encode - any bytes encoded by the real tokenizers: Llama-2's
 * tokenizer.model (precompiled charsmap, byte fallback) and stories260K's
 * tok512.bin, from $PARE_DATA (default ../shared/data); and by a small unigram
 * model built here in ChatGLM-6B's mode (substitutions, user-defined pieces,
 * byte fallback). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/spm_proto.h"
#include "base/util.h"
#include "fuzz.h"
#include "text/tokenizer.h"

#define N_TOK 3
static tokenizer *g_tok[N_TOK];

static void one(const uint8_t *data, size_t size)
{
    for (int k = 0; k < N_TOK; k++) {
        int *ids;
        size_t n = tokenizer_encode(g_tok[k], (const char *)data, size, size & 1, &ids);
        for (size_t i = 0; i < n; i++) {
            size_t len;
            tokenizer_piece(g_tok[k], ids[i], &len);
        }
        free(ids);
    }
}

/* A unigram model with ChatGLM-6B's special and whitespace pieces, byte
 * fallback, the letters and some pairs. */
static tokenizer *chatglm_unigram(void)
{
    static proto p; /* 16 KB */
    p.n = 0;
    static const char *user[] = {"<n>", "<|tab|>", "<|blank_2|>", "<|blank_3|>", "<|blank_80|>", "[MASK]",
                                 "[gMASK]", "<sop>", "<eop>"};
    put_piece(&p, "<unk>", 0, 2);
    put_piece(&p, "<s>", 0, 3);
    put_piece(&p, "</s>", 0, 3);
    put_piece(&p, "<pad>", 0, 3);
    for (size_t i = 0; i < sizeof user / sizeof *user; i++)
        put_piece(&p, user[i], 0, 4);
    char s[8];
    for (int b = 0; b < 256; b++) {
        snprintf(s, sizeof s, "<0x%02X>", b);
        put_piece(&p, s, 0, 6);
    }
    put_piece(&p, "\xe2\x96\x81", -2, 1);
    for (int c = 'a'; c <= 'z'; c++) {
        snprintf(s, sizeof s, "%c", c);
        put_piece(&p, s, -3.0f - (float)(c % 5), 1);
        snprintf(s, sizeof s, "\xe2\x96\x81%c", c);
        put_piece(&p, s, -4.0f - (float)(c % 3), 1);
        snprintf(s, sizeof s, "%ce", c);
        put_piece(&p, s, -5.5f, c == 'e' ? 5 : 1); // "ee" UNUSED
    }
    put_specs(&p, 1, true, -1, 0); /* unigram, byte fallback, spaces kept */
    return tokenizer_load_blob("chatglm", p.b, p.n, "chatglm unigram");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *dir = getenv("PARE_DATA");
    if (!dir || !*dir)
        dir = "../shared/data";
    static const char *files[2] = {"tokenizers/llama2/tokenizer.model", "models/stories260K/tok512.bin"};
    for (int k = 0; k < 2; k++) {
        char *path = path_join(dir, files[k]);
        g_tok[k] = tokenizer_load_file(path);
        free(path);
    }
    g_tok[2] = chatglm_unigram();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_run(one, data, size);
    return 0;
}
