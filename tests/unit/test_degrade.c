/* Degrade and recover (issue: the OS layer that survives the kernel).  Each
 * test injects a fault through the OS layer's hook and checks that the
 * allocator stays correct, says so in its health and counters, and comes
 * back by itself once the kernel cooperates. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <unistd.h>
#include <cmocka.h>
#include "internal.h"

static uint64_t stat(vam_atomic(uint64_t) *c) { return vam_load_relaxed(c); }
static void faults(const char *spec) { assert_int_equal(vam__os_fault_spec(spec, true), 0); }

static char health_buf[16384];
static bool degraded(void) {
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  vam_stats_print(fds[1], VAM_STATS_JSON);
  close(fds[1]);
  ssize_t n = read(fds[0], health_buf, sizeof health_buf - 1);
  close(fds[0]);
  health_buf[n > 0 ? n : 0] = 0;
  return strstr(health_buf, "\"health\":\"degraded\"") != NULL;
}

static int setup(void **state) {
  (void)state;
  vam__ensure_init();
  vam__os_retry_max = 3;      /* keep give-ups quick */
  vam__os_retry_delay_us = 100;
  vam__options.chunk_cache = 4;
  vam__options.purge_delay_ms = 0; /* an emptied chunk is purged at once */
  return 0;
}

/* A decommit that gives up leaves the pages accounted as dirty: calloc over
 * them still returns zeroes, and the decommit is tried again later. */
static void test_decommit_gives_up(void **state) {
  (void)state;
  size_t big = (size_t)60 * VAM_UNIT_SIZE; /* two of these fill most of a chunk */
  unsigned char *a = vam_malloc(big), *b = vam_malloc(big);
  assert_true(vam__chunk_of(a) == vam__chunk_of(b)); /* a fresh chunk of their own */
  memset(a, 0xaa, big);
  memset(b, 0xbb, big);
  uint64_t fail0 = stat(&vam__stats.decommit_failures);
  uint64_t giveups0 = stat(&vam__os_counters[VAM_OS_madvise].giveups);
  faults("madvise=EAGAIN");
  vam_free(a);
  vam_free(b); /* the chunk empties: decommit is tried and gives up */
  assert_true(stat(&vam__stats.decommit_failures) - fail0 >= 1);
  assert_true(stat(&vam__os_counters[VAM_OS_madvise].giveups) - giveups0 >= 1);
  assert_true(degraded());
  /* calloc lands on the same, still dirty, memory and must zero it */
  unsigned char *z = vam_calloc(1, big);
  assert_ptr_equal(z, a);
  for (size_t i = 0; i < big; i++)
    if (z[i] != 0) fail_msg("byte %zu is %#x after calloc over a failed decommit", i, z[i]);
  vam_free(z);
  /* the kernel cooperates again: the next chunk that empties retries the
   * pending decommit too, and health comes back */
  faults("");
  unsigned char *c = vam_malloc(big), *d = vam_malloc(big);
  vam_free(c);
  vam_free(d);
  vam_collect(true); /* purging backs off after a give-up; force the retry */
  assert_false(degraded());
}

/* A span a thread cache held past the purge delay gives its pages back on
 * its way to the chunk; when that madvise gives up the span still goes
 * back, stays accounted dirty (not handed out as zeroed), and is counted. */
static void test_idle_span_purge_gives_up(void **state) {
  (void)state;
  faults("");
  vam_collect(true); /* no purge back-off left from earlier tests */
  assert_true(vam__purge_ok_now());
  vam_span_t *pg = vam__span_alloc(10, 1, NULL);
  assert_non_null(pg);
  memset(pg->start, 0x5a, 10 * VAM_UNIT_SIZE);
  uint8_t *at = pg->start;
  uint64_t fail0 = stat(&vam__stats.decommit_failures);
  vam__options.purge_delay_ms = 3600000; /* only this span's purge is due */
  faults("madvise=EAGAIN");
  vam__span_free_idle(pg);
  vam__options.purge_delay_ms = 0;
  assert_int_equal(stat(&vam__stats.decommit_failures) - fail0, 1);
  assert_true(degraded());
  faults("");
  bool zeroed = true;
  vam_span_t *again = vam__span_alloc(10, 1, &zeroed);
  assert_non_null(again);
  assert_ptr_equal(again->start, at);
  assert_false(zeroed); /* the failed purge left it dirty */
  vam__span_free(again);
  vam_collect(true);
  assert_false(degraded());
}

/* Transient EAGAIN is absorbed by the retry: no give-up, no degradation. */
static void test_transient_eagain(void **state) {
  (void)state;
  size_t big = (size_t)60 * VAM_UNIT_SIZE;
  void *a = vam_malloc(big), *b = vam_malloc(big);
  uint64_t retries0 = stat(&vam__os_counters[VAM_OS_madvise].retries);
  uint64_t fail0 = stat(&vam__stats.decommit_failures);
  faults("madvise=EAGAIN:count=2");
  vam_free(a);
  vam_free(b);
  vam_collect(true); /* not waiting out a back-off from an earlier test */
  assert_true(stat(&vam__os_counters[VAM_OS_madvise].retries) - retries0 >= 2);
  assert_int_equal(stat(&vam__stats.decommit_failures), fail0);
  assert_false(degraded());
  faults("");
}

/* mmap fails for a window: allocations that need new memory get NULL +
 * ENOMEM (never a crash), memory already held keeps working, and after the
 * window everything recovers without restarting anything. */
static void test_mmap_window(void **state) {
  (void)state;
  vam__chunk_release_cached(); /* no cached chunk to fall back on */
  faults("mmap=ENOMEM");
  errno = 0;
  assert_null(vam_malloc(64 << 20));
  assert_int_equal(errno, ENOMEM);
  /* large spans need a chunk when none has room: keep asking until refused */
  void *held[256];
  size_t n = 0;
  for (; n < 256; n++) {
    errno = 0;
    held[n] = vam_malloc(1 << 20);
    if (held[n] == NULL) break;
  }
  assert_true(n < 256);
  assert_int_equal(errno, ENOMEM);
  assert_true(degraded());
  void *q = NULL;
  errno = 0;
  assert_int_equal(vam_posix_memalign(&q, 4096, 32 << 20), ENOMEM);
  assert_null(q);
  faults(""); /* the window closes */
  void *big = vam_malloc(64 << 20);
  assert_non_null(big);
  memset(big, 1, 64 << 20);
  assert_false(degraded());
  for (size_t i = 0; i < n; i++) vam_free(held[i]);
  vam_free(big);
}

/* munmap refused: the huge range stays in the books, is reused by the next
 * huge allocation that fits, and is released once munmap works again. */
static void test_munmap_refused_huge(void **state) {
  (void)state;
  vam_collect(true);
  vam__options.large_pool_max = 1; /* no caching: every free unmaps */
  unsigned char *h = vam_malloc(16 << 20);
  memset(h, 0x5a, 16 << 20);
  uint64_t kept0 = stat(&vam__stats.huge_retained), reused0 = stat(&vam__stats.huge_cache_hits);
  faults("munmap=ENOMEM");
  vam_free(h);
  assert_int_equal(stat(&vam__stats.huge_retained) - kept0, 1);
  assert_false(vam_owns(h));
  assert_true(degraded());
  unsigned char *again = vam_calloc(1, 12 << 20);
  assert_ptr_equal(again, h); /* the kept range, not a new mapping */
  assert_int_equal(stat(&vam__stats.huge_cache_hits) - reused0, 1);
  for (size_t i = 0; i < (12u << 20); i += 512) assert_int_equal(again[i], 0);
  vam_free(again); /* still refused: kept again */
  faults("");
  void *other = vam_malloc(8 << 20);
  vam_free(other); /* munmap works: the kept range is released on the way */
  assert_false(degraded());
  vam__options.large_pool_max = 0;
}

/* munmap refused for an empty chunk (released under memory pressure): it
 * stays cached, in the books, and is reused. */
static void test_munmap_refused_chunk(void **state) {
  (void)state;
  size_t big = (size_t)60 * VAM_UNIT_SIZE;
  /* Spans fill the oldest chunks first, so take enough that at least one
   * chunk holds only these. */
  void *blocks[8];
  for (int i = 0; i < 8; i++) assert_non_null(blocks[i] = vam_malloc(big));
  uint64_t fail0 = stat(&vam__stats.chunk_release_failures);
  faults("munmap=ENOMEM");
  /* Some chunk empties: it is cached, or (purge delay 0) its idle arena
   * is unmapped at once; either way the refusal keeps it in the books. */
  for (int i = 0; i < 8; i++) vam_free(blocks[i]);
  vam__chunk_release_cached(); /* what an allocation under pressure does */
  assert_true(stat(&vam__stats.chunk_release_failures) - fail0 >= 1);
  faults("mmap=ENOMEM"); /* no new chunks: a kept one must serve */
  void *c = vam_malloc(big);
  assert_non_null(c);
  assert_true(vam_owns(c));
  faults("");
  vam_free(c);
  vam__chunk_release_cached(); /* munmap works again: health recovers */
  assert_false(degraded());
}

/* Metadata allocation fails as a thread starts: its allocations still work
 * (the shared heap) or fail cleanly, and it gets its own heap once the
 * kernel cooperates.  The thread only records what it saw (a cmocka assert
 * in a worker thread crashes instead of reporting); the main thread asserts. */
typedef struct meta_result {
  int spec_rc[2];       /* vam__os_fault_spec: set, then clear */
  void *p, *q;          /* vam_malloc(40) under the fault, then without */
  int p_errno;
  bool p_on_fallback;   /* no heap of its own after the first malloc */
  bool q_own_heap;      /* its own heap after the second */
} meta_result_t;

static void *thread_under_meta_failure(void *arg) {
  meta_result_t *r = arg;
  r->spec_rc[0] = vam__os_fault_spec("mmap=ENOMEM", true);
  errno = 0;
  r->p = vam_malloc(40);
  r->p_errno = errno;
  r->p_on_fallback = vam__tls_heap == &vam__empty_heap;
  r->spec_rc[1] = vam__os_fault_spec("", true);
  r->q = vam_malloc(40);
  r->q_own_heap = vam__tls_heap != &vam__empty_heap;
  vam_free(r->p);
  vam_free(r->q);
  return NULL;
}

static void test_metadata_failure(void **state) {
  (void)state;
  /* Fill the metadata bump region (a 64 KiB request takes a region of its
   * own, to the byte), so the new thread's heap needs a fresh mapping, the
   * one the fault refuses.  No thread has exited, so no pooled heap. */
  assert_non_null(vam__meta_alloc((size_t)64 * 1024));
  uint64_t mmap_fail0 = stat(&vam__os_counters[VAM_OS_mmap].failures);
  meta_result_t r = {.spec_rc = {-1, -1}};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, thread_under_meta_failure, &r), 0);
  assert_int_equal(pthread_join(t, NULL), 0);
  assert_int_equal(r.spec_rc[0], 0);
  assert_int_equal(r.spec_rc[1], 0);
  /* The injection was hit: an mmap was refused and the thread ran on the
   * shared heap, without a heap of its own. */
  assert_true(stat(&vam__os_counters[VAM_OS_mmap].failures) > mmap_fail0);
  assert_true(r.p_on_fallback);
  if (r.p == NULL) assert_int_equal(r.p_errno, ENOMEM);
  assert_non_null(r.q);
  assert_true(r.q_own_heap); /* not stuck on the fallback */
}

/* VAMALLOC_VERBOSE=1: one line when vamalloc degrades and one when it
 * recovers, never one per failed call. */
static void test_verbose_one_line_each(void **state) {
  (void)state;
  assert_false(degraded());
  vam__options.verbose = 1;
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  int saved = dup(2);
  dup2(fds[1], 2);
  faults("mmap=ENOMEM");
  for (int i = 0; i < 50; i++) assert_null(vam_malloc(32 << 20)); /* 50 refusals */
  faults("");
  for (int i = 0; i < 5; i++) vam_free(vam_malloc(32 << 20));
  dup2(saved, 2);
  close(saved);
  close(fds[1]);
  char buf[4096];
  ssize_t n = read(fds[0], buf, sizeof buf - 1);
  close(fds[0]);
  buf[n > 0 ? n : 0] = 0;
  vam__options.verbose = 0;
  int lines = 0;
  for (char *p = buf; *p; p++) lines += *p == '\n';
  assert_int_equal(lines, 2);
  assert_non_null(strstr(buf, "vamalloc: degraded: mmap refused"));
  assert_non_null(strstr(buf, "vamalloc: recovered: mmap works again"));
}

/* These paths are the lazy-commit ones (madvise decommit); strict mode has
 * its own file, test_strict.c.  Set before vamalloc's constructor reads
 * environ. */
__attribute__((constructor(101))) static void choose_mode(void) { setenv("VAMALLOC_COMMIT", "lazy", 1); }

/* A refused guard (mprotect ENOMEM, e.g. at the map count): the new chunk,
 * or the huge object, goes without its front guard, counted, and works.
 * The rule fails the guard's mprotect: the first one of a new chunk or
 * huge object in lazy mode, the second (after the commit) in strict. */
static const char *guard_fault(void) {
  return vam__va_strict() ? "mprotect=ENOMEM:after=1:count=1" : "mprotect=ENOMEM:count=1";
}

static void test_guard_refused(void **state) {
  (void)state;
  enum { N = 64 };
  static unsigned char *v[N];
  uint64_t chunk0 = stat(&vam__stats.chunk_guard_failures);
  int made = -1;
  for (int i = 0; i < N && made < 0; i++) {
    uint64_t before = stat(&vam__stats.chunks_reserved);
    faults(guard_fault());
    v[i] = vam_malloc(1 << 20);
    faults("");
    assert_non_null(v[i]);
    memset(v[i], 0x5a, 1 << 20);
    if (stat(&vam__stats.chunks_reserved) > before) made = i;
  }
  assert_true(made >= 0); /* a new chunk was made under the rule */
  assert_int_equal(stat(&vam__stats.chunk_guard_failures), chunk0 + 1);
  assert_int_equal(vam__chunk_of(v[made])->front_guarded, 0);
  for (int i = 0; i <= made; i++) vam_free(v[i]);

  uint64_t huge0 = stat(&vam__stats.huge_guard_failures), frees0 = stat(&vam__stats.huge_frees);
  faults(guard_fault());
  unsigned char *h = vam_malloc(6 << 20);
  faults("");
  assert_non_null(h);
  memset(h, 0x5a, 6 << 20);
  assert_int_equal(stat(&vam__stats.huge_guard_failures), huge0 + 1);
  assert_int_equal(vam__huge_of(h)->front_guarded, 0);
  vam_free(h);
  assert_int_equal(stat(&vam__stats.huge_frees), frees0 + 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_decommit_gives_up),  cmocka_unit_test(test_idle_span_purge_gives_up),
      cmocka_unit_test(test_transient_eagain),   cmocka_unit_test(test_guard_refused),
      cmocka_unit_test(test_mmap_window),        cmocka_unit_test(test_munmap_refused_huge),
      cmocka_unit_test(test_munmap_refused_chunk), cmocka_unit_test(test_metadata_failure),
      cmocka_unit_test(test_verbose_one_line_each),
  };
  return cmocka_run_group_tests_name("degrade", tests, setup, NULL);
}
