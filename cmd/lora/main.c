/* pare-lora - recover a pruned model with LoRA, the LLM-Pruner way: train
 * low-rank adapters (or, with --full, every weight) on instruction data or raw
 * text, on its next tokens or by distillation from a teacher (the unpruned
 * model, run beside it or read from its dumped logits), keep the best on a
 * held-out set, and write them as an adapter stream (or a checkpoint). */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/blas.h"
#include "base/progress.h"
#include "base/util.h"
#include "compute/lora.h"
#include "format/adapter.h"
#include "format/open.h"
#include "model/model.h"
#include "text/instruct.h"
#include "text/tokenizer.h"
#include "train/teacher.h"
#include "train/train.h"

static const char usage[] =
    "usage: pare-lora -m MODEL --data FILE [--text] [options] [-o FILE]\n"
    "       pare-lora --teacher MODEL --data FILE [--text] --dump-logits [options] [-o FILE]\n"
    "\n"
    "Train LoRA adapters on MODEL (frozen) and write them as an adapter stream (stdout or\n"
    "-o FILE), or with --merge the merged checkpoint; with --full train every weight and\n"
    "write the checkpoint. With --dump-logits write the teacher's top-k next-token\n"
    "distributions over the data as a logits stream instead.\n"
    "\n"
    "  -m, --model PATH        the model (a pruned checkpoint, HF folder, llama2.c .bin; '-' = stdin)\n"
    "      --tokenizer FILE    tokenizer (tokenizer.model, tok*.bin, tokenizer.json or a model folder) if the model has none\n"
    "data:\n"
    "      --data FILE         Alpaca records (a JSON array or JSON lines of instruction/input/output);\n"
    "                          .gz, .xz, .zst, .bz2 and tar archives too\n"
    "      --text              FILE is raw text: train on consecutive windows of --cutoff tokens\n"
    "      --cutoff N          most tokens of a sample (default 256)\n"
    "      --train-on-inputs   score the prompt tokens too (default: masked from the loss)\n"
    "      --val-size N        held-out validation samples (default 2000; at most a tenth of the data)\n"
    "adapters:\n"
    "      --targets LIST      linear maps to adapt, by the model's module names: LLaMA's (Llama 3's,\n"
    "                          Qwen2's, Qwen3's) q_proj, k_proj,\n"
    "                          v_proj, o_proj, gate_proj, up_proj, down_proj (or q, k, v, o, gate, up, down);\n"
    "                          ChatGLM's query_key_value, dense, dense_h_to_4h, dense_4h_to_h; or all,\n"
    "                          every linear map the model has (default all)\n"
    "      --rank N            rank r (default 8)\n"
    "      --alpha X           scaling alpha; the term is alpha/r * B A x (default 16)\n"
    "      --dropout P         dropout on the adapters' input (default 0.05)\n"
    "loss:\n"
    "      --teacher MODEL     distil from MODEL (its vocabulary the model's; usually the unpruned\n"
    "                          model), run forward beside the training\n"
    "      --teacher-logits FILE  distil from the teacher's distributions in FILE (--dump-logits)\n"
    "      --kd-weight W       loss = W * T^2 KL(teacher || model) + (1 - W) * cross-entropy (default 1)\n"
    "      --kd-temp T         temperature T of both distributions (default 1)\n"
    "      --dump-logits       write --teacher's top-k distributions at every scored position of\n"
    "                          the data as a logits stream, and train nothing\n"
    "      --top-k K           tokens kept a position by --dump-logits (default 64)\n"
    "training:\n"
    "      --full              train every weight of MODEL, not adapters; writes the checkpoint\n"
    "      --lr X              peak learning rate (default 1e-4)\n"
    "      --warmup N          warm-up steps, then linear decay to 0 (default 100)\n"
    "      --batch N           samples per optimiser step (default 64)\n"
    "      --micro-batch N     samples per forward/backward pass; gradients accumulate (default 4)\n"
    "      --epochs N          passes over the training samples (default 2)\n"
    "      --max-grad-norm X   clip the gradient's norm (default 1.0; 0 = off)\n"
    "      --seed N            seed of the split, the initialisation, the shuffles, dropout (default 42)\n"
    "      --eval-every N      validation loss every N steps, and at the end (default 100)\n"
    "      --log-every N       a loss-curve point and a progress line every N steps (default 10)\n"
    "stop and resume:\n"
    "      --state DIR         save the training state in DIR and resume from it when present\n"
    "      --save-every N      save the state every N steps (default 200), at the end and on SIGINT/SIGTERM\n"
    "output:\n"
    "      --merge             write the merged checkpoint instead of the adapter stream\n"
    "      --dtype T           with --merge: merge into and write f32, f16 or bf16 weights\n"
    "                          (default: each weight in the base's dtype, rounded to nearest even)\n"
    "  -t, --threads N         threads (default: PARE_THREADS, else all cores)\n"
    "  -o, --output FILE       write the stream to FILE (atomically)\n"
    "      --progress          a progress line after every step\n"
    "  -q, --quiet             no progress and no summary\n"
    "  -h, --help              show this help\n"
    "      --version           show the version\n";

/* The option behind each identity key of the training state, for its messages. */
static const char *option_of(const char *key)
{
    static const char *const names[][2] = {
        {"mode", "the data mode (--text or Alpaca)"}, {"cutoff", "--cutoff"}, {"val", "validation samples (--val-size)"},
        {"rank", "--rank"}, {"alpha", "--alpha"}, {"dropout", "--dropout"}, {"targets", "--targets"}, {"lr", "--lr"},
        {"warmup", "--warmup"}, {"batch", "--batch"}, {"micro_batch", "--micro-batch"}, {"epochs", "--epochs"},
        {"eval_every", "--eval-every"}, {"log_every", "--log-every"}, {"max_grad_norm", "--max-grad-norm"},
        {"seed", "--seed"}, {"teacher", "the teacher (--teacher or --teacher-logits)"}, {"kd_weight", "--kd-weight"},
        {"kd_temp", "--kd-temp"}, {"full", "--full"}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(key, names[i][0]))
            return names[i][1];
    return NULL;
}

/* The data, tokenized with tok, and its split into training and validation samples. */
static void load_data(instruct_data *d, const char *path, const tokenizer *tok, bool text, int cutoff,
                      bool train_on_inputs)
{
    if (text)
        instruct_load_text(d, path, tok, cutoff);
    else if (!instruct_load_alpaca(d, path, tok, cutoff, train_on_inputs))
        die("%s: not Alpaca JSON (a JSON array or JSON lines of instruction/input/output records; "
            "use --text for raw text)", path);
}

int main(int argc, char **argv)
{
    set_progname(argv[0]);
    blas_init(argc, argv);
    const char *model_path = NULL, *tok_path = NULL, *data_path = NULL, *out = NULL, *teacher_path = NULL,
               *logits_path = NULL;
    bool text = false, train_on_inputs = false, merge = false, full = false, dump = false, kd_given = false;
    int cutoff = 256, val_size = 2000, rank = 8, threads = 0, dtype = -1, top_k = 64;
    double alpha = 16, dropout = 0.05;
    const char *target_list = NULL;
    train_options o;
    train_options_default(&o);
    o.key_name = option_of;

    enum { OPT_TOK = 256, OPT_DATA, OPT_TEXT, OPT_CUTOFF, OPT_TOI, OPT_VAL, OPT_TARGETS, OPT_RANK, OPT_ALPHA,
           OPT_DROPOUT, OPT_LR, OPT_WARMUP, OPT_BATCH, OPT_MICRO, OPT_EPOCHS, OPT_CLIP, OPT_SEED, OPT_EVAL, OPT_LOG,
           OPT_STATE, OPT_SAVE, OPT_MERGE, OPT_DTYPE, OPT_PROGRESS, OPT_VERSION, OPT_TEACHER, OPT_LOGITS,
           OPT_KD_WEIGHT, OPT_KD_TEMP, OPT_DUMP, OPT_TOPK, OPT_FULL };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},          {"tokenizer", required_argument, 0, OPT_TOK},
        {"data", required_argument, 0, OPT_DATA},      {"text", no_argument, 0, OPT_TEXT},
        {"cutoff", required_argument, 0, OPT_CUTOFF},  {"train-on-inputs", no_argument, 0, OPT_TOI},
        {"val-size", required_argument, 0, OPT_VAL},   {"targets", required_argument, 0, OPT_TARGETS},
        {"rank", required_argument, 0, OPT_RANK},      {"alpha", required_argument, 0, OPT_ALPHA},
        {"dropout", required_argument, 0, OPT_DROPOUT}, {"lr", required_argument, 0, OPT_LR},
        {"warmup", required_argument, 0, OPT_WARMUP},  {"batch", required_argument, 0, OPT_BATCH},
        {"micro-batch", required_argument, 0, OPT_MICRO}, {"epochs", required_argument, 0, OPT_EPOCHS},
        {"max-grad-norm", required_argument, 0, OPT_CLIP}, {"seed", required_argument, 0, OPT_SEED},
        {"eval-every", required_argument, 0, OPT_EVAL}, {"log-every", required_argument, 0, OPT_LOG},
        {"state", required_argument, 0, OPT_STATE},    {"save-every", required_argument, 0, OPT_SAVE},
        {"merge", no_argument, 0, OPT_MERGE},          {"dtype", required_argument, 0, OPT_DTYPE},
        {"teacher", required_argument, 0, OPT_TEACHER}, {"teacher-logits", required_argument, 0, OPT_LOGITS},
        {"kd-weight", required_argument, 0, OPT_KD_WEIGHT}, {"kd-temp", required_argument, 0, OPT_KD_TEMP},
        {"dump-logits", no_argument, 0, OPT_DUMP},     {"top-k", required_argument, 0, OPT_TOPK},
        {"full", no_argument, 0, OPT_FULL},
        {"threads", required_argument, 0, 't'},
        {"output", required_argument, 0, 'o'},         {"progress", no_argument, 0, OPT_PROGRESS},
        {"quiet", no_argument, 0, 'q'},                {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, OPT_VERSION},      {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "m:t:o:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model_path = optarg; break;
        case OPT_TOK: tok_path = optarg; break;
        case OPT_DATA: data_path = optarg; break;
        case OPT_TEXT: text = true; break;
        case OPT_CUTOFF: cutoff = (int)parse_long("--cutoff", optarg, 2, 1 << 20); break;
        case OPT_TOI: train_on_inputs = true; break;
        case OPT_VAL: val_size = (int)parse_long("--val-size", optarg, 0, 1 << 30); break;
        case OPT_TARGETS: target_list = optarg; break;
        case OPT_RANK: rank = (int)parse_long("--rank", optarg, 1, 1 << 16); break;
        case OPT_ALPHA: alpha = parse_double("--alpha", optarg, 0, 1e9); break;
        case OPT_DROPOUT: dropout = parse_double("--dropout", optarg, 0, 0.99); break;
        case OPT_LR: o.lr = parse_double("--lr", optarg, 0, 1e9); break;
        case OPT_WARMUP: o.warmup = (int)parse_long("--warmup", optarg, 0, 1 << 30); break;
        case OPT_BATCH: o.batch = (int)parse_long("--batch", optarg, 1, 1 << 24); break;
        case OPT_MICRO: o.micro_batch = (int)parse_long("--micro-batch", optarg, 1, 4096); break;
        case OPT_EPOCHS: o.epochs = (int)parse_long("--epochs", optarg, 1, 1 << 20); break;
        case OPT_CLIP: o.max_grad_norm = parse_double("--max-grad-norm", optarg, 0, 1e30); break;
        case OPT_SEED: o.seed = (uint64_t)parse_long("--seed", optarg, 0, INT64_MAX); break;
        case OPT_EVAL: o.eval_every = (int)parse_long("--eval-every", optarg, 1, 1 << 30); break;
        case OPT_LOG: o.log_every = (int)parse_long("--log-every", optarg, 1, 1 << 30); break;
        case OPT_STATE: o.state_dir = optarg; break;
        case OPT_SAVE: o.save_every = (int)parse_long("--save-every", optarg, 1, 1 << 30); break;
        case OPT_MERGE: merge = true; break;
        case OPT_DTYPE: dtype = (int)parse_dtype("--dtype", optarg); break;
        case OPT_TEACHER: teacher_path = optarg; break;
        case OPT_LOGITS: logits_path = optarg; break;
        case OPT_KD_WEIGHT: o.kd_weight = parse_double("--kd-weight", optarg, 0, 1), kd_given = true; break;
        case OPT_KD_TEMP: o.kd_temp = parse_double("--kd-temp", optarg, 1e-3, 1e3); break;
        case OPT_DUMP: dump = true; break;
        case OPT_TOPK: top_k = (int)parse_long("--top-k", optarg, 1, 1 << 20); break;
        case OPT_FULL: full = true; break;
        case 't': threads = (int)parse_long("--threads", optarg, 1, 4096); break;
        case 'o': out = optarg; break;
        case OPT_PROGRESS: g_progress_mode = 1; break;
        case 'q': g_quiet = true; g_progress_mode = 0; break;
        case 'h': fputs(usage, stdout); return 0;
        case OPT_VERSION: printf("pare-lora %s\n", PARE_VERSION); return 0;
        default: usage_die("unknown option");
        }
    }
    if (optind < argc)
        usage_die("unexpected argument '%s'", argv[optind]);
    if (dump && (!teacher_path || model_path))
        usage_die("--dump-logits writes the logits of --teacher MODEL (and takes no -m)");
    if (!dump && !model_path)
        usage_die("no model given (-m MODEL)");
    if (!data_path)
        usage_die("no training data given (--data FILE)");
    if (!strcmp(data_path, "-") && ((model_path && !strcmp(model_path, "-")) || (teacher_path && !strcmp(teacher_path, "-"))))
        usage_die("the models and the data cannot both come from stdin");
    if (model_path && teacher_path && !strcmp(model_path, "-") && !strcmp(teacher_path, "-"))
        usage_die("the model and the teacher cannot both come from stdin");
    if (kd_given && !teacher_path && !logits_path)
        usage_die("--kd-weight is for distillation (--teacher MODEL or --teacher-logits FILE)");
    if (teacher_path && logits_path)
        usage_die("--teacher and --teacher-logits are two routes to one teacher: give one");
    if (o.batch % o.micro_batch)
        usage_die("--batch %d is not a multiple of --micro-batch %d", o.batch, o.micro_batch);
    if (dtype >= 0 && !merge && !full)
        usage_die("--dtype is for --merge and --full (the adapter stream is fp32)");
    if (full && (merge || target_list))
        usage_die("--full trains every weight: --merge and --targets are for adapters");
    if (text && train_on_inputs)
        usage_die("--train-on-inputs is for Alpaca records (raw text has no prompt)");
    if ((!out || !strcmp(out, "-")) && isatty(STDOUT_FILENO))
        usage_die("refusing to write a binary stream to a terminal (redirect stdout or use -o FILE)");
    blas_set_threads(threads);

    instruct_data d;
    model tm;
    tokenizer *ttok = NULL;
    if (teacher_path) {
        ttok = model_open(&tm, teacher_path, tok_path, "teach");
        if (!ttok && dump)
            die("%s: the teacher has no tokenizer (give --tokenizer FILE)", teacher_path);
    }
    if (dump) {
        load_data(&d, data_path, ttok, text, cutoff, train_on_inputs);
        info("%s: %d samples, %lld scored positions: the teacher's top %d at temperature %g", data_path, d.n,
             (long long)d.scored, top_k, o.kd_temp);
        teacher_dump(&tm, &d, top_k, o.kd_temp, o.micro_batch, out, argc, argv);
        instruct_free(&d);
        tokenizer_free(ttok);
        model_free(&tm);
        return 0;
    }

    model m;
    tokenizer *tok = model_open(&m, model_path, tok_path, "train");
    if (!tok)
        die("%s: the model has no tokenizer (give --tokenizer FILE)", model_path);
    unsigned targets = full ? 0 : lora_targets_parse(m.cfg.arch, target_list ? target_list : "all");
    if (!full && !targets) {
        char *valid = lora_targets_string(m.cfg.arch, lora_arch_targets(m.cfg.arch));
        usage_die("--targets '%s': a %s model's targets are %s (or all)", target_list, model_archs[m.cfg.arch].name,
                  valid);
    }
    load_data(&d, data_path, tok, text, cutoff, train_on_inputs);
    int n_val = instruct_val_count(d.n, val_size), *train, *val;
    instruct_split(d.n, n_val, o.seed, &train, &val);
    if (text)
        info("%s: %lld tokens, %d windows of %d: %d to train, %d to validate", data_path, (long long)d.text_tokens,
             d.n, cutoff, d.n - n_val, n_val);
    else
        info("%s: %d records (%d cut at %d tokens, %d skipped): %d to train, %d to validate", data_path, d.records,
             d.truncated, cutoff, d.skipped, d.n - n_val, n_val);

    teacher *teach = NULL;
    if (teacher_path) {
        teacher_check_vocab(&m, tok, &tm, ttok, teacher_path);
        teach = teacher_live(&tm, o.micro_batch, instruct_max_len(&d));
    } else if (logits_path) {
        teach = teacher_from_logits(logits_path, &d, m.cfg.vocab);
    }
    lora_set *s = NULL;
    if (!full) {
        s = xcalloc(1, sizeof *s);
        lora_init(s, &m, targets, rank, alpha);
        lora_init_weights(s, o.seed);
        s->dropout = dropout;
        s->seed = o.seed;
    }
    train_job job = {.m = &m, .lora = s, .d = &d, .train = train, .val = val, .n_train = d.n - n_val,
                     .n_val = n_val, .teacher = teach};
    train_result res;
    train_run(&job, &o, &res);
    if (full)
        trained_write(&m, res.base_fingerprint, dtype, out, argc, argv, res.training);
    else if (merge)
        adapter_write_merged(s, &m, dtype, out, argc, argv, res.training);
    else
        adapter_write(s, &m, out, argc, argv, res.training, res.curve);
    double rate = res.seconds > 0 ? (double)res.tokens_run / res.seconds : 0.0;
    char what[64];
    if (full)
        snprintf(what, sizeof what, "every weight, %lld parameters", (long long)config_param_count(&m.cfg));
    else
        snprintf(what, sizeof what, "%d adapters, %zu parameters", s->n, s->n_weights);
    info("%lld steps (%lld run now) on %lld tokens in %.1f s, %.*f tok/s; val loss %.4f before, %.4f best (step "
         "%lld); %s",
         (long long)res.steps, (long long)res.steps_run, (long long)res.tokens_run, res.seconds,
         rate_decimals(rate), rate, res.first_val, res.best_val, (long long)res.best_step, what);
    train_result_free(&res);
    free(train), free(val);
    instruct_free(&d);
    teacher_free(teach);
    if (teacher_path) {
        tokenizer_free(ttok);
        model_free(&tm);
    }
    tokenizer_free(tok);
    if (s)
        lora_destroy(s);
    model_free(&m);
    if (fflush(stdout) != 0 || ferror(stdout))
        die("cannot write the output: write error");
    return 0;
}
