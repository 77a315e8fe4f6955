/* Chunks and spans: span allocation is first fit over the chunks, oldest
 * first, and the per-length hints that skip full chunks never change
 * which span a scan from the head would pick. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "internal.h"

#define SPANS 300 /* one-unit spans: fills every older chunk's free units */

static vam_span_t *spans[SPANS];

static void fill(void) {
  for (int i = 0; i < SPANS; i++) assert_non_null(spans[i] = vam__span_alloc(1, 1, NULL));
}

static void drain(void) {
  for (int i = 0; i < SPANS; i++)
    if (spans[i]) vam__span_free(spans[i]);
}

/* Index i such that spans i..i+n-1 are adjacent units of one chunk. */
static int adjacent_run(int from, int n) {
  for (int i = from; i + n <= SPANS; i++) {
    int k = 1;
    while (k < n && spans[i + k]->start == spans[i]->start + k * VAM_UNIT_SIZE) k++;
    if (k == n) return i;
  }
  fail_msg("no %d adjacent spans", n);
  return -1;
}

static void test_freed_run_in_old_chunk_is_found(void **state) {
  (void)state;
  fill();
  /* Warm the hint for 4 units past the old chunks: they have no free unit. */
  vam_span_t *probe = vam__span_alloc(4, 1, NULL);
  assert_non_null(probe);
  int i = adjacent_run(10, 4);
  uint8_t *hole = spans[i]->start;
  for (int k = 0; k < 4; k++) {
    vam__span_free(spans[i + k]);
    spans[i + k] = NULL;
  }
  /* First fit: the hole in the older chunk, not the tail of the newest. */
  vam_span_t *pg = vam__span_alloc(4, 1, NULL);
  assert_non_null(pg);
  assert_ptr_equal(pg->start, hole);
  /* A 2-unit span cannot use a 1-unit hole: it goes elsewhere, and the
   * 1-unit span that follows takes the hole. */
  int j = adjacent_run(i + 20, 1);
  uint8_t *one = spans[j]->start;
  vam__span_free(spans[j]);
  spans[j] = NULL;
  vam_span_t *two = vam__span_alloc(2, 1, NULL);
  assert_non_null(two);
  assert_ptr_not_equal(two->start, one);
  assert_true(two->start + VAM_UNIT_SIZE != one);
  vam_span_t *unit = vam__span_alloc(1, 1, NULL);
  assert_non_null(unit);
  assert_ptr_equal(unit->start, one);
  vam__span_free(unit);
  vam__span_free(two);
  vam__span_free(pg);
  vam__span_free(probe);
  drain();
}

/* What every span is: aligned as asked, inside one chunk's body (never
 * unit 0, the header), described by the descriptor of its first unit (the
 * later units lead back to it), disjoint from every other live span, counted
 * in its chunk's free units, and, once freed, the first fit again. */
#define PROPS 64
static void test_span_properties(void **state) {
  (void)state;
  fill(); /* older chunks full: what follows is deterministic first fit */
  static const size_t lens[] = {1, 2, 3, 5, 8, 16}, aligns[] = {1, 2, 4, 8};
  vam_span_t *got[PROPS];
  size_t want_units[PROPS];
  for (int i = 0; i < PROPS; i++) {
    size_t n = lens[i % 6], al = aligns[(i / 6) % 4];
    got[i] = vam__span_alloc(n, al, NULL);
    assert_non_null(got[i]);
    vam_span_t *pg = got[i];
    want_units[i] = n;
    vam_chunk_t *c = vam__chunk_of(pg->start);
    assert_int_equal(c->magic, VAM_CHUNK_MAGIC);
    assert_int_equal(pg->units, n);
    assert_ptr_equal(pg, &c->spans[((uintptr_t)pg->start & VAM_CHUNK_MASK) >> VAM_UNIT_SHIFT]);
    assert_int_equal((uintptr_t)pg->start % (al * VAM_UNIT_SIZE), 0);
    assert_true((uintptr_t)pg->start - (uintptr_t)c >= VAM_UNIT_SIZE); /* not the header */
    assert_true((uintptr_t)pg->start - (uintptr_t)c + n * VAM_UNIT_SIZE <= VAM_CHUNK_SIZE);
    for (size_t u = 0; u < n; u++) /* every unit leads to the span */
      assert_ptr_equal(vam__span_of(c, pg->start + u * VAM_UNIT_SIZE + 123), pg);
    memset(pg->start, i + 1, n * VAM_UNIT_SIZE);
  }
  /* Disjoint: every span still holds its own byte, first to last. */
  for (int i = 0; i < PROPS; i++) {
    size_t len = want_units[i] * VAM_UNIT_SIZE;
    for (size_t off = 0; off < len; off += 4096 - 1)
      if (got[i]->start[off] != (uint8_t)(i + 1))
        fail_msg("span %d (%zu units at %p) overwritten at %zu", i, want_units[i],
                 (void *)got[i]->start, off);
    assert_int_equal(got[i]->start[len - 1], (uint8_t)(i + 1));
  }
  /* Counted, and reused: freeing a span gives its units back to its chunk,
   * and the same request takes the same place again. */
  for (int i = 0; i < PROPS; i += 7) {
    vam_span_t *pg = got[i];
    uint8_t *start = pg->start;
    vam_chunk_t *c = vam__chunk_of(start);
    size_t n = want_units[i], al = aligns[(i / 6) % 4];
    uint32_t free0 = c->free_units;
    vam__span_free(pg);
    assert_int_equal(c->free_units, free0 + n);
    got[i] = vam__span_alloc(n, al, NULL);
    assert_non_null(got[i]);
    assert_ptr_equal(got[i]->start, start);
    assert_int_equal(c->free_units, free0);
  }
  for (int i = 0; i < PROPS; i++) vam__span_free(got[i]);
  drain();
}

static void test_emptied_chunk_is_left_behind(void **state) {
  (void)state;
  /* A chunk that empties leaves the list; a hint that pointed at it moves
   * on, and spans still come out right. */
  fill();
  vam_span_t *a = vam__span_alloc(8, 1, NULL);
  assert_non_null(a);
  vam__span_free(a);
  drain();
  fill();
  vam_span_t *b = vam__span_alloc(8, 1, NULL);
  assert_non_null(b);
  assert_int_equal(b->units, 8);
  assert_ptr_equal(vam__span_of(vam__chunk_of(b->start), b->start + 7 * VAM_UNIT_SIZE), b);
  memset(b->start, 0x5a, 8 * VAM_UNIT_SIZE);
  vam__span_free(b);
  drain();
}

int main(void) {
  vam__ensure_init();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_freed_run_in_old_chunk_is_found),
      cmocka_unit_test(test_span_properties),
      cmocka_unit_test(test_emptied_chunk_is_left_behind),
  };
  return cmocka_run_group_tests_name("chunk", tests, NULL, NULL);
}
