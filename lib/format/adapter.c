/* adapter.c - the adapter stream (pare-stream(5) "adapter"): a LoRA set (lora.h) written
 * and read back for its base model, and the merged checkpoint.
 *
 * Letters: r rank, I/O a map's input/output width (nin/nout in code). */
#include "format/adapter.h"

#include <math.h>
#include <string.h>

#include "base/util.h"
#include "format/checkpoint.h"
#include "format/model_save.h"
#include "format/stream.h"

/* s's targets as its model names them, in the forward's order: ["q_proj", ...]. */
static json_t *targets_json(const lora_set *s)
{
    char *list = lora_targets_string(s->arch, s->targets), *save = NULL;
    json_t *a = json_array();
    for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save))
        json_array_append_new(a, json_string(t));
    free(list);
    return a;
}

static void write_tensor(stream_writer *w, const char *name, int64_t d0, int64_t d1, const float *data)
{
    stream_begin_record(w, "tensor", 5);
    mp_pack_kv_str(&w->pk, "name", name);
    mp_pack_kv_str(&w->pk, "dtype", "f32");
    mp_pack_str(&w->pk, "shape");
    msgpack_pack_array(&w->pk, 2);
    msgpack_pack_int64(&w->pk, d0);
    msgpack_pack_int64(&w->pk, d1);
    stream_write_payload(w, "data", data, (size_t)(d0 * d1) * sizeof(float));
}

void adapter_write(const lora_set *s, const model *m, const char *path, int argc, char **argv, json_t *training,
                json_t *curve)
{
    stream_writer w;
    stream_writer_open(&w, path);
    stream_write_header(&w, "adapter", argc, argv, 5 + (training != NULL) + (curve != NULL));
    json_t *config = model_config_json(m);
    json_t *mj = json_pack("{s:s,s:o}", "fingerprint", s->fingerprint, "config", config);
    mp_pack_str(&w.pk, "model");
    mp_pack_json(&w.pk, mj);
    json_decref(mj);
    mp_pack_kv_int(&w.pk, "rank", s->rank);
    mp_pack_kv_double(&w.pk, "alpha", s->alpha);
    mp_pack_kv_double(&w.pk, "dropout", s->dropout);
    mp_pack_str(&w.pk, "targets");
    json_t *targets = targets_json(s);
    mp_pack_json(&w.pk, targets);
    json_decref(targets);
    if (training) {
        mp_pack_str(&w.pk, "training");
        mp_pack_json(&w.pk, training);
    }
    if (curve) {
        mp_pack_str(&w.pk, "loss_curve");
        mp_pack_json(&w.pk, curve);
    }
    stream_end_record(&w);
    for (int k = 0; k < s->n; k++) {
        const lora_adapter *a = &s->ad[k];
        char name[200];
        snprintf(name, sizeof name, "%s.lora_A", a->name);
        write_tensor(&w, name, s->rank, a->nin, s->params + a->a);
        snprintf(name, sizeof name, "%s.lora_B", a->name);
        write_tensor(&w, name, a->nout, s->rank, s->params + a->b);
    }
    stream_writer_close(&w);
}

void adapter_write_merged(lora_set *s, model *m, int dtype, const char *path, int argc, char **argv, json_t *training)
{
    if (dtype >= 0) { /* the adapted matrices held in dtype first: the merge rounds to it once */
        for (int k = 0; k < s->n; k++) {
            tensor *w = model_tensor(m, s->ad[k].name);
            if (w)
                tensor_convert(w, (enum dtype)dtype);
        }
        model_set_dtype(m, (enum dtype)dtype);
    }
    lora_merge(s, m);
    json_t *targets = targets_json(s);
    json_t *lj = json_pack("{s:s,s:i,s:f,s:f,s:o}", "base_fingerprint", s->fingerprint, "rank", s->rank, "alpha",
                           s->alpha, "dropout", s->dropout, "targets", targets);
    if (training)
        json_object_set(lj, "training", training);
    json_t *prov = json_object();
    json_object_set_new(prov, "base_fingerprint", json_string(s->fingerprint));
    if (m->provenance)
        json_object_set(prov, "base_provenance", m->provenance);
    json_object_set_new(prov, "lora", lj);
    model_save(m, path, model_out_of_path(path), -1, argc, argv, prov);
    json_decref(prov);
}

void trained_write(model *m, const char *base_fp, int dtype, const char *path, int argc, char **argv,
                   json_t *training)
{
    if (dtype >= 0)
        model_set_dtype(m, (enum dtype)dtype);
    else /* each back in its stored dtype, rounded now, so that the fingerprint is the output's */
        for (int i = 0; i < m->n_tensors; i++) {
            tensor *t = &m->tensors[i];
            if (t->stored != DTYPE_F32 && t->ndim == 2)
                tensor_convert(t, t->stored);
            else if (t->stored != DTYPE_F32)
                tensor_round_to(t, t->stored);
        }
    json_t *prov = json_object();
    json_object_set_new(prov, "base_fingerprint", json_string(base_fp));
    if (m->provenance)
        json_object_set(prov, "base_provenance", m->provenance);
    json_t *fj = json_object();
    if (training)
        json_object_set(fj, "training", training);
    json_object_set_new(prov, "full", fj);
    checkpoint_write(m, path, argc, argv, prov);
    json_decref(prov);
}

void adapter_read(lora_set *s, const char *path, const model *m)
{
    stream_reader r;
    stream_reader_open(&r, path, "adapter");
    const msgpack_object *mo = mp_get(&r.header, "model");
    char *fp = mo ? mp_strdup(mp_get(mo, "fingerprint")) : NULL;
    int64_t rank;
    double alpha;
    const msgpack_object *tg = mp_get(&r.header, "targets");
    if (!fp || !mp_int(mp_get(&r.header, "rank"), &rank) || !mp_double(mp_get(&r.header, "alpha"), &alpha) || !tg ||
        tg->type != MSGPACK_OBJECT_ARRAY)
        stream_die(&r, "adapter header lacks the model fingerprint, rank, alpha or targets");
    if (rank < 1 || rank > (1 << 20) || !isfinite(alpha))
        stream_die(&r, "adapter header has an invalid rank or alpha");
    unsigned targets = 0;
    for (uint32_t i = 0; i < tg->via.array.size; i++) {
        char *name = mp_strdup(&tg->via.array.ptr[i]);
        unsigned bit = name ? lora_targets_parse(m->cfg.arch, name) : 0;
        if (!bit) {
            char *valid = lora_targets_string(m->cfg.arch, lora_arch_targets(m->cfg.arch));
            stream_die(&r, "adapter header names target '%s', which a %s model lacks (its targets: %s)",
                       name ? name : "?", model_archs[m->cfg.arch].name, valid);
        }
        targets |= bit;
        free(name);
    }
    lora_init(s, m, targets, (int)rank, alpha); /* dropout 0: the header's is a record of training */
    if (strcmp(fp, s->fingerprint))
        stream_die(&r, "the adapter was made for model %s, not %s (%s)", fp, s->fingerprint,
                   m->source ? m->source : "model");
    free(fp);
    bool *seen = xcalloc((size_t)s->n * 2, sizeof *seen);
    msgpack_object rec;
    while (stream_next(&r, &rec)) {
        if (!mp_is_str(mp_get(&rec, "t"), "tensor"))
            continue;
        char *name = mp_strdup(mp_get(&rec, "name"));
        char *dt = mp_strdup(mp_get(&rec, "dtype"));
        const msgpack_object *shape = mp_get(&rec, "shape");
        int64_t d0 = 0, d1 = 0;
        if (!name || !dt || !shape || shape->type != MSGPACK_OBJECT_ARRAY || shape->via.array.size != 2 ||
            !mp_int(&shape->via.array.ptr[0], &d0) || !mp_int(&shape->via.array.ptr[1], &d1) || !r.payload_key)
            stream_die(&r, "tensor record %llu lacks a name, dtype, 2-D shape or data", (unsigned long long)r.records);
        size_t len = strlen(name);
        int which = len > 7 && !strcmp(name + len - 7, ".lora_A") ? 0 : len > 7 && !strcmp(name + len - 7, ".lora_B") ? 1 : -1;
        int k = -1;
        for (int i = 0; which >= 0 && i < s->n && k < 0; i++)
            if (strlen(s->ad[i].name) == len - 7 && !strncmp(name, s->ad[i].name, len - 7))
                k = i;
        if (k < 0)
            stream_die(&r, "tensor '%s' is not an adapter of this model's %s", name,
                       "targets (NAME.lora_A or NAME.lora_B of an adapted weight)");
        const lora_adapter *a = &s->ad[k];
        int64_t want0 = which == 0 ? s->rank : a->nout, want1 = which == 0 ? a->nin : s->rank;
        if (strcmp(dt, "f32") || d0 != want0 || d1 != want1 || r.payload_len != (uint64_t)(d0 * d1) * sizeof(float))
            stream_die(&r, "tensor '%s': expected f32 [%lld, %lld], got %s [%lld, %lld]", name, (long long)want0,
                       (long long)want1, dt, (long long)d0, (long long)d1);
        if (seen[2 * k + which])
            stream_die(&r, "tensor '%s' appears twice", name);
        seen[2 * k + which] = true;
        float *dst = s->params + (which == 0 ? a->a : a->b);
        stream_read_payload(&r, dst, r.payload_len);
        for (int64_t i = 0; i < d0 * d1; i++)
            if (!isfinite(dst[i]))
                stream_die(&r, "tensor '%s' holds a non-finite value", name);
        free(name);
        free(dt);
    }
    for (int k = 0; k < s->n; k++)
        if (!seen[2 * k] || !seen[2 * k + 1])
            stream_die(&r, "no %s.lora_%c (every adapted weight needs A and B)", s->ad[k].name, seen[2 * k] ? 'B' : 'A');
    free(seen);
    stream_reader_close(&r);
}

lora_set *adapter_load(const char *path, const model *m)
{
    lora_set *s = xcalloc(1, sizeof *s);
    adapter_read(s, path, m);
    return s;
}

