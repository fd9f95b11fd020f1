/* teacher.c - the teacher of a distillation run (teacher.h): a model forwarded
 * beside the student, or a logits stream; the vocabulary check; the dump.
 *
 * Letters: b samples of a micro-batch, T its longest sample, N = b*T rows, V
 * vocabulary, k kept tokens a position. */
#include "train/teacher.h"

#include <math.h>
#include <string.h>

#include "base/progress.h"
#include "base/util.h"
#include "compute/forward.h"
#include "format/logits.h"

struct teacher {
    const model *m;      /* a live teacher, or NULL */
    forward_state fs;    /* its passes */
    logits_file lf;      /* a logits stream (m NULL) */
    char fingerprint[17];
    distill_teacher out; /* the last batch's rows */
    int32_t *ids;        /* (N, k) the stream's rows of the batch */
    float *logp;         /* (N, k) */
    float *rest;         /* (N) */
    size_t rows;         /* rows ids, logp and rest hold */
};

void teacher_check_vocab(const model *student, const tokenizer *stok, const model *t, const tokenizer *ttok,
                         const char *name)
{
    int V = student->cfg.vocab;
    if (t->cfg.vocab != V)
        die("%s: the teacher's vocabulary has %d tokens, the model's %d: a teacher must share the model's "
            "vocabulary", name, t->cfg.vocab, V);
    if (!stok || !ttok)
        return;
    int n = tokenizer_vocab_size(stok);
    if (tokenizer_vocab_size(ttok) != n)
        die("%s: the teacher's tokenizer has %d tokens, the model's %d: a teacher must share the model's "
            "vocabulary", name, tokenizer_vocab_size(ttok), n);
    for (int id = 0; id < n; id++) {
        size_t la, lb, ra, rb;
        const char *a = tokenizer_piece(stok, id, &la), *b = tokenizer_piece(ttok, id, &lb);
        if (la == lb && !memcmp(a, b, la))
            continue;
        const char *pa = tokenizer_piece_raw(stok, id, &ra), *pb = tokenizer_piece_raw(ttok, id, &rb);
        if (ra != rb || memcmp(pa, pb, ra))
            die("%s: token %d is '%.*s' in the teacher's vocabulary and '%.*s' in the model's: a teacher must "
                "share the model's vocabulary", name, id, (int)lb, b, (int)la, a);
    }
}

teacher *teacher_live(const model *m, int B, int T)
{
    teacher *t = xcalloc(1, sizeof *t);
    t->m = m;
    forward_state_init(&t->fs, m, B, T);
    model_bound_fingerprint(m, t->fingerprint);
    return t;
}

teacher *teacher_from_logits(const char *path, const instruct_data *d, int V)
{
    teacher *t = xcalloc(1, sizeof *t);
    logits_read(&t->lf, path, d, V);
    memcpy(t->fingerprint, t->lf.fingerprint, sizeof t->fingerprint);
    return t;
}

void teacher_free(teacher *t)
{
    if (!t)
        return;
    if (t->m)
        forward_state_free(&t->fs);
    else
        logits_free(&t->lf);
    free(t->ids), free(t->logp), free(t->rest);
    free(t);
}

double teacher_temperature(const teacher *t) { return t->m ? 0 : t->lf.temperature; }

json_t *teacher_json(const teacher *t)
{
    json_t *j = json_pack("{s:s,s:s}", "fingerprint", t->fingerprint, "from", t->m ? "model" : "logits");
    if (!t->m) {
        json_object_set_new(j, "top_k", json_integer(t->lf.k));
        json_object_set_new(j, "temperature", json_real(t->lf.temperature));
    }
    return j;
}

const distill_teacher *teacher_batch(teacher *t, const instruct_data *d, const int *idx, int b, int T,
                                     const int *tokens)
{
    if (t->m) {
        forward_state_set_batch(&t->fs, b, T);
        model_forward(t->m, &t->fs, tokens);
        t->out = (distill_teacher){.k = 0, .logits = t->fs.logits};
        return &t->out;
    }
    int k = t->lf.k;
    size_t N = (size_t)b * T;
    if (N > t->rows) {
        free(t->ids), free(t->logp), free(t->rest);
        t->ids = xmalloc(N * k * sizeof *t->ids);
        t->logp = xmalloc(N * k * sizeof *t->logp);
        t->rest = xmalloc(N * sizeof *t->rest);
        t->rows = N;
    }
    for (int j = 0; j < b; j++) {
        int64_t p = 0, o = d->off[idx[j]];
        for (int i = 0; i < instruct_len(d, idx[j]); i++)
            if (d->targets[o + i] >= 0) {
                size_t row = (size_t)j * T + i;
                logits_row(&t->lf, idx[j], p++, t->ids + row * k, t->logp + row * k, t->rest + row);
            }
    }
    t->out = (distill_teacher){.k = k, .ids = t->ids, .logp = t->logp, .rest = t->rest};
    return &t->out;
}

void teacher_dump(const model *m, const instruct_data *d, int k, double tau, int b, const char *path, int argc,
                  char **argv)
{
    int V = m->cfg.vocab, T = instruct_max_len(d);
    if (k < 1 || k >= V)
        die("top-k %d must be below the vocabulary's %d tokens", k, V);
    char fp[17];
    model_bound_fingerprint(m, fp);
    forward_state fs;
    forward_state_init(&fs, m, b, T);
    int *tokens = xmalloc((size_t)b * T * sizeof *tokens), *targets = xmalloc((size_t)b * T * sizeof *targets);
    int *idx = xmalloc((size_t)b * sizeof *idx);
    uint8_t *rows = xmalloc((size_t)T * logits_row_bytes(k)), *mark = xcalloc((size_t)V, 1);
    int32_t *ids = xmalloc((size_t)k * sizeof *ids);
    float *logp = xmalloc((size_t)k * sizeof *logp);
    stream_writer w;
    logits_write_open(&w, path, argc, argv, m, fp, d, k, tau);
    progress pr;
    progress_start(&pr, "teacher", "tok", d->tokens);
    int64_t done = 0;
    for (int s0 = 0; s0 < d->n; s0 += b) {
        int nb = d->n - s0 < b ? d->n - s0 : b, Tb;
        for (int j = 0; j < nb; j++)
            idx[j] = s0 + j;
        done += instruct_batch(d, idx, nb, tokens, targets, &Tb);
        forward_state_set_batch(&fs, nb, Tb);
        model_forward(m, &fs, tokens);
        for (int j = 0; j < nb; j++) {
            int n = 0;
            for (int i = 0; i < Tb; i++) {
                if (targets[j * Tb + i] < 0)
                    continue;
                float rest;
                distill_topk(fs.logits + ((size_t)j * Tb + i) * V, V, k, (float)tau, ids, logp, &rest, mark);
                uint8_t *row = rows + (size_t)n++ * logits_row_bytes(k);
                memcpy(row, ids, (size_t)k * 4);
                memcpy(row + (size_t)k * 4, logp, (size_t)k * 4);
                memcpy(row + (size_t)k * 8, &rest, 4);
            }
            if (n)
                logits_write_sample(&w, s0 + j, n, rows, k);
        }
        progress_update(&pr, done);
    }
    progress_end(&pr, done);
    stream_writer_close(&w);
    forward_state_free(&fs);
    free(tokens), free(targets), free(idx), free(rows), free(mark), free(ids), free(logp);
}
