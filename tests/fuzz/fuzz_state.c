/* fuzz_state - pare-lora's resume state (state.pare in a --state folder): the
 * input, re-sealed (reseal.h: its end record recomputed, so that mutations get
 * past the checksum), is the state file, and train_run resumes from it as
 * pare-lora does.
 *
 * The run is the one the seeds were saved by (tests/fuzz/run: pare-lora on the
 * model $PARE_FUZZ_MODEL and the text $PARE_FUZZ_TEXT, --text --cutoff 16 --batch 4
 * --micro-batch 2 --warmup 1 --epochs 1 --rank 2 --targets q_proj), so that a
 * state's identity matches and mutations reach its counters and arrays: a state
 * that says it is finished returns at once, one that is not trains its remaining
 * steps (train_run with the adapters as pare-lora trains them). */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/util.h"
#include "compute/lora.h"
#include "format/open.h"
#include "fuzz.h"
#include "model/model.h"
#include "reseal.h"
#include "text/instruct.h"
#include "train/train.h"

static model g_model;
static instruct_data g_data;
static int *g_train, *g_val, g_n_val;
static lora_set g_lora;
static float *g_init; /* (P) the adapters before training */
static train_options g_opt;
static char *g_dir;

static void one(const uint8_t *data, size_t size)
{
    size_t n;
    uint8_t *sealed = reseal(data, size, &n);
    char *path = path_join(g_dir, "state.pare");
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(sealed, 1, n, f) != n || fclose(f) != 0)
        abort();
    free(path);
    free(sealed);
    memcpy(g_lora.params, g_init, g_lora.n_params * sizeof(float));
    train_result res;
    train_job job = {.m = &g_model, .lora = &g_lora, .d = &g_data, .train = g_train, .val = g_val,
                     .n_train = g_data.n - g_n_val, .n_val = g_n_val};
    train_run(&job, &g_opt, &res);
    train_result_free(&res);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *mp = getenv("PARE_FUZZ_MODEL"), *tp = getenv("PARE_FUZZ_TEXT");
    if (!mp || !*mp || !tp || !*tp) {
        fprintf(stderr, "fuzz_state: set PARE_FUZZ_MODEL and PARE_FUZZ_TEXT (tests/fuzz/run does)\n");
        exit(1);
    }
    set_progname("fuzz_state");
    tokenizer *tok = model_open(&g_model, mp, NULL, "train");
    instruct_load_text(&g_data, tp, tok, 16);
    tokenizer_free(tok);
    uint64_t seed = 42;
    g_n_val = instruct_val_count(g_data.n, 2000);
    instruct_split(g_data.n, g_n_val, seed, &g_train, &g_val);
    lora_init(&g_lora, &g_model, 1u << LORA_Q, 2, 16);
    lora_init_weights(&g_lora, seed);
    g_lora.dropout = 0.05;
    g_lora.seed = seed;
    g_init = xmalloc(g_lora.n_params * sizeof(float));
    memcpy(g_init, g_lora.params, g_lora.n_params * sizeof(float));
    train_options_default(&g_opt);
    g_opt.seed = seed;
    g_opt.batch = 4;
    g_opt.micro_batch = 2;
    g_opt.warmup = 1;
    g_opt.epochs = 1;
    g_dir = path_join(fuzz_dir(), "state");
    if (mkdir(g_dir, 0777) != 0)
        die("cannot create '%s'", g_dir);
    g_opt.state_dir = g_dir;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fuzz_run(one, data, size) && getenv("PARE_FUZZ_VERBOSE"))
        fprintf(stderr, "%s\n", fuzz_last_error());
    g_lora.grads = NULL; /* train_run allocates them and frees them at its end; the harness did after a die */
    return 0;
}
