/* Chunks and spans: span allocation is first fit over the chunks, oldest
 * first, and the per-length hints that skip full chunks never change
 * which span a scan from the head would pick. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "internal.h"

#define SPANS 300 /* one-unit spans: fills every older chunk's free units */

static vam_page_t *spans[SPANS];

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
  vam_page_t *probe = vam__span_alloc(4, 1, NULL);
  assert_non_null(probe);
  int i = adjacent_run(10, 4);
  uint8_t *hole = spans[i]->start;
  for (int k = 0; k < 4; k++) {
    vam__span_free(spans[i + k]);
    spans[i + k] = NULL;
  }
  /* First fit: the hole in the older chunk, not the tail of the newest. */
  vam_page_t *pg = vam__span_alloc(4, 1, NULL);
  assert_non_null(pg);
  assert_ptr_equal(pg->start, hole);
  /* A 2-unit span cannot use a 1-unit hole: it goes elsewhere, and the
   * 1-unit span that follows takes the hole. */
  int j = adjacent_run(i + 20, 1);
  uint8_t *one = spans[j]->start;
  vam__span_free(spans[j]);
  spans[j] = NULL;
  vam_page_t *two = vam__span_alloc(2, 1, NULL);
  assert_non_null(two);
  assert_ptr_not_equal(two->start, one);
  assert_true(two->start + VAM_UNIT_SIZE != one);
  vam_page_t *unit = vam__span_alloc(1, 1, NULL);
  assert_non_null(unit);
  assert_ptr_equal(unit->start, one);
  vam__span_free(unit);
  vam__span_free(two);
  vam__span_free(pg);
  vam__span_free(probe);
  drain();
}

static void test_emptied_chunk_is_left_behind(void **state) {
  (void)state;
  /* A chunk that empties leaves the list; a hint that pointed at it moves
   * on, and spans still come out right. */
  fill();
  vam_page_t *a = vam__span_alloc(8, 1, NULL);
  assert_non_null(a);
  vam__span_free(a);
  drain();
  fill();
  vam_page_t *b = vam__span_alloc(8, 1, NULL);
  assert_non_null(b);
  memset(b->start, 0x5a, 8 * VAM_UNIT_SIZE);
  vam__span_free(b);
  drain();
}

int main(void) {
  vam__ensure_init();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_freed_run_in_old_chunk_is_found),
      cmocka_unit_test(test_emptied_chunk_is_left_behind),
  };
  return cmocka_run_group_tests_name("chunk", tests, NULL, NULL);
}
