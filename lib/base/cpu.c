/* cpu.c - the choice of inner loops for the CPU pare runs on (see cpu.h). */
#include "base/cpu.h"

#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "base/util.h"

const cpu_kernels *_Atomic cpu_active;

static const char *const level_names[CPU_LEVELS] = {"baseline", "avx2", "avx512", "amx"};

const char *cpu_level_name(enum cpu_level level) { return level_names[level]; }

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/* F16C from cpuid leaf 1 (clang 14's __builtin_cpu_supports does not know it). */
static int has_f16c(void)
{
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}

/* AMX-TILE and AMX-BF16 (cpuid leaf 7), their state saved by the system (XCR0
 * bits 17 and 18), and this process granted the tiles' data (Linux asks each
 * process to request it: arch_prctl ARCH_REQ_XCOMP_PERM, once). */
static int has_amx(void)
{
    static _Atomic int known = -1;
    if (known >= 0)
        return known;
    unsigned a, b, c, d, lo, hi;
    int yes = __get_cpuid_count(7, 0, &a, &b, &c, &d) && (d & (1u << 24)) && (d & (1u << 22)) &&
              __get_cpuid(1, &a, &b, &c, &d) && (c & bit_OSXSAVE);
    if (yes) {
        __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        yes = (lo >> 17 & 3) == 3 && syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XTILEDATA */) == 0;
    }
    known = yes;
    return yes;
}
#endif

/* Whether the CPU is AMD's (whose Zen 4 runs a 512-bit operation as two halves). */
static int is_amd(void)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    return __builtin_cpu_is("amd");
#else
    return 0;
#endif
}

/* The builtins check the instruction sets and that the system saves their
 * registers (XCR0). */
int cpu_supports(enum cpu_level level)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    switch (level) {
    case CPU_BASELINE:
        return 1;
    case CPU_AVX2:
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c();
    case CPU_AVX512:
        return cpu_supports(CPU_AVX2) && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
    case CPU_AMX:
        return cpu_supports(CPU_AVX512) && has_amx();
    case CPU_LEVELS:
        break;
    }
    return 0;
#else
    return level == CPU_BASELINE;
#endif
}

const cpu_kernels *cpu_kernels_of(enum cpu_level level)
{
    static const cpu_kernels *const tables[CPU_LEVELS] = {&cpu_kernels_baseline, &cpu_kernels_avx2,
                                                          &cpu_kernels_avx512, &cpu_kernels_amx};
    static const char *const needs[CPU_LEVELS] = {"", "AVX2, FMA and F16C", "AVX-512 F, BW, DQ and VL",
                                                  "AVX-512 and AMX-BF16 tiles that the system grants"};
    if (!cpu_supports(level))
        die("PARE_CPU=%s: this CPU does not have %s", level_names[level],
            needs[level]);
    return tables[level];
}

const cpu_kernels *cpu_select(void)
{
    enum cpu_level level = CPU_BASELINE;
    const char *e = getenv("PARE_CPU");
    if (e && *e) {
        int found = 0;
        for (int l = 0; l < CPU_LEVELS; l++)
            if (!strcmp(e, level_names[l]))
                level = (enum cpu_level)l, found = 1;
        if (!found)
            die("PARE_CPU=%s: expected baseline, avx2, avx512 or amx", e);
    } else {
        while (level + 1 < CPU_LEVELS && cpu_supports((enum cpu_level)(level + 1)))
            level = (enum cpu_level)(level + 1);
    }
    /* The table, less pare's own product at avx512 on a CPU not AMD's (see cpu.h).
     * A copy per level: a second call (the same choice, or another PARE_CPU in a
     * test) writes the same values or another copy, never the one in use. */
    static cpu_kernels chosen[CPU_LEVELS];
    chosen[level] = *cpu_kernels_of(level);
    if (level == CPU_AVX512 && !is_amd())
        chosen[level].gemm = NULL;
    cpu_active = &chosen[level];
    return &chosen[level];
}
