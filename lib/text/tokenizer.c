/* tokenizer.c - SentencePiece (tokenizer.model) and llama2.c (tok*.bin) tokenizers.
 *
 * Letters: V vocabulary size, n bytes of input text, m bytes of the text the
 * symbols point into (normalized text, or " " + text), S symbols (m at most).
 *
 * Both formats share one encoder, a C rendering of SentencePiece's
 * bpe::Model::Encode: the text is cut into symbols held in a doubly linked list;
 * every adjacent pair whose concatenation is a piece goes into a binary max-heap
 * ordered by (score, then leftmost); the best pair is merged, its new neighbours
 * are pushed, stale entries are skipped when popped; O(S log S) in all. Where two
 * adjacent characters occur together in no piece, no merge can join them, so
 * the text is cut there and each part merged alone with a small heap (the same
 * merges in the same order, but cache-friendly: 1.3 MB of WikiText in ~0.2 s).
 * What differs per format is the front and the back:
 *   sentencepiece  NormalizerSpec (precompiled charsmap, extra whitespace, dummy
 *                  prefix, ' ' as U+2581; a bad UTF-8 byte is one U+FFFD), one
 *                  symbol per character, user-defined pieces matched first and
 *                  never merged; afterwards UNUSED pieces are split back into
 *                  what formed them, and unknown pieces become <0xNN> byte
 *                  tokens (byte_fallback) or one <unk> per run of them
 *                  (SentencePieceProcessor::Encode). A unigram model cuts the
 *                  normalized text with unigram.c instead of merging, and its
 *                  pieces go through the same back.
 *   chatglm(2)     a sentencepiece model with ChatGLM's substitutions in front
 *                  (chatglm_text.c) and its special tokens (tokenizer.h).
 *   llama2c        llama2.c run.c encode(): a " " prefix, each UTF-8 character
 *                  that is a token is a symbol, any other becomes byte tokens
 *                  (id = byte + 3) that never merge; merges into any token whose
 *                  score is above -1e10.
 */
#include "base/utf8.h"
#include "base/util.h"
#include "text/chatglm_text.h"
#include "text/tokenizer.h"
#include "text/unigram.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

enum { FORMAT_SENTENCEPIECE, FORMAT_LLAMA2C };

/* What is done around the SentencePiece model (tokenizer_format's names). */
enum { MODE_PLAIN, MODE_CHATGLM, MODE_CHATGLM2 };
static const char *const mode_names[] = { "sentencepiece", "chatglm", "chatglm2" };

/* ChatGLM2/3's special tokens, appended after the model's pieces in this order
 * (ChatGLM2-6B tokenization_chatglm.py, SPTokenizer.special_tokens). */
static const char *const chatglm2_specials[] = { "[MASK]", "[gMASK]", "[sMASK]", "sop", "eop" };
#define N_CHATGLM2_SPECIALS 5

/* ChatGLM-6B's special pieces (its SPTokenizer.special_tokens, and <pad>):
 * they decode to nothing, as its special tokens do when decoding skips them. */
static const char *const chatglm_specials[] = { "[MASK]", "[gMASK]", "[sMASK]", "<unused_0>", "<sop>",
                                                "<eop>",  "<ENC>",   "<dBLOCK>", "<pad>" };

static bool is_chatglm_special(const char *s, size_t n)
{
    for (size_t i = 0; i < sizeof chatglm_specials / sizeof *chatglm_specials; i++)
        if (strlen(chatglm_specials[i]) == n && memcmp(chatglm_specials[i], s, n) == 0)
            return true;
    return false;
}

/* ModelProto.SentencePiece.Type */
enum {
    PIECE_NORMAL = 1,
    PIECE_UNKNOWN = 2,
    PIECE_CONTROL = 3,
    PIECE_USER_DEFINED = 4,
    PIECE_UNUSED = 5,
    PIECE_BYTE = 6,
};

#define SPACE_SYMBOL "\xe2\x96\x81" /* U+2581 LOWER ONE EIGHTH BLOCK */
#define REPLACEMENT_CHAR "\xef\xbf\xbd" /* U+FFFD */
#define UNK_SURFACE " \xe2\x81\x87 " /* SentencePiece's default unk_surface */
#define MAX_VOCAB (1 << 26)

/* Open-addressing hash set of token ids, keyed by their piece bytes. */
typedef struct {
    int32_t *slot; // (cap) token id, -1 empty
    uint32_t mask; // cap - 1
    uint32_t max_len; // longest key: longer strings are never looked up
} piece_map;

struct tokenizer {
    int format;
    int mode; // MODE_*: sentencepiece format only
    int n_vocab;
    uint8_t *blob; // the bytes loaded from
    size_t blob_n;

    char *text; // every piece's bytes, back to back
    uint32_t *off; // (V+1) piece i is text[off[i] .. off[i+1])
    char *shown; // every piece as decoded text (tokenizer_piece)
    uint32_t *shown_off; // (V+1)
    float *score; // (V)
    uint8_t *type; // (V) PIECE_*

    piece_map mergeable; // NORMAL, USER_DEFINED, UNUSED (SentencePiece's pieces_); llama2c: all
    piece_map reserved; // CONTROL, UNKNOWN, BYTE (reserved_id_map_); llama2c: empty
    piece_map user; // USER_DEFINED
    uint8_t user_first[32]; // bitset of the first bytes of user-defined pieces
    bool has_user, has_unused;

    /* Every pair of adjacent characters inside a mergeable piece, packed as
     * (char << 32 | char), chars as their bytes big-endian. Where two symbols
     * of a text form no such pair, no merge can ever join them: the text is
     * cut there and each part merged alone, with a small heap. */
    uint64_t *bigram; // (mask + 1) 0 empty
    uint32_t bigram_mask;
    bool bigram_zero; // the key 0 is in the set

    int byte_id[256];
    int unk, bos, eos;
    int prefix[2]; // what encoding with bos puts first: <s>, or [gMASK] <sop>
    int n_prefix;
    unigram *uni; // a unigram model's segmenter; NULL: BPE

    /* TrainerSpec and NormalizerSpec */
    bool byte_fallback, ws_suffix;
    bool add_dummy_prefix, remove_extra_ws, escape_ws;
    uint32_t *trie; // (trie_n) darts-clone double array of the precompiled charsmap
    size_t trie_n;
    char *norm; // (norm_n) NUL-terminated replacement strings the trie points into
    size_t norm_n;
};

/* ---- piece lookup ---- */

static const char *piece_at(const tokenizer *t, int id, size_t *len)
{
    *len = t->off[id + 1] - t->off[id];
    return t->text + t->off[id];
}

static void map_init(piece_map *m, int n)
{
    uint32_t cap = 16;
    while (cap < 2u * (uint32_t)n)
        cap *= 2;
    m->slot = xmalloc(cap * sizeof *m->slot);
    memset(m->slot, 0xff, cap * sizeof *m->slot);
    m->mask = cap - 1;
    m->max_len = 0;
}

static int map_find(const tokenizer *t, const piece_map *m, const char *s, size_t n)
{
    if (n > m->max_len)
        return -1;
    for (uint32_t i = (uint32_t)XXH3_64bits(s, n) & m->mask;; i = (i + 1) & m->mask) {
        int id = m->slot[i];
        if (id < 0)
            return -1;
        size_t len;
        const char *p = piece_at(t, id, &len);
        if (len == n && memcmp(p, s, n) == 0)
            return id;
    }
}

/* Adds id under its piece; false (nothing added) when the piece is already there. */
static bool map_add(tokenizer *t, piece_map *m, int id)
{
    size_t n;
    const char *s = piece_at(t, id, &n);
    uint32_t i = (uint32_t)XXH3_64bits(s, n) & m->mask;
    for (; m->slot[i] >= 0; i = (i + 1) & m->mask) {
        size_t len;
        const char *p = piece_at(t, m->slot[i], &len);
        if (len == n && memcmp(p, s, n) == 0)
            return false;
    }
    m->slot[i] = id;
    if (n > m->max_len)
        m->max_len = (uint32_t)n;
    return true;
}

/* SentencePiece's PieceToId: reserved pieces first, then the others, else <unk>. */
static int sp_piece_to_id(const tokenizer *t, const char *s, size_t n)
{
    int id = map_find(t, &t->reserved, s, n);
    if (id < 0)
        id = map_find(t, &t->mergeable, s, n);
    return id < 0 ? t->unk : id;
}

int tokenizer_piece_id(const tokenizer *t, const char *piece, size_t len)
{
    int id = map_find(t, &t->reserved, piece, len);
    return id >= 0 ? id : map_find(t, &t->mergeable, piece, len);
}

/* "<0xNN>" -> NN, else -1. */
static int parse_byte_piece(const char *s, size_t n, bool upper_only)
{
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>')
        return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        v *= 16;
        if (c >= '0' && c <= '9')
            v += c - '0';
        else if (c >= 'A' && c <= 'F')
            v += c - 'A' + 10;
        else if (!upper_only && c >= 'a' && c <= 'f')
            v += c - 'a' + 10;
        else
            return -1;
    }
    return v;
}

/* ---- protobuf wire format ---- */

typedef struct {
    const uint8_t *p, *end;
} pb_reader;

typedef struct {
    uint32_t field;
    int wire; // 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32
    uint64_t v; // wire 0, 1, 5
    const uint8_t *data; // wire 2
    size_t len;
} pb_field;

static bool pb_varint(pb_reader *r, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (r->p >= r->end)
            return false;
        uint8_t b = *r->p++;
        x |= (uint64_t)(b & 0x7f) << (shift < 64 ? shift : 63);
        if (!(b & 0x80)) {
            *v = x;
            return true;
        }
    }
    return false;
}

static uint64_t load_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* Reads the next field: 1, 0 at the end, -1 when malformed. */
static int pb_next(pb_reader *r, pb_field *f)
{
    if (r->p == r->end)
        return 0;
    uint64_t tag, n;
    if (!pb_varint(r, &tag) || tag >> 3 == 0 || tag >> 3 > 0x1fffffff)
        return -1;
    f->field = (uint32_t)(tag >> 3);
    f->wire = (int)(tag & 7);
    size_t left = (size_t)(r->end - r->p);
    switch (f->wire) {
    case 0:
        return pb_varint(r, &f->v) ? 1 : -1;
    case 1:
    case 5:
        n = f->wire == 1 ? 8 : 4;
        if (left < n)
            return -1;
        f->v = load_le(r->p, (int)n);
        r->p += n;
        return 1;
    case 2:
        if (!pb_varint(r, &n) || n > (uint64_t)(r->end - r->p))
            return -1;
        f->data = r->p;
        f->len = (size_t)n;
        r->p += n;
        return 1;
    default: // groups (3, 4) are not used by sentencepiece_model.proto
        return -1;
    }
}

static float bits_to_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* One ModelProto.SentencePiece: false when malformed. */
static bool sp_read_piece(const uint8_t *d, size_t n, const uint8_t **s, size_t *len, float *score, int *type)
{
    pb_reader r = { d, d + n };
    pb_field f;
    int rc;
    *s = d;
    *len = 0;
    *score = 0;
    *type = PIECE_NORMAL;
    while ((rc = pb_next(&r, &f)) > 0) {
        if (f.field == 1) {
            if (f.wire != 2)
                return false;
            *s = f.data;
            *len = f.len;
        } else if (f.field == 2) {
            if (f.wire != 5)
                return false;
            *score = bits_to_float((uint32_t)f.v);
        } else if (f.field == 3) {
            if (f.wire != 0)
                return false;
            *type = (int)f.v;
        }
    }
    return rc == 0;
}

/* A whole walk over the top-level fields of a ModelProto: pieces (the first one
 * read) and a TrainerSpec, which SentencePiece writes after the pieces, so a
 * file cut short between two pieces is not taken for a model. */
static bool sniff_sentencepiece(const uint8_t *data, size_t n)
{
    if (n < 2 || data[0] != 0x0a)
        return false;
    pb_reader r = { data, data + n };
    pb_field f;
    int rc, pieces = 0, specs = 0;
    while ((rc = pb_next(&r, &f)) > 0) {
        if (f.field <= 5 && f.wire != 2)
            return false;
        specs += f.field == 2;
        if (f.field == 1 && pieces++ == 0) {
            const uint8_t *s;
            size_t len;
            float score;
            int type;
            if (!sp_read_piece(f.data, f.len, &s, &len, &score, &type) || len == 0)
                return false;
        }
    }
    return rc == 0 && pieces > 0 && specs > 0;
}

/* ---- llama2.c tok.bin: int32 max_token_length, then (float score, int32 len, bytes)* ---- */

/* Number of records when the file is exactly a tok.bin, else -1. */
static long llama2c_count(const uint8_t *data, size_t n)
{
    if (n < 4)
        return -1;
    int32_t max_len = (int32_t)load_le(data, 4);
    if (max_len < 1 || max_len > (1 << 20))
        return -1;
    size_t at = 4;
    long count = 0;
    while (at < n) {
        if (n - at < 8)
            return -1;
        int32_t len = (int32_t)load_le(data + at + 4, 4);
        if (len < 0 || len > max_len || (size_t)len > n - at - 8)
            return -1;
        at += 8 + (size_t)len;
        if (++count > MAX_VOCAB)
            return -1;
    }
    return count > 0 ? count : -1;
}

const char *tokenizer_sniff(const uint8_t *data, size_t n)
{
    if (!data)
        return NULL;
    if (sniff_sentencepiece(data, n))
        return "sentencepiece";
    if (llama2c_count(data, n) > 0)
        return "llama2c";
    return NULL;
}

/* ---- character pairs ---- */

/* Bytes of the symbol starting at s as the encoder cuts text into symbols:
 * sentencepiece one character by its lead byte, llama2c a byte and up to three
 * continuation bytes. */
static size_t one_char_len(uint8_t c)
{
    static const uint8_t len[16] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4 };
    return len[c >> 4];
}

static bool is_continuation(uint8_t c)
{
    return (c & 0xc0) == 0x80;
}

static size_t symbol_len(const tokenizer *t, const char *s, size_t n)
{
    size_t len = 1;
    if (t->format == FORMAT_SENTENCEPIECE) {
        len = one_char_len((uint8_t)s[0]);
        return len < n ? len : n;
    }
    while (len < n && len < 4 && is_continuation((uint8_t)s[len]))
        len++;
    return len;
}

static uint64_t pack_char(const char *s, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v << 8 | (uint8_t)s[i];
    return v;
}

static uint32_t bigram_slot(uint64_t key, uint32_t mask)
{
    return (uint32_t)((key * 0x9e3779b97f4a7c15ull) >> 32) & mask;
}

static bool bigram_has(const tokenizer *t, uint64_t key)
{
    if (key == 0)
        return t->bigram_zero;
    for (uint32_t i = bigram_slot(key, t->bigram_mask);; i = (i + 1) & t->bigram_mask) {
        if (t->bigram[i] == key)
            return true;
        if (t->bigram[i] == 0)
            return false;
    }
}

/* Counts, and with insert adds, the pairs of adjacent symbols of a piece cut
 * into symbols the way a text is, the first symbol first_len bytes long. */
static size_t piece_bigrams(tokenizer *t, const char *s, size_t n, size_t first_len, bool insert)
{
    size_t count = 0;
    for (size_t at = 0, a = first_len; at + a < n;) {
        size_t b = symbol_len(t, s + at + a, n - at - a);
        uint64_t key = pack_char(s + at, a) << 32 | pack_char(s + at + a, b);
        count++;
        if (insert && key == 0) {
            t->bigram_zero = true;
        } else if (insert) {
            uint32_t i = bigram_slot(key, t->bigram_mask);
            while (t->bigram[i] != 0 && t->bigram[i] != key)
                i = (i + 1) & t->bigram_mask;
            t->bigram[i] = key;
        }
        at += a;
        a = b;
    }
    return count;
}

/* Counts, and with insert adds, the symbol pairs of every mergeable piece. A
 * llama2c text starts with the " " prefix as a symbol of its own, so a piece
 * that starts with " " is also cut that way. */
static size_t add_bigrams(tokenizer *t, bool insert)
{
    size_t count = 0;
    for (int id = 0; id < t->n_vocab; id++) {
        size_t n;
        const char *s = piece_at(t, id, &n);
        if (n < 2 || map_find(t, &t->mergeable, s, n) != id)
            continue;
        count += piece_bigrams(t, s, n, symbol_len(t, s, n), insert);
        if (t->format == FORMAT_LLAMA2C && s[0] == ' ' && is_continuation((uint8_t)s[1]))
            count += piece_bigrams(t, s, n, 1, insert);
    }
    return count;
}

static void build_bigrams(tokenizer *t)
{
    size_t count = add_bigrams(t, false), cap = 16;
    while (cap < 2 * count)
        cap *= 2;
    t->bigram = xcalloc(cap, sizeof *t->bigram);
    t->bigram_mask = (uint32_t)(cap - 1);
    add_bigrams(t, true);
}

/* ---- loading ---- */

static void alloc_vocab(tokenizer *t, int n_vocab, size_t text_bytes)
{
    t->n_vocab = n_vocab;
    t->text = xmalloc(text_bytes + 1);
    t->off = xcalloc((size_t)n_vocab + 1, sizeof *t->off);
    t->shown_off = xcalloc((size_t)n_vocab + 1, sizeof *t->shown_off);
    t->score = xcalloc((size_t)n_vocab, sizeof *t->score);
    t->type = xcalloc((size_t)n_vocab, sizeof *t->type);
    map_init(&t->mergeable, n_vocab);
    map_init(&t->reserved, n_vocab);
    map_init(&t->user, n_vocab);
}

/* The decoded text of piece id (SentencePiece's DecodeIds of that one id; in
 * ChatGLM-6B mode with its substitutions reversed) written to out (when not
 * NULL); returns its length. */
static size_t shown_of(const tokenizer *t, int id, char *out)
{
    size_t n, at = 0;
    const char *s = piece_at(t, id, &n);
    int type = t->type[id];
    int byte = parse_byte_piece(s, n, t->format == FORMAT_SENTENCEPIECE);
    if (type == PIECE_CONTROL || (t->mode == MODE_CHATGLM && is_chatglm_special(s, n)))
        return 0;
    if (type == PIECE_UNKNOWN) {
        if (out)
            memcpy(out, UNK_SURFACE, strlen(UNK_SURFACE));
        return strlen(UNK_SURFACE);
    }
    if ((type == PIECE_BYTE || t->format == FORMAT_LLAMA2C) && byte >= 0) {
        if (out)
            out[0] = (char)byte;
        return 1;
    }
    char *text = xmalloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        if (t->format == FORMAT_SENTENCEPIECE && n - i >= 3 && memcmp(s + i, SPACE_SYMBOL, 3) == 0) {
            text[at++] = ' ';
            i += 2;
        } else {
            text[at++] = s[i];
        }
    }
    if (t->mode == MODE_CHATGLM) {
        char *plain = chatglm_unescape(text, at, &at);
        free(text);
        text = plain;
    }
    if (out)
        memcpy(out, text, at);
    free(text);
    return at;
}

/* Decoded text of every piece. */
static void build_shown(tokenizer *t)
{
    size_t total = 0;
    for (int id = 0; id < t->n_vocab; id++)
        total += shown_of(t, id, NULL);
    if (total >= UINT32_MAX)
        die("tokenizer: %zu bytes of decoded pieces is too many", total);
    t->shown = xmalloc(total + 1);
    uint32_t at = 0;
    for (int id = 0; id < t->n_vocab; id++) {
        t->shown_off[id] = at;
        at += (uint32_t)shown_of(t, id, t->shown + at);
    }
    t->shown_off[t->n_vocab] = at;
}

static void load_llama2c(tokenizer *t, const char *source)
{
    long count = llama2c_count(t->blob, t->blob_n);
    if (count < 0)
        die("%s: not a tokenizer (not a llama2.c tok.bin: the records do not fill the file)", source);
    if (count < 259)
        die("%s: llama2.c tokenizer has %ld tokens, fewer than the 259 (<unk>, <s>, </s>, 256 bytes) it needs",
            source, count);
    t->format = FORMAT_LLAMA2C;
    alloc_vocab(t, (int)count, t->blob_n);
    size_t at = 4;
    uint32_t text_at = 0;
    for (int id = 0; id < count; id++) {
        float score = bits_to_float((uint32_t)load_le(t->blob + at, 4));
        uint32_t len = (uint32_t)load_le(t->blob + at + 4, 4);
        if (isnan(score))
            die("%s: not a tokenizer (token %d has a NaN score)", source, id);
        t->off[id] = text_at;
        memcpy(t->text + text_at, t->blob + at + 8, len);
        text_at += len;
        at += 8 + len;
        t->score[id] = score;
        t->type[id] = id == 0 ? PIECE_UNKNOWN : id <= 2 ? PIECE_CONTROL : id <= 258 ? PIECE_BYTE : PIECE_NORMAL;
    }
    t->off[count] = text_at;
    for (int id = 0; id < count; id++)
        map_add(t, &t->mergeable, id); // llama2.c's bsearch: any one of equal pieces; here the first
    for (int b = 0; b < 256; b++)
        t->byte_id[b] = b + 3;
    t->unk = 0;
    t->bos = 1;
    t->eos = 2;
    t->prefix[0] = 1;
    t->n_prefix = 1;
    t->add_dummy_prefix = true;
    build_shown(t);
    build_bigrams(t);
}

/* TrainerSpec fields we read. */
typedef struct {
    int model_type;
    bool byte_fallback, ws_suffix;
    const uint8_t *bos_piece, *eos_piece;
    size_t bos_len, eos_len;
} trainer_spec;

static void read_trainer_spec(const uint8_t *d, size_t n, trainer_spec *ts, const char *source)
{
    pb_reader r = { d, d + n };
    pb_field f;
    int rc;
    while ((rc = pb_next(&r, &f)) > 0) {
        bool varint = f.wire == 0, bytes = f.wire == 2;
        switch (f.field) {
        case 3: // model_type
            if (!varint)
                goto bad;
            ts->model_type = (int)f.v;
            break;
        case 24: // treat_whitespace_as_suffix
            if (!varint)
                goto bad;
            ts->ws_suffix = f.v != 0;
            break;
        case 35: // byte_fallback
            if (!varint)
                goto bad;
            ts->byte_fallback = f.v != 0;
            break;
        case 46: // bos_piece
            if (!bytes)
                goto bad;
            ts->bos_piece = f.data;
            ts->bos_len = f.len;
            break;
        case 47: // eos_piece
            if (!bytes)
                goto bad;
            ts->eos_piece = f.data;
            ts->eos_len = f.len;
            break;
        }
    }
    if (rc == 0)
        return;
bad:
    die("%s: not a tokenizer (corrupt TrainerSpec in the SentencePiece model)", source);
}

static void read_normalizer_spec(tokenizer *t, const uint8_t *d, size_t n, const char *source)
{
    pb_reader r = { d, d + n };
    pb_field f;
    int rc;
    const uint8_t *charsmap = NULL;
    size_t charsmap_n = 0;
    while ((rc = pb_next(&r, &f)) > 0) {
        if (f.field == 2) { // precompiled_charsmap
            if (f.wire != 2)
                goto bad;
            charsmap = f.data;
            charsmap_n = f.len;
        } else if (f.field >= 3 && f.field <= 5) {
            if (f.wire != 0)
                goto bad;
            bool *flag = f.field == 3 ? &t->add_dummy_prefix : f.field == 4 ? &t->remove_extra_ws : &t->escape_ws;
            *flag = f.v != 0;
        }
    }
    if (rc != 0)
        goto bad;
    if (charsmap_n > 0) {
        // uint32 size of the double array, the array, then NUL-terminated replacements
        uint32_t trie_bytes = charsmap_n > 4 ? (uint32_t)load_le(charsmap, 4) : 0;
        if (charsmap_n <= 4 || trie_bytes > charsmap_n - 4)
            die("%s: not a tokenizer (corrupt precompiled_charsmap in the SentencePiece model)", source);
        t->trie_n = trie_bytes / 4;
        t->trie = xmalloc(t->trie_n * 4 + 4);
        memcpy(t->trie, charsmap + 4, t->trie_n * 4);
        t->norm_n = charsmap_n - 4 - trie_bytes;
        t->norm = xmalloc(t->norm_n + 1);
        memcpy(t->norm, charsmap + 4 + trie_bytes, t->norm_n);
        t->norm[t->norm_n] = 0;
    }
    return;
bad:
    die("%s: not a tokenizer (corrupt NormalizerSpec in the SentencePiece model)", source);
}

/* The id of a special piece a ChatGLM tokenizer needs. */
static int special_piece(const tokenizer *t, const char *piece, const char *source)
{
    int id = tokenizer_piece_id(t, piece, strlen(piece));
    if (id < 0)
        die("%s: not a ChatGLM tokenizer (no piece '%s')", source, piece);
    return id;
}

/* ChatGLM's special tokens (tokenization_chatglm.py of each): encoding with bos
 * starts with [gMASK] <sop>, which is where a ChatGLM prompt ends and its
 * generation starts. ChatGLM-6B's are pieces of its model, and it ends a text
 * with <eop>; ChatGLM2/3's follow the model's pieces and it ends with </s>. */
static void setup_chatglm(tokenizer *t, const char *source)
{
    if (t->mode == MODE_CHATGLM) {
        t->prefix[0] = special_piece(t, "[gMASK]", source);
        t->bos = special_piece(t, "<sop>", source);
        t->eos = special_piece(t, "<eop>", source);
    } else {
        int first = t->n_vocab - N_CHATGLM2_SPECIALS;
        t->prefix[0] = first + 1; // [gMASK]
        t->bos = first + 3; // sop
    }
    t->prefix[1] = t->bos;
    t->n_prefix = 2;
}

static void load_sentencepiece(tokenizer *t, const char *source)
{
    static const char *const type_names[] = { "?", "unigram", "BPE", "word", "char" };
    int n_extra = t->mode == MODE_CHATGLM2 ? N_CHATGLM2_SPECIALS : 0;
    t->format = FORMAT_SENTENCEPIECE;
    t->add_dummy_prefix = t->remove_extra_ws = t->escape_ws = true; // proto defaults
    trainer_spec ts = { .model_type = 1 }; // proto default: UNIGRAM

    // Pass 1: count the pieces and size their text; read the specs.
    pb_reader r = { t->blob, t->blob + t->blob_n };
    pb_field f;
    int rc;
    long count = 0, specs = 0;
    size_t text_bytes = 0;
    while ((rc = pb_next(&r, &f)) > 0) {
        if (f.field <= 5 && f.wire != 2)
            break;
        if (f.field == 1) {
            count++;
            text_bytes += f.len;
            if (count > MAX_VOCAB)
                die("%s: not a tokenizer (more than %d pieces)", source, MAX_VOCAB);
        } else if (f.field == 2) {
            read_trainer_spec(f.data, f.len, &ts, source);
            specs++;
        } else if (f.field == 3) {
            read_normalizer_spec(t, f.data, f.len, source);
        }
    }
    if (rc != 0)
        die("%s: not a tokenizer (corrupt SentencePiece model: bad protobuf)", source);
    if (count == 0 || specs == 0)
        die("%s: not a tokenizer (SentencePiece model without %s: cut short?)", source,
            count ? "a TrainerSpec" : "pieces");
    if (ts.model_type != 1 && ts.model_type != 2)
        die("%s: SentencePiece model type %s is not supported (only unigram and BPE)", source,
            ts.model_type >= 1 && ts.model_type <= 4 ? type_names[ts.model_type] : "unknown");
    t->byte_fallback = ts.byte_fallback;
    t->ws_suffix = ts.ws_suffix;

    // Pass 2: the pieces, then ChatGLM2's specials.
    for (int k = 0; k < n_extra; k++)
        text_bytes += strlen(chatglm2_specials[k]);
    alloc_vocab(t, (int)count + n_extra, text_bytes);
    r = (pb_reader){ t->blob, t->blob + t->blob_n };
    uint32_t text_at = 0;
    int id = 0;
    bool byte_seen[256] = { false };
    t->unk = -1;
    while (pb_next(&r, &f) > 0) {
        if (f.field != 1)
            continue;
        const uint8_t *s;
        size_t len;
        float score;
        int type;
        if (!sp_read_piece(f.data, f.len, &s, &len, &score, &type))
            die("%s: not a tokenizer (corrupt piece %d in the SentencePiece model)", source, id);
        if (len == 0)
            die("%s: not a tokenizer (piece %d is empty)", source, id);
        if (type < PIECE_NORMAL || type > PIECE_BYTE)
            die("%s: not a tokenizer (piece %d has unknown type %d)", source, id, type);
        if (isnan(score))
            die("%s: not a tokenizer (piece %d has a NaN score)", source, id);
        t->off[id] = text_at;
        memcpy(t->text + text_at, s, len);
        text_at += (uint32_t)len;
        t->off[id + 1] = text_at;
        t->score[id] = score;
        t->type[id] = (uint8_t)type;
        bool normal = type == PIECE_NORMAL || type == PIECE_USER_DEFINED || type == PIECE_UNUSED;
        if (!map_add(t, normal ? &t->mergeable : &t->reserved, id))
            die("%s: not a tokenizer (piece %d '%.*s' is defined twice)", source, id, (int)len, (const char *)s);
        if (type == PIECE_USER_DEFINED) {
            map_add(t, &t->user, id);
            t->user_first[s[0] >> 3] |= (uint8_t)(1u << (s[0] & 7));
            t->has_user = true;
        }
        if (type == PIECE_UNUSED)
            t->has_unused = true;
        if (type == PIECE_UNKNOWN) {
            if (t->unk >= 0)
                die("%s: not a tokenizer (two <unk> pieces: %d and %d)", source, t->unk, id);
            t->unk = id;
        }
        if (type == PIECE_BYTE) {
            int b = parse_byte_piece((const char *)s, len, true);
            if (!ts.byte_fallback)
                die("%s: not a tokenizer (byte piece %d without byte_fallback)", source, id);
            if (b < 0)
                die("%s: not a tokenizer (byte piece %d '%.*s' is not <0xNN>)", source, id, (int)len, (const char *)s);
            byte_seen[b] = true;
        }
        id++;
    }
    for (int k = 0; k < n_extra; k++, id++) {
        size_t len = strlen(chatglm2_specials[k]);
        t->off[id] = text_at;
        memcpy(t->text + text_at, chatglm2_specials[k], len);
        text_at += (uint32_t)len;
        t->off[id + 1] = text_at;
        t->type[id] = PIECE_CONTROL;
        map_add(t, &t->reserved, id); // where the model has a control piece of that name, it is found first
    }
    if (t->unk < 0)
        die("%s: not a tokenizer (no <unk> piece)", source);
    for (int b = 0; b < 256; b++) {
        if (ts.byte_fallback && !byte_seen[b])
            die("%s: not a tokenizer (byte_fallback without the byte piece <0x%02X>)", source, b);
        char piece[7];
        snprintf(piece, sizeof piece, "<0x%02X>", b);
        t->byte_id[b] = sp_piece_to_id(t, piece, 6);
    }
    // bos_id(): the bos_piece when it is a control piece, else none
    const char *bos = ts.bos_piece ? (const char *)ts.bos_piece : "<s>";
    const char *eos = ts.eos_piece ? (const char *)ts.eos_piece : "</s>";
    int b = sp_piece_to_id(t, bos, ts.bos_piece ? ts.bos_len : 3);
    int e = sp_piece_to_id(t, eos, ts.eos_piece ? ts.eos_len : 4);
    t->bos = t->type[b] == PIECE_CONTROL ? b : -1;
    t->eos = t->type[e] == PIECE_CONTROL ? e : -1;
    if (t->mode != MODE_PLAIN) {
        setup_chatglm(t, source);
    } else if (t->bos >= 0) {
        t->prefix[0] = t->bos;
        t->n_prefix = 1;
    }
    build_shown(t);
    if (ts.model_type == 1)
        t->uni = unigram_new(t->n_vocab, t->text, t->off, t->score, t->type, t->unk);
    else
        build_bigrams(t);
}

tokenizer *tokenizer_load_blob(const char *format, const uint8_t *data, size_t n, const char *source)
{
    if (n >= UINT32_MAX)
        die("%s: not a tokenizer (%zu bytes is too large)", source, n);
    tokenizer *t = xcalloc(1, sizeof *t);
    t->blob = xmalloc(n + 1);
    if (n)
        memcpy(t->blob, data, n);
    t->blob_n = n;
    int mode = -1;
    for (int i = 0; i < (int)(sizeof mode_names / sizeof *mode_names); i++)
        if (strcmp(format, mode_names[i]) == 0)
            mode = i;
    if (mode >= 0) {
        t->mode = mode;
        load_sentencepiece(t, source);
    } else if (strcmp(format, "llama2c") == 0) {
        load_llama2c(t, source);
    } else {
        die("%s: unknown tokenizer format '%s'", source, format);
    }
    return t;
}

tokenizer *tokenizer_load_file(const char *path)
{
    size_t n;
    char *data;
    const char *format;
    if (path_is_dir(path)) {
        format = tokenizer_read_folder(path, (uint8_t **)&data, &n);
        if (!format)
            die("%s: no tokenizer in the folder (tokenizer.model, or ice_text.model with tokenizer_config.json)",
                path);
        if (!strcmp(format, "hf-json"))
            die("%s: tokenizer.json is not read (only SentencePiece models and llama2.c tok.bin)", path);
        tokenizer *t = tokenizer_load_blob(format, (const uint8_t *)data, n, path);
        free(data);
        return t;
    }
    data = read_whole_file(path, &n);
    format = tokenizer_sniff((const uint8_t *)data, n);
    if (!format)
        die("%s: not a tokenizer (neither a SentencePiece model nor a llama2.c tok.bin)", path);
    tokenizer *t = tokenizer_load_blob(format, (const uint8_t *)data, n, path);
    free(data);
    return t;
}

void tokenizer_free(tokenizer *t)
{
    if (!t)
        return;
    free(t->blob);
    free(t->text);
    free(t->off);
    free(t->shown);
    free(t->shown_off);
    free(t->score);
    free(t->type);
    free(t->mergeable.slot);
    free(t->reserved.slot);
    free(t->user.slot);
    free(t->trie);
    free(t->norm);
    free(t->bigram);
    unigram_free(t->uni);
    free(t);
}

const char *tokenizer_format(const tokenizer *t)
{
    return t->format == FORMAT_SENTENCEPIECE ? mode_names[t->mode] : "llama2c";
}

const uint8_t *tokenizer_data(const tokenizer *t, size_t *n)
{
    *n = t->blob_n;
    return t->blob;
}

int tokenizer_vocab_size(const tokenizer *t) { return t->n_vocab; }
int tokenizer_bos(const tokenizer *t) { return t->bos; }
int tokenizer_eos(const tokenizer *t) { return t->eos; }
int tokenizer_unk(const tokenizer *t) { return t->unk; }

static void check_id(const tokenizer *t, int id)
{
    if (id < 0 || id >= t->n_vocab)
        die("token id %d out of range (vocabulary of %d)", id, t->n_vocab);
}

const char *tokenizer_piece(const tokenizer *t, int id, size_t *len)
{
    check_id(t, id);
    *len = t->shown_off[id + 1] - t->shown_off[id];
    return t->shown + t->shown_off[id];
}

const char *tokenizer_piece_raw(const tokenizer *t, int id, size_t *len)
{
    check_id(t, id);
    return piece_at(t, id, len);
}

float tokenizer_score(const tokenizer *t, int id)
{
    check_id(t, id);
    return t->score[id];
}

int tokenizer_piece_type(const tokenizer *t, int id)
{
    check_id(t, id);
    return t->type[id];
}

bool tokenizer_adds_dummy_prefix(const tokenizer *t) { return t->add_dummy_prefix; }
bool tokenizer_is_bpe(const tokenizer *t) { return t->uni == NULL; }

/* ---- normalization (SentencePiece normalizer.cc) ---- */

/* Growable byte buffer. */
typedef struct {
    char *p;
    size_t n, cap;
} buffer;

static void buf_put(buffer *b, const char *s, size_t n)
{
    if (b->n + n > b->cap) {
        while (b->n + n > b->cap)
            b->cap = b->cap ? 2 * b->cap : 256;
        b->p = xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

/* PrefixMatcher::PrefixMatch: length of the longest user-defined piece at s, 0 if none. */
static size_t user_match(const tokenizer *t, const char *s, size_t n)
{
    uint8_t c = (uint8_t)s[0];
    if (!t->has_user || !(t->user_first[c >> 3] & (1u << (c & 7))))
        return 0;
    for (size_t len = n < t->user.max_len ? n : t->user.max_len; len > 0; len--)
        if (map_find(t, &t->user, s, len) >= 0)
            return len;
    return 0;
}

/* Darts-clone commonPrefixSearch over the charsmap: the longest rule matching a
 * prefix of s; its length, and in *value the offset of its replacement. */
static size_t trie_longest(const tokenizer *t, const uint8_t *s, size_t n, uint32_t *value)
{
    size_t best = 0;
    uint32_t pos = 0;
    if (t->trie_n == 0)
        return 0;
    uint32_t unit = t->trie[0];
    pos ^= (unit >> 10) << ((unit & (1u << 9)) >> 6);
    for (size_t i = 0; i < n; i++) {
        pos ^= s[i];
        if (pos >= t->trie_n)
            break;
        unit = t->trie[pos];
        if ((unit & ((1u << 31) | 0xff)) != s[i])
            break;
        pos ^= (unit >> 10) << ((unit & (1u << 9)) >> 6);
        if (pos >= t->trie_n)
            break;
        if ((unit >> 8) & 1) {
            best = i + 1;
            *value = t->trie[pos] & ((1u << 31) - 1);
        }
    }
    return best;
}

/* Normalizer::NormalizePrefix: the normalized form of the first character (or
 * user-defined piece, or charsmap rule) of s, and the bytes it consumes. */
static size_t normalize_prefix(const tokenizer *t, const char *s, size_t n, const char **out, size_t *out_n)
{
    size_t len = user_match(t, s, n);
    if (len) {
        *out = s;
        *out_n = len;
        return len;
    }
    uint32_t value = 0;
    len = trie_longest(t, (const uint8_t *)s, n, &value);
    if (len) {
        if (value >= t->norm_n) { // corrupt rule: an empty replacement
            *out = "";
            *out_n = 0;
        } else {
            *out = t->norm + value;
            *out_n = strlen(*out); // t->norm ends with a NUL
        }
        return len;
    }
    len = utf8_char_len(s, n); /* string_util::DecodeUTF8 holds the same rule */
    if (len == 0) { // a malformed byte: one U+FFFD for one byte
        *out = REPLACEMENT_CHAR;
        *out_n = 3;
        return 1;
    }
    *out = s;
    *out_n = len;
    return len;
}

/* Normalizer::Normalize into b. */
static void sp_normalize(const tokenizer *t, const char *in, size_t n, buffer *b)
{
    const char *p;
    size_t pn;
    if (t->remove_extra_ws) { // drop leading spaces
        while (n > 0) {
            size_t used = normalize_prefix(t, in, n, &p, &pn);
            if (!(pn == 1 && p[0] == ' '))
                break;
            in += used;
            n -= used;
        }
    }
    if (n == 0)
        return;
    const char *space = t->escape_ws ? SPACE_SYMBOL : " ";
    size_t space_n = t->escape_ws ? 3 : 1;
    if (!t->ws_suffix && t->add_dummy_prefix)
        buf_put(b, space, space_n);
    bool prev_space = t->remove_extra_ws;
    while (n > 0) {
        size_t used = normalize_prefix(t, in, n, &p, &pn);
        if (prev_space)
            while (pn > 0 && p[0] == ' ')
                p++, pn--;
        if (pn > 0) {
            for (size_t i = 0; i < pn; i++) {
                if (t->escape_ws && p[i] == ' ')
                    buf_put(b, SPACE_SYMBOL, 3);
                else
                    buf_put(b, p + i, 1);
            }
            prev_space = p[pn - 1] == ' ';
        }
        in += used;
        n -= used;
        if (!t->remove_extra_ws)
            prev_space = false;
    }
    if (t->remove_extra_ws) // drop trailing spaces
        while (b->n >= space_n && memcmp(b->p + b->n - space_n, space, space_n) == 0)
            b->n -= space_n;
    if (t->ws_suffix && t->add_dummy_prefix)
        buf_put(b, space, space_n);
}

/* ---- BPE merging (bpe_model.cc) ---- */

typedef struct {
    int32_t prev, next; // neighbours in the list, -1 at the ends
    uint32_t start, len; // bytes of the text; len 0 once merged into prev
} symbol;

typedef struct {
    float score;
    int32_t left, right;
    uint32_t size; // bytes of the merged piece: tells a stale entry
} merge;

typedef struct {
    uint32_t start, left_len, size; // size 0: never formed
} formed;

typedef struct {
    const tokenizer *t;
    const char *s; // (m) the text
    symbol *sym; // (S)
    uint8_t *frozen; // (S) user-defined piece or byte token: never merged
    merge *heap; // (3 S) max-heap of candidate merges
    size_t n_heap;
    formed *rev; // (V) or NULL: the pair an UNUSED piece was last formed from
    int *ids; // output
    size_t n_ids;
    bool prev_unk;
} bpe;

static bool merge_before(const merge *a, const merge *b)
{
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static void heap_push(bpe *b, merge m)
{
    size_t i = b->n_heap++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!merge_before(&m, &b->heap[parent]))
            break;
        b->heap[i] = b->heap[parent];
        i = parent;
    }
    b->heap[i] = m;
}

static merge heap_pop(bpe *b)
{
    merge top = b->heap[0], last = b->heap[--b->n_heap];
    size_t i = 0, n = b->n_heap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && merge_before(&b->heap[c + 1], &b->heap[c]))
            c++;
        if (!merge_before(&b->heap[c], &last))
            break;
        b->heap[i] = b->heap[c];
        i = c;
    }
    if (n > 0)
        b->heap[i] = last;
    return top;
}

static void maybe_add_pair(bpe *b, int left, int right)
{
    if (left < 0 || right < 0 || b->frozen[left] || b->frozen[right])
        return;
    const tokenizer *t = b->t;
    const symbol *l = &b->sym[left], *r = &b->sym[right];
    uint32_t size = l->len + r->len;
    int id = map_find(t, &t->mergeable, b->s + l->start, size);
    if (id < 0)
        return;
    if (t->format == FORMAT_LLAMA2C && !(t->score[id] > -1e10f))
        return;
    heap_push(b, (merge){ t->score[id], left, right, size });
    if (b->rev && t->type[id] == PIECE_UNUSED)
        b->rev[id] = (formed){ l->start, l->len, size };
}

/* Whether no merge can ever join initial symbols i and i + 1. */
static bool is_cut(const bpe *b, size_t i)
{
    const symbol *l = &b->sym[i], *r = &b->sym[i + 1];
    if (b->frozen[i] || b->frozen[i + 1])
        return true;
    return !bigram_has(b->t, pack_char(b->s + l->start, l->len) << 32 | pack_char(b->s + r->start, r->len));
}

/* Merges the symbols [from, to), which no merge joins to anything outside. */
static void bpe_merge_part(bpe *b, size_t from, size_t to)
{
    b->n_heap = 0;
    for (size_t i = from + 1; i < to; i++)
        maybe_add_pair(b, (int)i - 1, (int)i);
    while (b->n_heap > 0) {
        merge top = heap_pop(b);
        symbol *l = &b->sym[top.left], *r = &b->sym[top.right];
        if (l->len == 0 || r->len == 0 || l->len + r->len != top.size)
            continue; // stale
        l->len += r->len;
        l->next = r->next;
        if (r->next >= 0)
            b->sym[r->next].prev = top.left;
        r->len = 0;
        if (l->prev >= (int32_t)from)
            maybe_add_pair(b, l->prev, top.left);
        if (l->next >= 0 && l->next < (int32_t)to)
            maybe_add_pair(b, top.left, l->next);
    }
}

/* bpe_model.cc's merge loop, one part between cuts at a time: the merges within
 * a part, and their order, are those of the whole text. */
static void bpe_merge_all(bpe *b, size_t n_sym)
{
    for (size_t from = 0, to; from < n_sym; from = to) {
        for (to = from + 1; to < n_sym && !is_cut(b, to - 1);)
            to++;
        bpe_merge_part(b, from, to);
    }
}

/* SentencePieceProcessor::Encode's treatment of one final piece. */
static void sp_emit(bpe *b, const char *w, size_t n, int id)
{
    const tokenizer *t = b->t;
    int type = t->type[id];
    if (type == PIECE_CONTROL) {
        b->ids[b->n_ids++] = id;
    } else if (type == PIECE_UNKNOWN && t->byte_fallback) {
        for (size_t i = 0; i < n; i++)
            b->ids[b->n_ids++] = t->byte_id[(uint8_t)w[i]];
    } else {
        if (!(type == PIECE_UNKNOWN && b->prev_unk)) // a run of unknowns is one <unk>
            b->ids[b->n_ids++] = id;
        b->prev_unk = type == PIECE_UNKNOWN;
    }
}

/* bpe_model.cc's resegment: an UNUSED piece goes back to the pair that formed it. */
static void sp_resegment(bpe *b, const char *w, size_t n)
{
    int id = sp_piece_to_id(b->t, w, n);
    if (b->t->type[id] != PIECE_UNUSED || !b->rev || b->rev[id].size == 0) {
        sp_emit(b, w, n, id);
        return;
    }
    formed f = b->rev[id];
    sp_resegment(b, b->s + f.start, f.left_len);
    sp_resegment(b, b->s + f.start + f.left_len, f.size - f.left_len);
}

/* Cuts the normalized text into a unigram model's pieces (unigram.c), then
 * treats them as SentencePieceProcessor::Encode does. */
static void unigram_encode(bpe *b, size_t m)
{
    uint32_t *start = xmalloc(m * sizeof *start);
    int32_t *id = xmalloc(m * sizeof *id);
    size_t k = unigram_segment(b->t->uni, b->s, m, start, id);
    for (size_t i = 0; i < k; i++) {
        size_t end = i + 1 < k ? start[i + 1] : m;
        sp_emit(b, b->s + start[i], end - start[i], id[i]);
    }
    free(start);
    free(id);
}

/* bpe_model.cc's Encode, then SentencePieceProcessor::Encode's treatment of the
 * pieces; llama2.c's encode(). */
static void bpe_encode(bpe *b, size_t m)
{
    const tokenizer *t = b->t;
    const char *s = b->s;
    // Cut the text into symbols.
    b->sym = xmalloc(m * sizeof *b->sym);
    b->frozen = xcalloc(m, 1);
    size_t n_sym = 0;
    for (size_t at = 0; at < m;) {
        size_t n = 0;
        if (t->format == FORMAT_SENTENCEPIECE) {
            n = user_match(t, s + at, m - at);
            if (n)
                b->frozen[n_sym] = 1;
            else
                n = symbol_len(t, s + at, m - at);
            b->sym[n_sym++] = (symbol){ 0, 0, (uint32_t)at, (uint32_t)n };
        } else {
            n = at == 0 ? 1 : symbol_len(t, s + at, m - at); // the " " prefix alone
            if (map_find(t, &t->mergeable, s + at, n) >= 0) {
                b->sym[n_sym++] = (symbol){ 0, 0, (uint32_t)at, (uint32_t)n };
            } else {
                for (size_t i = 0; i < n; i++) {
                    b->frozen[n_sym] = 1;
                    b->sym[n_sym++] = (symbol){ 0, 0, (uint32_t)(at + i), 1 };
                }
            }
        }
        at += n;
    }
    for (size_t i = 0; i < n_sym; i++) {
        b->sym[i].prev = (int32_t)i - 1;
        b->sym[i].next = i + 1 < n_sym ? (int32_t)i + 1 : -1;
    }

    b->heap = xmalloc(3 * n_sym * sizeof *b->heap);
    if (t->has_unused)
        b->rev = xcalloc((size_t)t->n_vocab, sizeof *b->rev);
    bpe_merge_all(b, n_sym);

    for (int i = 0; i >= 0; i = b->sym[i].next) {
        const char *w = s + b->sym[i].start;
        size_t n = b->sym[i].len;
        if (t->format == FORMAT_SENTENCEPIECE)
            sp_resegment(b, w, n);
        else if (b->frozen[i])
            b->ids[b->n_ids++] = t->byte_id[(uint8_t)w[0]];
        else
            b->ids[b->n_ids++] = map_find(t, &t->mergeable, w, n);
    }
    free(b->sym);
    free(b->frozen);
    free(b->heap);
    free(b->rev);
}

size_t tokenizer_encode(const tokenizer *t, const char *text, size_t len, bool bos, int **ids)
{
    char *escaped = NULL;
    if (t->mode == MODE_CHATGLM && len > 0)
        text = escaped = chatglm_escape(text, len, &len);
    buffer text_buf = { 0 };
    if (t->format == FORMAT_SENTENCEPIECE) {
        if (len > 0)
            sp_normalize(t, text, len, &text_buf);
    } else if (len > 0) {
        buf_put(&text_buf, " ", 1);
        buf_put(&text_buf, text, len);
    }
    free(escaped);
    size_t m = text_buf.n;
    if (m >= INT32_MAX / 4)
        die("cannot tokenize a text of %zu bytes (at most %d)", len, INT32_MAX / 4 - 1);

    bpe b = { .t = t, .s = text_buf.p };
    b.ids = xmalloc((m + 1 + (size_t)t->n_prefix) * sizeof *b.ids);
    for (int i = 0; bos && i < t->n_prefix; i++)
        b.ids[b.n_ids++] = t->prefix[i];
    if (m > 0 && t->uni)
        unigram_encode(&b, m);
    else if (m > 0)
        bpe_encode(&b, m);
    free(text_buf.p);
    *ids = b.ids;
    return b.n_ids;
}

int tokenizer_prefix(const tokenizer *t, const int **ids)
{
    *ids = t->prefix;
    return t->n_prefix;
}

size_t tokenizer_encode_prompt(const tokenizer *t, const char *text, size_t len, int **ids)
{
    if (t->mode != MODE_CHATGLM)
        return tokenizer_encode(t, text, len, true, ids);
    size_t n = tokenizer_encode(t, text, len, false, ids);
    *ids = xrealloc(*ids, (n + 2) * sizeof **ids);
    (*ids)[n] = t->prefix[0];
    (*ids)[n + 1] = t->prefix[1];
    return n + 2;
}
