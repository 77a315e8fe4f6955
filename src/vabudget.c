/* vabudget.c: the one place that decides about address-space reservations.
 *
 * At init it reads what this process can really map (os.h's platform
 * facts: RLIMIT_AS and VmSize, the VA bits of this machine, overcommit
 * mode, vm.max_map_count and the current map count), applies the
 * VAMALLOC_VA_* settings (clamped, one line each when they ask for more
 * than there is), and from then on every mapping the allocator makes or
 * drops goes through here:
 *  - a reservation that would take vamalloc past its VA budget or its share
 *    of the map-count headroom is refused before the kernel is asked;
 *  - speculative reservations (chunk arenas) start at one 4 MiB chunk and
 *    double while the budget is plentiful, up to RESERVE_MAX (1 GiB, and
 *    never more than 1/8 of what is left), so nothing is reserved at
 *    start-up that the budget cannot afford (why.md items 2, 3, 6);
 *  - with fewer VA bits asked for than the machine has, every reservation
 *    is placed below 2^bits with MAP_FIXED_NOREPLACE hints, walking down
 *    from the top and never below vm.mmap_min_addr;
 *  - strict commit (VAMALLOC_COMMIT=strict, or auto under overcommit mode
 *    2): chunks are reserved PROT_NONE, which is not charged, committed
 *    with mprotect in whole-chunk steps and uncommitted by mapping PROT_NONE
 *    over them again, which returns the charge; in lazy mode reservations
 *    are read/write MAP_NORESERVE and decommit is a madvise, which never
 *    splits a VMA;
 *  - every refusal by the kernel becomes health state, and DONTDUMP (when
 *    asked for) is marked once per reservation, never per chunk;
 *  - every decommit and purge (madvise through the capped retry) ends in
 *    vam__va_decommit_note: counted, health flagged or cleared (but the
 *    purge of an empty chunk's descriptor pages, chunk.c, which is only
 *    counted); when to purge is purge.c's policy;
 *  - the page API (pages.c) reserves through vam__va_reserve_flags, always
 *    PROT_NONE unless asked to commit, whatever the commit mode, and may
 *    release part of a reservation (vam__va_release_part). */
#include "internal.h"

static struct {
  vam_os_platform_t plat;
  unsigned va_bits;
  bool place_low;          /* simulate fewer VA bits with hints */
  uint64_t budget;         /* bytes vamalloc may hold reserved */
  const char *budget_how;
  uint64_t map_limit;      /* mappings vamalloc may hold */
  uint64_t reserve_max;
  uint64_t last_arena;
  bool strict;
  uintptr_t hint_cursor;
} B = {.va_bits = 47, .budget = UINT64_MAX, .map_limit = 32768, .reserve_max = (uint64_t)1 << 30};

pthread_mutex_t vam__hint_lock = PTHREAD_MUTEX_INITIALIZER;
#define hint_lock vam__hint_lock
static vam_atomic(int64_t) splits;

static void clamp_line(const char *name, uint64_t asked, uint64_t used, const char *why) {
  vam_buf_t b;
  vam__buf_init(&b, 2);
  vam__buf_str(&b, "vamalloc: VAMALLOC_");
  vam__buf_str(&b, name);
  vam__buf_str(&b, "=");
  vam__buf_u64(&b, asked);
  vam__buf_str(&b, " exceeds ");
  vam__buf_str(&b, why);
  vam__buf_str(&b, "; using ");
  vam__buf_u64(&b, used);
  vam__buf_str(&b, "\n");
  vam__buf_flush(&b);
}

void vam__va_init(void) {
  vam_os_platform_t *p = &B.plat;
  vam__os_platform(p);
  /* VA bits: detected, or fewer when asked (never more than there are). */
  B.va_bits = p->va_bits > VAM_VA_BITS_MAX ? VAM_VA_BITS_MAX : p->va_bits;
  if (vam__options.va_bits) {
    unsigned asked = (unsigned)vam__options.va_bits;
    if (asked > B.va_bits) {
      clamp_line("VA_BITS", asked, B.va_bits, "the user address bits of this machine");
      vam__options.va_bits = B.va_bits;
    } else if (asked < 32) {
      clamp_line("VA_BITS", asked, 32, "what vamalloc can work in (at least 32 bits)");
      B.va_bits = 32;
      B.place_low = true;
    } else if (asked < B.va_bits) {
      B.va_bits = asked;
      B.place_low = true;
    }
  }
  B.hint_cursor = (uintptr_t)1 << B.va_bits;
  /* The budget: what RLIMIT_AS leaves, at most half the VA space. */
  uint64_t space = (uint64_t)1 << (B.va_bits - 1);
  B.budget = space;
  B.budget_how = "half of the user address space";
  if (p->rlimit_as != UINT64_MAX) {
    uint64_t head = p->rlimit_as > p->vmsize ? p->rlimit_as - p->vmsize : 0;
    if (head < B.budget) {
      B.budget = head;
      B.budget_how = "RLIMIT_AS minus VmSize at start-up";
    }
  }
  if (vam__options.va_budget) {
    if (vam__options.va_budget > B.budget) {
      clamp_line("VA_BUDGET", vam__options.va_budget, B.budget, B.budget_how);
    } else {
      B.budget = vam__options.va_budget;
      B.budget_how = "VAMALLOC_VA_BUDGET";
    }
  }
  /* Mappings: half of the headroom under vm.max_map_count (or MAP_MAX). */
  uint64_t max_maps = p->max_map_count ? p->max_map_count : 65530;
  if (vam__options.map_max) {
    if (p->max_map_count && vam__options.map_max > p->max_map_count)
      clamp_line("MAP_MAX", vam__options.map_max, p->max_map_count, "vm.max_map_count");
    else
      max_maps = vam__options.map_max;
  }
  uint64_t headroom = max_maps > p->map_count ? max_maps - p->map_count : 0;
  B.map_limit = headroom / 2 > 16 ? headroom / 2 : 16;
  /* Speculative reservations: 1 GiB at most, 1/8 of the budget. */
  B.reserve_max = (uint64_t)1 << 30;
  if (vam__options.reserve_max) {
    if (vam__options.reserve_max > B.budget)
      clamp_line("RESERVE_MAX", vam__options.reserve_max, B.budget, "the VA budget");
    else
      B.reserve_max = vam__options.reserve_max;
  }
  B.strict = vam__options.commit == VAM_COMMIT_STRICT ||
             (vam__options.commit == VAM_COMMIT_AUTO && p->overcommit_mode == 2);
}

bool vam__va_strict(void) { return B.strict; }
uint64_t vam__va_budget(void) { return B.budget; }

static uint64_t reserved_now(void) {
  int64_t r = vam_load_relaxed(&vam__stats.reserved_bytes.current);
  return r > 0 ? (uint64_t)r : 0;
}

size_t vam__va_arena_size(size_t min) {
  uint64_t left = B.budget > reserved_now() ? B.budget - reserved_now() : 0;
  uint64_t size = B.last_arena ? B.last_arena * 2 : VAM_CHUNK_SIZE;
  if (size > B.reserve_max) size = B.reserve_max;
  if (size > left / 8) size = left / 8;
  size &= ~(uint64_t)VAM_CHUNK_MASK;
  if (size < min) size = min;
  B.last_arena = size;
  return (size_t)size;
}

/* Below 2^va_bits: walk a cursor down from the top, trying exact
 * placements; a range in the way moves the cursor below it. */
static int reserve_low(size_t size, size_t align, unsigned flags, void **out) {
  pthread_mutex_lock(&hint_lock);
  uintptr_t floor = vam_align_up((size_t)B.plat.mmap_min_addr, align);
  int err = ENOMEM;
  for (int wraps = 0; wraps < 2 && err; wraps++) {
    for (int tries = 0; tries < 4096; tries++) {
      if (B.hint_cursor < floor + size) break;
      uintptr_t at = (B.hint_cursor - size) & ~(uintptr_t)(align - 1);
      if (at < floor) break;
      err = vam__os_reserve(size, align, flags, (void *)at, out);
      if (err == 0) {
        B.hint_cursor = at;
        break;
      }
      if (err != EEXIST) break;
      B.hint_cursor = at; /* something is there: try below it */
      err = ENOMEM;
    }
    if (err) B.hint_cursor = (uintptr_t)1 << B.va_bits; /* freed ranges above: once more */
  }
  pthread_mutex_unlock(&hint_lock);
  return err;
}

/* Every reservation: the budget and map cap first, then the kernel. */
int vam__va_reserve_flags(size_t size, size_t align, unsigned flags, void **out) {
  if (vam__va_mappings() + (uint64_t)(vam_load_relaxed(&splits) > 0 ? vam_load_relaxed(&splits) : 0) >=
          B.map_limit ||
      reserved_now() + size > B.budget) {
    VAM_COUNT(budget_refusals);
    vam__health_fail(VAM_HEALTH_MMAP, "VA budget or map cap reached");
    return ENOMEM;
  }
  int err = B.place_low ? reserve_low(size, align, flags, out)
                        : vam__os_reserve(size, align, flags, NULL, out);
  if (err) {
    vam__health_fail(VAM_HEALTH_MMAP, "mmap refused: memory or address space exhausted");
    return err;
  }
  vam__health_ok(VAM_HEALTH_MMAP, "mmap works again");
  VAM_GAUGE(reserved_bytes, size);
  VAM_GAUGE(mappings, 1);
  return 0;
}

int vam__va_reserve(size_t size, size_t align, bool commit, void **out) {
  int err = vam__va_reserve_flags(size, align, (B.strict && !commit) ? VAM_RESERVE_NOACCESS : 0, out);
  if (err == 0 && vam__options.dontdump && vam__os_dontdump(*out, size) != 0) VAM_COUNT(dontdump_failures);
  return err;
}

/* mappings_delta: how the release changes the number of mappings (-1 for
 * a whole mapping, 0 for a head or tail, +1 for a hole in the middle). */
int vam__va_release_part(void *addr, size_t size, int mappings_delta) {
  int err = vam__os_release(addr, size);
  if (err) {
    vam__health_fail(VAM_HEALTH_MUNMAP, "munmap refused: range kept as a decommitted region");
    return err;
  }
  vam__health_ok(VAM_HEALTH_MUNMAP, "munmap works again");
  VAM_GAUGE(reserved_bytes, -(int64_t)size);
  VAM_GAUGE(mappings, mappings_delta);
  return 0;
}

int vam__va_release(void *addr, size_t size) { return vam__va_release_part(addr, size, -1); }

void vam__va_note_split(int delta) { atomic_fetch_add(&splits, delta); }

/* Strict mode: make a PROT_NONE range usable (charged).  On failure the
 * range stays as it was: not committed. */
int vam__va_commit(void *addr, size_t size) {
  if (!B.strict) return 0;
  int err = vam__os_commit(addr, size);
  if (err) {
    VAM_COUNT(commit_failures);
    vam__health_fail(VAM_HEALTH_MMAP, "mprotect refused to commit: commit limit reached");
    return err;
  }
  vam__health_ok(VAM_HEALTH_MMAP, "commit works again");
  return 0;
}

/* The end of every decommit (a purge, an uncommit, the page API's): a
 * failure counts in decommit_failures and sets the DECOMMIT health bit
 * with fail_why; a success clears it with ok_what.  Returns err. */
int vam__va_decommit_note(int err, const char *fail_why, const char *ok_what) {
  if (err) {
    VAM_COUNT(decommit_failures);
    vam__health_fail(VAM_HEALTH_DECOMMIT, fail_why);
  } else {
    vam__health_ok(VAM_HEALTH_DECOMMIT, ok_what);
  }
  return err;
}

#define MADVISE_GAVE_UP "madvise gave up: pages stay committed, retried later"
#define MADVISE_WORKS "madvise works again"

/* Give a range's pages back; false when the kernel said no (the pages stay
 * committed and their contents unchanged).  Strict mode also returns the
 * commit charge, and the range must be committed again before use. */
bool vam__va_decommit(void *addr, size_t size, bool *zeroed) {
  bool z = false;
  int err;
  if (B.strict) {
    err = vam__os_uncommit(addr, size);
    z = (err == 0);
  } else {
    err = vam__os_decommit(addr, size, &z);
  }
  if (zeroed) *zeroed = (err == 0) && z;
  return vam__va_decommit_note(err, MADVISE_GAVE_UP, MADVISE_WORKS) == 0;
}

bool vam__va_lazy_free(void) { return vam__options.purge == VAM_PURGE_FREE; }

/* The purge state purge.c sets and the floors under it read: internal.h. */
vam_atomic(bool) vam__purge_due;
vam_atomic(uint64_t) vam__purge_clock_ms;
vam_atomic(uint64_t) vam__purge_backoff_until_ms;

bool vam__purge_ok_now(void) {
  uint64_t until = vam_load_relaxed(&vam__purge_backoff_until_ms);
  return until == 0 || vam__os_now_ms() >= until;
}

int vam__va_purge(void *addr, size_t len, bool *zeroed) {
  *zeroed = false;
  int err = vam__os_purge(addr, len, vam__va_lazy_free(), zeroed);
  if (err == 0) {
    VAM_COUNT(purge_runs);
    vam_stat_add(&vam__stats.purged_bytes, len);
  }
  return vam__va_decommit_note(err, MADVISE_GAVE_UP, MADVISE_WORKS);
}

uint64_t vam__va_mappings(void) {
  int64_t m = vam_load_relaxed(&vam__stats.mappings.current);
  return m > 0 ? (uint64_t)m : 0;
}

/* Resize a mapping in place (target NULL) or move it onto target, a
 * reservation of new_size made through vam__va_reserve. */
int vam__va_remap(void *addr, size_t old_size, size_t new_size, void *target, void **out) {
  if (!target && new_size > old_size && reserved_now() + (new_size - old_size) > B.budget) {
    VAM_COUNT(budget_refusals);
    return ENOMEM;
  }
  int err = vam__os_remap(addr, old_size, new_size, target, out);
  if (err) return err;
  if (target) {
    /* the old mapping is gone; target was already counted */
    VAM_GAUGE(reserved_bytes, -(int64_t)old_size);
    VAM_GAUGE(mappings, -1);
  } else {
    VAM_GAUGE(reserved_bytes, (int64_t)new_size - (int64_t)old_size);
  }
  return 0;
}

/* tools/vam-budget's report. */
void vam__budget_print(int fd, bool json) {
  vam_buf_t b;
  vam__buf_init(&b, fd);
  const vam_os_platform_t *p = &B.plat;
  struct { const char *key; uint64_t v; const char *text; } rows[] = {
      {"va_bits", B.va_bits, NULL},
      {"va_bits_detected", p->va_bits, NULL},
      {"va_bits_how", 0, B.place_low ? "VAMALLOC_VA_BITS (placed below 2^bits with hints)" : p->va_bits_how},
      {"rlimit_as", p->rlimit_as, p->rlimit_as == UINT64_MAX ? "unlimited" : NULL},
      {"vmsize_at_init", p->vmsize, NULL},
      {"va_budget", B.budget, NULL},
      {"va_budget_how", 0, B.budget_how},
      {"reserved_now", reserved_now(), NULL},
      {"va_budget_left", B.budget > reserved_now() ? B.budget - reserved_now() : 0, NULL},
      {"reserve_max", B.reserve_max, NULL},
      {"reserve_max_now", (B.budget > reserved_now() ? (B.budget - reserved_now()) / 8 : 0) < B.reserve_max
                              ? (B.budget > reserved_now() ? (B.budget - reserved_now()) / 8 : 0)
                              : B.reserve_max, NULL},
      {"next_reservation_unit", B.last_arena ? B.last_arena * 2 : VAM_CHUNK_SIZE, NULL},
      {"commit", 0, B.strict ? "strict (PROT_NONE reserve, mprotect commit)" : "lazy (MAP_NORESERVE, madvise decommit)"},
      {"overcommit_mode", (uint64_t)(int64_t)p->overcommit_mode, NULL},
      {"commit_limit", p->commit_limit, NULL},
      {"committed_as", p->committed_as, NULL},
      {"max_map_count", p->max_map_count, NULL},
      {"map_count_at_init", p->map_count, NULL},
      {"map_limit_for_vamalloc", B.map_limit, NULL},
      {"mappings_now", vam__va_mappings(), NULL},
      {"cgroup_memory_max", p->cgroup_memory_max, p->cgroup_memory_max == UINT64_MAX ? "none" : NULL},
      {"mmap_min_addr", p->mmap_min_addr, NULL},
  };
  if (json) vam__buf_str(&b, "{");
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    if (json) {
      vam__buf_str(&b, i ? ",\"" : "\"");
      vam__buf_str(&b, rows[i].key);
      vam__buf_str(&b, "\":");
      if (rows[i].text) {
        vam__buf_str(&b, "\"");
        vam__buf_str(&b, rows[i].text);
        vam__buf_str(&b, "\"");
      } else {
        vam__buf_u64(&b, rows[i].v);
      }
    } else {
      vam__buf_str(&b, rows[i].key);
      for (size_t n = strlen(rows[i].key); n < 24; n++) vam__buf_str(&b, " ");
      if (rows[i].text) {
        vam__buf_str(&b, rows[i].text);
      } else {
        vam__buf_u64(&b, rows[i].v);
        if (rows[i].v >= (1u << 20) && strcmp(rows[i].key, "va_bits") != 0) {
          vam__buf_str(&b, "  (");
          vam__buf_u64(&b, rows[i].v >> 20);
          vam__buf_str(&b, " MiB)");
        }
      }
      vam__buf_str(&b, "\n");
    }
  }
  if (json) vam__buf_str(&b, "}\n");
  vam__buf_flush(&b);
}
