/* cpu.c - the choice of inner loops for the CPU pare runs on (see cpu.h). */
#include "base/cpu.h"

#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include "base/util.h"

const cpu_kernels *_Atomic cpu_active;

static const char *const level_names[CPU_LEVELS] = {"baseline", "avx2", "avx512"};

const char *cpu_level_name(enum cpu_level level) { return level_names[level]; }

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/* F16C from cpuid leaf 1 (clang 14's __builtin_cpu_supports does not know it). */
static int has_f16c(void)
{
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}
#endif

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
                                                          &cpu_kernels_avx512};
    if (!cpu_supports(level))
        die("PARE_CPU=%s: this CPU does not have %s", level_names[level],
            level == CPU_AVX2 ? "AVX2, FMA and F16C" : "AVX-512 F, BW, DQ and VL");
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
            die("PARE_CPU=%s: expected baseline, avx2 or avx512", e);
    } else {
        while (level + 1 < CPU_LEVELS && cpu_supports((enum cpu_level)(level + 1)))
            level = (enum cpu_level)(level + 1);
    }
    const cpu_kernels *k = cpu_kernels_of(level);
    cpu_active = k;
    return k;
}
