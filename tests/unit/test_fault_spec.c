/* VAMALLOC_FAULTS: the spec parser accepts what the docs say and rejects
 * the rest, and the installed rules fail exactly the calls they name,
 * repeatably. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "internal.h"

static void test_parse(void **state) {
  (void)state;
  const char *good[] = {"", "madvise=EAGAIN", "mmap=ENOMEM:after=200:count=50",
                        "munmap=ENOMEM:rate=0.5:seed=7", "madvise=EAGAIN:every=3,mmap=ENOMEM",
                        "host_madvise=11", "mincore=EFAULT:rate=1", "mprotect=ENOMEM:rate=0.001"};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
    assert_int_equal(vam__os_fault_spec(good[i], false), 0);
  const char *bad[] = {"madvise", "madvise=", "brk=ENOMEM", "madvise=EWHAT", "madvise=EAGAIN:every=0",
                       "madvise=EAGAIN:often=2", "mmap=ENOMEM:rate=1.5", "mmap=ENOMEM:after=x",
                       "mmap=ENOMEM;munmap=ENOMEM", "mmap=0"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_int_equal(vam__os_fault_spec(bad[i], false), EINVAL);
}

static void test_every_third(void **state) {
  (void)state;
  assert_int_equal(vam__os_fault_spec("madvise=EAGAIN:every=3", true), 0);
  int pattern[9];
  for (int i = 0; i < 9; i++) pattern[i] = vam__os_fault(VAM_OS_madvise);
  for (int i = 0; i < 9; i++) assert_int_equal(pattern[i], (i % 3 == 2) ? EAGAIN : 0);
  assert_int_equal(vam__os_fault(VAM_OS_mmap), 0); /* other kinds untouched */
  vam__os_fault_spec("", true);
}

static void test_after_and_count(void **state) {
  (void)state;
  assert_int_equal(vam__os_fault_spec("mmap=ENOMEM:after=2:count=3", true), 0);
  int expect[] = {0, 0, ENOMEM, ENOMEM, ENOMEM, 0, 0};
  for (int i = 0; i < 7; i++) assert_int_equal(vam__os_fault(VAM_OS_mmap), expect[i]);
  vam__os_fault_spec("", true);
}

static void test_rate_is_repeatable(void **state) {
  (void)state;
  int first[1000], fails = 0;
  assert_int_equal(vam__os_fault_spec("munmap=ENOMEM:rate=0.5:seed=7", true), 0);
  for (int i = 0; i < 1000; i++) fails += (first[i] = vam__os_fault(VAM_OS_munmap)) != 0;
  assert_int_equal(vam__os_fault_spec("munmap=ENOMEM:rate=0.5:seed=7", true), 0);
  for (int i = 0; i < 1000; i++) assert_int_equal(vam__os_fault(VAM_OS_munmap), first[i]);
  assert_true(fails > 400 && fails < 600);
  assert_int_equal(vam__os_fault_spec("munmap=ENOMEM:rate=0.5:seed=8", true), 0);
  int differ = 0;
  for (int i = 0; i < 1000; i++) differ += vam__os_fault(VAM_OS_munmap) != first[i];
  assert_true(differ > 0);
  vam__os_fault_spec("", true);
}

int main(void) {
  vam__ensure_init();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse),
      cmocka_unit_test(test_every_third),
      cmocka_unit_test(test_after_and_count),
      cmocka_unit_test(test_rate_is_repeatable),
  };
  return cmocka_run_group_tests_name("fault_spec", tests, NULL, NULL);
}
