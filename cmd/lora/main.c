/* pare-lora - recover a pruned model with LoRA, the LLM-Pruner way: train
 * low-rank adapters (or, with --full, every weight) on instruction data or raw
 * text, on its next tokens or by distillation from a teacher (the unpruned
 * model, run beside it or read from its dumped logits), keep the best on a
 * held-out set, and write them as an adapter stream (or a checkpoint). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/blas.h"
#include "base/options.h"
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
    "\n";

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

static void dtype_option(const char *name, const char *arg, void *value) { *(int *)value = (int)parse_dtype(name, arg); }

int main(int argc, char **argv)
{
    set_progname(argv[0]);
    blas_init(argc, argv);
    const char *model_path = NULL, *tok_path = NULL, *data_path = NULL, *out = NULL, *teacher_path = NULL,
               *logits_path = NULL;
    bool text = false, train_on_inputs = false, merge = false, full = false, dump = false;
    int cutoff = 256, val_size = 2000, rank = 8, threads = 0, dtype = -1, top_k = 64;
    double alpha = 16, dropout = 0.05;
    const char *target_list = NULL;
    train_options o;
    train_options_default(&o);
    o.key_name = option_of;
    option opts[] = {
        OPT_STRING('m', "model", "PATH", "the model (a pruned checkpoint, HF folder, llama2.c .bin; '-' = stdin)",
                   &model_path),
        OPT_TOKENIZER(&tok_path),
        OPT_SECTION("data:"),
        OPT_STRING(0, "data", "FILE",
                   "Alpaca records (a JSON array or JSON lines of instruction/input/output);\n"
                   ".gz, .xz, .zst, .bz2 and tar archives too",
                   &data_path),
        OPT_FLAG(0, "text", "FILE is raw text: train on consecutive windows of --cutoff tokens", &text),
        OPT_INT(0, "cutoff", "N", "most tokens of a sample", &cutoff, 2, 1 << 20, "256"),
        OPT_FLAG(0, "train-on-inputs", "score the prompt tokens too (default: masked from the loss)", &train_on_inputs),
        OPT_INT(0, "val-size", "N", "held-out validation samples (default 2000; at most a tenth of the data)",
                &val_size, 0, 1 << 30, NULL),
        OPT_SECTION("adapters:"),
        OPT_STRING(0, "targets", "LIST",
                   "linear maps to adapt, by the model's module names: LLaMA's (Llama 3's,\n"
                   "Qwen2's, Qwen3's) q_proj, k_proj,\n"
                   "v_proj, o_proj, gate_proj, up_proj, down_proj (or q, k, v, o, gate, up, down);\n"
                   "ChatGLM's query_key_value, dense, dense_h_to_4h, dense_4h_to_h; or all,\n"
                   "every linear map the model has (default all)",
                   &target_list),
        OPT_INT(0, "rank", "N", "rank r", &rank, 1, 1 << 16, "8"),
        OPT_DOUBLE(0, "alpha", "X", "scaling alpha; the term is alpha/r * B A x", &alpha, 0, 1e9, "16"),
        OPT_DOUBLE(0, "dropout", "P", "dropout on the adapters' input", &dropout, 0, 0.99, "0.05"),
        OPT_SECTION("loss:"),
        OPT_STRING(0, "teacher", "MODEL",
                   "distil from MODEL (its vocabulary the model's; usually the unpruned\n"
                   "model), run forward beside the training",
                   &teacher_path),
        OPT_STRING(0, "teacher-logits", "FILE", "distil from the teacher's distributions in FILE (--dump-logits)",
                   &logits_path),
        OPT_DOUBLE(0, "kd-weight", "W", "loss = W * T^2 KL(teacher || model) + (1 - W) * cross-entropy",
                   &o.kd_weight, 0, 1, "1"),
        OPT_DOUBLE(0, "kd-temp", "T", "temperature T of both distributions", &o.kd_temp, 1e-3, 1e3, "1"),
        OPT_FLAG(0, "dump-logits",
                 "write --teacher's top-k distributions at every scored position of\n"
                 "the data as a logits stream, and train nothing",
                 &dump),
        OPT_INT(0, "top-k", "K", "tokens kept a position by --dump-logits", &top_k, 1, 1 << 20, "64"),
        OPT_SECTION("training:"),
        OPT_FLAG(0, "full", "train every weight of MODEL, not adapters; writes the checkpoint", &full),
        OPT_DOUBLE(0, "lr", "X", "peak learning rate", &o.lr, 0, 1e9, "1e-4"),
        OPT_INT(0, "warmup", "N", "warm-up steps, then linear decay to 0", &o.warmup, 0, 1 << 30, "100"),
        OPT_INT(0, "batch", "N", "samples per optimiser step", &o.batch, 1, 1 << 24, "64"),
        OPT_INT(0, "micro-batch", "N", "samples per forward/backward pass; gradients accumulate", &o.micro_batch, 1,
                4096, "4"),
        OPT_INT(0, "epochs", "N", "passes over the training samples", &o.epochs, 1, 1 << 20, "2"),
        OPT_DOUBLE(0, "max-grad-norm", "X", "clip the gradient's norm (default 1.0; 0 = off)", &o.max_grad_norm, 0,
                   1e30, NULL),
        OPT_SEED("seed of the split, the initialisation, the shuffles, dropout", (int64_t *)&o.seed, "42"),
        OPT_INT(0, "eval-every", "N", "validation loss every N steps, and at the end", &o.eval_every, 1, 1 << 30,
                "100"),
        OPT_INT(0, "log-every", "N", "a loss-curve point and a progress line every N steps", &o.log_every, 1,
                1 << 30, "10"),
        OPT_SECTION("stop and resume:"),
        OPT_STRING(0, "state", "DIR", "save the training state in DIR and resume from it when present",
                   &o.state_dir),
        OPT_INT(0, "save-every", "N", "save the state every N steps (default 200), at the end and on SIGINT/SIGTERM",
                &o.save_every, 1, 1 << 30, NULL),
        OPT_SECTION("output:"),
        OPT_FLAG(0, "merge", "write the merged checkpoint instead of the adapter stream", &merge),
        OPT_FUNC(0, "dtype", "T",
                 "with --merge: merge into and write f32, f16 or bf16 weights\n"
                 "(default: each weight in the base's dtype, rounded to nearest even)",
                 dtype_option, &dtype),
        OPT_THREADS(&threads),
        OPT_OUTPUT("write the stream to FILE (atomically)", &out),
        OPT_FUNC(0, "progress", NULL, "a progress line after every step", option_progress, NULL),
        OPT_QUIET("no progress and no summary"),
        OPT_END,
    };
    int first = options_parse(opts, usage, argc, argv);
    bool kd_given = options_given(opts, "kd-weight");
    if (first < argc)
        usage_die("unexpected argument '%s'", argv[first]);
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
