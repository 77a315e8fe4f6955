/* gc-sweep: the garbage-collector sweep pattern that froze Bun (why.md
 * item 1), as a stress tool with verified data.
 *
 *   gc-sweep [--mutators N] [--sweepers M] [--min-size B] [--max-size B]
 *            [--large-ratio F] [--large-max B] [--dead-ratio F]
 *            [--duration S] [--timeout S] [--objs-per-page K]
 *            [--gc-page-kb KB] [--region-mb MB] [--old-cap N]
 *            [--pages auto|vam|plain|off] [--plain-retry spin|fail]
 *            [--dontdump on|off] [--seed N] [--smoke] [--json]
 *
 * Object part: N mutator threads malloc objects (sizes uniform in
 * [min-size, max-size], a fraction large-ratio up to large-max), stamp each
 * with a tag and record it in a "GC page".  M sweeper threads take full GC
 * pages, check every object's tag and contents, free the dead ones (a
 * fraction dead-ratio, chosen at allocation) and move the survivors to an
 * old generation of old-cap objects per sweeper, from which the oldest are
 * freed in turn.  Objects are freed by other threads than the ones that
 * allocated them, as in a real collector.
 *
 * Page part: the GC pages themselves (gc-page-kb each) live in one
 * reserved region of region-mb.  A mutator commits a page before filling
 * it; a sweeper decommits the whole page once it is swept ("deallocate
 * physical pages", called thousands of times a second by a real GC).
 *   vam     the page API resolved at run time, dlsym(RTLD_DEFAULT,
 *           "vam_pages_reserve") and friends: present when libvamalloc.so
 *           is preloaded; every call is capped and backed off inside
 *   plain   what a runtime does by itself: mmap(PROT_NONE) to reserve,
 *           mprotect(PROT_READ|PROT_WRITE) to commit, madvise(MADV_DONTNEED)
 *           to decommit (plus MADV_DONTDUMP/MADV_DODUMP with --dontdump on,
 *           as bmalloc did); EAGAIN is retried like bmalloc's SYSCALL()
 *           (--plain-retry spin: at once, no sleep, no cap, until the tool's
 *           own --timeout) or given up at once (--plain-retry fail)
 *   auto    vam when the symbols resolve, else plain (the default)
 *   off     no page region: the object part alone (to compare allocators)
 *
 * Verification: every object's tag and fill pattern is checked before it
 * is freed; every GC page's header and fill pattern is checked when it is
 * swept; a page recommitted after a decommit that returned 0 must read as
 * zero from its first byte to its last.  A decommit that failed leaves the
 * page's contents unspecified, so the page is reused without the zero check
 * (that is what a runtime may assume after an advisory call gave up).
 *
 * Report (text, or one JSON line with --json): objects per second,
 * madvise calls per second (the tool's own plain-path calls; with vamalloc
 * preloaded, the larger of that and the system calls vamalloc counted,
 * first tries plus retries, its own and the host shim's, read from
 * vam_stats_print's JSON; an allocator's own calls are not seen otherwise), CPU
 * seconds per wall second (getrusage, and per role from the thread CPU
 * clocks), peak RSS and final RSS (after everything is freed and the region
 * released).  A harness can add the system-wide count with perf or strace.
 *
 * Exit status: 0 ok; 1 a data mismatch; 2 usage; 3 frozen (the run did not
 * end within --timeout: threads stuck retrying EAGAIN, the Bun freeze; a
 * thread still busy 5 s after that is stuck inside the allocator, and the
 * tool leaves at once with result "STUCK");
 * 4 setup failed (no region, no threads).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "vamalloc.h" /* constants and prototypes only: calls go through dlsym */

#ifndef MADV_DONTDUMP
#define MADV_DONTDUMP 16
#define MADV_DODUMP 17
#endif

enum { EXIT_MISMATCH = 1, EXIT_USAGE = 2, EXIT_FROZEN = 3, EXIT_SETUP = 4 };
enum { PAGES_AUTO, PAGES_VAM, PAGES_PLAIN, PAGES_OFF };
enum { RETRY_SPIN, RETRY_FAIL };

/* ---- options ---------------------------------------------------------- */
static struct {
  unsigned mutators, sweepers, objs_per_page, old_cap;
  size_t min_size, max_size, large_max, gc_page, region;
  double large_ratio, dead_ratio, duration, timeout;
  int pages, plain_retry, json;
  bool dontdump;
  uint64_t seed;
} O = {
  .mutators = 2, .sweepers = 2, .objs_per_page = 128, .old_cap = 4096,
  .min_size = 16, .max_size = 512, .large_max = 256 * 1024,
  .gc_page = 16 * 1024, .region = 16u << 20,
  .large_ratio = 0.005, .dead_ratio = 0.8, .duration = 5.0, .timeout = 0,
  .pages = PAGES_AUTO, .plain_retry = RETRY_SPIN, .json = 0, .dontdump = false,
  .seed = 0x5eed,
};

/* ---- small helpers ------------------------------------------------------ */
static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double thread_cpu_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void sleep_us(long us) {
  struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static double unit_rand(uint64_t *s) { return (double)(splitmix(s) >> 11) * 0x1.0p-53; }

static long rss_kb(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long size = 0, res = 0;
  if (!f) return -1;
  if (fscanf(f, "%ld %ld", &size, &res) != 2) res = -1;
  fclose(f);
  return res < 0 ? -1 : res * (sysconf(_SC_PAGESIZE) / 1024);
}

/* ---- shared state ------------------------------------------------------- */
static atomic_int stop_flag;       /* duration over: mutators end, sweepers drain */
static atomic_int hard_stop;       /* --timeout reached: spinning retries end too */
static atomic_uint_fast64_t mismatches;
static atomic_uint_fast64_t page_seq;
static char first_error[256];
static pthread_mutex_t error_lock = PTHREAD_MUTEX_INITIALIZER;

static void report_mismatch(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void report_mismatch(const char *fmt, ...) {
  if (atomic_fetch_add(&mismatches, 1) == 0) {
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&error_lock);
    vsnprintf(first_error, sizeof first_error, fmt, ap);
    pthread_mutex_unlock(&error_lock);
    va_end(ap);
  }
}

/* ---- page layer ----------------------------------------------------------
 * vam: vam_pages_* through dlsym.  plain: mmap/mprotect/madvise with the
 * retry policy of --plain-retry.  Both count what they do. */
typedef void *(*reserve_fn)(size_t, size_t, unsigned);
typedef int (*commit_fn)(void *, size_t);
typedef int (*decommit_fn)(void *, size_t, unsigned);
typedef int (*release_fn)(void *, size_t);
typedef size_t (*page_size_fn)(void);
typedef void (*stats_print_fn)(int, int);

static struct {
  int kind; /* PAGES_VAM, PAGES_PLAIN or PAGES_OFF */
  const char *why;
  reserve_fn reserve;
  commit_fn commit;
  decommit_fn decommit;
  release_fn release;
  size_t os_page;
} P;

static struct {
  atomic_uint_fast64_t commits, decommits, commit_failures, decommit_failures;
  atomic_uint_fast64_t madvise_calls, mprotect_calls, eagain, giveups, other_errors;
  atomic_uint_fast64_t spin_ns_total, spin_ns_max, decommit_ns_total, decommit_ns_max;
} C;

static void atomic_max(atomic_uint_fast64_t *a, uint64_t v) {
  uint64_t cur = atomic_load_explicit(a, memory_order_relaxed);
  while (v > cur && !atomic_compare_exchange_weak(a, &cur, v)) {
  }
}

static void resolve_pages(int want) {
  P.os_page = (size_t)sysconf(_SC_PAGESIZE);
  if (want == PAGES_OFF) {
    P.kind = PAGES_OFF;
    P.why = "no page region (--pages off)";
    return;
  }
  if (want != PAGES_PLAIN) {
    P.reserve = (reserve_fn)dlsym(RTLD_DEFAULT, "vam_pages_reserve");
    P.commit = (commit_fn)dlsym(RTLD_DEFAULT, "vam_pages_commit");
    P.decommit = (decommit_fn)dlsym(RTLD_DEFAULT, "vam_pages_decommit");
    P.release = (release_fn)dlsym(RTLD_DEFAULT, "vam_pages_release");
    page_size_fn ps = (page_size_fn)dlsym(RTLD_DEFAULT, "vam_page_size");
    if (P.reserve && P.commit && P.decommit && P.release) {
      P.kind = PAGES_VAM;
      P.why = "vam_pages_* (vamalloc's page API, found with dlsym)";
      if (ps) P.os_page = ps();
      return;
    }
    if (want == PAGES_VAM) {
      P.kind = PAGES_OFF;
      P.why = "vam_pages_* not found";
      return;
    }
  }
  P.kind = PAGES_PLAIN;
  P.why = want == PAGES_PLAIN ? "plain mmap/mprotect/madvise (--pages plain)"
                              : "plain mmap/mprotect/madvise (vam_pages_* not found)";
}

/* One plain madvise or mprotect, retried on EAGAIN per --plain-retry.
 * Returns 0 or an errno. */
static int plain_call(bool is_madvise, void *addr, size_t len, int arg) {
  double spin_start = 0;
  int err;
  for (;;) {
    int rc;
    if (is_madvise) {
      atomic_fetch_add_explicit(&C.madvise_calls, 1, memory_order_relaxed);
      rc = madvise(addr, len, arg);
    } else {
      atomic_fetch_add_explicit(&C.mprotect_calls, 1, memory_order_relaxed);
      rc = mprotect(addr, len, arg);
    }
    if (rc == 0) {
      err = 0;
      break;
    }
    err = errno;
    if (err != EAGAIN) {
      atomic_fetch_add_explicit(&C.other_errors, 1, memory_order_relaxed);
      break;
    }
    atomic_fetch_add_explicit(&C.eagain, 1, memory_order_relaxed);
    if (O.plain_retry == RETRY_FAIL || atomic_load_explicit(&hard_stop, memory_order_relaxed)) {
      atomic_fetch_add_explicit(&C.giveups, 1, memory_order_relaxed);
      break;
    }
    if (spin_start == 0) spin_start = now_s();
    /* bmalloc's SYSCALL(): no sleep, no cap. */
  }
  if (spin_start != 0) {
    uint64_t ns = (uint64_t)((now_s() - spin_start) * 1e9);
    atomic_fetch_add_explicit(&C.spin_ns_total, ns, memory_order_relaxed);
    atomic_max(&C.spin_ns_max, ns);
  }
  return err;
}

static void *region_reserve(size_t size) {
  if (P.kind == PAGES_VAM) {
    void *p = P.reserve(size, O.gc_page, O.dontdump ? VAM_PAGES_DONTDUMP : 0);
    return p;
  }
  void *p = mmap(NULL, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

static int page_commit(void *addr, size_t len) {
  int err;
  if (P.kind == PAGES_VAM) {
    err = P.commit(addr, len);
  } else {
    err = plain_call(false, addr, len, PROT_READ | PROT_WRITE);
    if (err == 0 && O.dontdump) err = plain_call(true, addr, len, MADV_DODUMP);
  }
  atomic_fetch_add_explicit(err ? &C.commit_failures : &C.commits, 1, memory_order_relaxed);
  return err;
}

static int page_decommit(void *addr, size_t len) {
  double t0 = now_s();
  int err;
  if (P.kind == PAGES_VAM) {
    err = P.decommit(addr, len, O.dontdump ? VAM_PAGES_DONTDUMP : 0);
  } else {
    err = plain_call(true, addr, len, MADV_DONTNEED);
    /* DONTDUMP after a refused DONTNEED would mark pages that still hold
     * data; a runtime that spins never gets here before it succeeds. */
    if (err == 0 && O.dontdump) {
      int e2 = plain_call(true, addr, len, MADV_DONTDUMP);
      (void)e2; /* the pages are zero either way; only the dump size differs */
    }
  }
  uint64_t ns = (uint64_t)((now_s() - t0) * 1e9);
  atomic_fetch_add_explicit(&C.decommit_ns_total, ns, memory_order_relaxed);
  atomic_max(&C.decommit_ns_max, ns);
  atomic_fetch_add_explicit(err ? &C.decommit_failures : &C.decommits, 1, memory_order_relaxed);
  return err;
}

static int region_release(void *addr, size_t size) {
  if (P.kind == PAGES_VAM) return P.release(addr, size);
  return munmap(addr, size) == 0 ? 0 : errno;
}

/* ---- vamalloc's own counters (vam_stats_print JSON through a memfd) ---- */
static const char *const vam_keys[] = {
  "madvise_calls",      "madvise_eagain",      "madvise_retries",      "madvise_giveups",
  "host_madvise_calls", "host_madvise_eagain", "host_madvise_retries", "host_madvise_giveups",
  "mprotect_calls",     "mprotect_eagain",     "decommit_failures",
};
#define N_VAM_KEYS (sizeof vam_keys / sizeof vam_keys[0])

/* Fills v with the counters; returns false when vamalloc is not loaded. */
static bool vam_counters(int64_t v[N_VAM_KEYS]) {
  stats_print_fn pr = (stats_print_fn)dlsym(RTLD_DEFAULT, "vam_stats_print");
  for (size_t i = 0; i < N_VAM_KEYS; i++) v[i] = -1;
  if (!pr) return false;
  int fd = memfd_create("gc-sweep-stats", 0);
  if (fd < 0) return false;
  pr(fd, 1);
  off_t n = lseek(fd, 0, SEEK_END);
  char *buf = n > 0 ? malloc((size_t)n + 1) : NULL;
  if (buf && pread(fd, buf, (size_t)n, 0) == n) {
    buf[n] = 0;
    for (size_t i = 0; i < N_VAM_KEYS; i++) {
      char key[64];
      snprintf(key, sizeof key, "\"%s\":", vam_keys[i]);
      const char *at = strstr(buf, key);
      if (at) v[i] = strtoll(at + strlen(key), NULL, 10);
    }
  }
  free(buf);
  close(fd);
  return true;
}

/* ---- GC pages ------------------------------------------------------------ */
#define GCPAGE_MAGIC 0x6763706167653031ull /* "gcpage01" */

typedef struct {
  void *p;
  uint64_t tag;
  uint32_t size;
  uint32_t dead;
} gc_obj;

typedef struct {
  uint64_t magic, seq;
  uint32_t owner, count, cap, pad;
  gc_obj objs[];
} gc_page_hdr;

enum { SLOT_FRESH, SLOT_CLEAN, SLOT_DIRTY };

static char *region;         /* NULL with --pages off */
static size_t nslots;
static unsigned char *slot_state;
static gc_page_hdr **heap_pages; /* --pages off: bookkeeping pages from malloc */

/* Free slots (a stack) and the sweep queue (a ring), each under a lock. */
static pthread_mutex_t free_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t free_cv = PTHREAD_COND_INITIALIZER;
static uint32_t *free_stack;
static size_t free_top;
static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t q_cv = PTHREAD_COND_INITIALIZER;
static uint32_t *queue;
static size_t q_head, q_len;
static unsigned mutators_running;

static gc_page_hdr *slot_addr(size_t i) {
  return region ? (gc_page_hdr *)(region + i * O.gc_page) : heap_pages[i];
}

static void timed_wait(pthread_cond_t *cv, pthread_mutex_t *m, long us) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_nsec += us * 1000;
  ts.tv_sec += ts.tv_nsec / 1000000000;
  ts.tv_nsec %= 1000000000;
  pthread_cond_timedwait(cv, m, &ts);
}

/* A free slot, or -1 once the run is stopping. */
static long take_slot(uint64_t *waits) {
  pthread_mutex_lock(&free_lock);
  while (free_top == 0 && !atomic_load(&stop_flag)) {
    (*waits)++;
    timed_wait(&free_cv, &free_lock, 10000);
  }
  long s = free_top ? (long)free_stack[--free_top] : -1;
  pthread_mutex_unlock(&free_lock);
  return s;
}

static void put_slot(uint32_t s) {
  pthread_mutex_lock(&free_lock);
  free_stack[free_top++] = s;
  pthread_cond_signal(&free_cv);
  pthread_mutex_unlock(&free_lock);
}

static void enqueue(uint32_t s) {
  pthread_mutex_lock(&q_lock);
  queue[(q_head + q_len++) % nslots] = s;
  pthread_cond_signal(&q_cv);
  pthread_mutex_unlock(&q_lock);
}

/* A full page to sweep, or -1 when the mutators are gone and the queue is empty. */
static long dequeue(void) {
  pthread_mutex_lock(&q_lock);
  while (q_len == 0 && mutators_running > 0) timed_wait(&q_cv, &q_lock, 10000);
  long s = -1;
  if (q_len) {
    s = queue[q_head];
    q_head = (q_head + 1) % nslots;
    q_len--;
  }
  pthread_mutex_unlock(&q_lock);
  return s;
}

/* The words after the object table hold a pattern derived from the page's
 * sequence number, so a page zeroed (or scribbled on) while in use shows. */
static uint64_t fill_word(uint64_t seq, size_t i) { return (seq * 0x9e3779b97f4a7c15ull) ^ (i | 1); }

static size_t table_words(void) {
  return (sizeof(gc_page_hdr) + O.objs_per_page * sizeof(gc_obj) + 7) / 8;
}

/* ---- objects --------------------------------------------------------------
 * The first 8 bytes hold the tag, the rest a byte derived from it. */
static uint8_t tag_byte(uint64_t tag) { return (uint8_t)((tag >> 56) ^ (tag >> 8) ^ 0x5a); }

static void obj_fill(void *p, size_t size, uint64_t tag) {
  memcpy(p, &tag, 8);
  memset((char *)p + 8, tag_byte(tag), size - 8);
}

static bool range_is(const unsigned char *p, size_t n, uint8_t b) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != b) return false;
  return true;
}

/* Checks the whole object when small; the ends and one byte per 4 KiB when large. */
static bool obj_check(const gc_obj *o) {
  uint64_t got;
  memcpy(&got, o->p, 8);
  if (got != o->tag) {
    report_mismatch("object %p (size %u): tag %#" PRIx64 ", expected %#" PRIx64, o->p, o->size,
                    got, o->tag);
    return false;
  }
  const unsigned char *b = (const unsigned char *)o->p;
  uint8_t want = tag_byte(o->tag);
  size_t n = o->size;
  bool ok;
  if (n <= 1024) {
    ok = range_is(b + 8, n - 8, want);
  } else {
    ok = range_is(b + 8, 504, want) && range_is(b + n - 512, 512, want);
    for (size_t i = 4096; ok && i < n; i += 4096) ok = b[i] == want;
  }
  if (!ok) report_mismatch("object %p (size %u): contents overwritten", o->p, o->size);
  return ok;
}

typedef struct {
  pthread_t th;
  unsigned id;
  uint64_t rng;
  /* results */
  uint64_t objects, bytes, pages, waits, enomem, freed, survivors;
  double cpu_s;
  /* sweeper's old generation (a ring of survivors) */
  gc_obj *old;
  size_t old_head, old_len;
} worker;

static void old_push(worker *w, const gc_obj *o) {
  if (w->old_len == O.old_cap) {
    gc_obj *victim = &w->old[w->old_head];
    obj_check(victim);
    free(victim->p);
    w->freed++;
    w->old_head = (w->old_head + 1) % O.old_cap;
    w->old_len--;
  }
  w->old[(w->old_head + w->old_len++) % O.old_cap] = *o;
}

static size_t pick_size(uint64_t *rng) {
  if (O.large_ratio > 0 && unit_rand(rng) < O.large_ratio && O.large_max > O.max_size)
    return O.max_size + 1 + (size_t)(splitmix(rng) % (O.large_max - O.max_size));
  return O.min_size + (size_t)(splitmix(rng) % (O.max_size - O.min_size + 1));
}

static void *mutator(void *arg) {
  worker *w = arg;
  size_t words = O.gc_page / 8, tw = table_words();
  while (!atomic_load_explicit(&stop_flag, memory_order_relaxed)) {
    long s = take_slot(&w->waits);
    if (s < 0) break;
    gc_page_hdr *pg = slot_addr((size_t)s);
    if (region) {
      if (page_commit(pg, O.gc_page) != 0) {
        /* Not committed: leave the slot as it was and let it cool off. */
        put_slot((uint32_t)s);
        sleep_us(1000);
        continue;
      }
      if (slot_state[s] == SLOT_CLEAN) {
        const uint64_t *wp = (const uint64_t *)pg;
        for (size_t i = 0; i < words; i++) {
          if (wp[i] != 0) {
            report_mismatch("GC page %ld (%p): word %zu reads %#" PRIx64
                            " after a successful decommit and recommit, expected 0",
                            s, (void *)pg, i, wp[i]);
            break;
          }
        }
      }
    }
    uint64_t seq = atomic_fetch_add(&page_seq, 1) + 1;
    pg->magic = GCPAGE_MAGIC;
    pg->seq = seq;
    pg->owner = w->id;
    pg->cap = O.objs_per_page;
    pg->count = 0;
    for (unsigned i = 0; i < O.objs_per_page; i++) {
      size_t size = pick_size(&w->rng);
      void *p = malloc(size);
      if (!p) {
        w->enomem++;
        continue;
      }
      uint64_t tag = splitmix(&w->rng) | 1;
      obj_fill(p, size, tag);
      gc_obj *o = &pg->objs[pg->count++];
      o->p = p;
      o->tag = tag;
      o->size = (uint32_t)size;
      o->dead = unit_rand(&w->rng) < O.dead_ratio;
      w->objects++;
      w->bytes += size;
    }
    uint64_t *wp = (uint64_t *)pg;
    for (size_t i = tw; i < words; i++) wp[i] = fill_word(seq, i);
    w->pages++;
    enqueue((uint32_t)s);
  }
  pthread_mutex_lock(&q_lock);
  mutators_running--;
  pthread_cond_broadcast(&q_cv);
  pthread_mutex_unlock(&q_lock);
  w->cpu_s = thread_cpu_s();
  return NULL;
}

static void sweep_page(worker *w, long s) {
  gc_page_hdr *pg = slot_addr((size_t)s);
  size_t words = O.gc_page / 8, tw = table_words();
  if (pg->magic != GCPAGE_MAGIC || pg->count > pg->cap || pg->cap != O.objs_per_page) {
    report_mismatch("GC page %ld (%p): header overwritten (magic %#" PRIx64 ", count %u)", s,
                    (void *)pg, pg->magic, pg->count);
    return; /* its objects cannot be trusted: leak them, the run has failed */
  }
  const uint64_t *wp = (const uint64_t *)pg;
  for (size_t i = tw; i < words; i++) {
    if (wp[i] != fill_word(pg->seq, i)) {
      report_mismatch("GC page %ld (%p): word %zu overwritten while in use", s, (void *)pg, i);
      break;
    }
  }
  for (uint32_t i = 0; i < pg->count; i++) {
    gc_obj *o = &pg->objs[i];
    if (!obj_check(o)) continue; /* leak it: freeing a bad pointer proves nothing */
    if (o->dead) {
      free(o->p);
      w->freed++;
    } else {
      old_push(w, o);
      w->survivors++;
    }
  }
  pg->magic = 0;
  w->pages++;
}

static void *sweeper(void *arg) {
  worker *w = arg;
  for (;;) {
    long s = dequeue();
    if (s < 0) break;
    sweep_page(w, s);
    if (region) {
      /* At shutdown the region goes back whole, so pending pages are not
       * decommitted one by one (under a persistent fault each try costs
       * vamalloc's whole capped retry). */
      if (atomic_load(&stop_flag)) {
        slot_state[s] = SLOT_DIRTY;
      } else {
        slot_state[s] = page_decommit(slot_addr((size_t)s), O.gc_page) == 0 ? SLOT_CLEAN
                                                                             : SLOT_DIRTY;
      }
    }
    put_slot((uint32_t)s);
  }
  w->cpu_s = thread_cpu_s();
  return NULL;
}

/* ---- options parsing ---------------------------------------------------- */
static void usage(FILE *f) {
  fputs("usage: gc-sweep [--mutators N] [--sweepers M] [--min-size B] [--max-size B]\n"
        "                [--large-ratio F] [--large-max B] [--dead-ratio F] [--duration S]\n"
        "                [--timeout S] [--objs-per-page K] [--gc-page-kb KB] [--region-mb MB]\n"
        "                [--old-cap N] [--pages auto|vam|plain|off] [--plain-retry spin|fail]\n"
        "                [--dontdump on|off] [--seed N] [--smoke] [--json]\n"
        "See the comment at the top of tools/gc-sweep.c.\n",
        f);
}

static int bad(const char *opt, const char *val) {
  fprintf(stderr, "gc-sweep: bad value for %s: '%s'\n", opt, val ? val : "(missing)");
  usage(stderr);
  return EXIT_USAGE;
}

static bool parse_u64(const char *s, uint64_t *out) {
  char *end;
  if (!s || !*s) return false;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end) return false;
  *out = v;
  return true;
}

static bool parse_f(const char *s, double *out) {
  char *end;
  if (!s || !*s) return false;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || *end || v != v) return false;
  *out = v;
  return true;
}

static int parse_args(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *eq = strchr(a, '=');
    char name[64];
    const char *val = NULL;
    if (eq && eq - a < (long)sizeof name) {
      memcpy(name, a, (size_t)(eq - a));
      name[eq - a] = 0;
      val = eq + 1;
    } else {
      snprintf(name, sizeof name, "%s", a);
    }
#define NEEDVAL() (val ? val : (i + 1 < argc ? (val = argv[++i]) : NULL))
    uint64_t u;
    double f;
    if (!strcmp(name, "--help") || !strcmp(name, "-h")) {
      usage(stdout);
      exit(0);
    } else if (!strcmp(name, "--smoke")) {
      O.duration = 1.5;
      O.region = 8u << 20;
      O.old_cap = 1024;
    } else if (!strcmp(name, "--json")) {
      O.json = 1;
    } else if (!strcmp(name, "--mutators") || !strcmp(name, "--sweepers") ||
               !strcmp(name, "--objs-per-page") || !strcmp(name, "--old-cap")) {
      if (!parse_u64(NEEDVAL(), &u) || u == 0 || u > 100000) return bad(name, val);
      unsigned *dst = name[2] == 'm' ? &O.mutators : name[2] == 's' ? &O.sweepers
                      : name[3] == 'b' ? &O.objs_per_page : &O.old_cap;
      *dst = (unsigned)u;
    } else if (!strcmp(name, "--min-size") || !strcmp(name, "--max-size") ||
               !strcmp(name, "--large-max")) {
      if (!parse_u64(NEEDVAL(), &u) || u > (1u << 30)) return bad(name, val);
      *(name[2] == 'l' ? &O.large_max : name[3] == 'i' ? &O.min_size : &O.max_size) = u;
    } else if (!strcmp(name, "--gc-page-kb") || !strcmp(name, "--region-mb")) {
      if (!parse_u64(NEEDVAL(), &u) || u == 0 || u > (1u << 20)) return bad(name, val);
      if (name[2] == 'g') O.gc_page = u << 10;
      else O.region = u << 20;
    } else if (!strcmp(name, "--seed")) {
      if (!parse_u64(NEEDVAL(), &u)) return bad(name, val);
      O.seed = u;
    } else if (!strcmp(name, "--large-ratio") || !strcmp(name, "--dead-ratio")) {
      if (!parse_f(NEEDVAL(), &f) || f < 0 || f > 1) return bad(name, val);
      *(name[2] == 'l' ? &O.large_ratio : &O.dead_ratio) = f;
    } else if (!strcmp(name, "--duration") || !strcmp(name, "--timeout")) {
      if (!parse_f(NEEDVAL(), &f) || f < 0 || f > 86400) return bad(name, val);
      *(name[2] == 'd' ? &O.duration : &O.timeout) = f;
    } else if (!strcmp(name, "--pages")) {
      const char *v = NEEDVAL();
      if (!v) return bad(name, v);
      if (!strcmp(v, "auto")) O.pages = PAGES_AUTO;
      else if (!strcmp(v, "vam")) O.pages = PAGES_VAM;
      else if (!strcmp(v, "plain")) O.pages = PAGES_PLAIN;
      else if (!strcmp(v, "off")) O.pages = PAGES_OFF;
      else return bad(name, v);
    } else if (!strcmp(name, "--plain-retry")) {
      const char *v = NEEDVAL();
      if (v && !strcmp(v, "spin")) O.plain_retry = RETRY_SPIN;
      else if (v && !strcmp(v, "fail")) O.plain_retry = RETRY_FAIL;
      else return bad(name, v);
    } else if (!strcmp(name, "--dontdump")) {
      const char *v = NEEDVAL();
      if (v && !strcmp(v, "on")) O.dontdump = true;
      else if (v && !strcmp(v, "off")) O.dontdump = false;
      else return bad(name, v);
    } else {
      fprintf(stderr, "gc-sweep: unknown option '%s'\n", a);
      usage(stderr);
      return EXIT_USAGE;
    }
#undef NEEDVAL
  }
  if (O.min_size < 16 || O.max_size < O.min_size) {
    fprintf(stderr, "gc-sweep: need 16 <= --min-size <= --max-size\n");
    return EXIT_USAGE;
  }
  if (O.large_max < O.max_size) O.large_max = O.max_size;
  if (O.timeout == 0) O.timeout = O.duration * 2 + 10;
  if (O.timeout < O.duration) O.timeout = O.duration;
  return 0;
}

/* ---- main ------------------------------------------------------------------ */
static double rusage_cpu(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
         ru.ru_stime.tv_usec * 1e-6;
}

static long peak_rss_kb(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

static const char *pages_name(int k) {
  return k == PAGES_VAM ? "vam" : k == PAGES_PLAIN ? "plain" : "off";
}

#define LD(a) ((unsigned long long)atomic_load(&(a)))

/* A thread still not done STUCK_GRACE_S after hard_stop is stuck where the
 * tool cannot reach it (inside the allocator: a malloc or free that never
 * returns, maybe holding a lock).  Report that much without allocating
 * (stdio's buffer may not exist yet, and malloc may block on that lock) and
 * leave without cleaning up. */
#define STUCK_GRACE_S 5.0
static double rusage_cpu(void);
static void stuck(unsigned id, double secs) {
  char buf[512];
  double cpu = rusage_cpu();
  int n;
  if (O.json)
    n = snprintf(buf, sizeof buf,
                 "{\"tool\":\"gc-sweep\",\"result\":\"STUCK\",\"frozen\":true,"
                 "\"stuck_thread\":%u,\"wall_s\":%.3f,\"cpu_s\":%.3f,\"cpu_per_wall\":%.3f,"
                 "\"mismatches\":%llu}\n",
                 id, secs, cpu, cpu / secs, LD(mismatches));
  else
    n = snprintf(buf, sizeof buf,
                 "gc-sweep: STUCK: thread %u still running %.1f s after the start (--timeout "
                 "%.1f s): blocked inside the allocator or the kernel; CPU %.2f per wall second\n",
                 id, secs, O.timeout, cpu / secs);
  if (n > 0 && write(1, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1) < 0) n = -1;
  _exit(EXIT_FROZEN);
}

int main(int argc, char **argv) {
  int rc = parse_args(argc, argv);
  if (rc) return rc;
  resolve_pages(O.pages);
  if (O.pages == PAGES_VAM && P.kind == PAGES_OFF) {
    fprintf(stderr, "gc-sweep: --pages vam but vam_pages_* are not loaded (preload libvamalloc.so)\n");
    return EXIT_SETUP;
  }
  if (P.kind != PAGES_OFF && O.gc_page % P.os_page) {
    fprintf(stderr, "gc-sweep: --gc-page-kb must be a multiple of the page size (%zu)\n", P.os_page);
    return EXIT_USAGE;
  }
  size_t need = (table_words() + 1) * 8;
  if (need > O.gc_page) {
    fprintf(stderr, "gc-sweep: %u objects per page need %zu-byte GC pages\n", O.objs_per_page, need);
    return EXIT_USAGE;
  }
  nslots = O.region / O.gc_page;
  if (nslots < (size_t)O.mutators + O.sweepers) {
    fprintf(stderr, "gc-sweep: the region holds %zu GC pages, fewer than the threads\n", nslots);
    return EXIT_USAGE;
  }

  int64_t vam0[N_VAM_KEYS], vam1[N_VAM_KEYS];
  bool have_vam = vam_counters(vam0);

  slot_state = calloc(nslots, 1);
  free_stack = malloc(nslots * sizeof *free_stack);
  queue = malloc(nslots * sizeof *queue);
  if (!slot_state || !free_stack || !queue) {
    fprintf(stderr, "gc-sweep: out of memory for bookkeeping\n");
    return EXIT_SETUP;
  }
  if (P.kind != PAGES_OFF) {
    region = region_reserve(nslots * O.gc_page);
    if (!region) {
      fprintf(stderr, "gc-sweep: reserving the %zu MiB GC region failed: %s\n",
              nslots * O.gc_page >> 20, strerror(errno));
      return EXIT_SETUP;
    }
  } else {
    heap_pages = calloc(nslots, sizeof *heap_pages);
    for (size_t i = 0; heap_pages && i < nslots; i++)
      if (!(heap_pages[i] = malloc(O.gc_page))) heap_pages = NULL;
    if (!heap_pages) {
      fprintf(stderr, "gc-sweep: out of memory for bookkeeping\n");
      return EXIT_SETUP;
    }
  }
  for (size_t i = 0; i < nslots; i++) free_stack[i] = (uint32_t)(nslots - 1 - i);
  free_top = nslots;

  unsigned nthreads = O.mutators + O.sweepers;
  worker *ws = calloc(nthreads, sizeof *ws);
  if (!ws) return EXIT_SETUP;
  mutators_running = O.mutators;
  double cpu0 = rusage_cpu(), t0 = now_s();
  unsigned started = 0;
  for (unsigned i = 0; i < nthreads; i++) {
    worker *w = &ws[i];
    w->id = i;
    w->rng = O.seed ^ ((uint64_t)(i + 1) * 0xd1b54a32d192ed03ull);
    bool is_mut = i < O.mutators;
    if (!is_mut && !(w->old = malloc(O.old_cap * sizeof *w->old))) break;
    if (pthread_create(&w->th, NULL, is_mut ? mutator : sweeper, w) != 0) break;
    started++;
  }
  if (started < nthreads) {
    fprintf(stderr, "gc-sweep: could not start %u threads\n", nthreads);
    atomic_store(&stop_flag, 1);
    atomic_store(&hard_stop, 1);
    for (unsigned i = 0; i < started; i++) pthread_join(ws[i].th, NULL);
    return EXIT_SETUP;
  }

  /* Run for the duration (or until a mismatch), then stop and drain.  If
   * the threads are still busy at --timeout they are stuck: set hard_stop,
   * which ends a spinning retry, and call the run frozen. */
  while (now_s() - t0 < O.duration && atomic_load(&mismatches) == 0) sleep_us(10000);
  double t_stop = now_s();
  atomic_store(&stop_flag, 1);
  pthread_mutex_lock(&free_lock);
  pthread_cond_broadcast(&free_cv);
  pthread_mutex_unlock(&free_lock);
  bool frozen = false;
  for (unsigned i = 0; i < nthreads; i++) {
    for (;;) {
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      ts.tv_nsec += 20 * 1000000;
      ts.tv_sec += ts.tv_nsec / 1000000000;
      ts.tv_nsec %= 1000000000;
      if (pthread_timedjoin_np(ws[i].th, NULL, &ts) == 0) break;
      if (!frozen && now_s() - t0 >= O.timeout) {
        frozen = true;
        atomic_store(&hard_stop, 1);
      }
      if (now_s() - t0 >= O.timeout + STUCK_GRACE_S) stuck(ws[i].id, now_s() - t0);
    }
  }
  double t_end = now_s();
  double wall = t_end - t0, cpu = rusage_cpu() - cpu0;
  long rss_peak = peak_rss_kb(), rss_live = rss_kb();

  /* Everything left: the survivors, checked and freed; then the region. */
  worker tot = {0};
  double mut_cpu = 0, swp_cpu = 0;
  for (unsigned i = 0; i < nthreads; i++) {
    worker *w = &ws[i];
    if (i < O.mutators) {
      tot.objects += w->objects;
      tot.bytes += w->bytes;
      tot.pages += w->pages;
      tot.waits += w->waits;
      tot.enomem += w->enomem;
      mut_cpu += w->cpu_s;
    } else {
      for (size_t k = 0; k < w->old_len; k++) {
        gc_obj *o = &w->old[(w->old_head + k) % O.old_cap];
        if (obj_check(o)) free(o->p);
        w->freed++;
      }
      free(w->old);
      tot.freed += w->freed;
      tot.survivors += w->survivors;
      swp_cpu += w->cpu_s;
    }
  }
  int rel_err = 0;
  if (region) rel_err = region_release(region, nslots * O.gc_page);
  if (heap_pages) {
    for (size_t i = 0; i < nslots; i++) free(heap_pages[i]);
    free(heap_pages);
  }
  free(ws);
  free(slot_state);
  free(free_stack);
  free(queue);
  long rss_final = rss_kb();
  if (have_vam) vam_counters(vam1);
  if (tot.freed != tot.objects && atomic_load(&mismatches) == 0)
    report_mismatch("%" PRIu64 " objects allocated but %" PRIu64 " freed", tot.objects, tot.freed);

  unsigned long long tool_madv = LD(C.madvise_calls);
  int64_t vam_madv = -1;
  if (have_vam && vam0[0] >= 0 && vam1[0] >= 0) {
    /* System calls made: first tries plus retries, vamalloc's own and the
     * host shim's. */
    static const int k[] = {0, 2, 4, 6};
    vam_madv = 0;
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
      if (vam0[k[i]] >= 0 && vam1[k[i]] >= 0) vam_madv += vam1[k[i]] - vam0[k[i]];
  }
  /* The host shim's counts include the tool's own plain calls (they go
   * through it), so take the larger view, not the sum. */
  unsigned long long madv_total = tool_madv;
  if (vam_madv > 0 && (unsigned long long)vam_madv > madv_total) madv_total = (unsigned long long)vam_madv;
  bool ok = atomic_load(&mismatches) == 0;
  const char *verdict = !ok ? "MISMATCH" : frozen ? "FROZEN" : "ok";

  if (O.json) {
    printf("{\"tool\":\"gc-sweep\",\"result\":\"%s\",\"pages\":\"%s\",\"pages_how\":\"%s\","
           "\"vamalloc_loaded\":%s,\"mutators\":%u,\"sweepers\":%u,\"min_size\":%zu,"
           "\"max_size\":%zu,\"large_ratio\":%g,\"large_max\":%zu,\"dead_ratio\":%g,"
           "\"gc_page\":%zu,\"region\":%zu,\"dontdump\":%s,\"plain_retry\":\"%s\","
           "\"duration\":%g,\"timeout\":%g,\"wall_s\":%.3f,\"drain_s\":%.3f,"
           "\"objects\":%llu,\"bytes\":%llu,\"objects_per_s\":%.0f,\"gc_pages\":%llu,"
           "\"mutator_waits\":%llu,\"enomem\":%llu,\"mismatches\":%llu,\"frozen\":%s,"
           "\"commits\":%llu,\"decommits\":%llu,\"commit_failures\":%llu,"
           "\"decommit_failures\":%llu,\"decommit_ms_max\":%.3f,\"decommit_ms_mean\":%.4f,"
           "\"tool_madvise_calls\":%llu,\"tool_mprotect_calls\":%llu,\"tool_eagain\":%llu,"
           "\"tool_giveups\":%llu,\"tool_other_errors\":%llu,\"spin_s_total\":%.3f,"
           "\"spin_s_max\":%.3f,",
           verdict, pages_name(P.kind), P.why, have_vam ? "true" : "false", O.mutators,
           O.sweepers, O.min_size, O.max_size, O.large_ratio, O.large_max, O.dead_ratio,
           O.gc_page, nslots * O.gc_page, O.dontdump ? "true" : "false",
           O.plain_retry == RETRY_SPIN ? "spin" : "fail", O.duration, O.timeout, wall,
           t_end - t_stop, (unsigned long long)tot.objects, (unsigned long long)tot.bytes,
           tot.objects / wall, (unsigned long long)tot.pages, (unsigned long long)tot.waits,
           (unsigned long long)tot.enomem, LD(mismatches), frozen ? "true" : "false",
           LD(C.commits), LD(C.decommits), LD(C.commit_failures), LD(C.decommit_failures),
           LD(C.decommit_ns_max) / 1e6,
           (LD(C.decommits) + LD(C.decommit_failures))
               ? LD(C.decommit_ns_total) / 1e6 / (LD(C.decommits) + LD(C.decommit_failures))
               : 0.0,
           tool_madv, LD(C.mprotect_calls), LD(C.eagain), LD(C.giveups), LD(C.other_errors),
           LD(C.spin_ns_total) / 1e9, LD(C.spin_ns_max) / 1e9);
    for (size_t i = 0; i < N_VAM_KEYS; i++)
      printf("\"vam_%s\":%lld,", vam_keys[i],
             have_vam && vam0[i] >= 0 && vam1[i] >= 0 ? (long long)(vam1[i] - vam0[i]) : -1LL);
    printf("\"madvise_calls\":%llu,\"madvise_per_s\":%.0f,\"cpu_s\":%.3f,\"cpu_per_wall\":%.3f,"
           "\"mutator_cpu_per_wall\":%.3f,\"sweeper_cpu_per_wall\":%.3f,"
           "\"rss_peak_kb\":%ld,\"rss_live_kb\":%ld,\"rss_final_kb\":%ld,\"release_error\":%d,"
           "\"first_error\":\"%s\"}\n",
           (unsigned long long)madv_total, madv_total / wall, cpu, cpu / wall,
           mut_cpu / wall / O.mutators, swp_cpu / wall / O.sweepers, rss_peak, rss_live,
           rss_final, rel_err, ok ? "" : first_error);
  } else {
    printf("gc-sweep: %s\n", verdict);
    printf("  pages: %s\n", P.why);
    printf("  %u mutators, %u sweepers, sizes %zu..%zu (%.1f%% up to %zu), %.0f%% dead, "
           "GC pages of %zu KiB, region %zu MiB, dontdump %s\n",
           O.mutators, O.sweepers, O.min_size, O.max_size, O.large_ratio * 100, O.large_max,
           O.dead_ratio * 100, O.gc_page >> 10, nslots * O.gc_page >> 20,
           O.dontdump ? "on" : "off");
    printf("  %.2f s (drain %.2f s): %llu objects = %.0f objects/s, %llu GC pages, "
           "%llu mutator waits, %llu ENOMEM\n",
           wall, t_end - t_stop, (unsigned long long)tot.objects, tot.objects / wall,
           (unsigned long long)tot.pages, (unsigned long long)tot.waits,
           (unsigned long long)tot.enomem);
    if (region)
      printf("  page layer: %llu commits (%llu failed), %llu decommits (%llu failed), "
             "decommit max %.2f ms\n",
             LD(C.commits), LD(C.commit_failures), LD(C.decommits), LD(C.decommit_failures),
             LD(C.decommit_ns_max) / 1e6);
    if (P.kind == PAGES_PLAIN)
      printf("  plain calls: %llu madvise, %llu mprotect, %llu EAGAIN (%s), %llu gave up, "
             "longest spin %.3f s, spinning %.3f s in all\n",
             tool_madv, LD(C.mprotect_calls), LD(C.eagain),
             O.plain_retry == RETRY_SPIN ? "spin" : "fail", LD(C.giveups),
             LD(C.spin_ns_max) / 1e9, LD(C.spin_ns_total) / 1e9);
    if (have_vam)
      printf("  vamalloc: %lld madvise + %lld host madvise calls, %lld system calls "
           "(%lld EAGAIN, %lld gave up)\n",
             (long long)(vam1[0] - vam0[0]), (long long)(vam1[4] - vam0[4]), (long long)vam_madv,
             (long long)(vam1[1] - vam0[1] + vam1[5] - vam0[5]),
             (long long)(vam1[3] - vam0[3] + vam1[7] - vam0[7]));
    printf("  madvise: %.0f calls/s; CPU %.2f s = %.2f per wall second "
           "(mutators %.2f, sweepers %.2f per thread)\n",
           madv_total / wall, cpu, cpu / wall, mut_cpu / wall / O.mutators,
           swp_cpu / wall / O.sweepers);
    printf("  RSS: peak %ld KiB, at the end %ld KiB, after freeing everything %ld KiB\n",
           rss_peak, rss_live, rss_final);
    if (!ok) printf("  first mismatch: %s (%llu in all)\n", first_error, LD(mismatches));
    if (frozen)
      printf("  FROZEN: still running at --timeout %.1f s (threads retrying EAGAIN)\n",
             O.timeout);
  }
  fflush(stdout);
  return !ok ? EXIT_MISMATCH : frozen ? EXIT_FROZEN : 0;
}
