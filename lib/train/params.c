/* params.c - the trained parameters as spans, their flat gradient, AdamW.
 *
 * Letters: P trained parameters. */
#include "train/params.h"

#include <math.h>
#include <string.h>

#include "base/util.h"

void params_lora(train_params *p, lora_set *s, model *m)
{
    memset(p, 0, sizeof *p);
    lora_alloc_grads(s);
    p->lora = s;
    p->m = m;
    p->n_spans = 1;
    p->spans = xmalloc(sizeof *p->spans);
    p->spans[0] = (param_span){s->params, s->n_params};
    p->n = s->n_params;
    p->grads = s->grads;
}

void params_full(train_params *p, model *m)
{
    memset(p, 0, sizeof *p);
    m->fingerprint[0] = 0; /* every weight trained: other values */
    p->m = m;
    p->n_spans = m->n_tensors;
    p->spans = xmalloc((size_t)m->n_tensors * sizeof *p->spans);
    p->off = xmalloc((size_t)m->n_tensors * sizeof *p->off);
    for (int i = 0; i < m->n_tensors; i++) {
        tensor *t = &m->tensors[i];
        tensor_convert(t, DTYPE_F32); /* its own aligned fp32 buffer, unless it has one */
        p->spans[i] = (param_span){tensor_f32(t), (size_t)t->numel};
        p->off[i] = p->n;
        p->n += (size_t)t->numel;
    }
    p->grads = xcalloc(p->n, sizeof(float));
}

void params_free(train_params *p)
{
    if (p->lora) {
        free(p->lora->grads);
        p->lora->grads = NULL;
    } else {
        free(p->grads);
    }
    free(p->spans);
    free(p->off);
    memset(p, 0, sizeof *p);
}

void params_get(const train_params *p, float *flat)
{
    for (int i = 0; i < p->n_spans; i++) {
        memcpy(flat, p->spans[i].p, p->spans[i].n * sizeof(float));
        flat += p->spans[i].n;
    }
}

void params_set(train_params *p, const float *flat)
{
    for (int i = 0; i < p->n_spans; i++) {
        memcpy(p->spans[i].p, flat, p->spans[i].n * sizeof(float));
        flat += p->spans[i].n;
    }
}

void params_grad_sink(void *ctx, int layer, const weight_grad *g, int n)
{
    (void)layer;
    train_params *p = ctx;
    for (int k = 0; k < n; k++) {
        ptrdiff_t i = g[k].w - p->m->tensors;
        if (i < 0 || i >= p->m->n_tensors)
            die("params_grad_sink: '%s' is not a tensor of the model trained", g[k].name);
        float *dst = p->grads + p->off[i];
        for (int64_t j = 0; j < g[k].w->numel; j++)
            dst[j] += g[k].grad[j];
    }
}

void adamw_step(train_params *p, float *m1, float *m2, double lr, int64_t t, const adamw_options *o)
{
    double bc1 = 1 - pow(o->beta1, (double)t), bc2 = 1 - pow(o->beta2, (double)t);
    float step = (float)(lr / bc1), bc2s = (float)sqrt(bc2), eps = (float)o->eps;
    float decay = (float)(1 - lr * o->weight_decay), w1 = (float)(1 - o->beta1), b2 = (float)o->beta2,
          w2 = (float)(1 - o->beta2);
    const float *g = p->grads;
    for (int s = 0; s < p->n_spans; s++) {
        float *x = p->spans[s].p;
        for (size_t i = 0; i < p->spans[s].n; i++) {
            if (o->weight_decay != 0)
                x[i] *= decay;
            m1[i] += w1 * (g[i] - m1[i]);
            m2[i] = b2 * m2[i] + w2 * g[i] * g[i];
            x[i] -= step * m1[i] / (sqrtf(m2[i]) / bc2s + eps);
        }
        g += p->spans[s].n, m1 += p->spans[s].n, m2 += p->spans[s].n;
    }
}
