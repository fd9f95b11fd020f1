/* test_rank_bpe.c - lib/text/rank_bpe and byte_level: the byte-level alphabet against
 * GPT-2's bytes_to_unicode written out here; merges by rank on small hand-worked
 * vocabularies; and the heap against the plain quadratic reading of BPE (find
 * the lowest-ranked adjacent pair, merge every occurrence left to right, again)
 * on random words over random merge tables, with and without the cache. */
#include "base/rng.h"
#include "base/util.h"
#include "check.h"
#include "text/rank_bpe.h"
#include "text/byte_level.h"

/* GPT-2's encoder.py bytes_to_unicode(): printable Latin-1 bytes keep their
 * code point, the others get 256, 257, ... in byte order. */
static void test_alphabet(void)
{
    unsigned cs[256];
    int n = 0;
    bool printable[256] = {0};
    for (unsigned b = '!'; b <= '~'; b++)
        printable[b] = true;
    for (unsigned b = 0xA1; b <= 0xAC; b++)
        printable[b] = true;
    for (unsigned b = 0xAE; b <= 0xFF; b++)
        printable[b] = true;
    for (unsigned b = 0; b < 256; b++)
        cs[b] = printable[b] ? b : 256 + (unsigned)n++;
    int wrong = 0;
    for (unsigned b = 0; b < 256; b++) {
        wrong += byte_level_char((uint8_t)b) != cs[b];
        wrong += byte_level_byte(cs[b]) != (int)b;
    }
    CHECK(wrong == 0);
    CHECK(n == 68);
    CHECK(byte_level_char(' ') == 0x120);  /* Ġ */
    CHECK(byte_level_char('\n') == 0x10A); /* Ċ */
    CHECK(byte_level_byte(0x20) == -1 && byte_level_byte(0x144) == -1 && byte_level_byte(0x4E00) == -1);

    // encode and decode every byte, both ways
    uint8_t all[256], back[512];
    for (int b = 0; b < 256; b++)
        all[b] = (uint8_t)b;
    char text[512];
    size_t tn = byte_level_encode(all, 256, text), bn;
    CHECK(byte_level_decode(text, tn, back, &bn) && bn == 256 && !memcmp(back, all, 256));
    CHECK(byte_level_decode("\xC4\xA0the", 5, back, &bn) && bn == 4 && !memcmp(back, " the", 4));
    CHECK(!byte_level_decode("a b", 3, back, &bn));            /* a space is not in the alphabet */
    CHECK(!byte_level_decode("\xE4\xB8\x80", 3, back, &bn));   /* nor is CJK */
    CHECK(!byte_level_decode("\xC4", 1, back, &bn));           /* nor a cut character */
}

static rank_bpe *make(const char *const *tokens, int n_tokens, const char *const *merges, int n_merges)
{
    rank_bpe *b = rank_bpe_new();
    for (int i = 0; i < n_tokens; i++)
        rank_bpe_add_token(b, i, (const uint8_t *)tokens[i], strlen(tokens[i]));
    for (int i = 0; i < n_merges; i++) {
        const char *sp = strchr(merges[i], ' ');
        int r = rank_bpe_add_merge(b, (const uint8_t *)merges[i], (size_t)(sp - merges[i]), (const uint8_t *)sp + 1,
                              strlen(sp + 1));
        CHECK(r == RANK_BPE_OK);
    }
    return b;
}

/* The ids of word w, as a space-separated string. */
static char *enc(const rank_bpe *b, const char *w)
{
    rank_bpe_pass *p = rank_bpe_pass_new();
    int *ids = NULL;
    size_t n = 0, cap = 0;
    rank_bpe_encode_word(b, p, (const uint8_t *)w, strlen(w), &ids, &n, &cap);
    rank_bpe_pass_free(p);
    bytes out = {0};
    for (size_t i = 0; i < n; i++) {
        char num[16];
        snprintf(num, sizeof num, i ? " %d" : "%d", ids[i]);
        bytes_put(&out, num, strlen(num));
    }
    bytes_put(&out, "", 1);
    free(ids);
    return (char *)out.p;
}

#define CHECK_ENC(b, w, want)                                                                                \
    do {                                                                                                     \
        char *got_ = enc(b, w);                                                                              \
        CHECK(!strcmp(got_, want));                                                                          \
        if (strcmp(got_, want))                                                                              \
            fprintf(stderr, "    %s -> %s, want %s\n", w, got_, want);                                        \
        free(got_);                                                                                          \
    } while (0)

static void test_ranks(void)
{
    //                            0    1    2    3     4     5      6     7
    const char *const tok[] = {"a", "b", "c", "ab", "bc", "abc", "aa", "aaa"};
    const char *const m1[] = {"b c", "a b", "a bc"}; // "bc" first: abc = a + bc
    rank_bpe *b = make(tok, 8, m1, 3);
    CHECK_ENC(b, "abc", "5");
    CHECK_ENC(b, "ab", "3");
    CHECK_ENC(b, "cab", "2 3");
    CHECK_ENC(b, "abcabc", "5 5");
    CHECK(rank_bpe_token_id(b, (const uint8_t *)"bc", 2) == 4 && rank_bpe_token_id(b, (const uint8_t *)"ca", 2) == -1);
    rank_bpe_free(b);

    const char *const m2[] = {"a b", "b c", "ab c"}; // "ab" first: abc = ab + c
    b = make(tok, 8, m2, 3);
    CHECK_ENC(b, "abc", "5");
    CHECK_ENC(b, "bca", "4 0");
    rank_bpe_free(b);

    const char *const m3[] = {"a b", "b c"}; // no way to abc: the ab merge wins, c stays
    b = make(tok, 8, m3, 2);
    CHECK_ENC(b, "abc", "3 2");
    rank_bpe_free(b);

    // equal ranks go leftmost first: "aaa" with only "a a" -> aa a
    const char *const m4[] = {"a a", "aa a"};
    b = make(tok, 8, m4, 1);
    CHECK_ENC(b, "aaa", "6 0");
    CHECK_ENC(b, "aaaa", "6 6");
    rank_bpe_free(b);
    b = make(tok, 8, m4, 2);
    CHECK_ENC(b, "aaa", "7");
    CHECK_ENC(b, "aaaaa", "6 7"); // a a a a a -> aa aa a (rank 0 twice, leftmost first) -> aa aaa
    rank_bpe_free(b);

    // a pair added twice keeps its later rank
    const char *const m5[] = {"a b", "b c", "a b"};
    b = make(tok, 8, m5, 3);
    CHECK_ENC(b, "abc", "0 4");
    CHECK(rank_bpe_merge_count(b) == 3);
    rank_bpe_free(b);

    // merges that name missing tokens
    b = make(tok, 8, m1, 0);
    CHECK(rank_bpe_add_merge(b, (const uint8_t *)"x", 1, (const uint8_t *)"a", 1) == RANK_BPE_NO_LEFT);
    CHECK(rank_bpe_add_merge(b, (const uint8_t *)"a", 1, (const uint8_t *)"x", 1) == RANK_BPE_NO_RIGHT);
    CHECK(rank_bpe_add_merge(b, (const uint8_t *)"c", 1, (const uint8_t *)"a", 1) == RANK_BPE_NO_RESULT);
    rank_bpe_free(b);
}

static void test_options(void)
{
    const char *const tok[] = {"a", "b", "ab", "?", "ba"};
    const char *const m[] = {"a b"};
    rank_bpe *b = make(tok, 5, m, 1);
    CHECK_ENC(b, "XY", "");            /* a word of such bytes alone is no ids (a fresh pass's first word: fuzz_hf_tokenizer) */
    CHECK_ENC(b, "aXb", "2");          /* no token for X and no unknown token: dropped, a and b meet */
    CHECK_ENC(b, "ba", "1 0");          /* "ba" is a token, but no merge makes it */
    rank_bpe_set_ignore_merges(b, true);
    CHECK_ENC(b, "ba", "4");            /* ... unless the word itself is taken whole */
    CHECK_ENC(b, "bab", "1 2");
    rank_bpe_set_unknown(b, 3, false);
    CHECK_ENC(b, "aXYb", "0 3 3 1");
    rank_bpe_set_unknown(b, 3, true);
    CHECK_ENC(b, "aXYbZ", "0 3 1 3");
    rank_bpe_free(b);
}

/* The plain reading of BPE: tokens as strings, find the lowest-ranked pair,
 * merge every occurrence left to right, repeat. */
static int naive(char (*sym)[128], int n, char (*ml)[128], char (*mr)[128], int n_merges)
{
    for (;;) {
        int best = -1;
        for (int i = 0; i + 1 < n; i++)
            for (int r = 0; r < n_merges && (best < 0 || r < best); r++)
                if (!strcmp(sym[i], ml[r]) && !strcmp(sym[i + 1], mr[r]))
                    best = r;
        if (best < 0)
            return n;
        int k = 0;
        for (int i = 0; i < n; i++) {
            if (i + 1 < n && !strcmp(sym[i], ml[best]) && !strcmp(sym[i + 1], mr[best])) {
                char t[256];
                snprintf(t, sizeof t, "%s%s", sym[i], sym[i + 1]);
                snprintf(sym[k++], sizeof sym[0], "%.120s", t);
                i++;
            } else if (k != i) {
                memmove(sym[k++], sym[i], sizeof sym[0]);
            } else {
                k++;
            }
        }
        n = k;
    }
}

/* Random merge tables over "abcd" in which each token is made by one merge only
 * (so that no queued pair can go stale yet still make the same token), random
 * words, heap against the plain reading. */
static void test_against_plain(void)
{
    uint64_t seed = 7;
    int wrong = 0, words = 0;
    for (int trial = 0; trial < 40; trial++) {
        char tok[200][128], ml[200][128], mr[200][128];
        int nt = 4, nm = 0;
        for (int i = 0; i < 4; i++)
            snprintf(tok[i], sizeof tok[i], "%c", 'a' + i);
        while (nm < 60) {
            int l = (int)(rng_next(&seed) % (uint64_t)nt), r = (int)(rng_next(&seed) % (uint64_t)nt);
            if (strlen(tok[l]) + strlen(tok[r]) >= 40)
                continue;
            char joined[256];
            snprintf(joined, sizeof joined, "%s%s", tok[l], tok[r]);
            bool exists = false;
            for (int i = 0; i < nt && !exists; i++)
                exists = !strcmp(tok[i], joined);
            if (exists)
                continue;
            snprintf(tok[nt++], sizeof tok[0], "%.120s", joined);
            strcpy(ml[nm], tok[l]);
            strcpy(mr[nm++], tok[r]);
        }
        rank_bpe *b = rank_bpe_new();
        for (int i = 0; i < nt; i++)
            rank_bpe_add_token(b, i, (const uint8_t *)tok[i], strlen(tok[i]));
        for (int i = 0; i < nm; i++)
            CHECK(rank_bpe_add_merge(b, (const uint8_t *)ml[i], strlen(ml[i]), (const uint8_t *)mr[i], strlen(mr[i])) ==
                  RANK_BPE_OK);
        rank_bpe_pass *pass = rank_bpe_pass_new(); // one pass for all words: the cache is exercised
        for (int w = 0; w < 200; w++) {
            char word[48], sym[48][128];
            int len = 1 + (int)(rng_next(&seed) % 30);
            if (w % 4 == 3)
                len = 2; // repeats, from the cache
            for (int i = 0; i < len; i++) {
                word[i] = (char)('a' + rng_next(&seed) % 4);
                snprintf(sym[i], sizeof sym[i], "%c", word[i]);
            }
            int n = naive(sym, len, ml, mr, nm);
            int *ids = NULL;
            size_t k = 0, cap = 0;
            for (int rep = 0; rep < 2; rep++) {
                k = 0;
                rank_bpe_encode_word(b, pass, (const uint8_t *)word, (size_t)len, &ids, &k, &cap);
                bool same = (int)k == n;
                for (int i = 0; same && i < n; i++)
                    same = !strcmp(tok[ids[i]], sym[i]);
                wrong += !same;
            }
            free(ids);
            words++;
        }
        rank_bpe_pass_free(pass);
        rank_bpe_free(b);
    }
    CHECK(wrong == 0);
    CHECK(words == 8000);
}

int main(void)
{
    TEST(test_alphabet);
    TEST(test_ranks);
    TEST(test_options);
    TEST(test_against_plain);
    return check_report();
}
