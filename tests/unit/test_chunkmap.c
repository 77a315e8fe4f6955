/* Chunk map: only ranges vamalloc mapped are recognised; foreign, stack,
 * static, NULL and out-of-range addresses are not, and freeing them is a
 * reported misuse (here in ignore mode: counted, never touched). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <cmocka.h>
#include "internal.h"

static char static_buf[64];

static void test_own_and_foreign(void **state) {
  (void)state;
  void *small = vam_malloc(24), *large = vam_malloc(600 * 1024), *huge = vam_malloc(8 << 20);
  assert_int_equal(vam__chunkmap_kind((uintptr_t)small), VAM_MAP_CHUNK);
  assert_int_equal(vam__chunkmap_kind((uintptr_t)large), VAM_MAP_CHUNK);
  assert_int_equal(vam__chunkmap_kind((uintptr_t)huge & ~(uintptr_t)VAM_CHUNK_MASK), VAM_MAP_HUGE_HEAD);
  assert_true(vam_owns(small) && vam_owns(large) && vam_owns(huge));
  char local;
  void *glibc = malloc(32);
  void *mapped = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  const void *foreign[] = {glibc, mapped, &local, static_buf, (void *)1, (void *)((uintptr_t)1 << 50),
                           (void *)UINTPTR_MAX};
  uint64_t before = vam_load_relaxed(&vam__stats.foreign_frees);
  uint64_t misuse_before = vam_load_relaxed(&vam__stats.misuse_invalid_pointer);
  vam__options.on_corruption = VAM_CORRUPT_IGNORE;
  for (size_t i = 0; i < sizeof foreign / sizeof foreign[0]; i++) {
    assert_false(vam_owns(foreign[i]));
    assert_int_equal(vam_usable_size(foreign[i]), 0);
    vam_free((void *)foreign[i]);
  }
  assert_int_equal(vam_load_relaxed(&vam__stats.foreign_frees) - before,
                   2 * (sizeof foreign / sizeof foreign[0]));
  assert_int_equal(vam_load_relaxed(&vam__stats.misuse_invalid_pointer) - misuse_before,
                   2 * (sizeof foreign / sizeof foreign[0]));
  vam__options.on_corruption = VAM_CORRUPT_ABORT;
  free(glibc);
  munmap(mapped, 1 << 16);
  vam_free(small);
  vam_free(large);
  vam_free(huge);
  assert_false(vam_owns(huge));
}

static void test_set_and_clear(void **state) {
  (void)state;
  uintptr_t a = (uintptr_t)0x7f1234000000ull; /* chunk aligned, not mapped by us */
  assert_int_equal(vam__chunkmap_kind(a), VAM_MAP_NONE);
  assert_int_equal(vam__chunkmap_set(a, VAM_MAP_HUGE_USER), 0);
  assert_int_equal(vam__chunkmap_kind(a + 12345), VAM_MAP_HUGE_USER);
  assert_int_equal(vam__chunkmap_kind(a + VAM_CHUNK_SIZE), VAM_MAP_NONE);
  assert_int_equal(vam__chunkmap_set(a, VAM_MAP_NONE), 0);
  assert_int_equal(vam__chunkmap_kind(a), VAM_MAP_NONE);
  assert_int_equal(vam__chunkmap_set((uintptr_t)1 << 50, VAM_MAP_CHUNK), EINVAL);
}

int main(void) {
  vam__ensure_init();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_own_and_foreign),
      cmocka_unit_test(test_set_and_clear),
  };
  return cmocka_run_group_tests_name("chunkmap", tests, NULL, NULL);
}
