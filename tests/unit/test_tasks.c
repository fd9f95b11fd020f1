/* test_tasks.c - the task readers on small files written here, checked against the
 * strings the harness builds (written out by hand from lm-eval-tasks.md), the
 * text helpers against Python's semantics, and the decision rules and stderr
 * against hand-computed values. Errors in task files are tested in
 * tests/bats/eval_tasks.bats (they exit). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/utf8.h"
#include "base/util.h"
#include "check.h"
#include "eval/tasks.h"

static char g_dir[64];

static char *write_file(const char *name, const char *text)
{
    char *path = path_join(g_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f)
        die("cannot write %s", path);
    fputs(text, f);
    fclose(f);
    return path;
}

static bool str_is(const char *got, const char *want)
{
    if (strcmp(got, want)) {
        fprintf(stderr, "    got  \"%s\"\n    want \"%s\"\n", got, want);
        return false;
    }
    return true;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

static void load(task_data *d, const char *task, const char *name, const char *text)
{
    char *path = write_file(name, text);
    task_load(d, task_info_find(task), path);
    free(path);
}

static void test_preprocess(void)
{
    char *s;
    /* lm-eval-tasks.md 2.3: the strip runs first, so a removal can leave a leading space */
    s = task_hellaswag_preprocess("[header] How to x [title] Do y. [step] Stir well.");
    CHECK(str_is(s, " How to x. Do y. Stir well."));
    free(s);
    /* non-greedy, and not across a newline; an unclosed "[" stays */
    s = task_hellaswag_preprocess("a [b] c [d\n] e [f [g] h [");
    CHECK(str_is(s, "a c [d\n] e h ["));
    free(s);
    s = task_hellaswag_preprocess("  x   y    z  ");
    CHECK(str_is(s, "x  y  z")); /* 3 spaces -> 2, 4 -> 2, one pass */
    free(s);
    s = task_hellaswag_preprocess("Roof shingle removal: A man is sitting on a roof. He");
    CHECK(str_is(s, "Roof shingle removal: A man is sitting on a roof. He"));
    free(s);
    s = task_py_capitalize("hE said McDonald");
    CHECK(str_is(s, "He said mcdonald"));
    free(s);
    s = task_py_capitalize("\xC3\xA9t\xC3\x89"); /* "étÉ" -> "Été" */
    CHECK(str_is(s, "\xC3\x89t\xC3\xA9"));
    free(s);
    s = task_py_capitalize("");
    CHECK(str_is(s, ""));
    free(s);
    s = task_py_strip("\xC2\xA0\t a b \xE3\x80\x80\n"); /* U+00A0 and U+3000 are Python white space */
    CHECK(str_is(s, "a b"));
    free(s);
    CHECK(utf8_chars("caf\xC3\xA9") == 4);
    CHECK(utf8_invalid_at("ok\xC3\xA9", 4) == -1);
    CHECK(utf8_invalid_at("ok\xE9 latin-1", 11) == 2);
    CHECK(utf8_invalid_at("\xC0\x80", 2) == 0);         /* overlong */
    CHECK(utf8_invalid_at("a\xED\xA0\x80", 4) == 1);    /* surrogate */
    CHECK(utf8_invalid_at("ab\xE2\x82", 4) == 2);       /* cut short */
}

static void test_decisions(void)
{
    double tie[3] = {-2.0, -1.0, -1.0};
    CHECK(task_argmax(tie, 3) == 1); /* first of the tied best */
    double no_yes[2] = {-3.0, -3.0};
    CHECK(task_argmax(no_yes, 2) == 0); /* BoolQ: a tie is "no" */
    /* acc_norm: -4/2 = -2 beats -3/1 = -3 although -4 < -3 */
    double ll[2] = {-3.0, -4.0};
    int chars[2] = {1, 2};
    CHECK(task_argmax(ll, 2) == 0);
    CHECK(task_argmax_norm(ll, chars, 2) == 1);
    /* stderr: 1 right of 4 -> p = 1/4, sqrt(1/4 * 3/4 / 3) = 1/4 */
    CHECK(task_stderr(1, 4) == 0.25);
    CHECK(task_stderr(0, 10) == 0.0);
    CHECK_CLOSE(task_stderr(3, 5), sqrt(0.6 * 0.4 / 4), 1e-15);
    CHECK(isnan(task_stderr(1, 1)));
}

static void test_boolq(void)
{
    task_data d;
    load(&d, "boolq", "boolq.jsonl",
         "{\"question\": \"does it fly\", \"passage\": \"Bird -- Birds fly.\", \"idx\": 0, \"label\": \"true\"}\n"
         "{\"question\": \"is it red\", \"passage\": \"P\", \"idx\": 1, \"label\": 0}\n"
         "\n"
         "{\"question\": \"q\", \"passage\": \"P2\", \"label\": false}\n"
         "{\"question\": \"q\", \"title\": \"T\", \"passage\": \"orig\", \"answer\": true}\n");
    CHECK(d.n_items == 4);
    task_item *it = &d.items[0];
    CHECK(it->n == 2 && it->gold == 1 && it->line == 1);
    CHECK(str_is(it->ctx[0], "Bird -- Birds fly.\nQuestion: does it fly?\nAnswer:"));
    CHECK(it->ctx[1] == it->ctx[0]);
    CHECK(str_is(it->cont[0], " no") && str_is(it->cont[1], " yes"));
    CHECK(d.items[1].gold == 0 && d.items[2].gold == 0 && d.items[2].line == 4);
    CHECK(str_is(d.items[3].ctx[0], "T -- orig\nQuestion: q?\nAnswer:") && d.items[3].gold == 1);
    task_data_free(&d);
}

static void test_piqa(void)
{
    task_data d;
    char *labels = write_file("valid-labels.lst", "1\n0\n");
    load(&d, "piqa", "valid.jsonl",
         "{\"goal\": \"dresser\", \"sol1\": \"replace drawer with bobby pin \", \"sol2\": \"finish,  x\"}\n"
         "{\"goal\": \"g\", \"sol1\": \"caf\xC3\xA9\", \"sol2\": \"b\"}\n");
    CHECK(d.n_items == 2 && d.items[0].gold == 1 && d.items[1].gold == 0);
    CHECK(str_is(d.items[0].ctx[0], "Question: dresser\nAnswer:"));
    CHECK(str_is(d.items[0].cont[0], " replace drawer with bobby pin ")); /* kept as is */
    CHECK(str_is(d.items[0].cont[1], " finish,  x"));
    CHECK(d.items[0].chars[0] == 30 && d.items[1].chars[0] == 4);
    CHECK(!strcmp(d.format, "piqa jsonl + labels"));
    task_data_free(&d);
    free(labels);
    /* the Hugging Face rows carry the label */
    load(&d, "piqa", "hf.jsonl", "{\"goal\": \"g\", \"sol1\": \"a\", \"sol2\": \"b\", \"label\": 1}\n");
    CHECK(d.n_items == 1 && d.items[0].gold == 1);
    task_data_free(&d);
}

static void test_hellaswag(void)
{
    task_data d;
    /* Hugging Face rows: ctx_b capitalised, the whole query preprocessed */
    load(&d, "hellaswag", "hs.jsonl",
         "{\"ind\": 4, \"activity_label\": \"Roof shingle removal\", \"ctx_a\": \"A man is sitting on a roof.\", "
         "\"ctx_b\": \"he\", \"ctx\": \"x\", \"endings\": [\"is using wrap.\", \" [title] Rip [x] tiles  off.\", "
         "\"c\", \"d\"], \"source_id\": \"s\", \"split\": \"val\", \"split_type\": \"indomain\", \"label\": \"3\"}\n"
         "{\"activity_label\": \"Cooking\", \"ctx_a\": \"[header] How to cook\", \"ctx_b\": \"\", "
         "\"endings\": [\"a\", \"b\", \"c\", \"d\"], \"label\": 0}\n");
    CHECK(d.n_items == 2);
    task_item *it = &d.items[0];
    CHECK(it->n == 4 && it->gold == 3);
    CHECK(str_is(it->ctx[0], "Roof shingle removal: A man is sitting on a roof. He"));
    CHECK(str_is(it->cont[0], " is using wrap."));
    /* stripped first, so "[title]" has no space before it and goes as a bracket */
    CHECK(str_is(it->cont[1], "  Rip tiles off."));
    CHECK(it->chars[1] == 15);
    CHECK(str_is(d.items[1].ctx[0], "Cooking: How to cook")); /* from "Cooking: [header] How to cook " */
    task_data_free(&d);
    /* llama.cpp's six-line file: the context as it is (not capitalised), preprocessed */
    load(&d, "hellaswag", "hs.txt",
         "Roof shingle removal: A man is sitting on a roof. he\n3\nis using wrap.\nb\nc\nstarts  [x]pulling.\n");
    CHECK(d.n_items == 1 && d.items[0].gold == 3 && d.note != NULL);
    CHECK(str_is(d.items[0].ctx[0], "Roof shingle removal: A man is sitting on a roof. he"));
    CHECK(str_is(d.items[0].cont[3], " starts pulling."));
    task_data_free(&d);
}

static void test_winogrande(void)
{
    task_data d;
    load(&d, "winogrande", "wg.jsonl",
         "{\"sentence\": \"Sarah was a much better surgeon than Maria so _ always got the harder cases.\", "
         "\"option1\": \"Sarah\", \"option2\": \"Maria\", \"answer\": \"1\"}\n"
         "{\"sentence\": \"A _ b_c \", \"option1\": \"x\", \"option2\": \"y\", \"answer\": 2}\n");
    task_item *it = &d.items[0];
    CHECK(it->n == 2 && it->gold == 0);
    CHECK(str_is(it->ctx[0], "Sarah was a much better surgeon than Maria so Sarah"));
    CHECK(str_is(it->ctx[1], "Sarah was a much better surgeon than Maria so Maria"));
    CHECK(str_is(it->cont[0], " always got the harder cases.") && str_is(it->cont[1], " always got the harder cases."));
    /* the first "_" splits; the rest is stripped */
    CHECK(str_is(d.items[1].ctx[1], "A y") && str_is(d.items[1].cont[0], " b_c") && d.items[1].gold == 1);
    task_data_free(&d);
    load(&d, "winogrande", "wg-foundry.jsonl",
         "{\"context_options\": [\"Sarah was a surgeon so Sarah\", \"Sarah was a surgeon so Maria\"], "
         "\"continuation\": \"always got the easier cases.\", \"gold\": 1}\n");
    CHECK(d.n_items == 1 && d.items[0].gold == 1);
    CHECK(str_is(d.items[0].ctx[1], "Sarah was a surgeon so Maria"));
    CHECK(str_is(d.items[0].cont[0], " always got the easier cases."));
    task_data_free(&d);
}

static void test_arc_obqa(void)
{
    task_data d;
    load(&d, "arc_easy", "arc.jsonl",
         "{\"id\": \"a\", \"question\": \"Which is hot?\", \"choices\": {\"text\": [\"ice\", \"fire\", \"snow\"], "
         "\"label\": [\"1\", \"2\", \"3\"]}, \"answerKey\": \"2\"}\n"
         "{\"id\": \"b\", \"question\": {\"stem\": \"Raw?\", \"choices\": [{\"text\": \"x\", \"label\": \"A\"}, "
         "{\"text\": \"y\", \"label\": \"B\"}, {\"text\": \"z\", \"label\": \"C\"}, {\"text\": \"w\", \"label\": "
         "\"D\"}, {\"text\": \"v\", \"label\": \"E\"}]}, \"answerKey\": \"E\"}\n");
    CHECK(d.n_items == 2 && d.items[0].n == 3 && d.items[0].gold == 1);
    CHECK(str_is(d.items[0].ctx[0], "Question: Which is hot?\nAnswer:") && str_is(d.items[0].cont[1], " fire"));
    CHECK(d.items[1].n == 5 && d.items[1].gold == 4 && str_is(d.items[1].ctx[0], "Question: Raw?\nAnswer:"));
    task_data_free(&d);
    load(&d, "openbookqa", "obqa.jsonl",
         "{\"id\": \"7\", \"question_stem\": \"The sun is\", \"choices\": {\"text\": [\"cold\", \"a star\", \"blue\", "
         "\"small\"], \"label\": [\"A\", \"B\", \"C\", \"D\"]}, \"answerKey\": \" B \"}\n");
    CHECK(d.items[0].gold == 1 && str_is(d.items[0].ctx[0], "The sun is") && str_is(d.items[0].cont[1], " a star"));
    task_data_free(&d);
    load(&d, "openbookqa", "test.tsv",
         "ID\tQuestion Stem\tChoices\tComplete Question\tAnswer Key\n"
         "8-343\tthe best way to save money is to\t(A) make calls (B) quit eating lunch out (C) buy (D) have lunch"
         "\tthe best ... (A) make calls (B) ...\tB\n");
    CHECK(d.n_items == 1 && d.items[0].n == 4 && d.items[0].gold == 1 && d.items[0].line == 2);
    CHECK(str_is(d.items[0].ctx[0], "the best way to save money is to"));
    CHECK(str_is(d.items[0].cont[0], " make calls") && str_is(d.items[0].cont[1], " quit eating lunch out") &&
          str_is(d.items[0].cont[3], " have lunch"));
    task_data_free(&d);
}

/* The shipped data files, when present: item counts and a few known items. */
static void test_shipped_files(void)
{
    char *eval = path_join(check_data_dir(), "eval");
    if (!path_exists(eval)) {
        fprintf(stderr, "    (no %s: skipped)\n", eval);
        free(eval);
        return;
    }
    for (int i = 0; i < TASK_COUNT; i++) {
        const task_info *t = task_info_get((enum task_id)i);
        char *path = path_join(check_data_dir(), t->default_file);
        task_data d;
        task_load(&d, t, path);
        CHECK(d.n_items == t->expected_items);
        if (i == TASK_BOOLQ)
            CHECK(ends_with(d.items[0].ctx[0], "\nQuestion: does ethanol take more energy make that produces?\nAnswer:") &&
                  !strncmp(d.items[0].ctx[0], "Ethanol fuel -- All biomass", 27));
        if (i == TASK_HELLASWAG)
            CHECK(str_is(d.items[0].ctx[0], "Roof shingle removal: A man is sitting on a roof. he"));
        if (i == TASK_OPENBOOKQA)
            CHECK(d.items[0].gold == 1 && str_is(d.items[0].cont[1], " quit eating lunch out"));
        task_data_free(&d);
        free(path);
    }
    free(eval);
}

int main(void)
{
    set_progname("test_tasks");
    snprintf(g_dir, sizeof g_dir, "/tmp/pare-test-tasks-XXXXXX");
    check_make_dir(g_dir);
    TEST(test_preprocess);
    TEST(test_decisions);
    TEST(test_boolq);
    TEST(test_piqa);
    TEST(test_hellaswag);
    TEST(test_winogrande);
    TEST(test_arc_obqa);
    TEST(test_shipped_files);
    check_remove_dir(g_dir);
    return check_report();
}
