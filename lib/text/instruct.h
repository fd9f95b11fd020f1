/* instruct.h - training data for pare-lora: Alpaca instruction records rendered
 * with alpaca-lora's prompt template, or windows of raw text; tokenized, each
 * position with its target (the next token, or -1 where it is not scored), and
 * the seeded split into training and validation samples.
 *
 * Letters: S samples, T a sample's tokens (at most the cutoff). */
#ifndef PARE_INSTRUCT_H
#define PARE_INSTRUCT_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "text/tokenizer.h"

/* alpaca-lora's templates/alpaca.json, the response (output) appended to them. */
extern const char instruct_prompt_input[];    /* "Below is an instruction ... {instruction} ... {input} ..." */
extern const char instruct_prompt_no_input[]; /* the variant for an empty input */

typedef struct {
    char *source;        /* the path as given */
    bool text;           /* windows of raw text, else Alpaca records */
    int cutoff;          /* most tokens of a sample */
    int n;               /* S samples */
    int64_t *off;        /* (S + 1) sample i is ids[off[i] .. off[i+1]) */
    int *ids;            /* token ids of every sample, one after another */
    int *targets;        /* (same) target of each position: the next token, or -1 */
    int64_t tokens;      /* ids in all */
    int64_t scored;      /* targets >= 0 in all */
    int records;         /* Alpaca records read (text: 0) */
    int truncated;       /* records cut at the cutoff (no EOS) */
    int skipped;         /* records without a scored token (the prompt fills the cutoff) */
    int64_t text_tokens; /* text: tokens of the whole text (the windows take whole cutoffs of them) */
    char xxh64[17];      /* XXH64 of the offsets, ids and targets (int64/int32 LE) */
} instruct_data;

/* The prompt of one record: the with-input template when input is not empty,
 * else the no-input one; output (may be NULL) appended. malloc'd. */
char *instruct_render(const char *instruction, const char *input, const char *output);

/* Alpaca records from a JSON array or JSON lines (plain or compressed, through
 * libarchive), each an object with "instruction" and "output" strings and an
 * optional "input" string (absent or null = empty). As alpaca-lora's
 * generate_and_tokenize_prompt does: the full prompt is tokenized with BOS and cut
 * at cutoff tokens, EOS appended when it was not cut (and fits); unless
 * train_on_inputs, the first min(cutoff, |BOS + tokens of the prompt without the
 * output|) labels are masked. The model predicts label t+1 at position t, so
 * targets are the labels shifted by one, the last -1. A record whose labels are
 * all masked is skipped (counted). Dies naming the file and record otherwise.
 * Returns false, d empty, when the file is neither a JSON array nor JSON lines
 * (the program says how to read raw text). */
bool instruct_load_alpaca(instruct_data *d, const char *path, const tokenizer *tok, int cutoff, bool train_on_inputs);
/* Raw text (plain, or JSON lines / a JSON array of "text" records joined with a
 * blank line, as pare-score's --calib reads it) tokenized once with BOS, cut into
 * consecutive windows of cutoff tokens (the remainder dropped); a window's
 * targets are its next tokens, the last -1. Dies when there is not one window. */
void instruct_load_text(instruct_data *d, const char *path, const tokenizer *tok, int cutoff);
void instruct_free(instruct_data *d);

static inline int instruct_len(const instruct_data *d, int i) { return (int)(d->off[i + 1] - d->off[i]); }

/* Samples idx[0..b) of d into tokens and targets (b, T), T the longest of them,
 * each padded at the end with token 0 and target -1 (right padding: causal
 * attention keeps the padding out of every real position). Returns the real
 * tokens. */
int64_t instruct_batch(const instruct_data *d, const int *idx, int b, int *tokens, int *targets, int *T);
/* The longest sample's tokens (1 for none). */
int instruct_max_len(const instruct_data *d);

/* The validation set's size for S samples: min(val_size, S / 10) (at most a tenth
 * of the data, so that at least nine tenths train). */
int instruct_val_count(int n, int val_size);
/* A permutation of the S samples by Fisher-Yates with splitmix64 seeded by seed;
 * the first n_val go to *val, the rest to *train, each in ascending sample order
 * (malloc'd). */
void instruct_split(int n, int n_val, uint64_t seed, int **train, int **val);

/* The data's description for headers: source, mode, cutoff, samples, tokens,
 * scored, records, truncated, skipped, xxh64. New reference. */
json_t *instruct_to_json(const instruct_data *d);

#endif
