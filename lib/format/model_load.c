/* model_load.c - which loader reads a path: one table of source formats, tried
 * in order, each recognised by the path or its first bytes (see model_load.h). */
#include "format/model_load.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "format/checkpoint.h"
#include "format/gguf.h"
#include "format/llama2c.h"
#include "format/pytorch.h"
#include "format/hf_folder.h"
#include "format/stream.h"
#include "text/tokenizer.h"
#include "text/tokenizer_folder.h"

/* What a loader is given: the path, and for a file its first bytes with the
 * stream positioned after them. */
typedef struct {
    const char *path; /* "stdin" for "-" */
    bool dir, json, stdin_;
    FILE *f;          /* NULL for a folder or a .json path */
    uint8_t head[16];
    size_t n;         /* bytes in head */
    bool unscanned;   /* model_load_unscanned: a folder's values left unread */
} source;

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* ---- the loaders ---- */

static json_t *load_json(const char *path)
{
    json_error_t err;
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
    if (!j) {
        if (!path_exists(path))
            die("cannot read '%s': %s", path, strerror(ENOENT));
        die("%s:%d: %s", path, err.line, err.text);
    }
    return j;
}

static void load_config_file(model *m, const char *path)
{
    json_t *j = load_json(path);
    model_set_config(m, j, path);
    json_decref(j);
    m->layers = xcalloc((size_t)m->cfg.n_layers, sizeof *m->layers);
    m->has_weights = false;
}

static void set_tokenizer(model *m, const char *format, uint8_t *data, size_t n)
{
    free(m->tok.format);
    free(m->tok.data);
    m->tok.format = xstrdup(format);
    m->tok.data = data;
    m->tok.size = n;
}

static void load_config_only(model *m, const source *s)
{
    m->source = xstrdup(s->path);
    load_config_file(m, s->path);
}

static void load_hf_folder(model *m, const source *s)
{
    const char *dir = s->path;
    m->source = xstrdup(dir);
    char *cfg = path_join(dir, "config.json");
    if (!path_exists(cfg))
        die("%s: not a model folder (no config.json)", dir);
    load_config_file(m, cfg);
    free(cfg);
    hf_read_weights(dir, &m->tensors, &m->n_tensors);
    if (s->unscanned)
        model_bind_unscanned(m);
    else
        model_bind(m);

    uint8_t *data;
    size_t n;
    const char *format = tokenizer_read_folder(dir, &data, &n);
    if (format)
        set_tokenizer(m, format, data, n);
}

static void load_checkpoint(model *m, const source *s)
{
    checkpoint_read(m, s->f, s->path, s->head, s->n);
    if (!m->source)
        m->source = xstrdup(s->path);
    if (!m->extra_config)
        m->extra_config = json_object();
}

static void load_llama2c(model *m, const source *s) { llama2c_load(m, s->path); }

static void refuse_stdin(model *m, const source *s)
{
    (void)m, (void)s;
    die("stdin: not a pare checkpoint stream (only checkpoints are read from stdin)");
}

static void load_gguf(model *m, const source *s) { gguf_read(m, s->path); }

static void refuse_pytorch(model *m, const source *s)
{
    (void)m;
    die("%s: a PyTorch checkpoint alone has no config; give its folder", s->path);
}

static void refuse_safetensors(model *m, const source *s)
{
    (void)m;
    die("%s: a .safetensors file alone has no config; give its folder", s->path);
}

/* ---- recognising them ---- */

static bool is_checkpoint(const source *s) { return s->f && stream_sniff(s->head, s->n); }
static bool is_stdin(const source *s) { return s->stdin_; }
static bool is_dir(const source *s) { return s->dir; }
static bool is_json(const source *s) { return s->json; }
static bool is_gguf(const source *s) { return s->f && gguf_sniff(s->head, s->n); }
static bool is_pytorch(const source *s) { return s->f && pytorch_sniff(s->head, s->n); }
static bool is_safetensors(const source *s) { return ends_with(s->path, ".safetensors"); }
static bool is_any(const source *s) { return s->f != NULL; }

/* The source formats, first match wins. A new format is one row here. */
static const struct {
    bool (*match)(const source *s);
    void (*load)(model *m, const source *s);
} loaders[] = {
    {is_checkpoint, load_checkpoint},       /* a pare checkpoint stream, from a file or stdin */
    {is_stdin, refuse_stdin},               /* stdin carries checkpoints only */
    {is_dir, load_hf_folder},               /* a Hugging Face folder */
    {is_json, load_config_only},            /* a bare config.json */
    {is_gguf, load_gguf},                   /* a GGUF file (llama, deci) */
    {is_pytorch, refuse_pytorch},
    {is_safetensors, refuse_safetensors},
    {is_any, load_llama2c},                 /* anything else: a llama2.c .bin */
};

static bool load(model *m, const char *path, const char *tokenizer_path, bool unscanned)
{
    memset(m, 0, sizeof *m);
    source s = {.path = path, .unscanned = unscanned};
    if (!strcmp(path, "-")) {
        s.path = "stdin";
        s.stdin_ = true;
        s.f = stdin;
    } else if (path_is_dir(path)) {
        s.dir = true;
    } else if (ends_with(path, ".json")) {
        s.json = true;
    } else if (!(s.f = fopen(path, "rb"))) {
        die("cannot read '%s': %s", path, strerror(errno));
    }
    if (s.f)
        s.n = fread(s.head, 1, sizeof s.head, s.f);
    size_t i = 0;
    while (!loaders[i].match(&s))
        i++;
    loaders[i].load(m, &s);
    unscanned = unscanned && loaders[i].load == load_hf_folder;
    if (s.f && s.f != stdin)
        fclose(s.f);

    if (tokenizer_path) {
        size_t n;
        uint8_t *data;
        const char *fmt;
        if (path_is_dir(tokenizer_path)) {
            fmt = tokenizer_read_folder(tokenizer_path, &data, &n);
            if (!fmt)
                die("%s: no tokenizer in the folder (tokenizer.model, tokenizer.json, or ice_text.model with "
                    "tokenizer_config.json)", tokenizer_path);
        } else {
            data = (uint8_t *)read_whole_file(tokenizer_path, &n);
            fmt = tokenizer_sniff(data, n);
            if (!fmt)
                die("%s: not a tokenizer (neither a SentencePiece model, a llama2.c tokenizer nor a tokenizer.json)",
                    tokenizer_path);
        }
        set_tokenizer(m, fmt, data, n);
    }
    return unscanned;
}

void model_load(model *m, const char *path, const char *tokenizer_path) { load(m, path, tokenizer_path, false); }

bool model_load_unscanned(model *m, const char *path, const char *tokenizer_path)
{
    return load(m, path, tokenizer_path, true);
}
