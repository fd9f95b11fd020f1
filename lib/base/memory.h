/* memory.h - how much memory this process may still take without swapping or
 * meeting its cgroup's limit: the passes that can trade memory for time
 * (pare-score keeping each layer's internals for the backward instead of
 * recomputing them) size themselves from it. */
#ifndef PARE_MEMORY_H
#define PARE_MEMORY_H

#include <stddef.h>

/* The smaller of the system's MemAvailable (/proc/meminfo: free memory and what
 * the page cache can give back) and, in a memory cgroup with a limit (v1's
 * memory.limit_in_bytes, v2's memory.max), that limit less the cgroup's anonymous
 * memory (its page cache can be reclaimed). SIZE_MAX when neither can be read. */
size_t memory_available(void);

#endif
