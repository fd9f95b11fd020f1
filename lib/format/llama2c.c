/* llama2c.c - read a llama2.c .bin checkpoint (layout in llama2c.h) into a model
 * with Hugging Face tensor names. Each per-layer slice of the stacked arrays is
 * read straight into its own tensor buffer. */
#include "format/llama2c.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/util.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "pare reads little-endian payloads straight into memory: little-endian hosts only"
#endif

typedef struct {
    FILE *f;
    const char *path;
} reader;

static void read_into(reader *r, model *m, const char *name, int ndim, int64_t s0, int64_t s1)
{
    int64_t shape[2] = {s0, s1};
    tensor *t = model_new_tensor(m, name, ndim, shape);
    if (fread(t->data, 4, (size_t)t->numel, r->f) != (size_t)t->numel)
        die("%s: cannot read %s: %s", r->path, name,
            ferror(r->f) ? strerror(errno) : "unexpected end of file");
}

/* Weight id (enum model_weight_id) outside the layers. */
static void read_outer(reader *r, model *m, int id)
{
    int64_t shape[2];
    int ndim = model_weight_shape(&m->cfg, id, shape);
    read_into(r, m, model_weight_name(&m->cfg, id), ndim, shape[0], shape[1]);
}

/* Weight id (model.h's table) of every layer: one stacked array in the file. */
static void read_layers(reader *r, model *m, int id)
{
    for (int l = 0; l < m->cfg.n_layers; l++) {
        char name[160];
        int64_t shape[2];
        int ndim = layer_weight_shape(&m->cfg, l, id, shape);
        layer_weight_name(&m->cfg, name, sizeof name, l, id);
        read_into(r, m, name, ndim, shape[0], shape[1]);
    }
}

void llama2c_load(model *m, const char *path)
{
    memset(m, 0, sizeof *m);
    uint64_t file_size;
    FILE *f = open_read(path, &file_size);
    int32_t h[7];
    if (fread(h, 4, 7, f) != 7)
        die("%s: not a model: too short for a llama2.c header", path);
    if ((uint32_t)h[0] == 0x616b3432u) /* "ak42": llama2.c's newer export versions */
        die("%s: llama2.c export version %d is not supported (pare reads the legacy format)",
            path, h[1]);
    int dim = h[0], hidden = h[1], L = h[2], H = h[3], KV = h[4], seq = h[6];
    int V = h[5] == INT32_MIN ? 0 : abs(h[5]);
    bool tied = h[5] > 0;
    const int big = 1 << 24;
    if (dim <= 0 || dim > big || hidden <= 0 || hidden > big || L <= 0 || L > 4096 || H <= 0 ||
        KV <= 0 || H > dim || V == 0 || V > big || seq <= 0 || seq > big)
        die("%s: not a model: bad llama2.c header (%d, %d, %d, %d, %d, %d, %d)", path, h[0], h[1],
            h[2], h[3], h[4], h[5], h[6]);
    if (dim % H != 0 || (dim / H) % 2 != 0 || KV > H || H % KV != 0)
        die("%s: inconsistent llama2.c header: dim %d, n_heads %d, n_kv_heads %d", path, dim, H, KV);
    int hd = dim / H;
    int64_t kvd = (int64_t)KV * hd;

    uint64_t floats = (uint64_t)V * dim                         /* token_embedding */
                      + (uint64_t)L * (2 * (uint64_t)dim       /* rms_att, rms_ffn */
                                       + 2 * (uint64_t)dim * dim /* wq, wo */
                                       + 2 * (uint64_t)kvd * dim /* wk, wv */
                                       + 3 * (uint64_t)hidden * dim) /* w1, w2, w3 */
                      + (uint64_t)dim                           /* rms_final */
                      + (uint64_t)seq * hd                      /* freq_cis real + imag */
                      + (tied ? 0 : (uint64_t)V * dim);         /* wcls */
    /* the same sum in doubles: a header whose sizes overflow 64 bits is refused
     * instead of matching a file size modulo 2^64 */
    double approx = (double)V * dim * (tied ? 1 : 2) +
                    (double)L * (2.0 * dim + 2.0 * dim * dim + 2.0 * (double)kvd * dim + 3.0 * hidden * dim) +
                    dim + (double)seq * hd;
    uint64_t want = 28 + 4 * floats, have = file_size;
    if (approx > 0x1p60)
        want = UINT64_MAX;
    if (have != want)
        die("%s: file size %llu does not match its llama2.c header (dim %d, hidden_dim %d, "
            "n_layers %d, n_heads %d, n_kv_heads %d, vocab_size %d, seq_len %d need %llu bytes)%s",
            path, (unsigned long long)have, dim, hidden, L, H, KV, h[5], seq,
            (unsigned long long)want, have < want ? ": truncated?" : "");

    m->source = xstrdup(path);
    model_config *c = &m->cfg;
    snprintf(c->model_type, sizeof c->model_type, "llama");
    c->dim = dim;
    c->n_layers = L;
    c->vocab = V;
    c->head_dim = hd;
    c->max_seq = seq;
    c->n_heads = xmalloc((size_t)L * sizeof(int));
    c->n_kv_heads = xmalloc((size_t)L * sizeof(int));
    c->ffn_dim = xmalloc((size_t)L * sizeof(int));
    for (int l = 0; l < L; l++) {
        c->n_heads[l] = H;
        c->n_kv_heads[l] = KV;
        c->ffn_dim[l] = hidden;
    }
    c->norm_eps = 1e-5f;
    c->rope_theta = 10000.0f;
    c->rope_style = ROPE_INTERLEAVED;
    c->tied = tied;
    c->qkv_bias = false;
    c->bos_id = 1;
    c->eos_id = 2;
    m->extra_config = json_object();

    reader r = {f, path};
    read_outer(&r, m, MW_EMBED);
    /* the stacked per-layer arrays, in the file's order: rms_att, wq, wk, wv, wo,
     * rms_ffn, w1, w2, w3 */
    static const int order[] = {LW_ATTN_NORM, LW_Q, LW_K, LW_V, LW_O, LW_FFN_NORM, LW_GATE, LW_DOWN, LW_UP};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        read_layers(&r, m, order[i]);
    read_outer(&r, m, MW_FINAL_NORM);
    if (!tied) {
        if (fseeko(f, (off_t)((uint64_t)seq * hd * 4), SEEK_CUR) != 0)
            die("%s: cannot seek: %s", path, strerror(errno));
        read_outer(&r, m, MW_LM_HEAD);
    }
    fclose(f);
    model_bind(m);
}
