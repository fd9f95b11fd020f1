/* tokenizer_kind.h - the inside of a tokenizer, private to text/ (programs use
 * tokenizer.h).
 *
 * Every kind of tokenizer fills in one vocabulary: V pieces with their bytes,
 * score and type, maps from a piece's bytes to its id, the special ids, and
 * (built by tokenizer.c) every piece's decoded text; tokenizer.c answers every
 * question of tokenizer.h from it. What differs is how a kind reads its bytes,
 * encodes a text and decodes a piece: that is one file per kind
 * (sentencepiece.c, llama2c_tok.c), which gives a tokenizer_kind row to the
 * table in tokenizer.c and keeps its own state behind kind_data.
 *
 * Letters: V vocabulary size. */
#ifndef PARE_TOKENIZER_KIND_H
#define PARE_TOKENIZER_KIND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A piece's type: ModelProto.SentencePiece.Type (GGUF's token types use the
 * same numbers). */
enum {
    PIECE_NORMAL = 1,
    PIECE_UNKNOWN = 2,
    PIECE_CONTROL = 3,
    PIECE_USER_DEFINED = 4,
    PIECE_UNUSED = 5,
    PIECE_BYTE = 6,
};

#define MAX_VOCAB (1 << 26)
#define UNK_SURFACE " \xe2\x81\x87 " /* how <unk> decodes: SentencePiece's default unk_surface */

typedef struct tokenizer tokenizer; // tokenizer.h's

/* Open-addressing hash set of token ids, keyed by their piece bytes. */
typedef struct {
    int32_t *slot; // (cap) token id, -1 empty
    uint32_t mask; // cap - 1
    uint32_t max_len; // longest key: longer strings are never looked up
} piece_map;

/* One kind of tokenizer: a row of tokenizer.c's table. */
typedef struct {
    const char *format; // tokenizer_format's name
    /* Whether data is a whole file of this kind; NULL: loaded only by name. */
    bool (*sniff)(const uint8_t *data, size_t n);
    /* Fills in t from t->blob: the vocabulary (tokenizer_alloc_vocab), the
     * special ids, the prefix, and its own state. Dies naming source. */
    void (*load)(tokenizer *t, const char *source);
    /* The ids of text[0..len) (len > 0) in (*ids)[front..]; *ids malloc'd with
     * front slots left first for the caller. Returns front + the number of ids. */
    size_t (*encode)(const tokenizer *t, const char *text, size_t len, size_t front, int **ids);
    /* The decoded text of piece id written to out (unless NULL); its length. */
    size_t (*shown)(const tokenizer *t, int id, char *out);
    void (*free)(tokenizer *t); // its own state
} tokenizer_kind;

struct tokenizer {
    const tokenizer_kind *kind;
    uint8_t *blob; // the bytes loaded from
    size_t blob_n;

    int n_vocab;
    char *text; // every piece's bytes, back to back
    uint32_t *off; // (V+1) piece i is text[off[i] .. off[i+1])
    char *shown; // every piece as decoded text (tokenizer_piece)
    uint32_t *shown_off; // (V+1)
    float *score; // (V)
    uint8_t *type; // (V) PIECE_*
    piece_map mergeable; // what encoding may produce: SentencePiece's NORMAL, USER_DEFINED, UNUSED; llama2c all
    piece_map reserved; // the rest: CONTROL, UNKNOWN, BYTE

    int byte_id[256]; // the id of each byte's piece
    int unk, bos, eos; // -1 where there is none
    int prefix[2]; // what encoding with bos puts first: <s>, or [gMASK] <sop>
    int n_prefix;
    bool prefix_last; // a prompt is its text, then the prefix (ChatGLM-6B)
    bool add_dummy_prefix; // encoding puts a space before the text
    bool merges; // encoding merges pairs by score (tokenizer_is_bpe)

    void *kind_data; // the kind's own state
};

/* Piece id's bytes; *len set. */
static inline const char *piece_at(const tokenizer *t, int id, size_t *len)
{
    *len = t->off[id + 1] - t->off[id];
    return t->text + t->off[id];
}

/* The arrays of n_vocab pieces holding text_bytes bytes in all, and empty maps. */
void tokenizer_alloc_vocab(tokenizer *t, int n_vocab, size_t text_bytes);

void piece_map_init(piece_map *m, int n);
/* The id of the piece s[0..n) in m, -1 if none. */
int piece_map_find(const tokenizer *t, const piece_map *m, const char *s, size_t n);
/* Adds id under its piece; false (nothing added) when the piece is already there. */
bool piece_map_add(const tokenizer *t, piece_map *m, int id);

/* The id of the piece s[0..n), reserved pieces first; -1 if none (tokenizer_piece_id). */
int vocab_piece_id(const tokenizer *t, const char *s, size_t n);

/* "<0xNN>" -> NN, else -1 (upper_only: only upper-case hex digits, as SentencePiece writes them). */
int parse_byte_piece(const char *s, size_t n, bool upper_only);

#endif
