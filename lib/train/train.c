/* train.c - the LoRA trainer: micro-batches and gradient accumulation, AdamW with
 * the linear schedule, validation, the best adapter, and the state that lets a
 * stopped run continue exactly where it was.
 *
 * Determinism. Everything a step computes follows from the state: the epoch's
 * order is a seeded shuffle (kept in the state), the dropout masks are a hash of
 * (seed, pass) with pass = step * 2^20 + micro-batch (lora.h), and the state holds
 * the adapters, AdamW's moments, the gradient accumulated so far in the step,
 * the loss sums and the curve exactly (floats as stored, doubles as float64). So
 * a run resumed from any saved state computes the same numbers, in the same
 * order, as the run that saved it (with one thread: OpenBLAS's threaded kernels
 * may sum in another order).
 *
 * Letters: S samples, b sequences of a micro-batch, T its longest sample, P
 * adapter parameters, V vocabulary. */
#include "train/train.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/progress.h"
#include "base/rng.h"
#include "base/util.h"
#include "compute/backward.h"
#include "compute/forward.h"
#include "compute/lora.h"
#include "format/stream.h"

void train_options_default(train_options *o)
{
    memset(o, 0, sizeof *o);
    o->lr = 1e-4;
    o->warmup = 100;
    o->batch = 64;
    o->micro_batch = 4;
    o->epochs = 2;
    o->eval_every = 100;
    o->save_every = 200;
    o->log_every = 10;
    o->max_grad_norm = 1.0;
    o->beta1 = 0.9, o->beta2 = 0.999, o->eps = 1e-8, o->weight_decay = 0;
    o->seed = 42;
}

double train_lr(double lr, int warmup, int64_t total, int64_t s)
{
    if (s < warmup)
        return lr * (double)s / (double)warmup;
    double d = (double)(total - warmup > 1 ? total - warmup : 1);
    double f = (double)(total - s) / d;
    return lr * (f > 0 ? f : 0);
}

/* ------------------------------------------------------------------ the state */

typedef struct {
    int64_t step;        /* optimiser steps done */
    int micro;           /* micro-batches of the current step done */
    int perm_epoch;      /* the epoch perm orders (-1: none yet) */
    int *perm;           /* (n_train) indices into the training samples */
    float *m1, *m2;      /* (P) AdamW's moments */
    float *best;         /* (P) the adapter of the lowest validation loss so far */
    double best_val;     /* NAN: none yet */
    int64_t best_step;   /* -1: none yet */
    double first_val;    /* validation loss before training (NAN: none) */
    double step_loss;    /* sum of the current step's micro-batch losses */
    int64_t step_tokens; /* tokens of the current step's micro-batches */
    double log_loss;     /* sum of the step losses since the last curve point */
    int log_n;
    double last_loss;    /* the train loss of the last curve point (NAN: none) */
    double last_lr;      /* the learning rate of the last step */
    int64_t tokens;      /* trained on */
    json_t *curve;
    bool done;
} tstate;

/* What a state must have been made with: the options that change the result, the
 * data and the model. */
static json_t *identity(const lora_set *s, const instruct_data *d, int n_train, int n_val, const train_options *o)
{
    char *targets = lora_targets_string(s->arch, s->targets);
    json_t *j = json_pack(
        "{s:s,s:s,s:s,s:i,s:i,s:i,s:i,s:f,s:f,s:s,s:f,s:i,s:i,s:i,s:i,s:i,s:i,s:f,s:f,s:f,s:f,s:f,s:I}", "model",
        s->fingerprint, "data", d->xxh64, "mode", d->text ? "text" : "alpaca", "cutoff", d->cutoff, "train",
        n_train, "val", n_val, "rank", s->rank, "alpha", s->alpha, "dropout", s->dropout, "targets", targets,
        "lr", o->lr, "warmup", o->warmup, "batch", o->batch, "micro_batch", o->micro_batch, "epochs", o->epochs,
        "eval_every", o->eval_every, "log_every", o->log_every, "max_grad_norm", o->max_grad_norm, "beta1", o->beta1,
        "beta2", o->beta2, "eps", o->eps, "weight_decay", o->weight_decay, "seed", (json_int_t)o->seed);
    free(targets);
    return j;
}

/* How a message names identity key key: the program's name for it, else the
 * library's words for the keys that are not plain settings, else the key. */
static const char *key_name(const train_options *o, const char *key)
{
    static const struct {
        const char *key, *name;
    } names[] = {{"model", "the model (fingerprint)"},  {"data", "the data (token digest)"},
                 {"mode", "the data mode (text or Alpaca)"}, {"train", "training samples"},
                 {"val", "validation samples"}};
    const char *name = o->key_name ? o->key_name(key) : NULL;
    if (name)
        return name;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(key, names[i].key))
            return names[i].name;
    return key;
}

static char *state_path(const char *dir) { return path_join(dir, "state.pare"); }

/* fsync a folder, so that a rename in it survives a crash. */
static void sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0 || fsync(fd) != 0)
        die("cannot sync '%s': %s", dir, strerror(errno));
    close(fd);
}

static void write_array(stream_writer *w, const char *name, const void *data, size_t bytes)
{
    stream_begin_record(w, "array", 3);
    mp_pack_kv_str(&w->pk, "name", name);
    stream_write_payload(w, "data", data, bytes);
}

/* Write the state atomically: a temporary file, fsync, rename, fsync the folder. */
static void save_state(const char *dir, const tstate *st, const lora_set *s, int n_train, json_t *id)
{
    char *path = state_path(dir);
    stream_writer w;
    stream_writer_open(&w, path);
    stream_write_header(&w, "lora-state", 0, NULL, 16);
    mp_pack_str(&w.pk, "identity");
    mp_pack_json(&w.pk, id);
    mp_pack_kv_int(&w.pk, "step", st->step);
    mp_pack_kv_int(&w.pk, "micro", st->micro);
    mp_pack_kv_int(&w.pk, "perm_epoch", st->perm_epoch);
    mp_pack_kv_double(&w.pk, "best_val", st->best_val);
    mp_pack_kv_int(&w.pk, "best_step", st->best_step);
    mp_pack_kv_double(&w.pk, "first_val", st->first_val);
    mp_pack_kv_double(&w.pk, "step_loss", st->step_loss);
    mp_pack_kv_int(&w.pk, "step_tokens", st->step_tokens);
    mp_pack_kv_double(&w.pk, "log_loss", st->log_loss);
    mp_pack_kv_int(&w.pk, "log_n", st->log_n);
    mp_pack_kv_double(&w.pk, "last_loss", st->last_loss);
    mp_pack_kv_double(&w.pk, "last_lr", st->last_lr);
    mp_pack_kv_int(&w.pk, "tokens", st->tokens);
    mp_pack_str(&w.pk, "done");
    if (st->done)
        msgpack_pack_true(&w.pk);
    else
        msgpack_pack_false(&w.pk);
    mp_pack_str(&w.pk, "curve");
    mp_pack_json(&w.pk, st->curve);
    stream_end_record(&w);
    size_t P = s->n_params * sizeof(float);
    write_array(&w, "perm", st->perm, (size_t)n_train * sizeof *st->perm);
    write_array(&w, "params", s->params, P);
    write_array(&w, "grads", s->grads, P);
    write_array(&w, "m1", st->m1, P);
    write_array(&w, "m2", st->m2, P);
    write_array(&w, "best", st->best, P);
    stream_writer_close(&w);
    sync_dir(dir);
    free(path);
}

static int64_t header_int(stream_reader *r, const char *key)
{
    int64_t v;
    if (!mp_int(mp_get(&r->header, key), &v))
        stream_die(r, "state header lacks '%s'", key);
    return v;
}

static double header_double(stream_reader *r, const char *key)
{
    double v;
    if (!mp_double(mp_get(&r->header, key), &v))
        stream_die(r, "state header lacks '%s'", key);
    return v;
}

/* Load the state in o->state_dir into st and s; false when there is none. Dies on a state
 * made with other options, data or model, and on one whose counters lie outside the run of
 * total steps (a broken or forged file whose checksum holds: a negative step or micro-batch
 * would index before the data order). */
static bool load_state(const train_options *o, tstate *st, lora_set *s, int n_train, json_t *id, int64_t total)
{
    const char *dir = o->state_dir;
    char *path = state_path(dir);
    if (!path_exists(path)) {
        free(path);
        return false;
    }
    stream_reader r;
    stream_reader_open(&r, path, "lora-state");
    const msgpack_object *io = mp_get(&r.header, "identity");
    if (!io)
        stream_die(&r, "state header lacks its identity");
    json_t *was = mp_to_json(io);
    const char *key;
    json_t *now;
    json_object_foreach(id, key, now)
    {
        json_t *then = json_object_get(was, key);
        if (then && json_equal(then, now))
            continue;
        char *a = then ? json_dumps(then, JSON_ENCODE_ANY | JSON_COMPACT) : xstrdup("nothing");
        char *b = json_dumps(now, JSON_ENCODE_ANY | JSON_COMPACT);
        die("%s: the state there was made with other options or inputs: %s was %s, this run has %s "
            "(run the command that made it, or use another state folder)",
            dir, key_name(o, key), a, b);
    }
    json_decref(was);
    int64_t step = header_int(&r, "step"), micro = header_int(&r, "micro"), perm_epoch = header_int(&r, "perm_epoch"),
            best_step = header_int(&r, "best_step"), log_n = header_int(&r, "log_n");
    int64_t n_micro = (o->batch + o->micro_batch - 1) / o->micro_batch;
    if (step < 0 || step > total || micro < 0 || micro >= n_micro || perm_epoch < -1 || perm_epoch >= o->epochs ||
        best_step < -1 || best_step > step || log_n < 0 || log_n > step)
        stream_die(&r, "corrupt state: step %lld of %lld, micro-batch %lld of %lld, data order of epoch %lld, best "
                   "step %lld, %lld steps since the last curve point",
                   (long long)step, (long long)total, (long long)micro, (long long)n_micro, (long long)perm_epoch,
                   (long long)best_step, (long long)log_n);
    st->step = step;
    st->micro = (int)micro;
    st->perm_epoch = (int)perm_epoch;
    st->best_val = header_double(&r, "best_val");
    st->best_step = best_step;
    st->first_val = header_double(&r, "first_val");
    st->step_loss = header_double(&r, "step_loss");
    st->step_tokens = header_int(&r, "step_tokens");
    st->log_loss = header_double(&r, "log_loss");
    st->log_n = (int)log_n;
    st->last_loss = header_double(&r, "last_loss");
    st->last_lr = header_double(&r, "last_lr");
    st->tokens = header_int(&r, "tokens");
    const msgpack_object *done = mp_get(&r.header, "done"), *curve = mp_get(&r.header, "curve");
    if (!done || done->type != MSGPACK_OBJECT_BOOLEAN || !curve || curve->type != MSGPACK_OBJECT_ARRAY)
        stream_die(&r, "state header lacks 'done' or 'curve'");
    st->done = done->via.boolean;
    json_decref(st->curve);
    st->curve = mp_to_json(curve);
    size_t P = s->n_params * sizeof(float);
    struct {
        const char *name;
        void *dst;
        size_t bytes;
        bool seen;
    } arrays[] = {{"perm", st->perm, (size_t)n_train * sizeof *st->perm, false},
                  {"params", s->params, P, false},
                  {"grads", s->grads, P, false},
                  {"m1", st->m1, P, false},
                  {"m2", st->m2, P, false},
                  {"best", st->best, P, false}};
    msgpack_object rec;
    while (stream_next(&r, &rec)) {
        if (!mp_is_str(mp_get(&rec, "t"), "array"))
            continue;
        for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) {
            if (!mp_is_str(mp_get(&rec, "name"), arrays[i].name))
                continue;
            if (!r.payload_key || r.payload_len != arrays[i].bytes)
                stream_die(&r, "state array '%s' has %llu bytes, %zu expected", arrays[i].name,
                           (unsigned long long)r.payload_len, arrays[i].bytes);
            stream_read_payload(&r, arrays[i].dst, arrays[i].bytes);
            arrays[i].seen = true;
        }
    }
    for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++)
        if (!arrays[i].seen)
            stream_die(&r, "state lacks the array '%s'", arrays[i].name);
    stream_reader_close(&r);
    for (int i = 0; i < n_train; i++)
        if (st->perm[i] < 0 || st->perm[i] >= n_train)
            die("%s: corrupt state: the data order is not a permutation", path);
    free(path);
    return true;
}

/* Create dir if needed; remove temporary files a killed save left behind. */
static void prepare_dir(const char *dir)
{
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        die("cannot create '%s': %s", dir, strerror(errno));
    if (!path_is_dir(dir))
        die("'%s' is not a folder", dir);
    DIR *dp = opendir(dir);
    if (!dp)
        die("cannot read '%s': %s", dir, strerror(errno));
    struct dirent *e;
    while ((e = readdir(dp)))
        if (!strncmp(e->d_name, ".state.pare.tmp.", 16)) {
            char *p = path_join(dir, e->d_name);
            unlink(p);
            free(p);
        }
    closedir(dp);
}

/* ------------------------------------------------------------------ signals */

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig) { stop_signal = sig; }

static void catch_signals(bool on)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on ? on_signal : SIG_DFL;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* ------------------------------------------------------------------ batches */

/* Samples idx[0..b) of d into tokens/targets (b, T), T the longest, padded at the
 * end with token 0 and target -1 (right padding: causal attention keeps the
 * padding out of every real position). Returns the real tokens. */
static int64_t fill_batch(const instruct_data *d, const int *idx, int b, int *tokens, int *targets, int *T_out)
{
    int T = 1;
    for (int j = 0; j < b; j++)
        T = instruct_len(d, idx[j]) > T ? instruct_len(d, idx[j]) : T;
    int64_t n = 0;
    for (int j = 0; j < b; j++) {
        int len = instruct_len(d, idx[j]);
        const int64_t o = d->off[idx[j]];
        memcpy(tokens + (size_t)j * T, d->ids + o, (size_t)len * sizeof(int));
        memcpy(targets + (size_t)j * T, d->targets + o, (size_t)len * sizeof(int));
        for (int t = len; t < T; t++)
            tokens[(size_t)j * T + t] = 0, targets[(size_t)j * T + t] = -1;
        n += len;
    }
    *T_out = T;
    return n;
}

/* Mean token cross-entropy of the adapted model (no dropout) over the samples
 * val (n_val), micro-batches of b; NAN when nothing is scored. */
static double validate(const model *m, forward_state *ls, const instruct_data *d, const int *val, int n_val, int b,
                       int *tokens, int *targets)
{
    double sum = 0;
    int64_t count = 0;
    int idx[4096];
    for (int i = 0; i < n_val; i += b) {
        int k = n_val - i < b ? n_val - i : b, T;
        memcpy(idx, val + i, (size_t)k * sizeof *idx);
        fill_batch(d, idx, k, tokens, targets, &T);
        forward_state_set_batch(ls, k, T);
        model_forward(m, ls, tokens);
        nll_accumulate(ls->logits, targets, k * T, m->cfg.vocab, &sum, &count);
    }
    return count ? sum / (double)count : NAN;
}

/* The order of epoch e: positions 0..n-1 shuffled (rng_shuffle) from a stream
 * seeded from (seed, e). */
static void epoch_order(int *perm, int n, uint64_t seed, int e)
{
    uint64_t state = seed ^ (0xd1b54a32d192ed03ull * (uint64_t)(e + 1));
    for (int i = 0; i < n; i++)
        perm[i] = i;
    rng_shuffle(perm, n, &state);
}

/* AdamW step t (1-based) as torch.optim.AdamW computes it (single-tensor path):
 * p *= 1 - lr*wd; m1 += (1-b1)(g - m1); m2 = b2 m2 + (1-b2) g^2;
 * p -= lr/(1-b1^t) * m1 / (sqrt(m2)/sqrt(1-b2^t) + eps). */
static void adamw(float *p, const float *g, float *m1, float *m2, size_t n, double lr, int64_t t,
                  const train_options *o)
{
    double bc1 = 1 - pow(o->beta1, (double)t), bc2 = 1 - pow(o->beta2, (double)t);
    float step = (float)(lr / bc1), bc2s = (float)sqrt(bc2), eps = (float)o->eps;
    float decay = (float)(1 - lr * o->weight_decay), w1 = (float)(1 - o->beta1), b2 = (float)o->beta2,
          w2 = (float)(1 - o->beta2);
    for (size_t i = 0; i < n; i++) {
        if (o->weight_decay != 0)
            p[i] *= decay;
        m1[i] += w1 * (g[i] - m1[i]);
        m2[i] = b2 * m2[i] + w2 * g[i] * g[i];
        p[i] -= step * m1[i] / (sqrtf(m2[i]) / bc2s + eps);
    }
}

static void format_duration(char *buf, size_t n, double s)
{
    if (s < 60)
        snprintf(buf, n, "%.0fs", s);
    else if (s < 3600)
        snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
    else
        snprintf(buf, n, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
}

/* ------------------------------------------------------------------ the loop */

typedef struct {
    model *m;
    lora_set *s;
    const instruct_data *d;
    const int *train, *val;
    int n_train, n_val;
    const train_options *o;
    json_t *id;
    tstate st;
    int64_t total, per_epoch;
    int64_t step_start_tokens;
} trainer;

static void save(trainer *tr)
{
    if (tr->o->state_dir)
        save_state(tr->o->state_dir, &tr->st, tr->s, tr->n_train, tr->id);
}

/* A loss or gradient that is not finite: keep the state of the start of the step
 * (the adapters and moments are untouched until the step's end) and stop. */
static _Noreturn void not_finite(trainer *tr, const char *what, double v, int micro, int n_micro)
{
    tstate *st = &tr->st;
    int64_t step = st->step;
    if (tr->o->state_dir) {
        memset(tr->s->grads, 0, tr->s->n_params * sizeof(float));
        st->micro = 0;
        st->step_loss = 0;
        st->tokens -= st->step_tokens;
        st->step_tokens = 0;
        save(tr);
    }
    die("step %lld of %lld, micro-batch %d of %d: the %s is %s; stopped%s%s%s", (long long)step + 1,
        (long long)tr->total, micro + 1, n_micro, what, isnan(v) ? "nan" : "infinite",
        tr->o->state_dir ? " (the state of the start of this step is in '" : " (no state folder: nothing kept)",
        tr->o->state_dir ? tr->o->state_dir : "", tr->o->state_dir ? "')" : "");
}

static _Noreturn void interrupted(trainer *tr, int n_micro)
{
    save(tr);
    die("%s at step %lld of %lld (micro-batch %d of %d): the state is saved in '%s'; run the same command again "
        "to continue",
        stop_signal == SIGINT ? "interrupted (SIGINT)" : "terminated (SIGTERM)", (long long)tr->st.step,
        (long long)tr->total, tr->st.micro, n_micro, tr->o->state_dir);
}

static void curve_point(trainer *tr, bool evaluated, double val)
{
    tstate *st = &tr->st;
    json_t *p = json_object();
    json_object_set_new(p, "step", json_integer((json_int_t)st->step));
    json_object_set_new(p, "epoch", json_real((double)st->step / (double)tr->per_epoch));
    if (st->log_n > 0) {
        st->last_loss = st->log_loss / st->log_n;
        json_object_set_new(p, "loss", json_real(st->last_loss));
        json_object_set_new(p, "lr", json_real(st->last_lr));
    }
    if (evaluated && isfinite(val))
        json_object_set_new(p, "val_loss", json_real(val));
    json_array_append_new(st->curve, p);
    st->log_loss = 0;
    st->log_n = 0;
}

void lora_train(model *m, lora_set *s, const instruct_data *d, const int *train, int n_train, const int *val, int n_val,
                const train_options *o, train_result *res)
{
    if (!s)
        die("lora_train: no adapters to train");
    if (n_train < 1)
        die("%s: no training sample", d->source);
    if (o->micro_batch < 1 || o->micro_batch > 4096 || o->batch < 1 || o->epochs < 1)
        die("lora_train: bad batch %d, micro-batch %d or epochs %d", o->batch, o->micro_batch, o->epochs);
    memset(res, 0, sizeof *res);
    trainer tr = {.m = m, .s = s, .d = d, .train = train, .val = val, .n_train = n_train, .n_val = n_val, .o = o};
    tr.id = identity(s, d, n_train, n_val, o);
    tr.per_epoch = (n_train + o->batch - 1) / o->batch;
    tr.total = tr.per_epoch * o->epochs;
    size_t P = s->n_params;
    tstate *st = &tr.st;
    *st = (tstate){.perm_epoch = -1, .best_val = NAN, .best_step = -1, .first_val = NAN, .last_loss = NAN,
                   .last_lr = 0, .curve = json_array()};
    st->perm = xmalloc((size_t)n_train * sizeof *st->perm);
    st->m1 = xcalloc(P, sizeof(float));
    st->m2 = xcalloc(P, sizeof(float));
    st->best = xmalloc(P * sizeof(float));
    memcpy(st->best, s->params, P * sizeof(float));
    lora_alloc_grads(s);
    if (o->state_dir) {
        prepare_dir(o->state_dir);
        res->resumed = load_state(o, st, s, n_train, tr.id, tr.total);
        if (res->resumed)
            info("resuming from '%s': step %lld of %lld%s", o->state_dir, (long long)st->step, (long long)tr.total,
                 st->done ? " (finished)" : "");
        catch_signals(true);
    }

    int maxT = 1, mb = o->micro_batch;
    for (int i = 0; i < d->n; i++)
        maxT = instruct_len(d, i) > maxT ? instruct_len(d, i) : maxT;
    backward_state *lt = NULL;
    forward_state ls = {0};
    int *tokens = xmalloc((size_t)mb * maxT * sizeof(int)), *targets = xmalloc((size_t)mb * maxT * sizeof(int));
    bool have_ls = false;
    if (!st->done) {
        lt = backward_state_new(m, mb, maxT);
        backward_state_set_lora(lt, s);
        forward_state_init(&ls, m, mb, maxT);
        ls.lora = s;
        have_ls = true;
    }
    double t0 = now_seconds(), last_line = t0;
    int64_t steps0 = st->step;
    int idx[4096];

    if (!st->done && st->step == 0 && st->micro == 0 && n_val > 0 && isnan(st->first_val)) {
        st->first_val = validate(m, &ls, d, val, n_val, mb, tokens, targets);
        if (!isfinite(st->first_val))
            die("the validation loss of the base model is not finite");
        curve_point(&tr, true, st->first_val);
        info("step 0/%lld: val %.4f (before training); %d training and %d validation samples, %lld steps of %d "
             "(micro-batches of %d)",
             (long long)tr.total, st->first_val, n_train, n_val, (long long)tr.total, o->batch, mb);
    }
    while (!st->done && st->step < tr.total) {
        int epoch = (int)(st->step / tr.per_epoch);
        int64_t k = st->step % tr.per_epoch;
        if (st->perm_epoch != epoch) {
            epoch_order(st->perm, n_train, o->seed, epoch);
            st->perm_epoch = epoch;
        }
        int first = (int)(k * o->batch), count = n_train - first < o->batch ? n_train - first : o->batch;
        int n_micro = (count + mb - 1) / mb;
        while (st->micro < n_micro) {
            int j0 = first + st->micro * mb, b = count - st->micro * mb < mb ? count - st->micro * mb : mb, T;
            for (int j = 0; j < b; j++)
                idx[j] = train[st->perm[j0 + j]];
            int64_t ntok = fill_batch(d, idx, b, tokens, targets, &T);
            s->pass = ((uint64_t)st->step << 20) + (uint64_t)st->micro;
            backward_state_set_batch(lt, b, T);
            double loss = model_loss_backward(m, lt, tokens, targets, NULL, NULL, NULL);
            if (!isfinite(loss))
                not_finite(&tr, "loss", loss, st->micro, n_micro);
            st->step_loss += loss;
            st->step_tokens += ntok;
            st->tokens += ntok;
            res->tokens_run += ntok;
            st->micro++;
            if (stop_signal && st->micro < n_micro)
                interrupted(&tr, n_micro);
        }
        /* the step: the mean of the micro-batches' gradients, clipped, AdamW */
        float inv = 1.0f / (float)n_micro;
        double norm2 = 0;
        for (size_t i = 0; i < P; i++) {
            s->grads[i] *= inv;
            norm2 += (double)s->grads[i] * s->grads[i];
        }
        double norm = sqrt(norm2);
        if (!isfinite(norm))
            not_finite(&tr, "gradient norm", norm, n_micro - 1, n_micro);
        if (o->max_grad_norm > 0 && norm > o->max_grad_norm) {
            float c = (float)(o->max_grad_norm / (norm + 1e-6));
            for (size_t i = 0; i < P; i++)
                s->grads[i] *= c;
        }
        st->last_lr = train_lr(o->lr, o->warmup, tr.total, st->step);
        adamw(s->params, s->grads, st->m1, st->m2, P, st->last_lr, st->step + 1, o);
        memset(s->grads, 0, P * sizeof(float));
        double step_mean = st->step_loss / n_micro;
        st->log_loss += step_mean;
        st->log_n++;
        st->step++;
        st->micro = 0;
        st->step_loss = 0;
        st->step_tokens = 0;
        res->steps_run++;

        bool last = st->step == tr.total;
        bool eval = n_val > 0 && (st->step % o->eval_every == 0 || last);
        double v = NAN;
        if (eval) {
            v = validate(m, &ls, d, val, n_val, mb, tokens, targets);
            if (!isfinite(v))
                not_finite(&tr, "validation loss", v, n_micro - 1, n_micro);
            if (st->best_step < 0 || v < st->best_val) {
                st->best_val = v;
                st->best_step = st->step;
                memcpy(st->best, s->params, P * sizeof(float));
            }
        }
        bool point = eval || last || st->step % o->log_every == 0;
        double now = now_seconds();
        if (point)
            curve_point(&tr, eval, v);
        if (point || g_progress_mode == 1 || (g_progress_mode < 0 && now - last_line > 30)) {
            double el = now - t0, rate = el > 0 ? (double)res->tokens_run / el : 0;
            double left = (double)(tr.total - st->step) * el / (double)(st->step - steps0);
            char tl[32], vs[96] = "";
            format_duration(tl, sizeof tl, left);
            if (eval)
                snprintf(vs, sizeof vs, ", val %.4f (best %.4f at step %lld)", v, st->best_val,
                         (long long)st->best_step);
            info("step %lld/%lld (epoch %.2f): loss %.4f, lr %.3g%s, %.*f tok/s, %s left", (long long)st->step,
                 (long long)tr.total, (double)st->step / (double)tr.per_epoch,
                 point ? st->last_loss : step_mean, st->last_lr, vs, rate_decimals(rate), rate, tl);
            last_line = now;
        }
        st->done = last;
        if (o->state_dir && (st->step % o->save_every == 0 || last))
            save(&tr);
        if (stop_signal && !last) {
            if (st->step % o->save_every != 0)
                save(&tr);
            die("%s after step %lld of %lld: the state is saved in '%s'; run the same command again to continue",
                stop_signal == SIGINT ? "interrupted (SIGINT)" : "terminated (SIGTERM)", (long long)st->step,
                (long long)tr.total, o->state_dir);
        }
    }
    if (o->state_dir)
        catch_signals(false);
    res->seconds = now_seconds() - t0;
    if (st->best_step >= 0)
        memcpy(s->params, st->best, P * sizeof(float));

    /* the summary for the adapter's header */
    json_t *j = json_object();
    json_t *dj = instruct_to_json(d);
    json_object_set_new(dj, "train", json_integer(n_train));
    json_object_set_new(dj, "val", json_integer(n_val));
    json_object_set_new(j, "data", dj);
    json_object_set_new(j, "epochs", json_integer(o->epochs));
    json_object_set_new(j, "steps", json_integer((json_int_t)tr.total));
    json_object_set_new(j, "steps_per_epoch", json_integer((json_int_t)tr.per_epoch));
    json_object_set_new(j, "batch", json_integer(o->batch));
    json_object_set_new(j, "micro_batch", json_integer(mb));
    json_object_set_new(j, "lr", json_real(o->lr));
    json_object_set_new(j, "warmup", json_integer(o->warmup));
    json_object_set_new(j, "schedule", json_string("linear"));
    json_object_set_new(j, "optimizer", json_pack("{s:s,s:f,s:f,s:f,s:f}", "name", "adamw", "beta1", o->beta1,
                                                  "beta2", o->beta2, "eps", o->eps, "weight_decay", o->weight_decay));
    json_object_set_new(j, "max_grad_norm", json_real(o->max_grad_norm));
    json_object_set_new(j, "seed", json_integer((json_int_t)o->seed));
    json_object_set_new(j, "eval_every", json_integer(o->eval_every));
    json_object_set_new(j, "tokens", json_integer((json_int_t)st->tokens));
    if (isfinite(st->last_loss))
        json_object_set_new(j, "final_loss", json_real(st->last_loss));
    if (isfinite(st->first_val))
        json_object_set_new(j, "first_val_loss", json_real(st->first_val));
    if (st->best_step >= 0) {
        json_object_set_new(j, "best_val_loss", json_real(st->best_val));
        json_object_set_new(j, "best_step", json_integer((json_int_t)st->best_step));
    }
    json_object_set_new(j, "selected", json_string(st->best_step >= 0 ? "best" : "last"));
    res->training = j;
    res->curve = json_incref(st->curve);
    res->steps = tr.total;
    res->first_val = st->first_val;
    res->best_val = st->best_step >= 0 ? st->best_val : NAN;
    res->best_step = st->best_step;
    res->final_loss = st->last_loss;

    if (lt)
        backward_state_free(lt);
    if (have_ls)
        forward_state_free(&ls);
    free(tokens), free(targets);
    free(st->perm), free(st->m1), free(st->m2), free(st->best);
    json_decref(st->curve);
    json_decref(tr.id);
    free(s->grads);
    s->grads = NULL;
}

void train_result_free(train_result *r)
{
    json_decref(r->training);
    json_decref(r->curve);
    memset(r, 0, sizeof *r);
}
