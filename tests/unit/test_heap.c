/* Thread heaps and pages: blocks come back to their page whether freed by
 * the owner or by another thread; empty pages go back to their chunk; a dead
 * thread's heap is reused by the next thread; blocks of a dead thread can be
 * freed later by anyone and their memory is reused. */
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "internal.h"

#define N 20000
static void *blocks[N];

static void *alloc_many(void *arg) {
  size_t size = (size_t)(uintptr_t)arg;
  for (int i = 0; i < N; i++) {
    blocks[i] = vam_malloc(size);
    memset(blocks[i], i & 0xff, size);
  }
  return NULL;
}

static void *free_many(void *arg) {
  size_t size = (size_t)(uintptr_t)arg;
  for (int i = 0; i < N; i++) {
    for (size_t j = 0; j < size; j++) assert_int_equal(((unsigned char *)blocks[i])[j], i & 0xff);
    vam_free(blocks[i]);
  }
  return NULL;
}

static void run(void *(*fn)(void *), size_t size) {
  pthread_t t;
  pthread_create(&t, NULL, fn, (void *)(uintptr_t)size);
  pthread_join(t, NULL);
}

static void test_remote_free_reaches_owner(void **state) {
  (void)state;
  /* main allocates, a thread frees every block (remote), main allocates
   * again: the same memory comes back, so no new chunk is needed. */
  alloc_many((void *)48);
  vam_stats_t st;
  vam_stats_get(&st, sizeof st);
  uint64_t remote0 = st.remote_frees;
  run(free_many, 48);
  vam_stats_get(&st, sizeof st);
  assert_int_equal(st.remote_frees - remote0, N);
  uint64_t chunks0 = vam_load_relaxed(&vam__stats.chunks_reserved);
  alloc_many((void *)48);
  assert_int_equal(vam_load_relaxed(&vam__stats.chunks_reserved), chunks0);
  free_many((void *)48);
}

static void test_dead_thread_blocks(void **state) {
  (void)state;
  uint64_t reused0 = vam_load_relaxed(&vam__stats.heaps_reused);
  run(alloc_many, 100); /* thread exits holding N blocks */
  free_many((void *)100); /* freed here, after that thread is gone */
  /* The next thread takes the dead thread's heap over. */
  run(alloc_many, 100);
  assert_true(vam_load_relaxed(&vam__stats.heaps_reused) > reused0);
  free_many((void *)100);
  /* Its pages went back once empty: the collector releases them. */
  vam__heap_pool_collect();
  uint64_t acquired = vam_load_relaxed(&vam__stats.pages_acquired);
  uint64_t released = vam_load_relaxed(&vam__stats.pages_released);
  assert_true(released > 0 && released <= acquired);
}

static void test_empty_page_released(void **state) {
  (void)state;
  /* Fill several slabs of one class, free everything: all but the head
   * page go back to the chunk. */
  uint64_t rel0 = vam_load_relaxed(&vam__stats.pages_released);
  alloc_many((void *)2000);
  free_many((void *)2000);
  assert_true(vam_load_relaxed(&vam__stats.pages_released) - rel0 >= (N * 2000 / (64 * 1024)) / 2);
}

/* free()'s fast path trusts the heap's hot chunk to be mapped: the heap
 * holds a slab there.  Once its last slab there goes back, the chunk may be
 * unmapped, so it must stop being hot; a stale pointer into it is then
 * classified by the chunk map (reported), never read through the fast
 * path. */
/* Runs on a fresh thread (a heap of its own); returns the failed step, 0
 * when all held (cmocka asserts belong to the main thread). */
static void *hot_chunk_thread(void *arg) {
  (void)arg;
  void *p = vam_malloc(48);
  vam_heap_t *heap = vam__tls_heap;
  uintptr_t c = (uintptr_t)vam__chunk_of(p);
  if (heap->hot_chunk != c) return (void *)1; /* its newest slab's chunk */
  vam_free(p);
  vam__heap_trim_own(); /* the slab, now empty, goes back */
  if (heap->hot_chunk != VAM_NO_CHUNK) return (void *)2;
  uint64_t saved = vam__options.purge_delay_ms;
  vam__options.purge_delay_ms = 0;
  vam_collect(true); /* and its chunk may go with it */
  vam__options.purge_delay_ms = saved;
  vam__options.on_corruption = VAM_CORRUPT_IGNORE;
  uint64_t seen0 = vam_load_relaxed(&vam__stats.foreign_frees) + vam_load_relaxed(&vam__stats.misuse_double_free) +
                   vam_load_relaxed(&vam__stats.invalid_frees);
  vam_free(p); /* stale: reported whether the chunk is still mapped or not */
  uint64_t seen1 = vam_load_relaxed(&vam__stats.foreign_frees) + vam_load_relaxed(&vam__stats.misuse_double_free) +
                   vam_load_relaxed(&vam__stats.invalid_frees);
  vam__options.on_corruption = VAM_CORRUPT_ABORT;
  return seen1 > seen0 ? NULL : (void *)3;
}

static void test_hot_chunk_unset_with_last_slab(void **state) {
  (void)state;
  pthread_t t;
  void *failed = (void *)-1;
  assert_int_equal(pthread_create(&t, NULL, hot_chunk_thread, NULL), 0);
  assert_int_equal(pthread_join(t, &failed), 0);
  assert_int_equal((uintptr_t)failed, 0);
}

/* Thread caches age by the purge clock: a short delay, a fresh clock, and
 * later a pause past the delay and a purge pass to move the clock on. */
static uint64_t saved_delay;
static void cache_clock_start(void) {
  saved_delay = vam__options.purge_delay_ms;
  vam__options.purge_delay_ms = 300;
  vam_collect(false);
}
static void cache_clock_pass(void) {
  usleep(350 * 1000);
  vam_collect(false);
}
static void cache_clock_end(void) { vam__options.purge_delay_ms = saved_delay; }

/* Empty slabs stay with the heap as spares: the next batch takes them back
 * without touching the chunks, and spares left unused for the purge delay
 * go back to the chunks. */
static void test_spares_reused_then_aged(void **state) {
  (void)state;
  cache_clock_start();
  enum { M = 1280 }; /* 20 one-unit slabs of 512-byte blocks */
  static void *p[M];
  for (int i = 0; i < M; i++) assert_non_null(p[i] = vam_malloc(512));
  uint64_t rel0 = vam_load_relaxed(&vam__stats.pages_released);
  for (int i = 0; i < M; i++) vam_free(p[i]);
  /* Kept (the bin head, plus spares within the 4 MiB budget). */
  assert_int_equal(vam_load_relaxed(&vam__stats.pages_released), rel0);
  uint64_t acq0 = vam_load_relaxed(&vam__stats.pages_acquired);
  for (int i = 0; i < M; i++) assert_non_null(p[i] = vam_malloc(256)); /* another one-unit class */
  assert_int_equal(vam_load_relaxed(&vam__stats.pages_acquired), acq0);
  for (int i = 0; i < M; i++) vam_free(p[i]);
  /* A purge delay later, a slow-path malloc hands the spares back. */
  cache_clock_pass();
  void *q = vam_malloc(3000);
  assert_non_null(q);
  assert_true(vam_load_relaxed(&vam__stats.pages_released) - rel0 >= 18);
  vam_free(q);
  cache_clock_end();
}

/* A freed large span serves this thread's next large malloc of about its
 * length without the chunks; a much shorter request does not take it; a
 * second free of it is reported; the cache ages out like the spares. */
static void test_large_cache(void **state) {
  (void)state;
  vam_collect(true); /* start from an empty cache */
  cache_clock_start();
  unsigned char *p = vam_malloc(600 * 1024); /* 19 units */
  assert_non_null(p);
  memset(p, 1, 600 * 1024);
  vam_free(p);
  uint64_t inv0 = vam_load_relaxed(&vam__stats.invalid_frees);
  vam__options.on_corruption = VAM_CORRUPT_IGNORE;
  vam_free(p); /* cached, not live: reported, not cached twice */
  vam__options.on_corruption = VAM_CORRUPT_ABORT;
  assert_int_equal(vam_load_relaxed(&vam__stats.invalid_frees), inv0 + 1);
  unsigned char *q = vam_malloc(300 * 1024); /* 10 units: too short for it */
  assert_ptr_not_equal(q, p);
  unsigned char *r = vam_malloc(590 * 1024); /* 19 units again */
  assert_ptr_equal(r, p);
  assert_true(vam_usable_size(r) >= 590 * 1024);
  unsigned char *z = vam_calloc(1, 600 * 1024); /* from the chunks, zeroed */
  for (size_t i = 0; i < 600 * 1024; i += 512) assert_int_equal(z[i], 0);
  vam_free(q);
  vam_free(z);
  vam_free(r);
  /* 48 units (1536 KiB) are cached now.  A purge delay later the next
   * large malloc (13 units, which none of them fits) first hands them
   * back: committed bytes fall by 1536 KiB and rise by 416 KiB. */
  int64_t committed = vam_load_relaxed(&vam__stats.committed_bytes.current);
  cache_clock_pass();
  void *s = vam_malloc(400 * 1024);
  assert_non_null(s);
  assert_int_equal(vam_load_relaxed(&vam__stats.committed_bytes.current),
                   committed - 1536 * 1024 + 416 * 1024);
  vam_free(s);
  cache_clock_end();
}

static void *thread_churn(void *arg) {
  (void)arg;
  void *p[256];
  for (int r = 0; r < 8; r++) {
    for (int i = 0; i < 256; i++) p[i] = vam_malloc((size_t)(16 + i * 3));
    for (int i = 0; i < 256; i++) vam_free(p[i]);
  }
  return NULL;
}

static void test_heap_count_stays_flat(void **state) {
  (void)state;
  run(thread_churn, 0);
  uint64_t created0 = vam_load_relaxed(&vam__stats.heaps_created);
  for (int i = 0; i < 500; i++) run(thread_churn, 0);
  /* sequential threads reuse one pooled heap: no new heaps */
  assert_int_equal(vam_load_relaxed(&vam__stats.heaps_created), created0);
}

static void test_large_and_huge_roundtrip(void **state) {
  (void)state;
  size_t sizes[] = {300 * 1024, 1 << 20, (2 << 20) - 1, (2 << 20) + 1, 9 << 20};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    unsigned char *p = vam_malloc(sizes[i]);
    assert_non_null(p);
    assert_true(vam_usable_size(p) >= sizes[i]);
    memset(p, 0x77, sizes[i]);
    p = vam_realloc(p, sizes[i] * 2);
    assert_non_null(p);
    for (size_t j = 0; j < sizes[i]; j += 4093) assert_int_equal(p[j], 0x77);
    vam_free(p);
  }
}

/* fork while first-class heaps exist and other threads allocate: in the
 * child, new threads get heaps of their own, never a first-class heap,
 * never the heap of a thread that did not come along (it may have been
 * mid-update), and no heap struct twice, not even after the child destroys
 * a first-class heap and creates new ones. */
#define FORK_BUSY 2
#define FORK_KIDS 12
static vam_heap_t *busy_heap[FORK_BUSY];
static volatile int busy_stop;
static vam_atomic(int) busy_ready;

static void *fork_busy(void *arg) {
  size_t k = (size_t)(uintptr_t)arg;
  vam_free(vam_malloc(64));
  busy_heap[k] = vam__tls_heap;
  atomic_fetch_add(&busy_ready, 1);
  while (!busy_stop) {
    void *p[32];
    for (int i = 0; i < 32; i++) p[i] = vam_malloc((size_t)(16 + i * 40));
    for (int i = 0; i < 32; i++) vam_free(p[i]);
  }
  return NULL;
}

static vam_heap_t *kid_heap[FORK_KIDS];
static vam_heap_t *kid_user;
static pthread_barrier_t kid_barrier;
static void *fork_kid(void *arg) {
  size_t k = (size_t)(uintptr_t)arg;
  void *p[64];
  for (int i = 0; i < 64; i++) p[i] = vam_malloc((size_t)(8 + i * 24));
  kid_heap[k] = vam__tls_heap;
  pthread_barrier_wait(&kid_barrier); /* every kid holds its heap at once */
  for (int i = 0; i < 64; i++) vam_free(p[i]);
  for (int i = 0; i < 200; i++) vam_free(vam_heap_malloc(kid_user, (size_t)(16 + i)));
  return NULL;
}

static int fork_child_checks(vam_heap_t **user, size_t nuser) {
  signal(SIGABRT, SIG_DFL);
  alarm(20);
  vam_heap_t *mine = vam__tls_heap;
  vam_heap_destroy(user[0]); /* its struct goes back to meta.c for reuse */
  vam_heap_t *fresh[2] = {vam_heap_new(NULL), vam_heap_new(NULL)};
  if (!fresh[0] || !fresh[1]) return 2;
  kid_user = fresh[0];
  pthread_barrier_init(&kid_barrier, NULL, FORK_KIDS);
  pthread_t t[FORK_KIDS];
  for (size_t k = 0; k < FORK_KIDS; k++)
    if (pthread_create(&t[k], NULL, fork_kid, (void *)(uintptr_t)k) != 0) return 3;
  for (size_t k = 0; k < FORK_KIDS; k++) pthread_join(t[k], NULL);
  for (size_t k = 0; k < FORK_KIDS; k++) {
    vam_heap_t *h = kid_heap[k];
    if (h == &vam__empty_heap) continue; /* no heap: the shared one, fine */
    if (h->is_user) return 10;
    if (h == mine) return 11;
    for (size_t i = 0; i < FORK_BUSY; i++)
      if (h == busy_heap[i]) return 12;
    for (size_t i = 0; i < nuser; i++)
      if (h == user[i]) return 13;
    if (h == fresh[0] || h == fresh[1]) return 14;
    for (size_t j = 0; j < k; j++)
      if (h == kid_heap[j]) return 15;
  }
  /* The first-class heaps the child has still work, under their locks. */
  for (size_t i = 1; i < nuser; i++) vam_free(vam_heap_malloc(user[i], 100));
  vam_free(vam_heap_malloc(fresh[1], 5000));
  vam_heap_destroy(fresh[0]);
  vam_heap_destroy(fresh[1]);
  vam_free(vam_malloc(100)); /* and so does the forking thread's own heap */
  return 0;
}

static void test_fork_child_threads(void **state) {
  (void)state;
  vam_heap_t *user[3];
  void *kept[3];
  for (size_t i = 0; i < 3; i++) {
    user[i] = vam_heap_new(NULL);
    assert_non_null(user[i]);
    kept[i] = vam_heap_malloc(user[i], 64);
  }
  busy_stop = 0;
  atomic_store(&busy_ready, 0);
  pthread_t t[FORK_BUSY];
  for (size_t k = 0; k < FORK_BUSY; k++) pthread_create(&t[k], NULL, fork_busy, (void *)(uintptr_t)k);
  while (atomic_load(&busy_ready) < FORK_BUSY) usleep(100);
  for (int round = 0; round < 5; round++) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) _exit(fork_child_checks(user, 3));
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      fail_msg("fork round %d: child %s %d (10: a first-class heap, 11-15: a heap already "
               "in use)", round, WIFEXITED(status) ? "exited" : "killed by signal",
               WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
  }
  busy_stop = 1;
  for (size_t k = 0; k < FORK_BUSY; k++) pthread_join(t[k], NULL);
  for (size_t i = 0; i < 3; i++) {
    vam_free(kept[i]);
    vam_heap_destroy(user[i]);
  }
}

int main(void) {
  vam__ensure_init();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_remote_free_reaches_owner), cmocka_unit_test(test_dead_thread_blocks),
      cmocka_unit_test(test_empty_page_released),       cmocka_unit_test(test_heap_count_stays_flat),
      cmocka_unit_test(test_large_and_huge_roundtrip),  cmocka_unit_test(test_spares_reused_then_aged),
      cmocka_unit_test(test_large_cache),               cmocka_unit_test(test_fork_child_threads),
      cmocka_unit_test(test_hot_chunk_unset_with_last_slab),
  };
  return cmocka_run_group_tests_name("heap", tests, NULL, NULL);
}
