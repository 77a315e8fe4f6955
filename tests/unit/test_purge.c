/* Purging and the huge-mapping pool: free memory stays for reuse until it
 * has been idle for the purge delay, then goes back in coalesced runs (one
 * madvise each); a freed huge mapping is reused without mmap; vam_collect
 * purges on demand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "internal.h"

static uint64_t stat(vam_atomic(uint64_t) *c) { return vam_load_relaxed(c); }
static uint64_t madvise_calls(void) { return stat(&vam__os_counters[VAM_OS_madvise].calls); }

static size_t resident_pages(void *p, size_t len) {
  static unsigned char vec[1 << 16];
  size_t pages = len / 4096, n = 0;
  assert_true(pages <= sizeof vec);
  assert_int_equal(vam__os_residency(p, len, vec), 0);
  for (size_t i = 0; i < pages; i++) n += vec[i] & 1;
  return n;
}

static void test_idle_spans_purged_in_one_run(void **state) {
  (void)state;
  vam__options.purge_delay_ms = 3600000; /* nothing is due by age */
  /* three adjacent large spans, plus one to keep the chunk from emptying */
  size_t sz = (size_t)10 * VAM_UNIT_SIZE; /* above the small maximum: large spans */
  unsigned char *keep = vam_malloc(sz), *a = vam_malloc(sz), *b = vam_malloc(sz), *c = vam_malloc(sz);
  assert_ptr_equal(a + sz, b);
  assert_ptr_equal(b + sz, c);
  memset(a, 1, 3 * sz);
  vam_free(a);
  vam_free(b);
  vam_free(c);
  uint64_t runs0 = stat(&vam__stats.purge_runs), madv0 = madvise_calls();
  vam_collect(false); /* not idle long enough: nothing happens */
  assert_int_equal(stat(&vam__stats.purge_runs), runs0);
  assert_true(resident_pages(a, 3 * sz) > 0);
  vam_collect(true); /* forced: one run, one madvise, for the three spans */
  assert_int_equal(madvise_calls() - madv0, 1);
  assert_true(stat(&vam__stats.purge_runs) - runs0 == 1);
  assert_int_equal(resident_pages(a, 3 * sz), 0);
  /* the purged range is known to be zero: calloc there needs no memset,
   * and reads zeroes */
  unsigned char *z = vam_calloc(1, 3 * sz);
  assert_ptr_equal(z, a);
  for (size_t i = 0; i < 3 * sz; i += 4096) assert_int_equal(z[i], 0);
  vam_free(z);
  vam_free(keep);
}

static void test_purge_after_delay(void **state) {
  (void)state;
  vam__options.purge_delay_ms = 50;
  size_t sz = (size_t)10 * VAM_UNIT_SIZE; /* above the small maximum: large spans */
  unsigned char *keep = vam_malloc(sz), *a = vam_malloc(sz);
  memset(a, 2, sz);
  vam_free(a);
  uint64_t bytes0 = stat(&vam__stats.purged_bytes);
  vam__os_sleep_us(120 * 1000); /* more than the delay */
  vam_free(vam_malloc(sz)); /* any span slow path runs the purge tick */
  assert_true(stat(&vam__stats.purged_bytes) - bytes0 >= sz);
  vam_free(keep);
}

/* A program whose large mallocs all hit its thread's span cache never
 * reaches the span allocator: purging must still run for it. */
static void test_purge_runs_on_cache_hits(void **state) {
  (void)state;
  vam_free(vam_malloc(16)); /* this thread gets its heap, and caches */
  vam_collect(true);         /* empty ones */
  vam__options.purge_delay_ms = 50;
  size_t sz = (size_t)10 * VAM_UNIT_SIZE;
  enum { N = 12 }; /* 120 units: more than the 64-unit cache holds */
  unsigned char *p[N];
  for (int i = 0; i < N; i++) {
    assert_non_null(p[i] = vam_malloc(sz));
    memset(p[i], 3, sz);
  }
  for (int i = 0; i < N; i++) vam_free(p[i]); /* 6 cached, 6 back to their chunk */
  uint64_t bytes0 = stat(&vam__stats.purged_bytes);
  vam__os_sleep_us(120 * 1000);
  for (int i = 0; i < 4; i++) vam_free(vam_malloc(sz)); /* cache hits only */
  assert_true(stat(&vam__stats.purged_bytes) - bytes0 >= 6 * sz);
}

static void test_huge_cache_reuse(void **state) {
  (void)state;
  vam__options.purge_delay_ms = 3600000;
  unsigned char *h = vam_malloc(20 << 20);
  memset(h, 3, 20 << 20);
  vam_free(h);
  uint64_t mmap0 = stat(&vam__os_counters[VAM_OS_mmap].calls), hits0 = stat(&vam__stats.huge_cache_hits);
  unsigned char *again = vam_malloc(18 << 20);
  assert_ptr_equal(again, h); /* the cached mapping, no new mmap */
  assert_int_equal(stat(&vam__os_counters[VAM_OS_mmap].calls), mmap0);
  assert_int_equal(stat(&vam__stats.huge_cache_hits) - hits0, 1);
  vam_free(again);
  /* calloc from a cached, not yet purged mapping must still be zero */
  unsigned char *z = vam_calloc(1, 19 << 20);
  assert_ptr_equal(z, h);
  for (size_t i = 0; i < (19u << 20); i += 4096) assert_int_equal(z[i], 0);
  vam_free(z);
  /* forced collect purges and releases the cache */
  uint64_t maps = vam__va_mappings();
  vam_collect(true);
  assert_true(vam__va_mappings() < maps);
}

/* Huge realloc: grows without copying.  A block sharing a region grows
 * into the free range after it or is copied once into a region of its
 * own; from then on mremap resizes it (in place or by moving pages). */
static void test_huge_realloc_growth(void **state) {
  (void)state;
  size_t n = 3 << 20;
  unsigned char *p = vam_malloc(n);
  memset(p, 7, n);
  uint64_t copies0 = stat(&vam__stats.huge_realloc_copies);
  for (int i = 0; i < 6; i++) {
    size_t m = n * 2;
    p = vam_realloc(p, m);
    assert_non_null(p);
    for (size_t k = 0; k < n; k += 4096) assert_int_equal(p[k], 7);
    memset(p + n, 7, m - n);
    n = m;
  }
  assert_true(stat(&vam__stats.huge_realloc_copies) - copies0 <= 1); /* at most one copy */
  p = vam_realloc(p, 5 << 20); /* shrink: the tail goes back to the pool */
  for (size_t k = 0; k < (5u << 20); k += 4096) assert_int_equal(p[k], 7);
  assert_int_equal(vam_usable_size(p), 5 << 20);
  vam_free(p);
}

static void test_madv_free_mode(void **state) {
  (void)state;
  vam__options.purge = VAM_PURGE_FREE;
  size_t sz = (size_t)10 * VAM_UNIT_SIZE; /* above the small maximum: large spans */
  unsigned char *keep = vam_malloc(sz), *a = vam_malloc(sz);
  memset(a, 0x77, sz);
  vam_free(a);
  vam_collect(true);
  /* MADV_FREE pages may keep old bytes: calloc must not trust them */
  unsigned char *z = vam_calloc(1, sz);
  assert_ptr_equal(z, a);
  for (size_t i = 0; i < sz; i++) assert_int_equal(z[i], 0);
  vam_free(z);
  vam_free(keep);
  vam__options.purge = VAM_PURGE_DONTNEED;
}

int main(void) {
  vam__ensure_init();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_idle_spans_purged_in_one_run),
      cmocka_unit_test(test_purge_after_delay),
      cmocka_unit_test(test_purge_runs_on_cache_hits),
      cmocka_unit_test(test_huge_cache_reuse),
      cmocka_unit_test(test_huge_realloc_growth),
      cmocka_unit_test(test_madv_free_mode),
  };
  return cmocka_run_group_tests_name("purge", tests, NULL, NULL);
}
