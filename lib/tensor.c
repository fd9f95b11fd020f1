/* tensor.c - reading a tensor's values; dtype names and conversions. */
#include "tensor.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

const char *dtype_name(enum dtype t)
{
    switch (t) {
    case DTYPE_F32: return "f32";
    case DTYPE_F16: return "f16";
    case DTYPE_BF16: return "bf16";
    }
    return "?";
}

int dtype_from_name(const char *s)
{
    if (!strcasecmp(s, "f32") || !strcasecmp(s, "float32")) return DTYPE_F32;
    if (!strcasecmp(s, "f16") || !strcasecmp(s, "float16")) return DTYPE_F16;
    if (!strcasecmp(s, "bf16") || !strcasecmp(s, "bfloat16")) return DTYPE_BF16;
    return -1;
}

size_t dtype_size(enum dtype t) { return t == DTYPE_F32 ? 4 : 2; }

float bf16_to_f32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffff) > 0x7f800000) /* NaN: keep it a NaN */
        return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fff + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

float f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else { /* subnormal: renormalise */
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) {
                man <<= 1;
                exp--;
            }
            u = sign | (exp << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000 | (man << 13);
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t f32_to_f16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000;
    int32_t exp = (int32_t)((u >> 23) & 0xff) - 127 + 15;
    uint32_t man = u & 0x7fffff;
    if (((u >> 23) & 0xff) == 0xff) /* inf or nan */
        return (uint16_t)(sign | 0x7c00 | (man ? 0x200 : 0));
    if (exp >= 31)
        return (uint16_t)(sign | 0x7c00);
    if (exp <= 0) {
        if (exp < -10)
            return (uint16_t)sign;
        man |= 0x800000;
        uint32_t shift = (uint32_t)(14 - exp);
        uint32_t half = man >> shift, rest = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rest > mid || (rest == mid && (half & 1)))
            half++;
        return (uint16_t)(sign | half);
    }
    uint32_t h = sign | ((uint32_t)exp << 10) | (man >> 13);
    uint32_t rest = man & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1)))
        h++; /* may carry into the exponent, which is the right result */
    return (uint16_t)h;
}

void dtype_widen_in_place(float *dst, size_t n, enum dtype t)
{
    if (t == DTYPE_F32)
        return;
    /* Source halves sit in the upper half of dst's bytes. Walking forward, value i
     * is written to bytes [4i, 4i+4), which never reach an unread source value at
     * bytes [2n + 2j, ...) for j > i. */
    const uint16_t *src = (const uint16_t *)((char *)dst + n * 2);
    for (size_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, src + i, 2);
        dst[i] = t == DTYPE_BF16 ? bf16_to_f32(h) : f16_to_f32(h);
    }
}

void tensor_init(tensor *t, const char *name, int ndim, const int64_t shape[2])
{
    memset(t, 0, sizeof *t);
    t->name = xstrdup(name);
    t->ndim = ndim;
    t->shape[0] = shape[0];
    t->shape[1] = ndim == 2 ? shape[1] : 0;
    t->numel = shape[0] * (ndim == 2 ? shape[1] : 1);
    t->stored = DTYPE_F32;
    t->data = xmalloc_aligned((size_t)t->numel * sizeof(float));
}

void tensor_free(tensor *t)
{
    free(t->name);
    free(t->data);
    t->name = NULL;
    t->data = NULL;
}

void tensor_drop_data(tensor *t)
{
    free(t->data);
    t->data = NULL;
}

void tensor_set_f32(tensor *t, int64_t start, int64_t n, const float *in)
{
    memcpy(t->data + start, in, (size_t)n * sizeof(float));
}

void tensor_get_f32(const tensor *t, int64_t start, int64_t n, float *out)
{
    memcpy(out, t->data + start, (size_t)n * sizeof(float));
}

bool tensor_equal(const tensor *a, const tensor *b)
{
    return a->numel == b->numel && !memcmp(a->data, b->data, (size_t)a->numel * sizeof(float));
}

/* The branch-free scan vectorises. */
int64_t tensor_first_non_finite(const tensor *t)
{
    const uint32_t *u = (const uint32_t *)t->data;
    const int64_t block = 1 << 16;
    for (int64_t s = 0; s < t->numel; s += block) {
        int64_t e = s + block < t->numel ? s + block : t->numel;
        uint32_t bad = 0;
        for (int64_t i = s; i < e; i++)
            bad |= (u[i] & 0x7f800000u) == 0x7f800000u;
        if (bad)
            for (int64_t i = s; i < e; i++)
                if ((u[i] & 0x7f800000u) == 0x7f800000u)
                    return i;
    }
    return -1;
}

tensor tensor_wrap(float *data, int64_t rows, int64_t cols)
{
    tensor t = {.ndim = cols ? 2 : 1, .shape = {rows, cols}, .numel = rows * (cols ? cols : 1),
                .stored = DTYPE_F32, .data = data};
    return t;
}
