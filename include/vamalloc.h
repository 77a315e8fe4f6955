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

#ifdef __cplusplus
}
#endif
#endif /* VAMALLOC_H */
