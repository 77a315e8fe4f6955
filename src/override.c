/* override.c: the standard malloc names, for the shared library (always) and
 * for the static library when built with -Doverride=true.
 *
 * Besides the C names, glibc's __libc_* entry points are served so that
 * code calling them directly (some runtimes and glibc itself) cannot slip
 * past vamalloc and hand glibc a vamalloc pointer or the reverse. */
#include <stddef.h>
#include "vamalloc.h"

#define VAM_OVERRIDE_API __attribute__((visibility("default")))
#define H(name) name##__h
extern __typeof(vam_malloc) vam_malloc__h;
extern __typeof(vam_free) vam_free__h;
extern __typeof(vam_calloc) vam_calloc__h;
extern __typeof(vam_realloc) vam_realloc__h;
extern __typeof(vam_reallocarray) vam_reallocarray__h;
extern __typeof(vam_posix_memalign) vam_posix_memalign__h;
extern __typeof(vam_aligned_alloc) vam_aligned_alloc__h;
extern __typeof(vam_memalign) vam_memalign__h;
extern __typeof(vam_valloc) vam_valloc__h;
extern __typeof(vam_pvalloc) vam_pvalloc__h;
extern __typeof(vam_usable_size) vam_usable_size__h;
extern __typeof(vam_free_sized) vam_free_sized__h;
extern __typeof(vam_free_aligned_sized) vam_free_aligned_sized__h;

/* malloc and free themselves are aliases defined in alloc.c. */
VAM_OVERRIDE_API void *calloc(size_t c, size_t n) { return H(vam_calloc)(c, n); }
VAM_OVERRIDE_API void *realloc(void *p, size_t n) { return H(vam_realloc)(p, n); }
VAM_OVERRIDE_API void *reallocarray(void *p, size_t c, size_t n) { return H(vam_reallocarray)(p, c, n); }
VAM_OVERRIDE_API int posix_memalign(void **m, size_t a, size_t n) { return H(vam_posix_memalign)(m, a, n); }
VAM_OVERRIDE_API void *aligned_alloc(size_t a, size_t n) { return H(vam_aligned_alloc)(a, n); }
VAM_OVERRIDE_API void *memalign(size_t a, size_t n) { return H(vam_memalign)(a, n); }
VAM_OVERRIDE_API void *valloc(size_t n) { return H(vam_valloc)(n); }
VAM_OVERRIDE_API void *pvalloc(size_t n) { return H(vam_pvalloc)(n); }
VAM_OVERRIDE_API size_t malloc_usable_size(void *p) { return H(vam_usable_size)(p); }
VAM_OVERRIDE_API void free_sized(void *p, size_t n) { H(vam_free_sized)(p, n); }
VAM_OVERRIDE_API void free_aligned_sized(void *p, size_t a, size_t n) { H(vam_free_aligned_sized)(p, a, n); }
VAM_OVERRIDE_API void cfree(void *p) { H(vam_free)(p); }

VAM_OVERRIDE_API void *__libc_malloc(size_t n) { return H(vam_malloc)(n); }
VAM_OVERRIDE_API void __libc_free(void *p) { H(vam_free)(p); }
VAM_OVERRIDE_API void *__libc_calloc(size_t c, size_t n) { return H(vam_calloc)(c, n); }
VAM_OVERRIDE_API void *__libc_realloc(void *p, size_t n) { return H(vam_realloc)(p, n); }
VAM_OVERRIDE_API void *__libc_memalign(size_t a, size_t n) { return H(vam_memalign)(a, n); }
VAM_OVERRIDE_API void *__libc_valloc(size_t n) { return H(vam_valloc)(n); }
VAM_OVERRIDE_API void *__libc_pvalloc(size_t n) { return H(vam_pvalloc)(n); }
VAM_OVERRIDE_API int __posix_memalign(void **m, size_t a, size_t n) { return H(vam_posix_memalign)(m, a, n); }

/* glibc's malloc_trim only knows glibc's arenas; ours gives back cached
 * chunks.  Returns 1 when memory was released, as glibc does. */
extern void vam__chunk_release_cached(void);
VAM_OVERRIDE_API int malloc_trim(size_t pad) {
  (void)pad;
  vam__chunk_release_cached();
  return 1;
}

/* The host shim (hostshim.c): the program's own madvise/mincore calls get
 * the capped retry too. */
extern int vam__host_madvise(void *addr, size_t len, int advice);
extern int vam__host_mincore(void *addr, size_t len, unsigned char *vec);
VAM_OVERRIDE_API int madvise(void *addr, size_t len, int advice) {
  return vam__host_madvise(addr, len, advice);
}
VAM_OVERRIDE_API int mincore(void *addr, size_t len, unsigned char *vec) {
  return vam__host_mincore(addr, len, vec);
}
