/* misuse suite: one heap misuse per run.
 *
 *   cases NAME      run one case
 *   cases --list    the case names, one a line
 *
 * Built twice (tests/misuse/meson.build):
 *   misuse_cases      standard names (malloc, free, ...), no allocator linked:
 *                     run under LD_PRELOAD=<allocator>.so, or plainly for glibc
 *   misuse_cases_api  -DCASES_VAM_API: vam_malloc, vam_free, ... from the
 *                     static libvamalloc.a, beside glibc's malloc
 *
 * What a run prints on stdout (write(2), unbuffered, so nothing is lost when
 * the allocator aborts):
 *   case NAME
 *   misuse-addr 0x...   the pointer handed to the misused call, where the
 *                       report must name it
 *   CHECK FAILED: ...   the allocator let the misuse through AND something
 *                       is now wrong (a block handed out twice, overlapping
 *                       blocks, the steered address returned, ...)
 *   NOT CAUGHT          the misuse went through (the call returned and the
 *                       follow-up calls that should have found it returned)
 *   CHECKS OK           after NOT CAUGHT: every "nothing corrupted" check
 *                       passed
 * Exit status: 0 = NOT CAUGHT and checks ok; 3 = NOT CAUGHT and a check
 * failed; 4 = setup error (not a result); 2 = usage.  Caught = killed by a
 * signal, or a non-zero exit before NOT CAUGHT, or (VAMALLOC_ON_CORRUPTION=
 * warn) vamalloc's report line on stderr; run_misuse.py decides.
 *
 * With MISUSE_CONTRACT=1 (run_misuse.py --check) a call that returns must
 * also follow vamalloc's warn/ignore contract: realloc returns NULL with
 * errno EINVAL, malloc_usable_size returns 0.
 *
 * Every misused pointer goes through hide() so that the compiler neither
 * warns about the misuse (-Wuse-after-free, -Wfree-nonheap-object) nor
 * optimises it away. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifdef CASES_VAM_API
#include "vamalloc.h"
#define X_MALLOC vam_malloc
#define X_FREE vam_free
#define X_REALLOC vam_realloc
#define X_USABLE vam_usable_size
#else
#include <malloc.h>
#define X_MALLOC malloc
#define X_FREE free
#define X_REALLOC realloc
#define X_USABLE malloc_usable_size
#endif

#ifndef CASES_STATIC_OVERRIDE
#define CASES_STATIC_OVERRIDE 0
#endif

#define KiB ((size_t)1024)
#define MiB ((size_t)1024 * 1024)
#define SZ_SMALL 48
#define SZ_MEDIUM (20 * KiB)
#define SZ_LARGE (256 * KiB)
#define SZ_XLARGE (1 * MiB)
#define SZ_HUGE (8 * MiB)

/* ---- output ---------------------------------------------------------------- */

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (n > (int)sizeof buf - 2) n = (int)sizeof buf - 2;
  buf[n++] = '\n';
  for (int off = 0; off < n;) {
    ssize_t w = write(1, buf + off, (size_t)(n - off));
    if (w <= 0) return;
    off += (int)w;
  }
}

static int failures;
static int contract; /* MISUSE_CONTRACT=1 */

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...) {
  char buf[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  say("CHECK FAILED: %s", buf);
  failures++;
}

static void setup_error(const char *what) {
  say("SETUP ERROR: %s (errno %d)", what, errno);
  _exit(4);
}

static void misuse_addr(const void *p) { say("misuse-addr 0x%016lx", (unsigned long)(uintptr_t)p); }

/* The compiler cannot see through this: no warning, no folding. */
static void *hide(void *p) {
  __asm__ volatile("" : "+r"(p));
  return p;
}

/* The misuse went through: the follow-up checks ran; report and end. */
static int finish(void) {
  say("NOT CAUGHT");
  if (failures) return 3;
  say("CHECKS OK");
  return 0;
}

/* ---- allocators under test ------------------------------------------------- */

typedef struct {
  void *(*alloc)(size_t);
  void (*release)(void *);
} allocator_t;

static void *std_alloc(size_t n) { return hide(X_MALLOC(n)); }
static void std_release(void *p) { X_FREE(p); }
static const allocator_t std_allocator = {std_alloc, std_release};

/* ---- "nothing corrupted" -------------------------------------------------- */

/* Address ranges no allocation may ever overlap: the steering target, the
 * stack buffer or mapping that was freed, the garbage written into a link. */
static struct {
  uintptr_t lo, hi;
} avoid[8];
static int navoid;

static void avoid_range(const void *p, size_t n) {
  if (navoid < 8) {
    avoid[navoid].lo = (uintptr_t)p;
    avoid[navoid].hi = (uintptr_t)p + n;
    navoid++;
  }
}

static int in_avoid(const void *p, size_t n) {
  uintptr_t lo = (uintptr_t)p, hi = lo + n;
  for (int i = 0; i < navoid; i++)
    if (lo < avoid[i].hi && avoid[i].lo < hi) return 1;
  return 0;
}

#define MAXBLK 20000
static void *blk[MAXBLK], *sorted[MAXBLK];

/* Open-addressing set of the blocks handed out in one check: a block handed
 * out twice is found before anything is written into it. */
#define SEEN_SLOTS 65536 /* > 2 * MAXBLK, a power of two */
static uintptr_t seen[SEEN_SLOTS];

static int seen_before(const void *p) {
  uintptr_t v = (uintptr_t)p;
  size_t h = (size_t)((v >> 4) * 0x9e3779b97f4a7c15ULL) & (SEEN_SLOTS - 1);
  for (; seen[h] != 0; h = (h + 1) & (SEEN_SLOTS - 1))
    if (seen[h] == v) return 1;
  seen[h] = v;
  return 0;
}

static uint64_t tag_of(int i, size_t size) {
  return 0x6d69737573650000ULL ^ ((uint64_t)i * 0x9e3779b97f4a7c15ULL) ^ size;
}

static void sort_ptrs(void **a, int n) { /* shell sort: no malloc inside */
  static const int gaps[] = {4001, 1750, 701, 301, 132, 57, 23, 10, 4, 1};
  for (size_t g = 0; g < sizeof gaps / sizeof gaps[0]; g++) {
    int gap = gaps[g];
    for (int i = gap; i < n; i++) {
      void *v = a[i];
      int j = i;
      for (; j >= gap && (uintptr_t)a[j - gap] > (uintptr_t)v; j -= gap) a[j] = a[j - gap];
      a[j] = v;
    }
  }
}

/* Allocate enough blocks of `size` to hand out every free block of its
 * size class again (and to collect frees other threads made), and check:
 * none NULL, none inside an avoided range, none handed out twice, no two
 * overlapping, each keeps what was written into it.  The tags go at offset
 * 16 and at the end, never into the first two words, where free lists keep
 * their links: an allocator that hands a block out twice is then caught
 * handing it out twice, rather than crashing on a link the check wrote.
 * Freed again only when all is well (freeing a block handed out twice
 * would be a second misuse). */
static void heap_check_with(const allocator_t *a, size_t size) {
  int count = (int)(8 * MiB / size);
  if (count > MAXBLK) count = MAXBLK;
  if (count < 3) count = 3;
  int n = 0, bad = 0;
  memset(seen, 0, sizeof seen);
  for (int i = 0; i < count; i++) {
    void *p = a->alloc(size);
    if (p == NULL) {
      fail("malloc(%zu) #%d returned NULL (errno %d)", size, i, errno);
      bad = 1;
      break;
    }
    if (in_avoid(p, size)) { /* never write into it */
      fail("malloc(%zu) #%d returned %p, inside memory it never owned (steered or foreign)", size,
           i, p);
      bad = 1;
      break;
    }
    if (seen_before(p)) {
      fail("malloc(%zu) #%d handed out %p again while it was live", size, i, p);
      bad = 1;
      break;
    }
    uint64_t t = tag_of(i, size);
    memcpy((char *)p + 16, &t, sizeof t);
    memcpy((char *)p + size - sizeof t, &t, sizeof t);
    blk[n++] = p;
  }
  memcpy(sorted, blk, (size_t)n * sizeof blk[0]);
  sort_ptrs(sorted, n);
  for (int i = 0; i + 1 < n && !bad; i++) {
    if ((uintptr_t)sorted[i] + size > (uintptr_t)sorted[i + 1]) {
      fail("malloc(%zu) handed out overlapping blocks %p and %p", size, sorted[i], sorted[i + 1]);
      bad = 1;
    }
  }
  for (int i = 0; i < n && !bad; i++) {
    uint64_t t = tag_of(i, size), h, e;
    memcpy(&h, (char *)blk[i] + 16, sizeof h);
    memcpy(&e, (char *)blk[i] + size - sizeof e, sizeof e);
    if (h != t || e != t) {
      fail("block %p of %zu bytes lost its contents while live", blk[i], size);
      bad = 1;
    }
  }
  if (!bad)
    for (int i = 0; i < n; i++) a->release(blk[i]);
}

/* The case's own size, and always the 48-byte class. */
static void heap_check_sizes(const allocator_t *a, size_t size) {
  heap_check_with(a, size);
  if (size != SZ_SMALL) heap_check_with(a, SZ_SMALL);
}

static void heap_check(size_t size) { heap_check_sizes(&std_allocator, size); }

/* A live neighbour, so that freeing the block under test never empties its
 * slab (an empty slab may be decommitted, and the use-after-free writes
 * below must hit memory the allocator still treats as a free block). */
static void *pin(size_t size) {
  void *p = hide(X_MALLOC(size));
  if (p == NULL) setup_error("malloc for the pinning block");
  return p;
}

/* ---- double free ---------------------------------------------------------- */

static int double_free(size_t size) {
  void *keep = pin(size);
  void *p = hide(X_MALLOC(size));
  if (p == NULL) setup_error("malloc");
  X_FREE(hide(p));
  misuse_addr(p);
  X_FREE(hide(p));
  heap_check(size);
  X_FREE(keep);
  return finish();
}
static int case_double_free_small(void) { return double_free(SZ_SMALL); }
static int case_double_free_medium(void) { return double_free(SZ_MEDIUM); }
static int case_double_free_large(void) { return double_free(SZ_LARGE); }
static int case_double_free_xlarge(void) { return double_free(SZ_XLARGE); }
static int case_double_free_huge(void) { return double_free(SZ_HUGE); }

static int case_double_free_small_aba(void) {
  void *keep = pin(SZ_SMALL);
  void *a = hide(X_MALLOC(SZ_SMALL)), *b = hide(X_MALLOC(SZ_SMALL));
  if (a == NULL || b == NULL) setup_error("malloc");
  X_FREE(hide(a));
  X_FREE(hide(b));
  misuse_addr(a);
  X_FREE(hide(a));
  heap_check(SZ_SMALL);
  X_FREE(keep);
  return finish();
}

/* Allocated and freed by the main thread, freed again by another thread
 * (which does not own the block's slab).  The thread exists before the
 * first free, so nothing (thread creation allocates) comes between the two
 * frees. */
static sem_t go;
static void *to_free;

static void *free_in_thread(void *p) {
  X_FREE(hide(p));
  return NULL;
}

static void *free_when_told(void *arg) {
  (void)arg;
  while (sem_wait(&go) != 0) {
  }
  X_FREE(hide(to_free));
  return NULL;
}

static int double_free_other_thread(size_t size) {
  void *keep = pin(size);
  void *p = hide(X_MALLOC(size));
  if (p == NULL) setup_error("malloc");
  pthread_t t;
  if (sem_init(&go, 0, 0) != 0) setup_error("sem_init");
  if (pthread_create(&t, NULL, free_when_told, NULL) != 0) setup_error("pthread_create");
  X_FREE(hide(p));
  misuse_addr(p);
  to_free = p;
  sem_post(&go);
  pthread_join(t, NULL);
  heap_check(size);
  X_FREE(keep);
  return finish();
}
static int case_double_free_small_thread(void) { return double_free_other_thread(SZ_SMALL); }
static int case_double_free_medium_thread(void) { return double_free_other_thread(SZ_MEDIUM); }
static int case_double_free_large_thread(void) { return double_free_other_thread(SZ_LARGE); }
static int case_double_free_xlarge_thread(void) { return double_free_other_thread(SZ_XLARGE); }
static int case_double_free_huge_thread(void) { return double_free_other_thread(SZ_HUGE); }

/* Thread A allocates and frees; thread B frees again while A is alive (A's
 * heap owns the slab); then A allocates the size class out. */
static sem_t a_freed, b_done;
static void *ab_block;

static void *thread_a(void *arg) {
  (void)arg;
  void *keep = pin(SZ_SMALL);
  void *p = hide(X_MALLOC(SZ_SMALL));
  if (p == NULL) setup_error("malloc");
  X_FREE(hide(p));
  ab_block = p;
  sem_post(&a_freed);
  while (sem_wait(&b_done) != 0) {
  }
  heap_check(SZ_SMALL);
  X_FREE(keep);
  return NULL;
}

static int case_double_free_small_thread_ab(void) {
  pthread_t a, b;
  if (sem_init(&a_freed, 0, 0) || sem_init(&b_done, 0, 0)) setup_error("sem_init");
  if (pthread_create(&a, NULL, thread_a, NULL) != 0) setup_error("pthread_create");
  while (sem_wait(&a_freed) != 0) {
  }
  misuse_addr(ab_block);
  if (pthread_create(&b, NULL, free_in_thread, ab_block) != 0) setup_error("pthread_create");
  pthread_join(b, NULL);
  sem_post(&b_done);
  pthread_join(a, NULL);
  heap_check(SZ_SMALL);
  return finish();
}

/* ---- interior pointers ------------------------------------------------------ */

static int interior_free(size_t size, size_t offset) {
  void *keep = pin(SZ_SMALL);
  char *p = hide(X_MALLOC(size));
  if (p == NULL) setup_error("malloc");
  memset(p, 0, size);
  misuse_addr(p + offset);
  X_FREE(hide(p + offset));
  heap_check(size);
  X_FREE(p); /* the block itself is still live and must still be freeable */
  X_FREE(keep);
  return finish();
}
static int case_interior_free_small_1(void) { return interior_free(SZ_SMALL, 1); }
static int case_interior_free_small_16(void) { return interior_free(SZ_SMALL, 16); }
static int case_interior_free_medium(void) { return interior_free(SZ_MEDIUM, 4 * KiB); }
static int case_interior_free_large(void) { return interior_free(SZ_LARGE, 4 * KiB); }
static int case_interior_free_xlarge(void) { return interior_free(SZ_XLARGE, 32 * KiB); }
static int case_interior_free_huge(void) { return interior_free(SZ_HUGE, 4 * MiB); }

/* ---- pointers the allocator never handed out -------------------------------- */

static _Alignas(64) char global_buf[256];

static int invalid_free(void *p, size_t n) {
  avoid_range(p, n);
  misuse_addr(p);
  X_FREE(hide(p));
  heap_check(SZ_SMALL);
  return finish();
}

static int case_invalid_free_stack(void) {
  _Alignas(64) char buf[256];
  memset(buf, 0, sizeof buf);
  int r = invalid_free(buf + 64, 64);
  __asm__ volatile("" ::"r"(buf) : "memory");
  return r;
}
static int case_invalid_free_global(void) { return invalid_free(global_buf + 64, 64); }
static int case_invalid_free_4096(void) { return invalid_free((void *)(uintptr_t)4096, 64); }

static char *map_pages(size_t n) {
  char *m = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) setup_error("mmap");
  return m;
}

/* A page-aligned pointer into a private mapping (the shape of a huge block). */
static int case_invalid_free_mmap(void) { return invalid_free(map_pages(16 * KiB) + 8 * KiB, 64); }

#if defined(CASES_VAM_API) && !CASES_STATIC_OVERRIDE
/* glibc's block handed to vamalloc: another allocator's pointer. */
static int case_invalid_free_libc(void) {
  void *p = hide(malloc(SZ_SMALL));
  if (p == NULL) setup_error("libc malloc");
  return invalid_free(p, SZ_SMALL); /* leaks p in warn/ignore mode: fine */
}
#endif

/* ---- realloc and malloc_usable_size ----------------------------------------- */

static void check_realloc_refused(void *r, int e) {
  if (contract && (r != NULL || e != EINVAL))
    fail("realloc returned %p errno %d, want NULL with EINVAL (%d)", r, e, EINVAL);
}

static int case_realloc_freed(void) {
  void *keep = pin(SZ_SMALL);
  void *p = hide(X_MALLOC(SZ_SMALL));
  if (p == NULL) setup_error("malloc");
  X_FREE(hide(p));
  misuse_addr(p);
  errno = 0;
  void *r = X_REALLOC(hide(p), 2 * SZ_SMALL);
  check_realloc_refused(r, errno);
  heap_check(SZ_SMALL);
  X_FREE(keep);
  return finish();
}

static int case_realloc_foreign(void) {
  char *p = map_pages(16 * KiB) + 8 * KiB;
  avoid_range(p - 8 * KiB, 16 * KiB);
  misuse_addr(p);
  errno = 0;
  void *r = X_REALLOC(hide(p), 2 * SZ_SMALL);
  check_realloc_refused(r, errno);
  heap_check(SZ_SMALL);
  return finish();
}

static int case_usable_size_freed(void) {
  void *keep = pin(SZ_SMALL);
  void *p = hide(X_MALLOC(SZ_SMALL));
  if (p == NULL) setup_error("malloc");
  X_FREE(hide(p));
  misuse_addr(p);
  size_t n = X_USABLE(hide(p));
  if (contract && n != 0) fail("malloc_usable_size of a freed block returned %zu, want 0", n);
  heap_check(SZ_SMALL);
  X_FREE(keep);
  return finish();
}

/* ---- writes into freed blocks ----------------------------------------------- */

static _Alignas(64) char steer_target[256];

/* Two 48-byte blocks freed, the second (p, returned) last: in a LIFO free
 * list p comes first and its link leads to the other, so the link is
 * followed even by an allocator that counts its list entries (glibc's
 * tcache). */
static void *freed_behind_another(void) {
  void *q = hide(X_MALLOC(SZ_SMALL)), *p = hide(X_MALLOC(SZ_SMALL));
  if (p == NULL || q == NULL) setup_error("malloc");
  X_FREE(q);
  X_FREE(hide(p));
  return p;
}

/* Use after free: the address of a global goes into the first two words of
 * a freed block (where a free-list link lives); two mallocs of its size
 * follow.  NOT CAUGHT and corrupted when either returns the global. */
static int case_uaf_steer(void) {
  void *keep = pin(SZ_SMALL);
  void *p = freed_behind_another();
  void **w = hide(p);
  w[0] = steer_target;
  w[1] = steer_target;
  avoid_range(steer_target, sizeof steer_target);
  void *a = hide(X_MALLOC(SZ_SMALL));
  void *b = hide(X_MALLOC(SZ_SMALL));
  if (a == (void *)steer_target || b == (void *)steer_target) {
    fail("malloc returned the address written into the freed block (%p)", (void *)steer_target);
    return finish();
  }
  heap_check(SZ_SMALL);
  X_FREE(keep);
  return finish();
}

/* Random garbage (fixed, so runs repeat; non-canonical, so following it
 * faults) in the first word of a freed block. */
#define GARBAGE ((uintptr_t)0x9c3e5a17d2b4f681ULL)
static int case_freelist_garbage(void) {
  void *keep = pin(SZ_SMALL);
  void *p = freed_behind_another();
  uintptr_t *w = hide(p);
  w[0] = GARBAGE;
  avoid_range((void *)(GARBAGE & ~(uintptr_t)4095), 8192);
  void *a = hide(X_MALLOC(SZ_SMALL));
  void *b = hide(X_MALLOC(SZ_SMALL));
  if (in_avoid(a, SZ_SMALL) || in_avoid(b, SZ_SMALL)) {
    fail("malloc returned %p, the garbage written into the freed block",
         in_avoid(a, SZ_SMALL) ? a : b);
    return finish();
  }
  heap_check(SZ_SMALL);
  X_FREE(keep);
  return finish();
}

/* ---- first-class heaps (API build) ------------------------------------------- */

#ifdef CASES_VAM_API
static vam_heap_t *user_heap;
static void *uh_alloc(size_t n) { return hide(vam_heap_malloc(user_heap, n)); }
static void uh_release(void *p) { vam_heap_free(user_heap, p); }
static const allocator_t uh_allocator = {uh_alloc, uh_release};

static int case_heap_double_free(void) {
  vam_heap_options o = {.struct_size = sizeof o, .name = "misuse"};
  user_heap = vam_heap_new(&o);
  if (user_heap == NULL) setup_error("vam_heap_new");
  void *keep = hide(vam_heap_malloc(user_heap, SZ_SMALL));
  void *p = hide(vam_heap_malloc(user_heap, SZ_SMALL));
  if (keep == NULL || p == NULL) setup_error("vam_heap_malloc");
  vam_heap_free(user_heap, hide(p));
  misuse_addr(p);
  vam_heap_free(user_heap, hide(p));
  heap_check_sizes(&uh_allocator, SZ_SMALL);
  vam_heap_free(user_heap, keep);
  vam_heap_destroy(user_heap);
  return finish();
}
#endif

/* ---- what only the secure build catches ---------------------------------------- */

/* One byte past the end of a 48-byte block (its usable size), then free. */
static int case_overflow_small_1byte(void) {
  void *keep = pin(SZ_SMALL);
  unsigned char *p = hide(X_MALLOC(SZ_SMALL));
  if (p == NULL) setup_error("malloc");
  size_t n = X_USABLE(p);
  if (n < SZ_SMALL) setup_error("malloc_usable_size below the request");
  unsigned char *q = hide(p);
  q[n] = (unsigned char)~q[n];
  X_FREE(p);
  heap_check(SZ_SMALL);
  X_FREE(keep);
  return finish();
}

/* Write into a freed block (not its first 16 bytes), then malloc the same
 * size, keeping the blocks, until the block comes back. */
#define WAF_MAX 100000
static void *waf_blocks[WAF_MAX];
static int case_write_after_free(void) {
  void *keep = pin(SZ_SMALL);
  unsigned char *p = hide(X_MALLOC(SZ_SMALL));
  if (p == NULL) setup_error("malloc");
  X_FREE(hide(p));
  memset((unsigned char *)hide(p) + 24, 0x41, 8);
  int n = 0, reused = 0;
  while (n < WAF_MAX) {
    void *q = hide(X_MALLOC(SZ_SMALL));
    if (q == NULL) break;
    waf_blocks[n++] = q;
    if (q == (void *)p) {
      reused = 1;
      break;
    }
  }
  say("block %s after %d mallocs", reused ? "reused" : "not reused", n);
  for (int i = 0; i < n; i++) X_FREE(waf_blocks[i]);
  heap_check(SZ_SMALL);
  X_FREE(keep);
  return finish();
}

static int case_malloc0_write(void) {
  void *p = hide(X_MALLOC(0));
  if (p == NULL) setup_error("malloc(0)");
  volatile char *v = hide(p);
  v[0] = 1;
  X_FREE(p);
  return finish();
}

static int case_malloc0_read(void) {
  void *p = hide(X_MALLOC(0));
  if (p == NULL) setup_error("malloc(0)");
  volatile char *v = hide(p);
  char c = v[0];
  __asm__ volatile("" ::"r"(c));
  X_FREE(p);
  return finish();
}

/* One byte past the usable end of a big block: the guard page. */
static int guard_overflow(size_t size) {
  char *p = hide(X_MALLOC(size));
  if (p == NULL) setup_error("malloc");
  size_t n = X_USABLE(p);
  if (n < size) setup_error("malloc_usable_size below the request");
  volatile char *v = hide(p);
  v[n] = 1;
  X_FREE(p);
  return finish();
}
static int case_guard_large(void) { return guard_overflow(SZ_LARGE); }
static int case_guard_xlarge(void) { return guard_overflow(SZ_XLARGE); }
static int case_guard_huge(void) { return guard_overflow(SZ_HUGE); }

/* ---- table ------------------------------------------------------------------ */

static const struct {
  const char *name;
  int (*run)(void);
} cases[] = {
    {"double-free-small", case_double_free_small},
    {"double-free-small-aba", case_double_free_small_aba},
    {"double-free-medium", case_double_free_medium},
    {"double-free-large", case_double_free_large},
    {"double-free-xlarge", case_double_free_xlarge},
    {"double-free-huge", case_double_free_huge},
    {"double-free-small-thread", case_double_free_small_thread},
    {"double-free-small-thread-ab", case_double_free_small_thread_ab},
    {"double-free-medium-thread", case_double_free_medium_thread},
    {"double-free-large-thread", case_double_free_large_thread},
    {"double-free-xlarge-thread", case_double_free_xlarge_thread},
    {"double-free-huge-thread", case_double_free_huge_thread},
    {"interior-free-small-1", case_interior_free_small_1},
    {"interior-free-small-16", case_interior_free_small_16},
    {"interior-free-medium", case_interior_free_medium},
    {"interior-free-large", case_interior_free_large},
    {"interior-free-xlarge", case_interior_free_xlarge},
    {"interior-free-huge", case_interior_free_huge},
    {"invalid-free-stack", case_invalid_free_stack},
    {"invalid-free-global", case_invalid_free_global},
    {"invalid-free-4096", case_invalid_free_4096},
    {"invalid-free-mmap", case_invalid_free_mmap},
#if defined(CASES_VAM_API) && !CASES_STATIC_OVERRIDE
    {"invalid-free-libc", case_invalid_free_libc},
#endif
    {"realloc-freed", case_realloc_freed},
    {"realloc-foreign", case_realloc_foreign},
    {"usable-size-freed", case_usable_size_freed},
    {"uaf-steer", case_uaf_steer},
    {"freelist-garbage", case_freelist_garbage},
#ifdef CASES_VAM_API
    {"heap-double-free", case_heap_double_free},
#endif
    {"overflow-small-1byte", case_overflow_small_1byte},
    {"write-after-free", case_write_after_free},
    {"malloc0-write", case_malloc0_write},
    {"malloc0-read", case_malloc0_read},
    {"guard-large", case_guard_large},
    {"guard-xlarge", case_guard_xlarge},
    {"guard-huge", case_guard_huge},
};

int main(int argc, char **argv) {
  size_t ncases = sizeof cases / sizeof cases[0];
  if (argc == 2 && strcmp(argv[1], "--list") == 0) {
    for (size_t i = 0; i < ncases; i++) say("%s", cases[i].name);
    return 0;
  }
  if (argc != 2) {
    say("usage: %s CASE | --list", argv[0]);
    return 2;
  }
  const char *c = getenv("MISUSE_CONTRACT");
  contract = c && strcmp(c, "1") == 0;
  for (size_t i = 0; i < ncases; i++) {
    if (strcmp(argv[1], cases[i].name) == 0) {
      say("case %s", cases[i].name);
      return cases[i].run();
    }
  }
  say("unknown case %s (--list names them)", argv[1]);
  return 2;
}
