/* pare-tok-lines - test tool: token ids of each line of stdin, one line of ids
 * per input line, for comparing pare's tokenizers with another implementation.
 *
 *   pare-tok-lines [-0] [--bos | --prompt] [--whole] [--info] [--decode] TOKENIZER < text
 *
 * TOKENIZER is a file or a model folder (tokenizer_load_file). Records end with
 * '\n' (with -0: NUL); a last record without one counts too. Bytes are passed
 * as they are: no escapes, no CR handling. --whole encodes all of stdin as one
 * text and reports the time on stderr. --info prints "VOCAB BOS EOS UNK FORMAT"
 * and reads nothing. --decode prints, instead of the ids, their decoded text
 * (tokenizer_piece joined) as hex. --prompt encodes each record as a prompt
 * (tokenizer_encode_prompt). */
#include "base/util.h"
#include "text/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool decode, prompt;

static void print_ids(const tokenizer *t, const char *s, size_t n, bool bos)
{
    int *ids;
    size_t k = prompt ? tokenizer_encode_prompt(t, s, n, &ids) : tokenizer_encode(t, s, n, bos, &ids);
    for (size_t i = 0; i < k; i++) {
        if (decode) {
            size_t len;
            const char *p = tokenizer_piece(t, ids[i], &len);
            for (size_t j = 0; j < len; j++)
                printf("%02x", (unsigned char)p[j]);
        } else {
            printf(i ? " %d" : "%d", ids[i]);
        }
    }
    putchar('\n');
    free(ids);
}

int main(int argc, char **argv)
{
    set_progname("pare-tok-lines");
    bool bos = false, whole = false, info = false;
    char sep = '\n';
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-0") == 0)
            sep = '\0';
        else if (strcmp(argv[i], "--bos") == 0)
            bos = true;
        else if (strcmp(argv[i], "--whole") == 0)
            whole = true;
        else if (strcmp(argv[i], "--info") == 0)
            info = true;
        else if (strcmp(argv[i], "--decode") == 0)
            decode = true;
        else if (strcmp(argv[i], "--prompt") == 0)
            prompt = true;
        else if (argv[i][0] == '-' && argv[i][1])
            usage_die("unknown option '%s'\nusage: pare-tok-lines [-0] [--bos | --prompt] [--whole] [--info] [--decode] TOKENIZER", argv[i]);
        else if (!path)
            path = argv[i];
        else
            usage_die("usage: pare-tok-lines [-0] [--bos | --prompt] [--whole] [--info] [--decode] TOKENIZER");
    }
    if (!path)
        usage_die("usage: pare-tok-lines [-0] [--bos | --prompt] [--whole] [--info] [--decode] TOKENIZER");

    tokenizer *t = tokenizer_load_file(path);
    if (info) {
        printf("%d %d %d %d %s\n", tokenizer_vocab_size(t), tokenizer_bos(t), tokenizer_eos(t), tokenizer_unk(t),
               tokenizer_format(t));
    } else {
        size_t n;
        char *text = read_whole_file("-", &n);
        if (whole) {
            double t0 = now_seconds();
            int *ids;
            size_t k = tokenizer_encode(t, text, n, bos, &ids);
            double dt = now_seconds() - t0;
            free(ids);
            fprintf(stderr, "pare-tok-lines: %zu bytes -> %zu tokens in %.3f s\n", n, k, dt);
            print_ids(t, text, n, bos);
        } else {
            for (size_t at = 0; at < n;) {
                const char *end = memchr(text + at, sep, n - at);
                size_t len = end ? (size_t)(end - (text + at)) : n - at;
                print_ids(t, text + at, len, bos);
                at += len + 1;
            }
        }
        free(text);
    }
    tokenizer_free(t);
    if (ferror(stdout) || fclose(stdout) != 0)
        die("cannot write to stdout");
    return 0;
}
