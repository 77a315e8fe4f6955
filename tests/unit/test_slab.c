/* slab.c: the free-list encoding and the block-boundary test free() relies on.
 *
 * - vam__slab_block_ok agrees with plain division for every size class and
 *   every byte offset of a slab (and below its start): exactly the carved
 *   block starts pass.
 * - every link of a slab's list decodes into its chunk; the list ends in the
 *   chunk's list_end word; no link is stored raw.
 * - a link overwritten after free is found by the next pop (reported and
 *   survived in warn mode: the corrupt target is never handed out).
 * - live blocks (zeroed by pop, or holding pointers, integers, NaN-boxed
 *   values, doubles) never "look free"; freed ones always do. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <cmocka.h>
#include "internal.h"

static void test_block_ok_matches_division(void **state) {
  (void)state;
  vam__ensure_init();
  static vam_span_t pg; /* descriptor only: block_ok never touches memory */
  for (size_t bin = 1; bin < VAM_BINS; bin++) {
    size_t bs = vam__bin_size[bin];
    pg.start = (uint8_t *)(uintptr_t)0x7f0000400000ull;
    pg.div_mul = vam__bin_mul[bin];
    pg.block_size = (uint32_t)bs;
    size_t slab = (size_t)vam__bin_units[bin] * VAM_UNIT_SIZE;
    pg.capacity = (uint32_t)(slab / bs / 2 + 1); /* half carved: the rest must fail */
    pg.div_limit = pg.capacity * (pg.div_mul * bs);
    for (size_t off = 0; off < slab; off += (bs >= 4096 ? 8 : 1)) {
      bool want = off % bs == 0 && off / bs < pg.capacity;
      if (vam__slab_block_ok(&pg, pg.start + off) != want)
        fail_msg("bin %zu (size %zu): offset %zu says %d, want %d", bin, bs, off, !want, want);
    }
    /* Below start, down to a whole chunk back (a descriptor's span never
     * reaches further): every offset fails. */
    for (size_t back = 1; back <= VAM_CHUNK_SIZE; back += (back < 65536 ? 1 : 7))
      if (vam__slab_block_ok(&pg, pg.start - back)) fail_msg("bin %zu (size %zu): %zu below start passes", bin, bs, back);
  }
}

static vam_span_t *page_of(void *p) { return vam__span_of(vam__chunk_of(p), p); }

static void test_links_encoded_and_in_chunk(void **state) {
  (void)state;
  void *v[64];
  for (int i = 0; i < 64; i++) v[i] = vam_malloc(48);
  vam_span_t *pg = page_of(v[0]);
  for (int i = 0; i < 64; i++) vam_free(v[i]);
  uintptr_t base = (uintptr_t)vam__chunk_of(v[0]);
  int n = 0;
  vam_block_t *end = vam__slab_end(pg);
  /* the list end is the chunk's list_end word, inside the chunk, reading 0 */
  assert_int_equal((uintptr_t)end & ~(uintptr_t)VAM_CHUNK_MASK, base);
  assert_int_equal(end->link, 0);
  for (vam_block_t *b = pg->free; b != end; n++) {
    assert_true(vam__slab_block_ok(pg, b));
    assert_true(vam__block_looks_free(pg, b));
    uintptr_t next = (b->link ^ pg->key) ^ (uintptr_t)b;
    assert_int_equal(next & ~(uintptr_t)VAM_CHUNK_MASK, base);
    /* never the raw pointer: the key's high bits are always in the word */
    assert_int_not_equal(b->link, next);
    assert_int_not_equal(b->link >> 48, 0);
    b = (vam_block_t *)next;
    assert_true(n < 100000);
  }
  assert_true(n >= 64);
  assert_int_equal((uintptr_t)pg->free & ~(uintptr_t)VAM_CHUNK_MASK, base);
}

static void test_corrupt_link_found_by_pop(void **state) {
  (void)state;
  static int target[64];
  vam__options.on_corruption = VAM_CORRUPT_WARN;
  uint64_t before = vam_load_relaxed(&vam__stats.misuse_freelist_corrupt);
  void **p = vam_malloc(48);
  vam_free(p);
  p[0] = &target[0]; /* use after free: try to steer the next malloc */
  for (int i = 0; i < 200; i++) {
    void *q = vam_malloc(48);
    assert_true(q != (void *)&target[0]);
    assert_true(vam_owns(q));
  }
  assert_int_equal(vam_load_relaxed(&vam__stats.misuse_freelist_corrupt) - before, 1);
  vam__options.on_corruption = VAM_CORRUPT_ABORT;
}

static void test_live_data_does_not_look_free(void **state) {
  (void)state;
  uint64_t *p = vam_malloc(64);
  vam_span_t *pg = page_of(p);
  assert_false(vam__block_looks_free(pg, (vam_block_t *)p)); /* zeroed by pop */
  const uint64_t samples[] = {0, 1, 42, UINT64_MAX, (uintptr_t)p, (uintptr_t)pg,
                              0xfffe000000000001ull /* NaN-boxed int */, 0x3ff0000000000000ull /* 1.0 */,
                              0xc08f400000000000ull /* -1000.0 */, 0x7ff8000000000000ull /* NaN */,
                              0x0002000000001234ull /* JSC double offset */};
  for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
    p[0] = samples[i];
    assert_false(vam__block_looks_free(pg, (vam_block_t *)p));
  }
  vam_free(p);
  assert_true(vam__block_looks_free(pg, (vam_block_t *)p));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_block_ok_matches_division),
      cmocka_unit_test(test_links_encoded_and_in_chunk),
      cmocka_unit_test(test_corrupt_link_found_by_pop),
      cmocka_unit_test(test_live_data_does_not_look_free),
  };
  return cmocka_run_group_tests_name("page", tests, NULL, NULL);
}
