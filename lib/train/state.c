/* state.c - the training state in and out of DIR/state.pare (state.h): one
 * table of the header's scalar fields and one list of the bulk arrays, read by
 * both save and load.
 *
 * Letters: P trained parameters. */
#include "train/state.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"
#include "format/stream.h"

/* ---- the fields ---- */

enum field_type { F_INT, F_DOUBLE, F_BOOL };
static const struct {
    const char *key;
    enum field_type type;
    size_t off;
} fields[] = {
#define FIELD(name, type) {#name, type, offsetof(train_state, name)}
    FIELD(step, F_INT),      FIELD(micro, F_INT),       FIELD(perm_epoch, F_INT),   FIELD(best_val, F_DOUBLE),
    FIELD(best_step, F_INT), FIELD(first_val, F_DOUBLE), FIELD(step_kl, F_DOUBLE),   FIELD(step_ce, F_DOUBLE),
    FIELD(step_tokens, F_INT), FIELD(log_kl, F_DOUBLE), FIELD(log_ce, F_DOUBLE),     FIELD(log_n, F_INT),
    FIELD(last_loss, F_DOUBLE), FIELD(last_lr, F_DOUBLE), FIELD(tokens, F_INT),     FIELD(done, F_BOOL),
#undef FIELD
};
enum { N_FIELDS = sizeof fields / sizeof fields[0] };

/* The bulk arrays, each the concatenation of pieces: the epoch's order, the
 * parameters (their spans), their gradient, the moments, the best parameters. */
typedef struct {
    const char *name;
    int n;
    struct {
        void *p;
        size_t bytes;
    } piece[1];          /* n of them (the parameters' spans: more, allocated) */
} state_array;
enum { N_ARRAYS = 6 };

static state_array *one(const char *name, void *p, size_t bytes)
{
    state_array *a = xmalloc(sizeof *a);
    *a = (state_array){name, 1, {{p, bytes}}};
    return a;
}

static void arrays_of(state_array *a[N_ARRAYS], const train_state *st, const train_params *p, int n_train)
{
    size_t P = p->n * sizeof(float);
    a[0] = one("perm", st->perm, (size_t)n_train * sizeof *st->perm);
    a[1] = xmalloc(sizeof *a[1] + (size_t)(p->n_spans > 1 ? p->n_spans - 1 : 0) * sizeof a[1]->piece[0]);
    a[1]->name = "params";
    a[1]->n = p->n_spans;
    for (int i = 0; i < p->n_spans; i++) {
        a[1]->piece[i].p = p->spans[i].p;
        a[1]->piece[i].bytes = p->spans[i].n * sizeof(float);
    }
    a[2] = one("grads", p->grads, P);
    a[3] = one("m1", st->m1, P);
    a[4] = one("m2", st->m2, P);
    a[5] = one("best", st->best, P);
}

static size_t array_bytes(const state_array *a)
{
    size_t n = 0;
    for (int i = 0; i < a->n; i++)
        n += a->piece[i].bytes;
    return n;
}

static void arrays_free(state_array *a[N_ARRAYS])
{
    for (int i = 0; i < N_ARRAYS; i++)
        free(a[i]);
}

/* ---- the state in memory ---- */

void train_state_init(train_state *st, int n_train, const train_params *p)
{
    *st = (train_state){.perm_epoch = -1, .best_val = NAN, .best_step = -1, .first_val = NAN, .last_loss = NAN,
                        .curve = json_array()};
    st->perm = xmalloc((size_t)(n_train > 0 ? n_train : 1) * sizeof *st->perm);
    for (int i = 0; i < n_train; i++)
        st->perm[i] = i;
    st->m1 = xcalloc(p->n, sizeof(float));
    st->m2 = xcalloc(p->n, sizeof(float));
    st->best = xmalloc(p->n * sizeof(float));
    params_get(p, st->best);
}

void train_state_free(train_state *st)
{
    free(st->perm), free(st->m1), free(st->m2), free(st->best);
    json_decref(st->curve);
    memset(st, 0, sizeof *st);
}

/* ---- the folder ---- */

static char *state_path(const char *dir) { return path_join(dir, "state.pare"); }

void train_state_prepare_dir(const char *dir)
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

/* fsync a folder, so that a rename in it survives a crash. */
static void sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0 || fsync(fd) != 0)
        die("cannot sync '%s': %s", dir, strerror(errno));
    close(fd);
}

/* ---- save ---- */

void train_state_save(const char *dir, const train_state *st, const train_params *p, int n_train, json_t *identity)
{
    char *path = state_path(dir);
    stream_writer w;
    stream_writer_open(&w, path);
    stream_write_header(&w, "lora-state", 0, NULL, 2 + N_FIELDS);
    mp_pack_str(&w.pk, "identity");
    mp_pack_json(&w.pk, identity);
    for (int i = 0; i < N_FIELDS; i++) {
        const char *at = (const char *)st + fields[i].off;
        switch (fields[i].type) {
        case F_INT: mp_pack_kv_int(&w.pk, fields[i].key, *(const int64_t *)at); break;
        case F_DOUBLE: mp_pack_kv_double(&w.pk, fields[i].key, *(const double *)at); break;
        case F_BOOL:
            mp_pack_str(&w.pk, fields[i].key);
            if (*(const bool *)at)
                msgpack_pack_true(&w.pk);
            else
                msgpack_pack_false(&w.pk);
            break;
        }
    }
    mp_pack_str(&w.pk, "curve");
    mp_pack_json(&w.pk, st->curve);
    stream_end_record(&w);
    state_array *a[N_ARRAYS];
    arrays_of(a, st, p, n_train);
    for (int i = 0; i < N_ARRAYS; i++) {
        stream_begin_record(&w, "array", 3);
        mp_pack_kv_str(&w.pk, "name", a[i]->name);
        stream_begin_payload(&w, "data", array_bytes(a[i]));
        for (int k = 0; k < a[i]->n; k++)
            stream_write_bytes(&w, a[i]->piece[k].p, a[i]->piece[k].bytes);
    }
    arrays_free(a);
    stream_writer_close(&w);
    sync_dir(dir);
    free(path);
}

/* ---- load ---- */

/* Die unless the state's identity has every key of now with the same value. */
static void check_identity(const stream_reader *r, const char *dir, json_t *now,
                           const char *(*key_name)(const void *ctx, const char *key), const void *ctx)
{
    const msgpack_object *io = mp_get(&r->header, "identity");
    if (!io)
        stream_die(r, "state header lacks its identity");
    json_t *was = mp_to_json(io);
    const char *key;
    json_t *value;
    json_object_foreach(now, key, value)
    {
        json_t *then = json_object_get(was, key);
        if (then && json_equal(then, value))
            continue;
        char *a = then ? json_dumps(then, JSON_ENCODE_ANY | JSON_COMPACT) : xstrdup("nothing");
        char *b = json_dumps(value, JSON_ENCODE_ANY | JSON_COMPACT);
        die("%s: the state there was made with other options or inputs: %s was %s, this run has %s "
            "(run the command that made it, or use another state folder)",
            dir, key_name ? key_name(ctx, key) : key, a, b);
    }
    json_decref(was);
}

static void read_fields(stream_reader *r, train_state *st)
{
    for (int i = 0; i < N_FIELDS; i++) {
        char *at = (char *)st + fields[i].off;
        const msgpack_object *o = mp_get(&r->header, fields[i].key);
        bool ok = false;
        switch (fields[i].type) {
        case F_INT: ok = mp_int(o, (int64_t *)at); break;
        case F_DOUBLE: ok = mp_double(o, (double *)at); break;
        case F_BOOL:
            ok = o && o->type == MSGPACK_OBJECT_BOOLEAN;
            if (ok)
                *(bool *)at = o->via.boolean;
            break;
        }
        if (!ok)
            stream_die(r, "state header lacks '%s'", fields[i].key);
    }
    const msgpack_object *curve = mp_get(&r->header, "curve");
    if (!curve || curve->type != MSGPACK_OBJECT_ARRAY)
        stream_die(r, "state header lacks 'curve'");
    json_decref(st->curve);
    st->curve = mp_to_json(curve);
}

/* The counters index the data order and the curve: each must lie inside the run. */
static void check_bounds(stream_reader *r, const train_state *st, train_state_bounds b)
{
    if (st->step < 0 || st->step > b.total || st->micro < 0 || st->micro >= b.n_micro || st->perm_epoch < -1 ||
        st->perm_epoch >= b.epochs || st->best_step < -1 || st->best_step > st->step || st->log_n < 0 ||
        st->log_n > st->step)
        stream_die(r, "corrupt state: step %lld of %lld, micro-batch %lld of %lld, data order of epoch %lld, best "
                   "step %lld, %lld steps since the last curve point",
                   (long long)st->step, (long long)b.total, (long long)st->micro, (long long)b.n_micro,
                   (long long)st->perm_epoch, (long long)st->best_step, (long long)st->log_n);
}

static void read_arrays(stream_reader *r, train_state *st, train_params *p, int n_train)
{
    state_array *a[N_ARRAYS];
    arrays_of(a, st, p, n_train);
    bool seen[N_ARRAYS] = {false};
    msgpack_object rec;
    while (stream_next(r, &rec)) {
        if (!mp_is_str(mp_get(&rec, "t"), "array"))
            continue;
        for (int i = 0; i < N_ARRAYS; i++) {
            if (!mp_is_str(mp_get(&rec, "name"), a[i]->name))
                continue;
            if (!r->payload_key || r->payload_len != array_bytes(a[i]))
                stream_die(r, "state array '%s' has %llu bytes, %zu expected", a[i]->name,
                           (unsigned long long)(r->payload_key ? r->payload_len : 0), array_bytes(a[i]));
            for (int k = 0; k < a[i]->n; k++)
                stream_read_payload(r, a[i]->piece[k].p, a[i]->piece[k].bytes);
            seen[i] = true;
        }
    }
    for (int i = 0; i < N_ARRAYS; i++)
        if (!seen[i])
            stream_die(r, "state lacks the array '%s'", a[i]->name);
    arrays_free(a);
    uint8_t *hit = xcalloc((size_t)(n_train > 0 ? n_train : 1), 1);
    for (int i = 0; i < n_train; i++) {
        if (st->perm[i] < 0 || st->perm[i] >= n_train || hit[st->perm[i]])
            stream_die(r, "corrupt state: the data order is not a permutation");
        hit[st->perm[i]] = 1;
    }
    free(hit);
}

bool train_state_load(const char *dir, train_state *st, train_params *p, int n_train, json_t *identity,
                      const char *(*key_name)(const void *ctx, const char *key), const void *ctx,
                      train_state_bounds b)
{
    char *path = state_path(dir);
    if (!path_exists(path)) {
        free(path);
        return false;
    }
    stream_reader r;
    stream_reader_open(&r, path, "lora-state");
    check_identity(&r, dir, identity, key_name, ctx);
    read_fields(&r, st);
    check_bounds(&r, st, b);
    read_arrays(&r, st, p, n_train);
    stream_reader_close(&r);
    free(path);
    return true;
}
