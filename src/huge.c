/* huge.c: objects above VAM_LARGE_MAX, each in its own mapping.
 *
 * The mapping starts on a chunk boundary with a one-page header, so free()
 * finds the header by the same masking as for chunks.  Over-aligned objects
 * (alignment above a page) sit further in; the chunk holding the user
 * pointer is then marked HUGE_USER in the chunk map and the header is found
 * by stepping back chunk by chunk to the HUGE_HEAD mark.  (Pooling of huge
 * mappings is the large-region pool's job.) */
#include "internal.h"

void *vam__huge_alloc(size_t size, size_t align, bool zero) {
  (void)zero; /* fresh mappings read as zeroes */
  size_t page = vam__os_config.page_size;
  if (align < page) align = page;
  size_t header = align > page ? align : page;
  if (size > PTRDIFF_MAX - header - page) return NULL;
  size_t usable = vam_align_up(size, page);
  size_t map_size = header + usable;
  void *base = NULL;
  if (vam__os_reserve(map_size, VAM_CHUNK_SIZE > align ? VAM_CHUNK_SIZE : align, &base) != 0) {
    vam__heap_pool_collect();
    vam__chunk_release_cached();
    if (vam__os_reserve(map_size, VAM_CHUNK_SIZE > align ? VAM_CHUNK_SIZE : align, &base) != 0)
      return NULL;
    VAM_COUNT(fallback_allocs);
  }
  uint8_t *user = (uint8_t *)base + header;
  if (vam__chunkmap_set((uintptr_t)base, VAM_MAP_HUGE_HEAD) != 0) {
    vam__os_release(base, map_size);
    return NULL;
  }
  if (vam__chunk_of(user) != (vam_chunk_t *)base &&
      vam__chunkmap_set((uintptr_t)user, VAM_MAP_HUGE_USER) != 0) {
    vam__chunkmap_set((uintptr_t)base, VAM_MAP_NONE);
    vam__os_release(base, map_size);
    return NULL;
  }
  vam_huge_t *h = base;
  h->magic = VAM_HUGE_MAGIC;
  h->map_base = base;
  h->map_size = map_size;
  h->user = user;
  h->usable = usable;
  VAM_GAUGE(reserved_bytes, map_size);
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
    /* Bounded by the largest alignment we serve (1 GiB = 256 chunks)... and
     * by the user pointer's distance from its header in any case. */
    for (size_t steps = 0; steps < ((size_t)1 << 20) && kind != VAM_MAP_HUGE_HEAD; steps++) {
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
  if (vam__os_release(base, map_size) != 0) {
    /* The kernel refused (a split past vm.max_map_count): the range stays
     * mapped, so give its pages back at least, and count it. */
    vam__os_decommit(base, map_size, NULL);
    VAM_COUNT(chunk_release_failures);
    vam__health_degraded("munmap of a huge object failed; range leaked as decommitted");
  } else {
    VAM_GAUGE(reserved_bytes, -(int64_t)map_size);
  }
  VAM_GAUGE(committed_bytes, -(int64_t)usable);
  VAM_GAUGE(huge_bytes, -(int64_t)usable);
  VAM_COUNT(huge_frees);
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
  if (vam__os_remap(h->map_base, old_map, new_map, NULL, &out) == 0) {
    h->map_size = new_map;
    h->usable = usable;
  } else {
    if (header != page || usable < h->usable) return NULL; /* aligned ones copy */
    void *target = NULL;
    if (vam__os_reserve(new_map, VAM_CHUNK_SIZE, &target) != 0) return NULL;
    if (vam__chunkmap_set((uintptr_t)target, VAM_MAP_HUGE_HEAD) != 0) {
      vam__os_release(target, new_map);
      return NULL;
    }
    uint8_t *old_base = h->map_base;
    if (vam__os_remap(old_base, old_map, new_map, target, &out) != 0) {
      vam__chunkmap_set((uintptr_t)target, VAM_MAP_NONE);
      vam__os_release(target, new_map);
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
  VAM_GAUGE(reserved_bytes, (int64_t)new_map - (int64_t)old_map);
  VAM_GAUGE(committed_bytes, delta);
  VAM_GAUGE(huge_bytes, delta);
  return h->user;
}
