/* chatglm_text.c - ChatGLM-6B's substitutions (chatglm_text.h). */
#include "base/util.h"
#include "text/chatglm_text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest substitution: "<|blank_80|>" (12 bytes) stands for 80 spaces. */
char *chatglm_escape(const char *s, size_t n, size_t *out_n)
{
    char *out = xmalloc(7 * n + 1); // "\t" -> "<|tab|>" is the largest growth
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        if (s[i] == '\n') {
            memcpy(out + o, "<n>", 3);
            o += 3;
            i++;
        } else if (s[i] == '\t') {
            memcpy(out + o, "<|tab|>", 7);
            o += 7;
            i++;
        } else if (s[i] == ' ') {
            size_t run = 0;
            while (i + run < n && s[i + run] == ' ')
                run++;
            i += run;
            for (; run >= 2; run -= run > CHATGLM_MAX_BLANK ? CHATGLM_MAX_BLANK : run)
                o += (size_t)sprintf(out + o, "<|blank_%d|>", (int)(run > CHATGLM_MAX_BLANK ? CHATGLM_MAX_BLANK : run));
            if (run == 1)
                out[o++] = ' ';
        } else {
            out[o++] = s[i++];
        }
    }
    out[o] = 0;
    *out_n = o;
    return out;
}

/* s with every `from` replaced by `to`, left to right (Python's str.replace); frees s. */
static char *replace_all(char *s, size_t *n, const char *from, const char *to)
{
    size_t fl = strlen(from), tl = strlen(to), hits = 0;
    for (size_t i = 0; i + fl <= *n; i += memcmp(s + i, from, fl) == 0 ? (hits++, fl) : 1)
        ;
    if (hits == 0)
        return s;
    char *out = xmalloc(*n - hits * fl + hits * tl + 1);
    size_t o = 0;
    for (size_t i = 0; i < *n;) {
        if (*n - i >= fl && memcmp(s + i, from, fl) == 0) {
            memcpy(out + o, to, tl);
            o += tl;
            i += fl;
        } else {
            out[o++] = s[i++];
        }
    }
    out[o] = 0;
    free(s);
    *n = o;
    return out;
}

char *chatglm_unescape(const char *s, size_t n, size_t *out_n)
{
    char *out = xmalloc(n + 1);
    memcpy(out, s, n);
    out[n] = 0;
    out = replace_all(out, &n, "<n>", "\n");
    out = replace_all(out, &n, "<|tab|>", "\t");
    char blank[32], spaces[CHATGLM_MAX_BLANK + 1];
    memset(spaces, ' ', sizeof spaces - 1);
    for (int k = 2; k <= CHATGLM_MAX_BLANK; k++) {
        if (!memchr(out, '<', n))
            break;
        snprintf(blank, sizeof blank, "<|blank_%d|>", k);
        spaces[k] = 0;
        out = replace_all(out, &n, blank, spaces);
        spaces[k] = ' ';
    }
    *out_n = n;
    return out;
}
