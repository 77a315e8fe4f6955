/* Chunk map: only ranges vamalloc mapped are recognised; foreign, stack,
 * static, NULL and out-of-range addresses are not, and freeing them is
 * counted and ignored. */
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
  for (size_t i = 0; i < sizeof foreign / sizeof foreign[0]; i++) {
    assert_false(vam_owns(foreign[i]));
    assert_int_equal(vam_usable_size(foreign[i]), 0);
    vam_free((void *)foreign[i]);
  }
  assert_int_equal(vam_load_relaxed(&vam__stats.foreign_frees) - before,
                   2 * (sizeof foreign / sizeof foreign[0]));
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

/* A chunk leaving the map also leaves every heap's free() shortcut: a
 * pointer into that range afterwards is foreign, not read as a chunk. */
static void test_unmapped_chunk_leaves_free_shortcut(void **state) {
  (void)state;
  vam_free(vam_malloc(32)); /* this thread has a heap */
  vam_heap_t *heap = vam__tls_heap;
  size_t len = 2 * VAM_CHUNK_SIZE;
  uint8_t *raw = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  assert_true(raw != MAP_FAILED);
  uintptr_t x = ((uintptr_t)raw + VAM_CHUNK_MASK) & ~(uintptr_t)VAM_CHUNK_MASK;
  uintptr_t saved = vam_load_relaxed(&heap->last_chunk);
  assert_int_equal(vam__chunkmap_set(x, VAM_MAP_CHUNK), 0);
  vam_store_relaxed(&heap->last_chunk, x);
  assert_int_equal(vam__chunkmap_set(x, VAM_MAP_NONE), 0);
  assert_int_equal(vam_load_relaxed(&heap->last_chunk), VAM_NO_CHUNK);
  /* Another heap's shortcut is left alone. */
  vam_store_relaxed(&heap->last_chunk, saved);
  assert_int_equal(vam__chunkmap_set(x, VAM_MAP_CHUNK), 0);
  assert_int_equal(vam__chunkmap_set(x, VAM_MAP_NONE), 0);
  assert_int_equal(vam_load_relaxed(&heap->last_chunk), saved);
  uint64_t foreign0 = vam_load_relaxed(&vam__stats.foreign_frees);
  vam_free((void *)(x + 4096));
  assert_int_equal(vam_load_relaxed(&vam__stats.foreign_frees), foreign0 + 1);
  munmap(raw, len);
}

int main(void) {
  vam__ensure_init();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_own_and_foreign),
      cmocka_unit_test(test_set_and_clear),
      cmocka_unit_test(test_unmapped_chunk_leaves_free_shortcut),
  };
  return cmocka_run_group_tests_name("chunkmap", tests, NULL, NULL);
}
