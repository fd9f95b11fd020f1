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

void zeroshot_run(const model *m, struct lora_set *lora, const tokenizer *tok, const task_info *task, const char *path,
                  const zeroshot_options *o, report *rep, zeroshot_result *res)
{
    double t0 = now_seconds(), c0 = cpu_seconds();
    memset(res, 0, sizeof *res);
    task_data d;
    task_load(&d, task, path);
    int n_all = d.n_items;
    if (o->limit > 0 && o->limit < n_all)
        n_all = (int)o->limit;
    int shards = o->shards > 0 ? o->shards : 1, shard = o->shards > 0 ? o->shard : 0;
    /* this run's items, their requests, their tokens */
    int n_items = 0, n_req = 0;
    for (int i = shard; i < n_all; i += shards) {
        n_items++;
        n_req += d.items[i].n;
    }
    int *item_of = xmalloc((size_t)(n_items ? n_items : 1) * sizeof *item_of);
    loglik_request *req = xcalloc((size_t)(n_req ? n_req : 1), sizeof *req);
    int **ctx_ids = xcalloc((size_t)(n_req ? n_req : 1), sizeof *ctx_ids); /* owned where not shared */
    int **cont_ids = xcalloc((size_t)(n_req ? n_req : 1), sizeof *cont_ids);
    loglik_request *run = xcalloc((size_t)(n_req ? n_req : 1), sizeof *run); /* the distinct ones */
    int *run_of = xmalloc((size_t)(n_req ? n_req : 1) * sizeof *run_of);
    int n_run = 0;
    int max_len = zeroshot_max_length(m);
    int gmask, sop;
    bool bos;
    enum prompt_mask mask = prompt_mask_resolve(m, tok, o->mask, &gmask, &sop, &bos);
    int extra = mask == PROMPT_MASK_PREFIX ? 2 : 0; /* [gMASK] <sop> read between them */
    int k = 0, q = 0;
    for (int i = shard; i < n_all; i += shards) {
        const task_item *it = &d.items[i];
        item_of[k++] = i;
        for (int c = 0; c < it->n; c++, q++) {
            loglik_request *r = &req[q];
            int shared = -1;
            for (int e = 0; e < c; e++)
                if (it->ctx[e] == it->ctx[c])
                    shared = e;
            if (shared >= 0) {
                r->ctx = req[q - c + shared].ctx;
                r->n_ctx = req[q - c + shared].n_ctx;
            } else {
                r->n_ctx = (int)tokenizer_encode(tok, it->ctx[c], strlen(it->ctx[c]), bos, &ctx_ids[q]);
                r->ctx = ctx_ids[q];
            }
            r->n_cont = (int)tokenizer_encode(tok, it->cont[c], strlen(it->cont[c]), false, &cont_ids[q]);
            r->cont = cont_ids[q];
            r->item = i;
            /* a choice repeated within an item is scored once, so that the tie between
             * the copies is exact whatever the batch */
            run_of[q] = n_run;
            for (int e = 0; e < c; e++)
                if (it->ctx[e] == it->ctx[c] && !strcmp(it->cont[e], it->cont[c]))
                    run_of[q] = run_of[q - c + e];
            if (run_of[q] == n_run)
                run[n_run++] = *r;
            if (r->n_ctx + r->n_cont + extra > max_len + 1)
                res->truncated++;
            if (r->n_ctx < 1)
                die("%s:%d: the context encodes to no tokens", d.path, it->line);
        }
    }
    /* scoring */
    loglik_engine e;
    loglik_init(&e, m, lora, max_len, o->budget);
    e.what = task->name;
    e.gmask = gmask;
    e.sop = sop;
    progress p;
    progress_start(&p, task->name, "req", n_run);
    loglik_run(&e, run, n_run, &p);
    progress_end(&p, n_run);
    loglik_free(&e);
    for (int i = 0; i < n_req; i++) {
        req[i].ll = run[run_of[i]].ll;
        req[i].scored = run[run_of[i]].scored;
        res->clipped += req[i].scored < req[i].n_cont;
    }
    if (res->clipped)
        warn("%s: %lld continuations are longer than the %d tokens the model can read%s; each was scored on its "
             "last %d tokens (the harness stops on them)",
             task->name, (long long)res->clipped, max_len - extra / 2, extra ? " after [gMASK] <sop>" : "",
             max_len - extra / 2);
    /* decisions */
    int64_t correct = 0, correct_norm = 0;
    q = 0;
    for (int j = 0; j < n_items; j++) {
        const task_item *it = &d.items[item_of[j]];
        double ll[TASK_MAX_CHOICES];
        for (int c = 0; c < it->n; c++)
            ll[c] = req[q + c].ll;
        int pred = task_argmax(ll, it->n), pred_norm = task_argmax_norm(ll, it->chars, it->n);
        correct += pred == it->gold;
        correct_norm += pred_norm == it->gold;
        if (o->items) {
            json_t *ctxs = json_array(), *conts = json_array(), *lls = json_array(), *cids = json_array(),
                   *xids = json_array(), *chars = json_array();
            for (int c = 0; c < it->n; c++) {
                json_array_append_new(ctxs, json_string(it->ctx[c]));
                json_array_append_new(conts, json_string(it->cont[c]));
                json_array_append_new(lls, isfinite(ll[c]) ? json_real(ll[c]) : json_null());
                json_array_append_new(cids, ids_json(req[q + c].ctx, req[q + c].n_ctx));
                json_array_append_new(xids, ids_json(req[q + c].cont, req[q + c].n_cont));
                json_array_append_new(chars, json_integer(it->chars[c]));
            }
            json_t *rec = json_pack("{s:s,s:i,s:i,s:i,s:o,s:o,s:o,s:o,s:o,s:o,s:i}", "task", task->name, "index",
                                    item_of[j], "line", it->line, "gold", it->gold, "context", ctxs, "continuation",
                                    conts, "context_ids", cids, "continuation_ids", xids, "chars", chars, "ll", lls,
                                    "pred", pred);
            if (task->has_acc_norm)
                json_object_set_new(rec, "pred_norm", json_integer(pred_norm));
            report_add_item(rep, rec);
        }
        q += it->n;
    }
    report_add_accuracy(rep, task->name, task_metric_name(TASK_ACC), correct, n_items, task->paper_metric == TASK_ACC,
                        protocol(m, tok, &d, o, TASK_ACC, mask, bos));
    if (task->has_acc_norm)
        report_add_accuracy(rep, task->name, task_metric_name(TASK_ACC_NORM), correct_norm, n_items,
                            task->paper_metric == TASK_ACC_NORM, protocol(m, tok, &d, o, TASK_ACC_NORM, mask, bos));
    size_t pl = strlen(path), dl = strlen(task->default_file);
    bool shipped = pl >= dl && !strcmp(path + pl - dl, task->default_file);
    if (!o->limit && shipped && d.n_items != task->expected_items)
        warn("%s: %d items, but the %s split of %s has %d", d.path, d.n_items, task->split, task->dataset,
             task->expected_items);
    for (int i = 0; i < n_req; i++) {
        free(ctx_ids[i]);
        free(cont_ids[i]);
    }
    free(ctx_ids);
    free(cont_ids);
    free(req);
    free(run);
    free(run_of);
    free(item_of);
    res->items = n_items;
    res->requests = n_req;
    res->seconds = now_seconds() - t0;
    res->cpu_seconds = cpu_seconds() - c0;
    task_data_free(&d);
}
