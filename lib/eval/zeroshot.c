/* zeroshot.c - one zero-shot task end to end (see zeroshot.h). */
#include "eval/zeroshot.h"

#include <math.h>
#include <string.h>
#include <time.h>

#include "base/progress.h"
#include "base/util.h"
#include "eval/loglik.h"

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int zeroshot_max_length(const model *m) { return m->cfg.max_seq > 0 ? m->cfg.max_seq : 2048; }

static json_t *ids_json(const int *ids, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, json_integer(ids[i]));
    return a;
}

/* What goes before a request's context (prompt_mask_resolve's bos). */
static const char *bos_rule(const tokenizer *tok, bool bos)
{
    const int *ids;
    if (!bos || tokenizer_prefix(tok, &ids) == 0)
        return strcmp(tokenizer_format(tok), "hf-json") ? "none" : "none (the tokenizer's post-processor adds none)";
    if (!strcmp(tokenizer_format(tok), "hf-json"))
        return "BOS before the context, as the tokenizer's post-processor puts it";
    return "[gMASK] sop before the context, as ChatGLM2's tokenizer puts them";
}

static json_t *protocol(const model *m, const tokenizer *tok, const task_data *d, const zeroshot_options *o,
                        enum task_metric metric, enum prompt_mask mask, bool bos)
{
    bool hf = !strcmp(tokenizer_format(tok), "hf-json");
    bool glm = mask == PROMPT_MASK_PREFIX;
    char form[512];
    prompt_form_describe(form, sizeof form, m, mask, "context", "continuation", "continuation", "",
                         "context continuation");
    const char *truncation =
        glm ? "left: the last max_length-1-n tokens of the context, n the continuation's, are read before [gMASK] "
              "<sop> (a continuation of max_length-1 tokens or more is scored on its last max_length-1 tokens, "
              "after [gMASK] <sop> alone)"
            : "left: the last max_length+1 tokens of context+continuation, minus the last, are read (a "
              "continuation longer than max_length, which the harness refuses, is scored on its last max_length "
              "tokens)";
    const task_info *t = d->info;
    const char *decision = metric == TASK_ACC_NORM
                               ? "argmax of ll / (Unicode characters of the choice, without the leading space), "
                                 "first on ties"
                               : "argmax of ll, first on ties";
    json_t *p = json_pack(
        "{s:s,s:s,s:s,s:s,s:s,s:i,s:s,s:s,s:i,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "harness",
        "lm-evaluation-harness 4d21ab6b (LLM-Pruner's), 0-shot", "dataset", t->dataset, "split", t->split, "file",
        d->path, "format", d->format, "items_in_file", d->n_items, "prompt", t->prompt, "continuation",
        t->continuation, "max_length", zeroshot_max_length(m), "truncation", truncation, "bos", bos_rule(tok, bos),
        "tokenization",
        hf ? "context and continuation tokenized separately (byte-level BPE)"
           : "context and continuation tokenized separately, each with the SentencePiece dummy prefix",
        "tokenizer", tokenizer_format(tok), "score", "sum of natural-log probabilities of the continuation tokens",
        "decision", decision, "stderr", "sqrt(p(1-p)/(n-1))");
    json_object_set_new(p, "mask", json_string(prompt_mask_name(mask)));
    json_object_set_new(p, "prompt_form", json_string(form));
    json_object_set_new(p, "limit", o->limit > 0 ? json_integer(o->limit) : json_null());
    if (d->note)
        json_object_set_new(p, "note", json_string(d->note));
    return p;
}

/* One run's requests: this shard's items, every choice tokenized, and the
 * distinct ones scored. */
typedef struct {
    int n_items, n_req, n_run;
    int *item_of;          /* (n_items) the item each is */
    loglik_request *req;   /* (n_req) every choice of every item, item by item */
    int **ctx_ids, **cont_ids; /* (n_req) owned where not shared */
    loglik_request *run;   /* (n_run) the distinct ones */
    int *run_of;           /* (n_req) which of them each is */
} requests;

/* The requests of items shard, shard + shards, ... < n_all: the context tokenized
 * once per item where choices share it (bos: with the tokenizer's prefix), a
 * choice repeated within an item scored once (so that the tie between the
 * copies is exact whatever the batch); counts the requests that will be
 * truncated (extra: tokens read between context and continuation). */
static void build_requests(requests *rq, const task_data *d, const tokenizer *tok, int shard, int shards, int n_all,
                           bool bos, int extra, int max_len, zeroshot_result *res)
{
    memset(rq, 0, sizeof *rq);
    for (int i = shard; i < n_all; i += shards) {
        rq->n_items++;
        rq->n_req += d->items[i].n;
    }
    size_t nr = (size_t)(rq->n_req ? rq->n_req : 1);
    rq->item_of = xmalloc((size_t)(rq->n_items ? rq->n_items : 1) * sizeof *rq->item_of);
    rq->req = xcalloc(nr, sizeof *rq->req);
    rq->ctx_ids = xcalloc(nr, sizeof *rq->ctx_ids);
    rq->cont_ids = xcalloc(nr, sizeof *rq->cont_ids);
    rq->run = xcalloc(nr, sizeof *rq->run);
    rq->run_of = xmalloc(nr * sizeof *rq->run_of);
    int k = 0, q = 0;
    for (int i = shard; i < n_all; i += shards) {
        const task_item *it = &d->items[i];
        rq->item_of[k++] = i;
        for (int c = 0; c < it->n; c++, q++) {
            loglik_request *r = &rq->req[q];
            int shared = -1;
            for (int e = 0; e < c; e++)
                if (it->ctx[e] == it->ctx[c])
                    shared = e;
            if (shared >= 0) {
                r->ctx = rq->req[q - c + shared].ctx;
                r->n_ctx = rq->req[q - c + shared].n_ctx;
            } else {
                r->n_ctx = (int)tokenizer_encode(tok, it->ctx[c], strlen(it->ctx[c]), bos, &rq->ctx_ids[q]);
                r->ctx = rq->ctx_ids[q];
            }
            r->n_cont = (int)tokenizer_encode(tok, it->cont[c], strlen(it->cont[c]), false, &rq->cont_ids[q]);
            r->cont = rq->cont_ids[q];
            r->item = i;
            rq->run_of[q] = rq->n_run;
            for (int e = 0; e < c; e++)
                if (it->ctx[e] == it->ctx[c] && !strcmp(it->cont[e], it->cont[c]))
                    rq->run_of[q] = rq->run_of[q - c + e];
            if (rq->run_of[q] == rq->n_run)
                rq->run[rq->n_run++] = *r;
            if (r->n_ctx + r->n_cont + extra > max_len + 1)
                res->truncated++;
            if (r->n_ctx < 1)
                die("%s:%d: the context encodes to no tokens", d->path, it->line);
        }
    }
}

static void requests_free(requests *rq)
{
    for (int i = 0; i < rq->n_req; i++) {
        free(rq->ctx_ids[i]);
        free(rq->cont_ids[i]);
    }
    free(rq->ctx_ids);
    free(rq->cont_ids);
    free(rq->req);
    free(rq->run);
    free(rq->run_of);
    free(rq->item_of);
}

/* The log-likelihood of every distinct request, given to its copies; warns of
 * continuations clipped to what the model reads. */
static void score_requests(requests *rq, const model *m, struct lora_set *lora, const task_info *task, int max_len,
                           int gmask, int sop, int budget, int extra, zeroshot_result *res)
{
    loglik_engine e;
    loglik_init(&e, m, lora, max_len, budget);
    e.what = task->name;
    e.gmask = gmask;
    e.sop = sop;
    progress p;
    progress_start(&p, task->name, "req", rq->n_run);
    loglik_run(&e, rq->run, rq->n_run, &p);
    progress_end(&p, rq->n_run);
    loglik_free(&e);
    for (int i = 0; i < rq->n_req; i++) {
        rq->req[i].ll = rq->run[rq->run_of[i]].ll;
        rq->req[i].scored = rq->run[rq->run_of[i]].scored;
        res->clipped += rq->req[i].scored < rq->req[i].n_cont;
    }
    if (res->clipped)
        warn("%s: %lld continuations are longer than the %d tokens the model can read%s; each was scored on its "
             "last %d tokens (the harness stops on them)",
             task->name, (long long)res->clipped, max_len - extra / 2, extra ? " after [gMASK] <sop>" : "",
             max_len - extra / 2);
}

/* An item's record for the report (--items): its choices, their ids and scores, the predictions. */
static json_t *item_record(const task_info *task, const task_item *it, int index, const loglik_request *req,
                           const double *ll, int pred, int pred_norm)
{
    json_t *ctxs = json_array(), *conts = json_array(), *lls = json_array(), *cids = json_array(),
           *xids = json_array(), *chars = json_array();
    for (int c = 0; c < it->n; c++) {
        json_array_append_new(ctxs, json_string(it->ctx[c]));
        json_array_append_new(conts, json_string(it->cont[c]));
        json_array_append_new(lls, isfinite(ll[c]) ? json_real(ll[c]) : json_null());
        json_array_append_new(cids, ids_json(req[c].ctx, req[c].n_ctx));
        json_array_append_new(xids, ids_json(req[c].cont, req[c].n_cont));
        json_array_append_new(chars, json_integer(it->chars[c]));
    }
    json_t *rec = json_pack("{s:s,s:i,s:i,s:i,s:o,s:o,s:o,s:o,s:o,s:o,s:i}", "task", task->name, "index", index,
                            "line", it->line, "gold", it->gold, "context", ctxs, "continuation", conts, "context_ids",
                            cids, "continuation_ids", xids, "chars", chars, "ll", lls, "pred", pred);
    if (task->has_acc_norm)
        json_object_set_new(rec, "pred_norm", json_integer(pred_norm));
    return rec;
}

/* Each item's choice by log-likelihood and by length-normalized log-likelihood:
 * how many are right; with items, each one's record. */
static void decide(const requests *rq, const task_data *d, const task_info *task, bool items, report *rep,
                   int64_t *correct, int64_t *correct_norm)
{
    *correct = *correct_norm = 0;
    for (int j = 0, q = 0; j < rq->n_items; j++) {
        const task_item *it = &d->items[rq->item_of[j]];
        double ll[TASK_MAX_CHOICES];
        for (int c = 0; c < it->n; c++)
            ll[c] = rq->req[q + c].ll;
        int pred = task_argmax(ll, it->n), pred_norm = task_argmax_norm(ll, it->chars, it->n);
        *correct += pred == it->gold;
        *correct_norm += pred_norm == it->gold;
        if (items)
            report_add_item(rep, item_record(task, it, rq->item_of[j], rq->req + q, ll, pred, pred_norm));
        q += it->n;
    }
}

void zeroshot_run(const model *m, struct lora_set *lora, const tokenizer *tok, const task_info *task, const char *path,
                  const zeroshot_options *o, report *rep, zeroshot_result *res)
{
    double t0 = now_seconds(), c0 = cpu_seconds();
    memset(res, 0, sizeof *res);
    task_data d;
    task_load(&d, task, path);
    int n_all = o->limit > 0 && o->limit < d.n_items ? (int)o->limit : d.n_items;
    int shards = o->shards > 0 ? o->shards : 1, shard = o->shards > 0 ? o->shard : 0;
    int max_len = zeroshot_max_length(m), gmask, sop;
    bool bos;
    enum prompt_mask mask = prompt_mask_resolve(m, tok, o->mask, &gmask, &sop, &bos);
    int extra = mask == PROMPT_MASK_PREFIX ? 2 : 0; /* [gMASK] <sop> read between them */

    requests rq;
    build_requests(&rq, &d, tok, shard, shards, n_all, bos, extra, max_len, res);
    score_requests(&rq, m, lora, task, max_len, gmask, sop, o->budget, extra, res);
    int64_t correct, correct_norm;
    decide(&rq, &d, task, o->items, rep, &correct, &correct_norm);
    report_add_accuracy(rep, task->name, task_metric_name(TASK_ACC), correct, rq.n_items,
                        task->paper_metric == TASK_ACC, protocol(m, tok, &d, o, TASK_ACC, mask, bos));
    if (task->has_acc_norm)
        report_add_accuracy(rep, task->name, task_metric_name(TASK_ACC_NORM), correct_norm, rq.n_items,
                            task->paper_metric == TASK_ACC_NORM, protocol(m, tok, &d, o, TASK_ACC_NORM, mask, bos));
    size_t pl = strlen(path), dl = strlen(task->default_file);
    bool shipped = pl >= dl && !strcmp(path + pl - dl, task->default_file);
    if (!o->limit && shipped && d.n_items != task->expected_items)
        warn("%s: %d items, but the %s split of %s has %d", d.path, d.n_items, task->split, task->dataset,
             task->expected_items);
    res->items = rq.n_items;
    res->requests = rq.n_req;
    requests_free(&rq);
    res->seconds = now_seconds() - t0;
    res->cpu_seconds = cpu_seconds() - c0;
    task_data_free(&d);
}
