/* pytorch_write.c - write a state_dict checkpoint as torch.save does (pytorch.h).
 *
 * The archive ARCHIVE.zip, ARCHIVE being the file's name without its extension
 * (torch.save's name for an archive written to a path), holds:
 *   ARCHIVE/data.pkl   the pickle (protocol 2) of an OrderedDict NAME -> tensor,
 *                      each tensor torch._utils._rebuild_tensor_v2(storage, 0,
 *                      shape, contiguous strides, False, OrderedDict()) with the
 *                      storage a persistent id ('storage', torch.FloatStorage |
 *                      HalfStorage | BFloat16Storage, KEY, 'cpu', numel);
 *   ARCHIVE/byteorder  "little";
 *   ARCHIVE/data/KEY   each storage's bytes, in the string order of the keys
 *                      "0", "1", ... (one storage per tensor, in tensor order);
 *   ARCHIVE/version    "3\n".
 * The pickle is written as Python's pickler writes it: every string, tuple,
 * global and built object put in the memo (BINPUT), and an object met again (a
 * global, the strings 'storage' and 'cpu') fetched from it (BINGET); items set in
 * batches of 1000 (MARK ... SETITEMS, or SETITEM for a batch of one). */
#include "format/pytorch.h"

#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "format/zip_write.h"

typedef struct {
    bytes out;
    uint32_t memo; /* next memo key */
} pk_out;

static void pk_bytes(pk_out *o, const void *p, size_t n) { bytes_put(&o->out, p, n); }

static void pk_op(pk_out *o, uint8_t op) { pk_bytes(o, &op, 1); }

static void pk_le(pk_out *o, uint64_t v, int bytes)
{
    uint8_t b[8];
    for (int i = 0; i < bytes; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    pk_bytes(o, b, (size_t)bytes);
}

/* A memo operation on key k: op1 with a 1-byte key below 256, op4 with 4 bytes. */
static void pk_memo(pk_out *o, uint8_t op1, uint8_t op4, uint32_t k)
{
    pk_op(o, k < 256 ? op1 : op4);
    pk_le(o, k, k < 256 ? 1 : 4);
}

/* BINPUT / LONG_BINPUT the top of the stack; returns its memo key. */
static uint32_t pk_put(pk_out *o)
{
    uint32_t k = o->memo++;
    pk_memo(o, 'q', 'r', k);
    return k;
}

/* BINGET / LONG_BINGET */
static void pk_get(pk_out *o, uint32_t k) { pk_memo(o, 'h', 'j', k); }

/* Python's save_long: BININT1, BININT2, BININT, else LONG1 in the fewest bytes of
 * two's complement. */
static void pk_int(pk_out *o, int64_t v)
{
    if (v >= 0 && v <= 0xff) {
        pk_op(o, 'K');
        pk_le(o, (uint64_t)v, 1);
    } else if (v >= 0 && v <= 0xffff) {
        pk_op(o, 'M');
        pk_le(o, (uint64_t)v, 2);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
        pk_op(o, 'J');
        pk_le(o, (uint64_t)v, 4);
    } else {
        int n = 8;
        while (n > 1 && ((v >> (8 * (n - 1) - 1)) == 0 || (v >> (8 * (n - 1) - 1)) == -1))
            n--;
        pk_op(o, 0x8a);
        pk_le(o, (uint64_t)n, 1);
        pk_le(o, (uint64_t)v, n);
    }
}

/* BINUNICODE s, memoized; returns its memo key. */
static uint32_t pk_str(pk_out *o, const char *s)
{
    size_t n = strlen(s);
    pk_op(o, 'X');
    pk_le(o, n, 4);
    pk_bytes(o, s, n);
    return pk_put(o);
}

/* GLOBAL module name, memoized at *key the first time and fetched after. */
static void pk_global(pk_out *o, const char *module, const char *name, int64_t *key)
{
    if (*key >= 0) {
        pk_get(o, (uint32_t)*key);
        return;
    }
    pk_op(o, 'c');
    pk_bytes(o, module, strlen(module));
    pk_op(o, '\n');
    pk_bytes(o, name, strlen(name));
    pk_op(o, '\n');
    *key = pk_put(o);
}

/* A tuple of 1 or 2 integers (a shape or strides), memoized. */
static void pk_int_tuple(pk_out *o, const int64_t *v, int n)
{
    for (int i = 0; i < n; i++)
        pk_int(o, v[i]);
    pk_op(o, n == 1 ? 0x85 : 0x86);
    pk_put(o);
}

static const char *storage_class(enum dtype t)
{
    return t == DTYPE_F32 ? "FloatStorage" : t == DTYPE_F16 ? "HalfStorage" : "BFloat16Storage";
}

/* The pickle of the state_dict of n tensors stored as dtype, storage i keyed "i". */
static void pickle_state_dict_of(pk_out *o, const tensor *ts, int n, enum dtype dtype)
{
    int64_t odict = -1, rebuild = -1, storage_type = -1, storage_str = -1, cpu = -1;
    pk_op(o, 0x80);
    pk_op(o, 2);
    pk_global(o, "collections", "OrderedDict", &odict);
    pk_op(o, ')');
    pk_op(o, 'R');
    pk_put(o);
    for (int start = 0; start < n; start += 1000) {
        int end = n - start > 1000 ? start + 1000 : n;
        if (end - start > 1)
            pk_op(o, '(');
        for (int i = start; i < end; i++) {
            const tensor *t = &ts[i];
            pk_str(o, t->name);
            pk_global(o, "torch._utils", "_rebuild_tensor_v2", &rebuild);
            pk_op(o, '(');
            pk_op(o, '(');                          /* the persistent id */
            if (storage_str < 0)
                storage_str = pk_str(o, "storage");
            else
                pk_get(o, (uint32_t)storage_str);
            pk_global(o, "torch", storage_class(dtype), &storage_type);
            char key[24];
            snprintf(key, sizeof key, "%d", i);
            pk_str(o, key);
            if (cpu < 0)
                cpu = pk_str(o, "cpu");
            else
                pk_get(o, (uint32_t)cpu);
            pk_int(o, t->numel);
            pk_op(o, 't');
            pk_put(o);
            pk_op(o, 'Q');
            pk_int(o, 0);                           /* storage offset */
            int64_t stride[2] = {t->ndim == 2 ? t->shape[1] : 1, 1};
            pk_int_tuple(o, t->shape, t->ndim);
            pk_int_tuple(o, stride, t->ndim);
            pk_op(o, 0x89);                         /* requires_grad False */
            pk_global(o, "collections", "OrderedDict", &odict);
            pk_op(o, ')');                          /* backward hooks: OrderedDict() */
            pk_op(o, 'R');
            pk_put(o);
            pk_op(o, 't');
            pk_put(o);
            pk_op(o, 'R');
            pk_put(o);
        }
        pk_op(o, end - start > 1 ? 'u' : 's');
    }
    pk_op(o, '.');
}

static int cmp_key(const void *a, const void *b)
{
    char x[24], y[24];
    snprintf(x, sizeof x, "%d", *(const int *)a);
    snprintf(y, sizeof y, "%d", *(const int *)b);
    return strcmp(x, y);
}

static void zip_out(void *ctx, const void *p, size_t n) { zip_writer_data(ctx, p, n); }

void pytorch_write(const char *path, const tensor *ts, int n, enum dtype dtype, const tensor_source *src)
{
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path, *dot = strrchr(base, '.');
    int alen = dot && dot != base ? (int)(dot - base) : (int)strlen(base);
    pk_out o = {0};
    pickle_state_dict_of(&o, ts, n, dtype);

    zip_writer z;
    zip_writer_open(&z, path);
    char *name = xasprintf("%.*s/data.pkl", alen, base);
    zip_writer_entry(&z, name, o.out.p, o.out.n);
    free(name);
    free(o.out.p);
    name = xasprintf("%.*s/byteorder", alen, base);
    zip_writer_entry(&z, name, "little", 6);
    free(name);

    int *order = xmalloc((size_t)(n ? n : 1) * sizeof *order);
    for (int i = 0; i < n; i++)
        order[i] = i;
    qsort(order, (size_t)n, sizeof *order, cmp_key);
    for (int k = 0; k < n; k++) {
        name = xasprintf("%.*s/data/%d", alen, base, order[k]);
        zip_writer_begin(&z, name);
        free(name);
        tensor tmp;
        const tensor *t = tensor_values(&ts[order[k]], src, &tmp);
        tensor_write_as(t, 0, t->numel, dtype, zip_out, &z);
        tensor_values_done(t, &tmp);
        zip_writer_end(&z);
    }
    free(order);
    name = xasprintf("%.*s/version", alen, base);
    zip_writer_entry(&z, name, "3\n", 2);
    free(name);
    zip_writer_close(&z);
}
