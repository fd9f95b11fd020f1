/* pickle.h - a strict reader of the pickle subset that torch.save writes for a
 * state_dict. The pickle is parsed as data, never executed: the only globals it may
 * name are collections.OrderedDict, torch._utils._rebuild_tensor_v2 and the
 * torch.FloatStorage / HalfStorage / BFloat16Storage classes; tensors must be
 * contiguous, of 1 or 2 dimensions. Any other global, opcode or shape is refused
 * with a message that names it.
 *
 * Opcodes read: PROTO, FRAME, STOP, MARK, the container builders (EMPTY_DICT,
 * EMPTY_LIST, EMPTY_TUPLE, TUPLE, TUPLE1-3, SETITEM(S), APPEND(S)), the memo
 * (BINPUT, LONG_BINPUT, MEMOIZE, BINGET, LONG_BINGET), scalars (NONE, NEWTRUE,
 * NEWFALSE, BININT, BININT1, BININT2, LONG1 up to 8 bytes, BINUNICODE,
 * SHORT_BINUNICODE), GLOBAL, REDUCE, BINPERSID, and BUILD on a dict (the
 * `_metadata` attribute of a state_dict's OrderedDict, ignored). */
#ifndef PARE_PICKLE_H
#define PARE_PICKLE_H

#include <stddef.h>
#include <stdint.h>

#include "model/tensor.h"

/* One tensor of a state_dict: where its values lie in which storage. */
typedef struct {
    char *name;             /* state_dict key */
    char *storage;          /* storage key: entry data/KEY of a zip checkpoint */
    enum dtype dtype;       /* of the storage */
    int64_t storage_numel;  /* elements of the storage, as the pickle declares them */
    int64_t offset;         /* first element of the tensor in its storage */
    int ndim;               /* 1 or 2 */
    int64_t shape[2];
    int64_t numel;
} pt_ref;

/* Parse the pickle at p (n bytes) whose value is a dict or OrderedDict mapping
 * names to tensors. Returns the bytes it spans (up to and including STOP); sets
 * *refs (allocated, in pickle order) and *count. Dies "source: ..." otherwise. */
size_t pickle_state_dict(const uint8_t *p, size_t n, const char *source, pt_ref **refs, int *count);
void pt_refs_free(pt_ref *refs, int count);

/* Parse a pickle of plain data (no global, no persistent id) and return the bytes it
 * spans. *value is set when the pickle is a single integer (else left alone). */
size_t pickle_plain(const uint8_t *p, size_t n, const char *source, int64_t *value);

/* Parse a pickle whose value is a list of strings; returns the bytes it spans and
 * sets *strs (allocated, each string too) and *count. */
size_t pickle_string_list(const uint8_t *p, size_t n, const char *source, char ***strs, int *count);

#endif
