/* test_split.c - lib/text/split and added_tokens: the Split pre-tokenizer's
 * behaviors on the cases of the tokenizers library's own tests
 * (normalizer.rs, split.rs); Llama 3's and Qwen2's regexes on texts whose
 * pieces are worked out by hand from the regex; \s as Oniguruma reads it;
 * added tokens with their flags on the library's added_vocabulary.rs cases. */
#include "base/util.h"
#include "check.h"
#include "text/added_tokens.h"
#include "text/split.h"

static const char LLAMA3[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+"
                             "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char QWEN2[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+"
                            "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* The pieces of text, joined with '|'. */
static char *pieces(const char *pattern, bool literal, enum split_behavior b, bool invert, const char *text)
{
    char err[256];
    split *sp = split_new(pattern, strlen(pattern), literal, b, invert, err, sizeof err);
    CHECK(sp != NULL);
    if (!sp)
        return xstrdup("(no regex)");
    span *out = NULL;
    size_t n = 0, cap = 0;
    CHECK(split_run(sp, text, strlen(text), 0, &out, &n, &cap, err, sizeof err) == 0);
    bytes o = {0};
    for (size_t i = 0; i < n; i++) {
        if (i)
            bytes_put(&o, "|", 1);
        bytes_put(&o, text + out[i].start, out[i].end - out[i].start);
    }
    bytes_put(&o, "", 1);
    free(out);
    split_free(sp);
    return (char *)o.p;
}

#define CHECK_PIECES(pattern, literal, behavior, invert, text, want)                                         \
    do {                                                                                                     \
        char *got_ = pieces(pattern, literal, behavior, invert, text);                                       \
        CHECK(!strcmp(got_, want));                                                                          \
        if (strcmp(got_, want))                                                                              \
            fprintf(stderr, "    '%s' -> '%s', want '%s'\n", text, got_, want);                              \
        free(got_);                                                                                          \
    } while (0)

static void test_behaviors(void)
{
    // normalizer.rs split tests: "The-final--countdown" split on '-'
    const char *t = "The-final--countdown";
    CHECK_PIECES("-", true, SPLIT_REMOVED, false, t, "The|final|countdown");
    CHECK_PIECES("-", true, SPLIT_ISOLATED, false, t, "The|-|final|-|-|countdown");
    CHECK_PIECES("-", true, SPLIT_MERGED_WITH_PREVIOUS, false, t, "The-|final-|-|countdown");
    CHECK_PIECES("-", true, SPLIT_MERGED_WITH_NEXT, false, t, "The|-final|-|-countdown");
    CHECK_PIECES("-", true, SPLIT_CONTIGUOUS, false, t, "The|-|final|--|countdown");
    // split.rs: invert keeps the words and removes what is between
    CHECK_PIECES("\\w+", false, SPLIT_REMOVED, true, "Hey friend!     How are you?!?", "Hey|friend|How|are|you");
    CHECK_PIECES("\\s+", false, SPLIT_REMOVED, false, "Hey friend!     How are you?!?", "Hey|friend!|How|are|you?!?");
    CHECK_PIECES(".", true, SPLIT_ISOLATED, false, "a.b", "a|.|b"); // literal: '.' is a dot
    CHECK_PIECES("x", true, SPLIT_ISOLATED, false, "", "");
    // an empty match right after a match is skipped by one character
    CHECK_PIECES("a*", false, SPLIT_ISOLATED, false, "baab", "b|aa|b");
    char err[256];
    CHECK(split_new("(unclosed", 9, false, SPLIT_ISOLATED, false, err, sizeof err) == NULL && strstr(err, "offset"));
}

static void test_llama3_regex(void)
{
    CHECK_PIECES(LLAMA3, false, SPLIT_ISOLATED, false, "Hello world, it's 12345 ok", "Hello| world|,| it|'s| |123|45| ok");
    // \s*[\r\n]+ takes the newlines; \s+(?!\S) leaves one space for the word after it
    CHECK_PIECES(LLAMA3, false, SPLIT_ISOLATED, false, "a\n\n  x  ", "a|\n\n| | x|  ");
    CHECK_PIECES(LLAMA3, false, SPLIT_ISOLATED, false, "a.\r\nb", "a|.\r\n|b");
    CHECK_PIECES(LLAMA3, false, SPLIT_ISOLATED, false, "WE'RE I'D", "WE|'RE| I|'D");
    CHECK_PIECES(QWEN2, false, SPLIT_ISOLATED, false, "Hello world, it's 12345 ok", "Hello| world|,| it|'s| |1|2|3|4|5| ok");
    // letters and numbers of any script: \p{L}, \p{N}
    CHECK_PIECES(LLAMA3, false, SPLIT_ISOLATED, false, "日本語 ٣٤٥٦ Ωμέγα", "日本語| |٣٤٥|٦| Ωμέγα");
    // (?i:'s) folds by Unicode's rules, as Oniguruma does: U+017F LONG S is an s
    CHECK_PIECES(LLAMA3, false, SPLIT_ISOLATED, false, "x'\xC5\xBF" "a", "x|'\xC5\xBF|a");
    // \s is White_Space, as Oniguruma reads it: U+0085 is a space, U+180E is not
    CHECK_PIECES(LLAMA3, false, SPLIT_ISOLATED, false, "a\xC2\x85\xC2\x85" "b", "a|\xC2\x85|\xC2\x85" "b");
    CHECK_PIECES("\\s+", false, SPLIT_REMOVED, false, "a\xE1\xA0\x8E" "b c", "a\xE1\xA0\x8E" "b|c");
    CHECK_PIECES("[^\\s]+", false, SPLIT_ISOLATED, false, "a\xE2\x80\x83" "b", "a|\xE2\x80\x83|b"); // EM SPACE
}

/* The pieces of text cut at the added tokens: "text" and "[id]", joined with '|'. */
static char *found(const added_token *t, int n, const char *text)
{
    added_set *a = added_set_new(t, n);
    added_piece *p = NULL;
    size_t np = 0, cap = 0;
    added_set_find(a, text, strlen(text), 0, &p, &np, &cap);
    bytes o = {0};
    for (size_t i = 0; i < np; i++) {
        char buf[32];
        if (i)
            bytes_put(&o, "|", 1);
        bytes_put(&o, text + p[i].start, p[i].end - p[i].start);
        if (p[i].id >= 0) {
            snprintf(buf, sizeof buf, "[%d]", p[i].id);
            bytes_put(&o, buf, strlen(buf));
        }
    }
    bytes_put(&o, "", 1);
    free(p);
    added_set_free(a);
    return (char *)o.p;
}

#define CHECK_FOUND(t, n, text, want)                                                                        \
    do {                                                                                                     \
        char *got_ = found(t, n, text);                                                                      \
        CHECK(!strcmp(got_, want));                                                                          \
        if (strcmp(got_, want))                                                                              \
            fprintf(stderr, "    '%s' -> '%s', want '%s'\n", text, got_, want);                              \
        free(got_);                                                                                          \
    } while (0)

static void test_added(void)
{
    added_token t[] = {
        {"[CLS]", 5, 2, false, false, false}, {"[SEP]", 5, 3, false, false, false},
        {"my", 2, 0, false, true, true},     {"name", 4, 1, false, false, false},
        {"ony", 3, 4, true, false, false},   {"[CLS]x", 6, 9, false, false, false},
    };
    // added_vocabulary.rs can_extract_added_tokens / options_use_cases, the text lower-cased
    CHECK_FOUND(t, 5, "[CLS] my name is anthony [SEP]", "[CLS][2]| my [0]|name[1]| is anthony |[SEP][3]");
    // leftmost, then longest
    CHECK_FOUND(t, 6, "[CLS]xy[CLS]", "[CLS]x[9]|y|[CLS][2]");
    CHECK_FOUND(t, 6, "", "");
    // test_single_word_is_correct / _is_unicode_correct
    added_token mask[] = {{"<mask>", 6, 0, true, false, false}};
    CHECK_FOUND(mask, 1, "<mask> my name <mask> a<mask> <mask>ony <mask>",
                "<mask>[0]| my name |<mask>[0]| a<mask> <mask>ony |<mask>[0]");
    CHECK_FOUND(mask, 1, "<mask>, <mask>- \xE2\x97\x8C\xCC\xB0<mask>", "<mask>[0]|, |<mask>[0]|- \xE2\x97\x8C\xCC\xB0<mask>");
    // test_lstrip_unicode_space: tab and U+2000 are white space
    added_token strip[] = {{"<mask>", 6, 0, true, true, true}};
    CHECK_FOUND(strip, 1, "Hi <mask> there\t<mask>\t<mask>\xE2\x80\x80",
                "Hi| <mask> [0]|there|\t<mask>\t[0]|<mask>\xE2\x80\x80[0]");
    // an empty content never matches; the first of two equal contents wins
    added_token odd[] = {{"", 0, 7, false, false, false}, {"ab", 2, 5, false, false, false}, {"ab", 2, 6, false, false, false}};
    CHECK_FOUND(odd, 3, "xaby", "x|ab[5]|y");
}

int main(void)
{
    TEST(test_behaviors);
    TEST(test_llama3_regex);
    TEST(test_added);
    return check_report();
}
