/* chunk.c: 4 MiB chunks and the spans of 32 KiB units carved from them.
 *
 * Every chunk lives on one list under vam__chunk_lock; a span is found by a
 * first-fit scan of each chunk's 128-bit used map (chunks with too few free
 * units are skipped on a counter, and per-length hints skip the chunks
 * known to have no run that long).  Span allocation happens once per slab or
 * large object, never on a fast path, so one lock is affordable.  The lock
 * is held across the kernel calls that make a new chunk (chunk_new: the
 * arena's reservation, in strict mode the chunk's commit, an mprotect that
 * can sleep in the retry loop, and its front guard) and, in strict mode,
 * recommit an empty one; purges and releases drop it first.
 *
 * A chunk whose units are all free is kept for reuse; once it has been idle
 * for the purge delay its pages go back (one madvise for the whole body,
 * which never splits a VMA).  Past VAMALLOC_CHUNK_CACHE empty chunks that
 * are whole reservations are unmapped at once.  If the kernel refuses the unmap the
 * chunk simply stays cached: the books never disagree with the mappings.
 * When the OS refuses a new chunk, span allocation returns NULL; alloc.c
 * releases what is held unused (cached chunks among it) and tries again
 * before the caller sees ENOMEM. */
#include "internal.h"

pthread_mutex_t vam__chunk_lock = PTHREAD_MUTEX_INITIALIZER;
static vam_chunk_t *chunks;       /* chunks with at least one used unit */
static vam_chunk_t *empty_chunks; /* fully free, decommitted (or not) */
static size_t empty_count;

static inline bool bit_get(const uint64_t *m, size_t i) { return (m[i >> 6] >> (i & 63)) & 1; }
static inline void bits_set(uint64_t *m, size_t from, size_t n) {
  for (size_t i = from; i < from + n; i++) m[i >> 6] |= (uint64_t)1 << (i & 63);
}
static inline void bits_clear(uint64_t *m, size_t from, size_t n) {
  for (size_t i = from; i < from + n; i++) m[i >> 6] &= ~((uint64_t)1 << (i & 63));
}
static inline bool bits_any(const uint64_t *m, size_t from, size_t n) {
  for (size_t i = from; i < from + n; i++)
    if (bit_get(m, i)) return true;
  return false;
}

/* Both lists are kept oldest reservation first (then by address), and
 * spans come from the first chunk that fits: long-lived blocks settle in
 * the oldest chunks, so newer arenas can empty and be unmapped whole
 * (arenas_release_idle). */
static void list_insert_sorted(vam_chunk_t **list, vam_chunk_t *c) {
  vam_chunk_t *prev = NULL, *cur = *list;
  while (cur && (cur->age < c->age || (cur->age == c->age && cur < c))) {
    prev = cur;
    cur = cur->next;
  }
  c->prev = prev;
  c->next = cur;
  if (cur) cur->prev = c;
  if (prev) prev->next = c;
  else *list = c;
}
static void list_remove(vam_chunk_t **list, vam_chunk_t *c) {
  if (c->prev) c->prev->next = c->next;
  else *list = c->next;
  if (c->next) c->next->prev = c->prev;
  c->next = c->prev = NULL;
}

/* First-fit hints: for each span length u, fit_from[u] is a chunk of the
 * `chunks` list such that no chunk before it has a free run of u units
 * (NULL: start at the head; FIT_NONE: no chunk has one).  The scan starts
 * there and finds exactly the chunk a scan from the head would, without
 * touching the headers of the full chunks in between (with a hundred
 * chunks, one cache and TLB miss each, the walk was most of the cost of a
 * span).  Carving only shrinks runs, so it never invalidates a hint; units
 * freed in a chunk before a hint, or a chunk joining the list, move it
 * back.  fit_key holds each hint's sort key, so moving needs no header. */
#define FIT_NONE ((vam_chunk_t *)1)
static vam_chunk_t *fit_from[VAM_UNITS];
static uint64_t fit_key[VAM_UNITS]; /* 0: head; UINT64_MAX: none */

static inline uint64_t chunk_key(const vam_chunk_t *c) {
  return ((uint64_t)c->age << 32) | ((uintptr_t)c >> VAM_CHUNK_SHIFT);
}
static void fit_set(size_t u, vam_chunk_t *c) {
  fit_from[u] = c;
  fit_key[u] = c == NULL ? 0 : c == FIT_NONE ? UINT64_MAX : chunk_key(c);
}
/* Chunk c (on the list) may now have free runs of up to max_run units: no
 * hint for such a length may point past it. */
static void fit_reopen(vam_chunk_t *c, size_t max_run) {
  uint64_t key = chunk_key(c);
  for (size_t u = 1; u <= max_run && u < VAM_UNITS; u++)
    if (key < fit_key[u]) {
      fit_from[u] = c;
      fit_key[u] = key;
    }
}
/* Chunk c leaves the list: hints at it move to its successor. */
static void fit_forget(vam_chunk_t *c) {
  for (size_t u = 1; u < VAM_UNITS; u++)
    if (fit_from[u] == c) fit_set(u, c->next ? c->next : FIT_NONE);
}

/* First run of n free units starting at a multiple of align (in units). */
static size_t find_run(vam_chunk_t *c, size_t n, size_t align) {
  size_t start = align > 1 ? align : 1;
  while (start + n <= VAM_UNITS) {
    size_t i = start;
    while (i < start + n && !bit_get(c->used_map, i)) i++;
    if (i == start + n) return start;
    start = vam_align_up(i + 1, align);
  }
  return 0;
}

/* The arena chunks are carved from (vabudget sizes it from the budget).
 * Under the chunk lock. */
static uint8_t *arena_next, *arena_end;
static bool arena_is_single;

/* Arenas (reservations of several chunks), so one whose chunks are all
 * empty and purged can be unmapped whole: that gives back its address
 * space and the header pages its chunks keep, without splitting anything.
 * An arena that lost a chunk to chunk_unmap (memory pressure) has a hole
 * someone else may map into, so it is never released whole. */
#define ARENAS_MAX 64
typedef struct arena {
  uint8_t *base; /* NULL: free slot */
  size_t size;
  uint32_t carved; /* chunks handed out from it */
  bool holed;
} arena_t;
static arena_t arenas[ARENAS_MAX];
static uint8_t arena_current; /* slot of [arena_next, arena_end), 1-based */
static uint32_t arena_age;     /* reservations made so far */

static vam_chunk_t *chunk_new(void) {
  if (arena_next == arena_end) {
    void *p = NULL;
    size_t size = vam__va_arena_size(VAM_CHUNK_SIZE);
    if (vam__va_reserve(size, VAM_CHUNK_SIZE, false, &p) != 0) {
      /* tight: the smallest reservation that fits */
      if (size == VAM_CHUNK_SIZE || vam__va_reserve(VAM_CHUNK_SIZE, VAM_CHUNK_SIZE, false, &p) != 0)
        return NULL;
      size = VAM_CHUNK_SIZE;
    }
    arena_next = p;
    arena_end = (uint8_t *)p + size;
    arena_is_single = (size == VAM_CHUNK_SIZE);
    arena_current = 0;
    arena_age++;
    for (size_t i = 0; i < ARENAS_MAX && !arena_is_single; i++) {
      if (arenas[i].base) continue;
      arenas[i] = (arena_t){p, size, 0, false};
      arena_current = (uint8_t)(i + 1);
      break;
    }
  }
  uint8_t *p = arena_next;
  /* strict mode: commit the whole chunk in one step (charged now) */
  if (vam__va_commit(p, VAM_CHUNK_SIZE) != 0) return NULL;
  if (vam__chunkmap_set((uintptr_t)p, VAM_MAP_CHUNK) != 0) {
    vam__va_decommit(p, VAM_CHUNK_SIZE, NULL); /* back to uncharged, stays next */
    return NULL;
  }
  arena_next += VAM_CHUNK_SIZE;
  if (vam__va_strict()) vam__va_note_split(1); /* a read/write island in PROT_NONE */
  vam_chunk_t *c = (vam_chunk_t *)p; /* fresh mapping: header reads as zeroes */
  /* The front guard (types.h); where the OS page is not 4 KiB, or the
   * kernel says no (the map count), the chunk simply goes without. */
  if (vam__os_config.page_size == VAM_CHUNK_GUARD && vam__os_noaccess(p, VAM_CHUNK_GUARD) == 0) {
    c->front_guarded = 1;
    vam__va_note_split(2);
  } else {
    VAM_COUNT(chunk_guard_failures);
  }
  c->magic = VAM_CHUNK_MAGIC;
  c->free_units = VAM_UNITS - 1;
  c->part_of_arena = !arena_is_single;
  c->arena_slot = arena_current;
  c->age = arena_age;
  if (arena_current) arenas[arena_current - 1].carved++;
  c->body_committed = 1;
  bits_set(c->used_map, 0, 1);
  bits_set(c->dirty_map, 0, 1);
  VAM_COUNT(chunks_reserved);
  return c;
}

/* Unmap a chunk; called with the lock held. Returns false if the kernel said no. */
static bool chunk_unmap(vam_chunk_t *c) {
  void *base = c;
  bool part = c->part_of_arena;
  uint8_t slot = c->arena_slot; /* c is gone once unmapped */
  bool guarded = c->front_guarded;
  vam__chunkmap_set((uintptr_t)base, VAM_MAP_NONE);
  if (vam__va_release(base, VAM_CHUNK_SIZE) != 0) {
    /* munmap refused (e.g. ENOMEM at vm.max_map_count): keep it as ours. */
    vam__chunkmap_set((uintptr_t)base, VAM_MAP_CHUNK);
    VAM_COUNT(chunk_release_failures);
    return false;
  }
  /* A chunk cut out of a larger reservation splits it: the reservation
   * counted once is now (at most) two mappings. */
  if (guarded) vam__va_note_split(-2);
  if (part) vam__va_note_split(2);
  if (slot) arenas[slot - 1].holed = true;
  VAM_COUNT(chunks_released);
  return true;
}

void vam__chunk_release_cached(void) {
  pthread_mutex_lock(&vam__chunk_lock);
  vam_chunk_t *c = empty_chunks, *keep = NULL;
  while (c) {
    vam_chunk_t *next = c->next;
    list_remove(&empty_chunks, c);
    empty_count--;
    if (!chunk_unmap(c)) {
      c->next = keep;
      keep = c;
    }
    c = next;
  }
  while (keep) {
    vam_chunk_t *next = keep->next;
    list_insert_sorted(&empty_chunks, keep);
    empty_count++;
    keep = next;
  }
  pthread_mutex_unlock(&vam__chunk_lock);
}

/* Mark units [start+from, start+to) as tails of the span at start. */
static void set_tails(vam_chunk_t *c, size_t start, size_t from, size_t to) {
  for (size_t i = from; i < to; i++) {
    vam_span_t *t = &c->spans[start + i];
    memset(t, 0, sizeof *t);
    t->kind = VAM_SPAN_TAIL;
    t->head_offset = (uint16_t)i;
  }
}

static vam_span_t *carve(vam_chunk_t *c, size_t start, size_t n, bool *zeroed) {
  bits_set(c->used_map, start, n);
  if (zeroed) *zeroed = !bits_any(c->dirty_map, start, n);
  bits_set(c->dirty_map, start, n);
  c->free_units -= (uint32_t)n;
  set_tails(c, start, 1, n);
  vam_span_t *pg = &c->spans[start];
  memset(pg, 0, sizeof *pg);
  pg->units = (uint16_t)n;
  pg->start = (uint8_t *)c + start * VAM_UNIT_SIZE;
  VAM_GAUGE(committed_bytes, n * VAM_UNIT_SIZE);
  return pg;
}

/* Decommit a fully free chunk's units.  On failure the dirty bits stay,
 * so calloc never trusts those pages to be zero. */
static void chunk_decommit(vam_chunk_t *c) {
  bool zeroed = false;
  uint8_t *from = (uint8_t *)c + VAM_UNIT_SIZE;
  if (vam__va_decommit(from, VAM_CHUNK_SIZE - VAM_UNIT_SIZE, &zeroed)) {
    if (zeroed) bits_clear(c->dirty_map, 1, VAM_UNITS - 1);
    if (vam__va_strict()) c->body_committed = 0;
    /* The descriptors of an empty chunk are all zero: their pages can go
     * too (they read back as zero either way), leaving one header page. */
    size_t page = vam__os_config.page_size;
    size_t desc = offsetof(vam_chunk_t, used_map) & ~(page - 1);
    bool ignored;
    if (desc && vam__os_purge(c, desc, vam__va_lazy_free(), &ignored) == 0) VAM_COUNT(purge_runs);
  }
}

static vam_span_t *span_alloc_locked(size_t units, size_t align_units, bool *zeroed) {
  /* Aligned spans scan from the head: a chunk may have the run but not
   * at an aligned start, and recording that would break the hint. */
  vam_chunk_t *c = align_units > 1 || fit_from[units] == NULL ? chunks
                   : fit_from[units] == FIT_NONE           ? NULL
                                                           : fit_from[units];
  for (; c; c = c->next) {
    if (c->free_units < units) continue;
    size_t start = find_run(c, units, align_units);
    if (start) {
      if (align_units == 1) fit_set(units, c);
      return carve(c, start, units, zeroed);
    }
  }
  if (align_units == 1) fit_set(units, FIT_NONE);
  c = empty_chunks;
  if (c && !c->body_committed) {
    /* strict mode: its pages were uncommitted; charge them again */
    if (vam__va_commit((uint8_t *)c + VAM_UNIT_SIZE, VAM_CHUNK_SIZE - VAM_UNIT_SIZE) != 0) c = NULL;
    else c->body_committed = 1;
  }
  if (c) {
    list_remove(&empty_chunks, c);
    empty_count--;
  } else {
    c = chunk_new();
    if (c == NULL) return NULL;
  }
  list_insert_sorted(&chunks, c);
  fit_reopen(c, VAM_UNITS - 1);
  size_t start = find_run(c, units, align_units);
  return start ? carve(c, start, units, zeroed) : NULL;
}

vam_span_t *vam__span_alloc(size_t units, size_t align_units, bool *zeroed) {
  if (align_units == 0) align_units = 1;
  if (units == 0 || units >= VAM_UNITS || align_units >= VAM_UNITS) return NULL;
  pthread_mutex_lock(&vam__chunk_lock);
  vam_span_t *pg = span_alloc_locked(units, align_units, zeroed);
  pthread_mutex_unlock(&vam__chunk_lock);
  /* The purge ticks after serving (alloc.c): what this allocation reuses
   * is never given back a moment before it is needed. */
  vam__purge_note();
  return pg;
}

/* Units [start, start+n) of c are free again; with the lock held.  A chunk
 * that empties goes to the empty list (or is unmapped). */
static void units_freed_locked(vam_chunk_t *c, size_t start, size_t n) {
  bits_clear(c->used_map, start, n);
  c->free_units += (uint32_t)n;
  if (c->free_units != VAM_UNITS - 1) {
    /* The free run the freed units now belong to. */
    size_t lo = start, hi = start + n;
    while (lo > 1 && !bit_get(c->used_map, lo - 1)) lo--;
    while (hi < VAM_UNITS && !bit_get(c->used_map, hi)) hi++;
    fit_reopen(c, hi - lo);
    return;
  }
  fit_forget(c);
  list_remove(&chunks, c);
  if (empty_count < vam__options.chunk_cache || c->part_of_arena) {
    /* Keep it, committed, for reuse; the purge pass gives its pages back
     * once it has been idle for the purge delay (one madvise for the whole
     * body).  Chunks inside a larger reservation are kept too (unmapping
     * one would split it); they are unmapped only when memory is short. */
    list_insert_sorted(&empty_chunks, c);
    empty_count++;
  } else if (!chunk_unmap(c)) {
    list_insert_sorted(&empty_chunks, c);
    empty_count++;
  }
}

static uint8_t *guard_page(const vam_span_t *pg) {
  return pg->start + (size_t)pg->units * VAM_UNIT_SIZE - vam__os_config.page_size;
}

void vam__span_guard(vam_span_t *pg) {
  /* The split is counted: the map cap must see it (why.md item 7). */
  if (vam__os_noaccess(guard_page(pg), vam__os_config.page_size) == 0) {
    pg->guarded = 1;
    vam__va_note_split(2);
  }
}

/* false: the guard could not be lifted; the span must never be reused
 * (a later block there would fault), so it stays carved: a leak, counted. */
bool vam__span_unguard(vam_span_t *pg) {
  if (!pg->guarded) return true;
  if (vam__os_commit(guard_page(pg), vam__os_config.page_size) != 0) {
    VAM_COUNT(fallback_allocs);
    return false;
  }
  pg->guarded = 0;
  vam__va_note_split(-2);
  return true;
}

void vam__span_free(vam_span_t *pg) {
  if (!vam__span_unguard(pg)) return;
  vam_chunk_t *c = vam__chunk_of(pg);
  size_t start = (size_t)(pg - c->spans), n = pg->units;
  uint64_t now = vam__os_now_ms();
  pthread_mutex_lock(&vam__chunk_lock);
  for (size_t i = start; i < start + n; i++) memset(&c->spans[i], 0, sizeof c->spans[i]);
  VAM_GAUGE(committed_bytes, -(int64_t)(n * VAM_UNIT_SIZE));
  c->free_since_ms = now; /* the chunk's free units decay from the last free */
  units_freed_locked(c, start, n);
  pthread_mutex_unlock(&vam__chunk_lock);
  vam__purge_note();
}

void vam__chunk_sum_slabs(uint64_t *bin_mallocs, uint64_t *blocks_out) {
  /* Under the lock no span is given back or carved, so every descriptor
   * read here stays a descriptor; its counts may move under other
   * threads (a report is a snapshot, exact only when they are quiet). */
  pthread_mutex_lock(&vam__chunk_lock);
  for (vam_chunk_t *c = chunks; c; c = c->next) {
    for (size_t u = 1; u < VAM_UNITS;) {
      const vam_span_t *pg = &c->spans[u];
      if (pg->kind == VAM_SPAN_SMALL) {
        bin_mallocs[pg->bin] += pg->mallocs;
        *blocks_out += pg->used;
      }
      u += (pg->kind == VAM_SPAN_SMALL || pg->kind == VAM_SPAN_LARGE) && pg->units ? pg->units : 1;
    }
  }
  pthread_mutex_unlock(&vam__chunk_lock);
}

/* A span that sat unused in a thread cache for the purge delay: its pages
 * go back at once (it is still ours, so nothing races the madvise), then
 * its units.  Going through the chunk's own delay would keep them
 * resident for a second delay. */
void vam__span_free_idle(vam_span_t *pg) {
  vam_chunk_t *c = vam__chunk_of(pg);
  size_t start = (size_t)(pg - c->spans), n = pg->units;
  bool zeroed;
  if (vam__purge_ok_now() &&
      vam__va_purge((uint8_t *)c + start * VAM_UNIT_SIZE, n * VAM_UNIT_SIZE, &zeroed) == 0 &&
      zeroed) {
    pthread_mutex_lock(&vam__chunk_lock);
    bits_clear(c->dirty_map, start, n);
    pthread_mutex_unlock(&vam__chunk_lock);
  }
  vam__span_free(pg);
}

#define PURGE_BATCH 64

/* Unmap arenas whose every carved chunk is empty and idle for the delay
 * (purged or not: unmapping gives everything back). */
static void arenas_release_idle(uint64_t now_ms, uint64_t delay_ms, bool force) {
  pthread_mutex_lock(&vam__chunk_lock);
  for (size_t a = 0; a < ARENAS_MAX; a++) {
    arena_t *ar = &arenas[a];
    if (!ar->base || ar->holed || ar->carved == 0) continue;
    uint32_t idle = 0;
    for (vam_chunk_t *e = empty_chunks; e; e = e->next)
      if (e->arena_slot == a + 1 && (force || now_ms - e->free_since_ms >= delay_ms))
        idle++;
    if (idle != ar->carved) continue;
    uint32_t guarded = 0;
    for (vam_chunk_t *e = empty_chunks, *next; e; e = next) {
      next = e->next;
      if (e->arena_slot != a + 1) continue;
      list_remove(&empty_chunks, e);
      empty_count--;
      guarded += e->front_guarded;
      vam__chunkmap_set((uintptr_t)e, VAM_MAP_NONE);
    }
    uint32_t carved = ar->carved;
    if (vam__va_release(ar->base, ar->size) != 0) {
      /* Refused: the chunks stay ours, empty. */
      for (uint8_t *c = ar->base; c < ar->base + (size_t)carved * VAM_CHUNK_SIZE; c += VAM_CHUNK_SIZE) {
        vam__chunkmap_set((uintptr_t)c, VAM_MAP_CHUNK);
        list_insert_sorted(&empty_chunks, (vam_chunk_t *)c);
        empty_count++;
      }
      VAM_COUNT(chunk_release_failures);
      continue;
    }
    if (vam__va_strict()) vam__va_note_split(-(int)carved); /* its read/write islands */
    vam__va_note_split(-2 * (int)guarded);                  /* and its front guards */
    vam_stat_add(&vam__stats.chunks_released, carved);
    if (arena_current == a + 1) {
      arena_next = arena_end = NULL;
      arena_current = 0;
    }
    ar->base = NULL;
  }
  pthread_mutex_unlock(&vam__chunk_lock);
}

/* Free units idle for delay_ms go back to the OS.  The runs are taken out
 * of circulation (marked used) under the lock, purged without it, and
 * returned; so an allocation never races a madvise on its memory. */
uint64_t vam__chunk_purge(uint64_t now_ms, uint64_t delay_ms, bool force, size_t max_runs) {
  size_t limit = max_runs < PURGE_BATCH ? max_runs : PURGE_BATCH;
  struct { vam_chunk_t *c; uint16_t start, n; } runs[PURGE_BATCH];
  size_t k = 0;
  pthread_mutex_lock(&vam__chunk_lock);
  for (vam_chunk_t *c = chunks; c && k < limit; c = c->next) {
    if (c->free_since_ms == 0 || (!force && now_ms - c->free_since_ms < delay_ms)) continue;
    size_t u = 1;
    while (u < VAM_UNITS && k < limit) {
      if (bit_get(c->used_map, u) || !bit_get(c->dirty_map, u)) {
        u++;
        continue;
      }
      size_t from = u;
      while (u < VAM_UNITS && !bit_get(c->used_map, u) && bit_get(c->dirty_map, u)) u++;
      bits_set(c->used_map, from, u - from);
      c->free_units -= (uint32_t)(u - from);
      runs[k].c = c;
      runs[k].start = (uint16_t)from;
      runs[k].n = (uint16_t)(u - from);
      k++;
    }
    if (u >= VAM_UNITS) c->free_since_ms = 0; /* all of it is in this batch */
  }
  /* Empty chunks idle long enough (or whose decommit failed before and is
   * due again) are decommitted whole, outside the lock. */
  vam_chunk_t *idle_empty[PURGE_BATCH];
  size_t nidle = 0;
  for (vam_chunk_t *e = empty_chunks, *next; e && k + nidle < limit; e = next) {
    next = e->next;
    if (!bits_any(e->dirty_map, 1, VAM_UNITS - 1)) continue;
    if (!force && now_ms - e->free_since_ms < delay_ms) continue;
    list_remove(&empty_chunks, e);
    empty_count--;
    idle_empty[nidle++] = e;
  }
  pthread_mutex_unlock(&vam__chunk_lock);
  bool empty_gave_up = false;
  for (size_t i = 0; i < nidle; i++) {
    vam_chunk_t *e = idle_empty[i];
    if (!empty_gave_up) {
      chunk_decommit(e);
      empty_gave_up = bits_any(e->dirty_map, 1, VAM_UNITS - 1);
    }
    if (bits_any(e->dirty_map, 1, VAM_UNITS - 1)) e->free_since_ms = now_ms; /* failed: later */
    pthread_mutex_lock(&vam__chunk_lock);
    list_insert_sorted(&empty_chunks, e);
    empty_count++;
    pthread_mutex_unlock(&vam__chunk_lock);
  }
  arenas_release_idle(now_ms, delay_ms, force);
  if (k == 0) return 0;
  bool ok[PURGE_BATCH], zeroed[PURGE_BATCH];
  uint64_t bytes = 0;
  bool gave_up = empty_gave_up; /* one give-up per pass (purge.c backs off) */
  for (size_t i = 0; i < k; i++) {
    uint8_t *addr = (uint8_t *)runs[i].c + (size_t)runs[i].start * VAM_UNIT_SIZE;
    size_t len = (size_t)runs[i].n * VAM_UNIT_SIZE;
    zeroed[i] = false;
    if (gave_up) {
      ok[i] = false; /* the kernel just said no: not now (purge.c backs off) */
      continue;
    }
    ok[i] = vam__va_purge(addr, len, &zeroed[i]) == 0;
    gave_up = !ok[i];
    if (ok[i]) bytes += len;
  }
  pthread_mutex_lock(&vam__chunk_lock);
  for (size_t i = 0; i < k; i++) {
    vam_chunk_t *c = runs[i].c;
    if (ok[i] && zeroed[i]) bits_clear(c->dirty_map, runs[i].start, runs[i].n);
    else if (!ok[i] && c->free_since_ms == 0) c->free_since_ms = now_ms; /* try again later */
    units_freed_locked(c, runs[i].start, runs[i].n);
  }
  pthread_mutex_unlock(&vam__chunk_lock);
  return bytes;
}

/* Large realloc that shrinks: give the tail units back to the chunk. */
bool vam__span_shrink(vam_span_t *pg, size_t new_units) {
  vam_chunk_t *c = vam__chunk_of(pg);
  size_t start = (size_t)(pg - c->spans), n = pg->units;
  if (new_units == 0 || new_units >= n) return false;
  pthread_mutex_lock(&vam__chunk_lock);
  for (size_t i = start + new_units; i < start + n; i++) memset(&c->spans[i], 0, sizeof c->spans[i]);
  pg->units = (uint16_t)new_units;
  VAM_GAUGE(committed_bytes, -(int64_t)((n - new_units) * VAM_UNIT_SIZE));
  c->free_since_ms = vam__os_now_ms();
  units_freed_locked(c, start + new_units, n - new_units);
  pthread_mutex_unlock(&vam__chunk_lock);
  return true;
}

bool vam__span_try_grow(vam_span_t *pg, size_t new_units) {
  vam_chunk_t *c = vam__chunk_of(pg);
  size_t start = (size_t)(pg - c->spans), n = pg->units;
  if (new_units <= n) return true;
  if (start + new_units > VAM_UNITS) return false;
  bool ok = false;
  pthread_mutex_lock(&vam__chunk_lock);
  if (!bits_any(c->used_map, start + n, new_units - n)) {
    bits_set(c->used_map, start + n, new_units - n);
    bits_set(c->dirty_map, start + n, new_units - n);
    set_tails(c, start, n, new_units);
    c->free_units -= (uint32_t)(new_units - n);
    VAM_GAUGE(committed_bytes, (new_units - n) * VAM_UNIT_SIZE);
    pg->units = (uint16_t)new_units;
    ok = true;
  }
  pthread_mutex_unlock(&vam__chunk_lock);
  return ok;
}
