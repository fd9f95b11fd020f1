/* fuzz_stream - the stream reader and every reader of a stream kind.
 *
 * The input is a pare stream. pare show reads it first (any kind, payloads
 * summarised, or decoded when the input's size is odd), then the reader of its
 * kind: checkpoint, groups/scores, report, partial (score merge of one shard) and
 * adapter (against the model in $PARE_FUZZ_MODEL, or a small random one).
 *
 * Built a second time with -DFUZZ_RESEAL as fuzz_stream_reseal: the input is
 * re-sealed before it is read: a trailing end record is dropped and a fresh one
 * appended whose record count and XXH64 match the bytes, so that mutations reach
 * the parsers behind the checksum (as a malicious file would). */
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "compute/lora.h"
#include "eval/report.h"
#include "format/adapter.h"
#include "format/checkpoint.h"
#include "format/model_load.h"
#include "format/show.h"
#include "format/stream.h"
#include "fuzz.h"
#include "model/model.h"
#include "prune/groups.h"
#include "prune/groups_stream.h"
#include "prune/score.h"

static model g_model; /* for adapters */

#ifdef FUZZ_RESEAL
#include "reseal.h"
#endif

static void read_by_kind(const char *path)
{
    stream_reader r;
    stream_reader_open(&r, path, NULL);
    char kind[16];
    memcpy(kind, r.kind, sizeof kind);
    stream_reader_close(&r);

    if (!strcmp(kind, "checkpoint")) {
        FILE *f = fopen(path, "rb");
        model m;
        checkpoint_read(&m, f, path, NULL, 0);
        fclose(f);
        model_free(&m);
    } else if (!strcmp(kind, "groups") || !strcmp(kind, "scores")) {
        group_set gs;
        char k[16];
        groups_read(&gs, path, k);
        group_set_free(&gs);
    } else if (!strcmp(kind, "report")) {
        report rep;
        report_read(&rep, path);
        report_free(&rep);
    } else if (!strcmp(kind, "partial")) {
        group_set gs;
        char *paths[1] = {(char *)path};
        score_merge(paths, 1, "merge", &gs);
        group_set_free(&gs);
    } else if (!strcmp(kind, "adapter")) {
        lora_set s;
        adapter_read(&s, path, &g_model);
        lora_free(&s);
    }
}

static void one(const uint8_t *data, size_t size)
{
#ifdef FUZZ_RESEAL
    size_t n;
    uint8_t *sealed = reseal(data, size, &n);
    const char *path = fuzz_file("in.pare", sealed, n);
    free(sealed);
#else
    const char *path = fuzz_file("in.pare", data, size);
#endif
    show_stream(path, size & 1, fuzz_devnull());
    read_by_kind(path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *mp = getenv("PARE_FUZZ_MODEL");
    if (mp && *mp) {
        model_load(&g_model, mp, NULL);
    } else {
        model_config c = {0};
        json_t *j = json_pack("{s:s,s:i,s:i,s:i,s:i,s:i,s:i,s:i}", "model_type", "llama", "hidden_size", 16, "intermediate_size", 24,
                              "num_hidden_layers", 2, "num_attention_heads", 4, "num_key_value_heads", 2,
                              "vocab_size", 64, "max_position_embeddings", 64);
        config_from_json(&c, j, "fuzz");
        json_decref(j);
        model_init_random(&g_model, &c, 1);
        config_free(&c);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_run(one, data, size);
    return 0;
}
