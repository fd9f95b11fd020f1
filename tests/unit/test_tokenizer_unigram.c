/* test_tokenizer_unigram.c - the unigram segmentation (unigram.h) on small
 * hand-made vocabularies whose best paths are summed by hand in the comments.
 * (tests/tokenizer_oracle.py compares whole models with python3-sentencepiece.) */
#include "base/util.h"
#include "check.h"
#include "text/unigram.h"

#include <stdint.h>
#include <string.h>

#define W "\xe2\x96\x81" /* U+2581, 3 bytes */

enum { NORMAL = 1, UNKNOWN = 2, CONTROL = 3, USER = 4, UNUSED = 5 };

typedef struct {
    const char *piece;
    float score;
    int type;
} entry;

static unigram *build(const entry *e, int n)
{
    static char text[1024];
    static uint32_t off[64];
    static float score[64];
    static uint8_t type[64];
    off[0] = 0;
    for (int i = 0; i < n; i++) {
        size_t len = strlen(e[i].piece);
        memcpy(text + off[i], e[i].piece, len);
        off[i + 1] = off[i] + (uint32_t)len;
        score[i] = e[i].score;
        type[i] = (uint8_t)e[i].type;
    }
    return unigram_new(n, text, off, score, type, 0);
}

/* Whether s segments into exactly the ids want[0..n_want), each starting where
 * the previous one ends. */
static bool segments_to(const unigram *u, const char *s, const int *want, size_t n_want)
{
    size_t n = strlen(s);
    uint32_t start[64];
    int32_t id[64];
    size_t k = unigram_segment(u, s, n, start, id);
    bool ok = k == n_want && (k == 0 || start[0] == 0);
    for (size_t i = 0; ok && i < k; i++)
        ok = id[i] == want[i] && (i == 0 || start[i] > start[i - 1]);
    if (!ok) {
        fprintf(stderr, "    '%s' ->", s);
        for (size_t i = 0; i < k; i++)
            fprintf(stderr, " %d@%u", id[i], start[i]);
        fprintf(stderr, "\n");
    }
    return ok;
}

static void test_best_path(void)
{
    entry e[] = {
        { "<unk>", 0, UNKNOWN }, { "<s>", 0, CONTROL }, { "</s>", 0, CONTROL },
        { W, -2, NORMAL }, // 3
        { "a", -3, NORMAL }, // 4
        { "b", -3, NORMAL }, // 5
        { W "a", -4, NORMAL }, // 6
        { "ab", -2.5f, NORMAL }, // 7
        { W "ab", -7, NORMAL }, // 8
        { "c", -1, NORMAL }, // 9
    };
    unigram *u = build(e, 10);
    // ▁ab: ▁ a b -8, ▁a b -7, ▁ ab -4.5, ▁ab -7: ▁ ab
    CHECK(segments_to(u, W "ab", (const int[]){ 3, 7 }, 2));
    CHECK(segments_to(u, "", NULL, 0));
    CHECK(segments_to(u, "c", (const int[]){ 9 }, 1));
    // abab: ab ab -5 beats a b a b -12 (there is no "ba")
    CHECK(segments_to(u, "abab", (const int[]){ 7, 7 }, 2));
    unigram_free(u);

    e[8].score = -4.4f; // ▁ab -4.4 now beats ▁ ab -4.5
    u = build(e, 10);
    CHECK(segments_to(u, W "ab", (const int[]){ 8 }, 1));
    unigram_free(u);

    // a tie: ▁a b = -4 - 3 = -7 and ▁ ab = -2 - 5 = -7; the path whose last
    // piece starts leftmost ("ab" at byte 3, before "b" at byte 4) wins
    e[7].score = -5;
    e[8].score = -9;
    u = build(e, 10);
    CHECK(segments_to(u, W "ab", (const int[]){ 3, 7 }, 2));
    unigram_free(u);
    e[7].score = -5.0001f; // no longer a tie
    u = build(e, 10);
    CHECK(segments_to(u, W "ab", (const int[]){ 6, 5 }, 2));
    unigram_free(u);
}

static void test_unknown(void)
{
    entry e[] = {
        { "<unk>", 0, UNKNOWN }, // 0
        { "a", -1, NORMAL }, // 1
        { "xa", -3, NORMAL }, // 2
        { "y", -2, UNUSED }, // 3: never used, so y is unknown
        { "ay", -8, NORMAL }, // 4
    };
    unigram *u = build(e, 5);
    // min_score -8 (NORMAL only), so an unknown character scores -18
    // "ax": a, then x starts no one-character piece: <unk> (x alone, one per character)
    CHECK(segments_to(u, "ax", (const int[]){ 1, 0 }, 2));
    CHECK(segments_to(u, "x\xe6\x97\xa5", (const int[]){ 0, 0 }, 2)); // x 日: one <unk> each
    // "xa": the piece xa (-3) beats <unk> a (-19)
    CHECK(segments_to(u, "xa", (const int[]){ 2 }, 1));
    // "ay": a <unk>(y) = -1 - 18 = -19 loses to ay -8; UNUSED y is not a path
    CHECK(segments_to(u, "ay", (const int[]){ 4 }, 1));
    CHECK(segments_to(u, "y", (const int[]){ 0 }, 1));
    unigram_free(u);
    e[4].score = -30; // min_score -30 too: <unk> -40, so ay -30 beats a <unk> -41
    u = build(e, 5);
    CHECK(segments_to(u, "ay", (const int[]){ 4 }, 1));
    unigram_free(u);
    e[4].score = -20; // min_score -20: <unk> -30; a <unk> -31 vs ay -20
    u = build(e, 5);
    CHECK(segments_to(u, "ay", (const int[]){ 4 }, 1));
    unigram_free(u);
    e[1].score = 5; // a scores above ay by more than the penalty: a <unk> = 5 - 30 = -25 < -20 still
    u = build(e, 5);
    CHECK(segments_to(u, "ay", (const int[]){ 4 }, 1));
    unigram_free(u);
    e[1].score = 15; // 15 - 30 = -15 > -20: a <unk> (with a penalty other than 10, 5 would do too)
    u = build(e, 5);
    CHECK(segments_to(u, "ay", (const int[]){ 1, 0 }, 2));
    unigram_free(u);
}

static void test_user_defined(void)
{
    entry e[] = {
        { "<unk>", 0, UNKNOWN }, // 0
        { W, -2, NORMAL }, // 1
        { "b", -3, NORMAL }, // 2
        { "c", -3, NORMAL }, // 3
        { "bc", 0, USER }, // 4: scores 2 * max_score - 0.1
        { W "bc", -2.05f, NORMAL }, // 5
        { "bcd", -50, NORMAL }, // 6
        { "d", -1, NORMAL }, // 7
    };
    unigram *u = build(e, 8);
    // every NORMAL score is negative: max_score stays FLT_MIN, so bc scores -0.1
    // ▁bc -2.05 beats ▁ bc -2.1 (a user-defined piece can lose)
    CHECK(segments_to(u, W "bc", (const int[]){ 5 }, 1));
    // bc -0.1 beats b c -6
    CHECK(segments_to(u, "bc", (const int[]){ 4 }, 1));
    CHECK(segments_to(u, "bcd", (const int[]){ 4, 7 }, 2)); // -1.1 beats bcd -50
    unigram_free(u);
    e[7].score = 1; // max_score 1: bc scores 1.9; ▁ bc -0.1 beats ▁bc -2.05
    u = build(e, 8);
    CHECK(segments_to(u, W "bc", (const int[]){ 1, 4 }, 2));
    unigram_free(u);
}

int main(void)
{
    TEST(test_best_path);
    TEST(test_unknown);
    TEST(test_user_defined);
    return check_report();
}
