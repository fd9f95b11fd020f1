/* model_save.c - which file a model goes out as (model_save.h). */
#include "format/model_save.h"

#include <string.h>

#include "base/util.h"
#include "format/checkpoint.h"
#include "format/gguf.h"
#include "format/hf_folder.h"

static const char *const out_names[MODEL_OUT_COUNT] = { "checkpoint", "gguf", "hf" };

int model_out_from_name(const char *s)
{
    return name_lookup(s, out_names, MODEL_OUT_COUNT);
}

enum model_out model_out_of_path(const char *path)
{
    size_t n = path ? strlen(path) : 0;
    return n > 5 && !strcmp(path + n - 5, ".gguf") ? MODEL_OUT_GGUF : MODEL_OUT_CHECKPOINT;
}

void model_save(model *m, const char *path, enum model_out to, int dtype, int argc, char **argv, json_t *provenance)
{
    if (to != MODEL_OUT_CHECKPOINT && (!path || !strcmp(path, "-")))
        die("a %s model is written to a %s, not to stdout", out_names[to], to == MODEL_OUT_GGUF ? "file" : "folder");
    enum dtype dt = dtype >= 0 ? (enum dtype)dtype : m->embed ? m->embed->dtype : DTYPE_F32;
    if (to == MODEL_OUT_GGUF)
        gguf_write(m, path, dt);
    else if (to == MODEL_OUT_HF)
        hf_export(m, path, dt);
    else
        checkpoint_write(m, path, argc, argv, provenance);
}
