/* The retry macro: EAGAIN is retried exactly retry_max times with a sleep
 * between tries, then handed up; other errors and success are not retried;
 * every outcome is counted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <time.h>
#include <cmocka.h>
#include "internal.h"

static int calls;
static int results[8];
static int nresults;
static int next_result(void) {
  int r = calls < nresults ? results[calls] : results[nresults - 1];
  calls++;
  return r;
}

static uint64_t cnt(vam_atomic(uint64_t) *c) { return vam_load_relaxed(c); }

static void test_eagain_is_capped(void **state) {
  (void)state;
  vam__os_retry_max = 7;
  vam__os_retry_delay_us = 200;
  vam_os_counters_t *c = &vam__os_counters[VAM_OS_mincore];
  uint64_t r0 = cnt(&c->retries), g0 = cnt(&c->giveups), e0 = cnt(&c->eagain), f0 = cnt(&c->failures);
  calls = 0;
  results[0] = EAGAIN;
  nresults = 1;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int err = VAM_OS_RETRY(VAM_OS_mincore, next_result());
  clock_gettime(CLOCK_MONOTONIC, &t1);
  assert_int_equal(err, EAGAIN);
  assert_int_equal(calls, 8); /* first try + 7 retries */
  assert_int_equal(cnt(&c->retries) - r0, 7);
  assert_int_equal(cnt(&c->giveups) - g0, 1);
  assert_int_equal(cnt(&c->eagain) - e0, 8);
  assert_int_equal(cnt(&c->failures) - f0, 1);
  assert_int_equal(cnt(&c->by_errno[VAM_OS_E_EAGAIN]) > 0, 1);
  /* Not a timing assertion on speed: the sleeps must really have happened
   * (7 x 200 us), which a zero-delay spin would not do. */
  long ns = (t1.tv_sec - t0.tv_sec) * 1000000000L + (t1.tv_nsec - t0.tv_nsec);
  assert_true(ns >= 7 * 200 * 1000L);
}

static void test_transient_eagain_recovers(void **state) {
  (void)state;
  vam__os_retry_max = 100;
  vam__os_retry_delay_us = 1;
  calls = 0;
  results[0] = EAGAIN;
  results[1] = EAGAIN;
  results[2] = 0;
  nresults = 3;
  assert_int_equal(VAM_OS_RETRY(VAM_OS_madvise, next_result()), 0);
  assert_int_equal(calls, 3);
}

static void test_other_errors_not_retried(void **state) {
  (void)state;
  calls = 0;
  results[0] = ENOMEM;
  nresults = 1;
  vam_os_counters_t *c = &vam__os_counters[VAM_OS_mprotect];
  uint64_t n0 = cnt(&c->by_errno[VAM_OS_E_ENOMEM]);
  assert_int_equal(VAM_OS_RETRY(VAM_OS_mprotect, next_result()), ENOMEM);
  assert_int_equal(calls, 1);
  assert_int_equal(cnt(&c->by_errno[VAM_OS_E_ENOMEM]) - n0, 1);
}

static void test_zero_retries(void **state) {
  (void)state;
  vam__os_retry_max = 0;
  calls = 0;
  results[0] = EAGAIN;
  nresults = 1;
  assert_int_equal(VAM_OS_RETRY(VAM_OS_madvise, next_result()), EAGAIN);
  assert_int_equal(calls, 1);
  vam__os_retry_max = 100;
  vam__os_retry_delay_us = 1000;
}

/* The real kernel path: decommit of a valid range succeeds and zeroes. */
static void test_decommit_zeroes(void **state) {
  (void)state;
  void *p = NULL;
  size_t sz = 1 << 20;
  assert_int_equal(vam__os_reserve(sz, VAM_CHUNK_SIZE, 0, NULL, &p), 0);
  assert_int_equal((uintptr_t)p & VAM_CHUNK_MASK, 0);
  memset(p, 0xab, sz);
  bool zeroed = false;
  assert_int_equal(vam__os_decommit(p, sz, &zeroed), 0);
  assert_true(zeroed);
  for (size_t i = 0; i < sz; i += 4096) assert_int_equal(((unsigned char *)p)[i], 0);
  /* an invalid range fails cleanly with an errno, no retry loop */
  assert_int_equal(vam__os_decommit((char *)p + 1, 4096, &zeroed), EINVAL);
  assert_false(zeroed);
  assert_int_equal(vam__os_release(p, sz), 0);
}

int main(void) {
  vam__ensure_init();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_eagain_is_capped),
      cmocka_unit_test(test_transient_eagain_recovers),
      cmocka_unit_test(test_other_errors_not_retried),
      cmocka_unit_test(test_zero_retries),
      cmocka_unit_test(test_decommit_zeroes),
  };
  return cmocka_run_group_tests_name("os_retry", tests, NULL, NULL);
}
