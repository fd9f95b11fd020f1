/* fuzz_tasks - a zero-shot task file, read as each of the seven tasks (the
 * format is recognised from the content: Hugging Face JSON lines, SuperGLUE,
 * PIQA with its labels file, llm-foundry, HellaSwag text, OpenBookQA TSV, ...). */
#include "fuzz.h"
#include "tasks.h"

static enum task_id g_task;

static void one(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file("task.jsonl", data, size);
    task_data d;
    task_load(&d, task_info_get(g_task), path);
    task_data_free(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int t = 0; t < TASK_COUNT; t++) {
        g_task = (enum task_id)t;
        fuzz_run(one, data, size);
    }
    return 0;
}
