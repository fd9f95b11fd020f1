/* tasks.c - zero-shot task files -> (context, continuation) requests, as the
 * lm-evaluation-harness at 4d21ab6b builds them (see tasks.h). */
#include "eval/tasks.h"

#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <wctype.h>

#include <jansson.h>

#include "base/textio.h"
#include "base/utf8.h"
#include "base/util.h"

static const task_info infos[TASK_COUNT] = {
    [TASK_BOOLQ] = {"boolq", "super_glue/boolq", "validation", "eval/boolq/val.jsonl", 3270, false, TASK_ACC,
                    "{passage}\nQuestion: {question}?\nAnswer:", "\" no\", \" yes\" (yes only if strictly more likely)"},
    [TASK_PIQA] = {"piqa", "piqa", "validation", "eval/piqa/valid.jsonl", 1838, true, TASK_ACC, "Question: {goal}\nAnswer:",
                   "\" {sol1}\", \" {sol2}\""},
    [TASK_HELLASWAG] = {"hellaswag", "hellaswag", "validation", "eval/hellaswag/hellaswag_val_full.txt.bz2", 10042, true,
                        TASK_ACC_NORM, "preprocess({activity_label}: {ctx_a} {ctx_b.capitalize()})",
                        "\" \" + preprocess({ending}) for the 4 endings"},
    [TASK_WINOGRANDE] = {"winogrande", "winogrande/winogrande_xl", "validation",
                         "eval/winogrande/winogrande_xl_dev.llmfoundry.jsonl", 1267, false, TASK_ACC,
                         "{sentence up to \"_\"}{option1}, {sentence up to \"_\"}{option2} (partial scoring)",
                         "\" \" + {sentence after \"_\"}.strip(), the same for both contexts"},
    [TASK_ARC_EASY] = {"arc_easy", "ai2_arc/ARC-Easy", "test", "eval/arc/ARC-Easy-test.jsonl", 2376, true, TASK_ACC,
                       "Question: {question}\nAnswer:", "\" {choice}\" for each of choices.text"},
    [TASK_ARC_CHALLENGE] = {"arc_challenge", "ai2_arc/ARC-Challenge", "test", "eval/arc/ARC-Challenge-test.jsonl",
                            1172, true, TASK_ACC_NORM, "Question: {question}\nAnswer:",
                            "\" {choice}\" for each of choices.text"},
    [TASK_OPENBOOKQA] = {"openbookqa", "openbookqa/main", "test", "eval/openbookqa/test.tsv", 500, true, TASK_ACC_NORM,
                         "{question_stem}", "\" {choice}\" for each of choices.text"},
};

const char *task_metric_name(enum task_metric m)
{
    static const char *const names[TASK_METRIC_COUNT] = {[TASK_ACC] = "acc", [TASK_ACC_NORM] = "acc_norm"};
    return m < TASK_METRIC_COUNT ? names[m] : "?";
}

const task_info *task_info_get(enum task_id id) { return id >= 0 && id < TASK_COUNT ? &infos[id] : NULL; }

const task_info *task_info_find(const char *name)
{
    for (int i = 0; i < TASK_COUNT; i++)
        if (!strcmp(infos[i].name, name))
            return &infos[i];
    return NULL;
}

enum task_id task_info_id(const task_info *t) { return (enum task_id)(t - infos); }

/* ---- decisions ---- */

int task_argmax(const double *v, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return best;
}

int task_argmax_norm(const double *ll, const int *chars, int n)
{
    double v[TASK_MAX_CHOICES];
    for (int i = 0; i < n; i++)
        v[i] = ll[i] / (double)chars[i]; /* an empty choice gives -inf, as numpy does */
    return task_argmax(v, n);
}

double task_stderr(int64_t correct, int64_t n)
{
    if (n < 2)
        return NAN;
    double p = (double)correct / (double)n;
    return sqrt(p * (1.0 - p) / (double)(n - 1));
}

/* ---- Python string semantics ---- */

/* Python's str.isspace() */
static bool py_space(unsigned c)
{
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

char *task_py_strip(const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t n = strlen(str), a = 0, b = n;
    while (a < n) {
        size_t len;
        unsigned c = utf8_decode((const char *)s + a, &len);
        if (!py_space(c))
            break;
        a += len;
    }
    /* from the end: find the last non-space code point */
    size_t i = a, end = a;
    while (i < n) {
        size_t len;
        unsigned c = utf8_decode((const char *)s + i, &len);
        i += len;
        if (!py_space(c))
            end = i;
    }
    b = end;
    char *out = xmalloc(b - a + 1);
    memcpy(out, str + a, b - a);
    out[b - a] = 0;
    return out;
}

/* Unicode simple case mappings from the C.UTF-8 locale, ASCII when it is missing. */
static locale_t case_locale(void)
{
    static locale_t loc;
    static bool tried;
    if (!tried) {
        tried = true;
        loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
    }
    return loc;
}

static unsigned to_upper(unsigned c)
{
    locale_t l = case_locale();
    if (l)
        return (unsigned)towupper_l((wint_t)c, l);
    return c >= 'a' && c <= 'z' ? c - 32 : c;
}

static unsigned to_lower(unsigned c)
{
    locale_t l = case_locale();
    if (l)
        return (unsigned)towlower_l((wint_t)c, l);
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

char *task_py_capitalize(const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t n = strlen(str), i = 0, o = 0;
    char *out = xmalloc(2 * n + 8);
    while (i < n) {
        size_t len;
        unsigned c = utf8_decode((const char *)s + i, &len);
        c = i == 0 ? to_upper(c) : to_lower(c);
        i += len;
        o += utf8_encode(c, out + o);
    }
    out[o] = 0;
    return out;
}

/* s with every occurrence of from replaced by to (no longer than from), left to
 * right without overlap, as Python's str.replace; s is freed. */
static char *replace_all(char *s, const char *from, const char *to)
{
    size_t n = strlen(s), fn = strlen(from), tn = strlen(to), o = 0;
    char *out = xmalloc(n + 1);
    for (size_t i = 0; i < n;) {
        if (!strncmp(s + i, from, fn)) {
            memcpy(out + o, to, tn);
            o += tn;
            i += fn;
        } else {
            out[o++] = s[i++];
        }
    }
    out[o] = 0;
    free(s);
    return out;
}

/* s without each "[" ... nearest "]" that has no newline between (re.sub(r"\[.*?\]", "")); s is freed. */
static char *drop_brackets(char *s)
{
    size_t n = strlen(s), o = 0;
    char *out = xmalloc(n + 1);
    for (size_t i = 0; i < n;) {
        if (s[i] == '[') {
            size_t j = i + 1;
            while (j < n && s[j] != ']' && s[j] != '\n')
                j++;
            if (j < n && s[j] == ']') {
                i = j + 1;
                continue;
            }
        }
        out[o++] = s[i++];
    }
    out[o] = 0;
    free(s);
    return out;
}

char *task_hellaswag_preprocess(const char *text)
{
    char *s = task_py_strip(text);       /* 1. strip */
    s = replace_all(s, " [title]", ". "); /* 2 */
    s = drop_brackets(s);                 /* 3 */
    return replace_all(s, "  ", " ");     /* 4. one non-overlapping pass */
}

/* ---- reading ---- */

typedef struct {
    const char *path;
    char *buf;
    size_t len;
    size_t pos;
    int line;       /* number of the line last returned */
} lines;

static _Noreturn __attribute__((format(printf, 3, 4))) void fail(const char *path, int line, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (line > 0)
        die("%s:%d: %s", path, line, msg);
    die("%s: %s", path, msg);
}

/* Read the whole file, check it is UTF-8 without NUL bytes, skip a UTF-8 BOM. */
static void lines_open(lines *L, const char *path)
{
    memset(L, 0, sizeof *L);
    L->path = path;
    L->buf = read_text_file(path, &L->len);
    long bad = utf8_invalid_at(L->buf, L->len);
    const char *nul = memchr(L->buf, 0, L->len);
    long at = bad;
    if (nul && (bad < 0 || nul - L->buf < bad))
        at = nul - L->buf;
    if (at >= 0) {
        int line = 1;
        for (long i = 0; i < at; i++)
            line += L->buf[i] == '\n';
        unsigned char byte = (unsigned char)L->buf[at];
        free(L->buf);
        if (byte == 0)
            fail(path, line, "NUL byte: not a UTF-8 text file (UTF-16?)");
        fail(path, line, "invalid UTF-8 (byte 0x%02x): the file must be UTF-8", byte);
    }
    if (L->len >= 3 && !memcmp(L->buf, "\xEF\xBB\xBF", 3))
        L->pos = 3;
}

/* Next line (without "\n" and a "\r" before it), NUL-terminated in place; NULL at EOF. */
static char *lines_next(lines *L)
{
    if (L->pos >= L->len)
        return NULL;
    char *p = L->buf + L->pos;
    char *nl = memchr(p, '\n', L->len - L->pos);
    size_t n = nl ? (size_t)(nl - p) : L->len - L->pos;
    L->pos += n + (nl ? 1 : 0);
    L->line++;
    p[n] = 0;
    if (n && p[n - 1] == '\r')
        p[n - 1] = 0;
    return p;
}

static bool blank_line(const char *s)
{
    for (; *s; s++)
        if (*s != ' ' && *s != '\t')
            return false;
    return true;
}

/* The first non-blank character of the file ('{' for JSON lines), 0 if none. */
static char first_char(const lines *L)
{
    for (size_t i = L->pos; i < L->len; i++)
        if (L->buf[i] != ' ' && L->buf[i] != '\t' && L->buf[i] != '\r' && L->buf[i] != '\n')
            return L->buf[i];
    return 0;
}

static json_t *parse_json_line(const lines *L, const char *s)
{
    json_error_t err;
    json_t *j = json_loads(s, 0, &err);
    if (!j)
        fail(L->path, L->line, "bad JSON at column %d: %s", err.column, err.text);
    if (!json_is_object(j))
        fail(L->path, L->line, "expected a JSON object");
    return j;
}

static const char *get_str(const lines *L, json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!v)
        fail(L->path, L->line, "missing field \"%s\"", key);
    if (!json_is_string(v))
        fail(L->path, L->line, "field \"%s\" is not a string", key);
    return json_string_value(v);
}

static const char *get_str_or(json_t *o, const char *key, const char *dflt)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : dflt;
}

/* An integer label given as a number or a string of digits. */
static int get_label(const lines *L, json_t *o, const char *key, int lo, int hi)
{
    json_t *v = json_object_get(o, key);
    if (!v)
        fail(L->path, L->line, "missing field \"%s\"", key);
    long x;
    if (json_is_integer(v))
        x = (long)json_integer_value(v);
    else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        x = strtol(s, &end, 10);
        if (!*s || *end)
            fail(L->path, L->line, "field \"%s\" is \"%s\", not a number", key, s);
    } else
        fail(L->path, L->line, "field \"%s\" is not a number", key);
    if (x < lo || x > hi)
        fail(L->path, L->line, "label out of range: \"%s\" is %ld, expected %d to %d", key, x, lo, hi);
    return (int)x;
}

static json_t *get_array(const lines *L, json_t *o, const char *key, int min, int max)
{
    json_t *v = json_object_get(o, key);
    if (!v)
        fail(L->path, L->line, "missing field \"%s\"", key);
    if (!json_is_array(v))
        fail(L->path, L->line, "field \"%s\" is not a list", key);
    int n = (int)json_array_size(v);
    if (n < min || n > max)
        fail(L->path, L->line, "field \"%s\" has %d entries, expected %d to %d", key, n, min, max);
    for (int i = 0; i < n; i++)
        if (!json_is_string(json_array_get(v, (size_t)i)))
            fail(L->path, L->line, "entry %d of \"%s\" is not a string", i, key);
    return v;
}

/* ---- building items ---- */

static task_item *new_item(task_data *d, int *cap, int line)
{
    GROW(d->items, *cap, d->n_items + 1, 256);
    task_item *it = &d->items[d->n_items++];
    memset(it, 0, sizeof *it);
    it->line = line;
    return it;
}

/* Choice i: context ctx (owned by the item; the same pointer may serve every choice),
 * continuation " " + choice. */
static void add_choice(task_item *it, char *ctx, const char *choice)
{
    int i = it->n++;
    it->ctx[i] = ctx;
    it->cont[i] = xasprintf(" %s", choice);
    it->chars[i] = (int)utf8_chars(choice);
}

/* The letter of an answer key: "1".."5" -> "A".."E" (ARC's num_to_letter). */
static const char *num_to_letter(const char *k)
{
    static const char *letters[] = {"A", "B", "C", "D", "E"};
    if (k[0] >= '1' && k[0] <= '5' && !k[1])
        return letters[k[0] - '1'];
    return k;
}

/* The position of an answer key among letters (ARC's "1".."5" mean "A".."E";
 * OpenBookQA's key is stripped first); dies unless it names one of n choices. */
static int answer_index(const lines *L, const char *key, const char *letters, bool strip, int n)
{
    const char *k = num_to_letter(key);
    char one = 0;
    if (strip) {
        char *st = task_py_strip(key);
        one = strlen(st) == 1 ? st[0] : 0;
        free(st);
    } else if (strlen(k) == 1)
        one = k[0];
    const char *at = one ? strchr(letters, one) : NULL;
    int gold = at ? (int)(at - letters) : -1;
    if (gold < 0 || gold >= n)
        fail(L->path, L->line, "label out of range: answer key \"%s\" with %d choices", key, n);
    return gold;
}

static void boolq_item(task_data *d, int *cap, const lines *L, json_t *o)
{
    const char *passage, *question = get_str(L, o, "question");
    char *joined = NULL;
    int label;
    if (json_object_get(o, "passage") && json_object_get(o, "title") && json_object_get(o, "answer")) {
        /* the original Google BoolQ: SuperGLUE's passage is "title -- passage" */
        const char *title = get_str(L, o, "title"), *text = get_str(L, o, "passage");
        json_t *a = json_object_get(o, "answer");
        if (!json_is_boolean(a))
            fail(L->path, L->line, "field \"answer\" is not true or false");
        label = json_is_true(a);
        joined = xasprintf("%s -- %s", title, text);
        passage = joined;
    } else {
        passage = get_str(L, o, "passage");
        json_t *v = json_object_get(o, "label");
        if (!v)
            fail(L->path, L->line, "missing field \"label\"");
        if (json_is_boolean(v))
            label = json_is_true(v);
        else if (json_is_string(v) && (!strcasecmp(json_string_value(v), "true") ||
                                       !strcasecmp(json_string_value(v), "false")))
            label = !strcasecmp(json_string_value(v), "true");
        else
            label = get_label(L, o, "label", 0, 1);
    }
    task_item *it = new_item(d, cap, L->line);
    char *ctx = xasprintf("%s\nQuestion: %s?\nAnswer:", passage, question);
    add_choice(it, ctx, "no");
    add_choice(it, ctx, "yes");
    it->gold = label;
    free(joined);
}

/* "X.jsonl" -> "X-labels.lst" beside it (PIQA's layout), compression suffix dropped. */
static char *piqa_labels_path(const char *path)
{
    char *p = xstrdup(path);
    static const char *exts[] = {".gz", ".xz", ".bz2", ".zst", ".jsonl", ".json"};
    for (size_t k = 0; k < sizeof exts / sizeof *exts; k++) {
        size_t n = strlen(p), e = strlen(exts[k]);
        if (n > e && !strcmp(p + n - e, exts[k]))
            p[n - e] = 0;
    }
    char *out = xasprintf("%s-labels.lst", p);
    free(p);
    return out;
}

static void piqa_item(task_data *d, int *cap, const lines *L, json_t *o, bool has_label)
{
    const char *goal = get_str(L, o, "goal"), *s1 = get_str(L, o, "sol1"), *s2 = get_str(L, o, "sol2");
    int gold = has_label ? get_label(L, o, "label", 0, 1) : -1;
    task_item *it = new_item(d, cap, L->line);
    char *ctx = xasprintf("Question: %s\nAnswer:", goal);
    add_choice(it, ctx, s1);
    add_choice(it, ctx, s2);
    it->gold = gold;
}

static void piqa_read_labels(task_data *d, const char *path)
{
    lines L;
    lines_open(&L, path);
    int i = 0;
    char *s;
    while ((s = lines_next(&L))) {
        if (blank_line(s) && L.pos >= L.len)
            break;
        if (i >= d->n_items)
            fail(path, L.line, "more labels than the %d items of %s", d->n_items, d->path);
        if (strcmp(s, "0") && strcmp(s, "1"))
            fail(path, L.line, "label out of range: \"%s\", expected 0 or 1", s);
        d->items[i++].gold = s[0] - '0';
    }
    if (i != d->n_items)
        fail(path, 0, "%d labels for the %d items of %s", i, d->n_items, d->path);
    free(L.buf);
}

static void hellaswag_hf_item(task_data *d, int *cap, const lines *L, json_t *o)
{
    const char *act = get_str(L, o, "activity_label");
    const char *a = get_str_or(o, "ctx_a", ""), *b = get_str_or(o, "ctx_b", "");
    json_t *endings = get_array(L, o, "endings", 2, TASK_MAX_CHOICES);
    int gold = get_label(L, o, "label", 0, (int)json_array_size(endings) - 1);
    char *cb = task_py_capitalize(b);
    char *q = xasprintf("%s: %s %s", act, a, cb);
    task_item *it = new_item(d, cap, L->line);
    char *ctx = task_hellaswag_preprocess(q);
    for (size_t i = 0; i < json_array_size(endings); i++) {
        char *e = task_hellaswag_preprocess(json_string_value(json_array_get(endings, i)));
        add_choice(it, ctx, e);
        free(e);
    }
    it->gold = gold;
    free(cb);
    free(q);
}

/* llama.cpp's layout: the joined context, the gold index, four endings. */
static void hellaswag_lines(task_data *d, int *cap, lines *L)
{
    char *s;
    while ((s = lines_next(L))) {
        if (blank_line(s) && L->pos >= L->len)
            break;
        int start = L->line;
        char *g = lines_next(L), *e[4];
        for (int i = 0; i < 4; i++)
            if (!g || !(e[i] = lines_next(L)))
                fail(L->path, start, "truncated: an item has 6 lines (context, label, 4 endings)");
        char *end;
        long gold = strtol(g, &end, 10);
        if (!*g || *end)
            fail(L->path, start + 1, "the label line is \"%s\", not a number", g);
        if (gold < 0 || gold > 3)
            fail(L->path, start + 1, "label out of range: %ld, expected 0 to 3", gold);
        task_item *it = new_item(d, cap, start);
        char *ctx = task_hellaswag_preprocess(s);
        for (int i = 0; i < 4; i++) {
            char *p = task_hellaswag_preprocess(e[i]);
            add_choice(it, ctx, p);
            free(p);
        }
        it->gold = (int)gold;
    }
}

static void winogrande_hf_item(task_data *d, int *cap, const lines *L, json_t *o)
{
    const char *sent = get_str(L, o, "sentence");
    const char *opt[2] = {get_str(L, o, "option1"), get_str(L, o, "option2")};
    int answer = get_label(L, o, "answer", 1, 2);
    const char *blank = strchr(sent, '_');
    if (!blank)
        fail(L->path, L->line, "the sentence has no \"_\"");
    char *target = task_py_strip(blank + 1);
    task_item *it = new_item(d, cap, L->line);
    for (int i = 0; i < 2; i++) {
        char *ctx = xasprintf("%.*s%s", (int)(blank - sent), sent, opt[i]);
        add_choice(it, ctx, target);
    }
    it->gold = answer - 1;
    free(target);
}

/* llm-foundry's partial-scoring form: the contexts, one continuation. */
static void winogrande_foundry_item(task_data *d, int *cap, const lines *L, json_t *o)
{
    json_t *ctxs = get_array(L, o, "context_options", 2, TASK_MAX_CHOICES);
    const char *cont = get_str(L, o, "continuation");
    int gold = get_label(L, o, "gold", 0, (int)json_array_size(ctxs) - 1);
    char *target = task_py_strip(cont);
    task_item *it = new_item(d, cap, L->line);
    for (size_t i = 0; i < json_array_size(ctxs); i++)
        add_choice(it, xstrdup(json_string_value(json_array_get(ctxs, i))), target);
    it->gold = gold;
    free(target);
}

/* ARC and OpenBookQA: a question, choices {text, label} (Hugging Face) or the raw
 * {"question": {"stem", "choices": [{"text", "label"}]}}, and an answer key. */
static void qa_item(task_data *d, int *cap, const lines *L, json_t *o, bool obqa)
{
    const char *stem;
    json_t *texts = NULL, *raw_choices = NULL;
    json_t *q = json_object_get(o, "question");
    if (json_is_object(q)) {
        stem = get_str(L, q, "stem");
        raw_choices = json_object_get(q, "choices");
        if (!raw_choices)
            fail(L->path, L->line, "missing field \"question.choices\"");
        if (!json_is_array(raw_choices) || json_array_size(raw_choices) < 2 ||
            json_array_size(raw_choices) > TASK_MAX_CHOICES)
            fail(L->path, L->line, "field \"question.choices\" is not a list of 2 to %d choices", TASK_MAX_CHOICES);
    } else {
        stem = get_str(L, o, obqa ? "question_stem" : "question");
        json_t *ch = json_object_get(o, "choices");
        if (!ch)
            fail(L->path, L->line, "missing field \"choices\"");
        if (!json_is_object(ch))
            fail(L->path, L->line, "field \"choices\" is not an object");
        texts = get_array(L, ch, "text", 2, TASK_MAX_CHOICES);
    }
    const char *key = get_str(L, o, "answerKey");
    const char *t[TASK_MAX_CHOICES];
    int n = (int)(texts ? json_array_size(texts) : json_array_size(raw_choices));
    for (int i = 0; i < n; i++) {
        if (texts)
            t[i] = json_string_value(json_array_get(texts, (size_t)i));
        else {
            json_t *c = json_array_get(raw_choices, (size_t)i);
            if (!json_is_object(c) || !json_is_string(json_object_get(c, "text")))
                fail(L->path, L->line, "choice %d has no \"text\"", i);
            t[i] = json_string_value(json_object_get(c, "text"));
        }
    }
    int gold = answer_index(L, key, obqa ? "ABCD" : "ABCDE", obqa, n);
    task_item *it = new_item(d, cap, L->line);
    char *ctx = obqa ? xstrdup(stem) : xasprintf("Question: %s\nAnswer:", stem);
    for (int i = 0; i < n; i++)
        add_choice(it, ctx, t[i]);
    it->gold = gold;
}

/* The OpenBookQA TSV: ID, Question Stem, Choices "(A) .. (B) .. (C) .. (D) ..",
 * Complete Question, Answer Key. */
static void obqa_tsv(task_data *d, int *cap, lines *L)
{
    char *s = lines_next(L);
    if (!s || strncmp(s, "ID\tQuestion Stem\tChoices", 24))
        fail(L->path, L->line, "not the OpenBookQA TSV (its header is \"ID<TAB>Question Stem<TAB>Choices...\")");
    while ((s = lines_next(L))) {
        if (blank_line(s))
            continue;
        char *f[5];
        int nf = 0;
        for (char *p = s; nf < 5;) {
            f[nf++] = p;
            char *t = strchr(p, '\t');
            if (!t)
                break;
            *t = 0;
            p = t + 1;
        }
        if (nf < 5)
            fail(L->path, L->line, "missing field: %d of 5 tab-separated columns", nf);
        char *ch = f[2], *t[4];
        if (strncmp(ch, "(A) ", 4))
            fail(L->path, L->line, "the choices do not start with \"(A) \"");
        const char *marks[] = {" (B) ", " (C) ", " (D) "};
        t[0] = ch + 4;
        for (int i = 0; i < 3; i++) {
            char *next = strstr(t[i], marks[i]);
            if (!next)
                fail(L->path, L->line, "missing field: choice %c", 'B' + i);
            *next = 0;
            t[i + 1] = next + 5;
        }
        int gold = answer_index(L, f[4], "ABCD", true, 4);
        task_item *it = new_item(d, cap, L->line);
        char *ctx = xstrdup(f[1]);
        for (int i = 0; i < 4; i++)
            add_choice(it, ctx, t[i]);
        it->gold = gold;
    }
}

void task_load(task_data *d, const task_info *info, const char *path)
{
    memset(d, 0, sizeof *d);
    d->info = info;
    d->path = xstrdup(path);
    lines L;
    lines_open(&L, path);
    int cap = 0;
    enum task_id id = task_info_id(info);
    if (first_char(&L) != '{') {
        if (id == TASK_HELLASWAG) {
            d->format = "llama.cpp six-line";
            d->note = "contexts from llama.cpp's six-line file: activity_label, ctx_a and ctx_b come joined, "
                      "so ctx_b is not capitalised as the harness does";
            hellaswag_lines(d, &cap, &L);
        } else if (id == TASK_OPENBOOKQA) {
            d->format = "openbookqa tsv";
            obqa_tsv(d, &cap, &L);
        } else
            fail(path, 0, "not JSON lines (the %s reader takes one JSON object per line)", info->name);
    } else {
        bool piqa_labels = false;
        char *s;
        while ((s = lines_next(&L))) {
            if (blank_line(s))
                continue;
            json_t *o = parse_json_line(&L, s);
            switch (id) {
            case TASK_BOOLQ:
                d->format = "super_glue jsonl";
                boolq_item(d, &cap, &L, o);
                break;
            case TASK_PIQA:
                if (d->n_items == 0)
                    piqa_labels = !json_object_get(o, "label");
                d->format = piqa_labels ? "piqa jsonl + labels" : "hf jsonl";
                piqa_item(d, &cap, &L, o, !piqa_labels);
                break;
            case TASK_HELLASWAG:
                d->format = "hf jsonl";
                hellaswag_hf_item(d, &cap, &L, o);
                break;
            case TASK_WINOGRANDE:
                if (json_object_get(o, "context_options")) {
                    d->format = "llm-foundry jsonl";
                    winogrande_foundry_item(d, &cap, &L, o);
                } else {
                    d->format = "hf jsonl";
                    winogrande_hf_item(d, &cap, &L, o);
                }
                break;
            case TASK_ARC_EASY:
            case TASK_ARC_CHALLENGE:
                d->format = json_is_object(json_object_get(o, "question")) ? "ai2 jsonl" : "hf jsonl";
                qa_item(d, &cap, &L, o, false);
                break;
            case TASK_OPENBOOKQA:
                d->format = json_is_object(json_object_get(o, "question")) ? "ai2 jsonl" : "hf jsonl";
                qa_item(d, &cap, &L, o, true);
                break;
            default:
                break;
            }
            json_decref(o);
        }
        if (piqa_labels) {
            char *lp = piqa_labels_path(path);
            if (!path_exists(lp)) {
                char name[4096];
                snprintf(name, sizeof name, "%s", lp);
                free(lp);
                free(L.buf);
                fail(path, 0, "the lines have no \"label\" and the labels file %s does not exist", name);
            }
            piqa_read_labels(d, lp);
            free(lp);
        }
    }
    free(L.buf);
    if (d->n_items == 0)
        fail(path, 0, "no items");
}

void task_data_free(task_data *d)
{
    for (int i = 0; i < d->n_items; i++) {
        task_item *it = &d->items[i];
        for (int c = 0; c < it->n; c++) {
            bool shared = false;
            for (int e = 0; e < c; e++)
                shared |= it->ctx[e] == it->ctx[c];
            if (!shared)
                free(it->ctx[c]);
            free(it->cont[c]);
        }
    }
    free(d->items);
    free(d->path);
    memset(d, 0, sizeof *d);
}
