/* pytorch.c - read PyTorch checkpoints of a state_dict (pytorch.h). */
#include "format/pytorch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "format/pickle.h"
#include "format/zip.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "pare reads little-endian payloads straight into memory: little-endian hosts only"
#endif

/* PROTO 2, LONG1 of 10 bytes 0x1950a86a20f9469cfc6c (torch's MAGIC_NUMBER), STOP. */
static const uint8_t legacy_magic[15] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46,
                                         0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e};
#define LEGACY_PROTOCOL_VERSION 1001

bool pytorch_sniff(const uint8_t *p, size_t n)
{
    return (n >= 4 && !memcmp(p, "PK\3\4", 4)) ||
           (n >= sizeof legacy_magic && !memcmp(p, legacy_magic, sizeof legacy_magic));
}

/* Append the tensor of ref r, its values taken from storage bytes s. */
static void add_tensor(const pt_ref *r, const uint8_t *s, tensor **ts, int *n, int *cap)
{
    GROW(*ts, *cap, *n + 1, 64);
    tensor *t = &(*ts)[(*n)++];
    tensor_init_as(t, r->name, r->ndim, r->shape, r->dtype); /* kept as stored */
    size_t es = dtype_size(r->dtype);
    memcpy(t->data, s + (size_t)r->offset * es, tensor_bytes(t));
}

/* Every ref naming the same storage must agree on its dtype and size. */
static void check_shared(const pt_ref *refs, int count, const char *source)
{
    for (int i = 0; i < count; i++)
        for (int j = 0; j < i; j++)
            if (!strcmp(refs[i].storage, refs[j].storage) &&
                (refs[i].dtype != refs[j].dtype || refs[i].storage_numel != refs[j].storage_numel))
                die("%s: tensors %s and %s share storage %s but disagree on its dtype or size",
                    source, refs[j].name, refs[i].name, refs[i].storage);
}

static void read_zip(const uint8_t *p, size_t len, const char *source, tensor **ts, int *n, int *cap)
{
    zip_archive z;
    zip_open(&z, p, len, source);
    zip_entry *pkl = NULL;
    for (int i = 0; i < z.n; i++) {
        const char *nm = z.entries[i].name, *slash = strchr(nm, '/');
        if (slash && !strcmp(slash, "/data.pkl")) {
            if (pkl)
                die("%s: a zip archive with two data.pkl entries", source);
            pkl = &z.entries[i];
        }
    }
    if (!pkl)
        die("%s: a zip archive without ARCHIVE/data.pkl: not a PyTorch checkpoint", source);
    size_t plen = strlen(pkl->name) - strlen("data.pkl");   /* "ARCHIVE/" */
    char *bo_name = xasprintf("%.*sbyteorder", (int)plen, pkl->name);
    zip_entry *bo = zip_find(&z, bo_name);
    free(bo_name);
    if (bo && !(bo->size == 6 && !memcmp(zip_entry_data(&z, bo), "little", 6)))
        die("%s: a big-endian checkpoint (byteorder), which pare does not read", source);

    pt_ref *refs;
    int count;
    pickle_state_dict(zip_entry_data(&z, pkl), (size_t)pkl->size, source, &refs, &count);
    check_shared(refs, count, source);
    for (int i = 0; i < count; i++) {
        char *en = xasprintf("%.*sdata/%s", (int)plen, pkl->name, refs[i].storage);
        zip_entry *e = zip_find(&z, en);
        if (!e)
            die("%s: tensor %s: storage entry %s is missing", source, refs[i].name, en);
        uint64_t want = (uint64_t)refs[i].storage_numel * dtype_size(refs[i].dtype);
        if (e->size < want)
            die("%s: tensor %s: storage entry %s holds %llu bytes, but its storage needs %llu",
                source, refs[i].name, en, (unsigned long long)e->size, (unsigned long long)want);
        add_tensor(&refs[i], zip_entry_data(&z, e), ts, n, cap);
        free(en);
    }
    pt_refs_free(refs, count);
    zip_close(&z);
}

static void read_legacy(const uint8_t *p, size_t len, const char *source, tensor **ts, int *n, int *cap)
{
    size_t pos = sizeof legacy_magic;
    int64_t version = -1;
    pos += pickle_plain(p + pos, len - pos, source, &version);
    if (version != LEGACY_PROTOCOL_VERSION)
        die("%s: legacy PyTorch checkpoint of protocol version %lld; pare reads %d", source,
            (long long)version, LEGACY_PROTOCOL_VERSION);
    pos += pickle_plain(p + pos, len - pos, source, NULL); /* system info */
    pt_ref *refs;
    int count;
    pos += pickle_state_dict(p + pos, len - pos, source, &refs, &count);
    check_shared(refs, count, source);
    char **keys;
    int nk;
    pos += pickle_string_list(p + pos, len - pos, source, &keys, &nk);

    /* The storages follow in the order of keys; each tensor finds its own. */
    const uint8_t **at = xcalloc((size_t)(nk ? nk : 1), sizeof *at);
    for (int k = 0; k < nk; k++) {
        if (len - pos < 8)
            die("%s: legacy checkpoint ends before storage %s (truncated?)", source, keys[k]);
        uint64_t numel = 0;
        for (int b = 7; b >= 0; b--)
            numel = numel << 8 | p[pos + b];
        pos += 8;
        const pt_ref *r = NULL;
        for (int i = 0; i < count && !r; i++)
            if (!strcmp(refs[i].storage, keys[k]))
                r = &refs[i];
        size_t es = r ? dtype_size(r->dtype) : 0;
        if (!r)
            die("%s: legacy checkpoint: storage %s is used by no tensor", source, keys[k]);
        if (numel != (uint64_t)r->storage_numel)
            die("%s: legacy checkpoint: storage %s holds %llu elements, but the pickle says %lld",
                source, keys[k], (unsigned long long)numel, (long long)r->storage_numel);
        if ((len - pos) / es < numel)
            die("%s: legacy checkpoint ends inside storage %s (truncated?)", source, keys[k]);
        at[k] = p + pos;
        pos += numel * es;
    }
    for (int i = 0; i < count; i++) {
        int k = 0;
        while (k < nk && strcmp(keys[k], refs[i].storage))
            k++;
        if (k == nk)
            die("%s: tensor %s: storage %s is not in the checkpoint", source, refs[i].name,
                refs[i].storage);
        add_tensor(&refs[i], at[k], ts, n, cap);
    }
    for (int k = 0; k < nk; k++)
        free(keys[k]);
    free(keys);
    free(at);
    pt_refs_free(refs, count);
}

void pytorch_read_mem(const uint8_t *p, size_t len, const char *source, tensor **ts, int *n, int *cap)
{
    if (len >= 4 && !memcmp(p, "PK\3\4", 4))
        read_zip(p, len, source, ts, n, cap);
    else if (len >= sizeof legacy_magic && !memcmp(p, legacy_magic, sizeof legacy_magic))
        read_legacy(p, len, source, ts, n, cap);
    else
        die("%s: not a PyTorch checkpoint (neither a zip archive nor the legacy format)", source);
}

void pytorch_read(const char *path, tensor **ts, int *n, int *cap)
{
    size_t len;
    const uint8_t *p = map_file(path, &len);
    pytorch_read_mem(p, len, path, ts, n, cap);
    unmap_file(p, len);
}
