/* Initialisation: the very first calls into vamalloc come from 8 threads at
 * once, released together by a barrier, from a constructor that runs before
 * vamalloc's own; every thread must get valid, writable memory. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "internal.h"

#define THREADS 8
#define PER 1000
static pthread_barrier_t barrier;
static void *got[THREADS][PER];

static void *first_calls(void *arg) {
  size_t t = (size_t)(uintptr_t)arg;
  pthread_barrier_wait(&barrier);
  for (size_t i = 0; i < PER; i++) {
    got[t][i] = (i & 1) ? vam_calloc(1, 24 + i) : vam_malloc(24 + i);
    if (got[t][i]) memset(got[t][i], (int)t, 24 + i);
  }
  return NULL;
}

static int state_before;

__attribute__((constructor(101))) static void race_first_use(void) {
  state_before = vam_load_relaxed(&vam__init_state);
  pthread_t th[THREADS];
  pthread_barrier_init(&barrier, NULL, THREADS);
  for (size_t t = 0; t < THREADS; t++) pthread_create(&th[t], NULL, first_calls, (void *)(uintptr_t)t);
  for (size_t t = 0; t < THREADS; t++) pthread_join(th[t], NULL);
}

static void test_concurrent_first_use(void **state) {
  (void)state;
  assert_int_equal(state_before, 0); /* the race really was the first use */
  assert_int_equal(vam_load_relaxed(&vam__init_state), 2);
  for (size_t t = 0; t < THREADS; t++)
    for (size_t i = 0; i < PER; i++) {
      assert_non_null(got[t][i]);
      for (size_t j = 0; j < 24 + i; j++) assert_int_equal(((unsigned char *)got[t][i])[j], t);
      vam_free(got[t][i]);
    }
  assert_int_equal(vam_load_relaxed(&vam__stats.heaps_created) >= 1, 1);
  assert_int_equal(vam_load_relaxed(&vam__stats.invalid_frees), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_concurrent_first_use)};
  return cmocka_run_group_tests_name("init_threads", tests, NULL, NULL);
}
