/* tokenizer_folder.c - which tokenizer a Hugging Face model folder holds, in
 * which files, and writing it back (tokenizer_folder.h). */
#include "base/atomic_file.h"
#include "base/util.h"
#include "text/hf_json.h"
#include "text/llama2c_tok.h"
#include "text/sentencepiece.h"
#include "text/tokenizer_folder.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* Whether dir's tokenizer_config.json names ChatGLM's tokenizer. Dies on a
 * config that cannot be read, or one whose ids the modes here do not give. */
static bool names_chatglm(const char *dir)
{
    char *path = path_join(dir, "tokenizer_config.json");
    if (!path_exists(path)) {
        free(path);
        return false;
    }
    json_error_t err;
    json_t *j = json_load_file(path, JSON_DECODE_INT_AS_REAL, &err); // Llama 3's model_max_length is 1e30
    if (!j)
        die("%s:%d: %s", path, err.line, err.text);
    const char *cls = json_string_value(json_object_get(j, "tokenizer_class"));
    bool chatglm = cls && strcmp(cls, "ChatGLMTokenizer") == 0;
    // The first ChatGLM-6B release put 20000 image tokens before the text pieces;
    // the published tokenizer_config.json says 0, and so do the ids here.
    json_t *image = json_object_get(j, "num_image_tokens");
    if (chatglm && image && !(json_is_number(image) && json_number_value(image) == 0))
        die("%s: num_image_tokens other than 0 is not supported (the published ChatGLM-6B has 0)", path);
    json_decref(j);
    free(path);
    return chatglm;
}

/* The bytes of dir/name, or NULL when there is no such file. */
static uint8_t *read_if_there(const char *dir, const char *name, size_t *n)
{
    char *path = path_join(dir, name);
    uint8_t *data = path_exists(path) ? (uint8_t *)read_whole_file(path, n) : NULL;
    free(path);
    return data;
}

const char *tokenizer_read_folder(const char *dir, uint8_t **data, size_t *n)
{
    if (names_chatglm(dir)) {
        // ChatGLM-6B's ChatGLMTokenizer reads ice_text.model, ChatGLM2/3's tokenizer.model
        const char *format = "chatglm", *name = "ice_text.model";
        if (!(*data = read_if_there(dir, name, n))) {
            format = "chatglm2";
            name = "tokenizer.model";
            *data = read_if_there(dir, name, n);
        }
        if (!*data)
            die("%s: tokenizer_config.json names ChatGLMTokenizer, but there is no ice_text.model "
                "(ChatGLM-6B) or tokenizer.model (ChatGLM2/3)", dir);
        if (!sentencepiece_sniff(*data, *n))
            die("%s/%s: not a tokenizer (not a SentencePiece model)", dir, name);
        return format;
    }
    if ((*data = read_if_there(dir, "tokenizer.model", n)))
        return !sentencepiece_sniff(*data, *n) && llama2c_tok_sniff(*data, *n) ? "llama2c" : "sentencepiece";
    if ((*data = read_if_there(dir, "tokenizer.json", n))) {
        // hf-json: tokenizer.json, then a NUL and tokenizer_config.json when there is one (hf_json.h)
        size_t cn;
        uint8_t *config = read_if_there(dir, "tokenizer_config.json", &cn);
        if (config) {
            *data = xrealloc(*data, *n + 1 + cn);
            (*data)[*n] = 0;
            memcpy(*data + *n + 1, config, cn);
            *n += 1 + cn;
            free(config);
        }
        return "hf-json";
    }
    return NULL;
}

static void write_file(const char *dir, const char *name, const void *data, size_t n)
{
    char *path = path_join(dir, name);
    atomic_file a;
    af_open(&a, path);
    af_write(&a, data, n);
    af_close(&a);
    free(path);
}

void tokenizer_write_folder(const char *dir, const char *format, const uint8_t *data, size_t n)
{
    bool glm = !strcmp(format, "chatglm"), glm2 = !strcmp(format, "chatglm2");
    if (!strcmp(format, "hf-json")) {
        const uint8_t *config;
        size_t config_n, json_n = hf_json_parts(data, n, &config, &config_n);
        write_file(dir, "tokenizer.json", data, json_n);
        if (config)
            write_file(dir, "tokenizer_config.json", config, config_n);
        return;
    }
    write_file(dir, glm ? "ice_text.model" : "tokenizer.model", data, n);
    if (!glm && !glm2)
        return;
    // What tokenizer_read_folder needs to find the mode again; for ChatGLM-6B
    // the special tokens as its published tokenizer_config.json names them.
    json_t *j = glm ? json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:b, s:i}", "tokenizer_class",
                                "ChatGLMTokenizer", "bos_token", "<sop>", "eos_token", "<eop>", "end_token", "</s>",
                                "gmask_token", "[gMASK]", "mask_token", "[MASK]", "pad_token", "<pad>", "unk_token",
                                "<unk>", "remove_space", 0, "do_lower_case", 0, "num_image_tokens", 0)
                    : json_pack("{s:s, s:b, s:b}", "tokenizer_class", "ChatGLMTokenizer", "remove_space", 0,
                                "do_lower_case", 0);
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (!s)
        die("out of memory");
    char *text = xasprintf("%s\n", s);
    write_file(dir, "tokenizer_config.json", text, strlen(text));
    free(text);
    free(s);
    json_decref(j);
}
