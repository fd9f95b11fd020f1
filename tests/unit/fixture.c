/* fixture.c - random fixtures of the unit tests (fixture.h). */
#include "fixture.h"

#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "base/util.h"

uint64_t fixture_rng = 1;

double fixture_urand(void) { return (float)((rng_next(&fixture_rng) >> 40) / (double)(1ull << 24)) * 2.0f - 1.0f; }

int fixture_irand(int n) { return (int)rng_below(&fixture_rng, (uint64_t)n); }

void fixture_config(model_config *c, const fixture_shape *sp)
{
    memset(c, 0, sizeof *c);
    strcpy(c->model_type, "llama");
    c->dim = sp->D, c->n_layers = sp->L, c->vocab = sp->V, c->head_dim = sp->hd, c->max_seq = 64;
    size_t bytes = (size_t)sp->L * sizeof(int);
    c->n_heads = memcpy(xmalloc(bytes), sp->H, bytes);
    c->n_kv_heads = memcpy(xmalloc(bytes), sp->KV, bytes);
    c->ffn_dim = memcpy(xmalloc(bytes), sp->F, bytes);
    c->norm_eps = 1e-5f, c->rope_theta = 10000.0f, c->rope_style = sp->style;
    c->tied = sp->tied, c->qkv_bias = sp->qkv_bias, c->o_bias = sp->o_bias, c->down_bias = sp->down_bias;
    c->bos_id = 1, c->eos_id = 2;
}

void fixture_model(model *m, const fixture_shape *sp, uint64_t seed)
{
    model_config c;
    fixture_config(&c, sp);
    model_init_random(m, &c, seed);
    config_free(&c);
}

const char *const fixture_today[FIXTURE_TODAY_COUNT] = {"tiny-llama3.json", "tiny-qwen2.json", "tiny-qwen3.json"};

void fixture_json_model(model *m, json_t *j, uint64_t seed)
{
    model_config c;
    config_from_json(&c, j, "fixture");
    model_init_random(m, &c, seed);
    config_free(&c);
}

void fixture_config_model(model *m, const char *config, uint64_t seed)
{
    json_error_t err;
    json_t *j = json_loads(config, 0, &err);
    if (!j)
        die("fixture: bad config JSON: %s", err.text);
    fixture_json_model(m, j, seed);
    json_decref(j);
}

json_t *fixture_config_json(const char *file)
{
    char *path = xasprintf("tests/configs/%s", file);
    json_error_t err;
    json_t *j = json_load_file(path, 0, &err);
    if (!j)
        die("%s: %s (line %d)", path, err.text, err.line);
    free(path);
    return j;
}

void fixture_batch(int *tokens, int *targets, int B, int T, int V)
{
    for (int i = 0; i < B * T; i++)
        tokens[i] = fixture_irand(V);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            targets[b * T + t] = t + 1 < T ? tokens[b * T + t + 1] : -1;
    if (T > 2)
        targets[1] = -1;
}

void fixture_teacher(distill_teacher *t, const float *y, int N, int V, int k, float tau)
{
    *t = (distill_teacher){.k = 0, .logits = y};
    if (!k)
        return;
    int32_t *ids = xmalloc((size_t)N * k * sizeof *ids);
    float *logp = xmalloc((size_t)N * k * sizeof *logp), *rest = xmalloc((size_t)N * sizeof *rest);
    uint8_t *mark = xcalloc((size_t)V, 1);
    for (int r = 0; r < N; r++)
        distill_topk(y + (size_t)r * V, V, k, tau, ids + (size_t)r * k, logp + (size_t)r * k, rest + r, mark);
    free(mark);
    *t = (distill_teacher){.k = k, .ids = ids, .logp = logp, .rest = rest};
}

void fixture_teacher_free(distill_teacher *t)
{
    if (t->k) {
        free((void *)t->ids), free((void *)t->logp), free((void *)t->rest);
    }
    memset(t, 0, sizeof *t);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

prune_choice fixture_choice(uint64_t *rng, int group, int64_t U, int64_t lo, int64_t hi)
{
    prune_choice c = {.group = group};
    c.n_removed = lo + (int64_t)rng_below(rng, (uint64_t)(hi - lo + 1));
    c.removed = xmalloc((size_t)(U > 0 ? U : 1) * sizeof(int64_t));
    int *perm = xmalloc((size_t)(U > 0 ? U : 1) * sizeof *perm);
    for (int64_t u = 0; u < U; u++)
        perm[u] = (int)u;
    rng_shuffle(perm, (int)U, rng);
    for (int64_t k = 0; k < c.n_removed; k++)
        c.removed[k] = perm[k];
    qsort(c.removed, (size_t)c.n_removed, sizeof *c.removed, cmp_i64);
    free(perm);
    return c;
}
