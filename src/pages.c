/* pages.c: the page API for garbage collectors (vam_pages_*).
 *
 * A runtime's GC heap gets whole OS pages from here, over the same OS layer
 * as malloc: reservations go through vabudget (VA budget, map cap, VA-bits
 * placement, health), and every madvise/mprotect goes through the capped
 * retry, so a GC sweep under an madvise EAGAIN storm gets an error code
 * after a bounded sleep instead of spinning (why.md item 1).
 *
 * Choices, and why:
 *  - Reservations are always PROT_NONE, whatever the commit mode: touching
 *    memory the GC has not committed is a bug, and it should fault, not
 *    quietly read zeroes.  PROT_NONE is also never charged under strict
 *    overcommit.
 *  - Commit is mprotect(READ|WRITE).  Fresh pages read as zeroes.
 *  - Decommit is MADV_DONTNEED (which zeroes private anonymous pages), then
 *    mprotect(PROT_NONE), so decommitted pages fault like never-committed
 *    ones and a recommit reads zeroes.  DONTNEED comes first so that a
 *    failure at either step leaves the pages committed and accessible (old
 *    or zeroed contents): the caller may go on using them, which is the
 *    only safe thing to promise a GC that could not give memory back.
 *    Under strict commit, or where the backend's madvise does not zero
 *    (Darwin's MADV_FREE_REUSABLE), decommit maps a fresh PROT_NONE range
 *    over the pages instead, which zeroes them and returns the commit
 *    charge (mprotect to PROT_NONE would keep it).  That mmap(MAP_FIXED)
 *    is one try, like every mmap; its usual refusal (map count) is checked
 *    by the kernel before the old pages are touched.
 *  - Each protection change may split a mapping; those splits are not
 *    counted in the map cap (the kernel merges them back on recommit), so
 *    a GC that checkerboards its heap meets the kernel's map limit as an
 *    ENOMEM from commit or decommit, which degrades like any refusal.
 *  - A registry of live reservations (sorted ranges in memory of its own
 *    from vabudget, binary search under one lock) lets every call check
 *    that its range is one of ours: a wrong address is EINVAL, never an
 *    mprotect or munmap over malloc's chunks.  Release holds the lock
 *    across its munmap, so a concurrent reserve cannot get the addresses
 *    before the registry forgets them.  Commit and decommit run their
 *    kernel calls (which may sleep in the retry) outside the lock, with
 *    their range marked in flight: a release overlapping it waits, so a
 *    PROT_NONE never lands on memory released and mapped again meanwhile. */
#include "internal.h"

typedef struct range {
  uintptr_t start, end;
  unsigned flags; /* VAM_PAGES_DONTDUMP: re-marked after a strict decommit */
} range_t;

static struct {
  range_t *v;     /* sorted by start, non-overlapping */
  size_t n, cap;
  size_t bytes;   /* size of the mapping that holds v */
} R;

/* The registry lock: taken under no other lock, and only vabudget's are
 * taken under it (init.c's fork handlers take it first). */
pthread_mutex_t vam__pages_lock = PTHREAD_MUTEX_INITIALIZER;
static void lock(void) { pthread_mutex_lock(&vam__pages_lock); }
static void unlock(void) { pthread_mutex_unlock(&vam__pages_lock); }

static size_t page_size(void) { return vam__os_config.page_size; }

static int einval(void) {
  VAM_COUNT(pages_einval);
  return EINVAL;
}

/* Index of the last range starting at or below a, or -1. */
static ptrdiff_t find(uintptr_t a) {
  size_t lo = 0, hi = R.n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (R.v[mid].start <= a) lo = mid + 1;
    else hi = mid;
  }
  return (ptrdiff_t)lo - 1;
}

/* The reservation that holds all of [a, a + size), or -1.  Lock held. */
static ptrdiff_t covering(uintptr_t a, size_t size) {
  ptrdiff_t i = find(a);
  if (i < 0 || a >= R.v[i].end || size > R.v[i].end - a) return -1;
  return i;
}

/* Room for one more range.  The array lives in a mapping of its own that
 * doubles, so it never depends on malloc and costs nothing until used. */
static int reserve_slot(void) {
  if (R.n < R.cap) return 0;
  size_t bytes = R.bytes ? R.bytes * 2 : page_size();
  void *p = NULL;
  int err = vam__va_reserve(bytes, page_size(), true, &p); /* read/write in every mode */
  if (err) return err;
  if (R.n) memcpy(p, R.v, R.n * sizeof(range_t));
  if (R.v) vam__va_release(R.v, R.bytes); /* a refusal only leaks the old array */
  R.v = p;
  R.bytes = bytes;
  R.cap = bytes / sizeof(range_t);
  return 0;
}

static void insert_at(size_t i, range_t r) {
  memmove(&R.v[i + 1], &R.v[i], (R.n - i) * sizeof(range_t));
  R.v[i] = r;
  R.n++;
}

/* Arguments every range call shares: page-aligned, non-zero, no wrap. */
static int check_args(const void *addr, size_t size) {
  uintptr_t a = (uintptr_t)addr, mask = page_size() - 1;
  if (a == 0 || size == 0 || (a & mask) || (size & mask) || a + size < a) return einval();
  return 0;
}

/* Ranges whose commit or decommit is in the kernel, outside the lock
 * (end 0: a free slot).  With every slot taken, the call keeps the lock
 * instead: slower, never wrong. */
#define IN_FLIGHT_MAX 64
static struct { uintptr_t start, end; } in_flight[IN_FLIGHT_MAX];

static bool in_flight_overlaps(uintptr_t a, uintptr_t e) {
  for (size_t s = 0; s < IN_FLIGHT_MAX; s++)
    if (in_flight[s].end && in_flight[s].start < e && a < in_flight[s].end) return true;
  return false;
}

/* Checks the range (returns its reservation's flags) and keeps it from
 * being released until range_done: marked in flight, or the lock kept
 * (*slot = -1).  0 or EINVAL. */
static int range_begin(const void *addr, size_t size, unsigned *flags, int *slot) {
  int err = check_args(addr, size);
  if (err) return err;
  uintptr_t a = (uintptr_t)addr;
  lock();
  ptrdiff_t i = covering(a, size);
  if (i < 0) {
    unlock();
    return einval();
  }
  if (flags) *flags = R.v[i].flags;
  *slot = -1;
  for (int s = 0; s < IN_FLIGHT_MAX && *slot < 0; s++)
    if (in_flight[s].end == 0) {
      in_flight[s].start = a;
      in_flight[s].end = a + size;
      *slot = s;
    }
  if (*slot >= 0) unlock();
  return 0;
}

static void range_done(int slot) {
  if (slot >= 0) {
    lock();
    in_flight[slot].end = 0;
  }
  unlock();
}

/* fork: the child has none of the other threads' calls in flight. */
void vam__pages_fork_child(void) { memset(in_flight, 0, sizeof in_flight); }

/* MADV_DONTDUMP is advisory: a refusal only makes core dumps bigger. */
static void mark_dontdump(void *addr, size_t size) {
  if (vam__os_dontdump(addr, size) != 0) VAM_COUNT(pages_dontdump_failures);
}

VAM_API size_t vam_page_size(void) {
  vam__ensure_init();
  return page_size();
}

VAM_API void *vam_pages_reserve(size_t size, size_t alignment, unsigned flags) {
  vam__ensure_init();
  size_t page = page_size();
  if (size == 0 || (size & (page - 1)) || (alignment && !vam_is_pow2(alignment)) ||
      (flags & ~(unsigned)(VAM_PAGES_COMMIT | VAM_PAGES_DONTDUMP))) {
    errno = einval();
    return NULL;
  }
  if (alignment < page) alignment = page;
  void *p = NULL;
  unsigned os_flags = (flags & VAM_PAGES_COMMIT) ? 0 : VAM_RESERVE_NOACCESS;
  if (vam__va_reserve_flags(size, alignment, os_flags, &p) != 0) {
    VAM_COUNT(pages_reserve_failures);
    errno = ENOMEM; /* budget, map cap or kernel: all mean "no room" */
    return NULL;
  }
  lock();
  int err = reserve_slot();
  if (err == 0) {
    uintptr_t a = (uintptr_t)p;
    insert_at((size_t)(find(a) + 1), (range_t){a, a + size, flags & VAM_PAGES_DONTDUMP});
  }
  unlock();
  if (err) {
    vam__va_release(p, size);
    VAM_COUNT(pages_reserve_failures);
    errno = ENOMEM;
    return NULL;
  }
  if (flags & VAM_PAGES_DONTDUMP) mark_dontdump(p, size);
  VAM_COUNT(pages_reserves);
  VAM_GAUGE(pages_reserved, size);
  VAM_GAUGE(pages_reservations, 1);
  return p;
}

VAM_API int vam_pages_commit(void *addr, size_t size) {
  vam__ensure_init();
  int slot;
  int err = range_begin(addr, size, NULL, &slot);
  if (err) return err;
  err = vam__os_commit(addr, size);
  range_done(slot);
  if (err) {
    VAM_COUNT(pages_commit_failures);
    vam__health_fail(VAM_HEALTH_COMMIT, "page-API commit refused: commit limit, map count or EAGAIN");
    return err;
  }
  vam__health_ok(VAM_HEALTH_COMMIT, "page-API commit works again");
  VAM_COUNT(pages_commits);
  vam_stat_add(&vam__stats.pages_committed_bytes, size);
  return 0;
}

VAM_API int vam_pages_decommit(void *addr, size_t size, unsigned flags) {
  vam__ensure_init();
  if (flags & ~(unsigned)VAM_PAGES_DONTDUMP) return einval();
  unsigned rflags = 0;
  int slot;
  int err = range_begin(addr, size, &rflags, &slot);
  if (err) return err;
  bool zeroed = false, remapped = false;
  if (!vam__va_strict()) err = vam__os_decommit(addr, size, &zeroed);
  if (err == 0) {
    if (zeroed) {
      err = vam__os_noaccess(addr, size);
    } else {
      err = vam__os_uncommit(addr, size);
      remapped = (err == 0);
    }
  }
  /* A fresh mapping has lost the reservation's mark: put it back. */
  if (err == 0 && ((flags & VAM_PAGES_DONTDUMP) || (remapped && (rflags & VAM_PAGES_DONTDUMP))))
    mark_dontdump(addr, size);
  range_done(slot);
  if (vam__va_decommit_note(err, "page-API decommit failed: pages stay committed (old or zero contents)",
                            "decommit works again") != 0) {
    VAM_COUNT(pages_decommit_failures);
    return err;
  }
  VAM_COUNT(pages_decommits);
  vam_stat_add(&vam__stats.pages_decommitted_bytes, size);
  return 0;
}

VAM_API int vam_pages_release(void *addr, size_t size) {
  vam__ensure_init();
  int err = check_args(addr, size);
  if (err) return err;
  uintptr_t a = (uintptr_t)addr, e = a + size;
  lock();
  while (in_flight_overlaps(a, e)) { /* a commit or decommit is in the kernel */
    unlock();
    vam__os_sleep_us(50);
    lock();
  }
  ptrdiff_t i = covering(a, size);
  if (i < 0) {
    unlock();
    return einval();
  }
  range_t r = R.v[i];
  bool head = a > r.start, tail = e < r.end;
  /* A hole in the middle needs a second entry: make room before the range
   * is gone, so a failure leaves everything as it was. */
  if (head && tail && (err = reserve_slot()) != 0) {
    unlock();
    VAM_COUNT(pages_release_failures);
    return err;
  }
  err = vam__va_release_part(addr, size, head && tail ? 1 : (head || tail ? 0 : -1));
  if (err) {
    unlock();
    VAM_COUNT(pages_release_failures);
    return err;
  }
  if (head && tail) {
    R.v[i].end = a;
    insert_at((size_t)i + 1, (range_t){e, r.end, r.flags});
  } else if (head) {
    R.v[i].end = a;
  } else if (tail) {
    R.v[i].start = e;
  } else {
    memmove(&R.v[i], &R.v[i + 1], (R.n - (size_t)i - 1) * sizeof(range_t));
    R.n--;
  }
  unlock();
  VAM_COUNT(pages_releases);
  VAM_GAUGE(pages_reserved, -(int64_t)size);
  VAM_GAUGE(pages_reservations, head && tail ? 1 : (head || tail ? 0 : -1));
  return 0;
}
