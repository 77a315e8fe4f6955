/* alloc.c: the public malloc family (vam_*), with the fast paths.
 *
 * malloc fast path: size -> bin by table (byte steps to 1 KiB, 128-byte
 * steps to 32 KiB), pop heap->direct[bin]'s head if its link decodes.  free fast path:
 * the pointer's chunk is the heap's hot one (known mapped), or the chunk map
 * says "ours"; find the unit's descriptor (or, for a later unit of a slab,
 * the slab's), local_owner is this thread's heap, the pointer is a block
 * start that does not look free: push.  No shared counter is touched on either.  Everything else
 * (first use, empty list, full page, other thread, large, huge, foreign
 * pointer) goes to a slow path in this file. */
#include <stdlib.h>
#include "internal.h"

#define VAM_MAX_REQUEST ((size_t)PTRDIFF_MAX)
#define VAM_MAX_ALIGN ((size_t)1 << 40)

static vam_cold void *fail_enomem(void) {
  VAM_COUNT(enomem_returns);
  errno = ENOMEM;
  return NULL;
}

/* ---- allocation ------------------------------------------------------------- */

/* p = call; when that ran out of memory (oom, over call's result or
 * out-parameter), give back everything held unused (this thread's spare
 * slabs, pooled heaps' pages, cached chunks, wholly free huge regions) and
 * call once more, a success counted as a fallback: the one "release, then
 * retry" of the allocator. */
#define WITH_RELEASE_RETRY(p, oom, call)                                                 \
  do {                                                                                   \
    if (((p) = (call)) != NULL || !(oom)) break;                                         \
    vam__heap_trim_own(); vam__heap_pool_collect(); vam__chunk_release_cached();         \
    vam__huge_release_cache();                                                           \
    if (((p) = (call)) != NULL) VAM_COUNT(fallback_allocs);                              \
  } while (0)

/* cache: this thread's heap, whose cache of freed spans may serve it, or
 * NULL (first-class heaps, threads without a heap). */
static void *alloc_large(vam_heap_t *cache, size_t size, size_t align, bool zero) {
  /* Secure: room for the guard page after the object. */
  size_t span_bytes = size + (VAM_SECURE_BUILD ? vam__os_config.page_size : 0);
  size_t units = (span_bytes + VAM_UNIT_SIZE - 1) >> VAM_UNIT_SHIFT;
  size_t align_units = align > VAM_UNIT_SIZE ? align >> VAM_UNIT_SHIFT : 1;
  bool zeroed = false;
  vam_span_t *pg = NULL;
  if (cache && align_units == 1) {
    /* A program served from its cache alone must still purge (no floor
     * below notes anything on this path); ticking first also moves the
     * clock the cache ages by. */
    vam__purge_tick();
    vam__heap_age_caches(cache);
    pg = vam__heap_large_take(cache, units);
  }
  if (pg == NULL) WITH_RELEASE_RETRY(pg, pg == NULL, vam__span_alloc(units, align_units, &zeroed));
  if (pg == NULL) return NULL;
  if (VAM_SECURE_BUILD && !pg->guarded) vam__span_guard(pg);
  pg->kind = VAM_SPAN_LARGE;
  pg->block_size = (uint32_t)((size_t)pg->units * VAM_UNIT_SIZE);
  pg->used = 1;
  pg->zeroed = zeroed;
  VAM_COUNT(large_allocs);
  VAM_GAUGE(large_bytes, pg->block_size);
  if (zero && !zeroed) memset(pg->start, 0, size);
  return pg->start;
}

/* Allocate a block: from `uheap` (a first-class heap whose lock the caller
 * holds), or with NULL from this thread's heap (the shared one while the
 * thread has none).  `align` is a power of two; 0 or <= 16 means the
 * natural alignment of the size class.  NULL when out of memory. */
static void *alloc_block(vam_heap_t *uheap, size_t size, size_t align, bool zero) {
  void *p = NULL;
  /* Rounding the size up to the alignment picks a class whose blocks are
   * all aligned to it (sizeclass.c), for any alignment up to a unit. */
  /* Secure: the canary's room at the end, before the rounding. */
  size_t with_canary = size + VAM_CANARY_SIZE;
  size_t small_size = align > 8 ? vam_align_up(with_canary ? with_canary : 1, align) : with_canary;
  if (small_size <= VAM_SMALL_MAX && align <= VAM_UNIT_SIZE) {
    size_t bin = vam__bin_of(small_size);
    bool locked = false;
    vam_heap_t *heap = uheap ? uheap : vam__heap_for_slow_path(&locked);
    vam_span_t *pg = heap->direct[bin];
    bool oom = false;
    if (vam__slab_has_free(pg)) p = vam__slab_pop(pg);
    else WITH_RELEASE_RETRY(p, oom, vam__heap_malloc_small_slow(heap, bin, &oom));
    vam__heap_unlock_shared(locked);
    if (p && zero) memset(p, 0, vam__bin_size[bin] - VAM_CANARY_SIZE);
  } else if (size <= VAM_LARGE_MAX && align < VAM_CHUNK_SIZE / 2) {
    vam__ensure_init();
    vam_heap_t *cache = uheap || vam__tls_heap == &vam__empty_heap ? NULL : vam__tls_heap;
    p = alloc_large(cache, size ? size : 1, align, zero);
  } else {
    vam__ensure_init();
    bool oom = false;
    WITH_RELEASE_RETRY(p, oom, vam__huge_alloc(size ? size : 1, align, zero, &oom));
  }
  vam__purge_tick_if_due(); /* after serving: what was reused is not purged first */
  return p;
}

/* Every allocation that is not a fast-path hit. */
static vam_noinline void *alloc_generic(size_t size, size_t align, bool zero) {
  int saved_errno = errno;
  if (size > VAM_MAX_REQUEST || align > VAM_MAX_ALIGN) return fail_enomem();
  void *p = NULL;
  if (VAM_SECURE_BUILD && size == 0 && align <= 16) {
    vam__ensure_init();
    p = vam__zero_alloc(); /* NULL: a real block below */
  }
  if (p == NULL) p = alloc_block(NULL, size, align, zero);
  if (p == NULL) return fail_enomem();
  errno = saved_errno;
  return p;
}

void *vam__alloc_in_heap(vam_heap_t *heap, size_t size, size_t align, bool zero) {
  if (size > VAM_MAX_REQUEST || align > VAM_MAX_ALIGN) return NULL;
  return alloc_block(heap, size, align, zero);
}

VAM_API void *vam_malloc(size_t size) {
#if VAM_SECURE_BUILD
  /* The class leaves room for the canary; malloc(0) gets its trapping slot
   * (alloc_generic); the pop checks the block is still wiped (secure.c). */
  if (vam_likely(size - 1 < VAM_FAST_MAX - VAM_CANARY_SIZE)) {
    vam_heap_t *heap = vam__tls_heap;
    void *p = vam__slab_try_pop(heap->direct[heap->bin_of_small[size + VAM_CANARY_SIZE]]);
    if (vam_likely(p != NULL)) return p;
  }
  return alloc_generic(size, 0, false);
#endif
  size_t bin;
  vam_heap_t *heap = vam__tls_heap;
  if (vam_likely(size <= VAM_FAST_MAX)) bin = heap->bin_of_small[size];
  else if (size <= VAM_MID_MAX) bin = vam__bin_of_mid[(size + 127) >> 7];
  else return alloc_generic(size, 0, false);
  {
    /* No emptiness test: an empty list's head is a word reading 0, which
     * fails the link check like a corrupt link; alloc_generic tells the
     * two apart (vam__slab_has_free) and reports only corruption. */
    void *p = vam__slab_try_pop(heap->direct[bin]);
    if (vam_likely(p != NULL)) return p;
  }
  return alloc_generic(size, 0, false);
}

VAM_API void *vam_calloc(size_t count, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(count, size, &total)) return fail_enomem();
  vam__count_call(VAM_CALL_CALLOC);
  return alloc_generic(total, 0, true);
}

/* ---- free ------------------------------------------------------------------ */

/* A small block that looks free: a double free, unless the block's live
 * data happens to match the page key (odds about 2^-42).  Its owner (or a
 * holder of a first-class heap's lock) confirms by walking the lists;
 * another thread cannot read the owner's list and trusts the test. */
static bool small_is_double_free(vam_span_t *pg, const vam_block_t *b) {
  vam_heap_t *owner = pg->heap;
  /* On a page whose corrupt list was cut, a block that looks free but is
   * on no list is an abandoned one: freeing it again is a double free too
   * (accepting it would push it back and count `used` below zero). */
  if (owner == vam__tls_heap) return pg->lost || vam__slab_holds_free(pg, b);
  if (owner->is_user) {
    pthread_mutex_lock(&owner->lock);
    bool held = pg->lost || vam__slab_holds_free(pg, b);
    pthread_mutex_unlock(&owner->lock);
    return held;
  }
  return true;
}

/* Classify p for free, realloc or usable_size: the live block's descriptor
 * (small or large) or huge header, or a report of what is wrong with it
 * (then *kind is VAM_MAP_NONE).  op names the caller in the report. */
typedef struct block_ref {
  unsigned kind;   /* VAM_MAP_CHUNK or VAM_MAP_HUGE_HEAD; NONE: misuse reported */
  vam_span_t *pg;  /* CHUNK */
  vam_huge_t *huge;
} block_ref_t;

static block_ref_t block_find(const void *p, const char *op, bool freeing) {
  block_ref_t r = {VAM_MAP_NONE, NULL, NULL};
  vam_ref_t at = vam__classify(p);
  unsigned kind = at.map;
  unsigned misuse = VAM_MISUSE_INVALID_POINTER;
  if (kind == VAM_MAP_CHUNK) {
    vam_chunk_t *c = vam__chunk_of(p);
    vam_span_t *pg = at.pg;
    if (pg->kind == VAM_SPAN_SMALL) {
      if (!vam__slab_block_ok(pg, p)) {
        size_t off = (size_t)((const uint8_t *)p - pg->start);
        bool inside = (const uint8_t *)p >= pg->start && off < (size_t)vam_racy_load(&pg->capacity) * pg->block_size;
        misuse = inside ? VAM_MISUSE_INTERIOR_FREE : VAM_MISUSE_INVALID_POINTER;
      } else if (((const vam_block_t *)p)->link == (pg->key ^ VAM_QUARANTINED) ||
                 (vam__block_looks_free(pg, p) && small_is_double_free(pg, p))) {
        misuse = VAM_MISUSE_DOUBLE_FREE;
      } else {
        r.kind = kind;
        r.pg = pg;
        return r;
      }
    } else if (pg->kind == VAM_SPAN_LARGE) {
      if ((const uint8_t *)p == pg->start) {
        r.kind = kind;
        r.pg = pg;
        return r;
      }
      misuse = VAM_MISUSE_INTERIOR_FREE;
    } else if (((uintptr_t)p & (VAM_UNIT_SIZE - 1)) == 0 && vam__unit_span_of(c, p) != c->spans) {
      /* A unit start in a span that is no longer live: a large block freed
       * before (its span went back, or to a thread cache). */
      misuse = VAM_MISUSE_DOUBLE_FREE;
    }
  } else if (kind == VAM_MAP_HUGE_HEAD || kind == VAM_MAP_HUGE_USER) {
    if (at.huge) {
      r.kind = VAM_MAP_HUGE_HEAD;
      r.huge = at.huge;
      return r;
    }
    misuse = VAM_MISUSE_INTERIOR_FREE;
  } else if (kind == VAM_MAP_HUGE_FREED) {
    misuse = VAM_MISUSE_DOUBLE_FREE;
  } else if (kind == VAM_MAP_NONE && vam__huge_contains(p)) {
    misuse = VAM_MISUSE_INTERIOR_FREE; /* a later chunk of a huge object */
  } else if (VAM_SECURE_BUILD && kind == VAM_MAP_ZERO) {
    if (vam__zero_live(p)) {
      r.kind = VAM_MAP_ZERO;
      return r;
    }
    misuse = ((uintptr_t)p & 15) ? VAM_MISUSE_INTERIOR_FREE : VAM_MISUSE_DOUBLE_FREE;
  }
  /* usable_size and realloc of a freed block name it what it is: a use
   * after free of a pointer that is no longer a block. */
  if (!freeing && misuse == VAM_MISUSE_DOUBLE_FREE) misuse = VAM_MISUSE_INVALID_POINTER;
  vam__misuse(misuse, p, op);
  return r;
}

/* A slab of this thread emptied on free's fast path: heap.c keeps it or
 * gives it back, and the purge ticks when that parked or freed a span. */
static vam_noinline void slab_emptied(vam_heap_t *heap, vam_span_t *pg) {
  vam__heap_slab_empty(heap, pg);
  vam__purge_tick_if_due();
}

#if VAM_SECURE_BUILD
/* Park p, already wiped and marked (vam__secure_on_free), in this thread's
 * quarantine, and free for real the block it displaces once its mark shows
 * nothing wrote to it while it waited (the wiped bytes are checked by
 * vam__secure_still_clean too). */
static vam_always_inline void quarantine_and_release(vam_heap_t *heap, void *p) {
  vam_block_t *d = vam__quarantine_swap(heap, p);
  if (d == NULL) return;
  vam_span_t *pd = vam__span_of(vam__chunk_of(d), d);
  if (vam_unlikely(!vam__secure_still_clean(pd, d))) {
    vam__misuse(VAM_MISUSE_WRITE_AFTER_FREE, d, "free");
    return; /* dropped, never reused */
  }
  if (vam_racy_load(&pd->local_owner) == heap) {
    vam__slab_push(pd, d);
    if (vam_unlikely(--pd->used == 0)) slab_emptied(heap, pd);
    return;
  }
  vam__heap_free_slow_small(pd, d);
}
#endif

static void free_block(void *p) {
  if (p == NULL) return;
  block_ref_t r = block_find(p, "free", true);
  if (r.kind == VAM_MAP_CHUNK) {
    vam_span_t *pg = r.pg;
    if (pg->kind == VAM_SPAN_SMALL) {
#if VAM_SECURE_BUILD
      /* Canary checked, block wiped; then it waits in this thread's
       * quarantine and the one it displaces is freed for real.  Blocks of
       * first-class heaps skip it: their heap may be destroyed first. */
      if (!vam__secure_on_free(pg, p)) return;
      vam_heap_t *me = vam__tls_heap;
      if (me != &vam__empty_heap && !pg->heap->is_user) {
        quarantine_and_release(me, p);
        return;
      }
#endif
      vam__heap_free_slow_small(pg, p);
      return;
    }
    if (pg->heap) vam__userheap_hooks.forget_large(pg);
    VAM_GAUGE(large_bytes, -(int64_t)pg->block_size);
    VAM_COUNT(large_frees);
    if (vam__heap_large_keep(vam__tls_heap, pg)) vam__purge_tick();
    else vam__span_free(pg);
  } else if (r.kind == VAM_MAP_HUGE_HEAD) {
    if (r.huge->heap) vam__userheap_hooks.forget_huge(r.huge);
    vam__huge_free(r.huge);
  } else if (VAM_SECURE_BUILD && r.kind == VAM_MAP_ZERO) {
    vam__zero_free(p);
  }
}

/* Every free that is not a fast-path hit; the purge ticks when the floors
 * below gave memory back. */
static vam_noinline void free_generic(void *p) {
  free_block(p);
  vam__purge_tick_if_due();
}

/* A block of a slab this thread owns goes on the local list when it is on
 * a block boundary and does not look free; false: free_generic decides. */
static vam_always_inline bool free_local(vam_heap_t *heap, vam_span_t *pg, vam_block_t *b) {
  if (vam_unlikely(!vam__slab_block_ok(pg, b) || vam__block_looks_free(pg, b))) return false;
  vam__slab_push(pg, b);
  if (vam_unlikely(--pg->used == 0)) slab_emptied(heap, vam__span_of(vam__chunk_of(b), b));
  return true;
}

/* A later unit of a multi-unit slab: its descriptor points back to the
 * slab's, which may well be ours.  The cold calls take p, not pg: with
 * pg live there the compiler would materialize it on the fast path too
 * (one instruction: the descriptors sit past the chunk's front guard). */
static vam_noinline void free_tail(vam_heap_t *heap, void *p) {
  vam_span_t *pg = vam__span_of(vam__chunk_of(p), p);
  if (vam_likely(vam_racy_load(&pg->local_owner) == heap) && free_local(heap, pg, p)) return;
  free_generic(p);
}

#if VAM_SECURE_BUILD
/* The secure build's free of a live small block of a thread heap: canary
 * checked, block wiped and marked (secure.c), parked in this thread's
 * quarantine; the block it displaces, its mark checked, goes back to its
 * slab.  Everything else, including every misuse, goes to free_generic. */
static vam_always_inline void free_secure(void *p) {
  vam_heap_t *heap = vam__tls_heap;
  uintptr_t c = (uintptr_t)p & ~(uintptr_t)VAM_CHUNK_MASK;
  if ((c == heap->hot_chunk || vam__chunkmap_kind_at(c >> VAM_CHUNK_SHIFT) == VAM_MAP_CHUNK) &&
      heap != &vam__empty_heap) {
    vam_span_t *pg = vam__span_of((vam_chunk_t *)c, p);
    /* (a quarantined block looks free: its double free is free_generic's) */
    if (pg->kind == VAM_SPAN_SMALL && !pg->heap->is_user && vam__slab_block_ok(pg, p) &&
        !vam__block_looks_free(pg, p)) {
      if (vam__secure_on_free(pg, p)) quarantine_and_release(heap, p); /* else canary: reported */
      return;
    }
  }
  free_generic(p);
}
#endif

/* The fast path frees a block of a slab this thread owns; everything else,
 * including every misuse, goes to free_generic. */
VAM_API void vam_free(void *p) {
#if VAM_SECURE_BUILD
  free_secure(p);
  return;
#endif
  vam_heap_t *heap = vam__tls_heap;
  uintptr_t c = (uintptr_t)p & ~(uintptr_t)VAM_CHUNK_MASK;
  /* The heap's hot chunk is known mapped (heap.c): no chunk-map lookup. */
  if (vam_likely(c == heap->hot_chunk || vam__chunkmap_kind_at(c >> VAM_CHUNK_SHIFT) == VAM_MAP_CHUNK)) {
    vam_span_t *pg = vam__unit_span_of((vam_chunk_t *)c, p);
    /* Another thread's slab: its owner may be moving it to or from the
     * full list (local_owner NULL or its heap); neither equals ours. */
    if (vam_likely(vam_racy_load(&pg->local_owner) == heap)) {
      if (vam_likely(free_local(heap, pg, p))) return;
    } else if (pg->kind == VAM_SPAN_TAIL) {
      free_tail(heap, p);
      return;
    }
  }
  free_generic(p);
}

VAM_API void vam_free_sized(void *p, size_t size) {
  (void)size;
  vam_free(p);
}

VAM_API void vam_free_aligned_sized(void *p, size_t alignment, size_t size) {
  (void)alignment;
  (void)size;
  vam_free(p);
}

/* ---- sizes ------------------------------------------------------------------ */

/* Usable size of a live block; a misuse (reported) gives 0. */
static size_t usable_size(const void *p, const char *op) {
  block_ref_t r = block_find(p, op, false);
  if (r.kind == VAM_MAP_CHUNK) {
    if (r.pg->kind == VAM_SPAN_SMALL) return r.pg->block_size - VAM_CANARY_SIZE;
    return r.pg->block_size - (r.pg->guarded ? vam__os_config.page_size : 0);
  }
  if (r.kind == VAM_MAP_HUGE_HEAD) return r.huge->usable;
  return 0;
}

VAM_API size_t vam_usable_size(const void *p) {
  if (p == NULL) return 0;
  return usable_size(p, "malloc_usable_size");
}

/* p points into a live slab or large span of ours, or at the start of a
 * live huge object. */
VAM_API int vam_owns(const void *p) {
  vam_ref_t at = vam__classify(p);
  return at.pg ? at.pg->kind != VAM_SPAN_NONE : at.huge != NULL;
}

/* ---- realloc ---------------------------------------------------------------- */

vam_userheap_hooks_t vam__userheap_hooks; /* internal.h; set by userheap.c */

/* The first-class heap a live block belongs to, or NULL (thread heaps,
 * foreign pointers): a question about the pointer, so it lives here. */
VAM_API vam_heap_t *vam_heap_of(const void *p) {
  if (p == NULL) return NULL;
  vam_ref_t at = vam__classify(p);
  if (at.pg) {
    vam_span_t *pg = at.pg;
    if ((pg->kind == VAM_SPAN_SMALL || pg->kind == VAM_SPAN_LARGE) && pg->heap && pg->heap->is_user)
      return pg->heap;
    return NULL;
  }
  return at.huge ? at.huge->heap : NULL;
}


VAM_API void *vam_realloc(void *p, size_t size) {
  if (p == NULL) return vam_malloc(size);
  if (size > VAM_MAX_REQUEST) return fail_enomem();
  vam__count_call(VAM_CALL_REALLOC);
  if (VAM_SECURE_BUILD && vam__chunkmap_kind((uintptr_t)p) == VAM_MAP_ZERO && vam__zero_live(p)) {
    void *q = alloc_generic(size, 0, false); /* nothing to copy */
    if (q) vam__zero_free(p);
    return q;
  }
  size_t old = usable_size(p, "realloc");
  if (old == 0) {
    /* Misuse, reported (and survived in warn/ignore mode): we cannot know
     * how much to copy, so refuse; the caller's block is untouched. */
    errno = EINVAL;
    return NULL;
  }
  if (size <= old && old <= VAM_SMALL_MAX && size >= old / 2) return p; /* small: keep */
  /* A first-class heap's block stays in its heap (and under its limit). */
  vam_heap_t *owner = vam_heap_of(p);
  if (owner) return vam__userheap_hooks.realloc(owner, p, size);
  vam_ref_t at = VAM_SECURE_BUILD ? (vam_ref_t){VAM_MAP_NONE, NULL, NULL} /* guards do not move */
                                  : vam__classify(p);
  if (at.pg && size > VAM_SMALL_MAX && size <= VAM_LARGE_MAX) {
    vam_span_t *pg = at.pg;
    if (pg->kind == VAM_SPAN_LARGE) {
      /* Large: grow into free units after the span, or give the tail back. */
      size_t units = (size + VAM_UNIT_SIZE - 1) >> VAM_UNIT_SHIFT;
      size_t had = pg->block_size >> VAM_UNIT_SHIFT;
      if (units == had) return p;
      if (units > had ? vam__span_try_grow(pg, units) : vam__span_shrink(pg, units)) {
        VAM_GAUGE(large_bytes, ((int64_t)units - (int64_t)had) * (int64_t)VAM_UNIT_SIZE);
        pg->block_size = (uint32_t)(units * VAM_UNIT_SIZE);
        VAM_COUNT(large_in_place);
        return p;
      }
    }
  } else if (at.huge && size > VAM_LARGE_MAX) {
    /* Huge: mremap in place, or move the pages without copying. */
    void *q = vam__huge_realloc(at.huge, size);
    if (q) {
      VAM_COUNT(large_in_place);
      return q;
    }
  }
  void *q = alloc_generic(size, 0, false);
  if (q == NULL) return NULL; /* errno = ENOMEM; p untouched */
  memcpy(q, p, old < size ? old : size);
  vam_free(p);
  return q;
}

VAM_API void *vam_reallocarray(void *p, size_t count, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(count, size, &total)) return fail_enomem();
  return vam_realloc(p, total);
}

/* ---- aligned ---------------------------------------------------------------- */

static void *aligned(size_t align, size_t size) {
  vam__count_call(VAM_CALL_ALIGNED);
  return alloc_generic(size, align, false);
}

VAM_API int vam_posix_memalign(void **memptr, size_t alignment, size_t size) {
  if (alignment < sizeof(void *) || !vam_is_pow2(alignment)) return EINVAL;
  int saved = errno;
  void *p = aligned(alignment, size);
  if (p == NULL) {
    errno = saved;
    return ENOMEM;
  }
  *memptr = p;
  return 0;
}

VAM_API void *vam_aligned_alloc(size_t alignment, size_t size) {
  if (!vam_is_pow2(alignment)) {
    errno = EINVAL;
    return NULL;
  }
  return aligned(alignment, size);
}

VAM_API void *vam_memalign(size_t alignment, size_t size) {
  if (!vam_is_pow2(alignment)) {
    errno = EINVAL;
    return NULL;
  }
  return aligned(alignment, size);
}

VAM_API void *vam_valloc(size_t size) {
  vam__ensure_init();
  return aligned(vam__os_config.page_size, size);
}

VAM_API void *vam_pvalloc(size_t size) {
  vam__ensure_init();
  size_t page = vam__os_config.page_size;
  if (size > VAM_MAX_REQUEST) return fail_enomem();
  return aligned(page, size ? vam_align_up(size, page) : page);
}

/* Hidden aliases, so override.c's standard names reach these functions by a
 * direct jump rather than through the PLT. */
#if defined(__GNUC__) && !defined(__clang__)
/* The aliases are only ever called, never compared, so dropping the malloc
 * attribute on them is harmless. */
#pragma GCC diagnostic ignored "-Wmissing-attributes"
#endif
#define VAM_HIDDEN_ALIAS(name) \
  extern __typeof(name) name##__h __attribute__((alias(#name), visibility("hidden")));
VAM_HIDDEN_ALIAS(vam_malloc)
VAM_HIDDEN_ALIAS(vam_free)
VAM_HIDDEN_ALIAS(vam_calloc)
VAM_HIDDEN_ALIAS(vam_realloc)
VAM_HIDDEN_ALIAS(vam_reallocarray)
VAM_HIDDEN_ALIAS(vam_posix_memalign)
VAM_HIDDEN_ALIAS(vam_aligned_alloc)
VAM_HIDDEN_ALIAS(vam_memalign)
VAM_HIDDEN_ALIAS(vam_valloc)
VAM_HIDDEN_ALIAS(vam_pvalloc)
VAM_HIDDEN_ALIAS(vam_usable_size)
VAM_HIDDEN_ALIAS(vam_free_sized)
VAM_HIDDEN_ALIAS(vam_free_aligned_sized)

#ifdef VAM_OVERRIDE_ALIASES
/* The standard malloc and free are these very functions: a wrapper would
 * cost a jump on every call (override.c serves the other names). */
extern __typeof(vam_malloc) malloc __attribute__((alias("vam_malloc"), visibility("default")));
extern __typeof(vam_free) free __attribute__((alias("vam_free"), visibility("default")));
#endif
