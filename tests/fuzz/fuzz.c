/* fuzz.c - the harness every fuzz target links (see fuzz.h). */
#include "fuzz.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/mman.h>

#include <archive.h>
#include <sanitizer/allocator_interface.h>

#include "base/util.h"

/* ---- blocks allocated while an input runs: a log of pointers (freed ones
 * zeroed) and an open-addressing table from pointer to its log slot */
#define LOG_MAX (1u << 20)
#define TAB_BITS 21
#define TAB_SIZE (1u << TAB_BITS)
static uintptr_t g_log[LOG_MAX];
static size_t g_nlog;
static uintptr_t g_key[TAB_SIZE];
static uint32_t g_slot[TAB_SIZE];
static bool g_tracking, g_overflow;

static size_t tab_hash(uintptr_t p) { return (size_t)((p >> 4) * 0x9e3779b97f4a7c15ull >> (64 - TAB_BITS)); }

static void tab_insert(uintptr_t p, uint32_t slot)
{
    size_t i = tab_hash(p);
    while (g_key[i] && g_key[i] != p)
        i = (i + 1) & (TAB_SIZE - 1);
    g_key[i] = p;
    g_slot[i] = slot;
}

/* Remove p (backward-shift deletion); returns its log slot or -1. */
static long tab_remove(uintptr_t p)
{
    size_t i = tab_hash(p);
    while (g_key[i] != p) {
        if (!g_key[i])
            return -1;
        i = (i + 1) & (TAB_SIZE - 1);
    }
    long slot = g_slot[i];
    for (size_t j = i;;) {
        j = (j + 1) & (TAB_SIZE - 1);
        if (!g_key[j])
            break;
        size_t h = tab_hash(g_key[j]);
        bool stays = i <= j ? (h > i && h <= j) : (h > i || h <= j); /* home in (i, j] */
        if (!stays) {
            g_key[i] = g_key[j];
            g_slot[i] = g_slot[j];
            i = j;
        }
    }
    g_key[i] = 0;
    return slot;
}

static void on_malloc(const volatile void *p, size_t size)
{
    (void)size;
    if (!g_tracking || !p)
        return;
    if (g_nlog == LOG_MAX) {
        g_overflow = true;
        return;
    }
    g_log[g_nlog] = (uintptr_t)p;
    tab_insert((uintptr_t)p, (uint32_t)g_nlog);
    g_nlog++;
}

static void on_free(const volatile void *p)
{
    if (!g_tracking || !p)
        return;
    long slot = tab_remove((uintptr_t)p);
    if (slot >= 0)
        g_log[slot] = 0;
}

/* ---- FILEs and archives opened while an input runs */
#define OPEN_MAX 64
static FILE *g_files[OPEN_MAX];
static struct archive *g_archives[OPEN_MAX];

FILE *__real_fopen(const char *path, const char *mode);
int __real_fclose(FILE *f);
struct archive *__real_archive_read_new(void);
int __real_archive_read_free(struct archive *a);

static void remember(void **set, void *p)
{
    for (int i = 0; i < OPEN_MAX; i++)
        if (!set[i]) {
            set[i] = p;
            return;
        }
}

static void forget(void **set, void *p)
{
    for (int i = 0; i < OPEN_MAX; i++)
        if (set[i] == p)
            set[i] = NULL;
}

FILE *__wrap_fopen(const char *path, const char *mode)
{
    FILE *f = __real_fopen(path, mode);
    if (f && g_tracking)
        remember((void **)g_files, f);
    return f;
}

int __wrap_fclose(FILE *f)
{
    forget((void **)g_files, f);
    return __real_fclose(f);
}

struct archive *__wrap_archive_read_new(void)
{
    struct archive *a = __real_archive_read_new();
    if (a && g_tracking)
        remember((void **)g_archives, a);
    return a;
}

int __wrap_archive_read_free(struct archive *a)
{
    forget((void **)g_archives, a);
    return __real_archive_read_free(a);
}

/* ---- mappings made while an input runs (a die between map and unmap would
 * leave them, and truncating the next input's file under them is slow) */
static struct {
    void *addr;
    size_t len;
} g_maps[OPEN_MAX];

void *__real_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __real_munmap(void *addr, size_t len);

void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    void *p = __real_mmap(addr, len, prot, flags, fd, off);
    if (p != MAP_FAILED && g_tracking)
        for (int i = 0; i < OPEN_MAX; i++)
            if (!g_maps[i].addr) {
                g_maps[i].addr = p;
                g_maps[i].len = len;
                break;
            }
    return p;
}

int __wrap_munmap(void *addr, size_t len)
{
    for (int i = 0; i < OPEN_MAX; i++)
        if (g_maps[i].addr == addr)
            g_maps[i].addr = NULL;
    return __real_munmap(addr, len);
}

/* ---- the run */
static jmp_buf g_jmp;
static char g_error[1024];
static char g_dir[64];
static FILE *g_devnull;

static void die_hook(const char *msg)
{
    snprintf(g_error, sizeof g_error, "%s", msg);
    longjmp(g_jmp, 1);
}

const char *fuzz_last_error(void) { return g_error; }

static void remove_dir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz: cannot remove %s\n", g_dir);
}

const char *fuzz_dir(void)
{
    if (!g_dir[0]) {
        /* memory-backed when there is /dev/shm: every input is written to a file */
        const char *tmp = getenv("TMPDIR");
        if (!tmp || !*tmp)
            tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(g_dir, sizeof g_dir, "%.40s/pare-fuzz.XXXXXX", tmp);
        if (!mkdtemp(g_dir)) {
            perror("fuzz: mkdtemp");
            abort();
        }
        atexit(remove_dir);
    }
    return g_dir;
}

const char *fuzz_file(const char *name, const void *data, size_t size)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", fuzz_dir(), name);
    FILE *f = __real_fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || __real_fclose(f) != 0) {
        perror(path);
        abort();
    }
    return path;
}

FILE *fuzz_devnull(void)
{
    if (!g_devnull) {
        g_devnull = __real_fopen("/dev/null", "w");
        fputc(0, g_devnull); /* its buffer exists before any input runs */
        fflush(g_devnull);
    }
    return g_devnull;
}

static void setup(void)
{
    static bool done;
    if (done)
        return;
    done = true;
    set_progname("pare-fuzz");
    g_quiet = true;
    set_die_hook(die_hook);
    __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free);
    fuzz_dir();
    fuzz_devnull();
}

int fuzz_run(void (*fn)(const uint8_t *data, size_t size), const uint8_t *data, size_t size)
{
    setup();
    g_nlog = 0;
    g_overflow = false;
    g_tracking = true;
    volatile int died = 0;
    if (setjmp(g_jmp) == 0)
        fn(data, size);
    else
        died = 1;
    if (died) {
        for (int i = 0; i < OPEN_MAX; i++)
            if (g_archives[i])
                __wrap_archive_read_free(g_archives[i]);
        for (int i = 0; i < OPEN_MAX; i++)
            if (g_files[i])
                __wrap_fclose(g_files[i]);
        for (int i = 0; i < OPEN_MAX; i++)
            if (g_maps[i].addr)
                __wrap_munmap(g_maps[i].addr, g_maps[i].len);
        for (size_t i = 0; i < g_nlog; i++)
            if (g_log[i])
                free((void *)g_log[i]); /* on_free clears the slot */
    } else {
        memset(g_files, 0, sizeof g_files);
        memset(g_archives, 0, sizeof g_archives);
        memset(g_maps, 0, sizeof g_maps);
        for (size_t i = 0; i < g_nlog; i++)
            if (g_log[i])
                tab_remove(g_log[i]);
    }
    g_tracking = false;
    g_nlog = 0;
    return died;
}
