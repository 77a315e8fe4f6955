/* init.c's lock table is the order the code takes its locks in.
 *
 * The table (the comment above init.c's fork handlers) is read from the
 * source: one rank per line, in order, the names on a line ranked left to
 * right.  This program links the allocator statically and defines
 * pthread_mutex_lock/unlock itself, so every lock the allocator takes goes
 * through a check: a ranked lock taken while a thread holds one of a rank
 * not below it is an inversion (a deadlock waiting for its second thread).
 * A mixed workload then runs on several threads: every size, realloc,
 * cross-thread frees, first-class heaps, the page API, statistics, purges
 * and fork.  It fails on an inversion, on a table name that is not a lock
 * of the program, and when the workload leaves a ranked lock, or the
 * nesting of two, untaken (the table must be what the code does).
 *
 *   test_lock_order SRC/init.c */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "internal.h"
#include "local_object.h"

#include <dlfcn.h>

/* libc's own, found on first use (the allocator may lock before main) */
typedef int (*mutex_fn)(pthread_mutex_t *);
static mutex_fn real_lock, real_unlock;
static mutex_fn real(mutex_fn *fn, const char *name) {
  if (*fn == NULL) *fn = (mutex_fn)dlsym(RTLD_NEXT, name);
  return *fn;
}

#define MAX_LOCKS 32
#define MAX_HEAPS 8
typedef struct {
  char name[48];
  void *addr;   /* NULL: first-class heaps' locks (any of the test's heaps) */
  int rank;     /* table line * 8 + position on the line */
  atomic_int taken;
} lock_t;
static lock_t locks[MAX_LOCKS];
static int nlocks;
static vam_heap_t *heaps[MAX_HEAPS];
static atomic_int nheaps;
static atomic_int inversions, nested;
static char first_inversion[256];
static atomic_flag first_once = ATOMIC_FLAG_INIT;
static bool checking;

static __thread int held[16];
static __thread int nheld;
static bool in_fork; /* fork_prepare to the parent/child handlers: its
                        takes check the order, but do not count as the
                        workload's (it takes every lock) */

static int lock_index(const pthread_mutex_t *m) {
  for (int i = 0; i < nlocks; i++) {
    if (locks[i].addr == m) return i;
    if (locks[i].addr == NULL)
      for (int h = 0; h < atomic_load(&nheaps); h++)
        if (heaps[h] && &heaps[h]->lock == m) return i;
  }
  return -1;
}

int pthread_mutex_lock(pthread_mutex_t *m) {
  int i = checking ? lock_index(m) : -1;
  if (i >= 0) {
    if (!in_fork) atomic_fetch_add(&locks[i].taken, 1);
    for (int k = 0; k < nheld; k++) {
      int j = held[k];
      if (locks[j].rank >= locks[i].rank) {
        if (atomic_fetch_add(&inversions, 1) == 0 && !atomic_flag_test_and_set(&first_once))
          snprintf(first_inversion, sizeof first_inversion, "%s taken while holding %s", locks[i].name,
                   locks[j].name);
      } else {
        atomic_fetch_add(&nested, 1);
      }
    }
    if (nheld < 16) held[nheld++] = i;
  }
  return real(&real_lock, "pthread_mutex_lock")(m);
}

int pthread_mutex_unlock(pthread_mutex_t *m) {
  int i = checking ? lock_index(m) : -1;
  if (i >= 0) {
    for (int k = nheld - 1; k >= 0; k--)
      if (held[k] == i) {
        memmove(&held[k], &held[k + 1], (size_t)(nheld - k - 1) * sizeof held[0]);
        nheld--;
        break;
      }
  }
  return real(&real_unlock, "pthread_mutex_unlock")(m);
}

/* The child of fork: the allocator re-initialised its locks (held by
 * fork_prepare); none is held any more. */
static void forget_held(void) {
  nheld = 0;
  in_fork = false;
}
static void fork_starts(void) { in_fork = true; }
static void fork_done(void) { in_fork = false; }

/* ---- the table ------------------------------------------------------------ */

static void add_lock(const char *name, int rank) {
  if (nlocks == MAX_LOCKS) return;
  lock_t *l = &locks[nlocks];
  snprintf(l->name, sizeof l->name, "%s", name);
  l->rank = rank;
  if (strcmp(name, "heap locks") == 0) {
    l->addr = NULL;
  } else if (strncmp(name, "vam__", 5) == 0) {
    l->addr = local_object(NULL, name);
    if (l->addr == NULL && strcmp(name, "vam__zero_lock") == 0) return; /* secure build only */
  } else {
    /* a static: the file named on the table line decides which */
    l->addr = local_object(strcmp(name, "list_lock") == 0 ? "userheap.c" : "heap.c", name);
  }
  if (l->addr == NULL && strcmp(name, "heap locks") != 0) {
    fprintf(stderr, "FAIL: init.c's table names '%s', which is no lock of this program\n", name);
    exit(1);
  }
  nlocks++;
}

static void read_table(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) {
    perror(path);
    exit(1);
  }
  char line[512];
  bool in = false;
  int row = 0;
  while (fgets(line, sizeof line, f)) {
    if (strstr(line, "fork_prepare takes them all in this order")) {
      in = true;
      continue;
    }
    if (!in) continue;
    if (strncmp(line, " *   ", 5) != 0 || line[5] == ' ') {
      if (strstr(line, "test_fork_locks.c") || strstr(line, "*/")) break;
      continue; /* a continuation line */
    }
    /* " *   name[, name]  file.c; ..." : the names end at the file */
    char *names = line + 5, *file = NULL;
    for (char *w = strstr(names, ".c"); w; w = strstr(w + 2, ".c"))
      if (w[2] == ';' || w[2] == ' ' || w[2] == '\n') {
        file = w;
        break;
      }
    if (!file) continue;
    while (file > names && file[-1] != ' ') file--; /* back to the file's first letter */
    *file = 0;
    row++;
    int pos = 0;
    for (char *tok = strtok(names, ","); tok; tok = strtok(NULL, ",")) {
      while (*tok == ' ') tok++;
      for (char *e = tok + strlen(tok); e > tok && e[-1] == ' '; e--) e[-1] = 0;
      if (*tok) add_lock(tok, row * 8 + pos++);
    }
  }
  fclose(f);
  if (row < 8) {
    fprintf(stderr, "FAIL: read %d table lines from %s\n", row, path);
    exit(1);
  }
}

/* ---- the workload --------------------------------------------------------- */

/* A destructor that runs after the allocator's own (keys run in creation
 * order): the thread's heap is gone, so this goes through the shared heap
 * and its lock. */
static pthread_key_t late_key;
static void late_destructor(void *p) {
  vam_free(p);
  vam_free(vam_malloc(48));
}

static void *churn(void *arg) {
  pthread_setspecific(late_key, vam_malloc(64));
  void **mine = arg;
  static const size_t sizes[] = {16, 200, 3000, 40000, 300000, 3 << 20, 9 << 20};
  for (int round = 0; round < 40; round++) {
    for (int i = 0; i < 64; i++) {
      size_t s = sizes[(i + round) % 7];
      void *p = vam_malloc(s);
      if (p && i % 5 == 0) p = vam_realloc(p, s * 2);
      if (mine[i]) vam_free(mine[i]); /* blocks another thread made */
      mine[i] = p;
    }
    if (round % 10 == 0) vam_collect(false);
  }
  return NULL;
}

static void first_class_heaps(void) {
  for (int k = 0; k < 3; k++) {
    vam_heap_options o = {.struct_size = sizeof o, .name = "order", .byte_limit = 64 << 20};
    vam_heap_t *h = vam_heap_new(&o);
    if (!h) continue;
    int n = atomic_load(&nheaps);
    if (n < MAX_HEAPS) {
      heaps[n] = h;
      atomic_store(&nheaps, n + 1);
    }
    void *v[32];
    for (int i = 0; i < 32; i++) v[i] = vam_heap_malloc(h, (size_t)(i % 4 == 3 ? 5 << 20 : 100 << (i % 8)));
    for (int i = 0; i < 16; i++) vam_free(v[i]);
    for (int i = 16; i < 32; i++) vam_heap_free(h, v[i]);
    void *keep = vam_heap_malloc(h, 1000);
    (void)keep;
    vam_heap_destroy(h);
  }
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: test_lock_order SRC/init.c\n");
    return 2;
  }
  vam__ensure_init();
  /* Prepare handlers run last-registered first, the others in order: ours
   * bracket the allocator's. */
  pthread_atfork(fork_starts, fork_done, forget_held);
  read_table(argv[1]);
  pthread_key_create(&late_key, late_destructor);
  checking = true;

  enum { T = 4 };
  static void *slots[T][64];
  for (int rep = 0; rep < 3; rep++) {
    pthread_t th[T];
    for (int t = 0; t < T; t++) pthread_create(&th[t], NULL, churn, slots[(t + rep) % T]);
    first_class_heaps();
    void *pg = vam_pages_reserve(4 << 20, 0, 0);
    if (pg) {
      vam_pages_commit(pg, 1 << 20);
      vam_pages_decommit(pg, 1 << 20, 0);
      vam_pages_release(pg, 4 << 20);
    }
    vam_stats_t st;
    vam_stats_get(&st, sizeof st);
    int null_fd = open("/dev/null", O_WRONLY);
    vam_stats_print(null_fd, 0); /* the report's totals take the stats lock */
    close(null_fd);
    for (int t = 0; t < T; t++) pthread_join(th[t], NULL);
    pid_t pid = fork(); /* fork_prepare takes every lock, in the table's order */
    if (pid == 0) {
      vam_free(vam_malloc(100));
      _exit(atomic_load(&inversions) ? 3 : 0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) atomic_fetch_add(&inversions, 1);
  }
  vam_collect(true);
  checking = false;

  int failed = 0;
  if (atomic_load(&inversions)) {
    fprintf(stderr, "FAIL: %d lock-order inversions; first: %s\n", atomic_load(&inversions), first_inversion);
    failed = 1;
  }
  for (int i = 0; i < nlocks; i++) {
    fprintf(stderr, "  rank %3d  %-22s taken %d times\n", locks[i].rank, locks[i].name, atomic_load(&locks[i].taken));
    if (atomic_load(&locks[i].taken) == 0 && strcmp(locks[i].name, "vam__hint_lock") == 0 &&
        !getenv("VAMALLOC_VA_BITS")) {
      fprintf(stderr, "  (vam__hint_lock is only taken with VAMALLOC_VA_BITS: lock_order_vabits)\n");
    } else if (atomic_load(&locks[i].taken) == 0) {
      fprintf(stderr, "FAIL: the workload never took %s\n", locks[i].name);
      failed = 1;
    }
  }
  if (atomic_load(&nested) == 0) {
    fprintf(stderr, "FAIL: no nested acquisition seen: the check proved nothing\n");
    failed = 1;
  }
  fprintf(stderr, "%s: %d locks ranked, %d nested acquisitions in order\n", failed ? "FAIL" : "ok", nlocks,
          atomic_load(&nested));
  return failed;
}
