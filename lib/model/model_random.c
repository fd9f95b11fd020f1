/* model_random.c - models with random weights, for tests and fixtures.
 *
 * Each tensor has its own generator, seeded from XXH64(name, seed), so a tensor's
 * values depend only on the seed, its name and its size: two configs that differ
 * in one layer share every other tensor. Scales are chosen so activations stay
 * near unit size through any depth (see model_init_random in model.h). */
#include <math.h>
#include <string.h>

#include <xxhash.h>

#include "base/rng.h"
#include "base/util.h"
#include "model/model.h"

typedef struct {
    uint64_t s;
    bool have_spare;
    double spare;
} rng;

/* Uniform in (0, 1]. */
static double uniform(rng *r) { return ((double)(rng_next(&r->s) >> 11) + 1.0) * 0x1.0p-53; }

/* Standard normal (Box-Muller, both values used). */
static double gaussian(rng *r)
{
    if (r->have_spare) {
        r->have_spare = false;
        return r->spare;
    }
    double u = uniform(r), v = uniform(r);
    double rad = sqrt(-2.0 * log(u)), ang = 2.0 * M_PI * v;
    r->spare = rad * sin(ang);
    r->have_spare = true;
    return rad * cos(ang);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* Whether t is a map that feeds the residual stream (the table says which). */
static bool feeds_residual(const model_config *c, const tensor *t)
{
    const char *rest;
    if (model_layer_of(t->name, &rest) < 0)
        return false;
    int id = model_layer_weight_id(c, rest);
    return id >= 0 && layer_weight_feeds_residual(id);
}

/* Values of the random model's tensor t (storage of any dtype, rounded to nearest
 * even when narrower than fp32): normal with a mean and spread by its role. */
static void fill(tensor *t, const model_config *c, uint64_t seed)
{
    int dim = c->dim;
    rng r = {XXH64(t->name, strlen(t->name), seed), false, 0};
    double mean = 0, std;
    if (ends_with(t->name, "norm.weight")) {
        mean = 1;
        std = 0.1;
    } else if (ends_with(t->name, ".bias")) {
        std = 0.1;
    } else if (strstr(t->name, "embed") || strstr(t->name, "word_embeddings")) {
        std = 1 / sqrt((double)dim);
    } else {
        std = 1 / sqrt((double)t->shape[1]);
        if (feeds_residual(c, t))
            std *= 0.5;
    }
    float block[4096];
    for (int64_t s = 0; s < t->numel; s += 4096) {
        int64_t n = t->numel - s < 4096 ? t->numel - s : 4096;
        for (int64_t i = 0; i < n; i++)
            block[i] = (float)(mean + std * gaussian(&r));
        tensor_set_f32(t, s, n, block);
    }
}

static void specs_as_tensors(model *m, const model_config *cfg, enum dtype dtype, bool with_values, uint64_t seed)
{
    memset(m, 0, sizeof *m);
    config_copy(&m->cfg, cfg);
    m->source = xstrdup("random model");
    m->extra_config = json_object();
    tensor_spec *specs;
    int n = model_tensor_specs(cfg, &specs);
    m->tensors = xcalloc((size_t)n, sizeof *m->tensors);
    for (int i = 0; i < n; i++) {
        tensor *t = &m->tensors[m->n_tensors++];
        tensor_init_shape(t, specs[i].name, specs[i].ndim, specs[i].shape);
        t->stored = t->dtype = dtype;
        if (with_values) {
            tensor_alloc(t);
            fill(t, &m->cfg, seed);
        }
    }
    tensor_specs_free(specs, n);
}

void model_init_random(model *m, const model_config *cfg, uint64_t seed)
{
    specs_as_tensors(m, cfg, DTYPE_F32, true, seed);
    model_bind(m);
}

static void fill_from_source(tensor *t, void *ctx)
{
    const random_source *rs = ctx;
    tensor_alloc(t);
    fill(t, rs->cfg, rs->seed);
}

void model_init_random_shapes(model *m, const model_config *cfg, uint64_t seed, enum dtype dtype, random_source *rs)
{
    specs_as_tensors(m, cfg, dtype, false, seed);
    *rs = (random_source){{fill_from_source, rs, NULL}, seed, &m->cfg};
    m->values = &rs->src;
}
