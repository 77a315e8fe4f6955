/* secure.c, VAMALLOC_SECURE_WIPE_MAX: a freed block's first WIPE_MAX bytes
 * are wiped, and a write into them while the block waits in quarantine is
 * reported when it leaves; past WIPE_MAX the block keeps its old bytes and
 * a write there goes unseen (the documented bound).  Built against the
 * secure core (tests/unit/meson.build). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>
#include "internal.h"

#if !VAM_SECURE_BUILD
#error "test_secure_wipe needs the secure build"
#endif

/* Free p, write one byte at off, push p out of the quarantine with other
 * frees; returns how many writes after free were reported. */
static uint64_t write_while_quarantined(size_t size, size_t off, uint8_t *old_byte) {
  static void *others[VAM_QUARANTINE + 1];
  uint64_t before = vam_load_relaxed(&vam__stats.misuse_write_after_free);
  uint8_t *p = vam_malloc(size);
  assert_non_null(p);
  memset(p, 0x5c, size);
  for (size_t i = 0; i <= VAM_QUARANTINE; i++) others[i] = vam_malloc(size);
  vam_free(p);
  *old_byte = p[off];     /* wiped (0) or the old data */
  p[off] = 0x41;          /* the write after free */
  for (size_t i = 0; i <= VAM_QUARANTINE; i++) vam_free(others[i]);
  return vam_load_relaxed(&vam__stats.misuse_write_after_free) - before;
}

static void test_wiped_and_checked_within_bound(void **state) {
  (void)state;
  uint8_t old;
  vam__options.secure_wipe_max = 1 << 20;
  assert_int_equal(write_while_quarantined(4000, 3000, &old), 1);
  assert_int_equal(old, 0);
  vam__options.secure_wipe_max = 1024;
  assert_int_equal(write_while_quarantined(4000, 500, &old), 1);
  assert_int_equal(old, 0);
}

static void test_tail_past_bound_untouched(void **state) {
  (void)state;
  uint8_t old;
  vam__options.secure_wipe_max = 1024;
  assert_int_equal(write_while_quarantined(4000, 3000, &old), 0);
  assert_int_equal(old, 0x5c); /* not wiped: the tail keeps its bytes */
}

int main(void) {
  vam__ensure_init();
  vam__options.on_corruption = VAM_CORRUPT_IGNORE;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_wiped_and_checked_within_bound),
      cmocka_unit_test(test_tail_past_bound_untouched),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
