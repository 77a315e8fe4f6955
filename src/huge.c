/* huge.c: objects above VAM_LARGE_MAX, and the pool of regions they are
 * carved from.
 *
 * An object starts on a chunk boundary with a PROT_NONE guard page and then
 * a one-page header, so free() finds the header by the same masking as for
 * chunks, and a linear overflow off whatever lies below (the previous
 * object of the region, another mapping) faults on the guard instead of
 * rewriting the header.  mremap moves only what follows the guard.  Over-aligned objects
 * (alignment above a page) sit further in; the chunk holding the user
 * pointer is then marked HUGE_USER in the chunk map and the header is found
 * by stepping back chunk by chunk to the HUGE_HEAD mark.
 *
 * The pool: objects are carved from regions (reservations of at least the
 * object's size, growing from 32 MiB to LARGE_POOL_MAX while the budget
 * allows).  A freed object becomes a free range, coalesced with free
 * neighbours in its region; an allocation takes the best-fitting range and
 * leaves the rest free.  So churn of 5..25 MiB blocks reuses address space
 * (and, until the purge delay passes, the very pages) with no mmap or
 * munmap: the trade tcmalloc makes, and the one that made it 10x faster
 * than peers that re-fault every block.
 *
 * Bounds: free bytes not yet purged stay under LARGE_POOL_MAX (the oldest
 * are purged first); a region that is wholly free is unmapped when the free
 * total passes the same bound, and every wholly-free region goes when
 * memory or the budget runs short, before any allocation fails.  With a
 * small pool (or a tight budget) every region is exactly one object, so
 * freeing gives the address space straight back.
 *
 * When the kernel refuses to unmap a region (munmap can fail with ENOMEM
 * when it would split a VMA past vm.max_map_count), it stays in the books,
 * decommitted, marked must_release: allocations may use it and its release
 * is retried on every huge free.  Nothing is forgotten (why.md item 4). */
#include "internal.h"

/* Regions are tracked in a table that grows (metadata, doubled under no
 * lock) up to what a range's 16-bit region index can name. */
#define REGIONS_INITIAL 64
#define REGIONS_LIMIT 65535
#define REGION_NONE ((size_t)-1)
#define RANGES_MAX 8192 /* free ranges: at most 2 per live object + 1 per region */
#define REGION_MIN ((size_t)32 << 20)
pthread_mutex_t vam__huge_cache_lock = PTHREAD_MUTEX_INITIALIZER;
#define pool_lock vam__huge_cache_lock

typedef struct region {
  uint8_t *base;
  size_t size;
  bool must_release; /* munmap was refused: give it back when we can */
} region_t;

/* A free range, inside one region; the array is sorted by address. */
typedef struct range {
  uint8_t *base;
  size_t size;
  uint64_t freed_ms;
  uint16_t region;
  bool dirty;   /* touched since the last purge (else clean: purged or
                   never used); neighbours merge only in the same state */
  bool zero;    /* clean and reads as zeroes */
} range_t;

static region_t regions_initial[REGIONS_INITIAL];
static region_t *regions = regions_initial;
static size_t region_cap = REGIONS_INITIAL;
static size_t region_count;
static range_t ranges[RANGES_MAX];
static size_t range_count;     /* written under pool_lock; peeked without */
static size_t free_bytes;      /* in ranges */
static size_t dirty_bytes;     /* in dirty ranges */
static size_t next_region = REGION_MIN;

/* 1 GiB by default: a churn of 5..25 MiB blocks over a few hundred MiB
 * live keeps its freed blocks warm instead of purging and re-faulting them
 * (what the purge delay then gives back after 1 s idle anyway). */
static size_t pool_max(void) {
  if (vam__options.large_pool_max) return (size_t)vam__options.large_pool_max;
  uint64_t eighth = vam__va_budget() / 8;
  return eighth < ((uint64_t)1 << 30) ? (size_t)eighth : (size_t)1 << 30;
}

/* The totals, recounted after every change (the table is small). */
static void recount(void) {
  free_bytes = dirty_bytes = 0;
  for (size_t i = 0; i < range_count; i++) {
    free_bytes += ranges[i].size;
    if (ranges[i].dirty) dirty_bytes += ranges[i].size;
  }
}

static void range_remove(size_t i) {
  memmove(&ranges[i], &ranges[i + 1], (range_count - i - 1) * sizeof ranges[0]);
  __atomic_store_n(&range_count, range_count - 1, __ATOMIC_RELAXED);
  recount();
}

/* Fold src into its neighbour dst. */
static void absorb(range_t *dst, const range_t *src) {
  if (src->base < dst->base) dst->base = src->base;
  dst->size += src->size;
  dst->zero = dst->zero && src->zero;
  if (src->freed_ms > dst->freed_ms) dst->freed_ms = src->freed_ms;
}

/* Insert a free range, merging with address neighbours of the same region.
 * False only when the table is full and nothing merged. */
static bool range_insert(range_t r) {
  size_t i = 0;
  while (i < range_count && ranges[i].base < r.base) i++;
  range_t *prev = i > 0 ? &ranges[i - 1] : NULL, *next = i < range_count ? &ranges[i] : NULL;
  bool with_prev = prev && prev->region == r.region && prev->base + prev->size == r.base &&
                   prev->dirty == r.dirty;
  bool with_next = next && next->region == r.region && r.base + r.size == next->base &&
                   next->dirty == r.dirty;
  if (with_prev) {
    absorb(prev, &r);
    if (with_next) {
      range_t n = *next;
      absorb(prev, &n);
      range_remove(i);
    }
  } else if (with_next) {
    absorb(next, &r);
  } else {
    if (range_count == RANGES_MAX) return false;
    memmove(&ranges[i + 1], &ranges[i], (range_count - i) * sizeof ranges[0]);
    ranges[i] = r;
    __atomic_store_n(&range_count, range_count + 1, __ATOMIC_RELAXED);
  }
  recount();
  return true;
}

/* Ranges i.. cover their whole region (adjacent ranges of one region). */
static bool region_whole_free(size_t i) {
  const region_t *g = &regions[ranges[i].region];
  if (ranges[i].base != g->base) return false;
  uint8_t *end = ranges[i].base + ranges[i].size;
  for (size_t j = i + 1; j < range_count && ranges[j].base == end && ranges[j].region == ranges[i].region; j++)
    end += ranges[j].size;
  return end == g->base + g->size;
}

/* Take every range of a region out of the table (they are consecutive). */
static void region_ranges_remove(size_t reg) {
  size_t i = 0;
  while (i < range_count) {
    if (ranges[i].region == reg) range_remove(i);
    else i++;
  }
}

static void region_drop(size_t reg) {
  regions[reg] = regions[region_count - 1];
  region_count--;
  for (size_t i = 0; i < range_count; i++)
    if (ranges[i].region == region_count) ranges[i].region = (uint16_t)reg;
}

/* Room for one more region in the table: grown (to twice, as metadata)
 * under no lock, since that may be a kernel call; the swap is under the
 * pool lock, which every reader of the table holds.  false: out of
 * metadata, or at REGIONS_LIMIT. */
static bool region_room(void) {
  pthread_mutex_lock(&pool_lock);
  size_t cap = region_cap;
  bool room = region_count < cap;
  pthread_mutex_unlock(&pool_lock);
  if (room) return true;
  if (cap >= REGIONS_LIMIT) return false;
  size_t ncap = cap * 2 < REGIONS_LIMIT ? cap * 2 : REGIONS_LIMIT;
  region_t *table = vam__meta_alloc(ncap * sizeof *table), *old = NULL;
  if (table == NULL) return false;
  size_t old_cap = 0;
  pthread_mutex_lock(&pool_lock);
  if (region_cap < ncap) {
    memcpy(table, regions, region_count * sizeof *table);
    old = regions;
    old_cap = region_cap;
    regions = table;
    region_cap = ncap;
    table = NULL;
  }
  room = region_count < region_cap;
  pthread_mutex_unlock(&pool_lock);
  if (table) vam__meta_free(table, ncap * sizeof *table); /* another thread grew it */
  if (old && old != regions_initial) vam__meta_free(old, old_cap * sizeof *old);
  return room;
}

/* Unmap wholly free regions: every one (all), or the oldest while the free
 * total is above the pool bound, plus any the kernel refused before.
 * Takes and drops the lock around each munmap. */
static void regions_release(bool all) {
  for (;;) {
    pthread_mutex_lock(&pool_lock);
    size_t pick = RANGES_MAX;
    for (size_t i = 0; i < range_count; i++) {
      if (!region_whole_free(i)) continue;
      bool wanted = all || regions[ranges[i].region].must_release || free_bytes > pool_max();
      if (wanted && (pick == RANGES_MAX || regions[ranges[i].region].must_release ||
                     ranges[i].freed_ms < ranges[pick].freed_ms))
        pick = i;
    }
    if (pick == RANGES_MAX) {
      pthread_mutex_unlock(&pool_lock);
      return;
    }
    range_t r = ranges[pick];
    size_t reg = r.region;
    region_t g = regions[reg];
    region_ranges_remove(reg);
    region_drop(reg);
    /* Before the range can be mapped again (by anyone), forget the heads
     * of the blocks freed in it. */
    for (uint8_t *c = g.base; c < g.base + g.size; c += VAM_CHUNK_SIZE)
      if (vam__chunkmap_kind((uintptr_t)c) == VAM_MAP_HUGE_FREED) vam__chunkmap_set((uintptr_t)c, VAM_MAP_NONE);
    pthread_mutex_unlock(&pool_lock);
    if (vam__va_release(g.base, g.size) == 0) continue;
    /* Refused: back in the books, decommitted, retried later (with no
     * slot to track it, at REGIONS_LIMIT, it stays mapped and unknown). */
    bool zeroed = false;
    bool clean = vam__va_decommit(g.base, g.size, &zeroed);
    bool room = region_room();
    pthread_mutex_lock(&pool_lock);
    if (!room || region_count == region_cap) {
      pthread_mutex_unlock(&pool_lock);
      VAM_COUNT(huge_leaked);
      return;
    }
    bool first_refusal = !g.must_release;
    g.must_release = true;
    regions[region_count] = g;
    r.region = (uint16_t)region_count++;
    r.base = g.base;
    r.size = g.size;
    r.dirty = !clean;
    r.zero = clean && zeroed;
    range_insert(r);
    pthread_mutex_unlock(&pool_lock);
    if (first_refusal) VAM_COUNT(huge_retained);
    return;
  }
}

void vam__huge_release_cache(void) { regions_release(true); }

/* Carve map_size bytes aligned to align from the best-fitting free range
 * (under the lock).  NULL when none fits. */
static bool tight_budget(void) { return vam__va_budget() / 64 < REGION_MIN; }

/* A window of adjacent free ranges i..j (same region), enough for the
 * object at `at`: dirty ranges differ in state from clean ones so they are
 * kept apart, but an object may span both. */
typedef struct window {
  size_t first, last, hot, span;
  uint8_t *at;
} window_t;

static bool window_at(size_t i, size_t map_size, size_t align, window_t *w) {
  uint8_t *at = (uint8_t *)vam_align_up((uintptr_t)ranges[i].base, align);
  uint8_t *end = at + map_size;
  size_t j = i, hot = 0, span = 0;
  for (;;) {
    const range_t *r = &ranges[j];
    uint8_t *lo = r->base > at ? r->base : at, *hi = r->base + r->size < end ? r->base + r->size : end;
    if (hi > lo && r->dirty) hot += (size_t)(hi - lo);
    span += r->size;
    if (r->base + r->size >= end) break;
    if (j + 1 == range_count || ranges[j + 1].region != r->region ||
        ranges[j + 1].base != r->base + r->size)
      return false;
    j++;
  }
  *w = (window_t){i, j, hot, span, at};
  return true;
}

static uint8_t *pool_take(size_t map_size, size_t align, bool *zeroed) {
  window_t best = {RANGES_MAX, 0, 0, 0, NULL}, w;
  /* On a tight budget regions are single objects, released whole: taking
   * a small piece of a big one would pin the rest, so stay within 2x. */
  bool tight = tight_budget();
  for (size_t i = 0; i < range_count; i++) {
    if (!window_at(i, map_size, align, &w)) continue;
    if (tight && w.span > 2 * map_size) continue;
    /* Warm pages first (reusing touched memory saves the page faults a
     * clean range costs), then the best fit. */
    if (best.first == RANGES_MAX || w.hot > best.hot || (w.hot == best.hot && w.span < best.span))
      best = w;
  }
  if (best.first == RANGES_MAX) return NULL;
  range_t head = ranges[best.first], tail = ranges[best.last];
  uint8_t *end = best.at + map_size;
  bool all_zero = true;
  for (size_t k = best.first; k <= best.last; k++) all_zero = all_zero && !ranges[k].dirty && ranges[k].zero;
  bool has_head = best.at > head.base, has_tail = tail.base + tail.size > end;
  size_t removed = best.last - best.first + 1;
  if (range_count - removed + has_head + has_tail > RANGES_MAX) return NULL;
  memmove(&ranges[best.first], &ranges[best.last + 1], (range_count - best.last - 1) * sizeof ranges[0]);
  __atomic_store_n(&range_count, range_count - removed, __ATOMIC_RELAXED);
  recount();
  *zeroed = all_zero;
  if (has_head) {
    head.size = (size_t)(best.at - head.base);
    range_insert(head);
  }
  if (has_tail) {
    tail.size = (size_t)(tail.base + tail.size - end);
    tail.base = end;
    range_insert(tail);
  }
  return best.at;
}

/* The next region's size: the doubling growth, within the pool bound and
 * 1/64 of the budget.  (A tight budget gets exact regions: region_new.) */
static size_t region_size(size_t need) {
  size_t max = pool_max();
  size_t want = next_region < max ? next_region : max;
  uint64_t budget = vam__va_budget();
  if (want > budget / 64) want = (size_t)(budget / 64);
  want &= ~(size_t)VAM_CHUNK_MASK;
  return want > need ? want : need;
}

/* Reserve a region for an object of map_size (under no lock); the object
 * takes its start and the rest goes into the pool. */
static uint8_t *region_new(size_t map_size, size_t align, bool exact) {
  pthread_mutex_lock(&pool_lock);
  bool room = !exact && range_count < RANGES_MAX;
  /* A tight budget, or a pool too small to hold a region (LARGE_POOL_MAX
   * under 32 MiB: no pooling), gets a region of exactly the object. */
  bool pooled = room && !tight_budget() && pool_max() >= REGION_MIN;
  size_t size = pooled ? region_size(vam_align_up(map_size, VAM_CHUNK_SIZE)) : map_size;
  pthread_mutex_unlock(&pool_lock);
  void *base = NULL;
  if (size > map_size && vam__va_reserve(size, align, false, &base) != 0) size = map_size;
  if (base == NULL && vam__va_reserve(map_size, align, false, &base) != 0) return NULL;
  if (vam__va_commit(base, map_size) != 0) {
    vam__va_release(base, size);
    return NULL;
  }
  pthread_mutex_lock(&pool_lock);
  while (region_count == region_cap) {
    pthread_mutex_unlock(&pool_lock);
    if (!region_room()) {
      /* No slot to track it: give the reservation back and fail. */
      vam__va_release(base, size);
      return NULL;
    }
    pthread_mutex_lock(&pool_lock);
  }
  regions[region_count] = (region_t){base, size, false};
  uint16_t reg = (uint16_t)region_count++;
  bool tail_kept = size == map_size;
  if (size > map_size) {
    if (next_region < pool_max()) next_region *= 2;
    tail_kept = range_insert(
        (range_t){(uint8_t *)base + map_size, size - map_size, vam__os_now_ms(), reg, false, true});
    if (!tail_kept) regions[reg].size = map_size; /* the region is the object alone */
  }
  pthread_mutex_unlock(&pool_lock);
  /* Range table full: the unused tail goes back (a head-or-tail cut). */
  if (!tail_kept) vam__va_release_part((uint8_t *)base + map_size, size - map_size, 0);
  return base;
}

/* The region holding addr (under the lock). */
static size_t region_of(const uint8_t *addr) {
  for (size_t i = 0; i < region_count; i++)
    if (addr >= regions[i].base && addr < regions[i].base + regions[i].size) return i;
  return REGION_NONE;
}

/* Decommit free ranges idle for delay_ms (all with force). */
/* Purge ranges[i], taken out of circulation while the madvise runs (the
 * lock is held on entry and on return, dropped in between).  0 or the
 * errno; a failure leaves the range dirty, due again at now_ms + delay. */
static int purge_range_at(size_t i, uint64_t now_ms) {
  range_t e = ranges[i];
  range_remove(i);
  pthread_mutex_unlock(&pool_lock);
  bool zeroed;
  int err = vam__va_purge(e.base, e.size, &zeroed);
  if (err == 0) {
    e.dirty = false;
    e.zero = zeroed;
  } else {
    e.freed_ms = now_ms;
  }
  pthread_mutex_lock(&pool_lock);
  if (!range_insert(e)) VAM_COUNT(huge_leaked); /* table filled meanwhile: still mapped, ours */
  return err;
}

/* Decommit free ranges idle for delay_ms (all with force). */
uint64_t vam__huge_purge(uint64_t now_ms, uint64_t delay_ms, bool force, size_t max_runs) {
  uint64_t bytes = 0;
  pthread_mutex_lock(&pool_lock);
  for (size_t rounds = 0; rounds < RANGES_MAX && rounds < max_runs; rounds++) {
    size_t i = 0;
    while (i < range_count && (!ranges[i].dirty || (!force && now_ms - ranges[i].freed_ms < delay_ms))) i++;
    if (i == range_count) break;
    size_t size = ranges[i].size;
    if (purge_range_at(i, now_ms) != 0) break; /* no more this pass: purge.c backs off */
    bytes += size;
  }
  pthread_mutex_unlock(&pool_lock);
  regions_release(false);
  return bytes;
}

/* Purge the oldest warm ranges until the warm total is within the bound. */
static void pool_trim_dirty(void) {
  pthread_mutex_lock(&pool_lock);
  for (int rounds = 0; rounds < RANGES_MAX && dirty_bytes > pool_max(); rounds++) {
    size_t oldest = RANGES_MAX;
    for (size_t i = 0; i < range_count; i++)
      if (ranges[i].dirty && (oldest == RANGES_MAX || ranges[i].freed_ms < ranges[oldest].freed_ms))
        oldest = i;
    if (oldest == RANGES_MAX) break;
    if (purge_range_at(oldest, vam__os_now_ms()) != 0) break; /* the purge pass retries */
  }
  pthread_mutex_unlock(&pool_lock);
}

/* Give an object's range back to the pool. */
static void pool_put(uint8_t *base, size_t size) {
  pthread_mutex_lock(&pool_lock);
  size_t reg = region_of(base);
  bool kept = reg != REGION_NONE &&
              range_insert((range_t){base, size, vam__os_now_ms(), (uint16_t)reg, true, false});
  pthread_mutex_unlock(&pool_lock);
  if (!kept) {
    /* Only when the range table is full: the memory stays mapped and
     * ours; decommit it so it costs no RSS.  It rejoins the pool when a
     * neighbour is freed next to it. */
    vam__va_decommit(base, size, NULL);
    VAM_COUNT(huge_leaked);
  }
  pool_trim_dirty();
  regions_release(false);
}

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
  pthread_mutex_lock(&pool_lock);
  uint8_t *base = range_count ? pool_take(map_size, map_align, &zeroed) : NULL;
  pthread_mutex_unlock(&pool_lock);
  vam__purge_note(); /* alloc.c ticks after: what is reused is not purged first */
  if (base && vam__va_commit(base, map_size) != 0) {
    pool_put(base, map_size); /* strict mode could not charge it again */
    base = NULL;
  }
  if (base) {
    VAM_COUNT(huge_cache_hits);
  } else {
    VAM_COUNT(huge_cache_misses);
    zeroed = true; /* fresh pages */
    base = region_new(map_size, map_align, false);
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
    pool_put(base, map_size);
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
  pool_put(base, map_size);
  vam__purge_note();
}

/* Resize without copying where possible.  Shrink gives the tail to the
 * pool; grow takes the free range right after the object; an object alone
 * in its region is resized with mremap, in place or by moving its pages to
 * a fresh reservation (MREMAP_FIXED, so the header stays chunk-aligned).
 * Otherwise the object is copied once into a region of its own, so the
 * next growth can use mremap.  NULL: out of memory, h unchanged. */
static bool alone_in_region(const vam_huge_t *h, size_t *reg) {
  *reg = region_of(h->map_base);
  return *reg != REGION_NONE && regions[*reg].base == h->map_base && regions[*reg].size == h->map_size;
}

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
  pthread_mutex_lock(&pool_lock);
  size_t reg = region_of(old_base);
  if (reg != REGION_NONE) regions[reg] = (region_t){new_base, new_map, regions[reg].must_release};
  pthread_mutex_unlock(&pool_lock);
  h->map_base = new_base;
  h->map_size = new_map;
  h->user = new_base + header;
  h->usable = usable;
  return h->user;
}

/* The object ends where its region ends (under no lock). */
static bool at_region_end(const vam_huge_t *h) {
  pthread_mutex_lock(&pool_lock);
  size_t reg = region_of(h->map_base);
  bool at_end = reg != REGION_NONE && regions[reg].base + regions[reg].size == h->map_base + h->map_size;
  pthread_mutex_unlock(&pool_lock);
  return at_end;
}

/* Grow the region's last object in place with mremap (never moves). */
static void *huge_grow_in_place(vam_huge_t *h, size_t new_map, size_t usable) {
  void *out = NULL;
  size_t more = new_map - h->map_size, page = vam__os_config.page_size;
  if (vam__va_remap(h->map_base + page, h->map_size - page, new_map - page, NULL, &out) != 0) return NULL;
  pthread_mutex_lock(&pool_lock);
  size_t reg = region_of(h->map_base);
  if (reg != REGION_NONE) regions[reg].size += more;
  pthread_mutex_unlock(&pool_lock);
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
    size_t reg;
    pthread_mutex_lock(&pool_lock);
    bool alone = alone_in_region(h, &reg);
    pthread_mutex_unlock(&pool_lock);
    /* Alone in its region: mremap hands the tail's address space back;
     * otherwise the tail joins the pool. */
    if (!alone || huge_remap(h, new_map, usable) == NULL) {
      pool_put(end - (old_map - new_map), old_map - new_map);
      h->map_size = new_map;
      h->usable = usable;
    }
  } else {
    size_t more = new_map - old_map, reg;
    bool got = false, alone;
    pthread_mutex_lock(&pool_lock);
    alone = alone_in_region(h, &reg);
    for (size_t i = 0; i < range_count && !alone; i++) {
      range_t *r = &ranges[i];
      if (r->base != end) continue;
      if (r->size >= more && r->region == reg) {
        got = true;
        if (r->size == more) {
          range_remove(i);
        } else {
          r->base += more;
          r->size -= more;
          recount();
        }
      }
      break;
    }
    pthread_mutex_unlock(&pool_lock);
    if (!got) result = NULL;
    if (got) {
      if (vam__va_commit(end, more) != 0) {
        pool_put(end, more);
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
      uint8_t *base = region_new(new_map, VAM_CHUNK_SIZE, true);
      if (base == NULL) return NULL;
      if (vam__chunkmap_set((uintptr_t)base, VAM_MAP_HUGE_HEAD) != 0) {
        pool_put(base, new_map);
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
      if (front_unguard(h)) pool_put(h->map_base, old_map);
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
