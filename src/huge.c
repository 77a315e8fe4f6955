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

/* Freed huge mappings kept for reuse (the large-region pool for huge
 * objects), and ranges the kernel refused to unmap.  Both are decommitted
 * after the purge delay; refused ones are also released again whenever a
 * huge object is freed.  Bounded in entries (no metadata grows) and in
 * bytes (VAMALLOC_LARGE_POOL_MAX, and 1/8 of the VA budget). */
#define CACHE_MAX 64
pthread_mutex_t vam__huge_cache_lock = PTHREAD_MUTEX_INITIALIZER;
#define cache_lock vam__huge_cache_lock
typedef struct cached {
  uint8_t *base;
  size_t size;
  uint64_t freed_ms;
  bool purged;       /* advised (purged) since it was freed */
  bool zero;         /* ... with DONTNEED: reads as zeroes */
  bool must_release; /* munmap was refused: give it back when we can */
} cached_t;
static cached_t cache[CACHE_MAX];
static size_t cache_count;       /* written under cache_lock; peeked without */
static size_t cache_bytes;
static inline size_t cache_peek(void) { return __atomic_load_n(&cache_count, __ATOMIC_RELAXED); }

static size_t pool_max(void) {
  if (vam__options.large_pool_max) return (size_t)vam__options.large_pool_max;
  uint64_t eighth = vam__va_budget() / 8;
  return eighth < ((uint64_t)256 << 20) ? (size_t)eighth : (size_t)256 << 20;
}

static void cache_take_at(size_t i);
static void retain(uint8_t *base, size_t size);

/* Keep a range: true when it went into the cache.  A freed mapping is the
 * likeliest to be wanted next, so when the cache is full the oldest
 * entries make room (they are unmapped after the lock is dropped). */
static bool cache_put(uint8_t *base, size_t size, bool must_release) {
  cached_t evicted[CACHE_MAX];
  size_t nev = 0;
  bool kept = false;
  pthread_mutex_lock(&cache_lock);
  if (must_release || size <= pool_max()) {
    while (cache_count == CACHE_MAX || (!must_release && cache_bytes + size > pool_max())) {
      size_t oldest = CACHE_MAX;
      for (size_t i = 0; i < cache_count; i++)
        if (!cache[i].must_release && (oldest == CACHE_MAX || cache[i].freed_ms < cache[oldest].freed_ms))
          oldest = i;
      if (oldest == CACHE_MAX) break;
      evicted[nev++] = cache[oldest];
      cache_take_at(oldest);
    }
    if (cache_count < CACHE_MAX && (must_release || cache_bytes + size <= pool_max())) {
      cache[cache_count] = (cached_t){base, size, vam__os_now_ms(), false, false, must_release};
      __atomic_store_n(&cache_count, cache_count + 1, __ATOMIC_RELAXED);
      cache_bytes += size;
      kept = true;
    }
  }
  pthread_mutex_unlock(&cache_lock);
  for (size_t i = 0; i < nev; i++)
    if (vam__va_release(evicted[i].base, evicted[i].size) != 0) retain(evicted[i].base, evicted[i].size);
  return kept;
}

static void cache_take_at(size_t i) {
  cache_bytes -= cache[i].size;
  cache[i] = cache[cache_count - 1];
  __atomic_store_n(&cache_count, cache_count - 1, __ATOMIC_RELAXED);
}

/* The kernel refused to unmap: keep the range in the books, decommitted. */
static void retain(uint8_t *base, size_t size) {
  vam__va_decommit(base, size, NULL);
  if (cache_put(base, size, true)) VAM_COUNT(huge_retained);
  else VAM_COUNT(huge_leaked);
}

/* Take a kept range of at least size bytes and at most twice that,
 * aligned to align: the smallest that fits. */
static uint8_t *cache_take(size_t size, size_t align, size_t *got, bool *zeroed) {
  uint8_t *base = NULL;
  pthread_mutex_lock(&cache_lock);
  size_t best = CACHE_MAX;
  for (size_t i = 0; i < cache_count; i++)
    if (cache[i].size >= size && (cache[i].size <= 2 * size || cache[i].must_release) &&
        ((uintptr_t)cache[i].base & (align - 1)) == 0 &&
        (best == CACHE_MAX || cache[i].size < cache[best].size))
      best = i;
  if (best != CACHE_MAX) {
    base = cache[best].base;
    *got = cache[best].size;
    *zeroed = cache[best].zero;
    cache_take_at(best);
  }
  pthread_mutex_unlock(&cache_lock);
  return base;
}

/* Give back refused ranges (one per call) or, with all, every cached one. */
static void cache_release(bool all) {
  for (;;) {
    pthread_mutex_lock(&cache_lock);
    size_t i = 0;
    while (i < cache_count && !all && !cache[i].must_release) i++;
    if (i == cache_count) {
      pthread_mutex_unlock(&cache_lock);
      return;
    }
    cached_t e = cache[i];
    cache_take_at(i);
    pthread_mutex_unlock(&cache_lock);
    if (vam__va_release(e.base, e.size) != 0) {
      cache_put(e.base, e.size, true);
      return;
    }
    if (!all) return;
  }
}

void vam__huge_release_cache(void) { cache_release(true); }

/* Decommit cached ranges idle for delay_ms (all with force). */
uint64_t vam__huge_purge(uint64_t now_ms, uint64_t delay_ms, bool force, size_t max_runs) {
  uint64_t bytes = 0;
  for (size_t rounds = 0; rounds < CACHE_MAX && rounds < max_runs; rounds++) {
    pthread_mutex_lock(&cache_lock);
    size_t i = 0;
    while (i < cache_count && (cache[i].purged || (!force && now_ms - cache[i].freed_ms < delay_ms))) i++;
    if (i == cache_count) {
      pthread_mutex_unlock(&cache_lock);
      break;
    }
    cached_t e = cache[i];
    cache_take_at(i); /* out of circulation while the madvise runs */
    pthread_mutex_unlock(&cache_lock);
    bool zeroed = false;
    if (vam__os_purge(e.base, e.size, vam__purge_lazy_free(), &zeroed) == 0) {
      VAM_COUNT(purge_runs);
      vam_stat_add(&vam__stats.purged_bytes, e.size);
      bytes += e.size;
      e.purged = true;
      e.zero = zeroed;
    } else {
      VAM_COUNT(decommit_failures);
      e.freed_ms = now_ms; /* tried again after another delay */
      max_runs = 0;        /* and no more this pass: purge.c backs off */
    }
    pthread_mutex_lock(&cache_lock);
    cache[cache_count] = e;
    __atomic_store_n(&cache_count, cache_count + 1, __ATOMIC_RELAXED);
    cache_bytes += e.size;
    pthread_mutex_unlock(&cache_lock);
  }
  return bytes;
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
  bool from_cache = false, cached_zero = false;
  size_t got = 0;
  vam__purge_tick();
  if (cache_peek() && (base = cache_take(map_size, map_align, &got, &cached_zero)) != NULL &&
      vam__va_commit(base, got) != 0) {
    retain(base, got); /* strict mode could not charge it again: keep it */
    base = NULL;
  }
  if (base) {
    /* A kept range, at most twice what was asked: used whole, so it keeps
     * serving requests of its own size later. */
    map_size = got;
    usable = map_size - header;
    from_cache = true;
    VAM_COUNT(huge_cache_hits);
  } else if (vam__va_reserve(map_size, map_align, true, &base) != 0) {
    vam__heap_pool_collect();
    vam__chunk_release_cached();
    cache_release(true);
    if (vam__va_reserve(map_size, map_align, true, &base) != 0) return NULL;
    VAM_COUNT(fallback_allocs);
    VAM_COUNT(huge_cache_misses);
  } else {
    VAM_COUNT(huge_cache_misses);
  }
  uint8_t *user = (uint8_t *)base + header;
  if (vam__chunkmap_set((uintptr_t)base, VAM_MAP_HUGE_HEAD) != 0 ||
      (vam__chunk_of(user) != (vam_chunk_t *)base &&
       vam__chunkmap_set((uintptr_t)user, VAM_MAP_HUGE_USER) != 0)) {
    vam__chunkmap_set((uintptr_t)base, VAM_MAP_NONE);
    if (!cache_put(base, map_size, false) && vam__va_release(base, map_size) != 0) retain(base, map_size);
    return NULL;
  }
  vam_huge_t *h = base;
  h->magic = VAM_HUGE_MAGIC;
  h->map_base = base;
  h->map_size = map_size;
  h->user = user;
  h->usable = usable;
  h->heap = NULL;
  h->heap_next = h->heap_prev = NULL;
  if (from_cache && zero && !cached_zero) memset(user, 0, size);
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
  cache_release(false); /* a range munmap refused earlier: try once more */
  if (!cache_put(base, map_size, false) && vam__va_release(base, map_size) != 0) retain(base, map_size);
  vam__purge_tick();
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
