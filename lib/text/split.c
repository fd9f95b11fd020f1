/* split.c - the Split pre-tokenizer through PCRE2 (split.h). */
#include "text/split.h"

#include "base/util.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

const char *const split_behavior_names[5] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext",
                                             "Contiguous"};

struct split {
    pcre2_code *re;
    enum split_behavior behavior;
    bool invert;
};

/* The pattern with each \s and \S (outside \Q..\E, which these patterns do not
 * use) written as \p{White_Space} and \P{White_Space}. */
static char *oniguruma_spaces(const char *p, size_t n, size_t *out_n)
{
    char *o = xmalloc(n * 8 + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\\' && i + 1 < n) {
            if (p[i + 1] == 's' || p[i + 1] == 'S') {
                const char *w = p[i + 1] == 's' ? "\\p{White_Space}" : "\\P{White_Space}";
                memcpy(o + k, w, strlen(w));
                k += strlen(w);
            } else {
                o[k++] = p[i];
                o[k++] = p[i + 1];
            }
            i++;
        } else {
            o[k++] = p[i];
        }
    }
    o[k] = 0;
    *out_n = k;
    return o;
}

split *split_new(const char *p, size_t n, bool literal, enum split_behavior behavior, bool invert, char *err,
                 size_t err_size)
{
    size_t m = n;
    char *pattern = literal ? NULL : oniguruma_spaces(p, n, &m);
    int code;
    PCRE2_SIZE at;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)(literal ? p : pattern), m,
                                   PCRE2_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP), &code, &at, NULL);
    free(pattern);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        snprintf(err, err_size, "%s (at offset %zu)", (const char *)msg, (size_t)at);
        return NULL;
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); // without a JIT, pcre2_match interprets
    split *sp = xcalloc(1, sizeof *sp);
    sp->re = re;
    sp->behavior = behavior;
    sp->invert = invert;
    return sp;
}

void split_free(split *sp)
{
    if (!sp)
        return;
    pcre2_code_free(sp->re);
    free(sp);
}

/* A piece before behaviors: bytes [start, end), and whether it matched. */
typedef struct {
    size_t start, end;
    bool match;
} cut;

static void push_cut(cut **c, size_t *n, size_t *cap, size_t start, size_t end, bool match)
{
    GROW(*c, *cap, *n + 1, 64);
    (*c)[(*n)++] = (cut){start, end, match};
}

static void push_span(span **out, size_t *n_out, size_t *cap, size_t start, size_t end)
{
    GROW(*out, *cap, *n_out + 1, 256);
    (*out)[(*n_out)++] = (span){start, end};
}

static size_t next_char(const char *s, size_t n, size_t i)
{
    i++;
    while (i < n && ((unsigned char)s[i] & 0xC0) == 0x80)
        i++;
    return i;
}

int split_run(const split *sp, const char *s, size_t n, size_t offset, span **out, size_t *n_out, size_t *cap,
              char *err, size_t err_size)
{
    if (n == 0)
        return 0;
    // The matches and the text between them, covering s (pattern.rs find_matches).
    cut *c = NULL;
    size_t nc = 0, cc = 0, from = 0, prev = 0;
    long last_match_end = -1;
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    pcre2_match_context *mc = pcre2_match_context_create(NULL);
    pcre2_jit_stack *js = pcre2_jit_stack_create(32 * 1024, 16 * 1024 * 1024, NULL);
    if (!md || !mc || !js)
        die("out of memory");
    pcre2_jit_stack_assign(mc, NULL, js);
    int rc = 0;
    while (from <= n) {
        int r = pcre2_match(sp->re, (PCRE2_SPTR)s, n, from, PCRE2_NO_UTF_CHECK, md, mc);
        if (r == PCRE2_ERROR_NOMATCH)
            break;
        if (r < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(r, msg, sizeof msg);
            snprintf(err, err_size, "%s", (const char *)msg);
            rc = r;
            break;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t start = ov[0], end = ov[1];
        if (start == end && (long)end == last_match_end) {
            if (from >= n)
                break;
            from = next_char(s, n, from);
            continue;
        }
        if (prev != start)
            push_cut(&c, &nc, &cc, prev, start, false);
        push_cut(&c, &nc, &cc, start, end, true);
        prev = end;
        last_match_end = (long)end;
        from = end;
    }
    pcre2_jit_stack_free(js);
    pcre2_match_context_free(mc);
    pcre2_match_data_free(md);
    if (rc) {
        free(c);
        return rc;
    }
    if (prev != n)
        push_cut(&c, &nc, &cc, prev, n, false);
    if (sp->invert)
        for (size_t i = 0; i < nc; i++)
            c[i].match = !c[i].match;

    // The behavior (normalizer.rs NormalizedString::split).
    size_t first = *n_out;
    bool previous = false;
    switch (sp->behavior) {
    case SPLIT_REMOVED:
        for (size_t i = 0; i < nc; i++)
            if (!c[i].match)
                push_span(out, n_out, cap, c[i].start, c[i].end);
        break;
    case SPLIT_ISOLATED:
        for (size_t i = 0; i < nc; i++)
            push_span(out, n_out, cap, c[i].start, c[i].end);
        break;
    case SPLIT_CONTIGUOUS:
    case SPLIT_MERGED_WITH_PREVIOUS:
        for (size_t i = 0; i < nc; i++) {
            bool join = sp->behavior == SPLIT_CONTIGUOUS ? c[i].match == previous : c[i].match && !previous;
            if (join && *n_out > first)
                (*out)[*n_out - 1].end = c[i].end;
            else
                push_span(out, n_out, cap, c[i].start, c[i].end);
            previous = c[i].match;
        }
        break;
    case SPLIT_MERGED_WITH_NEXT:
        // right to left: a match joins the piece after it
        for (size_t i = nc; i-- > 0;) {
            bool join = c[i].match && !previous;
            if (join && *n_out > first)
                (*out)[*n_out - 1].start = c[i].start;
            else
                push_span(out, n_out, cap, c[i].start, c[i].end);
            previous = c[i].match;
        }
        for (size_t i = first, j = *n_out; i + 1 < j; i++, j--) {
            span t = (*out)[i];
            (*out)[i] = (*out)[j - 1];
            (*out)[j - 1] = t;
        }
        break;
    }
    // empty pieces (of empty matches) go only now, as the library drops them
    size_t k = first;
    for (size_t i = first; i < *n_out; i++)
        if ((*out)[i].start != (*out)[i].end)
            (*out)[k++] = (span){(*out)[i].start + offset, (*out)[i].end + offset};
    *n_out = k;
    free(c);
    return 0;
}
