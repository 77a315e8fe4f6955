/* The purge back-off (purge.c), on a fake clock (os.h's vam__os_fake_ms)
 * with madvise EAGAIN injected through the OS hook, counting the madvise
 * calls the hook sees:
 *  - a pass stops at its first give-up: one madvise, with several dirty
 *    chunk runs and a dirty huge range due;
 *  - then no madvise for 1, 2, 4, 8, 16, 32, 60, 60 s (not one at the last
 *    millisecond before each), and exactly one probe when each is up;
 *  - a success resets it: the next pass purges everything due, and the
 *    next give-up backs off 1 s again, not 60. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "internal.h"

#define DELAY_MS 100 /* purge delay: every run is due again by each probe */
#define SPAN ((size_t)10 * VAM_UNIT_SIZE)

static uint64_t now = 1000000;
static void clock_set(uint64_t ms) {
  now = ms;
  vam_store_relaxed(&vam__os_fake_ms, ms);
}
static uint64_t madvise_calls(void) { return vam_load_relaxed(&vam__os_counters[VAM_OS_madvise].calls); }
static uint64_t madvise_giveups(void) { return vam_load_relaxed(&vam__os_counters[VAM_OS_madvise].giveups); }
static void eagain(bool on) { assert_int_equal(vam__os_fault_spec(on ? "madvise=EAGAIN" : "", true), 0); }

/* madvise calls made by one non-forced purge pass at the current time */
static uint64_t pass(void) {
  uint64_t c0 = madvise_calls();
  vam_collect(false);
  return madvise_calls() - c0;
}

/* Dirty free memory, due after DELAY_MS: n chunk runs (kept apart by live
 * spans) and, with huge, a freed huge block's range. */
static void *keep[16];
static size_t kept;
static void make_dirty(int n, bool huge) {
  void *p[8];
  for (int i = 0; i < n; i++) {
    keep[kept++] = vam_malloc(SPAN);
    p[i] = vam_malloc(SPAN);
    memset(p[i], 1, SPAN);
  }
  keep[kept++] = vam_malloc(SPAN);
  for (int i = 0; i < n; i++) vam_free(p[i]);
  if (huge) {
    void *h = vam_malloc(8 << 20);
    memset(h, 1, 8 << 20);
    vam_free(h);
  }
  vam__heap_trim_own(); /* the thread's span cache: back to the chunks */
  clock_set(now + DELAY_MS);
}

static uint64_t gave_up_at; /* when the last give-up happened */

static void test_pass_stops_at_first_giveup(void **state) {
  (void)state;
  make_dirty(3, true);
  eagain(true);
  uint64_t g0 = madvise_giveups();
  uint64_t calls = pass();
  gave_up_at = now;
  assert_int_equal(calls, 1); /* three runs and a huge range due: one try */
  assert_int_equal(madvise_giveups() - g0, 1);
}

static void test_backoff_doubles_to_cap(void **state) {
  (void)state;
  uint64_t expect[] = {1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000};
  for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) {
    uint64_t until = gave_up_at + expect[i];
    clock_set(gave_up_at + 1);
    assert_int_equal(pass(), 0);
    clock_set(until - 1);
    if (pass() != 0) fail_msg("back-off %zu: madvise %llu ms after the give-up, expected none before %llu", i,
                              (unsigned long long)(until - 1 - gave_up_at), (unsigned long long)expect[i]);
    clock_set(until);
    assert_int_equal(pass(), 1); /* the probe: one run, refused again */
    gave_up_at = until;
  }
}

static void test_success_resets(void **state) {
  (void)state;
  eagain(false);
  clock_set(gave_up_at + 60000);
  assert_true(pass() >= 1);    /* the probe works */
  assert_true(pass() >= 1);    /* no back-off left: the rest of what is due goes */
  assert_int_equal(pass(), 0); /* nothing dirty is left */
  /* a new give-up starts over at 1 s */
  make_dirty(2, false);
  eagain(true);
  assert_int_equal(pass(), 1);
  gave_up_at = now;
  clock_set(gave_up_at + 999);
  assert_int_equal(pass(), 0);
  clock_set(gave_up_at + 1000);
  assert_int_equal(pass(), 1);
  eagain(false);
}

int main(void) {
  vam__ensure_init();
  vam__options.purge_delay_ms = DELAY_MS;
  vam__os_retry_max = 2; /* a give-up is three quick tries */
  vam__os_retry_delay_us = 10;
  clock_set(now);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pass_stops_at_first_giveup),
      cmocka_unit_test(test_backoff_doubles_to_cap),
      cmocka_unit_test(test_success_resets),
  };
  return cmocka_run_group_tests_name("purge_backoff", tests, NULL, NULL);
}
