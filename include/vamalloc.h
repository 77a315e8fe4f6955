/* vamalloc: a C11 userspace memory allocator that keeps working when the
 * kernel says no.
 *
 * Every function here is also reachable under the standard name (malloc,
 * free, ...) when libvamalloc.so is preloaded.  The static library exports
 * only the vam_ names, so a runtime can link it beside libc malloc.
 *
 * Errors: every allocation failure returns NULL with errno = ENOMEM
 * (including size overflow and sizes above PTRDIFF_MAX).  posix_memalign
 * returns EINVAL or ENOMEM and leaves *memptr untouched.
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
/* C23 sized deallocation.  The size (and alignment) are hints checked
 * only in the slow path; a wrong size never corrupts the heap. */
VAM_API void vam_free_sized(void *ptr, size_t size);
VAM_API void vam_free_aligned_sized(void *ptr, size_t alignment, size_t size);

/* Give free memory back to the OS now: what has been idle for the purge
 * delay, or, with force, everything free (and the cache of freed huge
 * mappings).  Also drains the heaps of exited threads. */
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
  const char *name;    /* shown in statistics (copied, at most 31 chars) */
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
 * call goes through the capped EAGAIN retry, and every reservation counts
 * against vamalloc's VA budget and map cap.  Calls return 0 or an errno and
 * never spin or abort.  Sizes and addresses are multiples of the OS page
 * size (vam_page_size()).  Semantics: see README "Page API". */
enum {
  VAM_PAGES_COMMIT = 1u << 0,   /* reserve: commit the whole range at once */
  VAM_PAGES_DONTDUMP = 1u << 1, /* reserve/decommit: exclude from core dumps */
};
VAM_API size_t vam_page_size(void);
/* Reserve size bytes aligned to alignment (a power of two; 0 = page).
 * NULL with errno = EINVAL (bad size/alignment) or ENOMEM (budget, map cap
 * or kernel said no). */
VAM_API void *vam_pages_reserve(size_t size, size_t alignment, unsigned flags);
VAM_API int vam_pages_commit(void *addr, size_t size);
VAM_API int vam_pages_decommit(void *addr, size_t size, unsigned flags);
VAM_API int vam_pages_release(void *addr, size_t size);

/* ---- statistics and health --------------------------------------------- */
typedef struct vam_stats_t vam_stats_t; /* defined below */
/* Fill the first struct_size bytes of out (pass sizeof(vam_stats_t); a
 * binary built against an older, shorter struct gets the fields it knows).
 * Returns the number of bytes filled, or 0 with errno = EINVAL. */
VAM_API size_t vam_stats_get(vam_stats_t *out, size_t struct_size);

enum { VAM_HEALTH_OK = 0, VAM_HEALTH_DEGRADED = 1 };
typedef struct vam_health_t {
  int status;             /* VAM_HEALTH_OK or VAM_HEALTH_DEGRADED */
  const char *reason;     /* static string; "" when ok */
  uint64_t degrade_events;/* times the process went from ok to degraded */
  uint64_t os_eagain;     /* EAGAIN answers from the kernel, all calls */
  uint64_t os_giveups;    /* capped retries that gave up */
  uint64_t os_failures;   /* kernel calls that failed for good */
  uint64_t enomem_returns;/* allocations answered NULL/ENOMEM */
  uint64_t decommit_failures;
} vam_health_t;
/* Returns status; fills out when it is not NULL. */
VAM_API int vam_health(vam_health_t *out);

#ifdef __cplusplus
}
#endif
#endif /* VAMALLOC_H */
