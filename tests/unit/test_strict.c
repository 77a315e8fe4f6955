/* Strict commit (VAMALLOC_COMMIT=strict, as under vm.overcommit_memory=2):
 * reservations are PROT_NONE (not charged) and chunks are committed with
 * mprotect in whole-chunk steps; an empty cached chunk is uncommitted,
 * which returns the charge; a refused commit fails the allocation cleanly
 * (NULL, ENOMEM), leaves the range uncommitted, and recovers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <cmocka.h>
#include "internal.h"

static uint64_t stat(vam_atomic(uint64_t) *c) { return vam_load_relaxed(c); }

/* Protection string ("rw-p", "---p") of the mapping holding addr. */
static void prot_of(const void *addr, char out[5]) {
  FILE *f = fopen("/proc/self/maps", "r");
  assert_non_null(f);
  char line[512];
  strcpy(out, "????");
  while (fgets(line, sizeof line, f)) {
    unsigned long lo, hi;
    char prot[5];
    if (sscanf(line, "%lx-%lx %4s", &lo, &hi, prot) == 3 && (uintptr_t)addr >= lo &&
        (uintptr_t)addr < hi) {
      memcpy(out, prot, 5);
      break;
    }
  }
  fclose(f);
}

static void test_strict_is_on(void **state) {
  (void)state;
  assert_true(vam__va_strict());
}

static void test_commit_and_uncommit(void **state) {
  (void)state;
  size_t big = (size_t)60 * VAM_UNIT_SIZE;
  uint64_t prot0 = stat(&vam__os_counters[VAM_OS_mprotect].calls);
  unsigned char *a = vam_malloc(big), *b = vam_malloc(big);
  assert_non_null(a);
  assert_non_null(b);
  char prot[5];
  prot_of(a, prot);
  assert_string_equal(prot, "rw-p");
  assert_true(stat(&vam__os_counters[VAM_OS_mprotect].calls) > prot0); /* committed by mprotect */
  memset(a, 0xaa, big);
  memset(b, 0xbb, big);
  vam_free(a);
  vam_free(b); /* the chunk empties: its body is uncommitted (charge returned) */
  prot_of(a, prot);
  assert_string_equal(prot, "---p");
  /* reuse commits it again, and it reads as zeroes */
  unsigned char *z = vam_calloc(1, big);
  assert_ptr_equal(z, a);
  prot_of(z, prot);
  assert_string_equal(prot, "rw-p");
  for (size_t i = 0; i < big; i += 64) assert_int_equal(z[i], 0);
  vam_free(z);
}

static void test_refused_commit(void **state) {
  (void)state;
  vam__os_retry_max = 2;
  vam__os_retry_delay_us = 10;
  vam__chunk_release_cached();
  /* Fill what is committed so the next large span needs a fresh chunk. */
  void *held[64];
  size_t n = 0;
  assert_int_equal(vam__os_fault_spec("mprotect=ENOMEM", true), 0);
  for (; n < 64; n++) {
    errno = 0;
    held[n] = vam_malloc(1 << 20);
    if (held[n] == NULL) break;
  }
  assert_true(n < 64);
  assert_int_equal(errno, ENOMEM);
  assert_true(stat(&vam__stats.commit_failures) >= 1);
  assert_int_equal(vam__os_fault_spec("", true), 0);
  void *ok = vam_malloc(1 << 20); /* the same range, committed now */
  assert_non_null(ok);
  memset(ok, 1, 1 << 20);
  vam_free(ok);
  for (size_t i = 0; i < n; i++) vam_free(held[i]);
}

/* Before vamalloc's own constructor reads environ. */
__attribute__((constructor(101))) static void choose_mode(void) { setenv("VAMALLOC_COMMIT", "strict", 1); }

int main(void) {
  vam__ensure_init();
  vam__options.purge_delay_ms = 0; /* an emptied chunk is purged at once */
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_strict_is_on),
      cmocka_unit_test(test_commit_and_uncommit),
      cmocka_unit_test(test_refused_commit),
  };
  return cmocka_run_group_tests_name("strict", tests, NULL, NULL);
}
