/* pare-mkmodel - write a Hugging Face model folder with random weights, for tests.
 *
 * The weights are deterministic in --seed (those of model_init_random, rounded to
 * --dtype) and written one tensor at a time, so a model larger than memory can be
 * made; the fingerprint printed on stdout is that of the folder as it loads back.
 * The same seed gives the same weights in either --format (safetensors, or the
 * pytorch_model*.bin that torch.save writes). */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "format/model_load.h"
#include "format/hf_folder.h"
#include "model/model.h"
#include "model/tensor.h"
#include "text/tokenizer.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: pare-mkmodel [options] -o DIR\n"
            "Write a Hugging Face folder (config.json + safetensors or PyTorch .bin) with\n"
            "random weights and print its fingerprint on stdout.\n"
            "  --dim D              hidden size (default 32)\n"
            "  --layers L           layers (default 2)\n"
            "  --heads H[,H2,...]   query heads, one value or one per layer (default 4)\n"
            "  --kv-heads K[,...]   key/value heads (default: --heads)\n"
            "  --ffn F[,...]        MLP width (default 64)\n"
            "  --vocab V            vocabulary size (default 64)\n"
            "  --head-dim hd        head size (default D / H)\n"
            "  --max-seq N          max_position_embeddings (default 256)\n"
            "  --tied | --untied    share the embedding with the LM head (default untied)\n"
            "  --qkv-bias           q/k/v projections with biases\n"
            "  --model-type T       llama (default), mistral, qwen2, qwen3, chatglm (ChatGLM-6B:\n"
            "                       --kv-heads, --tied, --qkv-bias, --rope ignored) or chatglm2\n"
            "                       (ChatGLM2/3: --kv-heads the multi-query groups; --tied,\n"
            "                       --rope ignored), written with their own config keys\n"
            "  --rope half|interleaved  rotary layout (default half)\n"
            "  --rope-theta X       rotary base (default 10000)\n"
            "  --dtype f32|f16|bf16 storage dtype (default f32)\n"
            "  --seed S             random seed (default 1)\n"
            "  --shards N           write N shards and an index (default 1)\n"
            "  --format safetensors|bin  weight files: model*.safetensors (default) or\n"
            "                       torch.save zip checkpoints pytorch_model*.bin\n"
            "  --inv-freq           also write the rotary inverse-frequency buffers the\n"
            "                       published checkpoints carry (LLaMA, ChatGLM-6B: one per\n"
            "                       layer, *.rotary_emb.inv_freq; ChatGLM2/3: one\n"
            "                       transformer.rotary_pos_emb.inv_freq), which pare ignores\n"
            "  --config FILE        the config.json to write (any model_type pare reads: a\n"
            "                       published config such as Llama-3.1-8B's or Qwen3-8B's);\n"
            "                       --vocab, --layers (a config of equal layers) and\n"
            "                       --tied/--untied given with it replace its values, the\n"
            "                       other shape options are refused\n"
            "  --tokenizer PATH     copy a tokenizer into the folder: a tokenizer.model, tok*.bin,\n"
            "                       tokenizer.json or a folder holding one\n"
            "  -o DIR               output folder (created if missing)\n"
            "  -h, --help           this help\n");
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const tensor *)a)->name, ((const tensor *)b)->name);
}

/* The buffers --inv-freq adds, with their values 1/theta^(2i/R), i < R/2, R the
 * channels one rotary table covers: LLaMA's (older transformers) and ChatGLM-6B's
 * beside each layer's attention, ChatGLM2/3's one for the model (its published
 * code computes it with theta 10000 whatever rope_ratio says). */
static void add_inv_freq(model *m, const model_config *c)
{
    int R = config_rope_dim(c);
    int64_t shape[2] = {R / 2, 0};
    bool one = c->arch == ARCH_CHATGLM2;
    double theta = one ? 10000 : c->rope_theta;
    for (int l = 0; l < (one ? 1 : c->n_layers); l++) {
        char name[256];
        if (one) {
            snprintf(name, sizeof name, "transformer.rotary_pos_emb.inv_freq");
        } else { /* "model.layers.3.self_attn.o_proj.weight" -> "model.layers.3.self_attn.rotary_emb.inv_freq" */
            layer_weight_name(c, name, sizeof name, l, LW_O);
            *strrchr(name, '.') = 0;
            strcpy(strrchr(name, '.') + 1, "rotary_emb.inv_freq");
        }
        float *v = model_new_tensor(m, name, 1, shape)->data;
        for (int i = 0; i < R / 2; i++)
            v[i] = (float)(1.0 / pow(theta, 2.0 * i / R));
    }
    qsort(m->tensors, (size_t)m->n_tensors, sizeof *m->tensors, cmp_name);
}

/* "4" or "4,4,2": fills out[L] (one value repeats for every layer). */
static void parse_list(const char *opt, const char *s, int L, int *out)
{
    char *copy = xstrdup(s), *save = NULL;
    int n = 0;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (n == L)
            usage_die("%s: more than %d values", opt, L);
        out[n++] = (int)parse_long(opt, tok, 0, 1 << 24);
    }
    free(copy);
    if (n == 1)
        for (int l = 1; l < L; l++)
            out[l] = out[0];
    else if (n != L)
        usage_die("%s: give one value or %d values", opt, L);
}

int main(int argc, char **argv)
{
    set_progname(argv[0]);
    enum { O_DIM = 256, O_LAYERS, O_HEADS, O_KV, O_FFN, O_VOCAB, O_HD, O_MAXSEQ, O_TIED, O_UNTIED,
           O_BIAS, O_TYPE, O_ROPE, O_THETA, O_DTYPE, O_SEED, O_SHARDS, O_TOK, O_FORMAT, O_INV_FREQ, O_CONFIG };
    static const struct option opts[] = {
        {"dim", 1, 0, O_DIM},         {"layers", 1, 0, O_LAYERS},   {"heads", 1, 0, O_HEADS},
        {"kv-heads", 1, 0, O_KV},     {"ffn", 1, 0, O_FFN},         {"vocab", 1, 0, O_VOCAB},
        {"head-dim", 1, 0, O_HD},     {"max-seq", 1, 0, O_MAXSEQ},  {"tied", 0, 0, O_TIED},
        {"untied", 0, 0, O_UNTIED},   {"qkv-bias", 0, 0, O_BIAS},   {"model-type", 1, 0, O_TYPE},
        {"rope", 1, 0, O_ROPE},       {"rope-theta", 1, 0, O_THETA}, {"dtype", 1, 0, O_DTYPE},
        {"seed", 1, 0, O_SEED},       {"shards", 1, 0, O_SHARDS},   {"tokenizer", 1, 0, O_TOK},
        {"format", 1, 0, O_FORMAT},   {"inv-freq", 0, 0, O_INV_FREQ}, {"config", 1, 0, O_CONFIG},
        {"help", 0, 0, 'h'},          {0, 0, 0, 0},
    };
    const char *heads = "4", *kv = NULL, *ffn = "64", *type = "llama", *rope = "half";
    const char *out = NULL, *tok = NULL, *config = NULL, *shape_opt = NULL;
    int dim = 32, layers = 2, vocab = 64, head_dim = 0, max_seq = 256, shards = 1;
    bool tied = false, bias = false, inv_freq = false, set_vocab = false, set_layers = false, set_tied = false;
    enum hf_weights format = HF_SAFETENSORS;
    double theta = 10000;
    long seed = 1;
    enum dtype dtype = DTYPE_F32;
    int c;
    int idx = 0;
    while ((c = getopt_long(argc, argv, "o:h", opts, &idx)) != -1) {
        if (c == O_DIM || c == O_HEADS || c == O_KV || c == O_FFN || c == O_HD || c == O_MAXSEQ || c == O_BIAS ||
            c == O_TYPE || c == O_ROPE || c == O_THETA)
            shape_opt = opts[idx].name;
        set_vocab |= c == O_VOCAB, set_layers |= c == O_LAYERS, set_tied |= c == O_TIED || c == O_UNTIED;
        switch (c) {
        case O_DIM: dim = (int)parse_long("--dim", optarg, 1, 1 << 20); break;
        case O_LAYERS: layers = (int)parse_long("--layers", optarg, 1, 4096); break;
        case O_HEADS: heads = optarg; break;
        case O_KV: kv = optarg; break;
        case O_FFN: ffn = optarg; break;
        case O_VOCAB: vocab = (int)parse_long("--vocab", optarg, 1, 1 << 24); break;
        case O_HD: head_dim = (int)parse_long("--head-dim", optarg, 2, 1 << 16); break;
        case O_MAXSEQ: max_seq = (int)parse_long("--max-seq", optarg, 1, 1 << 24); break;
        case O_TIED: tied = true; break;
        case O_UNTIED: tied = false; break;
        case O_BIAS: bias = true; break;
        case O_TYPE: type = optarg; break;
        case O_ROPE: rope = optarg; break;
        case O_THETA: theta = parse_double("--rope-theta", optarg, 1, 1e12); break;
        case O_DTYPE: {
            dtype = parse_dtype("--dtype", optarg);
            break;
        }
        case O_SEED: seed = parse_long("--seed", optarg, 0, 0x7fffffffL); break;
        case O_SHARDS: shards = (int)parse_long("--shards", optarg, 1, 99999); break;
        case O_TOK: tok = optarg; break;
        case O_FORMAT:
            if (!strcmp(optarg, "safetensors"))
                format = HF_SAFETENSORS;
            else if (!strcmp(optarg, "bin"))
                format = HF_PYTORCH;
            else
                usage_die("--format: expected safetensors or bin, got '%s'", optarg);
            break;
        case O_INV_FREQ: inv_freq = true; break;
        case O_CONFIG: config = optarg; break;
        case 'o': out = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc)
        usage_die("unexpected argument '%s'", argv[optind]);
    if (!out)
        usage_die("no output folder (-o DIR)");
    if (strcmp(rope, "half") && strcmp(rope, "interleaved"))
        usage_die("--rope: expected half or interleaved, got '%s'", rope);

    if (config && shape_opt)
        usage_die("--%s: the shape comes from --config", shape_opt);

    /* Build the config as JSON so it goes through the same checks as a file. */
    int *h = xmalloc((size_t)layers * sizeof(int)), *k = xmalloc((size_t)layers * sizeof(int));
    int *f = xmalloc((size_t)layers * sizeof(int));
    parse_list("--heads", heads, layers, h);
    parse_list("--kv-heads", kv ? kv : heads, layers, k);
    parse_list("--ffn", ffn, layers, f);
    if (!head_dim) {
        if (h[0] == 0 || dim % h[0] != 0)
            usage_die("--head-dim: needed when --dim is not a multiple of the first --heads");
        head_dim = dim / h[0];
    }
    json_t *hj = json_array(), *kj = json_array(), *fj = json_array();
    for (int l = 0; l < layers; l++) {
        json_array_append_new(hj, json_integer(h[l]));
        json_array_append_new(kj, json_integer(k[l]));
        json_array_append_new(fj, json_integer(f[l]));
    }
    bool glm = !strcmp(type, "chatglm"), glm2 = !strcmp(type, "chatglm2");
    json_t *j;
    if (config) {
        json_error_t err;
        j = json_load_file(config, 0, &err);
        if (!j)
            die("%s: %s (line %d)", config, err.text, err.line);
        json_decref(hj), json_decref(kj), json_decref(fj);
        const char *vocab_key = json_object_get(j, "padded_vocab_size") ? "padded_vocab_size" : "vocab_size";
        const char *layers_key = json_object_get(j, "num_layers") ? "num_layers" : "num_hidden_layers";
        if (set_vocab)
            json_object_set_new(j, vocab_key, json_integer(vocab));
        if (set_layers)
            json_object_set_new(j, layers_key, json_integer(layers));
        if (set_tied)
            json_object_set_new(j, "tie_word_embeddings", json_boolean(tied));
    } else if (glm || glm2) {
        /* the published configs' keys (config.c) */
        j = json_pack("{s:s, s:i, s:i, s:i, s:o, s:f, s:i, s:i, s:i, s:b}", "model_type", "chatglm",
                      "hidden_size", dim, "num_layers", layers, glm ? "vocab_size" : "padded_vocab_size", vocab,
                      "num_attention_heads", hj, "layernorm_epsilon", 1e-5, glm ? "max_sequence_length" : "seq_length",
                      max_seq, glm ? "head_dim" : "kv_channels", head_dim, "bos_token_id", 1,
                      "tie_word_embeddings", false);
        if (!j)
            die("cannot build the config");
        json_object_set_new(j, glm ? "inner_hidden_size" : "ffn_hidden_size", fj);
        if (glm) {
            json_object_set_new(j, "position_encoding_2d", json_true());
            json_decref(kj);
        } else {
            json_object_set_new(j, "multi_query_attention", json_true());
            json_object_set_new(j, "multi_query_group_num", kj);
            json_object_set_new(j, "add_qkv_bias", json_boolean(bias));
            json_object_set_new(j, "add_bias_linear", json_false());
            json_object_set_new(j, "rmsnorm", json_true());
            json_object_set_new(j, "rope_ratio", json_real(theta / 10000));
        }
        json_object_set_new(j, "architectures", json_pack("[s]", "ChatGLMModel"));
    } else {
        j = json_pack("{s:s, s:i, s:i, s:i, s:i, s:o, s:o, s:o, s:f, s:f, s:s, s:b, s:b, s:i, s:i, s:s}",
                              "model_type", type, "hidden_size", dim, "num_hidden_layers", layers,
                              "vocab_size", vocab, "head_dim", head_dim, "num_attention_heads", hj,
                              "num_key_value_heads", kj, "intermediate_size", fj, "rms_norm_eps", 1e-5,
                              "rope_theta", theta, "rope_style", rope, "tie_word_embeddings", tied,
                              "attention_bias", bias, "max_position_embeddings", max_seq,
                              "bos_token_id", 1, "hidden_act", "silu");
        if (!j)
            die("cannot build the config");
        json_object_set_new(j, "eos_token_id", json_integer(2));
        json_object_set_new(j, "architectures", json_pack("[s]", !strcmp(type, "qwen2") ? "Qwen2ForCausalLM"
                                                          : !strcmp(type, "qwen3")  ? "Qwen3ForCausalLM"
                                                          : !strcmp(type, "mistral") ? "MistralForCausalLM"
                                                                                     : "LlamaForCausalLM"));
    }
    model_config cfg;
    config_from_json(&cfg, j, config ? config : "the options");

    /* Written one tensor at a time (a 7B-shaped model does not fit in memory);
     * the fingerprint printed is that of the folder as it loads back. */
    model m;
    random_source rs;
    model_init_random_shapes(&m, &cfg, (uint64_t)seed, dtype, &rs);
    json_decref(m.extra_config);
    m.extra_config = config_extra(j);
    if (tok) { /* a tokenizer file or folder, as every program reads it */
        tokenizer *t = tokenizer_load_file(tok);
        size_t n;
        const uint8_t *data = tokenizer_data(t, &n);
        m.tok.format = xstrdup(tokenizer_format(t));
        m.tok.data = memcpy(xmalloc(n), data, n);
        m.tok.size = n;
        tokenizer_free(t);
    }
    if (inv_freq)
        add_inv_freq(&m, &cfg);
    hf_write_folder_as(&m, out, dtype, shards, format);
    model_free(&m);

    model back;
    model_load(&back, out, NULL);
    char fp[17];
    model_fingerprint(&back, fp);
    printf("%s\n", fp);
    model_free(&back);
    config_free(&cfg);
    json_decref(j);
    free(h);
    free(k);
    free(f);
    if (ferror(stdout) || fclose(stdout) != 0)
        die("cannot write to stdout");
    return 0;
}
