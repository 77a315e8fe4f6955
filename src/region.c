/* region.c: the pool of regions huge objects are carved from (huge.c).
 *
 * Objects are carved from regions (reservations of at least the object's
 * size, growing from 32 MiB to LARGE_POOL_MAX while the budget allows).  A
 * freed object becomes a free range, coalesced with free neighbours in its
 * region; an allocation takes the best-fitting range and leaves the rest
 * free.  So churn of 5..25 MiB blocks reuses address space (and, until the
 * purge delay passes, the very pages) with no mmap or munmap: the trade
 * tcmalloc makes, and the one that made it 10x faster than peers that
 * re-fault every block.
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
 * is retried on every huge free.  Nothing is forgotten (why.md item 4).
 *
 * huge.c sees regions only through the vam__region_* calls below. */
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

/* ---- what huge.c asks of the pool ------------------------------------------ */

uint8_t *vam__region_take(size_t map_size, size_t align, bool *zeroed) {
  if (__atomic_load_n(&range_count, __ATOMIC_RELAXED) == 0) return NULL; /* a peek */
  pthread_mutex_lock(&pool_lock);
  uint8_t *base = range_count ? pool_take(map_size, align, zeroed) : NULL;
  pthread_mutex_unlock(&pool_lock);
  return base;
}

uint8_t *vam__region_new(size_t map_size, size_t align, bool exact) { return region_new(map_size, align, exact); }

void vam__region_put(uint8_t *base, size_t size) { pool_put(base, size); }

bool vam__region_alone(const uint8_t *base, size_t size) {
  pthread_mutex_lock(&pool_lock);
  size_t reg = region_of(base);
  bool alone = reg != REGION_NONE && regions[reg].base == base && regions[reg].size == size;
  pthread_mutex_unlock(&pool_lock);
  return alone;
}

bool vam__region_at_end(const uint8_t *base, size_t size) {
  pthread_mutex_lock(&pool_lock);
  size_t reg = region_of(base);
  bool at_end = reg != REGION_NONE && regions[reg].base + regions[reg].size == base + size;
  pthread_mutex_unlock(&pool_lock);
  return at_end;
}

void vam__region_moved(const uint8_t *old_base, uint8_t *new_base, size_t new_size) {
  pthread_mutex_lock(&pool_lock);
  size_t reg = region_of(old_base);
  if (reg != REGION_NONE) regions[reg] = (region_t){new_base, new_size, regions[reg].must_release};
  pthread_mutex_unlock(&pool_lock);
}

void vam__region_grew(const uint8_t *base, size_t more) {
  pthread_mutex_lock(&pool_lock);
  size_t reg = region_of(base);
  if (reg != REGION_NONE) regions[reg].size += more;
  pthread_mutex_unlock(&pool_lock);
}

bool vam__region_take_next(const uint8_t *base, size_t size, size_t more) {
  const uint8_t *end = base + size;
  bool got = false;
  pthread_mutex_lock(&pool_lock);
  size_t reg = region_of(base);
  for (size_t i = 0; i < range_count && reg != REGION_NONE; i++) {
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
  return got;
}
