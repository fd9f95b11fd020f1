/* fuzz_tasks - an evaluation file: read as each of the seven zero-shot tasks (the
 * format is recognised from the content: Hugging Face JSON lines, SuperGLUE,
 * PIQA with its labels file, llm-foundry, HellaSwag text, OpenBookQA TSV, ...),
 * then as pare-eval --ppl's dataset, WikiText rows or PTB rows by the input's
 * size. */
#include "eval/ppl.h"
#include "eval/tasks.h"
#include "fuzz.h"

static enum task_id g_task;

static void one(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file("task.jsonl", data, size);
    task_data d;
    task_load(&d, task_info_get(g_task), path);
    task_data_free(&d);
}

static void ppl(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file("ppl.txt", data, size);
    ppl_dataset d;
    ppl_dataset_load(&d, path, size & 1 ? PPL_PTB : PPL_WIKITEXT, PPL_PROTOCOL_LLM_PRUNER);
    ppl_dataset_free(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int t = 0; t < TASK_COUNT; t++) {
        g_task = (enum task_id)t;
        fuzz_run(one, data, size);
    }
    fuzz_run(ppl, data, size);
    return 0;
}
