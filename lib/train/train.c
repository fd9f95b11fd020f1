/* train.c - the trainer: micro-batches and gradient accumulation, the loss
 * (cross-entropy, distillation or both), AdamW with the linear schedule,
 * validation, the best parameters, and the state that lets a stopped run
 * continue exactly where it was.
 *
 * Determinism. Everything a step computes follows from the state (state.h): the
 * epoch's order is a seeded shuffle (kept in the state), the dropout masks are a
 * hash of (seed, pass) with pass = step * 2^20 + micro-batch (lora.h), a teacher
 * gives the same distributions for the same tokens, and the state holds the
 * parameters, AdamW's moments, the gradient accumulated so far in the step, the
 * loss sums and the curve exactly. So a run resumed from any saved state computes
 * the same numbers, in the same order, as the run that saved it (with one thread:
 * OpenBLAS's threaded kernels may sum in another order).
 *
 * Letters: S samples, b sequences of a micro-batch, T its longest sample, N = b*T
 * rows, P trained parameters, V vocabulary. */
#include "train/train.h"

#include <math.h>
#include <signal.h>
#include <string.h>

#include "base/progress.h"
#include "base/rng.h"
#include "base/parallel.h"
#include "base/util.h"
#include "compute/backward.h"
#include "compute/distill.h"
#include "compute/forward.h"
#include "train/params.h"
#include "train/state.h"

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
    o->kd_weight = 1, o->kd_temp = 1;
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

static const char *signal_words(void)
{
    return stop_signal == SIGINT ? "interrupted (SIGINT)" : "terminated (SIGTERM)";
}

/* ------------------------------------------------------------------ the trainer */

/* A loss measured over rows: its two terms (means over the scored rows) and
 * their mix, w kl + (1 - w) ce. */
typedef struct {
    double loss, kl, ce;
} loss_parts;

typedef struct {
    const train_job *job;
    const train_options *o;
    model *m;
    const instruct_data *d;
    double w, tau;          /* the loss's mix and temperature (w 0 without a teacher) */
    train_params p;
    train_state st;
    json_t *id;             /* what a state must have been made with */
    int64_t total, per_epoch;
    int n_micro_max;        /* micro-batches of a full step */
    /* a micro-batch's buffers */
    backward_state *bs;     /* the training passes (NULL when resumed finished) */
    forward_state fs;       /* the validation passes */
    int *tokens, *targets;  /* (b, maxT) */
    int *idx;               /* (b) its samples */
    uint8_t *mark;          /* (V) scratch of distill_loss */
    /* progress */
    double t0, last_line;
    int64_t steps0;
} trainer;

/* What a state must have been made with: the options that change the result, the
 * data, the model, the adapters or the whole model, the teacher. */
static json_t *identity(const trainer *tr, const char *fingerprint)
{
    const train_job *job = tr->job;
    const train_options *o = tr->o;
    const instruct_data *d = job->d;
    json_t *j = json_pack("{s:s,s:s,s:s,s:i,s:i,s:i,s:f,s:i,s:i,s:i,s:i,s:i,s:i,s:f,s:f,s:f,s:f,s:f,s:I}", "model",
                          fingerprint, "data", d->xxh64, "mode", d->text ? "text" : "alpaca", "cutoff", d->cutoff,
                          "train", job->n_train, "val", job->n_val, "lr", o->lr, "warmup", o->warmup, "batch",
                          o->batch, "micro_batch", o->micro_batch, "epochs", o->epochs, "eval_every", o->eval_every,
                          "log_every", o->log_every, "max_grad_norm", o->max_grad_norm, "beta1", o->beta1, "beta2",
                          o->beta2, "eps", o->eps, "weight_decay", o->weight_decay, "seed", (json_int_t)o->seed);
    const lora_set *s = job->lora;
    if (s) {
        char *targets = lora_targets_string(s->arch, s->targets);
        json_object_set_new(j, "rank", json_integer(s->rank));
        json_object_set_new(j, "alpha", json_real(s->alpha));
        json_object_set_new(j, "dropout", json_real(s->dropout));
        json_object_set_new(j, "targets", json_string(targets));
        free(targets);
    } else {
        json_object_set_new(j, "full", json_true());
    }
    if (job->teacher) {
        json_object_set_new(j, "teacher", teacher_json(job->teacher));
        json_object_set_new(j, "kd_weight", json_real(o->kd_weight));
        json_object_set_new(j, "kd_temp", json_real(o->kd_temp));
    }
    return j;
}

/* How a message names identity key key: the program's name for it, else the
 * library's words for the keys that are not plain settings, else the key. */
static const char *key_name(const void *ctx, const char *key)
{
    const train_options *o = ctx;
    static const struct {
        const char *key, *name;
    } names[] = {{"model", "the model (fingerprint)"},  {"data", "the data (token digest)"},
                 {"mode", "the data mode (text or Alpaca)"}, {"train", "training samples"},
                 {"val", "validation samples"}, {"full", "training every weight"},
                 {"teacher", "the teacher"}};
    const char *name = o->key_name ? o->key_name(key) : NULL;
    if (name)
        return name;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(key, names[i].key))
            return names[i].name;
    return key;
}

static void save(trainer *tr)
{
    if (tr->o->state_dir)
        train_state_save(tr->o->state_dir, &tr->st, &tr->p, tr->job->n_train, tr->id);
}

/* Check the job, make the parameters, the buffers and the state: resumed from
 * the state folder when there is one there, else new. */
static void trainer_open(trainer *tr, const train_job *job, const train_options *o, train_result *res)
{
    if (job->n_train < 1)
        die("%s: no training sample", job->d->source);
    if (o->micro_batch < 1 || o->micro_batch > 4096 || o->batch < 1 || o->epochs < 1)
        die("train_run: bad batch %d, micro-batch %d or epochs %d", o->batch, o->micro_batch, o->epochs);
    if (job->teacher && !(o->kd_weight >= 0 && o->kd_weight <= 1 && o->kd_temp > 0))
        die("train_run: distillation weight %g outside [0, 1] or temperature %g not positive", o->kd_weight,
            o->kd_temp);
    double fixed = job->teacher ? teacher_temperature(job->teacher) : 0;
    if (fixed > 0 && fixed != o->kd_temp)
        die("the teacher's logits are at temperature %g, this run's is %g (dump them again at %g, or train at %g)",
            fixed, o->kd_temp, o->kd_temp, fixed);
    memset(res, 0, sizeof *res);
    *tr = (trainer){.job = job, .o = o, .m = job->m, .d = job->d, .w = job->teacher ? o->kd_weight : 0,
                    .tau = job->teacher ? o->kd_temp : 1};
    if (job->lora)
        memcpy(res->base_fingerprint, job->lora->fingerprint, sizeof res->base_fingerprint);
    else
        model_bound_fingerprint(job->m, res->base_fingerprint);
    tr->id = identity(tr, res->base_fingerprint);
    tr->per_epoch = (job->n_train + o->batch - 1) / o->batch;
    tr->total = tr->per_epoch * o->epochs;
    tr->n_micro_max = (o->batch + o->micro_batch - 1) / o->micro_batch;
    if (job->lora)
        params_lora(&tr->p, job->lora, job->m);
    else
        params_full(&tr->p, job->m);
    train_state_init(&tr->st, job->n_train, &tr->p);
    if (o->state_dir) {
        train_state_prepare_dir(o->state_dir);
        res->resumed = train_state_load(o->state_dir, &tr->st, &tr->p, job->n_train, tr->id, key_name, o,
                                        (train_state_bounds){tr->total, tr->n_micro_max, o->epochs});
        if (res->resumed)
            info("resuming from '%s': step %lld of %lld%s", o->state_dir, (long long)tr->st.step,
                 (long long)tr->total, tr->st.done ? " (finished)" : "");
        catch_signals(true);
    }
    int mb = o->micro_batch, maxT = instruct_max_len(job->d);
    tr->tokens = xmalloc((size_t)mb * maxT * sizeof *tr->tokens);
    tr->targets = xmalloc((size_t)mb * maxT * sizeof *tr->targets);
    tr->idx = xmalloc((size_t)mb * sizeof *tr->idx);
    tr->mark = xcalloc((size_t)job->m->cfg.vocab, 1);
    if (!tr->st.done) {
        tr->bs = backward_state_new(job->m, mb, maxT);
        backward_state_set_lora(tr->bs, job->lora);
        forward_state_init(&tr->fs, job->m, mb, maxT);
        tr->fs.lora = job->lora;
    }
    tr->t0 = tr->last_line = now_seconds();
    tr->steps0 = tr->st.step;
}

/* The loss's terms summed over the micro-batch's rows (samples tr->idx, b of
 * them, T tokens) at the logits the last pass left (b, T); with grad, the logits
 * become the gradient of its mean over the scored rows. */
static distill_sums batch_loss(trainer *tr, float *logits, int b, int T, bool grad)
{
    int N = b * T, V = tr->m->cfg.vocab;
    int64_t count = 0;
    for (int i = 0; i < N; i++)
        count += tr->targets[i] >= 0;
    const distill_teacher *dt =
        tr->job->teacher ? teacher_batch(tr->job->teacher, tr->d, tr->idx, b, T, tr->tokens) : NULL;
    distill_sums s = {0};
    distill_loss(logits, grad ? logits : NULL, tr->targets, N, V, dt, (float)tr->tau, (float)tr->w,
                 count ? (float)(1.0 / (double)count) : 0.0f, &s, tr->mark);
    return s;
}

/* The means of sums: its terms and their mix (0 when nothing was scored, or
 * empty NAN). */
static loss_parts mean_of(const trainer *tr, distill_sums s, double empty)
{
    if (!s.count)
        return (loss_parts){empty, empty, empty};
    loss_parts l = {0, s.kd / (double)s.count, s.ce / (double)s.count};
    l.loss = tr->w * l.kl + (1 - tr->w) * l.ce;
    return l;
}

/* The loss of the adapted or trained model (no dropout) over the validation
 * samples, micro-batches as in training; NAN when nothing is scored. */
static loss_parts validate(trainer *tr)
{
    const train_job *job = tr->job;
    distill_sums sum = {0};
    int mb = tr->o->micro_batch;
    for (int i = 0; i < job->n_val; i += mb) {
        int b = job->n_val - i < mb ? job->n_val - i : mb, T;
        memcpy(tr->idx, job->val + i, (size_t)b * sizeof *tr->idx);
        instruct_batch(tr->d, tr->idx, b, tr->tokens, tr->targets, &T);
        forward_state_set_batch(&tr->fs, b, T);
        model_forward(tr->m, &tr->fs, tr->tokens);
        distill_sums s = batch_loss(tr, tr->fs.logits, b, T, false);
        sum.kd += s.kd, sum.ce += s.ce, sum.count += s.count;
    }
    return mean_of(tr, sum, NAN);
}

/* A loss or gradient that is not finite: keep the state of the start of the step
 * (the parameters and moments are untouched until the step's end) and stop. */
static _Noreturn void not_finite(trainer *tr, const char *what, double v, int micro, int n_micro)
{
    train_state *st = &tr->st;
    int64_t step = st->step;
    if (tr->o->state_dir) {
        parallel_zero(tr->p.grads, tr->p.n * sizeof(float));
        st->micro = 0;
        st->step_kl = st->step_ce = 0;
        st->tokens -= st->step_tokens;
        st->step_tokens = 0;
        save(tr);
    }
    die("step %lld of %lld, micro-batch %d of %d: the %s is %s; stopped%s%s%s", (long long)step + 1,
        (long long)tr->total, micro + 1, n_micro, what, isnan(v) ? "nan" : "infinite",
        tr->o->state_dir ? " (the state of the start of this step is in '" : " (no state folder: nothing kept)",
        tr->o->state_dir ? tr->o->state_dir : "", tr->o->state_dir ? "')" : "");
}

/* A curve point at the current step: the mean training loss (and its terms
 * with a teacher) since the last point, and the validation loss if measured.
 * Returns the point's training loss (NAN: none). */
static loss_parts curve_point(trainer *tr, const loss_parts *val)
{
    train_state *st = &tr->st;
    bool kd = tr->job->teacher != NULL;
    json_t *p = json_object();
    json_object_set_new(p, "step", json_integer((json_int_t)st->step));
    json_object_set_new(p, "epoch", json_real((double)st->step / (double)tr->per_epoch));
    loss_parts l = {NAN, NAN, NAN};
    if (st->log_n > 0) {
        l = (loss_parts){0, st->log_kl / (double)st->log_n, st->log_ce / (double)st->log_n};
        l.loss = st->last_loss = tr->w * l.kl + (1 - tr->w) * l.ce;
        json_object_set_new(p, "loss", json_real(l.loss));
        if (kd) {
            json_object_set_new(p, "kl", json_real(l.kl));
            json_object_set_new(p, "ce", json_real(l.ce));
        }
        json_object_set_new(p, "lr", json_real(st->last_lr));
    }
    if (val && isfinite(val->loss)) {
        json_object_set_new(p, "val_loss", json_real(val->loss));
        if (kd) {
            json_object_set_new(p, "val_kl", json_real(val->kl));
            json_object_set_new(p, "val_ce", json_real(val->ce));
        }
    }
    json_array_append_new(st->curve, p);
    st->log_kl = st->log_ce = 0;
    st->log_n = 0;
    return l;
}

/* Before the first step of a new run: the validation loss of the model as given. */
static void validate_before(trainer *tr)
{
    const train_job *job = tr->job;
    train_state *st = &tr->st;
    if (st->done || st->step != 0 || st->micro != 0 || job->n_val == 0 || !isnan(st->first_val))
        return;
    loss_parts v = validate(tr);
    st->first_val = v.loss;
    if (!isfinite(st->first_val))
        die("the validation loss of the %s model is not finite", job->lora ? "base" : "given");
    curve_point(tr, &v);
    info("step 0/%lld: val %.4f (before training); %d training and %d validation samples, %lld steps of %d "
         "(micro-batches of %d)",
         (long long)tr->total, st->first_val, job->n_train, job->n_val, (long long)tr->total, tr->o->batch,
         tr->o->micro_batch);
}

/* The epoch of the current step orders its samples: a shuffle seeded from (seed, epoch). */
static void order_epoch(trainer *tr)
{
    train_state *st = &tr->st;
    int epoch = (int)(st->step / tr->per_epoch), n = tr->job->n_train;
    if (st->perm_epoch == epoch)
        return;
    uint64_t state = tr->o->seed ^ (0xd1b54a32d192ed03ull * (uint64_t)(epoch + 1));
    for (int i = 0; i < n; i++)
        st->perm[i] = i;
    rng_shuffle(st->perm, n, &state);
    st->perm_epoch = epoch;
}

/* The current step's samples: the first and how many. */
static int step_samples(const trainer *tr, int *first)
{
    int64_t k = tr->st.step % tr->per_epoch;
    *first = (int)(k * tr->o->batch);
    int left = tr->job->n_train - *first;
    return left < tr->o->batch ? left : tr->o->batch;
}

/* One micro-batch of the step: the samples j0.. (b) of the epoch's order, forward,
 * the loss, backward; the gradient added into the parameters', the loss into the
 * step's sums. */
static void micro_batch(trainer *tr, int j0, int b, int n_micro, train_result *res)
{
    const train_job *job = tr->job;
    train_state *st = &tr->st;
    int T;
    for (int j = 0; j < b; j++)
        tr->idx[j] = job->train[st->perm[j0 + j]];
    int64_t ntok = instruct_batch(tr->d, tr->idx, b, tr->tokens, tr->targets, &T);
    if (job->lora)
        job->lora->pass = ((uint64_t)st->step << 20) + (uint64_t)st->micro;
    backward_state_set_batch(tr->bs, b, T);
    float *logits = model_forward_kept(tr->m, tr->bs, tr->tokens, NULL, NULL);
    loss_parts l = mean_of(tr, batch_loss(tr, logits, b, T, true), 0);
    model_backward_from_logits(tr->m, tr->bs, tr->tokens, job->lora ? NULL : params_grad_sink, &tr->p);
    if (!isfinite(l.loss))
        not_finite(tr, "loss", l.loss, (int)st->micro, n_micro);
    st->step_kl += l.kl;
    st->step_ce += l.ce;
    st->step_tokens += ntok;
    st->tokens += ntok;
    res->tokens_run += ntok;
    st->micro++;
}

/* The step's micro-batches from where the state is; SIGINT or SIGTERM between
 * two of them saves the state and stops. Returns the step's micro-batches. */
static int accumulate_step(trainer *tr, train_result *res)
{
    train_state *st = &tr->st;
    int mb = tr->o->micro_batch, first, count = step_samples(tr, &first);
    int n_micro = (count + mb - 1) / mb;
    while (st->micro < n_micro) {
        int done = (int)st->micro * mb, b = count - done < mb ? count - done : mb;
        micro_batch(tr, first + done, b, n_micro, res);
        if (stop_signal && st->micro < n_micro) {
            save(tr);
            die("%s at step %lld of %lld (micro-batch %lld of %d): the state is saved in '%s'; run the same command "
                "again to continue", signal_words(), (long long)st->step, (long long)tr->total,
                (long long)st->micro, n_micro, tr->o->state_dir);
        }
    }
    return n_micro;
}

/* The step: the mean of the micro-batches' gradients, clipped, AdamW; the
 * step's loss into the curve's sums. Returns the step's loss. */
static double optimizer_step(trainer *tr, int n_micro, train_result *res)
{
    const train_options *o = tr->o;
    train_state *st = &tr->st;
    size_t P = tr->p.n;
    float *g = tr->p.grads, inv = 1.0f / (float)n_micro;
    double norm2 = 0;
    for (size_t i = 0; i < P; i++) {
        g[i] *= inv;
        norm2 += (double)g[i] * g[i];
    }
    double norm = sqrt(norm2);
    if (!isfinite(norm))
        not_finite(tr, "gradient norm", norm, n_micro - 1, n_micro);
    if (o->max_grad_norm > 0 && norm > o->max_grad_norm) {
        float c = (float)(o->max_grad_norm / (norm + 1e-6));
        for (size_t i = 0; i < P; i++)
            g[i] *= c;
    }
    st->last_lr = train_lr(o->lr, o->warmup, tr->total, st->step);
    adamw_options ao = {o->beta1, o->beta2, o->eps, o->weight_decay};
    adamw_step(&tr->p, st->m1, st->m2, st->last_lr, st->step + 1, &ao);
    parallel_zero(g, P * sizeof(float));
    double kl = st->step_kl / n_micro, ce = st->step_ce / n_micro;
    st->log_kl += kl;
    st->log_ce += ce;
    st->log_n++;
    st->step++;
    st->micro = 0;
    st->step_kl = st->step_ce = 0;
    st->step_tokens = 0;
    res->steps_run++;
    return tr->w * kl + (1 - tr->w) * ce;
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

/* A progress line: the step, the training loss (the curve point's, with its
 * terms with a teacher; between points the step's own), the validation loss,
 * the rate and the time left. */
static void progress_line(trainer *tr, const loss_parts *point, double step_loss, const loss_parts *val,
                          train_result *res)
{
    train_state *st = &tr->st;
    double now = now_seconds(), el = now - tr->t0, rate = el > 0 ? (double)res->tokens_run / el : 0;
    double left = (double)(tr->total - st->step) * el / (double)(st->step - tr->steps0);
    char tl[32], vs[96] = "", terms[64] = "";
    format_duration(tl, sizeof tl, left);
    if (val)
        snprintf(vs, sizeof vs, ", val %.4f (best %.4f at step %lld)", val->loss, st->best_val,
                 (long long)st->best_step);
    if (tr->job->teacher && point)
        snprintf(terms, sizeof terms, " (kl %.4f, ce %.4f)", point->kl, point->ce);
    info("step %lld/%lld (epoch %.2f): loss %.4f%s, lr %.3g%s, %.*f tok/s, %s left", (long long)st->step,
         (long long)tr->total, (double)st->step / (double)tr->per_epoch, point ? point->loss : step_loss, terms,
         st->last_lr, vs,
         rate_decimals(rate), rate, tl);
    tr->last_line = now;
}

/* After a step: validation (and the best parameters), the curve, a progress
 * line, the state saved when due; SIGINT or SIGTERM stops here, saved. */
static void after_step(trainer *tr, int n_micro, double step_loss, train_result *res)
{
    const train_options *o = tr->o;
    train_state *st = &tr->st;
    bool last = st->step == tr->total;
    bool eval = tr->job->n_val > 0 && (st->step % o->eval_every == 0 || last);
    loss_parts v = {NAN, NAN, NAN};
    if (eval) {
        v = validate(tr);
        if (!isfinite(v.loss))
            not_finite(tr, "validation loss", v.loss, n_micro - 1, n_micro);
        if (st->best_step < 0 || v.loss < st->best_val) {
            st->best_val = v.loss;
            st->best_step = st->step;
            params_get(&tr->p, st->best);
        }
    }
    bool point = eval || last || st->step % o->log_every == 0;
    loss_parts p = {NAN, NAN, NAN};
    if (point)
        p = curve_point(tr, eval ? &v : NULL);
    double now = now_seconds();
    if (point || g_progress_mode == 1 || (g_progress_mode < 0 && now - tr->last_line > 30))
        progress_line(tr, point ? &p : NULL, step_loss, eval ? &v : NULL, res);
    st->done = last;
    if (o->state_dir && (st->step % o->save_every == 0 || last))
        save(tr);
    if (stop_signal && !last) {
        if (st->step % o->save_every != 0)
            save(tr);
        die("%s after step %lld of %lld: the state is saved in '%s'; run the same command again to continue",
            signal_words(), (long long)st->step, (long long)tr->total, o->state_dir);
    }
}

/* The summary for the output's header. */
static json_t *summary(const trainer *tr)
{
    const train_job *job = tr->job;
    const train_options *o = tr->o;
    const train_state *st = &tr->st;
    json_t *j = json_object();
    json_t *dj = instruct_to_json(job->d);
    json_object_set_new(dj, "train", json_integer(job->n_train));
    json_object_set_new(dj, "val", json_integer(job->n_val));
    json_object_set_new(j, "data", dj);
    json_object_set_new(j, "epochs", json_integer(o->epochs));
    json_object_set_new(j, "steps", json_integer((json_int_t)tr->total));
    json_object_set_new(j, "steps_per_epoch", json_integer((json_int_t)tr->per_epoch));
    json_object_set_new(j, "batch", json_integer(o->batch));
    json_object_set_new(j, "micro_batch", json_integer(o->micro_batch));
    json_object_set_new(j, "lr", json_real(o->lr));
    json_object_set_new(j, "warmup", json_integer(o->warmup));
    json_object_set_new(j, "schedule", json_string("linear"));
    json_object_set_new(j, "optimizer", json_pack("{s:s,s:f,s:f,s:f,s:f}", "name", "adamw", "beta1", o->beta1,
                                                  "beta2", o->beta2, "eps", o->eps, "weight_decay", o->weight_decay));
    json_object_set_new(j, "max_grad_norm", json_real(o->max_grad_norm));
    json_object_set_new(j, "seed", json_integer((json_int_t)o->seed));
    json_object_set_new(j, "eval_every", json_integer(o->eval_every));
    json_object_set_new(j, "trained", json_string(job->lora ? "lora" : "full"));
    json_object_set_new(j, "loss", json_pack("{s:s,s:f,s:f}", "name", job->teacher ? "distillation" : "cross-entropy",
                                             "kd_weight", tr->w, "kd_temp", tr->tau));
    if (job->teacher)
        json_object_set_new(json_object_get(j, "loss"), "teacher", teacher_json(job->teacher));
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
    return j;
}

/* The best parameters in place, the result, everything freed. */
static void trainer_close(trainer *tr, train_result *res)
{
    train_state *st = &tr->st;
    if (tr->o->state_dir)
        catch_signals(false);
    res->seconds = now_seconds() - tr->t0;
    if (st->best_step >= 0)
        params_set(&tr->p, st->best);
    res->training = summary(tr);
    res->curve = json_incref(st->curve);
    res->steps = tr->total;
    res->first_val = st->first_val;
    res->best_val = st->best_step >= 0 ? st->best_val : NAN;
    res->best_step = st->best_step;
    res->final_loss = st->last_loss;
    if (tr->bs) {
        backward_state_free(tr->bs);
        forward_state_free(&tr->fs);
    }
    free(tr->tokens), free(tr->targets), free(tr->idx), free(tr->mark);
    train_state_free(st);
    params_free(&tr->p);
    json_decref(tr->id);
}

void train_run(const train_job *job, const train_options *o, train_result *res)
{
    trainer tr;
    trainer_open(&tr, job, o, res);
    validate_before(&tr);
    while (!tr.st.done && tr.st.step < tr.total) {
        order_epoch(&tr);
        int n_micro = accumulate_step(&tr, res);
        double loss = optimizer_step(&tr, n_micro, res);
        after_step(&tr, n_micro, loss, res);
    }
    trainer_close(&tr, res);
}

void train_result_free(train_result *r)
{
    json_decref(r->training);
    json_decref(r->curve);
    memset(r, 0, sizeof *r);
}
