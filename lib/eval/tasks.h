/* tasks.h - the seven zero-shot tasks of the LLM-Pruner paper, read from their data
 * files and turned into log-likelihood requests exactly as EleutherAI's
 * lm-evaluation-harness at commit 4d21ab6b does 0-shot
 * (shared/reference/lm-eval-tasks.md):
 *
 *   boolq          "{passage}\nQuestion: {question}?\nAnswer:"   " no" / " yes"
 *   piqa           "Question: {goal}\nAnswer:"                   " {sol1}" / " {sol2}"
 *   hellaswag      preprocess(activity_label + ": " + ctx_a + " " + capitalize(ctx_b))
 *                                                                " " + preprocess(ending)
 *   winogrande     sentence up to "_" + option (one context each) " " + strip(rest after "_")
 *   arc_easy,
 *   arc_challenge  "Question: {question}\nAnswer:"               " {choice}"
 *   openbookqa     question_stem                                 " {choice}"
 *
 * An item's choices are scored by the summed log-probability of the continuation
 * given the context; acc = argmax (first on ties), acc_norm = argmax of ll divided by
 * the choice's length in Unicode characters (without the leading space). BoolQ's
 * choices are ordered " no", " yes", so that argmax-first-on-ties is the harness's
 * "yes only if strictly more likely".
 *
 * Readers accept the files in shared/data/eval (MANIFEST.md section 3) and the
 * Hugging Face JSON-lines form of each data set, plain or compressed (libarchive).
 * Any defect (invalid UTF-8, bad JSON, a missing field, a label out of range) dies
 * with "FILE:LINE: what is wrong". */
#ifndef PARE_TASKS_H
#define PARE_TASKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum task_id {
    TASK_BOOLQ,
    TASK_PIQA,
    TASK_HELLASWAG,
    TASK_WINOGRANDE,
    TASK_ARC_EASY,
    TASK_ARC_CHALLENGE,
    TASK_OPENBOOKQA,
    TASK_COUNT
};

/* A task's accuracies: argmax of the log-likelihood, or of it per character. */
enum task_metric { TASK_ACC, TASK_ACC_NORM, TASK_METRIC_COUNT };
const char *task_metric_name(enum task_metric m); /* "acc", "acc_norm" */

typedef struct {
    const char *name;          /* "boolq" */
    const char *dataset;       /* Hugging Face path and name: "super_glue/boolq" */
    const char *split;         /* "validation" or "test" */
    const char *default_file;  /* under the data folder: "eval/boolq/val.jsonl" */
    int expected_items;        /* items of the full split */
    bool has_acc_norm;         /* the harness computes acc_norm too */
    enum task_metric paper_metric; /* what the paper reports */
    const char *prompt;        /* the context, as a template */
    const char *continuation;  /* the continuations, as a template */
} task_info;

const task_info *task_info_get(enum task_id id);
/* By name ("arc_easy"); NULL if unknown. */
const task_info *task_info_find(const char *name);
enum task_id task_info_id(const task_info *t);

#define TASK_MAX_CHOICES 16

/* One document: its choices as (context, continuation) requests. */
typedef struct {
    int n;                         /* choices */
    char *ctx[TASK_MAX_CHOICES];   /* context of each choice (may point to the same string) */
    char *cont[TASK_MAX_CHOICES];  /* continuation: " " + choice */
    int chars[TASK_MAX_CHOICES];   /* code points of the choice without the space (acc_norm) */
    int gold;                      /* index of the right choice */
    int line;                      /* line of the file where the item starts */
} task_item;

typedef struct {
    const task_info *info;
    char *path;
    const char *format;   /* "hf-jsonl", "superglue-jsonl", "piqa-jsonl+labels", ... */
    const char *note;     /* how the file differs from the harness's data, or NULL */
    task_item *items;
    int n_items;
} task_data;

/* Read a task file; the format is recognised from the content. */
void task_load(task_data *d, const task_info *info, const char *path);
void task_data_free(task_data *d);

/* Decisions, as the harness makes them. */
int task_argmax(const double *v, int n);                          /* first index on ties */
int task_argmax_norm(const double *ll, const int *chars, int n);  /* argmax of ll / chars */
/* sqrt(p(1-p)/(n-1)) for `correct` right answers out of n (the harness's
 * mean_stderr of 0/1 values); NAN for n < 2. */
double task_stderr(int64_t correct, int64_t n);

/* Text helpers (exposed for tests). Each returns a new string. */
char *task_hellaswag_preprocess(const char *s);
char *task_py_capitalize(const char *s); /* Python's str.capitalize */
char *task_py_strip(const char *s);      /* Python's str.strip() */

#endif
