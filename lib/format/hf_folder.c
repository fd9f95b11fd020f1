/* hf_folder.c - Hugging Face model folders, read and written (hf_folder.h). */
#include "format/hf_folder.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/atomic_file.h"
#include "base/util.h"
#include "format/pytorch.h"
#include "format/rope_layout.h"
#include "format/safetensors.h"
#include "text/tokenizer_folder.h"

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

typedef void (*weights_reader)(const char *path, tensor **ts, int *n, int *cap);

/* Read the shards listed by the weight_map of index (a file in dir) with read,
 * checking each tensor against the map. */
static void read_sharded(const char *dir, const char *index, weights_reader read, tensor **ts, int *n)
{
    int cap = 0;
    json_error_t err;
    json_t *j = json_load_file(index, JSON_REJECT_DUPLICATES, &err);
    if (!j)
        die("%s:%d: %s", index, err.line, err.text);
    json_t *wm = json_object_get(j, "weight_map");
    if (!json_is_object(wm) || json_object_size(wm) == 0)
        die("%s: no weight_map", index);

    /* The distinct shard files, in name order. */
    size_t nw = json_object_size(wm), ns = 0;
    char **shards = xmalloc(nw * sizeof *shards);
    const char *name;
    json_t *v;
    json_object_foreach(wm, name, v) {
        if (!json_is_string(v))
            die("%s: weight_map entry for %s is not a file name", index, name);
        const char *s = json_string_value(v);
        if (!*s || strchr(s, '/') || !strcmp(s, ".") || !strcmp(s, ".."))
            die("%s: shard name '%s' is not a plain file name", index, s);
        bool seen = false;
        for (size_t i = 0; i < ns && !seen; i++)
            seen = !strcmp(shards[i], s);
        if (!seen)
            shards[ns++] = (char *)s;
    }
    qsort(shards, ns, sizeof *shards, cmp_str);

    json_t *found = json_object();
    for (size_t i = 0; i < ns; i++) {
        char *sp = path_join(dir, shards[i]);
        int before = *n;
        read(sp, ts, n, &cap);
        for (int k = before; k < *n; k++) {
            const char *tn = (*ts)[k].name;
            json_t *want = json_object_get(wm, tn);
            if (!want)
                die("%s: tensor %s is not in the weight_map of %s", sp, tn, index);
            if (strcmp(json_string_value(want), shards[i]))
                die("%s: tensor %s is mapped to %s in %s", sp, tn, json_string_value(want), index);
            if (json_object_get(found, tn))
                die("%s: tensor %s appears twice", sp, tn);
            json_object_set_new(found, tn, json_true());
        }
        free(sp);
    }
    json_object_foreach(wm, name, v)
        if (!json_object_get(found, name))
            die("%s: tensor %s of the weight_map is missing from %s", index, name,
                json_string_value(v));
    json_decref(found);
    free(shards);
    json_decref(j);
}

typedef void (*weights_writer)(const char *path, const tensor *ts, int n, enum dtype dtype,
                               const tensor_source *src);

/* The weight files of a folder, by format: STEM.EXT alone, or shards
 * STEM-0000i-of-0000N.EXT listed by STEM.EXT.index.json. */
static const struct {
    const char *stem, *ext;
    weights_reader read;
    weights_writer write;
} hf_formats[] = {
    [HF_SAFETENSORS] = {"model", ".safetensors", safetensors_read, safetensors_write},
    [HF_PYTORCH] = {"pytorch_model", ".bin", pytorch_read, pytorch_write},
};

/* dir/STEM.EXT followed by suffix ("" or ".index.json"), of format f. */
static char *hf_file(const char *dir, int f, const char *suffix)
{
    char *name = xasprintf("%s%s%s", hf_formats[f].stem, hf_formats[f].ext, suffix);
    char *p = path_join(dir, name);
    free(name);
    return p;
}

/* The weights of a folder, by the first file present: model.safetensors.index.json,
 * model.safetensors, pytorch_model.bin.index.json, pytorch_model.bin. */
void hf_read_weights(const char *dir, tensor **ts, int *n)
{
    *ts = NULL;
    *n = 0;
    for (size_t f = 0; f < sizeof hf_formats / sizeof *hf_formats; f++) {
        char *p = hf_file(dir, (int)f, ".index.json");
        if (path_exists(p)) {
            read_sharded(dir, p, hf_formats[f].read, ts, n);
            free(p);
            return;
        }
        free(p);
        p = hf_file(dir, (int)f, "");
        if (path_exists(p)) {
            int cap = 0;
            hf_formats[f].read(p, ts, n, &cap);
            free(p);
            return;
        }
        free(p);
    }
    die("%s: no model.safetensors, pytorch_model.bin or their .index.json", dir);
}

static void write_json(const char *path, json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (!s)
        die("out of memory");
    atomic_file a;
    af_open(&a, path);
    af_write(&a, s, strlen(s));
    af_write(&a, "\n", 1);
    af_close(&a);
    free(s);
}

void hf_write_folder(const model *m, const char *dir, enum dtype dtype, int shards)
{
    hf_write_folder_as(m, dir, dtype, shards, HF_SAFETENSORS);
}

void hf_write_folder_as(const model *m, const char *dir, enum dtype dtype, int shards, enum hf_weights format)
{
    const char *stem = hf_formats[format].stem, *ext = hf_formats[format].ext;
    weights_writer write = hf_formats[format].write;
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        die("cannot create '%s': %s", dir, strerror(errno));
    if (!path_is_dir(dir))
        die("'%s' is not a folder", dir);

    json_t *cj = model_config_json(m);
    json_object_set_new(cj, "torch_dtype",
                        json_string(dtype == DTYPE_F32 ? "float32" :
                                    dtype == DTYPE_F16 ? "float16" : "bfloat16"));
    char *p = path_join(dir, "config.json");
    write_json(p, cj);
    free(p);
    json_decref(cj);

    if (m->tok.size)
        tokenizer_write_folder(dir, m->tok.format, m->tok.data, m->tok.size);
    if (m->n_tensors == 0) /* a bare config */
        return;

    int n = m->n_tensors;
    if (shards > n)
        shards = n;
    if (shards <= 1) {
        p = hf_file(dir, format, "");
        write(p, m->tensors, n, dtype, m->values);
        free(p);
        return;
    }

    /* Cut the name-ordered tensors into runs of about equal bytes; a run that would
     * come out empty (one huge tensor) is dropped, so the count may be smaller. */
    uint64_t total = 0, cum = 0;
    for (int i = 0; i < n; i++)
        total += (uint64_t)m->tensors[i].numel * dtype_size(dtype);
    int *shard_of = xmalloc((size_t)n * sizeof(int));
    int used = 0, last = -1;
    for (int i = 0; i < n; i++) {
        int s = total ? (int)(cum * (uint64_t)shards / total) : i * shards / n;
        if (s >= shards)
            s = shards - 1;
        if (s != last) {
            used++;
            last = s;
        }
        shard_of[i] = used - 1;
        cum += (uint64_t)m->tensors[i].numel * dtype_size(dtype);
    }

    json_t *wm = json_object();
    for (int s = 0, start = 0; s < used; s++) {
        int end = start;
        while (end < n && shard_of[end] == s)
            end++;
        char *fname = xasprintf("%s-%05d-of-%05d%s", stem, s + 1, used, ext);
        p = path_join(dir, fname);
        write(p, m->tensors + start, end - start, dtype, m->values);
        for (int i = start; i < end; i++)
            json_object_set_new(wm, m->tensors[i].name, json_string(fname));
        free(p);
        free(fname);
        start = end;
    }
    json_t *idx = json_object();
    json_t *meta = json_object();
    json_object_set_new(meta, "total_size", json_integer((json_int_t)total));
    json_object_set_new(idx, "metadata", meta);
    json_object_set_new(idx, "weight_map", wm);
    p = hf_file(dir, format, ".index.json");
    write_json(p, idx);
    free(p);
    json_decref(idx);
    free(shard_of);
}

void hf_export(model *m, const char *dir, enum dtype dtype)
{
    const model_config *c = &m->cfg;
    if (!m->has_weights)
        die("%s: the model has no weights (a bare config)", m->source);
    for (int l = 0; l < c->n_layers; l++)
        if (c->n_heads[l] != c->n_heads[0] || c->n_kv_heads[l] != c->n_kv_heads[0] ||
            c->ffn_dim[l] != c->ffn_dim[0] || c->n_heads[l] == 0 || c->ffn_dim[l] == 0)
            die("%s: layer %d has %d heads, %d key/value heads and MLP width %d, unlike layer 0 "
                "(%d, %d, %d); transformers' LLaMA has one width for every layer: write GGUF "
                "(--to gguf) for llama.cpp's deci architecture, which has per-layer widths",
                m->source, l, c->n_heads[l], c->n_kv_heads[l], c->ffn_dim[l], c->n_heads[0],
                c->n_kv_heads[0], c->ffn_dim[0]);
    if (c->down_bias || (c->o_bias && !c->qkv_bias))
        die("%s: the model has output biases (FLAP's compensation), which transformers' LLaMA "
            "cannot express: write GGUF (--to gguf) instead", m->source);
    model_set_rope_style(m, ROPE_HALF);
    hf_write_folder(m, dir, dtype, 1);
}
