/* Size classes: every size up to the small maximum maps to a class that
 * fits it, wastes at most 12.5% above 128 bytes (16 bytes below), and the
 * class of a class size is itself; slabs hold at least 4 blocks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "internal.h"

static int setup(void **state) {
  (void)state;
  vam__ensure_init();
  return 0;
}

static void test_round_trip_every_size(void **state) {
  (void)state;
  size_t prev_bin = 1;
  for (size_t n = 1; n <= VAM_SMALL_MAX; n++) {
    size_t bin = vam__bin_of(n);
    assert_true(bin >= 1 && bin < VAM_BINS);
    size_t cs = vam__bin_size[bin];
    assert_true(cs >= n);
    /* monotonic, and the class below is too small */
    assert_true(bin >= prev_bin);
    if (bin > 1) assert_true(vam__bin_size[bin - 1] < n);
    if (n > 128) assert_true((cs - n) * 8 <= n);
    else assert_true(cs - n < 16);
    assert_int_equal(vam__bin_of(cs), bin);
    if (n <= VAM_FAST_MAX) assert_int_equal(vam__bin_of_small[n], bin);
    else if (n <= VAM_MID_MAX) assert_int_equal(vam__bin_of_mid[(n + 127) >> 7], bin);
    prev_bin = bin;
  }
  assert_int_equal(vam__bin_of(VAM_SMALL_MAX), VAM_BINS - 1);
  assert_int_equal(vam__bin_size[VAM_BINS - 1], VAM_SMALL_MAX);
}

static void test_class_alignment(void **state) {
  (void)state;
  for (size_t b = 2; b < VAM_BINS; b++) {
    assert_int_equal(vam__bin_size[b] % 16, 0);
    size_t cs = vam__bin_size[b];
    if ((cs & (cs - 1)) == 0) assert_int_equal(vam__bin_size[vam__bin_of(cs)], cs);
  }
  assert_int_equal(vam__bin_size[1], 8);
}

static void test_slab_lengths(void **state) {
  (void)state;
  for (size_t b = 1; b < VAM_BINS; b++) {
    size_t bytes = vam__bin_units[b] * VAM_UNIT_SIZE;
    assert_true(vam__bin_units[b] >= 1 && vam__bin_units[b] < VAM_UNITS);
    /* four blocks, or at least 128 KiB of blocks (and at least one) */
    size_t blocks = bytes / vam__bin_size[b];
    assert_true(blocks >= 4 || (blocks >= 1 && bytes >= 131072));
    /* tail waste of the slab stays below one block and 25% of the slab */
    assert_true((bytes % vam__bin_size[b]) * 4 < bytes);
  }
}

/* The allocator really hands out the class size as usable size. */
static void test_usable_size_is_class(void **state) {
  (void)state;
  for (size_t n = 1; n <= 70000; n += (n < 2048 ? 1 : 97)) {
    void *p = vam_malloc(n);
    assert_non_null(p);
    assert_int_equal(vam_usable_size(p), vam__bin_size[vam__bin_of(n)]);
    memset(p, 0x5a, vam_usable_size(p));
    vam_free(p);
  }
}

/* The reciprocal division free() uses agrees with real division for every
 * class at every offset where they could part: just below, at and just
 * above each multiple of the size, across a whole chunk. */
static void test_bin_div_exact(void **state) {
  (void)state;
  for (size_t b = 1; b < VAM_BINS; b++) {
    size_t bs = vam__bin_size[b];
    for (size_t m = 0; m <= VAM_CHUNK_SIZE; m += bs) {
      for (size_t off = m ? m - 1 : 0; off <= m + 1 && off < VAM_CHUNK_SIZE; off++)
        if (vam__bin_div(b, off) != off / bs) fail_msg("bin %zu (size %zu) off %zu", b, bs, off);
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip_every_size),
      cmocka_unit_test(test_class_alignment),
      cmocka_unit_test(test_slab_lengths),
      cmocka_unit_test(test_usable_size_is_class),
      cmocka_unit_test(test_bin_div_exact),
  };
  return cmocka_run_group_tests_name("sizeclass", tests, setup, NULL);
}
