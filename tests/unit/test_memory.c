/* test_memory.c - memory_available against /proc/meminfo read here (MemTotal and
 * MemAvailable). (What other processes free or take meanwhile moves it: no check
 * of its change.) */
#include <stdio.h>
#include <string.h>

#include "base/memory.h"
#include "check.h"

/* /proc/meminfo's KEY in bytes, or 0. */
static size_t meminfo(const char *key)
{
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    unsigned long long kb = 0;
    size_t kl = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, kl) && line[kl] == ':')
            sscanf(line + kl + 1, "%llu", &kb);
    if (f)
        fclose(f);
    return (size_t)kb * 1024;
}

static void test_available(void)
{
    size_t total = meminfo("MemTotal"), a = memory_available();
    CHECK(total > 0);
    CHECK(a > ((size_t)16 << 20) && a <= total); /* some, and no more than the machine has */
    CHECK(a <= meminfo("MemAvailable") + ((size_t)256 << 20)); /* within what the kernel said a moment apart */
}

int main(void)
{
    TEST(test_available);
    return check_report();
}
