/* test_instruct.c - pare-lora's data: the Alpaca template rendered exactly as
 * alpaca-lora's, tokenization with BOS, cutoff and EOS, the prompt masked from the
 * targets (or not), skipped records, JSON lines = JSON array, raw-text windows;
 * the seeded split; the learning-rate schedule. Uses the stories260K tokenizer
 * (PARE_DATA). */
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "check.h"
#include "text/instruct.h"
#include "train/train.h"

static tokenizer *tok;

static char *write_temp(const char *text)
{
    char *path = xstrdup("/tmp/test_instruct_XXXXXX");
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void test_render(void)
{
    char *a = instruct_render("Add.", "2 and 3", "5");
    CHECK(!strcmp(a, "Below is an instruction that describes a task, paired with an input that provides further "
                     "context. Write a response that appropriately completes the request.\n\n### Instruction:\nAdd."
                     "\n\n### Input:\n2 and 3\n\n### Response:\n5"));
    char *b = instruct_render("Say hi.", "", NULL);
    CHECK(!strcmp(b, "Below is an instruction that describes a task. Write a response that appropriately completes "
                     "the request.\n\n### Instruction:\nSay hi.\n\n### Response:\n"));
    /* braces in the fields are text, not placeholders */
    char *c = instruct_render("{input}", "{instruction}", "{}");
    CHECK(strstr(c, "### Instruction:\n{input}\n\n### Input:\n{instruction}\n\n### Response:\n{}") != NULL);
    free(a), free(b), free(c);
}

/* ids and targets of sample i as alpaca-lora computes them, from scratch */
static void check_record(const instruct_data *d, int i, const char *ins, const char *inp, const char *out,
                         int cutoff, bool train_on_inputs)
{
    char *full = instruct_render(ins, inp, out), *user = instruct_render(ins, inp, NULL);
    int *ids, *uids;
    size_t n = tokenizer_encode(tok, full, strlen(full), true, &ids);
    size_t nu = tokenizer_encode(tok, user, strlen(user), true, &uids);
    int len = (int)(n < (size_t)cutoff ? n : (size_t)cutoff);
    bool eos = len < cutoff;
    CHECK(instruct_len(d, i) == len + eos);
    const int *di = d->ids + d->off[i], *dt = d->targets + d->off[i];
    bool same = true;
    for (int t = 0; t < len; t++)
        same &= di[t] == ids[t];
    if (eos)
        same &= di[len] == tokenizer_eos(tok);
    CHECK(same);
    CHECK(di[0] == tokenizer_bos(tok));
    int L = len + eos, masked = train_on_inputs ? 0 : (int)(nu < (size_t)cutoff ? nu : (size_t)cutoff);
    bool targets_ok = dt[L - 1] == -1;
    for (int t = 0; t + 1 < L; t++)
        targets_ok &= dt[t] == (t + 1 >= masked ? di[t + 1] : -1);
    CHECK(targets_ok);
    /* the prompt's tokens come first in the full prompt's */
    bool prefix = true;
    for (size_t t = 0; t < nu && (int)t < len; t++)
        prefix &= uids[t] == ids[t];
    CHECK(prefix);
    free(full), free(user), free(ids), free(uids);
}

static const char *recs[][3] = {
    {"Give three tips for staying healthy.", "", "1. Eat well.\n2. Sleep.\n3. Move."},
    {"Translate to French.", "Good morning", "Bonjour"},
    {"Name a colour.", NULL, "Blue."},
};

static void test_alpaca(void)
{
    char *json = write_temp(
        "[{\"instruction\": \"Give three tips for staying healthy.\", \"input\": \"\", \"output\": \"1. Eat well.\\n2. "
        "Sleep.\\n3. Move.\"},\n {\"instruction\": \"Translate to French.\", \"input\": \"Good morning\", "
        "\"output\": \"Bonjour\"},\n {\"instruction\": \"Name a colour.\", \"input\": null, \"output\": "
        "\"Blue.\"}]\n");
    char *jsonl = write_temp(
        "{\"instruction\": \"Give three tips for staying healthy.\", \"input\": \"\", \"output\": \"1. Eat well.\\n2. "
        "Sleep.\\n3. Move.\"}\n{\"instruction\": \"Translate to French.\", \"input\": \"Good morning\", "
        "\"output\": \"Bonjour\"}\n\n{\"instruction\": \"Name a colour.\", \"output\": \"Blue.\"}\n");
    instruct_data a, b, c, e;
    instruct_load_alpaca(&a, json, tok, 256, false);
    CHECK(a.n == 3 && a.records == 3 && a.truncated == 0 && a.skipped == 0 && !a.text);
    for (int i = 0; i < 3; i++)
        check_record(&a, i, recs[i][0], recs[i][1], recs[i][2], 256, false);
    instruct_load_alpaca(&b, jsonl, tok, 256, false);
    CHECK(b.n == 3 && !strcmp(a.xxh64, b.xxh64));
    /* train on inputs: every next token is a target */
    instruct_load_alpaca(&c, json, tok, 256, true);
    for (int i = 0; i < 3; i++)
        check_record(&c, i, recs[i][0], recs[i][1], recs[i][2], 256, true);
    CHECK(c.scored > a.scored && strcmp(a.xxh64, c.xxh64));
    /* a cutoff inside the first response: cut, no EOS; inside every prompt: skipped */
    int first_prompt = 0;
    for (int t = 0; t + 1 < instruct_len(&a, 0); t++)
        first_prompt += a.targets[t] < 0;
    int cut = first_prompt + 3;
    instruct_load_alpaca(&e, json, tok, cut, false);
    CHECK(e.truncated >= 1);
    check_record(&e, 0, recs[0][0], recs[0][1], recs[0][2], cut, false);
    instruct_free(&e);
    /* a record is skipped exactly when its prompt alone fills the cutoff */
    int nu[3], cutoff = 0;
    for (int i = 0; i < 3; i++) {
        char *user = instruct_render(recs[i][0], recs[i][1], NULL);
        int *ids;
        nu[i] = (int)tokenizer_encode(tok, user, strlen(user), true, &ids);
        free(ids), free(user);
        cutoff = nu[i] > cutoff ? nu[i] : cutoff;
    }
    int skipped = 0;
    for (int i = 0; i < 3; i++)
        skipped += nu[i] >= cutoff;
    CHECK(skipped >= 1 && skipped < 3);
    instruct_load_alpaca(&e, json, tok, cutoff, false);
    CHECK(e.skipped == skipped && e.n == 3 - skipped && e.truncated >= skipped);
    instruct_free(&a), instruct_free(&b), instruct_free(&c), instruct_free(&e);
    unlink(json), unlink(jsonl);
    free(json), free(jsonl);
}

static void test_text_windows(void)
{
    char *path = write_temp("Once upon a time, there was a little girl named Lily. She loved to play outside.\n\n"
                            "One day, a little boy named Tom found a ball in the park. He was very happy.\n");
    int *ids;
    const char *txt = "Once upon a time, there was a little girl named Lily. She loved to play outside.\n\n"
                      "One day, a little boy named Tom found a ball in the park. He was very happy.\n";
    size_t n = tokenizer_encode(tok, txt, strlen(txt), true, &ids);
    instruct_data d;
    instruct_load_text(&d, path, tok, 8);
    CHECK(d.text && d.n == (int)(n / 8) && d.text_tokens == (int64_t)n && d.tokens == (int64_t)d.n * 8);
    bool ok = true;
    for (int w = 0; w < d.n; w++)
        for (int t = 0; t < 8; t++) {
            ok &= d.ids[w * 8 + t] == ids[w * 8 + t];
            ok &= d.targets[w * 8 + t] == (t < 7 ? ids[w * 8 + t + 1] : -1);
        }
    CHECK(ok);
    CHECK(d.scored == (int64_t)d.n * 7);
    instruct_free(&d);
    free(ids);
    unlink(path);
    free(path);
}

static void test_split(void)
{
    CHECK(instruct_val_count(51760, 2000) == 2000);
    CHECK(instruct_val_count(629, 2000) == 62);
    CHECK(instruct_val_count(9, 2000) == 0);
    CHECK(instruct_val_count(1000, 0) == 0);
    int *tr, *va, *tr2, *va2, *tr3, *va3;
    instruct_split(100, 10, 42, &tr, &va);
    instruct_split(100, 10, 42, &tr2, &va2);
    instruct_split(100, 10, 7, &tr3, &va3);
    int seen[100] = {0};
    bool sorted = true;
    for (int i = 0; i < 10; i++)
        seen[va[i]]++, sorted &= i == 0 || va[i] > va[i - 1];
    for (int i = 0; i < 90; i++)
        seen[tr[i]]++, sorted &= i == 0 || tr[i] > tr[i - 1];
    bool cover = true;
    for (int i = 0; i < 100; i++)
        cover &= seen[i] == 1;
    CHECK(cover && sorted);
    CHECK(!memcmp(va, va2, 10 * sizeof(int)) && memcmp(va, va3, 10 * sizeof(int)));
    free(tr), free(va), free(tr2), free(va2), free(tr3), free(va3);
}

static void test_schedule(void)
{
    /* Hugging Face's get_linear_schedule_with_warmup */
    CHECK(train_lr(1e-4, 100, 1000, 0) == 0);
    CHECK_CLOSE(train_lr(1e-4, 100, 1000, 50), 5e-5, 1e-12);
    CHECK_CLOSE(train_lr(1e-4, 100, 1000, 100), 1e-4, 1e-12);
    CHECK_CLOSE(train_lr(1e-4, 100, 1000, 550), 5e-5, 1e-12);
    CHECK_CLOSE(train_lr(1e-4, 100, 1000, 999), 1e-4 / 900, 1e-12);
    CHECK(train_lr(1e-4, 100, 1000, 1000) == 0);
    CHECK_CLOSE(train_lr(1e-4, 100, 50, 30), 3e-5, 1e-12); /* fewer steps than the warm-up */
    CHECK_CLOSE(train_lr(1e-4, 0, 10, 0), 1e-4, 1e-12);
}

int main(void)
{
    char *path = path_join(check_data_dir(), "models/stories260K/tok512.bin");
    tok = tokenizer_load_file(path);
    free(path);
    TEST(test_render);
    TEST(test_alpaca);
    TEST(test_text_windows);
    TEST(test_split);
    TEST(test_schedule);
    tokenizer_free(tok);
    return check_report();
}
