/* test_hf_tokenizer.c - lib/text/hf_tokenizer: the published ids of Llama 3's
 * and Qwen3's tokenizer.json (../shared/data MANIFEST §1c); decoding as the
 * inverse of encoding on WikiText-2; a small tokenizer.json written here whose
 * ids are worked out by hand (both forms of merges, NFC with a normalized added
 * token, a template with a token before and after, special tokens in text);
 * and files it must refuse, each with the key named. (Ids against the
 * JavaScript port of the library on whole data sets: tests/bats/hf_tokenizer.bats.) */
#include "base/util.h"
#include "check.h"
#include "text/hf_tokenizer.h"

static hf_tokenizer *load_folder(const char *name)
{
    char *dir = xasprintf("%s/tokenizers/%s", check_data_dir(), name);
    char *json = path_join(dir, "tokenizer.json"), *config = path_join(dir, "tokenizer_config.json");
    size_t n, cn;
    char *j = read_whole_file(json, &n), *c = read_whole_file(config, &cn);
    hf_tokenizer *h = hf_tokenizer_load((uint8_t *)j, n, (uint8_t *)c, cn, json);
    free(j);
    free(c);
    free(json);
    free(config);
    free(dir);
    return h;
}

static char *ids_of(const hf_tokenizer *h, const char *text, bool special)
{
    int *ids;
    size_t n = hf_encode(h, text, strlen(text), special, &ids);
    bytes o = {0};
    for (size_t i = 0; i < n; i++) {
        char num[16];
        snprintf(num, sizeof num, i ? " %d" : "%d", ids[i]);
        bytes_put(&o, num, strlen(num));
    }
    bytes_put(&o, "", 1);
    free(ids);
    return (char *)o.p;
}

#define CHECK_IDS(h, text, special, want)                                                                    \
    do {                                                                                                     \
        char *got_ = ids_of(h, text, special);                                                               \
        CHECK(!strcmp(got_, want));                                                                          \
        if (strcmp(got_, want))                                                                              \
            fprintf(stderr, "    '%s' -> %s, want %s\n", text, got_, want);                                  \
        free(got_);                                                                                          \
    } while (0)

/* decode(encode(line)) == line for every line of WikiText-2 test */
static int round_trips(const hf_tokenizer *h)
{
    char *path = xasprintf("%s/eval/wikitext-2-raw/wiki.test.raw", check_data_dir());
    size_t n;
    char *text = read_whole_file(path, &n);
    int wrong = 0;
    for (char *p = text, *end = text + n; p < end;) {
        char *e = memchr(p, '\n', (size_t)(end - p));
        e = e ? e : end;
        int *ids;
        size_t k = hf_encode(h, p, (size_t)(e - p), false, &ids);
        bytes back = {0};
        for (size_t i = 0; i < k; i++) {
            size_t len;
            const char *piece = hf_piece(h, ids[i], &len);
            bytes_put(&back, piece, len);
        }
        wrong += back.n != (size_t)(e - p) || memcmp(back.p, p, back.n);
        free(back.p);
        free(ids);
        p = e + 1;
    }
    free(text);
    free(path);
    return wrong;
}

static void test_llama3(void)
{
    hf_tokenizer *h = load_folder("llama3");
    CHECK_IDS(h, "Hello world, the theory of relativity", true, "128000 9906 1917 11 279 10334 315 1375 44515");
    CHECK_IDS(h, "Hello world, the theory of relativity", false, "9906 1917 11 279 10334 315 1375 44515");
    // special tokens written in a text are those tokens
    CHECK_IDS(h, "<|begin_of_text|>Hello", false, "128000 9906");
    CHECK(hf_vocab_size(h) == 128256 && hf_bos(h) == 128000 && hf_unk(h) == -1);
    CHECK(hf_eos(h) == 128009); /* this tokenizer_config.json (Llama 3.1 Instruct's) names <|eot_id|> */
    CHECK(!strcmp(hf_pre_name(h), "llama-bpe"));
    CHECK(hf_merge_count(h) == 280147);
    size_t len;
    const char *raw = hf_piece_raw(h, 1917, &len);
    CHECK(len == 7 && !memcmp(raw, "\xC4\xA0world", 7));
    raw = hf_piece(h, 1917, &len);
    CHECK(len == 6 && !memcmp(raw, " world", 6));
    if (len != 6)
        fprintf(stderr, "    piece 1917: '%.*s'\n", (int)len, raw);
    hf_piece(h, 128000, &len);
    CHECK(len == 0); /* special: decodes to nothing */
    CHECK(hf_piece_type(h, 128000) == 3 && hf_piece_type(h, 1917) == 1);
    CHECK(hf_piece_id(h, "<|eot_id|>", 10) == 128009 && hf_piece_id(h, "\xC4\xA0world", 7) == 1917);
    CHECK(hf_piece_id(h, " world", 6) == -1);
    const char *m = hf_merge(h, 0, &len);
    CHECK(len == 5 && !memcmp(m, "\xC4\xA0 \xC4\xA0", 5));
    CHECK(round_trips(h) == 0);
    hf_tokenizer_free(h);
}

static void test_qwen3(void)
{
    hf_tokenizer *h = load_folder("qwen3");
    CHECK_IDS(h, "Hello world, the theory of relativity", true, "9707 1879 11 279 10126 315 1351 43415");
    CHECK_IDS(h, "<|im_start|>user", false, "151644 872");
    CHECK(hf_vocab_size(h) == 151669 && hf_bos(h) == -1 && hf_eos(h) == 151645);
    CHECK(!strcmp(hf_pre_name(h), "qwen2"));
    CHECK(hf_merge_count(h) == 151387);
    // <think> is added but not special: control for llama.cpp only when written <|...|>
    CHECK(hf_piece_type(h, 151667) == 4 && hf_piece_type(h, 151659) == 3 && hf_piece_type(h, 151643) == 3);
    size_t len;
    const char *p = hf_piece(h, 151667, &len);
    CHECK(len == 7 && !memcmp(p, "<think>", 7));
    CHECK(round_trips(h) == 0);
    hf_tokenizer_free(h);
}

/* A tokenizer worked out by hand. Bytes: a b e Ã (C3) © (A9) Ġ (space). */
static const char SMALL[] =
    "{\"version\": \"1.0\", \"truncation\": null, \"padding\": null,\n"
    " \"added_tokens\": [\n"
    "  {\"id\": 20, \"content\": \"<s>\", \"single_word\": false, \"lstrip\": false, \"rstrip\": false,"
    "   \"normalized\": false, \"special\": true},\n"
    "  {\"id\": 21, \"content\": \"</s>\", \"special\": true},\n"
    "  {\"id\": 22, \"content\": \"\\u00e9\", \"normalized\": true, \"special\": false}],\n"
    " \"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"NFC\"}]},\n"
    " \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [\n"
    "  {\"type\": \"Split\", \"pattern\": {\"Regex\": \" ?[^\\\\s]+|\\\\s+\"}, \"behavior\": \"Isolated\", \"invert\": false},\n"
    "  {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": false}]},\n"
    " \"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<s>\", \"type_id\": 0}},"
    "  {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}, {\"SpecialToken\": {\"id\": \"</s>\", \"type_id\": 0}}],"
    "  \"special_tokens\": {\"<s>\": {\"id\": \"<s>\", \"ids\": [20], \"tokens\": [\"<s>\"]},"
    "  \"</s>\": {\"id\": \"</s>\", \"ids\": [21], \"tokens\": [\"</s>\"]}}},\n"
    " \"decoder\": {\"type\": \"ByteLevel\"},\n"
    " \"model\": {\"type\": \"BPE\", \"dropout\": null, \"unk_token\": null, \"fuse_unk\": false,"
    "  \"continuing_subword_prefix\": \"\", \"end_of_word_suffix\": null,\n"
    "  \"vocab\": {\"a\": 0, \"b\": 1, \"e\": 2, \"\\u00c3\": 3, \"\\u00a9\": 4, \"\\u0120\": 5, \"ab\": 6,"
    "   \"\\u0120a\": 7, \"\\u0120ab\": 8, \"\\u00c3\\u00a9\": 9, \"\\u00cc\": 10, \"\\u0123\": 11},\n"
    "  \"merges\": [[\"\\u0120\", \"a\"], \"\\u0120a b\", \"a b\"]}}\n";

static hf_tokenizer *load_string(const char *json)
{
    return hf_tokenizer_load((const uint8_t *)json, strlen(json), NULL, 0, "small.json");
}

static void test_small(void)
{
    hf_tokenizer *h = load_string(SMALL);
    CHECK_IDS(h, "ab ab", false, "6 8");           /* "ab", " ab": a+b; Ġ+a first, then Ġa+b (a+b ranks last) */
    CHECK_IDS(h, "ba  a", false, "1 0 5 5 0");     /* "ba" (no merge), "  ", "a" */
    CHECK_IDS(h, " ba", false, "5 1 0");
    CHECK_IDS(h, "ab", true, "20 6 21");           /* the template: <s> A </s> */
    CHECK_IDS(h, "", true, "20 21");
    CHECK_IDS(h, "<s>ab</s>", false, "20 6 21");   /* special tokens in the text */
    // é precomposed, and e + U+0301 which NFC composes: both the added token
    CHECK_IDS(h, "a\xC3\xA9" "b", false, "0 22 1");
    CHECK_IDS(h, "ae\xCC\x81" "b", false, "0 22 1");
    // NFC makes e + U+0302 U+00EA (C3 AA): Ã is a token, ª (AA) is not and is dropped
    CHECK_IDS(h, "e\xCC\x82", false, "3");
    // ill-formed UTF-8: the maximal subpart C3 becomes U+FFFD (EF BF BD), which has no tokens here
    CHECK_IDS(h, "a\xC3", false, "0");
    CHECK(hf_vocab_size(h) == 23 && hf_bos(h) == 20 && hf_eos(h) == -1);
    const int *ids;
    CHECK(hf_prefix(h, &ids) == 1 && ids[0] == 20 && hf_suffix(h, &ids) == 1 && ids[0] == 21);
    CHECK(hf_pre_name(h) == NULL);
    CHECK(hf_piece_type(h, 15) == 5); /* no token has id 15 */
    size_t len;
    hf_piece(h, 15, &len);
    CHECK(len == 0);
    hf_tokenizer_free(h);
}

/* SMALL with the first occurrence of from replaced by to. */
static char *edited(const char *from, const char *to)
{
    const char *at = strstr(SMALL, from);
    if (!at)
        die("edited: '%s' not in SMALL", from);
    return xasprintf("%.*s%s%s", (int)(at - SMALL), SMALL, to, at + strlen(from));
}

static void load_edited(void *arg)
{
    const char *const *e = arg;
    char *json = edited(e[0], e[1]);
    load_string(json);
}

static void test_refused(void)
{
    static const char *const cases[][3] = {
        {"\"a b\"]", "\"a x\"]", "small.json: model.merges[2]: 'x' is not a byte-level token of model.vocab"},
        {"\"a b\"]", "\"b a\"]", "small.json: model.merges[2]: 'ba' (the merged token) is not in model.vocab"},
        {"\"a b\"]", "\"a  b\"]", "small.json: model.merges[2]: must be two tokens with one space"},
        {"\"a b\"]", "[\"a\"]]", "small.json: model.merges[2]: must be a string \"a b\" or an array"},
        {"\"type\": \"BPE\"", "\"type\": \"Unigram\"", "small.json: model.type: model 'Unigram' is not supported"},
        {"{\"type\": \"NFC\"}", "{\"type\": \"Lowercase\"}", "small.json: normalizer.normalizers[0]: normalizer 'Lowercase'"},
        {"\"Regex\": \" ?", "\"Regex\": \"( ?", "small.json: pre_tokenizer.pretokenizers[0]: PCRE2 cannot compile"},
        {"\"behavior\": \"Isolated\"", "\"behavior\": \"Sideways\"", "pre_tokenizer.pretokenizers[0].behavior: unknown behavior"},
        {"{\"type\": \"ByteLevel\", \"add_prefix_space\"", "{\"type\": \"Whitespace\", \"add_prefix_space\"",
         "small.json: pre_tokenizer.pretokenizers[1]: pre-tokenizer 'Whitespace' is not supported"},
        {"\"decoder\": {\"type\": \"ByteLevel\"}", "\"decoder\": {\"type\": \"WordPiece\"}", "small.json: decoder: decoder 'WordPiece'"},
        {"\"truncation\": null", "\"truncation\": {}", "small.json: truncation: truncation is not supported"},
        {"\"ids\": [20]", "\"ids\": [99]", "small.json: post_processor.single[0]: special token '<s>' has an id outside"},
        {"\"a\": 0,", "\"a\": -3,", "small.json: model.vocab: token 'a' has id out of range"},
        {"\"id\": 22", "\"id\": \"x\"", "small.json: added_tokens[2].id: must be an id"},
        {"\"dropout\": null", "\"dropout\": 0.1", "small.json: model.dropout: BPE dropout is not supported"},
        {"\"model\": {", "\"model\": [{", "small.json:"},
        {"\"model\": {", "\"modelx\": {", "small.json: model: missing"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        bool ok = dies_with(load_edited, (void *)cases[i], cases[i][2]);
        CHECK(ok);
        if (!ok)
            fprintf(stderr, "    case %zu\n", i);
    }
}

int main(void)
{
    TEST(test_small);
    TEST(test_refused);
    TEST(test_llama3);
    TEST(test_qwen3);
    return check_report();
}
