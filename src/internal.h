/* internal.h: prototypes shared between the core's files, grouped by the file
 * that defines them, plus the two declared-once tables (options, stats).
 *
 * Which file may call which: the floor table in src/README.md, the one
 * floor plan (checked by tests/unit/check_layers.py).
 * Every cross-file symbol is prefixed vam__ so the static library exports
 * nothing outside the vam_ namespace. */
#ifndef VAM_INTERNAL_H
#define VAM_INTERNAL_H

#include <errno.h>
#include <string.h>
#include "types.h"
#include "os/os.h"
#include "vamalloc.h"

#define vam_likely(x) __builtin_expect(!!(x), 1)
#define vam_unlikely(x) __builtin_expect(!!(x), 0)
#define vam_noinline __attribute__((noinline))
#define vam_always_inline inline __attribute__((always_inline))
#define vam_cold __attribute__((cold, noinline))

static inline size_t vam_align_up(size_t n, size_t a) { return (n + a - 1) & ~(a - 1); }
static inline bool vam_is_pow2(size_t a) { return a != 0 && (a & (a - 1)) == 0; }

/* ---- options.c: the options table -----------------------------------------
 * X(NAME, field, type, default, min, max, values, description)
 *   type bool: 0/1 (also true/false, yes/no, on/off)
 *   type uint: decimal in [min, max]
 *   type size: bytes with optional K/M/G suffix, in [min, max]
 *   type enum: one of the '|'-separated values, or its index
 *   type spec: a string checked by its own parser (the field holds a
 *              pointer into environ, which lives as long as the process) */
#define VAM_OPTIONS(X)                                                                      \
  X(STATS, stats, enum, 0, 0, 2, "off|text|json",                                           \
    "print a statistics summary to stderr at exit (1 = text)")                              \
  X(VERBOSE, verbose, bool, 0, 0, 1, "",                                                    \
    "log one line when vamalloc degrades or recovers")                                      \
  X(RETRY_MAX, retry_max, uint, 100, 0, 10000, "",                                          \
    "tries after EAGAIN from madvise/mprotect/mincore before giving up")                    \
  X(RETRY_DELAY_US, retry_delay_us, uint, 1000, 0, 1000000, "",                             \
    "sleep between those tries, in microseconds (0 still yields)")                          \
  X(CHUNK_CACHE, chunk_cache, uint, 4, 0, 1024, "",                                         \
    "empty 4 MiB chunks kept for reuse (purged when idle) instead of unmapped")                  \
  X(ON_CORRUPTION, on_corruption, enum, 0, 0, 2, "abort|warn|ignore",                       \
    "what to do on detected heap misuse (double, interior or invalid free, overwritten free list)")              \
  X(DONTDUMP, dontdump, bool, 0, 0, 1, "",                                                  \
    "exclude vamalloc's reservations from core dumps (marked once per reservation)")        \
  X(HOST_SHIM, host_shim, bool, 1, 0, 1, "",                                                \
    "route the host program's madvise/mincore through the capped retry (preload only)")     \
  X(HOST_DONTDUMP, host_dontdump, enum, 0, 0, 1, "keep|drop",                               \
    "drop: the host's MADV_DONTDUMP/DODUMP succeed without reaching the kernel")            \
  X(PURGE_DELAY_MS, purge_delay_ms, uint, 1000, 0, 3600000, "",                            \
    "free memory idle this long goes back to the OS (0 = at once)")                         \
  X(PURGE, purge, enum, 1, 0, 1, "free|dontneed",                                           \
    "how memory goes back: MADV_FREE (lazy, RSS drops under pressure) or MADV_DONTNEED")    \
  X(BACKGROUND, background, bool, 0, 0, 1, "",                                              \
    "a background thread purges on schedule even when the program makes no calls")         \
  X(LARGE_POOL_MAX, large_pool_max, size, 0, 0, (uint64_t)1 << 50, "",                      \
    "bytes of freed huge blocks kept warm for reuse (0 = auto: 1 GiB, at most 1/8 budget; < 32M: no pool)")  \
  X(VA_BUDGET, va_budget, size, 0, 0, (uint64_t)1 << 60, "",                                \
    "address space vamalloc may hold (0 = from RLIMIT_AS headroom and VA bits)")            \
  X(VA_BITS, va_bits, uint, 0, 0, 57, "",                                                   \
    "user address bits to stay below (0 = detect; lower simulates a smaller VA)")           \
  X(RESERVE_MAX, reserve_max, size, 0, 0, (uint64_t)1 << 60, "",                            \
    "largest speculative reservation (0 = auto: 1 GiB, at most 1/8 of the budget left)")    \
  X(MAP_MAX, map_max, uint, 0, 0, 1000000000, "",                                           \
    "treat vm.max_map_count as this (0 = read it); vamalloc keeps to half the headroom")    \
  X(COMMIT, commit, enum, 0, 0, 2, "auto|strict|lazy",                                      \
    "strict: reserve PROT_NONE, commit with mprotect; auto: strict when overcommit is 2")   \
  X(FAULTS, faults, spec, 0, 0, 0, "",                                                      \
    "fault injection rules, e.g. madvise=EAGAIN:every=3 (test builds only)")                \
  X(SECURE_WIPE_MAX, secure_wipe_max, size, 1024, 16, (uint64_t)1 << 20, "",                \
    "secure build: bytes at the start of a freed block wiped, and checked unwritten after the quarantine")

typedef enum { VAM_OPT_bool, VAM_OPT_uint, VAM_OPT_size, VAM_OPT_enum, VAM_OPT_spec } vam_opt_type_t;

typedef struct vam_options {
#define VAM_OPT_FIELD(NAME, field, type, def, min, max, values, doc) uint64_t field;
  VAM_OPTIONS(VAM_OPT_FIELD)
#undef VAM_OPT_FIELD
} vam_options_t;

enum { VAM_STATS_OFF = 0, VAM_STATS_ON_TEXT = 1, VAM_STATS_ON_JSON = 2 };
enum { VAM_CORRUPT_ABORT = 0, VAM_CORRUPT_WARN = 1, VAM_CORRUPT_IGNORE = 2 };
enum { VAM_HOST_DONTDUMP_KEEP = 0, VAM_HOST_DONTDUMP_DROP = 1 };
enum { VAM_COMMIT_AUTO = 0, VAM_COMMIT_STRICT = 1, VAM_COMMIT_LAZY = 2 };
enum { VAM_PURGE_FREE = 0, VAM_PURGE_DONTNEED = 1 };
static inline const char *vam__option_str(uint64_t field) { return (const char *)(uintptr_t)field; }

extern vam_options_t vam__options;
void vam__options_init(char **environ);
void vam__options_ignore(char **environ); /* secure-execution programs */
void vam__options_markdown(int fd);

/* ---- stats.c: the statistics table ----------------------------------------
 * The list itself is VAMALLOC_STATS_FIELDS in include/vamalloc.h (it also
 * declares the public vam_stats_t, whose order is ABI: add new statistics
 * at its end).  These views pick one kind each:
 * counters (monotonic, relaxed atomics; never on a fast path) and gauges
 * (current and peak).  X(name, doc) */
#define VAM_STAT_SKIP_(name, doc)
#define VAM_STAT_COUNTERS(X) VAMALLOC_STATS_FIELDS(VAM_STAT_SKIP_, X, VAM_STAT_SKIP_, VAM_STAT_SKIP_)
#define VAM_STAT_GAUGES(X) VAMALLOC_STATS_FIELDS(VAM_STAT_SKIP_, VAM_STAT_SKIP_, X, VAM_STAT_SKIP_)

typedef struct vam_stats_global {
#define VAM_STAT_CFIELD(name, doc) vam_atomic(uint64_t) name;
  VAM_STAT_COUNTERS(VAM_STAT_CFIELD)
#undef VAM_STAT_CFIELD
#define VAM_STAT_GFIELD(name, doc) vam_gauge_t name;
  VAM_STAT_GAUGES(VAM_STAT_GFIELD)
#undef VAM_STAT_GFIELD
} vam_stats_global_t;

extern vam_stats_global_t vam__stats;
#define VAM_COUNT(name) vam_stat_add(&vam__stats.name, 1)
#define VAM_GAUGE(name, delta) vam_gauge_add(&vam__stats.name, (int64_t)(delta))
/* Health: one bit per kind of trouble; the process is degraded while any
 * bit is set.  Transitions log one line with VAMALLOC_VERBOSE=1. */
enum {
  VAM_HEALTH_MMAP = 1u << 0,     /* the kernel refused a new mapping */
  VAM_HEALTH_MUNMAP = 1u << 1,   /* the kernel refused to drop one */
  VAM_HEALTH_DECOMMIT = 1u << 2, /* madvise gave up */
  VAM_HEALTH_META = 1u << 3,     /* metadata could not be allocated */
  VAM_HEALTH_COMMIT = 1u << 4,   /* a page-API commit was refused */
};
void vam__health_fail(unsigned bit, const char *reason);
void vam__health_ok(unsigned bit, const char *what);
/* The health bits now; *reason (the latest failure's) and *events (the
 * degrade events so far) when not NULL. */
unsigned vam__health_get(const char **reason, uint64_t *events);

/* ---- misuse.c: reports of caller misuse ------------------------------------
 * X(NAME, counter suffix, words in the report line).  Each kind counts in
 * the statistic misuse_<suffix>; the report is one stderr line, then abort
 * (VAMALLOC_ON_CORRUPTION=warn|ignore returns and the caller drops the
 * operation, so nothing is corrupted). */
#define VAM_MISUSE_KINDS(X)                                        \
  X(DOUBLE_FREE, double_free, "double free")                       \
  X(INTERIOR_FREE, interior_free, "interior free")                 \
  X(INVALID_POINTER, invalid_pointer, "invalid pointer")           \
  X(FREELIST_CORRUPT, freelist_corrupt, "free-list corruption")    \
  X(CANARY, canary, "canary overwritten")                          \
  X(WRITE_AFTER_FREE, write_after_free, "write after free")
enum {
#define VAM_MISUSE_ENUM(NAME, field, words) VAM_MISUSE_##NAME,
  VAM_MISUSE_KINDS(VAM_MISUSE_ENUM)
#undef VAM_MISUSE_ENUM
  VAM_MISUSE_COUNT
};
/* Report misuse of p found in op ("free", "malloc", ...).  Returns only
 * when VAMALLOC_ON_CORRUPTION is warn or ignore. */
void vam__misuse(unsigned kind, const void *p, const char *op);

/* ---- libc.c: allocation-free helpers --------------------------------------- */
typedef struct vam_buf {
  char data[1024];
  size_t len;
  int fd;
} vam_buf_t;
void vam__buf_init(vam_buf_t *b, int fd);
void vam__buf_str(vam_buf_t *b, const char *s);
void vam__buf_strn(vam_buf_t *b, const char *s, size_t n);
void vam__buf_u64(vam_buf_t *b, uint64_t v);
void vam__buf_i64(vam_buf_t *b, int64_t v);
void vam__buf_flush(vam_buf_t *b);
/* One line to stderr: "vamalloc: " + parts... (NULL-terminated) */
void vam__log(const char *first, ...);
bool vam__parse_u64(const char *s, uint64_t *out, bool allow_suffix);

/* ---- sizeclass.c ---------------------------------------------------------- */
extern uint8_t vam__bin_of_small[VAM_FAST_MAX + 1]; /* indexed by the size itself */
/* Above VAM_FAST_MAX classes are at least 128 bytes apart, with bounds on
 * multiples of 128: indexed by (size + 127) >> 7. */
extern uint8_t vam__bin_of_mid[VAM_MID_MAX / 128 + 1];
extern uint32_t vam__bin_size[VAM_BINS];
extern uint16_t vam__bin_units[VAM_BINS];
extern uint64_t vam__bin_recip[VAM_BINS];
extern uint64_t vam__bin_mul[VAM_BINS]; /* floor(2^64 / size) + 1 */
size_t vam__bin_of(size_t size); /* any size <= VAM_SMALL_MAX */
/* off / size of bin, for any off below the chunk size, by a multiply
 * (free's checks ran a 64-bit divide, 13% of sh6bench). */
static inline size_t vam__bin_div(size_t bin, size_t off) {
  return (size_t)(((uint64_t)off * vam__bin_recip[bin]) >> 40);
}
void vam__sizeclass_init(void);

/* ---- chunkmap.c: which 4 MiB ranges are ours -------------------------------- */
/* HUGE_FREED: the head of a huge block that was freed into the region
 * pool (still mapped): a later free of it is a double free. */
enum { VAM_MAP_NONE = 0, VAM_MAP_CHUNK = 1, VAM_MAP_HUGE_HEAD = 2, VAM_MAP_HUGE_USER = 3, VAM_MAP_HUGE_FREED = 4,
       VAM_MAP_ZERO = 5 /* secure build: the PROT_NONE range malloc(0) points into */ };
/* Top level: slot t holds its leaf's address minus t << VAM_MAP_LEAF_BITS,
 * so the chunk index itself, unmasked, finds the byte (one instruction
 * fewer on free's fast path). */
extern vam_atomic(uintptr_t) vam__chunkmap_top[(size_t)1 << VAM_MAP_TOP_BITS];
/* Atomic loads against chunkmap.c's release stores, plain movs on x86.
 * The slot's load is an acquire because it publishes the leaf (its zeroed
 * pages; a relaxed one is a race ThreadSanitizer reports); the kind byte's
 * is relaxed: nothing is published through it. */
static inline unsigned vam__chunkmap_kind_at(uintptr_t idx) { /* idx: addr >> CHUNK_SHIFT */
  uintptr_t top = idx >> VAM_MAP_LEAF_BITS;
  if (vam_unlikely(top >= ((uintptr_t)1 << VAM_MAP_TOP_BITS))) return VAM_MAP_NONE;
  uintptr_t leaf = vam_load_acquire(&vam__chunkmap_top[top]);
#if VAM_TSAN
  return vam_load_relaxed((vam_atomic(uint8_t) *)(leaf + idx));
#else
  /* A byte written only whole: a plain load reads the old or the new kind
   * on every target, and lets the compiler compare in memory (free's fast
   * path: one instruction); ThreadSanitizer builds keep the atomic. */
  return *(const uint8_t *)(leaf + idx);
#endif
}
static inline unsigned vam__chunkmap_kind(uintptr_t addr) {
  return vam__chunkmap_kind_at(addr >> VAM_CHUNK_SHIFT);
}
int vam__chunkmap_set(uintptr_t addr, unsigned kind);
extern pthread_mutex_t vam__map_lock;

/* ---- vabudget.c: every reservation ------------------------------------------ */
void vam__va_init(void);
/* Reserve through the budget.  commit: the range is usable at once (always
 * so in lazy mode); otherwise (strict mode) it is PROT_NONE until
 * vam__va_commit.  ENOMEM when the budget or the map cap says no. */
int vam__va_reserve(size_t size, size_t align, bool commit, void **out);
/* The same with the OS flags as given (VAM_RESERVE_NOACCESS or 0) whatever
 * the commit mode, and no DONTDUMP mark: the page API's reservations. */
int vam__va_reserve_flags(size_t size, size_t align, unsigned flags, void **out);
int vam__va_release(void *addr, size_t size);
/* Release all or part of a mapping; mappings_delta is -1 (whole), 0 (head
 * or tail) or +1 (a hole in the middle splits it). */
int vam__va_release_part(void *addr, size_t size, int mappings_delta);
bool vam__va_strict(void);
uint64_t vam__va_budget(void);
extern pthread_mutex_t vam__hint_lock;
int vam__va_commit(void *addr, size_t size);
/* Every decommit's end: err counted and the DECOMMIT health bit set with
 * fail_why, or cleared (ok_what); returns err. */
int vam__va_decommit_note(int err, const char *fail_why, const char *ok_what);
bool vam__va_decommit(void *addr, size_t size, bool *zeroed);
/* Give one range back (madvise through the capped retry; MADV_FREE unless
 * VAMALLOC_PURGE=dontneed), counted, with health flagged or cleared: 0 or
 * the errno.  *zeroed: reads as zero now. */
int vam__va_purge(void *addr, size_t len, bool *zeroed);
bool vam__va_lazy_free(void);
/* Purge state that purge.c sets and the floors under it read (so they never
 * call up).  due: chunk.c, heap.c and huge.c took or gave back memory since
 * the last tick (alloc.c and userheap.c then tick purge.c's clock). */
extern vam_atomic(bool) vam__purge_due;
extern vam_atomic(uint64_t) vam__purge_clock_ms; /* the last pass (ms): caches age by it */
extern vam_atomic(uint64_t) vam__purge_backoff_until_ms; /* 0, or backing off until then */
static inline void vam__purge_note(void) {
  if (!vam_load_relaxed(&vam__purge_due)) vam_store_relaxed(&vam__purge_due, true);
}
bool vam__purge_ok_now(void);
int vam__va_remap(void *addr, size_t old_size, size_t new_size, void *target, void **out);
/* Size of the next speculative reservation (a multiple of the chunk size,
 * at least min), from the budget left and the growth so far. */
size_t vam__va_arena_size(size_t min);
uint64_t vam__va_mappings(void);
void vam__va_note_split(int delta);
void vam__budget_print(int fd, bool json);

/* ---- meta.c: metadata with reuse -------------------------------------------- */
void *vam__meta_alloc(size_t size);
void vam__meta_free(void *p, size_t size);
extern pthread_mutex_t vam__meta_lock;

/* ---- chunk.c: spans of units ---------------------------------------------- */
extern pthread_mutex_t vam__chunk_lock;
static inline vam_chunk_t *vam__chunk_of(const void *p) {
  return (vam_chunk_t *)((uintptr_t)p & ~(uintptr_t)VAM_CHUNK_MASK);
}
/* The descriptor of p's unit, as the fast path sees it (a TAIL for the
 * later units of a multi-unit span). */
static inline vam_span_t *vam__unit_span_of(vam_chunk_t *c, const void *p) {
  /* One address: base + offsetof + (unit << 7), as a shift and a mask of
   * p (128-byte descriptors), so free's fast path spends no instruction
   * on the front guard's offset. */
  uintptr_t unit_bytes = ((uintptr_t)p >> (VAM_UNIT_SHIFT - 7)) & ((uintptr_t)(VAM_UNITS - 1) << 7);
  return &((vam_chunk_t *)((uintptr_t)c + unit_bytes))->spans[0];
}
/* The descriptor of the span holding p. */
static inline vam_span_t *vam__span_of(vam_chunk_t *c, const void *p) {
  vam_span_t *pg = vam__unit_span_of(c, p);
  return pg->kind == VAM_SPAN_TAIL ? pg - pg->head_offset : pg;
}
/* Take a span of `units` units whose start is aligned to align_units units.
 * Returns NULL (errno untouched) when memory is out: alloc.c releases what
 * is held unused and tries again, then sets ENOMEM. */
vam_span_t *vam__span_alloc(size_t units, size_t align_units, bool *zeroed);
void vam__span_free(vam_span_t *pg);
void vam__span_free_idle(vam_span_t *pg);
bool vam__span_try_grow(vam_span_t *pg, size_t new_units);
void vam__chunk_release_cached(void);
/* Give back free units idle for at least delay_ms (all, with force), one
 * madvise per contiguous run; returns bytes purged. */
uint64_t vam__chunk_purge(uint64_t now_ms, uint64_t delay_ms, bool force, size_t max_runs);
bool vam__span_shrink(vam_span_t *pg, size_t new_units);
/* Secure build: make the span's last OS page PROT_NONE (pg->guarded on
 * success); span_free undoes it before the units go back. */
void vam__span_guard(vam_span_t *pg);
bool vam__span_unguard(vam_span_t *pg);
/* For reports: adds every live slab's malloc count (by size class) and
 * sums the blocks still out. */
void vam__chunk_sum_slabs(uint64_t *bin_mallocs, uint64_t *blocks_out);

/* ---- slab.c: slabs and their encoded free lists -------------------------- */
void vam__slab_keys_init(void);
void vam__slab_init(vam_span_t *pg, size_t bin, vam_heap_t *heap);
/* The end of pg's lists: its chunk's list_end word (never a block; reads
 * as 0, which decodes out of the chunk with any key). */
static inline vam_block_t *vam__slab_end(const vam_span_t *pg) {
  return (vam_block_t *)&vam__chunk_of(pg)->list_end;
}
extern vam_span_t vam__empty_slab;
static inline bool vam__slab_has_free(const vam_span_t *pg) {
  return pg->free != vam__slab_end(pg) && pg != &vam__empty_slab;
}
/* p is the start of a carved block of pg.  With c = div_mul and
 * e = size * c mod 2^64 (1 <= e <= size), an offset j * size + r maps to
 * j * e + r * c: below capacity * e exactly when r = 0 and j < capacity,
 * and at least c > 2^46 otherwise; offsets below start wrap to nearly
 * 2^64 (the proof holds for |offset| < 2^32; test_slab checks every
 * class and offset).  One multiply and one compare. */
static inline bool vam__slab_block_ok(const vam_span_t *pg, const void *p) {
  /* (a non-owner may read a limit the owner is raising: a block it was
   * handed is below the value it synchronized with) */
  return (uint64_t)((uintptr_t)p - (uintptr_t)pg->start) * pg->div_mul < vam_racy_load(&pg->div_limit);
}
/* A free block's link decodes into its own chunk; live data (zeroed by
 * pop, or written by the program) almost never does: the key's top bits
 * match no pointer, integer, NaN-box or ordinary double (slab.c). */
static inline bool vam__block_looks_free(const vam_span_t *pg, const vam_block_t *b) {
  return ((b->link ^ pg->key) & ~(uintptr_t)VAM_CHUNK_MASK) == 0;
}
static inline void vam__slab_push(vam_span_t *pg, vam_block_t *b) {
  b->link = (uintptr_t)pg->free ^ (uintptr_t)b ^ pg->key;
  pg->free = b;
}
void *vam__slab_pop_corrupt(vam_span_t *pg);
/* ---- secure.c: the secure build's extras --------------------------------
 * The per-block steps are inline here (the fast paths use them); secure.c
 * has the rest and the design note. */
#if VAM_SECURE_BUILD
static inline uint64_t *vam__canary_at(const vam_span_t *pg, void *b) {
  return (uint64_t *)((uint8_t *)b + pg->block_size - VAM_CANARY_SIZE);
}
static inline uint64_t vam__canary_of(const vam_span_t *pg, const void *b) {
  return (uint64_t)pg->key ^ (uintptr_t)b ^ 0x5a5a5a5a5a5a5a5aull;
}
/* The bytes of a freed block that are wiped and checked: all of it up to
 * VAMALLOC_SECURE_WIPE_MAX, else its start (the tail keeps old data: the
 * cost of touching every byte twice is the block's size). */
static inline size_t vam__secure_wipe_bytes(const vam_span_t *pg) {
  size_t n = pg->block_size, max = vam__options.secure_wipe_max & ~(uint64_t)15;
  return n < max ? n : max;
}
/* b leaves its free list: its canary goes in. */
static inline void vam__secure_on_alloc(vam_span_t *pg, void *b) {
  *vam__canary_at(pg, b) = vam__canary_of(pg, b);
}
/* b is being freed: false (reported) when its canary was overwritten and
 * the program continues; the block is then dropped, not reused.  On true
 * the block is wiped and marked quarantined. */
bool vam__secure_canary_broken(vam_span_t *pg, void *b);
static inline bool vam__secure_on_free(vam_span_t *pg, void *b) {
  if (vam_unlikely(*vam__canary_at(pg, b) != vam__canary_of(pg, b))) return vam__secure_canary_broken(pg, b);
  memset(b, 0, vam__secure_wipe_bytes(pg));
  ((vam_block_t *)b)->link = pg->key ^ VAM_QUARANTINED;
  return true;
}
/* A block leaving quarantine still carries its mark and every wiped byte
 * is still zero: nothing wrote to it while it waited.  Checked here, by the
 * thread that wiped it (its cache still holds the block), not at reuse,
 * perhaps on another core.  16-byte ORs with no early exit (block sizes are
 * multiples of 16 past the 8-byte class). */
static inline bool vam__secure_still_clean(const vam_span_t *pg, const void *b) {
  typedef uint64_t v2_t __attribute__((vector_size(16), aligned(8), may_alias));
  const uint64_t *w = (const uint64_t *)b;
  size_t words = vam__secure_wipe_bytes(pg) / 8;
  v2_t any = {words > 1 ? w[1] : 0, w[0] ^ (pg->key ^ VAM_QUARANTINED)}, more = {0, 0};
  size_t i = 2;
  for (; i + 7 < words; i += 8) /* 64 bytes a step */
    any |= *(const v2_t *)&w[i] | *(const v2_t *)&w[i + 2], more |= *(const v2_t *)&w[i + 4] | *(const v2_t *)&w[i + 6];
  for (; i + 1 < words; i += 2) any |= *(const v2_t *)&w[i];
  any |= more;
  return (any[0] | any[1]) == 0;
}
/* Park b in the thread's ring; returns the block it displaces, or NULL. */
static inline void *vam__quarantine_swap(vam_heap_t *heap, void *b) {
  uint32_t i = heap->quarantine_pos++ % VAM_QUARANTINE;
  void *old = heap->quarantine[i];
  heap->quarantine[i] = b;
  return old;
}
#endif
uint64_t vam__secure_random(vam_heap_t *heap);
void *vam__zero_alloc(void);
void vam__zero_free(void *p);
bool vam__zero_live(const void *p);
#define VAM_GUARD_SLAB_RATIO 4
/* Hand out the head of pg's free list if its link decodes into the chunk
 * (every malloc path ends here); the link is wiped so that the block does
 * not look free while it is live.  NULL: the list is empty (its head is
 * the list_end word, reading 0) or the link is corrupt. */
static inline void *vam__slab_try_pop(vam_span_t *pg) {
  vam_block_t *b = pg->free;
  uintptr_t x = b->link ^ pg->key;
  if (vam_unlikely(x & ~(uintptr_t)VAM_CHUNK_MASK)) return NULL;
  pg->free = (vam_block_t *)(x ^ (uintptr_t)b);
  b->link = 0;
  pg->used++;
  pg->mallocs++;
#if VAM_SECURE_BUILD
  vam__secure_on_alloc(pg, b);
#endif
  return b;
}
/* The same for a list known not to be empty: a failed check is corruption,
 * reported (slab.c). */
static inline void *vam__slab_pop(vam_span_t *pg) {
  void *b = vam__slab_try_pop(pg);
  return vam_likely(b != NULL) ? b : vam__slab_pop_corrupt(pg);
}
bool vam__slab_extend(vam_span_t *pg);
uint32_t vam__slab_collect_remote(vam_span_t *pg);
void vam__slab_remote_free(vam_span_t *pg, vam_block_t *b);
bool vam__slab_holds_free(const vam_span_t *pg, const vam_block_t *b);

/* ---- heap.c: thread heaps ------------------------------------------------- */
extern vam_heap_t vam__empty_heap;
extern __thread vam_heap_t *vam__tls_heap;
/* NULL with *no_memory set: no span for a new slab (worth a retry once
 * unused memory is given back); NULL without: a corrupt list, reported. */
void *vam__heap_malloc_small_slow(vam_heap_t *heap, size_t bin, bool *no_memory);
void vam__heap_free_slow_small(vam_span_t *pg, vam_block_t *b);
void vam__heap_slab_empty(vam_heap_t *heap, vam_span_t *pg);
/* The thread heap's cache of freed large spans (heap.c). */
bool vam__heap_large_keep(vam_heap_t *heap, vam_span_t *pg);
vam_span_t *vam__heap_large_take(vam_heap_t *heap, size_t units);
void vam__heap_age_caches(vam_heap_t *heap);
vam_heap_t *vam__heap_for_slow_path(bool *locked);
void vam__heap_unlock_shared(bool locked);
void vam__heap_thread_init(void);
int vam__heap_init(void);
void vam__heap_pool_collect(void);
void vam__heap_trim_own(void);
void vam__heap_fork_prepare(void);
void vam__heap_fork_parent(void);
void vam__heap_fork_child(void);
void vam__heap_sum_counters(vam_heap_counters_t *sum);
void vam__heap_release_all(vam_heap_t *heap);
/* Call counters live on the calling thread's heap (plain adds: a shared
 * atomic was the hottest line of sh8bench's remote frees, both cores
 * fighting over it); threads without a heap use shared atomics.  The stats
 * sum both. */
extern vam_atomic(uint64_t) vam__heapless_calls[VAM_CALL_KINDS];
static inline void vam__count_call(unsigned kind) {
  vam_heap_t *h = vam__tls_heap;
  if (vam_likely(h != &vam__empty_heap)) h->counters.calls[kind]++;
  else vam_stat_add(&vam__heapless_calls[kind], 1);
}
void vam__heap_register(vam_heap_t *heap);
void vam__heap_unregister(vam_heap_t *heap);

/* ---- userheap.c: first-class heaps ----------------------------------------
 * The API floor (alloc.c) knows them only through these hooks, which
 * userheap.c, a floor above, installs when the first heap is made (no
 * block can belong to one before): free() of a heap's large or huge block
 * unlinks it from its heap, realloc keeps a heap's block in its heap. */
typedef struct vam_userheap_hooks {
  void (*forget_large)(vam_span_t *pg);
  void (*forget_huge)(vam_huge_t *hg);
  void *(*realloc)(vam_heap_t *h, void *p, size_t size);
} vam_userheap_hooks_t;
extern vam_userheap_hooks_t vam__userheap_hooks;
void vam__userheap_forget_large(vam_span_t *pg);
void vam__userheap_forget_huge(vam_huge_t *hg);
void vam__userheap_fork_prepare(void);
void vam__userheap_fork_parent(void);
void vam__userheap_fork_child(void);

/* ---- region.c: the region pool huge objects are carved from --------------- */
/* A range of map_size aligned to align from the pool, or NULL (*zeroed:
 * it reads as zeroes). */
uint8_t *vam__region_take(size_t map_size, size_t align, bool *zeroed);
/* A fresh region for an object of map_size (exact: of exactly that size;
 * else the rest joins the pool), or NULL. */
uint8_t *vam__region_new(size_t map_size, size_t align, bool exact);
/* An object's range (or its freed tail) goes back to the pool. */
void vam__region_put(uint8_t *base, size_t size);
bool vam__region_alone(const uint8_t *base, size_t size);  /* the object is its whole region */
bool vam__region_at_end(const uint8_t *base, size_t size); /* ... ends where its region ends */
void vam__region_moved(const uint8_t *old_base, uint8_t *new_base, size_t new_size); /* mremap moved it */
void vam__region_grew(const uint8_t *base, size_t more);   /* mremap grew it in place */
/* Take `more` bytes of the free range right after the object, if it has
 * that many in the same region. */
bool vam__region_take_next(const uint8_t *base, size_t size, size_t more);
uint64_t vam__huge_purge(uint64_t now_ms, uint64_t delay_ms, bool force, size_t max_runs);
void vam__huge_release_cache(void);
extern pthread_mutex_t vam__huge_cache_lock;

/* ---- huge.c: objects with their own mapping ------------------------------- */
/* NULL: a size no mapping holds, or out of memory (*no_memory set when no
 * region could be mapped: alloc.c releases unused memory and retries). */
void *vam__huge_alloc(size_t size, size_t align, bool zero, bool *no_memory);
void vam__huge_free(vam_huge_t *h);
vam_huge_t *vam__huge_of(const void *p);
bool vam__huge_contains(const void *p);
void *vam__huge_realloc(vam_huge_t *h, size_t size);

/* ---- pages.c: the page API ------------------------------------------------- */
extern pthread_mutex_t vam__pages_lock;
void vam__pages_fork_child(void);

/* ---- purge.c: when memory goes back ----------------------------------------- */
/* Called from the allocation and free slow paths: purges what is due, at
 * most every delay/4 (and clears vam__purge_due). */
void vam__purge_tick(void);
/* The same when a floor below noted something freed or taken. */
static inline void vam__purge_tick_if_due(void) {
  if (vam_unlikely(vam_load_relaxed(&vam__purge_due))) vam__purge_tick();
}
void vam__purge_start_background(void);
void vam__purge_fork_child(void);

/* ---- report.c: the snapshot, vam_stats_get, vam_health, the reports -------- */
void vam__stats_print(int fd, int format);
extern pthread_mutex_t vam__stats_lock; /* held while the totals are summed */

/* ---- alloc.c -------------------------------------------------------------- */
/* What p points into, the one classification every caller uses: the chunk
 * map's kind; in a chunk, the descriptor of the span holding p (SMALL,
 * LARGE, or not live); in a huge object, its header if p is its start. */
typedef struct vam_ref { unsigned map; vam_span_t *pg; vam_huge_t *huge; } vam_ref_t;
static inline vam_ref_t vam__classify(const void *p) {
  vam_ref_t r = {vam__chunkmap_kind((uintptr_t)p), NULL, NULL};
  if (r.map == VAM_MAP_CHUNK) r.pg = vam__span_of(vam__chunk_of(p), p);
  else if (r.map == VAM_MAP_HUGE_HEAD || r.map == VAM_MAP_HUGE_USER) r.huge = vam__huge_of(p);
  return r;
}
/* Allocate from a first-class heap whose lock the caller holds; NULL when
 * out of memory (errno not set). */
void *vam__alloc_in_heap(vam_heap_t *heap, size_t size, size_t align, bool zero);

/* ---- hostshim.c: the host's madvise/mincore (override.c exports them) ---- */
int vam__host_madvise(void *addr, size_t len, int advice);
int vam__host_mincore(void *addr, size_t len, unsigned char *vec);

/* ---- init.c --------------------------------------------------------------- */
extern vam_atomic(int) vam__init_state; /* 0 none, 1 running, 2 done */
void vam__init_slow(void);
static inline void vam__ensure_init(void) {
  if (vam_unlikely(vam_load_acquire(&vam__init_state) != 2)) vam__init_slow();
}

#endif
