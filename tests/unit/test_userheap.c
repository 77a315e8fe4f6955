/* First-class heaps (userheap.c): blocks stay in their heap through realloc,
 * frees from any thread come off the heap's live totals, the byte limit
 * refuses with ENOMEM without touching other heaps, destroy hands back
 * every block (small, large, huge) in one step, and create/destroy churn
 * reaches a steady state. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include "internal.h"

static vam_heap_stats_t stats_of(vam_heap_t *h) {
  vam_heap_stats_t s;
  memset(&s, 0xee, sizeof s);
  assert_int_equal(vam_heap_stats(h, &s, sizeof s), 0);
  assert_int_equal(s.struct_size, sizeof s);
  return s;
}

static uint64_t gauge(vam_gauge_t *g) { return (uint64_t)vam_load_relaxed(&g->current); }

static void test_basic_alloc_free(void **state) {
  (void)state;
  vam_heap_t *h = vam_heap_new(NULL);
  assert_non_null(h);
  void *small = vam_heap_malloc(h, 100);
  void *large = vam_heap_malloc(h, 600 * 1024);
  void *huge = vam_heap_malloc(h, 9 << 20);
  assert_non_null(small);
  assert_non_null(large);
  assert_non_null(huge);
  memset(small, 1, 100);
  memset(large, 2, 600 * 1024);
  memset(huge, 3, 9 << 20);
  assert_ptr_equal(vam_heap_of(small), h);
  assert_ptr_equal(vam_heap_of(large), h);
  assert_ptr_equal(vam_heap_of(huge), h);
  void *thread_block = vam_malloc(100);
  assert_null(vam_heap_of(thread_block));
  vam_free(thread_block);
  vam_heap_stats_t s = stats_of(h);
  assert_int_equal(s.live_blocks, 3);
  assert_int_equal(s.live_bytes,
                   vam_usable_size(small) + vam_usable_size(large) + vam_usable_size(huge));
  assert_int_equal(s.large_blocks, 2);
  vam_free(small);
  vam_heap_free(h, large);
  vam_free(huge);
  s = stats_of(h);
  assert_int_equal(s.live_blocks, 0);
  assert_int_equal(s.live_bytes, 0);
  assert_int_equal(s.large_blocks, 0);
  assert_int_equal(s.malloc_calls, 3);
  assert_int_equal(s.free_calls, 3);
  vam_heap_destroy(h);
}

static void test_calloc_memalign_realloc(void **state) {
  (void)state;
  vam_heap_t *h = vam_heap_new(NULL);
  unsigned char *z = vam_heap_calloc(h, 1000, 8);
  for (size_t i = 0; i < 8000; i++) assert_int_equal(z[i], 0);
  for (size_t align = 16; align <= ((size_t)1 << 22); align <<= 3) {
    void *p = vam_heap_memalign(h, align, 1000);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % align, 0);
    assert_ptr_equal(vam_heap_of(p), h);
    vam_free(p);
  }
  errno = 0;
  assert_null(vam_heap_memalign(h, 48, 10));
  assert_int_equal(errno, EINVAL);
  /* realloc through either name keeps the block in its heap, contents kept,
   * across small -> large -> huge -> small. */
  unsigned char *p = vam_heap_malloc(h, 64);
  for (int i = 0; i < 64; i++) p[i] = (unsigned char)i;
  size_t sizes[] = {1000, 300 * 1024, 5 << 20, 64};
  for (size_t k = 0; k < 4; k++) {
    p = (k % 2) ? vam_realloc(p, sizes[k]) : vam_heap_realloc(h, p, sizes[k]);
    assert_non_null(p);
    assert_ptr_equal(vam_heap_of(p), h);
    for (int i = 0; i < 64; i++) assert_int_equal(p[i], i);
  }
  vam_heap_stats_t s = stats_of(h);
  assert_int_equal(s.live_blocks, 2);
  assert_int_equal(s.live_bytes, vam_usable_size(p) + vam_usable_size(z));
  /* overflow and absurd sizes: NULL + ENOMEM, nothing changes */
  errno = 0;
  assert_null(vam_heap_calloc(h, SIZE_MAX / 2, 4));
  assert_int_equal(errno, ENOMEM);
  errno = 0;
  assert_null(vam_heap_malloc(h, SIZE_MAX - 10));
  assert_int_equal(errno, ENOMEM);
  assert_int_equal(stats_of(h).live_blocks, 2);
  vam_heap_destroy(h);
}

static void test_byte_limit(void **state) {
  (void)state;
  vam_heap_options o = {.struct_size = sizeof o, .byte_limit = 1 << 20, .name = "limited"};
  vam_heap_t *lim = vam_heap_new(&o);
  vam_heap_t *other = vam_heap_new(NULL);
  void *blocks[4096];
  size_t n = 0;
  for (;;) {
    errno = 0;
    void *p = vam_heap_malloc(lim, 1000);
    if (p == NULL) {
      assert_int_equal(errno, ENOMEM);
      break;
    }
    assert_true(n < 4096);
    blocks[n++] = p;
  }
  vam_heap_stats_t s = stats_of(lim);
  assert_string_equal(s.name, "limited");
  assert_string_equal(stats_of(other).name, "");
  assert_true(s.live_bytes <= (1 << 20));
  assert_true(s.live_bytes > (1 << 20) - 1024);
  assert_int_equal(s.limit_refusals, 1);
  /* A large request past the limit is refused too; the other heap and the
   * thread heap are unaffected. */
  assert_null(vam_heap_malloc(lim, 2 << 20));
  void *big = vam_heap_malloc(other, 8 << 20);
  assert_non_null(big);
  void *mine = vam_malloc(8 << 20);
  assert_non_null(mine);
  vam_free(mine);
  /* Freeing makes room again. */
  vam_free(blocks[--n]);
  assert_non_null(blocks[n] = vam_heap_malloc(lim, 1000));
  n++;
  /* realloc past the limit fails and leaves the block alone */
  memset(blocks[0], 0x5a, 1000);
  assert_null(vam_heap_realloc(lim, blocks[0], 64 * 1024));
  assert_int_equal(((unsigned char *)blocks[0])[999], 0x5a);
  for (size_t i = 0; i < n; i++) vam_free(blocks[i]);
  assert_int_equal(stats_of(lim).live_bytes, 0);
  vam_heap_destroy(lim);
  vam_heap_destroy(other);
}

/* The limit counts usable (class) bytes: a request that fits but whose
 * class does not is refused, and the refusal leaves the totals untouched
 * (it once took a never-counted block off them: live_bytes wrapped to
 * ~2^64 and the heap refused everything after). */
static void test_byte_limit_class_refusal(void **state) {
  (void)state;
  struct { size_t limit, ask, fits; } cases[] = {
      {1000, 1000, 500},                                    /* small: class 1024 */
      {300 * 1024 + 100, 300 * 1024 + 50, 256 * 1024},      /* large: 10 units */
      {(9 << 20) + 100, (9 << 20) + 50, 3 << 20},           /* huge: whole pages */
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    vam_heap_options o = {.struct_size = sizeof o, .byte_limit = cases[c].limit};
    vam_heap_t *h = vam_heap_new(&o);
    assert_non_null(h);
    for (int round = 0; round < 3; round++) {
      errno = 0;
      assert_null(vam_heap_malloc(h, cases[c].ask));
      assert_int_equal(errno, ENOMEM);
      vam_heap_stats_t s = stats_of(h);
      assert_int_equal(s.live_bytes, 0);
      assert_int_equal(s.live_blocks, 0);
      assert_int_equal(s.malloc_calls, 0);
      assert_int_equal(s.free_calls, 0);
      assert_int_equal(s.limit_refusals, (uint64_t)round + 1);
    }
    void *p = vam_heap_malloc(h, cases[c].fits);
    assert_non_null(p);
    assert_true(vam_usable_size(p) <= cases[c].limit);
    assert_int_equal(stats_of(h).live_bytes, vam_usable_size(p));
    vam_free(p);
    assert_int_equal(stats_of(h).live_bytes, 0);
    assert_int_equal(stats_of(h).free_calls, 1);
    vam_heap_destroy(h);
  }
}

#define XN 20000
static void *xblocks[XN];
/* Worker threads never call cmocka (a failure there crashes instead of
 * reporting): they return the number of bad blocks for the main thread. */
static void *free_all(void *arg) {
  (void)arg;
  uintptr_t bad = 0;
  for (int i = 0; i < XN; i++) {
    if (*(int *)xblocks[i] != i) bad++;
    vam_free(xblocks[i]);
  }
  return (void *)bad;
}

static void test_cross_thread_free(void **state) {
  (void)state;
  vam_heap_t *h = vam_heap_new(NULL);
  for (int round = 0; round < 3; round++) {
    for (int i = 0; i < XN; i++) {
      xblocks[i] = vam_heap_malloc(h, 16 + (size_t)(i % 50) * 8);
      *(int *)xblocks[i] = i;
    }
    pthread_t t;
    void *bad = (void *)1;
    assert_int_equal(pthread_create(&t, NULL, free_all, NULL), 0);
    assert_int_equal(pthread_join(t, &bad), 0);
    assert_int_equal((uintptr_t)bad, 0); /* blocks whose content changed */
    vam_heap_stats_t s = stats_of(h);
    assert_int_equal(s.live_blocks, 0);
    assert_int_equal(s.live_bytes, 0);
  }
  vam_heap_destroy(h);
}

/* Several threads allocate from one heap and free each other's blocks. */
static vam_heap_t *shared;
/* Returns the number of failures (bad content, NULL) for the main thread
 * to assert; a NULL stops the thread. */
static void *hammer(void *arg) {
  uintptr_t seed = (uintptr_t)arg, bad = 0;
  void *mine[512] = {0};
  for (int i = 0; i < 100000; i++) {
    seed = seed * 6364136223846793005u + 1442695040888963407u;
    size_t k = (seed >> 33) % 512;
    if (mine[k]) {
      if (*(uintptr_t *)mine[k] != ((uintptr_t)mine[k] ^ 0xabcdef)) bad++;
      vam_free(mine[k]);
    }
    mine[k] = vam_heap_malloc(shared, 8 + (seed >> 40) % 3000);
    if (mine[k] == NULL) {
      bad++;
      break;
    }
    *(uintptr_t *)mine[k] = (uintptr_t)mine[k] ^ 0xabcdef;
  }
  for (int k = 0; k < 512; k++) vam_free(mine[k]);
  return (void *)bad;
}

static void test_concurrent_use(void **state) {
  (void)state;
  shared = vam_heap_new(NULL);
  pthread_t t[4];
  for (uintptr_t i = 0; i < 4; i++)
    assert_int_equal(pthread_create(&t[i], NULL, hammer, (void *)(i + 1)), 0);
  for (int i = 0; i < 4; i++) {
    void *bad = (void *)1;
    assert_int_equal(pthread_join(t[i], &bad), 0);
    assert_int_equal((uintptr_t)bad, 0); /* bad blocks or NULLs in thread i */
  }
  vam_heap_stats_t s = stats_of(shared);
  assert_int_equal(s.live_blocks, 0);
  assert_int_equal(s.live_bytes, 0);
  assert_int_equal(s.malloc_calls, 400000);
  assert_int_equal(s.free_calls, 400000);
  vam_heap_destroy(shared);
}

/* destroy with everything still live hands all of it back: after the
 * purge, committed bytes return to where they were before the heap. */
static void test_destroy_releases_everything(void **state) {
  (void)state;
  vam_collect(true);
  uint64_t committed0 = gauge(&vam__stats.committed_bytes);
  uint64_t large0 = gauge(&vam__stats.large_bytes);
  uint64_t huge0 = gauge(&vam__stats.huge_bytes);
  vam_heap_t *h = vam_heap_new(NULL);
  for (int i = 0; i < 50000; i++) memset(vam_heap_malloc(h, 32 + (size_t)(i % 64) * 16), 1, 32);
  for (int i = 0; i < 20; i++) memset(vam_heap_malloc(h, 400 * 1024), 2, 400 * 1024);
  for (int i = 0; i < 3; i++) memset(vam_heap_malloc(h, 6 << 20), 3, 6 << 20);
  assert_true(gauge(&vam__stats.committed_bytes) > committed0 + (40 << 20));
  vam_heap_destroy(h);
  assert_int_equal(gauge(&vam__stats.large_bytes), large0);
  assert_int_equal(gauge(&vam__stats.huge_bytes), huge0);
  vam_collect(true);
  assert_true(gauge(&vam__stats.committed_bytes) <= committed0 + (1 << 20));
}

/* 1,000 create/destroy cycles, each heap left with live blocks: after a
 * warm-up the mapping count and the reserved bytes stay flat. */
static void test_create_destroy_steady(void **state) {
  (void)state;
  uint64_t maps_after_warmup = 0, reserved_after_warmup = 0;
  for (int cycle = 0; cycle < 1000; cycle++) {
    vam_heap_options o = {.struct_size = sizeof o, .byte_limit = 64 << 20};
    vam_heap_t *h = vam_heap_new(&o);
    assert_non_null(h);
    for (int i = 0; i < 300; i++) memset(vam_heap_malloc(h, 16 + (size_t)(i * 37 % 4000)), 7, 16);
    if (cycle % 10 == 0) assert_non_null(vam_heap_malloc(h, 500 * 1024));
    if (cycle % 50 == 0) assert_non_null(vam_heap_malloc(h, 5 << 20));
    vam_heap_destroy(h);
    if (cycle == 100) {
      maps_after_warmup = gauge(&vam__stats.mappings);
      reserved_after_warmup = gauge(&vam__stats.reserved_bytes);
    }
  }
  assert_true(gauge(&vam__stats.mappings) <= maps_after_warmup + 1);
  assert_true(gauge(&vam__stats.reserved_bytes) <= reserved_after_warmup + reserved_after_warmup / 100);
  assert_int_equal(gauge(&vam__stats.user_heaps), 0);
}

static void test_bad_arguments(void **state) {
  (void)state;
  vam_heap_options o = {.struct_size = 1};
  errno = 0;
  assert_null(vam_heap_new(&o));
  assert_int_equal(errno, EINVAL);
  errno = 0;
  assert_null(vam_heap_malloc(NULL, 10));
  assert_int_equal(errno, EINVAL);
  vam_heap_destroy(NULL);
  vam_heap_stats_t s;
  assert_int_equal(vam_heap_stats(NULL, &s, sizeof s), EINVAL);
  /* a shorter stats struct gets only its prefix */
  vam_heap_t *h = vam_heap_new(NULL);
  void *p = vam_heap_malloc(h, 10);
  uint64_t two[3] = {0, 0, 0x1234};
  assert_int_equal(vam_heap_stats(h, (vam_heap_stats_t *)two, 2 * sizeof(uint64_t)), 0);
  assert_int_equal(two[0], 2 * sizeof(uint64_t));
  assert_int_equal(two[1], vam_usable_size(p));
  assert_int_equal(two[2], 0x1234);
  vam_heap_destroy(h);
}

/* fork while another thread is inside the heap: the child can use it. */
static volatile int stop_hammer;
static void *busy(void *arg) {
  vam_heap_t *h = arg;
  while (!stop_hammer) vam_free(vam_heap_malloc(h, 100));
  return NULL;
}

static void test_fork(void **state) {
  (void)state;
  vam_heap_t *h = vam_heap_new(NULL);
  pthread_t t;
  stop_hammer = 0;
  pthread_create(&t, NULL, busy, h);
  for (int i = 0; i < 20; i++) {
    pid_t pid = fork();
    if (pid == 0) {
      void *p = vam_heap_malloc(h, 200);
      vam_free(p);
      vam_heap_destroy(h);
      _exit(p ? 0 : 1);
    }
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  stop_hammer = 1;
  pthread_join(t, NULL);
  vam_heap_destroy(h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_basic_alloc_free),
      cmocka_unit_test(test_calloc_memalign_realloc),
      cmocka_unit_test(test_byte_limit),
      cmocka_unit_test(test_byte_limit_class_refusal),
      cmocka_unit_test(test_cross_thread_free),
      cmocka_unit_test(test_concurrent_use),
      cmocka_unit_test(test_destroy_releases_everything),
      cmocka_unit_test(test_create_destroy_steady),
      cmocka_unit_test(test_bad_arguments),
      cmocka_unit_test(test_fork),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
