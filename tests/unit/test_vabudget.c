/* vabudget: every reservation is counted; with VAMALLOC_DONTDUMP=1 it is
 * marked MADV_DONTDUMP once, whole (the kernel shows "dd" on the VMA), and a
 * refused mark is counted and ignored. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <cmocka.h>
#include "internal.h"

/* VmFlags line of the /proc/self/smaps entry that contains addr. */
static bool vma_has_flag(const void *addr, const char *flag) {
  FILE *f = fopen("/proc/self/smaps", "r");
  assert_non_null(f);
  char line[512];
  bool in = false, found = false;
  while (fgets(line, sizeof line, f)) {
    unsigned long lo, hi;
    if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
      in = (uintptr_t)addr >= lo && (uintptr_t)addr < hi;
      continue;
    }
    if (in && strncmp(line, "VmFlags:", 8) == 0) {
      found = strstr(line, flag) != NULL;
      break;
    }
  }
  fclose(f);
  return found;
}

static void test_counts_mappings(void **state) {
  (void)state;
  vam_free(vam_malloc(10 << 20)); /* first use maps a chunk-map leaf too */
  vam_collect(true);
  uint64_t m0 = vam__va_mappings();
  void *h = vam_malloc(10 << 20);
  assert_int_equal(vam__va_mappings(), m0 + 1);
  vam_free(h); /* kept in the huge cache: still a mapping of ours */
  assert_int_equal(vam__va_mappings(), m0 + 1);
  vam_collect(true); /* the cache goes back */
  assert_int_equal(vam__va_mappings(), m0);
}

static void test_dontdump_marks_once(void **state) {
  (void)state;
  vam__options.dontdump = 1;
  uint64_t madv0 = vam_load_relaxed(&vam__os_counters[VAM_OS_madvise].calls);
  unsigned char *h = vam_malloc(10 << 20);
  assert_true(vma_has_flag(h, " dd"));
  /* one mark for the one new mapping, nothing per page */
  assert_int_equal(vam_load_relaxed(&vam__os_counters[VAM_OS_madvise].calls) - madv0, 1);
  memset(h, 1, 10 << 20);
  vam_free(h);
  vam_collect(true); /* so the next one is a new mapping, not the cached one */
  vam__options.dontdump = 0;
  h = vam_malloc(10 << 20);
  assert_false(vma_has_flag(h, " dd"));
  vam_free(h);
}

static void test_dontdump_failure_ignored(void **state) {
  (void)state;
  vam_collect(true);
  vam__options.dontdump = 1;
  vam__os_retry_max = 2;
  vam__os_retry_delay_us = 10;
  uint64_t f0 = vam_load_relaxed(&vam__stats.dontdump_failures);
  assert_int_equal(vam__os_fault_spec("madvise=EAGAIN", true), 0);
  unsigned char *h = vam_malloc(10 << 20);
  assert_non_null(h); /* the allocation does not depend on the mark */
  memset(h, 2, 10 << 20);
  assert_int_equal(vam_load_relaxed(&vam__stats.dontdump_failures) - f0, 1);
  vam__os_fault_spec("", true);
  vam_free(h);
  vam__options.dontdump = 0;
}

int main(void) {
  vam__ensure_init();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_counts_mappings),
      cmocka_unit_test(test_dontdump_marks_once),
      cmocka_unit_test(test_dontdump_failure_ignored),
  };
  return cmocka_run_group_tests_name("vabudget", tests, NULL, NULL);
}
