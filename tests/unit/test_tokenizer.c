/* test_tokenizer.c - the SentencePiece and llama2.c tokenizers.
 *
 * Goldens from python3-sentencepiece for the Llama-2 tokenizer.model; small
 * hand-built ModelProtos whose ids are derived by hand; tok512.bin against an
 * independent O(n^2) rendering of llama2.c's encode() written here; round trips
 * through tokenizer_piece; the whole WikiText-2 test set as one string; ChatGLM's
 * substitutions and both ChatGLM modes on hand-built models, read from model
 * folders; and the errors for files that are not tokenizers.
 * (tests/tokenizer_oracle.py compares every line of WikiText-2 and PTB, and
 * models trained there, with python3-sentencepiece; test_tokenizer_unigram.c
 * the unigram paths.) */
#include "base/util.h"
#include "check.h"
#include "spm_proto.h"
#include "text/chatglm_text.h"
#include "text/tokenizer.h"
#include "text/tokenizer_folder.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char *data_path(const char *rel)
{
    return path_join(check_data_dir(), rel);
}

static bool ids_equal(const int *a, size_t na, const int *b, size_t nb)
{
    return na == nb && (na == 0 || memcmp(a, b, na * sizeof *a) == 0);
}

/* Ids of text; checks they equal want[0..n_want). */
static bool encodes_to(const tokenizer *t, const char *text, bool bos, const int *want, size_t n_want)
{
    int *ids;
    size_t n = tokenizer_encode(t, text, strlen(text), bos, &ids);
    bool ok = ids_equal(ids, n, want, n_want);
    if (!ok) {
        fprintf(stderr, "    '%s' ->", text);
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, " %d", ids[i]);
        fprintf(stderr, "\n");
    }
    free(ids);
    return ok;
}

/* The raw pieces of text's ids joined by '|'. */
static char *pieces_of(const tokenizer *t, const char *text)
{
    int *ids;
    size_t n = tokenizer_encode(t, text, strlen(text), false, &ids);
    char *out = xstrdup("");
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const char *p = tokenizer_piece_raw(t, ids[i], &len);
        char *next = xasprintf("%s%s%.*s", out, i ? "|" : "", (int)len, p);
        free(out);
        out = next;
    }
    free(ids);
    return out;
}

/* Decoded text of ids (tokenizer_piece joined), malloc'd; *len set. */
static char *decode(const tokenizer *t, const int *ids, size_t n, size_t *len)
{
    size_t cap = 16, at = 0;
    char *out = xmalloc(cap);
    for (size_t i = 0; i < n; i++) {
        size_t k;
        const char *p = tokenizer_piece(t, ids[i], &k);
        while (at + k + 1 > cap)
            out = xrealloc(out, cap *= 2);
        memcpy(out + at, p, k);
        at += k;
    }
    out[at] = 0;
    *len = at;
    return out;
}

/* ---- Llama-2 tokenizer.model ---- */

static tokenizer *llama2(void)
{
    char *path = data_path("tokenizers/llama2/tokenizer.model");
    tokenizer *t = tokenizer_load_file(path);
    free(path);
    return t;
}

static void test_llama2_golden(void)
{
    tokenizer *t = llama2();
    CHECK(strcmp(tokenizer_format(t), "sentencepiece") == 0);
    CHECK(tokenizer_vocab_size(t) == 32000);
    CHECK(tokenizer_bos(t) == 1);
    CHECK(tokenizer_eos(t) == 2);
    CHECK(tokenizer_unk(t) == 0);
    static const int hello[] = { 15043, 3186, 29892, 278, 6368, 310, 14215, 537 };
    static const int hello_bos[] = { 1, 15043, 3186, 29892, 278, 6368, 310, 14215, 537 };
    CHECK(encodes_to(t, "Hello world, the theory of relativity", false, hello, 8));
    CHECK(encodes_to(t, "Hello world, the theory of relativity", true, hello_bos, 9));
    CHECK(encodes_to(t, "", false, NULL, 0));
    CHECK(encodes_to(t, "", true, (const int[]){ 1 }, 1));
    // byte fallback, a character that is a piece, U+FFFD for a bad byte, spaces kept
    CHECK(encodes_to(t, "\n", false, (const int[]){ 29871, 13 }, 2));
    CHECK(encodes_to(t, "a\nb", false, (const int[]){ 263, 13, 29890 }, 3));
    CHECK(encodes_to(t, "日本", false, (const int[]){ 29871, 30325, 30346 }, 3));
    CHECK(encodes_to(t, "👍", false, (const int[]){ 29871, 243, 162, 148, 144 }, 5));
    CHECK(encodes_to(t, "naïve café", false, (const int[]){ 1055, 30085, 345, 274, 28059 }, 5));
    CHECK(encodes_to(t, "  two  spaces ", false, (const int[]){ 259, 1023, 29871, 8162, 29871 }, 5));
    CHECK(encodes_to(t, "x\xffy", false, (const int[]){ 921, 30140, 29891 }, 3));
    CHECK(encodes_to(t, "\x80\x80", false, (const int[]){ 29871, 26308 }, 2));
    tokenizer_free(t);
}

static void test_llama2_pieces(void)
{
    tokenizer *t = llama2();
    size_t n;
    const char *p = tokenizer_piece(t, 29871, &n);
    CHECK(n == 1 && p[0] == ' ');
    p = tokenizer_piece(t, 13, &n); // <0x0A>
    CHECK(n == 1 && p[0] == '\n');
    p = tokenizer_piece(t, 243, &n); // <0xF0>
    CHECK(n == 1 && (uint8_t)p[0] == 0xf0);
    p = tokenizer_piece(t, 15043, &n);
    CHECK(n == 6 && memcmp(p, " Hello", 6) == 0);
    p = tokenizer_piece(t, 1, &n);
    CHECK(n == 0);
    p = tokenizer_piece(t, 0, &n);
    CHECK(n == 5 && memcmp(p, " \xe2\x81\x87 ", 5) == 0);
    p = tokenizer_piece_raw(t, 15043, &n);
    CHECK(n == 8 && memcmp(p, "\xe2\x96\x81Hello", 8) == 0);
    p = tokenizer_piece_raw(t, 13, &n);
    CHECK(n == 6 && memcmp(p, "<0x0A>", 6) == 0);
    p = tokenizer_piece_raw(t, 1, &n);
    CHECK(n == 3 && memcmp(p, "<s>", 3) == 0);
    CHECK(tokenizer_piece_id(t, "\xe2\x96\x81Hello", 8) == 15043);
    CHECK(tokenizer_piece_id(t, "<s>", 3) == 1);
    CHECK(tokenizer_piece_id(t, "<0x0A>", 6) == 13);
    CHECK(tokenizer_piece_id(t, "no such piece", 13) == -1);
    tokenizer_free(t);
}

/* Every line of WikiText-2 decodes back to itself (after the dummy-prefix space),
 * and so does the whole test set encoded as one string, quickly. */
static void test_llama2_roundtrip_wikitext(void)
{
    tokenizer *t = llama2();
    char *path = data_path("eval/wikitext-2-raw/wiki.test.raw");
    size_t n;
    char *raw = read_whole_file(path, &n);
    // drop the CRs
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (raw[i] != '\r')
            raw[m++] = raw[i];
    raw[m] = 0;
    int bad = 0, lines = 0;
    for (char *line = raw; line < raw + m;) {
        char *end = memchr(line, '\n', (size_t)(raw + m - line));
        size_t len = end ? (size_t)(end - line) : (size_t)(raw + m - line);
        int *ids;
        size_t k = tokenizer_encode(t, line, len, false, &ids), dn;
        char *text = decode(t, ids, k, &dn);
        if (len == 0 ? dn != 0 : dn != len + 1 || text[0] != ' ' || memcmp(text + 1, line, len) != 0)
            bad++;
        free(text);
        free(ids);
        lines++;
        line += len + 1;
    }
    CHECK(lines == 4358);
    CHECK(bad == 0);

    double t0 = now_seconds();
    int *ids;
    size_t k = tokenizer_encode(t, raw, m, true, &ids);
    double dt = now_seconds() - t0;
    fprintf(stderr, "    whole WikiText-2 test: %zu bytes -> %zu tokens in %.3f s\n", m, k, dt);
    CHECK(dt < 10.0);
    CHECK(k > 300000 && k < 400000);
    CHECK(ids[0] == 1);
    size_t dn;
    char *text = decode(t, ids + 1, k - 1, &dn);
    CHECK(dn == m + 1 && text[0] == ' ' && memcmp(text + 1, raw, m) == 0);
    free(text);
    free(ids);
    free(raw);
    free(path);
    tokenizer_free(t);
}

/* The same file's bytes through tokenizer_load_blob, and tokenizer_sniff. */
static void test_blob_and_sniff(void)
{
    const char *files[] = { "tokenizers/llama2/tokenizer.model", "models/stories260K/tok512.bin" };
    const char *formats[] = { "sentencepiece", "llama2c" };
    const char *texts[] = { "Once upon a time, there was a little girl named Lily.", "  x  \n\ty\xff 日本 👍", "" };
    for (int f = 0; f < 2; f++) {
        char *path = data_path(files[f]);
        size_t n;
        uint8_t *bytes = (uint8_t *)read_whole_file(path, &n);
        CHECK(tokenizer_sniff(bytes, n) && strcmp(tokenizer_sniff(bytes, n), formats[f]) == 0);
        CHECK(tokenizer_sniff(bytes, n - 1) == NULL); // truncated
        CHECK(tokenizer_sniff(bytes, n / 2) == NULL);
        tokenizer *a = tokenizer_load_file(path);
        tokenizer *b = tokenizer_load_blob(formats[f], bytes, n, "blob");
        CHECK(strcmp(tokenizer_format(b), formats[f]) == 0);
        CHECK(tokenizer_vocab_size(a) == tokenizer_vocab_size(b));
        size_t dn;
        const uint8_t *d = tokenizer_data(b, &dn);
        CHECK(dn == n && memcmp(d, bytes, n) == 0);
        for (int i = 0; i < 3; i++) {
            int *ia, *ib;
            size_t na = tokenizer_encode(a, texts[i], strlen(texts[i]), true, &ia);
            size_t nb = tokenizer_encode(b, texts[i], strlen(texts[i]), true, &ib);
            CHECK(ids_equal(ia, na, ib, nb));
            free(ia);
            free(ib);
        }
        tokenizer_free(a);
        tokenizer_free(b);
        free(bytes);
        free(path);
    }
    CHECK(tokenizer_sniff((const uint8_t *)"", 0) == NULL);
    CHECK(tokenizer_sniff((const uint8_t *)"hello, world\n", 13) == NULL);
    CHECK(tokenizer_sniff((const uint8_t *)"\x0a\x00\x00\x00", 4) == NULL);
    CHECK(tokenizer_sniff(NULL, 0) == NULL);
}

/* ---- hand-built ModelProtos ---- */

#define U2581 "\xe2\x96\x81"

/* Pieces 0-5 of the hand-built models: <unk> <s> </s> ▁ a b. */
static void put_base_pieces(proto *p)
{
    put_piece(p, "<unk>", 0, 2);
    put_piece(p, "<s>", 0, 3);
    put_piece(p, "</s>", 0, 3);
    put_piece(p, U2581, -5, 1); // 3
    put_piece(p, "a", -6, 1); // 4
    put_piece(p, "b", -7, 1); // 5
}

/* <unk> <s> </s> ▁ a b x ▁a(s_wa) ab(s_ab) aa(-1) */
static tokenizer *tiny_model(float s_wa, float s_ab, int add_dummy_prefix, int remove_extra_ws)
{
    proto p = { .n = 0 };
    put_base_pieces(&p);
    put_piece(&p, U2581 "a", s_wa, 1); // 6
    put_piece(&p, "ab", s_ab, 1); // 7
    put_piece(&p, "aa", -1, 1); // 8
    put_specs(&p, 2, false, add_dummy_prefix, remove_extra_ws);
    CHECK(tokenizer_sniff(p.b, p.n) && strcmp(tokenizer_sniff(p.b, p.n), "sentencepiece") == 0);
    return tokenizer_load_blob("sentencepiece", p.b, p.n, "tiny");
}

static void test_hand_built_bpe(void)
{
    // the better-scoring merge goes first
    tokenizer *t = tiny_model(-1, -2, -1, -1);
    CHECK(tokenizer_bos(t) == 1 && tokenizer_eos(t) == 2 && tokenizer_unk(t) == 0);
    CHECK(encodes_to(t, "ab", false, (const int[]){ 6, 5 }, 2)); // ▁a b
    tokenizer_free(t);
    t = tiny_model(-2, -1, -1, -1);
    CHECK(encodes_to(t, "ab", false, (const int[]){ 3, 7 }, 2)); // ▁ ab
    // equal scores: the leftmost pair ("▁a" before "ab")
    tokenizer_free(t);
    t = tiny_model(-1, -1, -1, -1);
    CHECK(encodes_to(t, "ab", false, (const int[]){ 6, 5 }, 2));
    // "▁aaa": aa at 1 and aa at 2 tie (▁a scores lower): leftmost, then ▁ aa a
    tokenizer_free(t);
    t = tiny_model(-3, -2, -1, -1);
    CHECK(encodes_to(t, "aaa", false, (const int[]){ 3, 8, 4 }, 3));
    // a run of unknown characters is one <unk> (no byte fallback)
    CHECK(encodes_to(t, "xyz", false, (const int[]){ 3, 0 }, 2));
    CHECK(encodes_to(t, "b日本b", false, (const int[]){ 3, 5, 0, 5 }, 4));
    CHECK(encodes_to(t, "b\xff\xfe", false, (const int[]){ 3, 5, 0 }, 3));
    // NormalizerSpec defaults (fields absent): extra whitespace removed
    CHECK(encodes_to(t, "  b   b  ", false, (const int[]){ 3, 5, 3, 5 }, 4));
    CHECK(encodes_to(t, "   ", false, NULL, 0));
    tokenizer_free(t);
    // remove_extra_whitespaces false: kept; add_dummy_prefix false: no leading ▁
    t = tiny_model(-3, -2, 1, 0);
    CHECK(encodes_to(t, " b  b", false, (const int[]){ 3, 3, 5, 3, 3, 5 }, 6));
    CHECK(encodes_to(t, "   ", false, (const int[]){ 3, 3, 3, 3 }, 4));
    tokenizer_free(t);
    t = tiny_model(-3, -2, 0, 0);
    CHECK(encodes_to(t, "ab b", false, (const int[]){ 7, 3, 5 }, 3));
    CHECK(encodes_to(t, "ab", true, (const int[]){ 1, 7 }, 2));
    tokenizer_free(t);
}

/* ---- ChatGLM ---- */

static bool escapes_to(const char *text, const char *want)
{
    size_t n, back_n;
    char *e = chatglm_escape(text, strlen(text), &n);
    char *back = chatglm_unescape(e, n, &back_n);
    bool ok = n == strlen(want) && memcmp(e, want, n) == 0 && back_n == strlen(text) && !memcmp(back, text, back_n);
    if (!ok)
        fprintf(stderr, "    '%s' -> '%s' -> '%s'\n", text, e, back);
    free(e);
    free(back);
    return ok;
}

static char *spaces(int n)
{
    char *s = xmalloc((size_t)n + 1);
    memset(s, ' ', (size_t)n);
    s[n] = 0;
    return s;
}

static void test_chatglm_text(void)
{
    CHECK(escapes_to("", ""));
    CHECK(escapes_to("a b", "a b"));
    CHECK(escapes_to("a\nb", "a<n>b"));
    CHECK(escapes_to("\t\tx", "<|tab|><|tab|>x"));
    CHECK(escapes_to("a  b   c", "a<|blank_2|>b<|blank_3|>c"));
    CHECK(escapes_to(" \n  \t ", " <n><|blank_2|><|tab|> "));
    CHECK(escapes_to("caf\xc3\xa9\xff  \x80", "caf\xc3\xa9\xff<|blank_2|>\x80"));
    // runs over 80: blanks of 80 from the start, then the rest; a lone space stays
    const int runs[] = { 79, 80, 81, 82, 160, 161, 162, 250 };
    const char *want[] = { "<|blank_79|>", "<|blank_80|>", "<|blank_80|> ", "<|blank_80|><|blank_2|>",
                           "<|blank_80|><|blank_80|>", "<|blank_80|><|blank_80|> ",
                           "<|blank_80|><|blank_80|><|blank_2|>", "<|blank_80|><|blank_80|><|blank_80|><|blank_10|>" };
    for (int i = 0; i < 8; i++) {
        char *s = spaces(runs[i]);
        CHECK(escapes_to(s, want[i]));
        free(s);
    }
    // decoding what no encoding gives: literal forms come back as text, in the reference's order
    size_t n;
    char *t = chatglm_unescape("<|blank_1|><|blank_81|><|blank_2|><n>", 38, &n);
    CHECK(n == 27 && memcmp(t, "<|blank_1|><|blank_81|>  \n", n) == 0);
    free(t);
}

/* A unigram ice_text.model in miniature: ChatGLM-6B's pieces and specials. */
static void chatglm_proto(proto *p)
{
    p->n = 0;
    put_piece(p, "<unk>", 0, 2);
    put_piece(p, "<s>", 0, 3);
    put_piece(p, "</s>", 0, 3);
    put_piece(p, "<pad>", 0, 3); // 3
    put_piece(p, "<n>", 0, 4); // 4
    put_piece(p, "<|tab|>", 0, 4); // 5
    put_piece(p, "<|blank_2|>", 0, 4); // 6
    put_piece(p, "<|blank_80|>", 0, 4); // 7
    put_piece(p, "[MASK]", 0, 4); // 8
    put_piece(p, "[gMASK]", 0, 4); // 9
    put_piece(p, "<sop>", 0, 4); // 10
    put_piece(p, "<eop>", 0, 4); // 11
    put_piece(p, U2581, -2, 1); // 12
    put_piece(p, "a", -3, 1); // 13
    put_piece(p, "b", -3, 1); // 14
    put_piece(p, U2581 "a", -2.5f, 1); // 15
    put_specs(p, 1, false, -1, 0);
}

static void test_chatglm_mode(void)
{
    proto p;
    chatglm_proto(&p);
    tokenizer *plain = tokenizer_load_blob("sentencepiece", p.b, p.n, "ice_text.model");
    tokenizer *t = tokenizer_load_blob("chatglm", p.b, p.n, "ice_text.model");
    CHECK(strcmp(tokenizer_format(t), "chatglm") == 0);
    CHECK(tokenizer_vocab_size(t) == 16);
    CHECK(tokenizer_bos(t) == 10 && tokenizer_eos(t) == 11 && tokenizer_unk(t) == 0);
    CHECK(tokenizer_bos(plain) == 1 && tokenizer_eos(plain) == 2);
    const int *prefix;
    CHECK(tokenizer_prefix(t, &prefix) == 2 && prefix[0] == 9 && prefix[1] == 10);
    CHECK(tokenizer_prefix(plain, &prefix) == 1 && prefix[0] == 1);
    // ▁a <n> b: the newline became <n> first (the plain model reads "\n" as unknown)
    CHECK(encodes_to(t, "a\nb", false, (const int[]){ 15, 4, 14 }, 3));
    CHECK(encodes_to(plain, "a\nb", false, (const int[]){ 15, 0, 14 }, 3));
    CHECK(encodes_to(t, "a\tb  a", false, (const int[]){ 15, 5, 14, 6, 13 }, 5));
    CHECK(encodes_to(t, "a\nb", true, (const int[]){ 9, 10, 15, 4, 14 }, 5));
    CHECK(encodes_to(t, "", true, (const int[]){ 9, 10 }, 2));
    // a prompt: the text, then [gMASK] <sop> (plain models: BOS first)
    int *ids;
    size_t k = tokenizer_encode_prompt(t, "a\nb", 3, &ids);
    CHECK(ids_equal(ids, k, (const int[]){ 15, 4, 14, 9, 10 }, 5));
    free(ids);
    k = tokenizer_encode_prompt(plain, "a\nb", 3, &ids);
    CHECK(ids_equal(ids, k, (const int[]){ 1, 15, 0, 14 }, 4));
    free(ids);
    char *s = spaces(82);
    CHECK(encodes_to(t, s, false, (const int[]){ 12, 7, 6 }, 3)); // ▁ <|blank_80|> <|blank_2|>
    s[81] = 0;
    CHECK(encodes_to(t, s, false, (const int[]){ 12, 7, 12 }, 3)); // ▁ <|blank_80|> ▁
    free(s);
    // decoding gives the text back
    size_t n;
    const char *piece = tokenizer_piece(t, 4, &n);
    CHECK(n == 1 && piece[0] == '\n');
    piece = tokenizer_piece(t, 5, &n);
    CHECK(n == 1 && piece[0] == '\t');
    piece = tokenizer_piece(t, 7, &n);
    CHECK(n == 80 && piece[0] == ' ' && piece[79] == ' ');
    piece = tokenizer_piece(plain, 4, &n);
    CHECK(n == 3 && memcmp(piece, "<n>", 3) == 0);
    piece = tokenizer_piece_raw(t, 7, &n);
    CHECK(n == 12 && memcmp(piece, "<|blank_80|>", 12) == 0);
    const char *text = " a\tb\n  a\n";
    k = tokenizer_encode(t, text, strlen(text), true, &ids);
    char *back = decode(t, ids, k, &n);
    CHECK(n == strlen(text) + 1 && back[0] == ' ' && memcmp(back + 1, text, n - 1) == 0); // + the dummy prefix
    free(back);
    free(ids);
    tokenizer_free(t);
    tokenizer_free(plain);
}

static void test_chatglm2_mode(void)
{
    proto p = { .n = 0 };
    put_base_pieces(&p);
    put_piece(&p, U2581 "a", -1, 1); // 6
    put_piece(&p, "sop", -1, 1); // 7: a piece named like a special is still text
    put_specs(&p, 2, false, -1, -1);
    tokenizer *t = tokenizer_load_blob("chatglm2", p.b, p.n, "tokenizer.model");
    CHECK(strcmp(tokenizer_format(t), "chatglm2") == 0);
    // [MASK] 8, [gMASK] 9, [sMASK] 10, sop 11, eop 12 after the model's 8 pieces
    CHECK(tokenizer_vocab_size(t) == 13);
    CHECK(tokenizer_bos(t) == 11 && tokenizer_eos(t) == 2 && tokenizer_unk(t) == 0);
    const int *prefix;
    CHECK(tokenizer_prefix(t, &prefix) == 2 && prefix[0] == 9 && prefix[1] == 11);
    CHECK(encodes_to(t, "ab", true, (const int[]){ 9, 11, 6, 5 }, 4));
    int *ids;
    size_t k = tokenizer_encode_prompt(t, "ab", 2, &ids); // ChatGLM2 prompts start with the prefix
    CHECK(ids_equal(ids, k, (const int[]){ 9, 11, 6, 5 }, 4));
    free(ids);
    CHECK(encodes_to(t, "a\nb", false, (const int[]){ 6, 0, 5 }, 3)); // no substitutions
    CHECK(tokenizer_piece_id(t, "[gMASK]", 7) == 9);
    CHECK(tokenizer_piece_id(t, "eop", 3) == 12);
    CHECK(tokenizer_piece_id(t, "sop", 3) == 11); // the control piece is found first
    CHECK(tokenizer_piece_type(t, 12) == 3);
    size_t n;
    tokenizer_piece(t, 9, &n);
    CHECK(n == 0);
    const char *raw = tokenizer_piece_raw(t, 10, &n);
    CHECK(n == 7 && memcmp(raw, "[sMASK]", 7) == 0);
    tokenizer_free(t);
}

static char *temp_dir(void)
{
    char *dir = xstrdup("/tmp/pare-test-tokenizer-dir-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    return dir;
}

static void put_file(const char *dir, const char *name, const void *data, size_t n)
{
    char *path = path_join(dir, name);
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(data, 1, n, f) == n);
    fclose(f);
    free(path);
}

static void remove_dir(char *dir)
{
    const char *names[] = { "tokenizer_config.json", "ice_text.model", "tokenizer.model", "tokenizer.json" };
    for (int i = 0; i < 4; i++) {
        char *path = path_join(dir, names[i]);
        unlink(path);
        free(path);
    }
    rmdir(dir);
    free(dir);
}

static void load_path(void *path);

static void read_folder(void *dir)
{
    uint8_t *data;
    size_t n;
    tokenizer_read_folder(dir, &data, &n);
}

static void test_folders(void)
{
    proto p;
    chatglm_proto(&p);
    static const char glm_config[] = "{\"tokenizer_class\": \"ChatGLMTokenizer\", \"num_image_tokens\": 0}";
    uint8_t *data;
    size_t n;

    char *dir = temp_dir();
    CHECK(tokenizer_read_folder(dir, &data, &n) == NULL);
    put_file(dir, "tokenizer.model", p.b, p.n);
    CHECK(strcmp(tokenizer_read_folder(dir, &data, &n), "sentencepiece") == 0 && n == p.n);
    free(data);
    put_file(dir, "tokenizer_config.json", glm_config, strlen(glm_config));
    CHECK(strcmp(tokenizer_read_folder(dir, &data, &n), "chatglm2") == 0);
    free(data);
    put_file(dir, "ice_text.model", p.b, p.n);
    CHECK(strcmp(tokenizer_read_folder(dir, &data, &n), "chatglm") == 0 && n == p.n);
    free(data);
    tokenizer *t = tokenizer_load_file(dir);
    CHECK(strcmp(tokenizer_format(t), "chatglm") == 0);
    CHECK(encodes_to(t, "a\n", true, (const int[]){ 9, 10, 15, 4 }, 4));

    // written back, read again: the same mode
    const uint8_t *bytes = tokenizer_data(t, &n);
    char *out = temp_dir();
    tokenizer_write_folder(out, tokenizer_format(t), bytes, n);
    tokenizer *again = tokenizer_load_file(out);
    CHECK(strcmp(tokenizer_format(again), "chatglm") == 0);
    CHECK(encodes_to(again, "a\n", true, (const int[]){ 9, 10, 15, 4 }, 4));
    tokenizer_free(again);
    remove_dir(out);
    out = temp_dir();
    tokenizer_write_folder(out, "chatglm2", bytes, n);
    again = tokenizer_load_file(out);
    CHECK(strcmp(tokenizer_format(again), "chatglm2") == 0 && tokenizer_vocab_size(again) == 21);
    tokenizer_free(again);
    remove_dir(out);
    tokenizer_free(t);

    // what the modes here do not give
    static const char images[] = "{\"tokenizer_class\": \"ChatGLMTokenizer\", \"num_image_tokens\": 20000}";
    put_file(dir, "tokenizer_config.json", images, strlen(images));
    CHECK(dies_with(read_folder, dir, "num_image_tokens"));
    put_file(dir, "tokenizer_config.json", "{", 1);
    CHECK(dies_with(read_folder, dir, "tokenizer_config.json"));
    remove_dir(dir);
    dir = temp_dir();
    put_file(dir, "tokenizer_config.json", glm_config, strlen(glm_config));
    CHECK(dies_with(read_folder, dir, "ice_text.model"));
    CHECK(dies_with(load_path, dir, "ice_text.model"));
    put_file(dir, "ice_text.model", "hello", 5);
    CHECK(dies_with(read_folder, dir, "ice_text.model: not a tokenizer"));
    remove_dir(dir);
}

/* ---- llama2.c tok512.bin ---- */

static tokenizer *tok512(void)
{
    char *path = data_path("models/stories260K/tok512.bin");
    tokenizer *t = tokenizer_load_file(path);
    free(path);
    return t;
}

static void test_tok512_hand(void)
{
    tokenizer *t = tok512();
    CHECK(strcmp(tokenizer_format(t), "llama2c") == 0);
    CHECK(tokenizer_vocab_size(t) == 512);
    CHECK(tokenizer_bos(t) == 1 && tokenizer_eos(t) == 2 && tokenizer_unk(t) == 0);
    char *p = pieces_of(t, "Once upon a time");
    CHECK(strcmp(p, " Once| upon| a| time") == 0);
    free(p);
    // the dummy prefix " " and a space, with no "  " token: two " "
    int sp = tokenizer_piece_id(t, " ", 1);
    CHECK(sp >= 0);
    CHECK(encodes_to(t, " ", false, (const int[]){ sp, sp }, 2));
    // a character that is no token: its UTF-8 bytes as byte tokens, byte + 3
    CHECK(tokenizer_piece_id(t, "日", 3) < 0);
    CHECK(encodes_to(t, "日", false, (const int[]){ sp, 0xe6 + 3, 0x97 + 3, 0xa5 + 3 }, 4));
    CHECK(encodes_to(t, "\xff", false, (const int[]){ sp, 0xff + 3 }, 2));
    CHECK(encodes_to(t, "", true, (const int[]){ 1 }, 1));
    size_t n;
    const char *s = tokenizer_piece(t, 0x41 + 3, &n); // <0x41>
    CHECK(n == 1 && s[0] == 'A');
    s = tokenizer_piece(t, 1, &n);
    CHECK(n == 0);
    s = tokenizer_piece_raw(t, 1, &n);
    CHECK(n == 5 && memcmp(s, "\n<s>\n", 5) == 0);
    tokenizer_free(t);
}

/* An independent llama2.c encode(): tok.bin read with stdio, the vocabulary
 * sorted for bsearch, and the O(n^2) loop that merges the best pair each pass. */
typedef struct {
    char **str; // (V) NUL-terminated
    float *score; // (V)
    int *sorted; // (V) ids by string
    int n;
} ref_vocab;

static const ref_vocab *ref_cmp_vocab;

static int ref_cmp(const void *a, const void *b)
{
    return strcmp(ref_cmp_vocab->str[*(const int *)a], ref_cmp_vocab->str[*(const int *)b]);
}

static ref_vocab ref_load(const char *path)
{
    ref_vocab v = { 0 };
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    int max_len;
    if (!f || fread(&max_len, 4, 1, f) != 1)
        return v;
    int cap = 0;
    float score;
    while (fread(&score, 4, 1, f) == 1) {
        int len;
        if (fread(&len, 4, 1, f) != 1)
            break;
        if (v.n == cap) {
            cap = cap ? 2 * cap : 256;
            v.str = xrealloc(v.str, (size_t)cap * sizeof *v.str);
            v.score = xrealloc(v.score, (size_t)cap * sizeof *v.score);
        }
        v.str[v.n] = xcalloc((size_t)len + 1, 1);
        if (fread(v.str[v.n], 1, (size_t)len, f) != (size_t)len)
            break;
        v.score[v.n++] = score;
    }
    fclose(f);
    v.sorted = xmalloc((size_t)v.n * sizeof *v.sorted);
    for (int i = 0; i < v.n; i++)
        v.sorted[i] = i;
    ref_cmp_vocab = &v;
    qsort(v.sorted, (size_t)v.n, sizeof *v.sorted, ref_cmp);
    return v;
}

static int ref_lookup(const ref_vocab *v, const char *s)
{
    int lo = 0, hi = v->n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2, c = strcmp(v->str[v->sorted[mid]], s);
        if (c == 0) {
            while (mid > 0 && strcmp(v->str[v->sorted[mid - 1]], s) == 0)
                mid--;
            return v->sorted[mid];
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

/* text: NUL-terminated; out: room for strlen(text) + 2 ids. */
static int ref_encode(const ref_vocab *v, const char *text, int *out)
{
    int n = 0;
    char buf[64];
    if (text[0])
        out[n++] = ref_lookup(v, " ");
    size_t len = 0;
    for (const char *c = text; *c; c++) {
        if ((*c & 0xc0) != 0x80)
            len = 0;
        buf[len++] = *c;
        buf[len] = 0;
        if ((c[1] & 0xc0) == 0x80 && len < 4)
            continue;
        int id = ref_lookup(v, buf);
        if (id >= 0) {
            out[n++] = id;
        } else {
            for (size_t i = 0; i < len; i++)
                out[n++] = (unsigned char)buf[i] + 3;
        }
        len = 0;
    }
    char *pair = xmalloc(2 * 4096);
    for (;;) {
        float best = -1e10f;
        int best_id = -1, best_at = -1;
        for (int i = 0; i + 1 < n; i++) {
            snprintf(pair, 2 * 4096, "%s%s", v->str[out[i]], v->str[out[i + 1]]);
            int id = ref_lookup(v, pair);
            if (id >= 0 && v->score[id] > best) {
                best = v->score[id];
                best_id = id;
                best_at = i;
            }
        }
        if (best_at < 0)
            break;
        out[best_at] = best_id;
        memmove(out + best_at + 1, out + best_at + 2, (size_t)(n - best_at - 2) * sizeof *out);
        n--;
    }
    free(pair);
    return n;
}

static void test_tok512_reference(void)
{
    char *path = data_path("models/stories260K/tok512.bin");
    ref_vocab v = ref_load(path);
    CHECK(v.n == 512);
    tokenizer *t = tokenizer_load_file(path);
    free(path);
    path = data_path("text/tinystories/tinystories_train_sample.txt");
    size_t n;
    char *text = read_whole_file(path, &n);
    free(path);
    static const char *odd[] = {
        " ", "  ", "a  b", "\tx\t", "caf\xc3\xa9 na\xc3\xafve", "\xe6\x97\xa5\xe6\x9c\xac", "\xf0\x9f\x91\x8d!",
        "\x80\x80\x80\x80\x80\x80", "x\xe6\x97", "\xff\xfe", "\xc3", "Lily's dog, \"Max\", ran.", "\n<s>\n",
    };
    int lines = 0, bad = 0, *want = xmalloc((n + 2) * sizeof *want);
    size_t bytes = 0;
    char *line = text;
    for (int i = 0; line < text + n || i < (int)(sizeof odd / sizeof *odd); i++) {
        char *s;
        if (i < (int)(sizeof odd / sizeof *odd)) {
            s = xstrdup(odd[i]);
        } else {
            char *end = memchr(line, '\n', (size_t)(text + n - line));
            size_t len = end ? (size_t)(end - line) : (size_t)(text + n - line);
            s = xmalloc(len + 1);
            memcpy(s, line, len);
            s[len] = 0;
            line += len + 1;
            if (bytes > 120000) { // the O(n^2) reference is slow: enough lines
                free(s);
                continue;
            }
        }
        int k = ref_encode(&v, s, want);
        int *ids;
        size_t m = tokenizer_encode(t, s, strlen(s), false, &ids);
        if (!ids_equal(ids, m, want, (size_t)k)) {
            if (bad++ < 3)
                fprintf(stderr, "    differs from llama2.c on '%s'\n", s);
        }
        bytes += strlen(s);
        lines++;
        free(ids);
        free(s);
    }
    // random strings of spaces, letters, multi-byte characters and stray bytes
    static const char *const atoms[] = { " ", "  ", "a", "e", "t", "he", "the", "Lily", ".", "\n", "\t",
                                         "\xc3\xa9", "\xe6\x97\xa5", "\xf0\x9f\x91\x8d", "\x80", "\xc3",
                                         "\xe6\x97", "\xff", "<0x41>", "\n<s>\n", "\x01" };
    uint32_t rng = 42;
    char s[256];
    for (int i = 0; i < 3000; i++) {
        size_t len = 0;
        rng = rng * 1664525u + 1013904223u;
        for (int k = (int)(rng >> 24) % 24; k > 0; k--) {
            rng = rng * 1664525u + 1013904223u;
            const char *atom = atoms[(rng >> 16) % (sizeof atoms / sizeof *atoms)];
            memcpy(s + len, atom, strlen(atom));
            len += strlen(atom);
        }
        s[len] = 0;
        int k = ref_encode(&v, s, want);
        int *ids;
        size_t m = tokenizer_encode(t, s, len, false, &ids);
        if (!ids_equal(ids, m, want, (size_t)k) && bad++ < 3)
            fprintf(stderr, "    differs from llama2.c on random '%s'\n", s);
        free(ids);
        lines++;
    }
    fprintf(stderr, "    %d texts (%zu bytes of TinyStories) as llama2.c encodes them\n", lines, bytes);
    CHECK(lines > 4000);
    CHECK(bad == 0);
    free(want);
    free(text);
    for (int i = 0; i < v.n; i++)
        free(v.str[i]);
    free(v.str);
    free(v.score);
    free(v.sorted);
    tokenizer_free(t);
}

/* ASCII stories decode back to themselves through tok512's pieces. */
static void test_tok512_roundtrip(void)
{
    tokenizer *t = tok512();
    const char *s = "One day, a little girl named Lily found a needle in her room.\nShe knew it was difficult!";
    int *ids;
    size_t k = tokenizer_encode(t, s, strlen(s), false, &ids), n;
    char *back = decode(t, ids, k, &n);
    CHECK(n == strlen(s) + 1 && back[0] == ' ' && memcmp(back + 1, s, n - 1) == 0);
    free(back);
    free(ids);
    tokenizer_free(t);
}

/* ---- errors ---- */

static void load_path(void *path)
{
    tokenizer_load_file(path);
}

typedef struct {
    const char *format;
    const uint8_t *data;
    size_t n;
} blob_arg;

static void load_blob(void *arg)
{
    const blob_arg *b = arg;
    tokenizer_load_blob(b->format, b->data, b->n, "checkpoint.pare");
}

static char *temp_file(const void *data, size_t n)
{
    char *path = xstrdup("/tmp/pare-test-tokenizer-XXXXXX");
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    CHECK(write(fd, data, n) == (ssize_t)n);
    close(fd);
    return path;
}

static void test_errors(void)
{
    set_progname("test_tokenizer");
    char *garbage = temp_file("hello, world\n", 13);
    CHECK(dies_with(load_path, garbage, garbage, "not a tokenizer"));
    CHECK(dies_with(load_path, "/nonexistent/tokenizer.model", "/nonexistent/tokenizer.model", NULL));

    // truncated files
    char *path = data_path("tokenizers/llama2/tokenizer.model");
    size_t n;
    char *bytes = read_whole_file(path, &n);
    char *cut = temp_file(bytes, n - 100);
    CHECK(dies_with(load_path, cut, cut, "not a tokenizer"));
    free(bytes);
    free(path);
    path = data_path("models/stories260K/tok512.bin");
    bytes = read_whole_file(path, &n);
    char *cut2 = temp_file(bytes, n - 3);
    CHECK(dies_with(load_path, cut2, cut2, "not a tokenizer"));
    blob_arg b = { "llama2c", (const uint8_t *)bytes, n - 3 };
    CHECK(dies_with(load_blob, &b, "checkpoint.pare", "not a tokenizer"));
    b = (blob_arg){ "gpt2", (const uint8_t *)bytes, n };
    CHECK(dies_with(load_blob, &b, "checkpoint.pare", "gpt2"));
    b = (blob_arg){ "sentencepiece", (const uint8_t *)bytes, n };
    CHECK(dies_with(load_blob, &b, "checkpoint.pare", "not a tokenizer"));
    free(bytes);
    free(path);

    // a word model, a model without <unk>, a byte piece without byte_fallback,
    // ChatGLM-6B's mode on a model without its special pieces
    proto p = { .n = 0 };
    put_piece(&p, "<unk>", 0, 2);
    put_piece(&p, "a", -1, 1);
    put_specs(&p, 3, false, -1, -1);
    b = (blob_arg){ "sentencepiece", p.b, p.n };
    CHECK(dies_with(load_blob, &b, "checkpoint.pare", "word"));
    p.n = 0;
    put_piece(&p, "<unk>", 0, 2);
    put_piece(&p, "[gMASK]", 0, 4);
    put_piece(&p, "a", -1, 1);
    put_specs(&p, 1, false, -1, -1);
    b = (blob_arg){ "chatglm", p.b, p.n };
    CHECK(dies_with(load_blob, &b, "checkpoint.pare", "not a ChatGLM tokenizer", "<sop>"));
    p.n = 0;
    put_piece(&p, "a", -1, 1);
    put_specs(&p, 2, false, -1, -1);
    b = (blob_arg){ "sentencepiece", p.b, p.n };
    CHECK(dies_with(load_blob, &b, "checkpoint.pare", "<unk>"));
    p.n = 0;
    put_piece(&p, "<unk>", 0, 2);
    put_piece(&p, "<0x41>", 0, 6);
    put_specs(&p, 2, false, -1, -1);
    b = (blob_arg){ "sentencepiece", p.b, p.n };
    CHECK(dies_with(load_blob, &b, "checkpoint.pare", "byte_fallback"));

    unlink(garbage);
    unlink(cut);
    unlink(cut2);
    free(garbage);
    free(cut);
    free(cut2);
}

int main(void)
{
    TEST(test_llama2_golden);
    TEST(test_llama2_pieces);
    TEST(test_llama2_roundtrip_wikitext);
    TEST(test_blob_and_sniff);
    TEST(test_hand_built_bpe);
    TEST(test_chatglm_text);
    TEST(test_chatglm_mode);
    TEST(test_chatglm2_mode);
    TEST(test_folders);
    TEST(test_tok512_hand);
    TEST(test_tok512_reference);
    TEST(test_tok512_roundtrip);
    TEST(test_errors);
    return check_report();
}
