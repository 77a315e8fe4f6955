/* huge.c: objects above VAM_LARGE_MAX, each with a mapping of its own,
 * carved from the region pool (region.c).
 *
 * An object starts on a chunk boundary with a PROT_NONE guard page and then
 * a one-page header, so free() finds the header by the same masking as for
 * chunks, and a linear overflow off whatever lies below (the previous
 * object of the region, another mapping) faults on the guard instead of
 * rewriting the header.  mremap moves only what follows the guard.  Over-aligned objects
 * (alignment above a page) sit further in; the chunk holding the user
 * pointer is then marked HUGE_USER in the chunk map and the header is found
 * by stepping back chunk by chunk to the HUGE_HEAD mark. */
#include "internal.h"

/* The header of the object mapped at base: past the front guard page. */
static inline vam_huge_t *header_at(uintptr_t base) {
  return (vam_huge_t *)(base + vam__os_config.page_size);
}

/* Put the front guard up on a fresh or reused range (the kernel may say
 * no: the object then goes without, counted). */
static void front_guard(vam_huge_t *h) {
  h->front_guarded = 0;
  if (vam__os_noaccess(h->map_base, vam__os_config.page_size) == 0) {
    h->front_guarded = 1;
    vam__va_note_split(2);
  } else {
    VAM_COUNT(huge_guard_failures);
  }
}

/* Lift it before the range goes back to the pool; false: the kernel said
 * no, and the range must be leaked (reused, it would fault). */
static bool front_unguard(vam_huge_t *h) {
  if (!h->front_guarded) return true;
  if (vam__os_commit(h->map_base, vam__os_config.page_size) != 0) return false;
  h->front_guarded = 0;
  vam__va_note_split(-2);
  return true;
}

/* A pooled range keeps the heads of the blocks freed in it marked
 * (HUGE_FREED, so a second free of one is named a double free).  Memory
 * taken from the pool for a live block loses those marks first, or an
 * address inside the new block would read as "double free" (free) or
 * "invalid pointer" (realloc, usable_size) instead of "interior free". */
static void forget_freed_heads(uint8_t *from, uint8_t *to) {
  uintptr_t c = vam_align_up((uintptr_t)from, VAM_CHUNK_SIZE);
  for (; c < (uintptr_t)to; c += VAM_CHUNK_SIZE)
    if (vam__chunkmap_kind(c) == VAM_MAP_HUGE_FREED) vam__chunkmap_set(c, VAM_MAP_NONE);
}

void *vam__huge_alloc(size_t size, size_t align, bool zero, bool *no_memory) {
  size_t page = vam__os_config.page_size;
  if (align < page) align = page;
  size_t header = align > 2 * page ? align : 2 * page; /* guard + header */
  if (size > PTRDIFF_MAX - header - VAM_CHUNK_SIZE) return NULL;
  size_t usable = vam_align_up(size, page) + (VAM_SECURE_BUILD ? page : 0);
  size_t map_size = header + usable;
  size_t map_align = VAM_CHUNK_SIZE > align ? VAM_CHUNK_SIZE : align;
  bool zeroed = false;
  uint8_t *base = vam__region_take(map_size, map_align, &zeroed);
  vam__purge_note(); /* alloc.c ticks after: what is reused is not purged first */
  if (base && vam__va_commit(base, map_size) != 0) {
    vam__region_put(base, map_size); /* strict mode could not charge it again */
    base = NULL;
  }
  if (base) {
    VAM_COUNT(huge_cache_hits);
  } else {
    VAM_COUNT(huge_cache_misses);
    zeroed = true; /* fresh pages */
    base = vam__region_new(map_size, map_align, false);
    if (base == NULL) {
      *no_memory = true; /* alloc.c releases what is held unused, tries again */
      return NULL;
    }
  }
  uint8_t *user = base + header;
  forget_freed_heads(base + VAM_CHUNK_SIZE, base + map_size);
  if (vam__chunkmap_set((uintptr_t)base, VAM_MAP_HUGE_HEAD) != 0 ||
      (vam__chunk_of(user) != (vam_chunk_t *)base &&
       vam__chunkmap_set((uintptr_t)user, VAM_MAP_HUGE_USER) != 0)) {
    vam__chunkmap_set((uintptr_t)base, VAM_MAP_NONE);
    vam__region_put(base, map_size);
    return NULL;
  }
  vam_huge_t *h = header_at((uintptr_t)base);
  h->magic = VAM_HUGE_MAGIC;
  h->map_base = base;
  h->map_size = map_size;
  h->user = user;
  h->usable = usable;
  h->heap = NULL;
  h->heap_next = h->heap_prev = NULL;
  h->guarded = 0;
  front_guard(h);
  if (zero && !zeroed) memset(user, 0, size);
  if (VAM_SECURE_BUILD && vam__os_noaccess(user + usable - page, page) == 0) {
    /* Secure: the last page (added for it above) traps an overflow. */
    h->guarded = 1;
    h->usable -= page;
    vam__va_note_split(2);
  }
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
  vam_huge_t *h = header_at(a);
  if (h->magic != VAM_HUGE_MAGIC || h->user != (const uint8_t *)p) return NULL;
  return h;
}

/* Is p inside a live huge object (for naming a misuse)?  Steps back over
 * at most 256 chunks (1 GiB) of the map to a head. */
bool vam__huge_contains(const void *p) {
  uintptr_t a = (uintptr_t)p & ~(uintptr_t)VAM_CHUNK_MASK;
  for (size_t steps = 0; steps < 256 && a >= VAM_CHUNK_SIZE; steps++, a -= VAM_CHUNK_SIZE) {
    unsigned kind = vam__chunkmap_kind(a);
    if (kind == VAM_MAP_CHUNK) return false;
    if (kind != VAM_MAP_HUGE_HEAD) continue;
    const vam_huge_t *h = header_at(a);
    return h->magic == VAM_HUGE_MAGIC && (const uint8_t *)p > h->user &&
           (const uint8_t *)p < h->user + h->usable;
  }
  return false;
}

/* A freed huge block whose guard could not be lifted: its range is leaked
 * (never reused: it would fault), but the free happened, so it counts as
 * one (huge_frees: free_calls stays exact) and a second free of it is
 * still reported as a double free. */
static void huge_free_leaked(vam_huge_t *h, size_t counted) {
  vam__chunkmap_set((uintptr_t)h->map_base, VAM_MAP_HUGE_FREED);
  if (vam__chunk_of(h->user) != (vam_chunk_t *)h->map_base) vam__chunkmap_set((uintptr_t)h->user, VAM_MAP_NONE);
  h->magic = 0;
  VAM_GAUGE(committed_bytes, -(int64_t)counted);
  VAM_GAUGE(huge_bytes, -(int64_t)counted);
  VAM_COUNT(huge_leaked);
  VAM_COUNT(huge_frees);
}

void vam__huge_free(vam_huge_t *h) {
  uint8_t *base = h->map_base;
  size_t map_size = h->map_size, usable = h->usable;
  uint8_t *user = h->user;
  if (!front_unguard(h)) {
    huge_free_leaked(h, usable + (h->guarded ? vam__os_config.page_size : 0));
    return;
  }
  if (h->guarded) {
    /* The range goes back to the pool: lift the guard first, or leak the
     * range (never reuse memory that would fault). */
    if (vam__os_commit(user + usable, vam__os_config.page_size) != 0) {
      huge_free_leaked(h, usable + vam__os_config.page_size);
      return;
    }
    h->guarded = 0;
    vam__va_note_split(-2);
    usable += vam__os_config.page_size; /* the gauges counted it */
  }
  /* The head stays marked (HUGE_FREED) while the range is pooled, so a
   * second free of it is reported as what it is. */
  vam__chunkmap_set((uintptr_t)base, VAM_MAP_HUGE_FREED);
  if (vam__chunk_of(user) != (vam_chunk_t *)base) vam__chunkmap_set((uintptr_t)user, VAM_MAP_NONE);
  h->magic = 0;
  VAM_GAUGE(committed_bytes, -(int64_t)usable);
  VAM_GAUGE(huge_bytes, -(int64_t)usable);
  VAM_COUNT(huge_frees);
  vam__region_put(base, map_size);
  vam__purge_note();
}

/* Resize without copying where possible.  Shrink gives the tail to the
 * pool; grow takes the free range right after the object; an object alone
 * in its region is resized with mremap, in place or by moving its pages to
 * a fresh reservation (MREMAP_FIXED, so the header stays chunk-aligned).
 * Otherwise the object is copied once into a region of its own, so the
 * next growth can use mremap.  NULL: out of memory, h unchanged. */
static bool alone_in_region(const vam_huge_t *h) { return vam__region_alone(h->map_base, h->map_size); }

static void *huge_remap(vam_huge_t *h, size_t new_map, size_t usable) {
  size_t page = vam__os_config.page_size;
  uint8_t *old_base = h->map_base, *new_base = old_base;
  size_t old_map = h->map_size, header = (size_t)(h->user - h->map_base);
  void *out = NULL;
  /* The guard page stays where it is (a second mapping: mremap takes one). */
  if (vam__va_remap(old_base + page, old_map - page, new_map - page, NULL, &out) != 0) {
    if (header != 2 * page) return NULL; /* over-aligned ones copy */
    void *target = NULL;
    if (vam__va_reserve(new_map, VAM_CHUNK_SIZE, true, &target) != 0) return NULL;
    if (vam__chunkmap_set((uintptr_t)target, VAM_MAP_HUGE_HEAD) != 0) {
      vam__va_release(target, new_map);
      return NULL;
    }
    /* The old range (header included) goes with the move, and anyone may
     * map it the moment mremap returns: forget its head before, so a chunk
     * mapped there keeps its entry; put it back if the move fails. */
    vam__chunkmap_set((uintptr_t)old_base, VAM_MAP_NONE);
    if (vam__va_remap(old_base + page, old_map - page, new_map - page, (uint8_t *)target + page, &out) != 0) {
      vam__chunkmap_set((uintptr_t)old_base, VAM_MAP_HUGE_HEAD); /* its leaf exists */
      vam__chunkmap_set((uintptr_t)target, VAM_MAP_NONE);
      vam__va_release(target, new_map);
      return NULL;
    }
    /* The old first page stayed behind: unmap it (if the kernel refuses,
     * it stays reserved, harmless); guard the new base. */
    new_base = target;
    h = header_at((uintptr_t)new_base);
    if (h->front_guarded) vam__va_note_split(-2);
    vam__va_release(old_base, page);
    h->map_base = new_base;
    front_guard(h);
  }
  vam__region_moved(old_base, new_base, new_map);
  h->map_base = new_base;
  h->map_size = new_map;
  h->user = new_base + header;
  h->usable = usable;
  return h->user;
}

/* The object ends where its region ends (under no lock). */
static bool at_region_end(const vam_huge_t *h) { return vam__region_at_end(h->map_base, h->map_size); }

/* Grow the region's last object in place with mremap (never moves). */
static void *huge_grow_in_place(vam_huge_t *h, size_t new_map, size_t usable) {
  void *out = NULL;
  size_t more = new_map - h->map_size, page = vam__os_config.page_size;
  if (vam__va_remap(h->map_base + page, h->map_size - page, new_map - page, NULL, &out) != 0) return NULL;
  vam__region_grew(h->map_base, more);
  h->map_size = new_map;
  h->usable = usable;
  return h->user;
}

void *vam__huge_realloc(vam_huge_t *h, size_t size) {
  size_t page = vam__os_config.page_size;
  size_t usable = vam_align_up(size, page);
  size_t header = (size_t)(h->user - h->map_base);
  if (usable == h->usable) return h->user;
  size_t old_map = h->map_size, new_map = header + usable, old_usable = h->usable;
  uint8_t *end = h->map_base + old_map;
  void *result = h->user;
  if (new_map < old_map) {
    bool alone = alone_in_region(h);
    /* Alone in its region: mremap hands the tail's address space back;
     * otherwise the tail joins the pool. */
    if (!alone || huge_remap(h, new_map, usable) == NULL) {
      vam__region_put(end - (old_map - new_map), old_map - new_map);
      h->map_size = new_map;
      h->usable = usable;
    }
  } else {
    size_t more = new_map - old_map;
    bool alone = alone_in_region(h);
    bool got = !alone && vam__region_take_next(h->map_base, old_map, more);
    if (!got) result = NULL;
    if (got) {
      if (vam__va_commit(end, more) != 0) {
        vam__region_put(end, more);
        return NULL;
      }
      forget_freed_heads(end, end + more);
      h->map_size = new_map;
      h->usable = usable;
    } else if (alone || at_region_end(h)) {
      /* mremap: alone, in place or moved; at the end of a shared region,
       * in place only (a move would leave a hole in the region). */
      result = alone ? huge_remap(h, new_map, usable) : huge_grow_in_place(h, new_map, usable);
      if (result == NULL && alone) return NULL;
    }
    if (!got && result == NULL) {
      /* Copy once into a region of its own (over-aligned ones: the
       * caller's malloc+copy). */
      if (header != 2 * page) return NULL;
      uint8_t *base = vam__region_new(new_map, VAM_CHUNK_SIZE, true);
      if (base == NULL) return NULL;
      if (vam__chunkmap_set((uintptr_t)base, VAM_MAP_HUGE_HEAD) != 0) {
        vam__region_put(base, new_map);
        return NULL;
      }
      vam_huge_t *n = header_at((uintptr_t)base);
      *n = *h;
      n->map_base = base;
      n->map_size = new_map;
      n->user = base + header;
      n->usable = usable;
      front_guard(n);
      memcpy(n->user, h->user, old_usable);
      n->heap_next = n->heap_prev = NULL; /* userheap.c never reaches here */
      VAM_GAUGE(committed_bytes, -(int64_t)old_usable);
      VAM_GAUGE(huge_bytes, -(int64_t)old_usable);
      vam__chunkmap_set((uintptr_t)h->map_base, VAM_MAP_NONE);
      h->magic = 0;
      if (front_unguard(h)) vam__region_put(h->map_base, old_map);
      else VAM_COUNT(huge_leaked);
      result = n->user;
      VAM_GAUGE(committed_bytes, usable);
      VAM_GAUGE(huge_bytes, usable);
      VAM_COUNT(huge_realloc_copies);
      return result;
    }
  }
  int64_t delta = (int64_t)usable - (int64_t)old_usable;
  VAM_GAUGE(committed_bytes, delta);
  VAM_GAUGE(huge_bytes, delta);
  return result;
}
