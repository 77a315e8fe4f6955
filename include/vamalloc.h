/* vamalloc: a C11 userspace memory allocator that keeps working when the
 * kernel says no.
 *
 * Every function here is also reachable under the standard name (malloc,
 * free, ...) when libvamalloc.so is preloaded.  The static library exports
 * only the vam_ names, so a runtime can link it beside libc malloc.
 *
 * Errors: an allocation that cannot be served returns NULL with errno =
 * ENOMEM (including size overflow and sizes above PTRDIFF_MAX).  An
 * alignment that is not a power of two gives NULL with EINVAL
 * (aligned_alloc, memalign); posix_memalign returns EINVAL or ENOMEM and
 * leaves *memptr untouched.  realloc of a pointer that is no live block
 * (a reported misuse, when VAMALLOC_ON_CORRUPTION lets the program go on)
 * returns NULL with EINVAL and touches nothing.
 */
#ifndef VAMALLOC_H
#define VAMALLOC_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define VAM_API __attribute__((visibility("default")))
#define VAM_MALLOC_ATTR __attribute__((malloc, warn_unused_result))
#else
#define VAM_API
#define VAM_MALLOC_ATTR
#endif

#define VAMALLOC_VERSION_MAJOR 0
#define VAMALLOC_VERSION_MINOR 1
#define VAMALLOC_VERSION_PATCH 0

/* ---- the malloc family ------------------------------------------------ */
VAM_API VAM_MALLOC_ATTR void *vam_malloc(size_t size);
VAM_API void vam_free(void *ptr);
VAM_API VAM_MALLOC_ATTR void *vam_calloc(size_t count, size_t size);
VAM_API void *vam_realloc(void *ptr, size_t size);
VAM_API void *vam_reallocarray(void *ptr, size_t count, size_t size);
VAM_API int vam_posix_memalign(void **memptr, size_t alignment, size_t size);
VAM_API VAM_MALLOC_ATTR void *vam_aligned_alloc(size_t alignment, size_t size);
VAM_API VAM_MALLOC_ATTR void *vam_memalign(size_t alignment, size_t size);
VAM_API VAM_MALLOC_ATTR void *vam_valloc(size_t size);
VAM_API VAM_MALLOC_ATTR void *vam_pvalloc(size_t size);
/* Bytes that may be written at ptr; 0 for NULL and for foreign pointers. */
VAM_API size_t vam_usable_size(const void *ptr);
/* C23 sized deallocation.  The size (and alignment) are not used: the
 * block's size comes from its metadata, as for free, so a wrong size
 * never corrupts the heap (and is not reported). */
VAM_API void vam_free_sized(void *ptr, size_t size);
VAM_API void vam_free_aligned_sized(void *ptr, size_t alignment, size_t size);

/* Give free memory back to the OS now: what has been idle for the purge
 * delay, or, with force, everything free (and the cache of freed huge
 * mappings, and the calling thread's empty slabs).  Also drains
 * the heaps of exited threads. */
VAM_API void vam_collect(bool force);

/* ---- introspection ---------------------------------------------------- */
/* Print the statistics summary to fd: format 0 = text, 1 = JSON. */
enum { VAM_STATS_TEXT = 0, VAM_STATS_JSON = 1 };
VAM_API void vam_stats_print(int fd, int format);
/* Print the options table (name, default, range, description) to fd. */
VAM_API void vam_options_print(int fd);
/* Non-zero when ptr was handed out by vamalloc and is still live-looking
 * (lies in a vamalloc chunk).  Cheap: one chunk-map lookup. */
VAM_API int vam_owns(const void *ptr);

/* ---- first-class heaps ------------------------------------------------
 * A heap per isolate, worker or request that can be thrown away in one step.
 *
 * Thread safety: every vam_heap_* call may be made from any thread, at any
 * time, concurrently with other calls on the same heap (each heap has its
 * own lock; calls on different heaps never contend).  A block from a heap
 * may be freed by any thread with vam_free/free or vam_heap_free.
 * vam_heap_destroy is the exception: the caller must make sure no other
 * thread uses the heap, or any of its blocks, during or after the call.
 *
 * Blocks of a heap count against its byte_limit (usable bytes, as
 * vam_usable_size reports them).  An allocation that would pass the limit
 * returns NULL with errno = ENOMEM; nothing else is affected.  realloc of a
 * heap's block (vam_realloc or vam_heap_realloc) keeps it in its heap. */
typedef struct vam_heap vam_heap_t;

typedef struct vam_heap_options {
  size_t struct_size;  /* sizeof(vam_heap_options); fields past it read as 0 */
  size_t byte_limit;   /* 0 = no limit */
  const char *name;    /* copied (at most 31 chars); vam_heap_stats returns it */
} vam_heap_options;

typedef struct vam_heap_stats_t {
  uint64_t struct_size;   /* bytes filled in (the smaller of both sizes) */
  uint64_t live_bytes;    /* usable bytes of live blocks */
  uint64_t peak_bytes;
  uint64_t byte_limit;
  uint64_t live_blocks;
  uint64_t malloc_calls;  /* allocations served */
  uint64_t free_calls;
  uint64_t limit_refusals;/* allocations refused by byte_limit */
  uint64_t pages;         /* slab spans held */
  uint64_t large_blocks;  /* live blocks above the small maximum */
  char name[32];          /* the name given to vam_heap_new, or "" */
} vam_heap_stats_t;

/* NULL with errno = ENOMEM when no memory for the heap, EINVAL for a bad
 * options struct.  opts may be NULL (no limit). */
VAM_API vam_heap_t *vam_heap_new(const vam_heap_options *opts);
VAM_API VAM_MALLOC_ATTR void *vam_heap_malloc(vam_heap_t *heap, size_t size);
VAM_API VAM_MALLOC_ATTR void *vam_heap_calloc(vam_heap_t *heap, size_t count, size_t size);
VAM_API void *vam_heap_realloc(vam_heap_t *heap, void *ptr, size_t size);
VAM_API VAM_MALLOC_ATTR void *vam_heap_memalign(vam_heap_t *heap, size_t alignment, size_t size);
/* Same as vam_free: works on any pointer (the heap argument is not needed
 * to find the block's heap and may be NULL). */
VAM_API void vam_heap_free(vam_heap_t *heap, void *ptr);
/* Frees every block of the heap, then the heap.  NULL is a no-op. */
VAM_API void vam_heap_destroy(vam_heap_t *heap);
/* Fills out (struct_size bytes at most); returns 0, or EINVAL. */
VAM_API int vam_heap_stats(vam_heap_t *heap, vam_heap_stats_t *out, size_t struct_size);
/* The heap a live block belongs to, or NULL for thread-heap blocks and
 * pointers vamalloc does not own. */
VAM_API vam_heap_t *vam_heap_of(const void *ptr);

/* ---- page API for garbage collectors -----------------------------------
 * Whole OS pages, for a runtime's own GC heap (like bmalloc's VMAllocate or
 * libpas's page_malloc), over the same OS layer as malloc: every kernel
 * call goes through the capped EAGAIN retry (VAMALLOC_RETRY_MAX tries,
 * VAMALLOC_RETRY_DELAY_US apart), and every reservation counts against
 * vamalloc's VA budget and map cap.  Calls never spin or abort.
 *
 * Arguments: sizes and addresses are non-zero multiples of vam_page_size();
 * commit, decommit and release take a range inside ONE live reservation of
 * this API (any page-aligned part of it).  Anything else is EINVAL, never a
 * crash: misaligned, zero, wrapping, unknown or already released ranges,
 * a non-power-of-two alignment, unknown flags.
 *
 * States of a page:
 *   reserved   PROT_NONE: any access faults (SIGSEGV), so GC bugs show;
 *   committed  read/write.  A page committed for the first time, or again
 *              after a successful decommit, reads as zeroes; committing a
 *              committed page keeps its contents.
 * decommit returns the memory (MADV_DONTNEED, then PROT_NONE; under strict
 * commit, a fresh PROT_NONE mapping, which also returns the commit charge):
 * the pages are reserved again.  release unmaps and returns the budget.
 *
 * Failure semantics (the return value is the errno; errno is not touched):
 *   commit    EAGAIN (retries gave up) or ENOMEM (commit limit, map count):
 *             do not use the range; some of its pages may have become
 *             accessible.  Call commit again later.
 *   decommit  EAGAIN or ENOMEM: the pages are still committed, readable and
 *             writable, their contents unspecified (old or zero).  Keep
 *             using them, or retry the decommit later.
 *   release   ENOMEM (the kernel refused the munmap, e.g. map count): the
 *             range is still reserved, in whatever state it was.
 * Every failure is counted (vam_stats_get) and makes vam_health() report
 * degraded until the same kind of call succeeds again. */
enum {
  VAM_PAGES_COMMIT = 1u << 0,   /* reserve: commit the whole range at once */
  VAM_PAGES_DONTDUMP = 1u << 1, /* reserve/decommit: exclude from core dumps
                                   until released (commit does not undo it;
                                   a refused mark is ignored and counted) */
};
/* The OS page size: the unit of every size and address below. */
VAM_API size_t vam_page_size(void);
/* Reserve size bytes aligned to alignment (a power of two; 0 = page),
 * PROT_NONE unless VAM_PAGES_COMMIT.  NULL with errno = EINVAL (bad
 * size/alignment/flags) or ENOMEM (VA budget, map cap or kernel said no). */
VAM_API void *vam_pages_reserve(size_t size, size_t alignment, unsigned flags);
/* 0, EINVAL, EAGAIN or ENOMEM (see above). */
VAM_API int vam_pages_commit(void *addr, size_t size);
/* flags: 0 or VAM_PAGES_DONTDUMP.  0, EINVAL, EAGAIN or ENOMEM. */
VAM_API int vam_pages_decommit(void *addr, size_t size, unsigned flags);
/* Unmap all or any page-aligned part of a reservation: 0, EINVAL, ENOMEM.
 * Must not race with other calls on the same range. */
VAM_API int vam_pages_release(void *addr, size_t size);

/* ---- statistics and health ---------------------------------------------
 * VAMALLOC_STATS_FIELDS is the one list of vamalloc's statistics.  It
 * declares vam_stats_t below and, inside vamalloc, the internal counters,
 * the text and JSON reports and vam_stats_get, so a statistic is one line
 * here.  THE ORDER IS THE ABI: new entries go at the end, never between.
 * The macro of each entry says its kind:
 *   T(name, doc)  a total computed when read (sums over the thread heaps)
 *   C(name, doc)  a counter; only grows
 *   G(name, doc)  a gauge: two fields, name (now) and name_peak
 *   O(call, doc)  one kind of kernel call: five counters, call_calls,
 *                 call_eagain (EAGAIN answers, each try), call_retries
 *                 (sleeps before another try), call_giveups (still EAGAIN
 *                 after the cap) and call_failures (failed in the end) */
#define VAMALLOC_STATS_FIELDS(T, C, G, O)                                            \
  T(malloc_calls, "allocations served (every size)")                                 \
  T(free_calls, "frees of vamalloc blocks")                                          \
  T(bytes_allocated, "bytes handed out as small blocks (their size-class sizes)")    \
  T(degrade_events, "times the process went from ok to degraded")                    \
  T(calloc_calls, "calloc calls")                                                    \
  T(realloc_calls, "realloc calls")                                                  \
  T(aligned_calls, "aligned allocation calls (posix_memalign, aligned_alloc...)")    \
  C(large_allocs, "allocations served as large spans")                               \
  C(huge_allocs, "allocations served by their own mapping")                          \
  C(large_frees, "large spans freed")                                                \
  C(huge_frees, "huge mappings freed")                                               \
  T(remote_frees, "frees from a thread other than the owner")                        \
  C(foreign_frees, "free/realloc/usable_size of pointers vamalloc never handed out") \
  C(invalid_frees, "frees of heap addresses that are not a live block start")        \
  C(enomem_returns, "allocations that returned NULL with ENOMEM")                    \
  C(host_dontdump_dropped, "host MADV_DONTDUMP/DODUMP calls answered without the kernel") \
  C(pages_acquired, "spans taken for slabs")                                         \
  C(pages_released, "slab spans given back to their chunk")                          \
  C(chunks_reserved, "4 MiB chunks mapped")                                          \
  C(chunks_released, "chunks unmapped")                                              \
  C(chunk_release_failures, "chunk unmaps the kernel refused (kept, decommitted)")   \
  C(decommit_failures, "decommits that gave up, the page API's included (pages stay committed)") \
  C(heaps_created, "thread heaps created")                                           \
  C(heaps_reused, "thread heaps taken over from exited threads")                     \
  C(fallback_allocs, "allocations served through a fallback path")                   \
  C(dontdump_failures, "MADV_DONTDUMP marks the kernel refused (ignored)")           \
  C(huge_retained, "huge ranges kept (decommitted) because munmap was refused")      \
  C(huge_leaked, "huge ranges munmap refused with no room to keep them")             \
  C(budget_refusals, "reservations refused by the VA budget or the map cap")         \
  C(commit_failures, "strict-mode commits (mprotect) the kernel refused")            \
  C(purge_runs, "contiguous ranges purged (one madvise each)")                       \
  C(purged_bytes, "bytes given back to the OS by purging")                           \
  C(huge_cache_hits, "huge allocations served from the cache of freed mappings")     \
  C(huge_cache_misses, "huge allocations that needed a new mapping")                 \
  C(large_in_place, "large/huge reallocs done in place (grow or shrink)")            \
  G(reserved_bytes, "address space mapped by vamalloc (page API included)")          \
  G(committed_bytes, "bytes in spans/mappings that may be resident")                 \
  G(large_bytes, "bytes in live large objects")                                      \
  G(huge_bytes, "bytes in live huge objects")                                        \
  G(live_heaps, "thread heaps in use")                                               \
  G(mappings, "mappings vamalloc holds (reservations, plus splits it caused)")       \
  O(mmap, "mmap")                                                                    \
  O(munmap, "munmap")                                                                \
  O(mremap, "mremap")                                                                \
  O(madvise, "madvise")                                                              \
  O(mprotect, "mprotect")                                                            \
  O(mincore, "mincore")                                                              \
  O(host_madvise, "the host program's madvise (preload shim)")                       \
  O(host_mincore, "the host program's mincore (preload shim)")                       \
  C(user_heaps_created, "first-class heaps created (vam_heap_new)")                  \
  C(user_heaps_destroyed, "first-class heaps destroyed (vam_heap_destroy)")          \
  C(heap_limit_refusals, "first-class heap allocations refused by byte_limit")       \
  G(user_heaps, "first-class heaps alive")                                           \
  G(pages_reserved, "bytes reserved through the page API")                           \
  G(pages_reservations, "page-API reservations held (a partial release may split one)") \
  C(pages_reserves, "page-API reservations made")                                    \
  C(pages_reserve_failures, "page-API reservations refused (budget, map cap, kernel)") \
  C(pages_commits, "page-API commits done")                                          \
  C(pages_committed_bytes, "bytes committed through the page API, in total")         \
  C(pages_commit_failures, "page-API commits refused (range not usable)")            \
  C(pages_decommits, "page-API decommits done")                                      \
  C(pages_decommitted_bytes, "bytes decommitted through the page API, in total")     \
  C(pages_decommit_failures, "page-API decommits refused (pages stay committed)")    \
  C(pages_releases, "page-API releases done (whole or part)")                        \
  C(pages_release_failures, "page-API releases munmap refused (range kept)")         \
  C(pages_dontdump_failures, "page-API MADV_DONTDUMP marks refused (ignored)")       \
  C(pages_einval, "page-API calls rejected with EINVAL (bad or unknown range)")    \
  C(huge_realloc_copies, "huge reallocs copied into a region of their own (once)")    \
  C(misuse_double_free, "double frees reported (any size, any thread)")               \
  C(misuse_interior_free, "frees of an address inside a block, reported")             \
  C(misuse_invalid_pointer, "free/realloc/usable_size of pointers vamalloc never handed out, reported") \
  C(misuse_freelist_corrupt, "free-list links found overwritten after free, reported") \
  C(misuse_canary, "block canaries found overwritten at free (secure build)")         \
  C(misuse_write_after_free, "freed blocks found written before reuse (secure build)") \
  C(chunk_guard_failures, "chunks without their front guard page (refused, or pages not 4 KiB)") \
  C(huge_guard_failures, "huge objects without the guard page before their header (refused)")

/* Versioned by size: struct_size first, then the fields of the list above
 * in order; a binary built against an older, shorter struct passes its
 * sizeof and gets exactly the fields it knows. */
typedef struct vam_stats_t {
  uint64_t struct_size; /* bytes filled in */
#define VAMALLOC_STATS_ONE_(name, doc) uint64_t name;
#define VAMALLOC_STATS_GAUGE_(name, doc) uint64_t name, name##_peak;
#define VAMALLOC_STATS_OS_(call, doc) \
  uint64_t call##_calls, call##_eagain, call##_retries, call##_giveups, call##_failures;
  VAMALLOC_STATS_FIELDS(VAMALLOC_STATS_ONE_, VAMALLOC_STATS_ONE_, VAMALLOC_STATS_GAUGE_,
                        VAMALLOC_STATS_OS_)
#undef VAMALLOC_STATS_ONE_
#undef VAMALLOC_STATS_GAUGE_
#undef VAMALLOC_STATS_OS_
} vam_stats_t;
/* Fill the first struct_size bytes of out (pass sizeof(vam_stats_t)) from
 * one snapshot: min(struct_size, sizeof(vam_stats_t)) bytes are written,
 * nothing past them.  Returns the number of bytes filled, or 0 with
 * errno = EINVAL for a NULL out or a struct_size below 8.  Never allocates;
 * safe from any thread (a snapshot taken while threads run is not an exact
 * cut). */
VAM_API size_t vam_stats_get(vam_stats_t *out, size_t struct_size);

/* Health: degraded while any kind of kernel trouble is outstanding (mmap,
 * munmap, decommit or commit refused, metadata out); each kind clears when
 * the same kind of call succeeds again. */
enum { VAM_HEALTH_OK = 0, VAM_HEALTH_DEGRADED = 1 };
typedef struct vam_health_t {
  int status;             /* VAM_HEALTH_OK or VAM_HEALTH_DEGRADED */
  const char *reason;     /* static string, the latest trouble; "" when ok */
  uint64_t degrade_events;/* times the process went from ok to degraded */
  uint64_t os_eagain;     /* EAGAIN answers from the kernel, all calls */
  uint64_t os_giveups;    /* capped retries that gave up */
  uint64_t os_failures;   /* kernel calls that failed for good */
  uint64_t enomem_returns;/* allocations answered NULL/ENOMEM */
  uint64_t decommit_failures; /* allocator and page API */
} vam_health_t;
/* Returns the status; fills out when it is not NULL.  Never allocates. */
VAM_API int vam_health(vam_health_t *out);

#ifdef __cplusplus
}
#endif
#endif /* VAMALLOC_H */
