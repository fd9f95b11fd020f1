/* lora.c - LoRA adapters: the set, its initialisation, the forward and backward
 * pieces the model's passes call, dropout and merging. The adapter stream is
 * adapter.c's.
 *
 * Letters: r rank, N rows, I/O a map's input/output width (nin/nout in code). */
#include "compute/lora.h"

#include <math.h>
#include <string.h>

#include <cblas.h>
#include <xxhash.h>

#include "base/rng.h"
#include "base/util.h"
#include "compute/matmul.h"

/* The targets are the rows of the weight table (model.h) with a lora column;
 * their names per architecture are their modules' names there. */
static int target_weight[LORA_TARGET_COUNT];         /* weight id of target t */
static int target_order[LORA_TARGET_COUNT];          /* the targets in table (the forward's) order */
static char target_names[ARCH_COUNT][LORA_TARGET_COUNT][32]; /* "q_proj"; "" where the arch has none */

static void targets_init(void)
{
    static bool done;
    if (done)
        return;
    int n = 0;
    for (int t = 0; t < LORA_TARGET_COUNT; t++)
        target_weight[t] = -1;
    for (int id = 0; id < LW_COUNT; id++) {
        int t = layer_weight_table[id].lora;
        if (t == LORA_NONE)
            continue;
        if (t < 0 || t >= LORA_TARGET_COUNT || target_weight[t] >= 0)
            die("lora: the weight table names LoRA target %d twice or out of range", t);
        target_weight[t] = id;
        target_order[n++] = t;
        for (int a = 0; a < ARCH_COUNT; a++) {
            /* "self_attn.q_proj.weight" -> "q_proj" */
            const char *name = model_archs[a].layer_names[id];
            if (!name)
                continue;
            size_t len = strlen(name);
            if (len > 7 && !strcmp(name + len - 7, ".weight"))
                len -= 7;
            const char *p = name + len;
            while (p > name && p[-1] != '.')
                p--;
            snprintf(target_names[a][t], sizeof target_names[a][t], "%.*s", (int)(name + len - p), p);
        }
    }
    if (n != LORA_TARGET_COUNT)
        die("lora: the weight table has %d LoRA targets, enum lora_target %d", n, LORA_TARGET_COUNT);
    done = true;
}

const char *lora_target_name(enum model_arch arch, int target)
{
    targets_init();
    if (target < 0 || target >= LORA_TARGET_COUNT || !target_names[arch][target][0])
        return NULL;
    return target_names[arch][target];
}

unsigned lora_arch_targets(enum model_arch arch)
{
    unsigned mask = 0;
    for (int t = 0; t < LORA_TARGET_COUNT; t++)
        if (lora_target_name(arch, t))
            mask |= 1u << t;
    return mask;
}

int lora_target_of(int weight_id)
{
    return weight_id >= 0 && weight_id < LW_COUNT ? layer_weight_table[weight_id].lora : -1;
}

/* name is target t's in arch, or its short form (the name without "_proj"). */
static bool names_target(enum model_arch arch, int t, const char *name)
{
    const char *full = lora_target_name(arch, t);
    if (!full)
        return false;
    if (!strcmp(name, full))
        return true;
    size_t n = strlen(full), k = strlen(name);
    return n > 5 && !strcmp(full + n - 5, "_proj") && k == n - 5 && !strncmp(name, full, k);
}

unsigned lora_targets_parse(enum model_arch arch, const char *list)
{
    unsigned mask = 0;
    char *copy = xstrdup(list), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int found = -1;
        if (!strcmp(t, "all")) {
            mask |= lora_arch_targets(arch);
            continue;
        }
        for (int i = 0; i < LORA_TARGET_COUNT && found < 0; i++)
            if (names_target(arch, i, t))
                found = i;
        if (found < 0) {
            free(copy);
            return 0;
        }
        mask |= 1u << found;
    }
    free(copy);
    return mask;
}

char *lora_targets_string(enum model_arch arch, unsigned targets)
{
    targets_init();
    char buf[LORA_TARGET_COUNT * 32] = "";
    for (int i = 0; i < LORA_TARGET_COUNT; i++) {
        int t = target_order[i];
        const char *name = lora_target_name(arch, t);
        if (!(targets & (1u << t)) || !name)
            continue;
        if (*buf)
            strcat(buf, ",");
        strcat(buf, name);
    }
    return xstrdup(buf);
}

/* ------------------------------------------------------------------ the set */

static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }

/* Input and output width of target t's map in layer l (0 when it is absent). */
static void map_shape(const model_config *c, int l, int t, int *nin, int *nout)
{
    int64_t shape[2];
    bool present = layer_weight_shape(c, l, target_weight[t], shape) == 2;
    *nout = present ? (int)shape[0] : 0;
    *nin = present ? (int)shape[1] : 0;
}

void lora_init(lora_set *s, const model *m, unsigned targets, int rank, double alpha)
{
    const model_config *c = &m->cfg;
    const char *src = m->source ? m->source : "model";
    if (rank < 1)
        die("lora: rank %d must be at least 1", rank);
    if (!m->has_weights)
        die("%s: a bare config has no weights to adapt", src);
    targets_init();
    memset(s, 0, sizeof *s);
    s->rank = rank;
    s->alpha = alpha;
    s->scale = (float)(alpha / rank);
    s->arch = c->arch;
    s->targets = targets & lora_arch_targets(c->arch);
    s->n_layers = c->n_layers;
    s->index = xmalloc((size_t)c->n_layers * LORA_TARGET_COUNT * sizeof *s->index);
    s->ad = xcalloc((size_t)c->n_layers * LORA_TARGET_COUNT + 1, sizeof *s->ad);
    size_t off = 0;
    for (int i = 0; i < c->n_layers * LORA_TARGET_COUNT; i++)
        s->index[i] = -1;
    for (int l = 0; l < c->n_layers; l++)
        for (int i = 0; i < LORA_TARGET_COUNT; i++) {
            int t = target_order[i], nin, nout;
            map_shape(c, l, t, &nin, &nout);
            if (!(s->targets & (1u << t)) || nin == 0 || nout == 0)
                continue;
            lora_adapter *a = &s->ad[s->n];
            s->index[l * LORA_TARGET_COUNT + t] = s->n++;
            a->layer = l, a->target = t, a->nin = nin, a->nout = nout;
            char name[200];
            layer_weight_name(c, name, sizeof name, l, target_weight[t]);
            a->name = xstrdup(name);
            if (!model_tensor(m, a->name))
                die("%s: no tensor '%s' to adapt", src, a->name);
            s->n_weights += (size_t)rank * (size_t)(nin + nout);
            a->a = off;
            off += round16((size_t)rank * nin);
            a->b = off;
            off += round16((size_t)nout * rank);
        }
    if (s->n == 0)
        die("%s: no linear map to adapt (targets %s)", src, s->targets ? "absent from every layer" : "empty");
    s->n_params = off;
    s->params = xmalloc_aligned(off * sizeof(float));
    memset(s->params, 0, off * sizeof(float));
    model_bound_fingerprint(m, s->fingerprint);
}

void lora_alloc_grads(lora_set *s)
{
    if (!s->grads)
        s->grads = xmalloc_aligned(s->n_params * sizeof(float));
    memset(s->grads, 0, s->n_params * sizeof(float));
}

void lora_free(lora_set *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n; i++)
        free(s->ad[i].name);
    free(s->ad);
    free(s->index);
    free(s->params);
    free(s->grads);
    free(s->xd);
    free(s->u);
    free(s->du);
    memset(s, 0, sizeof *s);
}

void lora_init_weights(lora_set *s, uint64_t seed)
{
    for (int k = 0; k < s->n; k++) {
        const lora_adapter *a = &s->ad[k];
        char name[160];
        snprintf(name, sizeof name, "%s.lora_A", a->name);
        uint64_t state = XXH64(name, strlen(name), seed);
        float *A = s->params + a->a;
        double bound = 1.0 / sqrt((double)a->nin);
        for (size_t i = 0; i < (size_t)s->rank * a->nin; i++) {
            double u = rng_unit(&state);
            A[i] = (float)((2 * u - 1) * bound);
        }
        memset(s->params + a->b, 0, (size_t)a->nout * s->rank * sizeof(float));
    }
}

/* ------------------------------------------------------------------ dropout */

/* The key of adapter (l, t)'s mask in the current pass. */
static uint64_t drop_key(const lora_set *s, int l, int t)
{
    uint64_t k = rng_hash(s->seed);
    k = rng_mix(k ^ (s->pass + 0x632be59bd9b4e019ull));
    return rng_mix(k ^ ((uint64_t)l << 8 | (uint64_t)t));
}

/* An element is dropped when the top 24 bits of its hash fall below p * 2^24. */
static uint32_t drop_threshold(double p) { return (uint32_t)llround(p * 16777216.0); }

static inline bool drop_keep(uint64_t key, uint64_t idx, uint32_t thresh)
{
    return (uint32_t)(rng_mix(key + idx * RNG_GOLDEN) >> 40) >= thresh;
}

float lora_dropout_factor(const lora_set *s, int layer, int target, int64_t row, int64_t col)
{
    if (s->dropout <= 0)
        return 1.0f;
    const lora_adapter *a = lora_find(s, layer, target);
    uint64_t idx = (uint64_t)row * (uint64_t)(a ? a->nin : 0) + (uint64_t)col;
    return drop_keep(drop_key(s, layer, target), idx, drop_threshold(s->dropout)) ? (float)(1.0 / (1.0 - s->dropout))
                                                                                   : 0.0f;
}

/* x (N, I) *= the mask of adapter a (in place allowed: out may equal in). */
static void dropout_apply(const lora_set *s, const lora_adapter *a, float *out, const float *in, int N)
{
    uint64_t key = drop_key(s, a->layer, a->target);
    uint32_t thresh = drop_threshold(s->dropout);
    float keep = (float)(1.0 / (1.0 - s->dropout));
    size_t n = (size_t)N * a->nin;
    for (size_t i = 0; i < n; i++)
        out[i] = drop_keep(key, i, thresh) ? in[i] * keep : 0.0f;
}

/* ------------------------------------------------------------------ forward, backward */

static void reserve(lora_set *s, int N)
{
    if ((size_t)N <= s->scratch_rows)
        return;
    int maxin = 0;
    for (int k = 0; k < s->n; k++)
        maxin = s->ad[k].nin > maxin ? s->ad[k].nin : maxin;
    free(s->xd), free(s->u), free(s->du);
    s->scratch_rows = (size_t)N;
    s->xd = xmalloc_aligned((size_t)N * maxin * sizeof(float));
    s->u = xmalloc_aligned((size_t)N * s->rank * sizeof(float));
    s->du = xmalloc_aligned((size_t)N * s->rank * sizeof(float));
}

void lora_forward(lora_set *s, int layer, int target, float *out, const float *in, int N, bool drop)
{
    const lora_adapter *a = target < 0 ? NULL : lora_find(s, layer, target);
    if (!a)
        return;
    reserve(s, N);
    int r = s->rank, nin = a->nin, nout = a->nout;
    const float *x = in; /* (N, I) */
    if (drop && s->dropout > 0) {
        dropout_apply(s, a, s->xd, in, N);
        x = s->xd;
    }
    /* u (N, r) = x A^T; out (N, O) += scale * u B^T */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, r, nin, 1.0f, x, nin, s->params + a->a, nin, 0.0f, s->u, r);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, nout, r, s->scale, s->u, r, s->params + a->b, r, 1.0f, out,
                nout);
}

/* With x = drop(in), u = x A^T, out += s u B^T:
 *   dB += s dout^T u,  du = s dout B,  dA += du^T x,  dx = du A,  din += drop(dx). */
void lora_backward(lora_set *s, int layer, int target, float *din, const float *dout, const float *in, int N)
{
    const lora_adapter *a = target < 0 ? NULL : lora_find(s, layer, target);
    if (!a)
        return;
    reserve(s, N);
    int r = s->rank, nin = a->nin, nout = a->nout;
    const float *A = s->params + a->a, *B = s->params + a->b;
    bool drop = s->dropout > 0;
    const float *x = in;
    if (drop) {
        dropout_apply(s, a, s->xd, in, N);
        x = s->xd;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, r, nin, 1.0f, x, nin, A, nin, 0.0f, s->u, r);
    if (s->grads)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nout, r, N, s->scale, dout, nout, s->u, r, 1.0f,
                    s->grads + a->b, r);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, r, nout, s->scale, dout, nout, B, r, 0.0f, s->du, r);
    if (s->grads)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r, nin, N, 1.0f, s->du, r, x, nin, 1.0f, s->grads + a->a, nin);
    if (!din)
        return;
    if (!drop) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, nin, r, 1.0f, s->du, r, A, nin, 1.0f, din, nin);
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, nin, r, 1.0f, s->du, r, A, nin, 0.0f, s->xd, nin);
    dropout_apply(s, a, s->xd, s->xd, N);
    size_t n = (size_t)N * nin;
    for (size_t i = 0; i < n; i++)
        din[i] += s->xd[i];
}

/* ------------------------------------------------------------------ merge */

void lora_merge(const lora_set *s, model *m)
{
    m->fingerprint[0] = 0; /* other values */
    for (int k = 0; k < s->n; k++) {
        const lora_adapter *a = &s->ad[k];
        tensor *w = model_tensor(m, a->name);
        if (!w || w->ndim != 2 || w->shape[0] != a->nout || w->shape[1] != a->nin)
            die("%s: no tensor '%s' of shape [%d, %d] to merge into", m->source ? m->source : "model", a->name,
                a->nout, a->nin);
        /* W (O, I) += scale * B (O, r) A (r, I) */
        matmul_add_lowrank(w, s->scale, s->params + a->b, s->params + a->a, s->rank);
    }
}

void lora_destroy(lora_set *s)
{
    lora_free(s);
    free(s);
}
