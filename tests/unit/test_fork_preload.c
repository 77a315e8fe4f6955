/* fork under LD_PRELOAD with threads parked inside the allocator.
 *
 * A plain-malloc program, run with the fault-injection libvamalloc_fi.so
 * preloaded (tests/unit/meson.build; strict commit, so new and reused
 * chunks are committed with mprotect under the chunk lock).  It re-executes
 * itself with a VAMALLOC_FAULTS `park` rule (src/os/fault.c) on some of the
 * mmap, munmap, mprotect and madvise calls: the calling thread writes a
 * byte to a pipe and waits for one back, holding whatever allocator locks
 * its path holds.  Four worker threads allocate, verify and free blocks of
 * every size kind; the main thread (never parked: it installed the rule)
 * answers each park by forking from a helper thread while the worker is
 * still parked, waits a little so that fork_prepare either goes through or
 * blocks on the held lock, releases the worker, and checks the child: it
 * mallocs, frees, starts a thread and uses a first-class heap under
 * alarm(10).  A child that hangs (a lock inherited held) or fails, or a
 * round that never ends, fails the test. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum { PARKED_R = 100, PARKED_W = 101, GO_R = 102, GO_W = 103 };
enum { WORKERS = 4, ROUNDS = 30, SLOTS = 48 };

static atomic_int stop;
static atomic_long data_errors;

static uint64_t rnd(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

static size_t pick_size(uint64_t *s) {
  uint64_t r = rnd(s) % 100;
  if (r < 60) return 16 + rnd(s) % 4096;                  /* small */
  if (r < 90) return (64 << 10) + rnd(s) % (2 << 20);      /* large spans */
  return (4 << 20) + rnd(s) % (24 << 20);                  /* huge */
}

static void *worker(void *arg) {
  uint64_t seed = 0x9e3779b97f4a7c15ull * (uint64_t)(uintptr_t)arg + 1;
  unsigned char *p[SLOTS] = {0};
  size_t n[SLOTS] = {0};
  while (!atomic_load(&stop)) {
    size_t i = rnd(&seed) % SLOTS;
    if (p[i]) {
      unsigned char tag = (unsigned char)(i * 7 + 1);
      if (p[i][0] != tag || p[i][n[i] - 1] != tag || p[i][n[i] / 2] != tag) atomic_fetch_add(&data_errors, 1);
      if (rnd(&seed) % 4 == 0) {
        size_t m = pick_size(&seed);
        unsigned char *q = realloc(p[i], m);
        if (q) {
          p[i] = q;
          n[i] = m;
          memset(q, tag, m < 4096 ? m : 4096);
          q[m / 2] = q[m - 1] = tag;
          continue;
        }
      }
      free(p[i]);
      p[i] = NULL;
    } else {
      n[i] = pick_size(&seed);
      p[i] = malloc(n[i]);
      if (p[i] == NULL) continue;
      unsigned char tag = (unsigned char)(i * 7 + 1);
      memset(p[i], tag, n[i] < 4096 ? n[i] : 4096);
      p[i][n[i] / 2] = p[i][n[i] - 1] = tag;
    }
  }
  for (size_t i = 0; i < SLOTS; i++) free(p[i]);
  return NULL;
}

/* ---- the child of each fork -------------------------------------------------- */

typedef void *(*heap_new_fn)(const void *);
typedef void *(*heap_malloc_fn)(void *, size_t);
typedef void (*heap_destroy_fn)(void *);
static heap_new_fn heap_new;
static heap_malloc_fn heap_malloc;
static heap_destroy_fn heap_destroy;

static void *child_thread(void *arg) {
  for (int i = 0; i < 200; i++) free(malloc((size_t)(16 + i * 131)));
  void *big = malloc(3 << 20);
  free(big);
  return big ? arg : (void *)1;
}

static int child_work(void) {
  alarm(10);
  void *p[64];
  for (int i = 0; i < 64; i++)
    if ((p[i] = malloc((size_t)(16 + i * 40000))) == NULL) return 3;
  for (int i = 0; i < 64; i++) free(p[i]);
  void *huge = malloc(40 << 20);
  if (huge == NULL) return 4;
  free(huge);
  pthread_t t;
  void *ret = (void *)1;
  if (pthread_create(&t, NULL, child_thread, NULL) != 0 || pthread_join(t, &ret) != 0 || ret != NULL) return 5;
  struct { size_t struct_size; uint64_t byte_limit; const char *name; } o = {sizeof o, 0, "child"};
  void *h = heap_new(&o);
  if (h == NULL) return 6;
  for (int i = 0; i < 64; i++)
    if (heap_malloc(h, (size_t)(16 + i * 30000)) == NULL) return 7;
  heap_destroy(h);
  return 0;
}

/* ---- the rounds ---------------------------------------------------------------- */

static atomic_int forked;
static pid_t child;
static void *forker(void *arg) {
  (void)arg;
  pid_t pid = fork();
  if (pid == 0) _exit(child_work());
  child = pid;
  atomic_store(&forked, 1);
  return NULL;
}

static int outstanding; /* parks read and not yet answered */

/* Wait (at most ms) for a parked thread; 1 when one is. */
static int next_park(int ms) {
  struct pollfd pfd = {.fd = PARKED_R, .events = POLLIN};
  if (poll(&pfd, 1, ms) <= 0) return 0;
  char c;
  if (read(PARKED_R, &c, 1) != 1) return 0;
  outstanding++;
  return 1;
}

static void release_all(void) {
  for (; outstanding > 0; outstanding--)
    if (write(GO_W, "G", 1) != 1) return;
}

static int wait_child(pid_t pid, int ms) {
  for (int i = 0; i < ms; i++) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid)
      return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
    usleep(1000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  return 99;
}

static int run(void) {
  heap_new = (heap_new_fn)dlsym(RTLD_DEFAULT, "vam_heap_new");
  heap_malloc = (heap_malloc_fn)dlsym(RTLD_DEFAULT, "vam_heap_malloc");
  heap_destroy = (heap_destroy_fn)dlsym(RTLD_DEFAULT, "vam_heap_destroy");
  if (!heap_new || !heap_malloc || !heap_destroy) {
    fprintf(stderr, "vamalloc is not preloaded (no vam_heap_new)\n");
    return 1;
  }
  pthread_t w[WORKERS];
  for (long i = 0; i < WORKERS; i++) pthread_create(&w[i], NULL, worker, (void *)(i + 1));
  int failures = 0, rounds = 0, blocked = 0;
  for (; rounds < ROUNDS; rounds++) {
    if (!next_park(20000)) {
      fprintf(stderr, "round %d: no worker parked within 20 s\n", rounds);
      failures++;
      break;
    }
    pthread_t f;
    atomic_store(&forked, 0);
    pthread_create(&f, NULL, forker, NULL);
    /* fork_prepare goes through, or blocks on a lock the parked worker
     * holds (then the child must still work once it is released) */
    for (int i = 0; i < 300 && !atomic_load(&forked); i++) usleep(1000);
    if (!atomic_load(&forked)) blocked++;
    /* let everyone go until the fork is done (a worker released here may
     * park again: answer that too) */
    for (int i = 0; !atomic_load(&forked); i++) {
      release_all();
      next_park(10);
      if (i > 30000) {
        fprintf(stderr, "round %d: fork never completed\n", rounds);
        return 1;
      }
    }
    release_all();
    pthread_join(f, NULL);
    int rc = wait_child(child, 20000);
    if (rc != 0) {
      fprintf(stderr, "round %d: child %s (%d)\n", rounds,
              rc == 99 || rc == 100 + SIGALRM ? "hung: a lock was inherited held" : "failed", rc);
      failures++;
    }
  }
  atomic_store(&stop, 1);
  close(GO_W); /* parks from now on return at once */
  release_all();
  for (int i = 0; i < WORKERS; i++) {
    while (pthread_tryjoin_np(w[i], NULL) == EBUSY) next_park(10);
  }
  fprintf(stderr, "%d rounds, %d forks blocked in fork_prepare by a parked worker, %d failures, %ld data errors\n",
          rounds, blocked, failures, atomic_load(&data_errors));
  return failures || atomic_load(&data_errors) ? 1 : 0;
}

int main(int argc, char **argv) {
  (void)argc;
  if (getenv("FORK_PRELOAD_RUN") == NULL) {
    int a[2], b[2];
    if (pipe(a) || pipe(b) || dup2(a[0], PARKED_R) < 0 || dup2(a[1], PARKED_W) < 0 ||
        dup2(b[0], GO_R) < 0 || dup2(b[1], GO_W) < 0)
      return 1;
    close(a[0]), close(a[1]), close(b[0]), close(b[1]);
    setenv("VAMALLOC_FAULTS",
           "mprotect=park:every=3:out=101:in=102,mmap=park:every=4:out=101:in=102,"
           "munmap=park:every=4:out=101:in=102,madvise=park:every=5:out=101:in=102",
           1);
    setenv("FORK_PRELOAD_RUN", "1", 1);
    execv("/proc/self/exe", argv);
    perror("execv");
    return 1;
  }
  return run();
}
