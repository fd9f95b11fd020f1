/* test_pytorch.c - PyTorch checkpoints: the three stories260K folders torch.save
 * wrote (zip f32 with tied storage, zip bf16 sharded, legacy f16) against the
 * safetensors folder the same weights came from; hand-built pickles for every
 * refusal (another global, a non-contiguous stride, an unknown opcode...), and
 * damaged zips. */
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "llama.h"
#include "model.h"
#include "model_load.h"
#include "pickle.h"
#include "pytorch.h"
#include "tensor.h"
#include "util.h"

/* ---- running code that must die ---- */

typedef struct {
    const uint8_t *p;
    size_t n;
} bytes;

static void parse_state_dict(void *arg)
{
    const bytes *b = arg;
    pt_ref *r;
    int n;
    pickle_state_dict(b->p, b->n, "test.pkl", &r, &n);
}

static void read_mem(void *arg)
{
    const bytes *b = arg;
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

static void test_pickle_refusals(void)
{
    pk p;
    bytes b = {p.b, 0};
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
    start_dict(&p);
    str(&p, "w");
    tensor_call(&p, "LongStorage", "0", 12, 0, 2, s2, st2);
    end_dict(&p);
    b.n = p.n;
    CHECK(dies_with(parse_state_dict, &b, "global torch.LongStorage"));

    /* transposed: stride (1, 3) */
    start_dict(&p);
    str(&p, "w");
    tensor_call(&p, "FloatStorage", "0", 12, 0, 2, s2, (int[]){1, 3});
    end_dict(&p);
    b.n = p.n;
    CHECK(dies_with(parse_state_dict, &b, "stride (1, 3)"));
    CHECK(dies_with(parse_state_dict, &b, "not contiguous"));

    /* past the end of its storage */
    start_dict(&p);
    str(&p, "w");
    tensor_call(&p, "FloatStorage", "0", 12, 4, 2, s2, st2);
    end_dict(&p);
    b.n = p.n;
    CHECK(dies_with(parse_state_dict, &b, "outside its storage"));

    /* 3 dimensions */
    start_dict(&p);
    str(&p, "w");
    tensor_call(&p, "FloatStorage", "0", 8, 0, 3, (int[]){2, 2, 2}, (int[]){4, 2, 1});
    end_dict(&p);
    b.n = p.n;
    CHECK(dies_with(parse_state_dict, &b, "3 dimensions"));

    /* opcodes outside the subset: known by name, or unknown */
    p.n = 0;
    OP(&p, "\x80\x02" "G\x3f\xf0\x00\x00\x00\x00\x00\x00.");
    b.n = p.n;
    CHECK(dies_with(parse_state_dict, &b, "opcode BINFLOAT (0x47)"));
    p.n = 0;
    OP(&p, "\x80\x02" "\x93.");
    b.n = p.n;
    CHECK(dies_with(parse_state_dict, &b, "opcode STACK_GLOBAL"));
    p.n = 0;
    OP(&p, "\x80\x02" "\xff.");
    b.n = p.n;
    CHECK(dies_with(parse_state_dict, &b, "unknown opcode 0xff"));

    /* not a dict; not tensors; truncated; bad memo */
    p.n = 0;
    OP(&p, "\x80\x02]q\x00.");
    b.n = p.n;
    CHECK(dies_with(parse_state_dict, &b, "holds a list, not a state_dict"));
    p.n = 0;
    OP(&p, "\x80\x02}(X\x01\x00\x00\x00" "aK\x01u.");
    b.n = p.n;
    CHECK(dies_with(parse_state_dict, &b, "entry a is an int, not a tensor"));
    start_dict(&p);
    b.n = p.n;
    CHECK(dies_with(parse_state_dict, &b, "ends without STOP"));
    p.n = 0;
    OP(&p, "\x80\x02h\x05.");
    b.n = p.n;
    CHECK(dies_with(parse_state_dict, &b, "memo key never stored"));
    p.n = 0;
    OP(&p, "\x80\x02(u.");
    b.n = p.n;
    CHECK(dies_with(parse_state_dict, &b, "SETITEMS on something that is not a dict"));
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
    llama_state a, b;
    llama_state_init(&a, m, 1, 16);
    llama_state_init(&b, ref, 1, 16);
    llama_forward(m, &a, tokens);
    llama_forward(ref, &b, tokens);
    CHECK(!memcmp(a.logits, b.logits, (size_t)16 * m->cfg.vocab * sizeof(float)));
    llama_state_free(&a);
    llama_state_free(&b);
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
    bytes b = {p, len};

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

int main(int argc, char **argv)
{
    (void)argc;
    set_progname(argv[0]);
    TEST(test_pickle_subset);
    TEST(test_pickle_refusals);
    TEST(test_stories_torch);
    TEST(test_damaged_files);
    return check_report();
}
