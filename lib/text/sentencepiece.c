/* sentencepiece.c - SentencePiece's tokenizer.model as a kind of tokenizer
 * (sentencepiece.h), with ChatGLM's forms around it.
 *
 * Letters: V vocabulary size, n bytes of input text, m bytes of the normalized text.
 *
 * Encoding: the text goes through the NormalizerSpec (sp_normalize.c), then a
 * BPE model cuts it into one symbol per character, user-defined pieces matched
 * first and never merged, and merges (bpe.c); a unigram model cuts it with
 * unigram.c instead. Afterwards (SentencePieceProcessor::Encode) UNUSED pieces
 * are split back into what formed them, and unknown pieces become <0xNN> byte
 * tokens (byte_fallback) or one <unk> per run of them. The chatglm form puts
 * ChatGLM-6B's substitutions in front (chatglm_text.c); both ChatGLM forms have
 * their special tokens (tokenizer.h). */
#include "base/util.h"
#include "text/bpe.h"
#include "text/chatglm_text.h"
#include "text/protobuf.h"
#include "text/sentencepiece.h"
#include "text/sp_normalize.h"
#include "text/unigram.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What is done around the SentencePiece model (the kinds' variants). */
enum { MODE_PLAIN, MODE_CHATGLM, MODE_CHATGLM2 };

/* ChatGLM2/3's special tokens, appended after the model's pieces in this order
 * (ChatGLM2-6B tokenization_chatglm.py, SPTokenizer.special_tokens). */
static const char *const chatglm2_specials[] = { "[MASK]", "[gMASK]", "[sMASK]", "sop", "eop" };
#define N_CHATGLM2_SPECIALS 5

/* ChatGLM-6B's special pieces (its SPTokenizer.special_tokens, and <pad>):
 * they decode to nothing, as its special tokens do when decoding skips them. */
static const char *const chatglm_specials[] = { "[MASK]", "[gMASK]", "[sMASK]", "<unused_0>", "<sop>",
                                                "<eop>",  "<ENC>",   "<dBLOCK>", "<pad>" };

typedef struct {
    int mode; // MODE_*
    bool byte_fallback, has_unused;
    sp_normalizer norm;
    unigram *uni; // a unigram model's segmenter; NULL: BPE
    bigram_set pairs; // BPE
} sp_model;

static const sp_model *model_of(const tokenizer *t)
{
    return t->kind_data;
}

static bool is_chatglm_special(const char *s, size_t n)
{
    for (size_t i = 0; i < sizeof chatglm_specials / sizeof *chatglm_specials; i++)
        if (strlen(chatglm_specials[i]) == n && memcmp(chatglm_specials[i], s, n) == 0)
            return true;
    return false;
}

/* SentencePiece's PieceToId: reserved pieces first, then the others, else <unk>. */
static int sp_piece_to_id(const tokenizer *t, const char *s, size_t n)
{
    int id = vocab_piece_id(t, s, n);
    return id < 0 ? t->unk : id;
}

/* ---- reading a ModelProto ---- */

/* One ModelProto.SentencePiece: false when malformed. */
static bool read_piece(const uint8_t *d, size_t n, const uint8_t **s, size_t *len, float *score, int *type)
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
            *score = float_from_bits((uint32_t)f.v);
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
bool sentencepiece_sniff(const uint8_t *data, size_t n)
{
    if (!data || n < 2 || data[0] != 0x0a)
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
            if (!read_piece(f.data, f.len, &s, &len, &score, &type) || len == 0)
                return false;
        }
    }
    return rc == 0 && pieces > 0 && specs > 0;
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

/* Pass 1 over the ModelProto: counts the pieces and sizes their text; reads the specs. */
static void read_specs(tokenizer *t, sp_model *sp, trainer_spec *ts, long *count, size_t *text_bytes,
                       const char *source)
{
    static const char *const type_names[] = { "?", "unigram", "BPE", "word", "char" };
    pb_reader r = { t->blob, t->blob + t->blob_n };
    pb_field f;
    int rc;
    long specs = 0;
    *count = 0;
    *text_bytes = 0;
    while ((rc = pb_next(&r, &f)) > 0) {
        if (f.field <= 5 && f.wire != 2)
            break;
        if (f.field == 1) {
            ++*count;
            *text_bytes += f.len;
            if (*count > MAX_VOCAB)
                die("%s: not a tokenizer (more than %d pieces)", source, MAX_VOCAB);
        } else if (f.field == 2) {
            read_trainer_spec(f.data, f.len, ts, source);
            specs++;
        } else if (f.field == 3) {
            sp_normalizer_read(&sp->norm, f.data, f.len, source);
        }
    }
    if (rc != 0)
        die("%s: not a tokenizer (corrupt SentencePiece model: bad protobuf)", source);
    if (*count == 0 || specs == 0)
        die("%s: not a tokenizer (SentencePiece model without %s: cut short?)", source,
            *count ? "a TrainerSpec" : "pieces");
    if (ts->model_type != 1 && ts->model_type != 2)
        die("%s: SentencePiece model type %s is not supported (only unigram and BPE)", source,
            ts->model_type >= 1 && ts->model_type <= 4 ? type_names[ts->model_type] : "unknown");
}

/* Pass 2: the pieces into t's vocabulary; which bytes have a byte piece. */
static int read_pieces(tokenizer *t, sp_model *sp, bool byte_seen[256], const char *source)
{
    pb_reader r = { t->blob, t->blob + t->blob_n };
    pb_field f;
    uint32_t text_at = 0;
    int id = 0;
    t->unk = -1;
    while (pb_next(&r, &f) > 0) {
        if (f.field != 1)
            continue;
        const uint8_t *s;
        size_t len;
        float score;
        int type;
        if (!read_piece(f.data, f.len, &s, &len, &score, &type))
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
        if (!piece_map_add(t, normal ? &t->mergeable : &t->reserved, id))
            die("%s: not a tokenizer (piece %d '%.*s' is defined twice)", source, id, (int)len, (const char *)s);
        if (type == PIECE_USER_DEFINED)
            sp_normalizer_add_user(&sp->norm, t, id);
        if (type == PIECE_UNUSED)
            sp->has_unused = true;
        if (type == PIECE_UNKNOWN) {
            if (t->unk >= 0)
                die("%s: not a tokenizer (two <unk> pieces: %d and %d)", source, t->unk, id);
            t->unk = id;
        }
        if (type == PIECE_BYTE) {
            int b = parse_byte_piece((const char *)s, len, true);
            if (!sp->byte_fallback)
                die("%s: not a tokenizer (byte piece %d without byte_fallback)", source, id);
            if (b < 0)
                die("%s: not a tokenizer (byte piece %d '%.*s' is not <0xNN>)", source, id, (int)len, (const char *)s);
            byte_seen[b] = true;
        }
        id++;
    }
    if (t->unk < 0)
        die("%s: not a tokenizer (no <unk> piece)", source);
    return id;
}

/* ChatGLM2/3's special tokens after the model's pieces, from id on. */
static void add_chatglm2_specials(tokenizer *t, int id)
{
    uint32_t text_at = t->off[id];
    for (int k = 0; k < N_CHATGLM2_SPECIALS; k++, id++) {
        size_t len = strlen(chatglm2_specials[k]);
        t->off[id] = text_at;
        memcpy(t->text + text_at, chatglm2_specials[k], len);
        text_at += (uint32_t)len;
        t->off[id + 1] = text_at;
        t->type[id] = PIECE_CONTROL;
        piece_map_add(t, &t->reserved, id); // where the model has a control piece of that name, it is found first
    }
}

/* The id of a special piece a ChatGLM tokenizer needs. */
static int special_piece(const tokenizer *t, const char *piece, const char *source)
{
    int id = vocab_piece_id(t, piece, strlen(piece));
    if (id < 0)
        die("%s: not a ChatGLM tokenizer (no piece '%s')", source, piece);
    return id;
}

/* ChatGLM's special tokens (tokenization_chatglm.py of each): encoding with bos
 * starts with [gMASK] <sop>, which is where a ChatGLM prompt ends and its
 * generation starts. ChatGLM-6B's are pieces of its model, and it ends a text
 * with <eop>; ChatGLM2/3's follow the model's pieces and it ends with </s>. */
static void setup_chatglm(tokenizer *t, int mode, const char *source)
{
    if (mode == MODE_CHATGLM) {
        t->prefix[0] = special_piece(t, "[gMASK]", source);
        t->bos = special_piece(t, "<sop>", source);
        t->eos = special_piece(t, "<eop>", source);
        t->prefix_last = true;
    } else {
        int first = t->n_vocab - N_CHATGLM2_SPECIALS;
        t->prefix[0] = first + 1; // [gMASK]
        t->bos = first + 3; // sop
    }
    t->prefix[1] = t->bos;
    t->n_prefix = 2;
}

/* The special ids: byte pieces, BOS and EOS as the TrainerSpec names them
 * (bos_id(): the bos_piece when it is a control piece, else none), the prefix. */
static void setup_specials(tokenizer *t, const sp_model *sp, const trainer_spec *ts, const bool byte_seen[256],
                           const char *source)
{
    for (int b = 0; b < 256; b++) {
        if (sp->byte_fallback && !byte_seen[b])
            die("%s: not a tokenizer (byte_fallback without the byte piece <0x%02X>)", source, b);
        char piece[7];
        snprintf(piece, sizeof piece, "<0x%02X>", b);
        t->byte_id[b] = sp_piece_to_id(t, piece, 6);
    }
    const char *bos = ts->bos_piece ? (const char *)ts->bos_piece : "<s>";
    const char *eos = ts->eos_piece ? (const char *)ts->eos_piece : "</s>";
    int b = sp_piece_to_id(t, bos, ts->bos_piece ? ts->bos_len : 3);
    int e = sp_piece_to_id(t, eos, ts->eos_piece ? ts->eos_len : 4);
    t->bos = t->type[b] == PIECE_CONTROL ? b : -1;
    t->eos = t->type[e] == PIECE_CONTROL ? e : -1;
    if (sp->mode != MODE_PLAIN) {
        setup_chatglm(t, sp->mode, source);
    } else if (t->bos >= 0) {
        t->prefix[0] = t->bos;
        t->n_prefix = 1;
    }
}

/* The bytes of the symbol at s: one character, by its lead byte. */
static size_t char_len(const char *s, size_t n)
{
    static const uint8_t len[16] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4 };
    size_t l = len[(uint8_t)s[0] >> 4];
    return l < n ? l : n;
}

static void sp_load(tokenizer *t, int mode, const char *source)
{
    sp_model *sp = xcalloc(1, sizeof *sp);
    t->kind_data = sp;
    sp->mode = mode;
    sp_normalizer_init(&sp->norm);
    trainer_spec ts = { .model_type = 1 }; // proto default: UNIGRAM
    long count;
    size_t text_bytes;
    read_specs(t, sp, &ts, &count, &text_bytes, source);
    sp->byte_fallback = ts.byte_fallback;
    sp->norm.ws_suffix = ts.ws_suffix;
    t->add_dummy_prefix = sp->norm.add_dummy_prefix;

    int n_extra = mode == MODE_CHATGLM2 ? N_CHATGLM2_SPECIALS : 0;
    for (int k = 0; k < n_extra; k++)
        text_bytes += strlen(chatglm2_specials[k]);
    tokenizer_alloc_vocab(t, (int)count + n_extra, text_bytes);
    sp_normalizer_user_init(&sp->norm, t->n_vocab);
    bool byte_seen[256] = { false };
    int n = read_pieces(t, sp, byte_seen, source);
    if (n_extra)
        add_chatglm2_specials(t, n);
    setup_specials(t, sp, &ts, byte_seen, source);
    if (ts.model_type == 1) {
        sp->uni = unigram_new(t->n_vocab, t->text, t->off, t->score, t->type, t->unk);
    } else {
        t->merges = true;
        bigrams_build(&sp->pairs, t, char_len, false);
    }
}

static void load_plain(tokenizer *t, const char *source) { sp_load(t, MODE_PLAIN, source); }
static void load_chatglm(tokenizer *t, const char *source) { sp_load(t, MODE_CHATGLM, source); }
static void load_chatglm2(tokenizer *t, const char *source) { sp_load(t, MODE_CHATGLM2, source); }

static void sp_free(tokenizer *t)
{
    sp_model *sp = t->kind_data;
    if (!sp)
        return;
    sp_normalizer_free(&sp->norm);
    unigram_free(sp->uni);
    bigrams_free(&sp->pairs);
    free(sp);
}

/* ---- encoding ---- */

/* The ids being written, and SentencePieceProcessor::Encode's state. */
typedef struct {
    const tokenizer *t;
    const bpe *b; // the merges, for resegmenting UNUSED pieces; NULL for unigram
    int *ids;
    size_t n_ids;
    bool prev_unk;
} emitter;

/* SentencePieceProcessor::Encode's treatment of one final piece. */
static void emit(emitter *e, const char *w, size_t n, int id)
{
    const tokenizer *t = e->t;
    int type = t->type[id];
    if (type == PIECE_CONTROL) {
        e->ids[e->n_ids++] = id;
    } else if (type == PIECE_UNKNOWN && model_of(t)->byte_fallback) {
        for (size_t i = 0; i < n; i++)
            e->ids[e->n_ids++] = t->byte_id[(uint8_t)w[i]];
    } else {
        if (!(type == PIECE_UNKNOWN && e->prev_unk)) // a run of unknowns is one <unk>
            e->ids[e->n_ids++] = id;
        e->prev_unk = type == PIECE_UNKNOWN;
    }
}

/* bpe_model.cc's resegment: an UNUSED piece goes back to the pair that formed it. */
static void resegment(emitter *e, const char *w, size_t n)
{
    int id = sp_piece_to_id(e->t, w, n);
    const bpe *b = e->b;
    if (e->t->type[id] != PIECE_UNUSED || !b->rev || b->rev[id].size == 0) {
        emit(e, w, n, id);
        return;
    }
    bpe_formed f = b->rev[id];
    resegment(e, b->s + f.start, f.left_len);
    resegment(e, b->s + f.start + f.left_len, f.size - f.left_len);
}

/* Cuts the normalized text into a unigram model's pieces (unigram.c). */
static void unigram_encode(emitter *e, const char *s, size_t m)
{
    uint32_t *start = xmalloc(m * sizeof *start);
    int32_t *id = xmalloc(m * sizeof *id);
    size_t k = unigram_segment(model_of(e->t)->uni, s, m, start, id);
    for (size_t i = 0; i < k; i++) {
        size_t end = i + 1 < k ? start[i + 1] : m;
        emit(e, s + start[i], end - start[i], id[i]);
    }
    free(start);
    free(id);
}

/* bpe_model.cc's Encode: one symbol per character, user-defined pieces frozen. */
static void bpe_encode(emitter *e, const char *s, size_t m)
{
    const tokenizer *t = e->t;
    const sp_model *sp = model_of(t);
    bpe b;
    bpe_init(&b, t, &sp->pairs, s, m);
    for (size_t at = 0; at < m;) {
        size_t n = sp_user_match(&sp->norm, t, s + at, m - at);
        bool user = n > 0;
        if (!user)
            n = char_len(s + at, m - at);
        bpe_push(&b, at, n, user);
        at += n;
    }
    bpe_merge_all(&b, sp->has_unused);
    e->b = &b;
    for (int i = 0; i >= 0; i = b.sym[i].next)
        resegment(e, s + b.sym[i].start, b.sym[i].len);
    bpe_free(&b);
}

static size_t sp_encode(const tokenizer *t, const char *text, size_t len, size_t front, int **ids)
{
    const sp_model *sp = model_of(t);
    char *escaped = NULL;
    if (sp->mode == MODE_CHATGLM)
        text = escaped = chatglm_escape(text, len, &len);
    bytes normal = { 0 };
    sp_normalize(&sp->norm, t, text, len, &normal);
    free(escaped);
    size_t m = normal.n;
    if (m >= INT32_MAX / 4)
        die("cannot tokenize a text of %zu bytes (at most %d)", len, INT32_MAX / 4 - 1);
    emitter e = { .t = t, .ids = xmalloc((m + front + 1) * sizeof *e.ids), .n_ids = front };
    if (m > 0 && sp->uni)
        unigram_encode(&e, (const char *)normal.p, m);
    else if (m > 0)
        bpe_encode(&e, (const char *)normal.p, m);
    free(normal.p);
    *ids = e.ids;
    return e.n_ids;
}

/* ---- decoding ---- */

/* SentencePiece's DecodeIds of one id; in ChatGLM-6B's form with its
 * substitutions reversed and its special pieces giving nothing. */
static size_t sp_shown(const tokenizer *t, int id, char *out)
{
    const sp_model *sp = model_of(t);
    size_t n, at = 0;
    const char *s = piece_at(t, id, &n);
    int type = t->type[id];
    if (type == PIECE_CONTROL || (sp->mode == MODE_CHATGLM && is_chatglm_special(s, n)))
        return 0;
    if (type == PIECE_UNKNOWN) {
        if (out)
            memcpy(out, UNK_SURFACE, strlen(UNK_SURFACE));
        return strlen(UNK_SURFACE);
    }
    int byte = parse_byte_piece(s, n, true);
    if (type == PIECE_BYTE && byte >= 0) {
        if (out)
            out[0] = (char)byte;
        return 1;
    }
    char *text = xmalloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        if (n - i >= 3 && memcmp(s + i, SPACE_SYMBOL, 3) == 0) {
            text[at++] = ' ';
            i += 2;
        } else {
            text[at++] = s[i];
        }
    }
    if (sp->mode == MODE_CHATGLM) {
        char *plain = chatglm_unescape(text, at, &at);
        free(text);
        text = plain;
    }
    if (out)
        memcpy(out, text, at);
    free(text);
    return at;
}

/* ---- writing a ModelProto ---- */

void sentencepiece_put_piece(bytes *model, const char *s, size_t n, float score, int type)
{
    bytes p = { 0 };
    pb_put_bytes(&p, 1, s, n);
    pb_put_float(&p, 2, score);
    pb_put_int(&p, 3, (uint64_t)type);
    pb_put_bytes(model, 1, p.p, p.n);
    free(p.p);
}

void sentencepiece_put_bpe_specs(bytes *model, bool byte_fallback, const char *bos, size_t bos_len, const char *eos,
                                 size_t eos_len, bool add_dummy_prefix)
{
    bytes ts = { 0 }, ns = { 0 };
    pb_put_int(&ts, 3, 2); // model_type BPE
    pb_put_int(&ts, 35, byte_fallback);
    if (bos)
        pb_put_bytes(&ts, 46, bos, bos_len);
    if (eos)
        pb_put_bytes(&ts, 47, eos, eos_len);
    pb_put_bytes(model, 2, ts.p, ts.n);
    pb_put_int(&ns, 3, add_dummy_prefix);
    pb_put_int(&ns, 4, 0); // remove_extra_whitespaces
    pb_put_int(&ns, 5, 1); // escape_whitespaces
    pb_put_bytes(model, 3, ns.p, ns.n);
    free(ts.p);
    free(ns.p);
}

const tokenizer_kind sentencepiece_kinds[3] = {
    { "sentencepiece", sentencepiece_sniff, load_plain, sp_encode, sp_shown, sp_free },
    { "chatglm", NULL, load_chatglm, sp_encode, sp_shown, sp_free },
    { "chatglm2", NULL, load_chatglm2, sp_encode, sp_shown, sp_free },
};
