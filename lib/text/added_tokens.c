/* added_tokens.c - finding added tokens in a text (added_tokens.h). */
#include "text/added_tokens.h"

#include "base/util.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

struct added_set {
    added_token *tok; // (n) sorted by first byte, then longest first
    int n;
    int first[257]; // tokens with first byte b are tok[first[b] .. first[b + 1])
    pcre2_code *word; // one word character (Rust regex's \w); NULL when no token is single_word
};

static int by_first_byte(const void *a, const void *b)
{
    const added_token *x = a, *y = b;
    int bx = (unsigned char)x->content[0], by = (unsigned char)y->content[0];
    if (bx != by)
        return bx - by;
    if (x->len != y->len)
        return x->len > y->len ? -1 : 1;
    return x->id - y->id;
}

added_set *added_set_new(const added_token *tokens, int n)
{
    added_set *a = xcalloc(1, sizeof *a);
    a->tok = xmalloc((size_t)(n ? n : 1) * sizeof *a->tok);
    bool single = false;
    for (int i = 0; i < n; i++) {
        if (!tokens[i].len)
            continue;
        bool seen = false; // the first of equal contents wins: the later ones get its id in the library
        for (int j = 0; j < a->n && !seen; j++)
            seen = a->tok[j].len == tokens[i].len && !memcmp(a->tok[j].content, tokens[i].content, tokens[i].len);
        if (seen)
            continue;
        a->tok[a->n++] = tokens[i];
        single |= tokens[i].single_word;
    }
    qsort(a->tok, (size_t)a->n, sizeof *a->tok, by_first_byte);
    for (int b = 0, i = 0; b <= 256; b++) {
        while (i < a->n && (unsigned char)a->tok[i].content[0] < b)
            i++;
        a->first[b] = i;
    }
    if (single) {
        int code;
        PCRE2_SIZE at;
        const char *w = "[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}]";
        a->word = pcre2_compile((PCRE2_SPTR)w, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &code, &at, NULL);
        if (!a->word)
            die("added_set_new: PCRE2 cannot compile the word class (error %d)", code);
    }
    return a;
}

void added_set_free(added_set *a)
{
    if (!a)
        return;
    pcre2_code_free(a->word);
    free(a->tok);
    free(a);
}

int added_set_count(const added_set *a)
{
    return a->n;
}

/* Whether the character at s[i] (i < n, a character's first byte) is a word character. */
static bool is_word_at(const added_set *a, const char *s, size_t n, size_t i)
{
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    if (!md)
        die("out of memory");
    int r = pcre2_match(a->word, (PCRE2_SPTR)s, n, i, PCRE2_ANCHORED | PCRE2_NO_UTF_CHECK, md, NULL);
    pcre2_match_data_free(md);
    return r > 0;
}

/* The code point at s[i] and its length (s is well-formed). */
static unsigned code_point(const char *str, size_t i, size_t *len)
{
    const unsigned char *s = (const unsigned char *)str + i;
    if (s[0] < 0x80) {
        *len = 1;
        return s[0];
    }
    if (s[0] < 0xE0) {
        *len = 2;
        return (s[0] & 0x1Fu) << 6 | (s[1] & 0x3Fu);
    }
    if (s[0] < 0xF0) {
        *len = 3;
        return (s[0] & 0x0Fu) << 12 | (s[1] & 0x3Fu) << 6 | (s[2] & 0x3Fu);
    }
    *len = 4;
    return (s[0] & 0x07u) << 18 | (s[1] & 0x3Fu) << 12 | (s[2] & 0x3Fu) << 6 | (s[3] & 0x3Fu);
}

/* Unicode's White_Space property (Rust regex's \s). */
static bool is_white_space(unsigned c)
{
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

static size_t char_start_before(const char *s, size_t i) // the first byte of the character ending at i
{
    do
        i--;
    while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80);
    return i;
}

static void push(added_piece **out, size_t *n_out, size_t *cap, size_t start, size_t end, int id)
{
    GROW(*out, *cap, *n_out + 1, 64);
    (*out)[(*n_out)++] = (added_piece){start, end, id};
}

void added_set_find(const added_set *a, const char *s, size_t n, size_t offset, added_piece **out, size_t *n_out,
                    size_t *cap)
{
    size_t done = 0; // the end of the last piece
    for (size_t i = 0; i < n;) {
        unsigned b = (unsigned char)s[i];
        const added_token *t = NULL;
        for (int k = a->first[b]; k < a->first[b + 1] && !t; k++) // longest first
            if (a->tok[k].len <= n - i && !memcmp(s + i, a->tok[k].content, a->tok[k].len))
                t = &a->tok[k];
        if (!t) {
            i++;
            continue;
        }
        size_t start = i, stop = i + t->len;
        i = stop; // the search goes on after this match, kept or not
        if (t->single_word) {
            bool word_before = start > 0 && is_word_at(a, s, n, char_start_before(s, start));
            bool word_after = stop < n && is_word_at(a, s, n, stop);
            if (word_before || word_after)
                continue;
        }
        if (t->lstrip) {
            size_t j = start, len;
            while (j > done) {
                size_t c = char_start_before(s, j);
                if (!is_white_space(code_point(s, c, &len)))
                    break;
                j = c;
            }
            start = j;
        }
        if (t->rstrip) {
            size_t len;
            while (stop < n && is_white_space(code_point(s, stop, &len)))
                stop += len;
            i = stop;
        }
        if (done < start)
            push(out, n_out, cap, done + offset, start + offset, -1);
        push(out, n_out, cap, start + offset, stop + offset, t->id);
        done = stop;
    }
    if (done < n || n == 0)
        push(out, n_out, cap, done + offset, n + offset, -1);
}
