/* test_pytorch.c - PyTorch checkpoints: the three stories260K folders torch.save
 * wrote (zip f32 with tied storage, zip bf16 sharded, legacy f16) against the
 * safetensors folder the same weights came from; hand-built pickles for every
 * refusal (another global, a non-contiguous stride, an unknown opcode...), and
 * damaged zips. The writer (pytorch_write) read back by that reader, in every
 * dtype and in the pickle's every batch and memo form, its entries aligned. */
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/util.h"
#include "check.h"
#include "compute/forward.h"
#include "format/model_load.h"
#include "format/pickle.h"
#include "format/pytorch.h"
#include "format/zip.h"
#include "model/model.h"
#include "model/tensor.h"

/* ---- running code that must die ---- */

typedef struct {
    const uint8_t *p;
    size_t n;
} byte_view;

static void parse_state_dict(void *arg)
{
    const byte_view *b = arg;
    pt_ref *r;
    int n;
    pickle_state_dict(b->p, b->n, "test.pkl", &r, &n);
}

static void read_mem(void *arg)
{
    const byte_view *b = arg;
    tensor *ts = NULL;
    int n = 0, cap = 0;
    pytorch_read_mem(b->p, b->n, "test.bin", &ts, &n, &cap);
}

/* ---- hand-built pickles ---- */

typedef struct {
    uint8_t b[4096];
    size_t n;
} pk;

static void op(pk *p, const char *bytes_, size_t n)
{
    memcpy(p->b + p->n, bytes_, n);
    p->n += n;
}
#define OP(p, lit) op(p, lit, sizeof lit - 1)

static void str(pk *p, const char *s)
{
    size_t n = strlen(s);
    uint8_t h[5] = {'X', (uint8_t)n, (uint8_t)(n >> 8), 0, 0};
    op(p, (const char *)h, 5);
    op(p, s, n);
}

static void int1(pk *p, int v)
{
    uint8_t h[2] = {'K', (uint8_t)v};
    op(p, (const char *)h, 2);
}

/* Push _rebuild_tensor_v2 applied to a storage (key, cls, numel) with the given
 * offset, shape and stride (ndim 1 or 2). */
static void tensor_call(pk *p, const char *cls, const char *key, int numel, int offset, int ndim,
                        const int *shape, const int *stride)
{
    OP(p, "ctorch._utils\n_rebuild_tensor_v2\n(");
    OP(p, "(");
    str(p, "storage");
    OP(p, "ctorch\n");
    op(p, cls, strlen(cls));
    OP(p, "\n");
    str(p, key);
    str(p, "cpu");
    int1(p, numel);
    OP(p, "tQ");
    int1(p, offset);
    OP(p, "(");
    for (int d = 0; d < ndim; d++)
        int1(p, shape[d]);
    OP(p, "t(");
    for (int d = 0; d < ndim; d++)
        int1(p, stride[d]);
    OP(p, "t\x89}tR");
}

/* {name: tensor, ...} as an OrderedDict with a _metadata attribute (BUILD). */
static void start_dict(pk *p)
{
    p->n = 0;
    OP(p, "\x80\x02" "ccollections\nOrderedDict\nq\x00)R(");
}

static void end_dict(pk *p)
{
    OP(p, "u}");
    str(p, "_metadata");
    OP(p, "}sb.");
}

static void test_pickle_subset(void)
{
    pk p;
    int s2[2] = {3, 4}, st2[2] = {4, 1}, s1[1] = {5}, st1[1] = {1};
    start_dict(&p);
    str(&p, "a.weight");
    tensor_call(&p, "FloatStorage", "0", 20, 0, 2, s2, st2);
    str(&p, "b.bias");
    tensor_call(&p, "FloatStorage", "0", 20, 12, 1, (int[]){5}, st1); /* shares storage 0 */
    str(&p, "c");
    tensor_call(&p, "BFloat16Storage", "1", 5, 0, 1, s1, st1);
    end_dict(&p);
    pt_ref *r;
    int n;
    size_t used = pickle_state_dict(p.b, p.n, "t", &r, &n);
    CHECK(used == p.n);
    CHECK(n == 3);
    CHECK(!strcmp(r[0].name, "a.weight") && r[0].ndim == 2 && r[0].shape[0] == 3 && r[0].shape[1] == 4);
    CHECK(r[0].numel == 12 && r[0].dtype == DTYPE_F32 && !strcmp(r[0].storage, "0"));
    CHECK(!strcmp(r[1].name, "b.bias") && r[1].offset == 12 && r[1].numel == 5 && r[1].storage_numel == 20);
    CHECK(r[2].dtype == DTYPE_BF16 && !strcmp(r[2].storage, "1"));
    pt_refs_free(r, n);

    /* a size-1 dimension may have any stride */
    start_dict(&p);
    str(&p, "x");
    tensor_call(&p, "HalfStorage", "0", 4, 0, 2, (int[]){1, 4}, (int[]){99, 1});
    end_dict(&p);
    pickle_state_dict(p.b, p.n, "t", &r, &n);
    CHECK(n == 1 && r[0].dtype == DTYPE_F16 && r[0].shape[1] == 4);
    pt_refs_free(r, n);
}

/* A state dict of one tensor "w" (tensor_call's arguments) into p, b viewing it. */
static void one_tensor(pk *p, byte_view *b, const char *cls, const char *key, int numel, int offset, int ndim,
                       const int *shape, const int *stride)
{
    start_dict(p);
    str(p, "w");
    tensor_call(p, cls, key, numel, offset, ndim, shape, stride);
    end_dict(p);
    b->n = p->n;
}

/* Whether the pickle of these opcodes alone is refused with msg. */
#define OPS_DIE(ops, msg) (p.n = 0, OP(&p, ops), b.n = p.n, dies_with(parse_state_dict, &b, (msg)))

static void test_pickle_refusals(void)
{
    pk p;
    byte_view b = {p.b, 0};
    int s2[2] = {3, 4}, st2[2] = {4, 1};

    /* a global outside the subset: the classic os.system exploit */
    p.n = 0;
    OP(&p, "\x80\x02" "cos\nsystem\n");
    str(&p, "echo owned");
    OP(&p, "\x85R.");
    b.n = p.n;
    CHECK(dies_with(parse_state_dict, &b, "global os.system"));

    /* a global hidden in a tensor's place */
    start_dict(&p);
    str(&p, "w");
    OP(&p, "cbuiltins\neval\n");
    end_dict(&p);
    b.n = p.n;
    CHECK(dies_with(parse_state_dict, &b, "global builtins.eval"));

    /* a storage class not in the subset */
    one_tensor(&p, &b, "LongStorage", "0", 12, 0, 2, s2, st2);
    CHECK(dies_with(parse_state_dict, &b, "global torch.LongStorage"));

    /* transposed: stride (1, 3) */
    one_tensor(&p, &b, "FloatStorage", "0", 12, 0, 2, s2, (int[]){1, 3});
    CHECK(dies_with(parse_state_dict, &b, "stride (1, 3)"));
    CHECK(dies_with(parse_state_dict, &b, "not contiguous"));

    /* past the end of its storage */
    one_tensor(&p, &b, "FloatStorage", "0", 12, 4, 2, s2, st2);
    CHECK(dies_with(parse_state_dict, &b, "outside its storage"));

    /* 3 dimensions */
    one_tensor(&p, &b, "FloatStorage", "0", 8, 0, 3, (int[]){2, 2, 2}, (int[]){4, 2, 1});
    CHECK(dies_with(parse_state_dict, &b, "3 dimensions"));

    /* opcodes outside the subset: known by name, or unknown */
    CHECK(OPS_DIE("\x80\x02" "G\x3f\xf0\x00\x00\x00\x00\x00\x00.", "opcode BINFLOAT (0x47)"));
    CHECK(OPS_DIE("\x80\x02" "\x93.", "opcode STACK_GLOBAL"));
    CHECK(OPS_DIE("\x80\x02" "\xff.", "unknown opcode 0xff"));

    /* not a dict; not tensors; truncated; bad memo */
    CHECK(OPS_DIE("\x80\x02]q\x00.", "holds a list, not a state_dict"));
    CHECK(OPS_DIE("\x80\x02}(X\x01\x00\x00\x00" "aK\x01u.", "entry a is an int, not a tensor"));
    start_dict(&p);
    b.n = p.n;
    CHECK(dies_with(parse_state_dict, &b, "ends without STOP"));
    CHECK(OPS_DIE("\x80\x02h\x05.", "memo key never stored"));
    CHECK(OPS_DIE("\x80\x02(u.", "SETITEMS on something that is not a dict"));
}

/* ---- the stories260K checkpoints torch.save wrote ---- */

static float round_to(float x, enum dtype t)
{
    return t == DTYPE_BF16 ? bf16_to_f32(f32_to_bf16(x)) : t == DTYPE_F16 ? f16_to_f32(f32_to_f16(x)) : x;
}

/* Every tensor of m equals ref's rounded to t; the same names and shapes. */
static void check_same_weights(const model *m, const model *ref, enum dtype t)
{
    CHECK(m->n_tensors == ref->n_tensors);
    int bad = 0;
    for (int i = 0; i < m->n_tensors && i < ref->n_tensors; i++) {
        const tensor *a = &m->tensors[i], *b = &ref->tensors[i];
        CHECK(!strcmp(a->name, b->name) && a->numel == b->numel && a->shape[0] == b->shape[0]);
        CHECK(a->stored == t);
        for (int64_t e = 0; e < a->numel && e < b->numel; e++) {
            float x, y;
            tensor_get_f32(a, e, 1, &x);
            tensor_get_f32(b, e, 1, &y);
            bad += x != round_to(y, t);
        }
    }
    CHECK(bad == 0);
}

/* Logits of m and ref on the same tokens: identical bits. */
static void check_same_logits(const model *m, const model *ref)
{
    int tokens[16] = {1, 403, 407, 261, 378, 429, 500, 263, 267, 311, 260, 300, 400, 2, 5, 9};
    forward_state a, b;
    forward_state_init(&a, m, 1, 16);
    forward_state_init(&b, ref, 1, 16);
    model_forward(m, &a, tokens);
    model_forward(ref, &b, tokens);
    CHECK(!memcmp(a.logits, b.logits, (size_t)16 * m->cfg.vocab * sizeof(float)));
    forward_state_free(&a);
    forward_state_free(&b);
}

static model *load_rel(const char *rel)
{
    char *p = path_join(check_data_dir(), rel);
    if (!path_exists(p))
        die("data missing: %s (set PARE_DATA)", p);
    model *m = xmalloc(sizeof *m);
    model_load(m, p, NULL);
    free(p);
    return m;
}

static void free_model(model *m)
{
    model_free(m);
    free(m);
}

static void test_stories_torch(void)
{
    model *hf = load_rel("models/stories260K-hf");
    model *pt = load_rel("models/stories260K-torch");
    model *bf = load_rel("models/stories260K-torch-bf16-sharded");
    model *hbf = load_rel("models/stories260K-hf-bf16-sharded");
    model *leg = load_rel("models/stories260K-torch-legacy");
    char f1[17], f2[17];

    /* f32 zip: the same tensors (the tied lm_head storage dropped), the same logits */
    check_same_weights(pt, hf, DTYPE_F32);
    model_fingerprint(pt, f1);
    model_fingerprint(hf, f2);
    CHECK(!strcmp(f1, f2));
    check_same_logits(pt, hf);

    /* bf16 shards: hf rounded to bf16, and the bf16 safetensors folder exactly */
    check_same_weights(bf, hf, DTYPE_BF16);
    check_same_logits(bf, hbf);

    /* legacy f16 */
    check_same_weights(leg, hf, DTYPE_F16);

    free_model(hf);
    free_model(pt);
    free_model(bf);
    free_model(hbf);
    free_model(leg);
}

static void test_damaged_files(void)
{
    char *path = path_join(check_data_dir(), "models/stories260K-torch/pytorch_model.bin");
    size_t len;
    uint8_t *p = (uint8_t *)read_whole_file(path, &len);
    byte_view b = {p, len};

    /* cut short: the end-of-directory record is gone */
    b.n = len - 100;
    CHECK(dies_with(read_mem, &b, "no end-of-central-directory record"));

    /* one payload byte flipped: the CRC catches it */
    b.n = len;
    p[len / 2] ^= 0x40;
    CHECK(dies_with(read_mem, &b, "CRC-32 mismatch"));
    p[len / 2] ^= 0x40;

    /* neither zip nor legacy */
    b.p = (const uint8_t *)"GGUF\3\0\0\0";
    b.n = 8;
    CHECK(dies_with(read_mem, &b, "not a PyTorch checkpoint"));
    free(p);
    free(path);

    /* the legacy file cut inside its storages */
    path = path_join(check_data_dir(), "models/stories260K-torch-legacy/pytorch_model.bin");
    p = (uint8_t *)read_whole_file(path, &len);
    b.p = p;
    b.n = len - 1000;
    CHECK(dies_with(read_mem, &b, "legacy checkpoint ends inside storage"));
    free(p);
    free(path);
}

/* ---- the writer ---- */

static char tmpdir[] = "/tmp/pare-test-pytorch-XXXXXX";

/* n tensors named "t0000"..., of shape rows x cols (cols 0: a vector), value j of
 * tensor i being i + j / 8 (exact in every dtype for small i, j). */
static tensor *make_tensors(int n, int64_t rows, int64_t cols)
{
    tensor *ts = xcalloc((size_t)n, sizeof *ts);
    for (int i = 0; i < n; i++) {
        char name[16];
        snprintf(name, sizeof name, "t%04d", i);
        int64_t shape[2] = {rows, cols};
        tensor_init(&ts[i], name, cols ? 2 : 1, shape);
        for (int64_t j = 0; j < ts[i].numel; j++)
            ((float *)ts[i].data)[j] = (float)i + (float)(j % 64) / 8;
    }
    return ts;
}

/* Write ts as dtype to tmpdir/NAME.bin, read it back: the same names in the same
 * order, shapes, the dtype written and the values rounded to it. */
static void check_round_trip(const char *name, tensor *ts, int n, enum dtype dtype)
{
    char *path = xasprintf("%s/%s.bin", tmpdir, name);
    pytorch_write(path, ts, n, dtype, NULL);
    tensor *back = NULL;
    int nb = 0, cap = 0;
    pytorch_read(path, &back, &nb, &cap);
    CHECK(nb == n);
    bool same = nb == n;
    for (int i = 0; i < n && same; i++) {
        tensor want;
        tensor_init_as(&want, ts[i].name, ts[i].ndim, ts[i].shape, DTYPE_F32);
        memcpy(want.data, ts[i].data, tensor_bytes(&ts[i]));
        tensor_round_to(&want, dtype);
        same = !strcmp(back[i].name, ts[i].name) && back[i].ndim == ts[i].ndim &&
               back[i].shape[0] == ts[i].shape[0] && (ts[i].ndim == 1 || back[i].shape[1] == ts[i].shape[1]) &&
               back[i].dtype == dtype && tensor_equal(&back[i], &want);
        tensor_free(&want);
    }
    CHECK(same);
    tensors_free(back, nb);
    free(path);
}

static void test_write(void)
{
    /* every dtype; a matrix and vectors */
    tensor *ts = make_tensors(3, 5, 7);
    tensor_free(&ts[1]);
    tensor_init(&ts[1], "t0001", 1, (int64_t[]){9, 0});
    for (int j = 0; j < 9; j++)
        ((float *)ts[1].data)[j] = -1.0f / 3 * (float)j;     /* rounded differently by each dtype */
    for (enum dtype d = DTYPE_F32; d <= DTYPE_BF16; d++)
        check_round_trip(dtype_name(d), ts, 3, d);

    /* the archive: named after the file, entries in torch.save's order, each aligned to 64 */
    char *path = xasprintf("%s/f16.bin", tmpdir);
    size_t len;
    uint8_t *p = (uint8_t *)read_whole_file(path, &len);
    zip_archive z;
    zip_open(&z, p, len, path);
    const char *names[] = {"f16/data.pkl", "f16/byteorder", "f16/data/0", "f16/data/1", "f16/data/2", "f16/version"};
    CHECK(z.n == 6);
    for (int i = 0; i < z.n && i < 6; i++) {
        CHECK(!strcmp(z.entries[i].name, names[i]));
        CHECK((z.entries[i].data - p) % 64 == 0);
        zip_entry_data(&z, &z.entries[i]);                  /* dies on a CRC mismatch */
    }
    CHECK(z.n == 6 && z.entries[5].size == 2 && !memcmp(z.entries[5].data, "3\n", 2));
    CHECK(z.n == 6 && z.entries[1].size == 6 && !memcmp(z.entries[1].data, "little", 6));
    CHECK(z.n == 6 && z.entries[3].size == 18);             /* t0001: 9 halves */
    zip_close(&z);
    free(p);
    free(path);
    tensors_free(ts, 3);

    /* one item (SETITEM); 1100 items (two SETITEMS batches, memo keys past 255,
     * storage keys "10" sorting before "2"); a storage of more than 65535 elements */
    ts = make_tensors(1, 4, 0);
    check_round_trip("one", ts, 1, DTYPE_BF16);
    tensors_free(ts, 1);
    ts = make_tensors(1100, 1, 0);
    check_round_trip("many", ts, 1100, DTYPE_F32);
    tensors_free(ts, 1100);
    ts = make_tensors(2, 2, 40000);
    check_round_trip("large", ts, 2, DTYPE_F16);
    tensors_free(ts, 2);
}

int main(int argc, char **argv)
{
    (void)argc;
    set_progname(argv[0]);
    TEST(test_pickle_subset);
    TEST(test_pickle_refusals);
    TEST(test_stories_torch);
    TEST(test_damaged_files);
    check_make_dir(tmpdir);
    TEST(test_write);
    check_remove_dir(tmpdir);
    return check_report();
}
