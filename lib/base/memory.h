/* memory.h - how much memory this process may still take without swapping or
 * meeting its cgroup's limit: the passes that can trade memory for time
 * (pare-score keeping each layer's internals for the backward instead of
 * recomputing them) size themselves from it. And how the allocator keeps what
 * the passes free. */
#ifndef PARE_MEMORY_H
#define PARE_MEMORY_H

#include <stddef.h>

/* The smaller of the system's MemAvailable (/proc/meminfo: free memory and what
 * the page cache can give back) and, in a memory cgroup with a limit (v1's
 * memory.limit_in_bytes, v2's memory.max), that limit less the cgroup's anonymous
 * memory (its page cache can be reclaimed). SIZE_MAX when neither can be read. */
size_t memory_available(void);

/* Buffers under 256 MB that are freed (every product's weight panels and packed
 * operands, a layer's scratch) stay with the process for the next one instead of
 * going back to the system, which would hand out fresh pages again: a page fault
 * and the kernel's clearing of 4 KB each time (8% of pare-score's time on the
 * slice). Larger ones (the arenas) are mapped and unmapped on their own as
 * before. pare-score calls it once at start. pare-eval's forward passes gained
 * nothing from it on the slice, and its peak anonymous memory rose by 70 MB (0.42
 * to 0.49 GB); nor did pare-lora's (4 steps of 8 x 64 tokens on the slice: 42.4
 * and 40.0 s with it, 40.9 and 39.6 s without), so neither calls it. */
void memory_keep_freed(void);

#endif
