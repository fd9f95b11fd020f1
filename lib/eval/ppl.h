/* ppl.h - perplexity with the protocol of LLM-Pruner's ppl_dataset.py / ppl.py:
 * the rows of a data set joined with "\n\n", tokenized once with a single BOS at the
 * start, cut into non-overlapping windows of seq_len tokens (the remainder dropped),
 * PPL = exp(mean NLL of every predicted token of every window).
 * Or with llama.cpp's (tools/perplexity): the file's text as it is (no rows joined),
 * the same windows, each window's first
 * token replaced by BOS, only positions seq_len/2 .. seq_len-2 scored (each
 * predicting the next token), PPL ± PPL * stderr(NLL). */
#ifndef PARE_PPL_H
#define PARE_PPL_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"
#include "text/tokenizer.h"

struct lora_set; /* LoRA adapters (lora.h), passed beside the model */

enum ppl_format {
    PPL_AUTO,      /* from the file name: wiki.*.raw -> WIKITEXT, ptb.* -> PTB, else TEXT */
    PPL_WIKITEXT,  /* Hugging Face wikitext rows: each line + "\n" if it has non-space, else "" */
    PPL_PTB,       /* Hugging Face ptb_text_only rows: each line stripped */
    PPL_TEXT,      /* the file as it is */
    PPL_FORMAT_COUNT
};

typedef struct {
    char *task;        /* "wikitext2", "ptb", or the file's base name */
    char *split;       /* "test", "validation", or "" */
    enum ppl_format format;
    char *text;        /* the text to tokenize */
    size_t len;
} ppl_dataset;

int ppl_format_from_name(const char *s);   /* "auto", "wikitext", "ptb", "text"; -1 otherwise */
const char *ppl_format_name(enum ppl_format f);
enum ppl_protocol { PPL_PROTOCOL_LLM_PRUNER, PPL_PROTOCOL_LLAMA_CPP };

/* Read path (plain or compressed) and build the text of the protocol. With the
 * llama.cpp protocol and format PPL_AUTO the text is the file as llama-perplexity's
 * -f reads it (its bytes, CRs included, less one final '\n'; format PPL_TEXT), the
 * task still named by the file name (wiki.* -> "wikitext2"); an explicit format is
 * kept. */
void ppl_dataset_load(ppl_dataset *d, const char *path, enum ppl_format format, enum ppl_protocol protocol);
void ppl_dataset_free(ppl_dataset *d);

int ppl_protocol_from_name(const char *s);   /* "llm-pruner", "llama.cpp"; -1 otherwise */
const char *ppl_protocol_name(enum ppl_protocol p);

typedef struct {
    enum ppl_protocol protocol;
    int seq_len;          /* window length in tokens */
    int batch;            /* windows per forward pass */
    int64_t max_windows;  /* > 0: stop early (quick runs) */
    int bos;              /* the BOS id (llama.cpp protocol: each window's first token),
                             -1 when the tokenizer adds none (Qwen: the windows as they are) */
} ppl_options;

typedef struct {
    double ppl;
    double ppl_err;     /* llama.cpp's "+/-": PPL * sqrt(var(NLL) / (count - 1)) */
    double nll_sum;
    int64_t predicted;  /* tokens scored: windows * (seq_len - 1), llama.cpp: windows *
                           (seq_len - 1 - seq_len/2) */
    int64_t windows;
    int64_t tokens;     /* tokens of the whole text, BOS included */
    double seconds;
} ppl_result;

/* Evaluate ids (n tokens, BOS first) with the options' protocol and windows;
 * lora (may be NULL): adapters every forward pass adds. */
void ppl_evaluate(const model *m, struct lora_set *lora, const int *ids, size_t n, const ppl_options *o,
                  const char *what, ppl_result *res);

#endif
