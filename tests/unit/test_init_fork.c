/* fork against the allocator's locks (init.c's atfork handlers): a fork
 * taken while another thread is inside a nested lock path must neither hang
 * nor leave the child a lock held by a thread the child does not have.
 *
 * Each scenario runs in a runner process, so a fork that deadlocks fails
 * the test on a timeout instead of hanging it. */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include "internal.h"

/* What a child does: the allocator must work (alarm: a lock it inherited
 * held would hang it). */
static int child_work(void) {
  alarm(5);
  vam_stats_t st;
  if (vam_stats_get(&st, sizeof st) != sizeof st) return 3;
  void *p[64];
  for (int i = 0; i < 64; i++)
    if ((p[i] = vam_malloc((size_t)(16 + i * 500))) == NULL) return 4;
  for (int i = 0; i < 64; i++) vam_free(p[i]);
  void *big = vam_malloc(8 << 20);
  if (big == NULL) return 5;
  vam_free(big);
  return 0;
}

static int wait_child(pid_t pid) {
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return 6;
  if (WIFSIGNALED(status)) return 7; /* SIGALRM: it hung */
  return WIFEXITED(status) ? WEXITSTATUS(status) : 8;
}

/* Run scenario in a runner process; its exit code, or -1 when it did not
 * finish within limit_s (killed). */
static int in_runner(int (*scenario)(void), int limit_s) {
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    signal(SIGABRT, SIG_DFL);
    _exit(scenario());
  }
  for (int ms = 0; ms < limit_s * 1000; ms += 10) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
    usleep(10 * 1000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  return -1;
}

/* ---- map -> meta -> hint ---------------------------------------------------
 * A map leaf is metadata (chunkmap.c: map lock, then meta_alloc's lock), and
 * a new metadata region is a reservation, placed under the VA-bits hint lock
 * when VAMALLOC_VA_BITS asks for fewer bits (vabudget.c reserve_low).  The
 * holder thread walks that path by hand: it holds map and meta, waits (at
 * most 300 ms) for someone else to hold the hint lock, then takes it.  A
 * fork_prepare that took the hint lock before the map lock deadlocked here. */
static vam_atomic(int) holding;
static void *leaf_path(void *arg) {
  (void)arg;
  pthread_mutex_lock(&vam__map_lock);
  pthread_mutex_lock(&vam__meta_lock);
  atomic_store(&holding, 1);
  for (int i = 0; i < 300; i++) {
    if (pthread_mutex_trylock(&vam__hint_lock) != 0) break; /* the forker has it */
    pthread_mutex_unlock(&vam__hint_lock);
    usleep(1000);
  }
  pthread_mutex_lock(&vam__hint_lock);
  pthread_mutex_unlock(&vam__hint_lock);
  pthread_mutex_unlock(&vam__meta_lock);
  pthread_mutex_unlock(&vam__map_lock);
  return NULL;
}

static int scenario_leaf(void) {
  pthread_t t;
  atomic_store(&holding, 0);
  pthread_create(&t, NULL, leaf_path, NULL);
  while (!atomic_load(&holding)) usleep(100);
  pid_t pid = fork();
  if (pid == 0) _exit(child_work());
  int rc = pid < 0 ? 9 : wait_child(pid);
  pthread_join(t, NULL);
  return rc;
}

static void test_fork_during_leaf_allocation(void **state) {
  (void)state;
  int rc = in_runner(scenario_leaf, 10);
  if (rc != 0)
    fail_msg("fork while a thread held the map and meta locks: %s (%d)",
             rc < 0 ? "deadlocked (fork_prepare takes the locks out of order)" : "child failed", rc);
}

/* ---- the statistics lock ----------------------------------------------------
 * A report holds stats.c's lock while it sums the heaps (heap.c's pool
 * lock) and the slabs (the chunk lock).  The main thread holds the chunk
 * lock; a thread forks and waits in fork_prepare for the chunk lock,
 * holding what it took before it; a report starts; the chunk lock goes.
 * With the statistics lock outside the fork handlers the report took it
 * and waited for the pool lock the forker held: the child inherited the
 * statistics lock held and its first report hung. */
static void *reporter(void *arg) {
  (void)arg;
  vam_stats_t st;
  vam_stats_get(&st, sizeof st);
  return NULL;
}
static void *forker(void *arg) {
  pid_t pid = fork();
  if (pid == 0) _exit(child_work());
  *(int *)arg = pid < 0 ? 9 : wait_child(pid);
  return NULL;
}

static int scenario_stats(void) {
  for (int round = 0; round < 3; round++) {
    pthread_t r, f;
    int rc = -1;
    pthread_mutex_lock(&vam__chunk_lock);
    pthread_create(&f, NULL, forker, &rc);
    usleep(20 * 1000); /* the forker waits in fork_prepare for the chunk lock */
    pthread_create(&r, NULL, reporter, NULL);
    usleep(20 * 1000); /* the report has started */
    pthread_mutex_unlock(&vam__chunk_lock);
    pthread_join(r, NULL);
    pthread_join(f, NULL);
    if (rc != 0) return rc;
  }
  return 0;
}

static void test_fork_during_report(void **state) {
  (void)state;
  int rc = in_runner(scenario_stats, 60);
  if (rc != 0)
    fail_msg("fork while a thread was inside a statistics report: %s (%d)",
             rc == 7 ? "the child's report hung (statistics lock inherited held)"
                     : rc < 0 ? "runner hung" : "child failed",
             rc);
}

int main(void) {
  vam__ensure_init();
  vam_free(vam_malloc(1)); /* a thread heap, so the runners start warm */
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fork_during_leaf_allocation),
      cmocka_unit_test(test_fork_during_report),
  };
  return cmocka_run_group_tests_name("init_fork", tests, NULL, NULL);
}
