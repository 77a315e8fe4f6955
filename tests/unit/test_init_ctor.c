/* Initialisation from a constructor: an ELF constructor of the program
 * allocates before main() and before vamalloc's own constructor may have
 * run; the memory stays valid and freeable in main. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "internal.h"

static unsigned char *early[64];

__attribute__((constructor(101))) static void allocate_early(void) {
  for (int i = 0; i < 64; i++) {
    early[i] = vam_malloc((size_t)(8 + i * 100));
    if (early[i]) memset(early[i], i, (size_t)(8 + i * 100));
  }
}

static void test_constructor_allocations(void **state) {
  (void)state;
  for (int i = 0; i < 64; i++) {
    assert_non_null(early[i]);
    assert_true(vam_owns(early[i]));
    for (int j = 0; j < 8 + i * 100; j++) assert_int_equal(early[i][j], i);
    vam_free(early[i]);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_constructor_allocations)};
  return cmocka_run_group_tests_name("init_ctor", tests, NULL, NULL);
}
