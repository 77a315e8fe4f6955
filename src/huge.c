/* huge.c: objects above VAM_LARGE_MAX, each in its own mapping.
 *
 * The mapping starts on a chunk boundary with a one-page header, so free()
 * finds the header by the same masking as for chunks.  Over-aligned objects
 * (alignment above a page) sit further in; the chunk holding the user
 * pointer is then marked HUGE_USER in the chunk map and the header is found
 * by stepping back chunk by chunk to the HUGE_HEAD mark.
 *
 * When the kernel refuses to unmap a huge range (munmap can fail with
 * ENOMEM when it would split a VMA past vm.max_map_count), the range stays
 * in the books: it is decommitted and kept on a small list, from which later
 * huge allocations are served and whose release is retried on every huge
 * free.  Nothing is forgotten, so a later munmap of anything handed out
 * still works (why.md item 4).  (Pooling huge mappings for speed is the
 * large-region pool's job.) */
#include "internal.h"

#define RETAINED_MAX 64
static pthread_mutex_t retained_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
  uint8_t *base;
  size_t size;
} retained[RETAINED_MAX];
static size_t retained_count; /* written under retained_lock; peeked without */
static inline size_t retained_peek(void) { return __atomic_load_n(&retained_count, __ATOMIC_RELAXED); }

static void retain(uint8_t *base, size_t size) {
  vam__va_decommit(base, size, NULL);
  pthread_mutex_lock(&retained_lock);
  if (retained_count < RETAINED_MAX) {
    retained[retained_count].base = base;
    retained[retained_count].size = size;
    retained_count++;
    VAM_COUNT(huge_retained);
  } else {
    VAM_COUNT(huge_leaked);
  }
  pthread_mutex_unlock(&retained_lock);
}

/* Take a kept range of at least size bytes (chunk-aligned, and aligned to
 * align).  The smallest that fits, so big ones stay for big requests. */
static uint8_t *take_retained(size_t size, size_t align, size_t *got) {
  uint8_t *base = NULL;
  pthread_mutex_lock(&retained_lock);
  size_t best = RETAINED_MAX;
  for (size_t i = 0; i < retained_count; i++)
    if (retained[i].size >= size && ((uintptr_t)retained[i].base & (align - 1)) == 0 &&
        (best == RETAINED_MAX || retained[i].size < retained[best].size))
      best = i;
  if (best != RETAINED_MAX) {
    base = retained[best].base;
    *got = retained[best].size;
    retained[best] = retained[--retained_count];
  }
  pthread_mutex_unlock(&retained_lock);
  return base;
}

/* Try once more to give one kept range back. */
static void release_one_retained(void) {
  pthread_mutex_lock(&retained_lock);
  if (retained_count == 0) {
    pthread_mutex_unlock(&retained_lock);
    return;
  }
  uint8_t *base = retained[retained_count - 1].base;
  size_t size = retained[retained_count - 1].size;
  retained_count--;
  pthread_mutex_unlock(&retained_lock);
  if (vam__va_release(base, size) != 0) {
    pthread_mutex_lock(&retained_lock);
    retained[retained_count].base = base; /* the slot we just freed */
    retained[retained_count].size = size;
    retained_count++;
    pthread_mutex_unlock(&retained_lock);
  }
}

void *vam__huge_alloc(size_t size, size_t align, bool zero) {
  size_t page = vam__os_config.page_size;
  if (align < page) align = page;
  size_t header = align > page ? align : page;
  if (size > PTRDIFF_MAX - header - page) return NULL;
  size_t usable = vam_align_up(size, page);
  size_t map_size = header + usable;
  size_t map_align = VAM_CHUNK_SIZE > align ? VAM_CHUNK_SIZE : align;
  void *base = NULL;
  bool from_retained = false;
  size_t got = 0;
  if (retained_peek() && (base = take_retained(map_size, map_align, &got)) != NULL &&
      vam__va_commit(base, got) != 0) {
    retain(base, got); /* strict mode could not charge it again: keep it */
    base = NULL;
  }
  if (base) {
    /* A kept range: decommitted when kept, so it may hold old bytes only if
     * that decommit failed; zero what the caller will see if asked. */
    map_size = got;
    usable = map_size - header;
    from_retained = true;
    VAM_COUNT(huge_reused);
  } else if (vam__va_reserve(map_size, map_align, true, &base) != 0) {
    vam__heap_pool_collect();
    vam__chunk_release_cached();
    if (vam__va_reserve(map_size, map_align, true, &base) != 0) return NULL;
    VAM_COUNT(fallback_allocs);
  }
  uint8_t *user = (uint8_t *)base + header;
  if (vam__chunkmap_set((uintptr_t)base, VAM_MAP_HUGE_HEAD) != 0 ||
      (vam__chunk_of(user) != (vam_chunk_t *)base &&
       vam__chunkmap_set((uintptr_t)user, VAM_MAP_HUGE_USER) != 0)) {
    vam__chunkmap_set((uintptr_t)base, VAM_MAP_NONE);
    if (from_retained || vam__va_release(base, map_size) != 0) retain(base, map_size);
    return NULL;
  }
  vam_huge_t *h = base;
  h->magic = VAM_HUGE_MAGIC;
  h->map_base = base;
  h->map_size = map_size;
  h->user = user;
  h->usable = usable;
  if (from_retained && zero) memset(user, 0, size);
  VAM_GAUGE(committed_bytes, usable);
  VAM_GAUGE(huge_bytes, usable);
  VAM_COUNT(huge_allocs);
  return user;
}

/* The header of the huge object holding p, or NULL when p is not the start
 * of a live huge object. */
vam_huge_t *vam__huge_of(const void *p) {
  uintptr_t a = (uintptr_t)p & ~(uintptr_t)VAM_CHUNK_MASK;
  unsigned kind = vam__chunkmap_kind(a);
  if (kind == VAM_MAP_HUGE_USER) {
    /* The header is at most the largest alignment served (2^40) back. */
    for (size_t steps = 0; steps < ((size_t)1 << 18) && kind != VAM_MAP_HUGE_HEAD; steps++) {
      a -= VAM_CHUNK_SIZE;
      kind = vam__chunkmap_kind(a);
      if (kind == VAM_MAP_CHUNK) return NULL;
    }
  }
  if (kind != VAM_MAP_HUGE_HEAD) return NULL;
  vam_huge_t *h = (vam_huge_t *)a;
  if (h->magic != VAM_HUGE_MAGIC || h->user != (const uint8_t *)p) return NULL;
  return h;
}

void vam__huge_free(vam_huge_t *h) {
  uint8_t *base = h->map_base;
  size_t map_size = h->map_size, usable = h->usable;
  uint8_t *user = h->user;
  vam__chunkmap_set((uintptr_t)base, VAM_MAP_NONE);
  if (vam__chunk_of(user) != (vam_chunk_t *)base) vam__chunkmap_set((uintptr_t)user, VAM_MAP_NONE);
  h->magic = 0;
  VAM_GAUGE(committed_bytes, -(int64_t)usable);
  VAM_GAUGE(huge_bytes, -(int64_t)usable);
  VAM_COUNT(huge_frees);
  if (retained_peek()) release_one_retained();
  if (vam__va_release(base, map_size) != 0) retain(base, map_size);
}

/* Resize without copying where the kernel can: in place first, else move
 * the pages onto a fresh chunk-aligned reservation (mremap with
 * MREMAP_FIXED, so the header stays findable by masking).  NULL means the
 * caller must copy; h is then unchanged. */
void *vam__huge_realloc(vam_huge_t *h, size_t size) {
  size_t page = vam__os_config.page_size;
  size_t usable = vam_align_up(size, page);
  size_t header = (size_t)(h->user - h->map_base);
  if (usable == h->usable) return h->user;
  size_t old_map = h->map_size, new_map = header + usable;
  int64_t delta = (int64_t)usable - (int64_t)h->usable;
  void *out = NULL;
  if (vam__va_remap(h->map_base, old_map, new_map, NULL, &out) == 0) {
    h->map_size = new_map;
    h->usable = usable;
  } else {
    if (header != page || usable < h->usable) return NULL; /* aligned ones copy */
    void *target = NULL;
    if (vam__va_reserve(new_map, VAM_CHUNK_SIZE, true, &target) != 0) return NULL;
    if (vam__chunkmap_set((uintptr_t)target, VAM_MAP_HUGE_HEAD) != 0) {
      if (vam__va_release(target, new_map) != 0) retain(target, new_map);
      return NULL;
    }
    uint8_t *old_base = h->map_base;
    if (vam__va_remap(old_base, old_map, new_map, target, &out) != 0) {
      vam__chunkmap_set((uintptr_t)target, VAM_MAP_NONE);
      if (vam__va_release(target, new_map) != 0) retain(target, new_map);
      return NULL;
    }
    /* The old range is gone (moved), and the header with it: h is stale. */
    vam__chunkmap_set((uintptr_t)old_base, VAM_MAP_NONE);
    h = out;
    h->map_base = out;
    h->map_size = new_map;
    h->user = (uint8_t *)out + header;
    h->usable = usable;
  }
  VAM_GAUGE(committed_bytes, delta);
  VAM_GAUGE(huge_bytes, delta);
  return h->user;
}
