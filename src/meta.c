/* meta.c: memory for the allocator's own metadata (thread heaps, chunk-map
 * leaves), with reuse.
 *
 * Why not a bump pointer: a metadata pool that only grows is how a guest
 * page-table pool ran dry under V8 isolates (why.md item 4).  Objects are
 * carved from 64 KiB OS regions and every freed object goes on a free list
 * for its exact size, so create/destroy churn reaches a steady state.  A
 * failed reservation leaves every list as it was. */
#include "internal.h"

#define META_REGION ((size_t)64 * 1024)
#define META_SIZES 8
#define META_ALIGN 64

/* Under AddressSanitizer (the asan test suite) each object is followed by
 * a poisoned redzone, and free objects (but their list link) and the
 * unused tail of a region are poisoned, so an overrun of one metadata
 * object is reported instead of landing in the next. */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define META_REDZONE ((size_t)META_ALIGN)
#define META_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define META_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define META_REDZONE ((size_t)0)
#define META_POISON(p, n) ((void)(p), (void)(n))
#define META_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

typedef struct meta_free {
  struct meta_free *next;
} meta_free_t;

pthread_mutex_t vam__meta_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
  size_t size;
  meta_free_t *free;
} lists[META_SIZES];
static uint8_t *bump, *bump_end;

static meta_free_t **free_list_for(size_t size) {
  for (size_t i = 0; i < META_SIZES; i++) {
    if (lists[i].size == size) return &lists[i].free;
    if (lists[i].size == 0) {
      lists[i].size = size;
      return &lists[i].free;
    }
  }
  return NULL;
}

void *vam__meta_alloc(size_t size) {
  size = vam_align_up(size, META_ALIGN);
  pthread_mutex_lock(&vam__meta_lock);
  meta_free_t **list = free_list_for(size);
  if (list && *list) {
    meta_free_t *m = *list;
    *list = m->next;
    META_UNPOISON(m, size);
    pthread_mutex_unlock(&vam__meta_lock);
    memset(m, 0, size);
    return m;
  }
  if (bump == NULL || (size_t)(bump_end - bump) < size + META_REDZONE) {
    size_t region = size + META_REDZONE > META_REGION
                        ? vam_align_up(size + META_REDZONE, vam__os_config.page_size)
                        : META_REGION;
    void *p = NULL;
    if (vam__va_reserve(region, vam__os_config.page_size, true, &p) != 0) {
      pthread_mutex_unlock(&vam__meta_lock);
      vam__health_fail(VAM_HEALTH_META, "metadata allocation failed");
      return NULL;
    }
    vam__health_ok(VAM_HEALTH_META, "metadata allocation works again");
    /* The old region's tail (smaller than this object) is abandoned: at
     * most one partial object per 64 KiB region. */
    bump = p;
    bump_end = (uint8_t *)p + region;
    META_POISON(bump, region);
  }
  void *m = bump;
  META_UNPOISON(m, size);
  bump += size + META_REDZONE;
  pthread_mutex_unlock(&vam__meta_lock);
  return m; /* fresh from the OS: zeroed */
}

void vam__meta_free(void *p, size_t size) {
  if (p == NULL) return;
  size = vam_align_up(size, META_ALIGN);
  pthread_mutex_lock(&vam__meta_lock);
  meta_free_t **list = free_list_for(size);
  if (list) {
    meta_free_t *m = p;
    m->next = *list;
    *list = m;
    META_POISON((uint8_t *)m + sizeof *m, size - sizeof *m);
  }
  pthread_mutex_unlock(&vam__meta_lock);
}
