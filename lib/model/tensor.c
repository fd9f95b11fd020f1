/* tensor.c - a tensor's storage (owned or mapped) and values in any dtype; dtype
 * names and conversions. */
#include "model/tensor.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/cpu.h"
#include "base/util.h"

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

enum dtype parse_dtype(const char *opt, const char *s)
{
    int t = dtype_from_name(s);
    if (t < 0)
        usage_die("%s: expected f32, f16 or bf16, got '%s'", opt, s);
    return (enum dtype)t;
}

size_t dtype_size(enum dtype t) { return t == DTYPE_F32 ? 4 : 2; }

float bf16_to_f32(uint16_t h) { return float_from_bits((uint32_t)h << 16); }

uint16_t f32_to_bf16(float f)
{
    uint32_t u = float_bits(f);
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
    return float_from_bits(u);
}

uint16_t f32_to_f16(float f)
{
    uint32_t u = float_bits(f);
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

void dtype_to_f32(float *dst, const void *src, size_t n, enum dtype t)
{
    if (t == DTYPE_F32)
        memcpy(dst, src, n * 4);
    else if (t == DTYPE_BF16)
        cpu()->bf16_to_f32(dst, src, n);
    else
        cpu()->f16_to_f32(dst, src, n);
}

void dtype_from_f32(void *dst, const float *src, size_t n, enum dtype t)
{
    if (t == DTYPE_F32) {
        memcpy(dst, src, n * 4);
        return;
    }
    uint16_t *h = dst;
    for (size_t i = 0; i < n; i++)
        h[i] = t == DTYPE_BF16 ? f32_to_bf16(src[i]) : f32_to_f16(src[i]);
}

/* ---- mappings ---- */

struct tensor_map {
    void *addr;
    size_t len;
    int refs;
};

/* A mapped file that shrinks under a running program (another process rewrote it
 * in place) makes the next read of a vanished page raise SIGBUS: say so in the
 * programs' one-line form instead of dying by the signal. */
static void on_sigbus(int sig)
{
    (void)sig;
    static const char msg[] = ": error: a mapped model file was truncated or rewritten while in use "
                              "(SIGBUS); write model files to a new name and rename them into place\n";
    const char *name = progname();
    if (write(STDERR_FILENO, name, strlen(name)) < 0 || write(STDERR_FILENO, msg, sizeof msg - 1) < 0)
        _exit(1);
    _exit(1);
}

tensor_map *tensor_map_file(int fd, size_t len)
{
    static bool handler;
    if (!handler) {
        struct sigaction sa = {0};
        sa.sa_handler = on_sigbus;
        sigaction(SIGBUS, &sa, NULL);
        handler = true;
    }
    if (len == 0)
        return NULL;
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED)
        return NULL;
    tensor_map *m = xmalloc(sizeof *m);
    m->addr = p;
    m->len = len;
    m->refs = 1;
    return m;
}

const char *tensor_map_base(const tensor_map *m) { return m->addr; }

void tensor_map_release(tensor_map *m)
{
    if (m && --m->refs == 0) {
        munmap(m->addr, m->len);
        free(m);
    }
}

void tensor_use_map(tensor *t, tensor_map *m, const void *p, enum dtype dtype)
{
    m->refs++;
    t->map = m;
    t->data = (void *)p;
    t->dtype = t->stored = dtype;
}

void tensor_prefetch(const tensor *t)
{
    if (!t || !t->map || !t->data)
        return;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), at = (uintptr_t)t->data;
    uintptr_t start = at & ~(page - 1), end = at + tensor_bytes(t);
    (void)madvise((void *)start, end - start, MADV_WILLNEED);
}

/* ---- tensors ---- */

int64_t tensor_shape_numel(int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0 || shape[d] > TENSOR_MAX_NUMEL || (shape[d] > 0 && n > TENSOR_MAX_NUMEL / shape[d]))
            return -1;
        n *= shape[d];
    }
    return n;
}

void tensor_init_shape(tensor *t, const char *name, int ndim, const int64_t shape[2])
{
    int64_t numel = tensor_shape_numel(ndim, shape);
    if (numel < 0) /* the readers refuse such shapes first, naming their file */
        die("tensor %s: a shape of more than 2^40 elements", name);
    memset(t, 0, sizeof *t);
    t->name = xstrdup(name);
    t->ndim = ndim;
    t->shape[0] = shape[0];
    t->shape[1] = ndim == 2 ? shape[1] : 0;
    t->numel = numel;
}

void tensor_alloc(tensor *t)
{
    t->data = xmalloc_aligned(tensor_bytes(t) ? tensor_bytes(t) : 1);
    t->map = NULL;
}

void tensor_init_as(tensor *t, const char *name, int ndim, const int64_t shape[2], enum dtype dtype)
{
    tensor_init_shape(t, name, ndim, shape);
    t->stored = t->dtype = dtype;
    tensor_alloc(t);
}

const tensor *tensor_values(const tensor *t, const tensor_source *src, tensor *tmp)
{
    if (t->data)
        return t;
    if (!src)
        die("tensor %s has no values", t->name);
    *tmp = *t;
    src->fill(tmp, src->ctx);
    return tmp;
}

void tensor_values_done(const tensor *v, tensor *tmp)
{
    if (v == tmp)
        tensor_drop_data(tmp);
}

void tensor_init(tensor *t, const char *name, int ndim, const int64_t shape[2])
{
    tensor_init_as(t, name, ndim, shape, DTYPE_F32);
}

void tensor_drop_data(tensor *t)
{
    if (t->map)
        tensor_map_release(t->map);
    else
        free(t->data);
    t->data = NULL;
    t->map = NULL;
}

void tensor_free(tensor *t)
{
    tensor_drop_data(t);
    free(t->name);
    t->name = NULL;
}

void tensors_free(tensor *ts, int n)
{
    for (int i = 0; i < n; i++)
        tensor_free(&ts[i]);
    free(ts);
}

void tensor_convert(tensor *t, enum dtype dtype)
{
    if (t->dtype == dtype && tensor_aligned(t))
        return;
    tensor c = *t;
    c.dtype = dtype;
    c.map = NULL;
    c.data = xmalloc_aligned(tensor_bytes(&c) ? tensor_bytes(&c) : 1);
    float buf[4096];
    for (int64_t s = 0; s < t->numel; s += 4096) {
        int64_t n = t->numel - s < 4096 ? t->numel - s : 4096;
        tensor_get_f32(t, s, n, buf);
        tensor_set_f32(&c, s, n, buf);
    }
    tensor_drop_data(t);
    t->data = c.data;
    t->dtype = dtype;
}

void tensor_round_to(tensor *t, enum dtype dtype)
{
    float buf[4096];
    uint16_t half[4096];
    for (int64_t s = 0; dtype != DTYPE_F32 && s < t->numel; s += 4096) {
        int64_t n = t->numel - s < 4096 ? t->numel - s : 4096;
        tensor_get_f32(t, s, n, buf);
        dtype_from_f32(half, buf, (size_t)n, dtype);
        dtype_to_f32(buf, half, (size_t)n, dtype);
        tensor_set_f32(t, s, n, buf);
    }
}

static void *value_at(const tensor *t, int64_t i)
{
    return (char *)t->data + (size_t)i * dtype_size(t->dtype);
}

/* Values of a tensor that is not aligned go through an aligned block of BOUNCE
 * values, copied byte-wise in or out. */
enum { BOUNCE = 2048 };

void tensor_set_f32(tensor *t, int64_t start, int64_t n, const float *in)
{
    if (tensor_aligned(t)) {
        dtype_from_f32(value_at(t, start), in, (size_t)n, t->dtype);
        return;
    }
    uint32_t block[BOUNCE];
    size_t es = dtype_size(t->dtype);
    for (int64_t s = 0; s < n; s += BOUNCE) {
        size_t m = (size_t)(n - s < BOUNCE ? n - s : BOUNCE);
        dtype_from_f32(block, in + s, m, t->dtype);
        memcpy(value_at(t, start + s), block, m * es);
    }
}

void tensor_get_f32(const tensor *t, int64_t start, int64_t n, float *out)
{
    if (tensor_aligned(t)) {
        dtype_to_f32(out, value_at(t, start), (size_t)n, t->dtype);
        return;
    }
    uint32_t block[BOUNCE];
    size_t es = dtype_size(t->dtype);
    for (int64_t s = 0; s < n; s += BOUNCE) {
        size_t m = (size_t)(n - s < BOUNCE ? n - s : BOUNCE);
        memcpy(block, value_at(t, start + s), m * es);
        dtype_to_f32(out + s, block, m, t->dtype);
    }
}

void tensor_write_as(const tensor *t, int64_t start, int64_t n, enum dtype dtype,
                     void (*out)(void *ctx, const void *p, size_t n), void *ctx)
{
    if (t->dtype == dtype) {
        out(ctx, value_at(t, start), (size_t)n * dtype_size(dtype));
        return;
    }
    float wide[4096];
    uint16_t half[4096];
    for (int64_t s = 0; s < n; s += 4096) {
        int64_t m = n - s < 4096 ? n - s : 4096;
        tensor_get_f32(t, start + s, m, wide);
        if (dtype == DTYPE_F32) {
            out(ctx, wide, (size_t)m * 4);
            continue;
        }
        dtype_from_f32(half, wide, (size_t)m, dtype);
        out(ctx, half, (size_t)m * 2);
    }
}

bool tensor_equal(const tensor *a, const tensor *b)
{
    if (a->numel != b->numel)
        return false;
    if (a->dtype == b->dtype)
        return !memcmp(a->data, b->data, tensor_bytes(a));
    float x[1024], y[1024];
    for (int64_t s = 0; s < a->numel; s += 1024) {
        int64_t n = a->numel - s < 1024 ? a->numel - s : 1024;
        tensor_get_f32(a, s, n, x);
        tensor_get_f32(b, s, n, y);
        if (memcmp(x, y, (size_t)n * sizeof(float)))
            return false;
    }
    return true;
}

/* A value is not finite when its exponent bits are all ones. */
int64_t tensor_first_non_finite(const tensor *t, int64_t start, int64_t n)
{
    const void *p = value_at(t, start);
    size_t k = (size_t)n, at = k;
    switch (t->dtype) {
    case DTYPE_F32: at = cpu()->first_all_ones32(p, k, 0x7f800000u); break;
    case DTYPE_BF16: at = cpu()->first_all_ones16(p, k, 0x7f80u); break;
    case DTYPE_F16: at = cpu()->first_all_ones16(p, k, 0x7c00u); break;
    }
    return at < k ? start + (int64_t)at : -1;
}

tensor tensor_wrap(float *data, int64_t rows, int64_t cols)
{
    tensor t = {.ndim = cols ? 2 : 1, .shape = {rows, cols}, .numel = rows * (cols ? cols : 1),
                .stored = DTYPE_F32, .dtype = DTYPE_F32, .data = data};
    return t;
}
