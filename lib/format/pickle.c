/* pickle.c - parse the pickle subset torch.save writes for a state_dict (pickle.h).
 *
 * The machine of pickle's protocol (a value stack with marks and a memo) builds a
 * tree of plain values in a node pool; GLOBAL yields a node naming one of the
 * allowed callables, and REDUCE "calls" it by building the node it would have
 * returned. Nothing in the input can reach code: an opcode or a global outside the
 * subset ends the parse with a message naming it. Every opcode consumes at least
 * one byte and makes at most one node, so memory is bounded by the input size. */
#include "format/pickle.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

enum pk_type {
    PK_NONE, PK_BOOL, PK_INT, PK_STR, PK_TUPLE, PK_LIST, PK_DICT,
    PK_GLOBAL, PK_STORAGE, PK_TENSOR,
};

enum pk_global { G_ORDERED_DICT, G_REBUILD_TENSOR, G_FLOAT_STORAGE, G_HALF_STORAGE, G_BF16_STORAGE };

static const struct {
    const char *module, *name;
} allowed[] = {
    [G_ORDERED_DICT] = {"collections", "OrderedDict"},
    [G_REBUILD_TENSOR] = {"torch._utils", "_rebuild_tensor_v2"},
    [G_FLOAT_STORAGE] = {"torch", "FloatStorage"},
    [G_HALF_STORAGE] = {"torch", "HalfStorage"},
    [G_BF16_STORAGE] = {"torch", "BFloat16Storage"},
};

typedef struct {
    enum pk_type type;
    int64_t i;              /* PK_INT, PK_BOOL; PK_GLOBAL: enum pk_global */
    const char *s;          /* PK_STR: into the input (not NUL-terminated) */
    size_t len;
    int *items;             /* PK_TUPLE, PK_LIST: values; PK_DICT: key, value, ... */
    int n, cap;
    pt_ref ref;             /* PK_STORAGE (storage, dtype, storage_numel), PK_TENSOR */
} pk_node;

typedef struct {
    const uint8_t *p;
    size_t n, pos;
    const char *source;
    pk_node *nodes;
    int n_nodes, cap_nodes;
    int *stack;             /* node indices; MARK is -1 */
    int sp, cap_stack;
    int *memo;              /* node index per memo key; -1 unset */
    int cap_memo;
    bool allow_globals;     /* false for plain-data pickles */
} pk_parser;

#define MARK_ENTRY (-1)

static const char *opcode_name(uint8_t op)
{
    switch (op) {
    case '(': return "MARK";
    case '.': return "STOP";
    case '0': return "POP";
    case '1': return "POP_MARK";
    case '2': return "DUP";
    case 'F': return "FLOAT";
    case 'I': return "INT";
    case 'J': return "BININT";
    case 'K': return "BININT1";
    case 'L': return "LONG";
    case 'M': return "BININT2";
    case 'N': return "NONE";
    case 'P': return "PERSID";
    case 'Q': return "BINPERSID";
    case 'R': return "REDUCE";
    case 'S': return "STRING";
    case 'T': return "BINSTRING";
    case 'U': return "SHORT_BINSTRING";
    case 'V': return "UNICODE";
    case 'X': return "BINUNICODE";
    case 'a': return "APPEND";
    case 'b': return "BUILD";
    case 'c': return "GLOBAL";
    case 'd': return "DICT";
    case '}': return "EMPTY_DICT";
    case 'e': return "APPENDS";
    case 'g': return "GET";
    case 'h': return "BINGET";
    case 'i': return "INST";
    case 'j': return "LONG_BINGET";
    case 'l': return "LIST";
    case ']': return "EMPTY_LIST";
    case 'o': return "OBJ";
    case 'p': return "PUT";
    case 'q': return "BINPUT";
    case 'r': return "LONG_BINPUT";
    case 's': return "SETITEM";
    case 't': return "TUPLE";
    case ')': return "EMPTY_TUPLE";
    case 'u': return "SETITEMS";
    case 'G': return "BINFLOAT";
    case 0x80: return "PROTO";
    case 0x81: return "NEWOBJ";
    case 0x82: return "EXT1";
    case 0x83: return "EXT2";
    case 0x84: return "EXT4";
    case 0x85: return "TUPLE1";
    case 0x86: return "TUPLE2";
    case 0x87: return "TUPLE3";
    case 0x88: return "NEWTRUE";
    case 0x89: return "NEWFALSE";
    case 0x8a: return "LONG1";
    case 0x8b: return "LONG4";
    case 0x8c: return "SHORT_BINUNICODE";
    case 0x8d: return "BINUNICODE8";
    case 0x8e: return "BINBYTES8";
    case 0x8f: return "EMPTY_SET";
    case 0x90: return "ADDITEMS";
    case 0x91: return "FROZENSET";
    case 0x92: return "NEWOBJ_EX";
    case 0x93: return "STACK_GLOBAL";
    case 0x94: return "MEMOIZE";
    case 0x95: return "FRAME";
    case 0x96: return "BYTEARRAY8";
    case 0x97: return "NEXT_BUFFER";
    case 0x98: return "READONLY_BUFFER";
    case 'B': return "BINBYTES";
    case 'C': return "SHORT_BINBYTES";
    }
    return NULL;
}

static const char *type_name(enum pk_type t)
{
    static const char *const names[] = {"None", "a bool", "an int", "a string", "a tuple", "a list",
                                        "a dict", "a global", "a storage", "a tensor"};
    return names[t];
}

/* ---- the machine ---- */

_Noreturn static void fail(pk_parser *k, const char *what)
{
    die("%s: pickle byte %zu: %s", k->source, k->pos, what);
}

static const uint8_t *take(pk_parser *k, size_t len)
{
    if (len > k->n - k->pos)
        fail(k, "the pickle ends early (truncated file?)");
    const uint8_t *q = k->p + k->pos;
    k->pos += len;
    return q;
}

static uint64_t take_le(pk_parser *k, int bytes)
{
    const uint8_t *q = take(k, (size_t)bytes);
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--)
        v = v << 8 | q[i];
    return v;
}

static int new_node(pk_parser *k, enum pk_type t)
{
    GROW(k->nodes, k->cap_nodes, k->n_nodes + 1, 256);
    pk_node *x = &k->nodes[k->n_nodes];
    memset(x, 0, sizeof *x);
    x->type = t;
    return k->n_nodes++;
}

static void node_add(pk_parser *k, int node, int item)
{
    pk_node *x = &k->nodes[node];
    GROW(x->items, x->cap, x->n + 1, 4);
    x->items[x->n++] = item;
}

static void push(pk_parser *k, int v)
{
    GROW(k->stack, k->cap_stack, k->sp + 1, 64);
    k->stack[k->sp++] = v;
}

static int pop(pk_parser *k)
{
    if (k->sp == 0 || k->stack[k->sp - 1] == MARK_ENTRY)
        fail(k, "stack underflow (malformed pickle)");
    return k->stack[--k->sp];
}

static int top(pk_parser *k)
{
    if (k->sp == 0 || k->stack[k->sp - 1] == MARK_ENTRY)
        fail(k, "stack underflow (malformed pickle)");
    return k->stack[k->sp - 1];
}

/* Index of the topmost mark; the values above it are stack[mark+1 .. sp-1]. */
static int find_mark(pk_parser *k)
{
    for (int i = k->sp - 1; i >= 0; i--)
        if (k->stack[i] == MARK_ENTRY)
            return i;
    fail(k, "no MARK on the stack (malformed pickle)");
}

static void memo_put(pk_parser *k, uint64_t key, int v)
{
    if (key > k->n) /* keys count stored objects: never more than the bytes */
        fail(k, "memo key out of range");
    if (key >= (uint64_t)k->cap_memo) {
        int cap = k->cap_memo ? k->cap_memo : 64;
        while ((uint64_t)cap <= key)
            cap *= 2;
        k->memo = xrealloc(k->memo, (size_t)cap * sizeof *k->memo);
        for (int i = k->cap_memo; i < cap; i++)
            k->memo[i] = -1;
        k->cap_memo = cap;
    }
    k->memo[key] = v;
}

static int memo_get(pk_parser *k, uint64_t key)
{
    if (key >= (uint64_t)k->cap_memo || k->memo[key] < 0)
        fail(k, "memo key never stored (malformed pickle)");
    return k->memo[key];
}

static int n_memo_keys(pk_parser *k)
{
    int used = 0;
    for (int i = 0; i < k->cap_memo; i++)
        if (k->memo[i] >= 0)
            used = i + 1;
    return used;
}

static pk_node *node(pk_parser *k, int i) { return &k->nodes[i]; }

static bool is_str(pk_parser *k, int i, const char *s)
{
    pk_node *x = node(k, i);
    return x->type == PK_STR && x->len == strlen(s) && !memcmp(x->s, s, x->len);
}

static char *str_dup(pk_parser *k, int i, const char *what)
{
    pk_node *x = node(k, i);
    if (x->type != PK_STR)
        die("%s: %s is %s, not a string", k->source, what, type_name(x->type));
    if (memchr(x->s, 0, x->len))
        die("%s: %s holds a NUL byte", k->source, what);
    char *s = xmalloc(x->len + 1);
    memcpy(s, x->s, x->len);
    s[x->len] = 0;
    return s;
}

/* GLOBAL "module\nname\n": allowed ones become a node; anything else is refused. */
static void op_global(pk_parser *k)
{
    const char *mod = (const char *)k->p + k->pos;
    const char *end = k->pos < k->n ? memchr(mod, '\n', k->n - k->pos) : NULL;
    if (!end)
        fail(k, "GLOBAL without its module line");
    const char *name = end + 1;
    const char *end2 = memchr(name, '\n', (size_t)((const char *)k->p + k->n - name));
    if (!end2)
        fail(k, "GLOBAL without its name line");
    int ml = (int)(end - mod), nl = (int)(end2 - name);
    k->pos = (size_t)(end2 + 1 - (const char *)k->p);
    for (size_t g = 0; k->allow_globals && g < sizeof allowed / sizeof *allowed; g++)
        if ((size_t)ml == strlen(allowed[g].module) && !memcmp(mod, allowed[g].module, (size_t)ml) &&
            (size_t)nl == strlen(allowed[g].name) && !memcmp(name, allowed[g].name, (size_t)nl)) {
            int v = new_node(k, PK_GLOBAL);
            node(k, v)->i = (int64_t)g;
            push(k, v);
            return;
        }
    die("%s: the pickle refers to the global %.*s.%.*s, which pare does not load (a pickle is "
        "parsed here, never executed; only a state_dict of tensors is read)",
        k->source, ml > 200 ? 200 : ml, mod, nl > 200 ? 200 : nl, name);
}

static int64_t int_of(pk_parser *k, int i, const char *what)
{
    pk_node *x = node(k, i);
    if (x->type != PK_INT)
        die("%s: %s is %s, not an integer", k->source, what, type_name(x->type));
    return x->i;
}

/* BINPERSID: ('storage', StorageClass, key, location, numel[, view_metadata None]). */
static int persistent_load(pk_parser *k, int pid)
{
    pk_node *t = node(k, pid);
    if (t->type != PK_TUPLE || t->n < 5 || t->n > 6 || !is_str(k, t->items[0], "storage"))
        die("%s: a persistent id that is not a ('storage', ...) tuple", k->source);
    pk_node *cls = node(k, t->items[1]);
    if (cls->type != PK_GLOBAL || cls->i < G_FLOAT_STORAGE)
        die("%s: a persistent storage whose class is not FloatStorage, HalfStorage or "
            "BFloat16Storage", k->source);
    if (t->n == 6 && node(k, t->items[5])->type != PK_NONE)
        die("%s: a storage view (pre-1.6 view_metadata), which pare does not read", k->source);
    enum dtype dt = cls->i == G_FLOAT_STORAGE ? DTYPE_F32 : cls->i == G_HALF_STORAGE ? DTYPE_F16 : DTYPE_BF16;
    int v = new_node(k, PK_STORAGE);
    pt_ref *r = &node(k, v)->ref;
    t = node(k, pid);
    r->dtype = dt;
    r->storage = str_dup(k, t->items[2], "a storage key");
    if (!is_str(k, t->items[3], "cpu") && node(k, t->items[3])->type != PK_STR)
        die("%s: storage %s has no device string", k->source, r->storage);
    r->storage_numel = int_of(k, t->items[4], "a storage size");
    if (r->storage_numel < 0)
        die("%s: storage %s has a negative size", k->source, r->storage);
    return v;
}

/* REDUCE of _rebuild_tensor_v2(storage, offset, size, stride, requires_grad,
 * backward_hooks[, metadata]). */
static int rebuild_tensor(pk_parser *k, int args)
{
    pk_node *a = node(k, args);
    if (a->n < 6 || a->n > 7)
        die("%s: _rebuild_tensor_v2 called with %d arguments, not 6", k->source, a->n);
    pk_node *st = node(k, a->items[0]);
    if (st->type != PK_STORAGE)
        die("%s: _rebuild_tensor_v2 of %s, not a storage", k->source, type_name(st->type));
    pk_node *size = node(k, a->items[2]), *stride = node(k, a->items[3]);
    pk_node *hooks = node(k, a->items[5]);
    if (size->type != PK_TUPLE || stride->type != PK_TUPLE || size->n != stride->n)
        die("%s: a tensor with a malformed size or stride", k->source);
    if (hooks->type != PK_DICT || hooks->n != 0)
        die("%s: a tensor with backward hooks", k->source);
    if (a->n == 7 && node(k, a->items[6])->type != PK_DICT)
        die("%s: a tensor with metadata that is not a dict", k->source);
    int v = new_node(k, PK_TENSOR);
    a = node(k, args);
    st = node(k, a->items[0]);
    size = node(k, a->items[2]);
    stride = node(k, a->items[3]);
    pt_ref *r = &node(k, v)->ref;
    r->storage = xstrdup(st->ref.storage);
    r->dtype = st->ref.dtype;
    r->storage_numel = st->ref.storage_numel;
    r->offset = int_of(k, a->items[1], "a storage offset");
    r->ndim = size->n;
    if (r->ndim < 1 || r->ndim > 2)
        die("%s: a tensor of %d dimensions (in storage %s); pare reads 1- and 2-dimensional "
            "tensors", k->source, r->ndim, r->storage);
    int64_t shape[2] = {0}, strides[2] = {0};
    for (int d = 0; d < r->ndim; d++) {
        shape[d] = int_of(k, size->items[d], "a tensor dimension");
        strides[d] = int_of(k, stride->items[d], "a tensor stride");
        if (shape[d] < 0)
            die("%s: a tensor dimension of %lld", k->source, (long long)shape[d]);
    }
    r->numel = tensor_shape_numel(r->ndim, shape);
    if (r->numel < 0)
        die("%s: a tensor of more than 2^40 elements", k->source);
    /* Contiguous (row-major): stride[d] = product of the later dimensions; a
     * dimension of size 1 may have any stride. */
    int64_t want = 1;
    for (int d = r->ndim - 1; d >= 0; d--) {
        if (shape[d] != 1 && strides[d] != want) {
            char sh[64], sd[64];
            snprintf(sh, sizeof sh, r->ndim == 2 ? "[%lld, %lld]" : "[%lld]", (long long)shape[0],
                     (long long)shape[1]);
            snprintf(sd, sizeof sd, r->ndim == 2 ? "(%lld, %lld)" : "(%lld)", (long long)strides[0],
                     (long long)strides[1]);
            die("%s: a tensor of shape %s with stride %s (storage %s) is not contiguous, which "
                "pare does not read", k->source, sh, sd, r->storage);
        }
        want *= shape[d];
    }
    r->shape[0] = shape[0];
    r->shape[1] = r->ndim == 2 ? shape[1] : 0;
    if (r->offset < 0 || r->offset > r->storage_numel || r->numel > r->storage_numel - r->offset)
        die("%s: a tensor of %lld elements at offset %lld lies outside its storage %s of %lld",
            k->source, (long long)r->numel, (long long)r->offset, r->storage,
            (long long)r->storage_numel);
    return v;
}

static void op_reduce(pk_parser *k)
{
    int args = pop(k), fn = pop(k);
    pk_node *f = node(k, fn);
    if (f->type != PK_GLOBAL)
        fail(k, "REDUCE of something that is not a global");
    if (node(k, args)->type != PK_TUPLE)
        fail(k, "REDUCE with arguments that are not a tuple");
    if (f->i == G_ORDERED_DICT) {
        if (node(k, args)->n != 0)
            die("%s: OrderedDict called with arguments", k->source);
        push(k, new_node(k, PK_DICT));
    } else if (f->i == G_REBUILD_TENSOR) {
        push(k, rebuild_tensor(k, args));
    } else {
        die("%s: the pickle calls the storage class %s.%s, which pare does not do", k->source,
            allowed[f->i].module, allowed[f->i].name);
    }
}

static void op_setitems(pk_parser *k, int mark)
{
    int dict = mark - 1;
    if (dict < 0 || k->stack[dict] == MARK_ENTRY || node(k, k->stack[dict])->type != PK_DICT)
        fail(k, "SETITEMS on something that is not a dict");
    if ((k->sp - mark - 1) % 2)
        fail(k, "SETITEMS with an odd number of values");
    for (int i = mark + 1; i < k->sp; i++)
        node_add(k, k->stack[dict], k->stack[i]);
    k->sp = mark;
}

static void op_appends(pk_parser *k, int mark)
{
    int list = mark - 1;
    if (list < 0 || k->stack[list] == MARK_ENTRY || node(k, k->stack[list])->type != PK_LIST)
        fail(k, "APPENDS on something that is not a list");
    for (int i = mark + 1; i < k->sp; i++)
        node_add(k, k->stack[list], k->stack[i]);
    k->sp = mark;
}

static void make_tuple(pk_parser *k, int count)
{
    int t = new_node(k, PK_TUPLE);
    if (k->sp < count)
        fail(k, "stack underflow (malformed pickle)");
    for (int i = k->sp - count; i < k->sp; i++) {
        if (k->stack[i] == MARK_ENTRY)
            fail(k, "stack underflow (malformed pickle)");
        node_add(k, t, k->stack[i]);
    }
    k->sp -= count;
    push(k, t);
}

static void push_int(pk_parser *k, int64_t v)
{
    int x = new_node(k, PK_INT);
    node(k, x)->i = v;
    push(k, x);
}

static void push_str(pk_parser *k, size_t len)
{
    const uint8_t *s = take(k, len);
    int x = new_node(k, PK_STR);
    node(k, x)->s = (const char *)s;
    node(k, x)->len = len;
    push(k, x);
}

/* Run the machine from p[0] to STOP; returns the node of the result. */
static int run(pk_parser *k)
{
    for (;;) {
        if (k->pos >= k->n)
            fail(k, "the pickle ends without STOP (truncated file?)");
        size_t at = k->pos;
        uint8_t op = k->p[k->pos++];
        int mark, v;
        switch (op) {
        case 0x80: /* PROTO */
            v = (int)take_le(k, 1);
            if (v < 2 || v > 5)
                fail(k, "pickle protocol outside 2..5");
            break;
        case 0x95: take(k, 8); break; /* FRAME: a length hint */
        case '.':
            if (k->sp != 1)
                fail(k, "STOP with other than one value on the stack");
            return pop(k);
        case '(': push(k, MARK_ENTRY); break;
        case '}': push(k, new_node(k, PK_DICT)); break;
        case ']': push(k, new_node(k, PK_LIST)); break;
        case ')': push(k, new_node(k, PK_TUPLE)); break;
        case 't':
            mark = find_mark(k);
            make_tuple(k, k->sp - mark - 1);
            v = pop(k);
            k->sp = mark;
            push(k, v);
            break;
        case 0x85: make_tuple(k, 1); break;
        case 0x86: make_tuple(k, 2); break;
        case 0x87: make_tuple(k, 3); break;
        case 'N': push(k, new_node(k, PK_NONE)); break;
        case 0x88:
        case 0x89:
            v = new_node(k, PK_BOOL);
            node(k, v)->i = op == 0x88;
            push(k, v);
            break;
        case 'J': push_int(k, (int32_t)(uint32_t)take_le(k, 4)); break;
        case 'K': push_int(k, (int64_t)take_le(k, 1)); break;
        case 'M': push_int(k, (int64_t)take_le(k, 2)); break;
        case 0x8a: { /* LONG1: n bytes, two's complement, little-endian */
            int len = (int)take_le(k, 1);
            if (len > 8)
                fail(k, "an integer of more than 64 bits");
            uint64_t u = len ? take_le(k, len) : 0;
            if (len > 0 && len < 8 && (u >> (8 * len - 1)) & 1)
                u |= ~0ULL << (8 * len);
            push_int(k, (int64_t)u);
            break;
        }
        case 'X': push_str(k, (size_t)take_le(k, 4)); break;
        case 0x8c: push_str(k, (size_t)take_le(k, 1)); break;
        case 'q': memo_put(k, take_le(k, 1), top(k)); break;
        case 'r': memo_put(k, take_le(k, 4), top(k)); break;
        case 0x94: memo_put(k, (uint64_t)n_memo_keys(k), top(k)); break;
        case 'h': push(k, memo_get(k, take_le(k, 1))); break;
        case 'j': push(k, memo_get(k, take_le(k, 4))); break;
        case 'c': op_global(k); break;
        case 'R': op_reduce(k); break;
        case 'Q':
            if (!k->allow_globals)
                fail(k, "a persistent id in a pickle of plain data");
            push(k, persistent_load(k, pop(k)));
            break;
        case 's': {
            int val = pop(k), key = pop(k), dict = top(k);
            if (node(k, dict)->type != PK_DICT)
                fail(k, "SETITEM on something that is not a dict");
            node_add(k, dict, key);
            node_add(k, dict, val);
            break;
        }
        case 'u': op_setitems(k, find_mark(k)); break;
        case 'a':
            v = pop(k);
            push(k, MARK_ENTRY);
            push(k, v);
            op_appends(k, k->sp - 2);
            break;
        case 'e': op_appends(k, find_mark(k)); break;
        case 'b': { /* BUILD: only a dict's attribute dict (OrderedDict._metadata) */
            int state = pop(k);
            if (node(k, top(k))->type != PK_DICT || node(k, state)->type != PK_DICT)
                fail(k, "BUILD of something other than a dict's attributes");
            break;
        }
        default: {
            const char *name = opcode_name(op);
            k->pos = at;
            if (name)
                die("%s: pickle byte %zu: opcode %s (0x%02x) is outside the subset pare reads",
                    k->source, at, name, op);
            die("%s: pickle byte %zu: unknown opcode 0x%02x", k->source, at, op);
        }
        }
    }
}

static void parser_init(pk_parser *k, const uint8_t *p, size_t n, const char *source, bool globals)
{
    memset(k, 0, sizeof *k);
    k->p = p;
    k->n = n;
    k->source = source;
    k->allow_globals = globals;
}

static void parser_free(pk_parser *k)
{
    for (int i = 0; i < k->n_nodes; i++) {
        free(k->nodes[i].items);
        free(k->nodes[i].ref.storage);
    }
    free(k->nodes);
    free(k->stack);
    free(k->memo);
}

size_t pickle_state_dict(const uint8_t *p, size_t n, const char *source, pt_ref **refs, int *count)
{
    pk_parser k;
    parser_init(&k, p, n, source, true);
    int root = run(&k);
    pk_node *d = node(&k, root);
    if (d->type != PK_DICT)
        die("%s: the pickle holds %s, not a state_dict (a dict of tensors)", source,
            type_name(d->type));
    int nt = d->n / 2;
    pt_ref *out = xcalloc((size_t)(nt ? nt : 1), sizeof *out);
    for (int i = 0; i < nt; i++) {
        char *name = str_dup(&k, d->items[2 * i], "a state_dict key");
        pk_node *v = node(&k, d->items[2 * i + 1]);
        if (v->type != PK_TENSOR)
            die("%s: state_dict entry %s is %s, not a tensor", source, name, type_name(v->type));
        out[i] = v->ref;
        out[i].storage = xstrdup(v->ref.storage);
        out[i].name = name;
    }
    *refs = out;
    *count = nt;
    size_t used = k.pos;
    parser_free(&k);
    return used;
}

void pt_refs_free(pt_ref *refs, int count)
{
    for (int i = 0; i < count; i++) {
        free(refs[i].name);
        free(refs[i].storage);
    }
    free(refs);
}

size_t pickle_plain(const uint8_t *p, size_t n, const char *source, int64_t *value)
{
    pk_parser k;
    parser_init(&k, p, n, source, false);
    int root = run(&k);
    if (node(&k, root)->type == PK_INT && value)
        *value = node(&k, root)->i;
    size_t used = k.pos;
    parser_free(&k);
    return used;
}

size_t pickle_string_list(const uint8_t *p, size_t n, const char *source, char ***strs, int *count)
{
    pk_parser k;
    parser_init(&k, p, n, source, false);
    int root = run(&k);
    pk_node *l = node(&k, root);
    if (l->type != PK_LIST)
        die("%s: the pickle holds %s, not a list of storage keys", source, type_name(l->type));
    char **s = xmalloc((size_t)(l->n ? l->n : 1) * sizeof *s);
    for (int i = 0; i < l->n; i++)
        s[i] = str_dup(&k, node(&k, root)->items[i], "a storage key");
    *strs = s;
    *count = node(&k, root)->n;
    size_t used = k.pos;
    parser_free(&k);
    return used;
}
