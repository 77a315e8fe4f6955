/* fork with each allocator lock provably held (init.c's atfork handlers).
 *
 * For every lock L a holder thread is parked inside the allocator with L
 * taken: the OS-layer park hook (os.h, test builds only) stops it at the
 * first kernel call it makes while L is held (the hook sees L held with
 * trylock; nothing else runs then), and the runner checks again from
 * outside that L is busy.  A forker thread then forks.  Two things must
 * hold, and both are checked:
 *  - fork_prepare waits for exactly L: the forker is seen blocked in a
 *    futex wait on L's address (/proc/self/task/TID/syscall), never past it
 *    (a fork that completes while L is held means L is not in the
 *    handlers);
 *  - once the holder is released and the fork completes, the child works:
 *    malloc and free of every size class kind, a thread, a first-class heap,
 *    a statistics report, a page-API reservation, malloc(0), all under
 *    alarm(10).  A hang is the failure: the runner kills what does not end.
 *
 * Locks without a kernel call under them (the huge pool, heap.c's pool and
 * shared-heap locks, userheap.c's list lock: leaves that are held for a
 * few loads and stores) cannot be parked on from the OS layer; for those
 * the holder thread takes the lock itself, found by name (the static ones
 * through the executable's symbol table), which is the same state as far
 * as fork is concerned.  The statistics lock has no kernel call under it
 * either, but it nests the chunk lock: a report is parked inside the
 * allocator holding it, waiting for the chunk lock a parked holder has.
 *
 * argv[1], when given, runs only the scenarios whose names contain it
 * (with a leading '!', all but those). */
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "internal.h"

static pid_t tid(void) { return (pid_t)syscall(SYS_gettid); }
static void sleep_ms(unsigned ms) { usleep(ms * 1000u); }

/* ---- static locks, by name: local_object (local_object.h) ------------------ */
#include "local_object.h"

/* ---- the park hook ------------------------------------------------------- */

static vam_atomic(pid_t) park_tid;             /* the thread that parks (once) */
static _Atomic(pthread_mutex_t *) park_lock;   /* at a kernel call with this held */
static vam_atomic(int) parked, released, park_kind;

static void park_hook(vam_os_call_t kind) {
  if (vam_load_acquire(&park_tid) != tid()) return;
  pthread_mutex_t *l = atomic_load(&park_lock);
  if (pthread_mutex_trylock(l) == 0) { /* not held here: not the call we want */
    pthread_mutex_unlock(l);
    return;
  }
  vam_store_relaxed(&park_tid, 0);
  vam_store_relaxed(&park_kind, (int)kind);
  vam_store_release(&parked, 1);
  while (!vam_load_acquire(&released)) sleep_ms(1);
}

/* ---- what the child does -------------------------------------------------- */

static void *child_thread(void *arg) {
  (void)arg;
  for (int i = 0; i < 100; i++) vam_free(vam_malloc((size_t)(16 + i * 977)));
  void *big = vam_malloc(3 << 20);
  vam_free(big);
  return big ? arg : (void *)1;
}

static int child_work(void) {
  alarm(10); /* a lock inherited held hangs us: SIGALRM */
  atomic_store(&vam__os_park_hook, NULL);
  void *p[64];
  for (int i = 0; i < 64; i++)
    if ((p[i] = vam_malloc((size_t)(16 + i * 3000))) == NULL) return 3; /* small and large */
  for (int i = 0; i < 64; i++) vam_free(p[i]);
  void *huge = vam_malloc(40 << 20);
  if (huge == NULL) return 4;
  vam_free(huge);
  void *zero = vam_malloc(0);
  if (zero == NULL) return 5;
  vam_free(zero);
  pthread_t t;
  void *ret = (void *)1;
  if (pthread_create(&t, NULL, child_thread, NULL) != 0 || pthread_join(t, &ret) != 0 || ret != NULL)
    return 6;
  vam_heap_options o = {.struct_size = sizeof o, .byte_limit = 0, .name = "child"};
  vam_heap_t *h = vam_heap_new(&o);
  if (h == NULL) return 7;
  for (int i = 0; i < 64; i++)
    if (vam_heap_malloc(h, (size_t)(16 + i * 5000)) == NULL) return 8;
  if (vam_heap_malloc(h, 40 << 20) == NULL) return 8;
  vam_heap_destroy(h);
  vam_stats_t st;
  if (vam_stats_get(&st, sizeof st) != sizeof st) return 9;
  void *pg = vam_pages_reserve(1 << 20, 0, 0);
  if (pg == NULL || vam_pages_release(pg, 1 << 20) != 0) return 10;
  vam_collect(true); /* purge, cached chunks and huge regions: chunk and pool locks */
  vam__chunk_release_cached();
  return 0;
}

/* ---- threads of a scenario -------------------------------------------------- */

/* The futex a thread is blocked on, or 0 (not in a futex wait); -1 when
 * /proc cannot tell. */
static long blocked_on(pid_t t) {
  char path[64], buf[256];
  snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)t);
  int fd = open(path, O_RDONLY);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = 0;
  char *end;
  long nr = strtol(buf, &end, 10);
  if (end == buf) return -1;
  if (nr != SYS_futex) return 0;
  return (long)strtoul(end, NULL, 16);
}

typedef struct scenario {
  const char *name;
  pthread_mutex_t *(*lock)(void); /* the lock fork_prepare must wait for */
  void (*setup)(void);            /* in the runner, before the holder starts */
  void (*path)(void);             /* the holder's path through the allocator */
  bool simulated;                 /* a leaf lock: the holder takes it itself */
  bool needs_va_bits;             /* only with VAMALLOC_VA_BITS (reserve_low) */
} scenario_t;

static const scenario_t *cur;
static vam_atomic(pid_t) holder_tid;
static vam_atomic(int) holder_done;

static void *holder(void *arg) {
  (void)arg;
  vam_store_release(&holder_tid, tid());
  if (cur->simulated) {
    pthread_mutex_t *l = cur->lock();
    pthread_mutex_lock(l);
    vam_store_release(&parked, 1);
    while (!vam_load_acquire(&released)) sleep_ms(1);
    pthread_mutex_unlock(l);
  } else {
    /* the statistics scenario parks its holder on the chunk lock */
    atomic_store(&park_lock, cur->lock() == &vam__stats_lock ? &vam__chunk_lock : cur->lock());
    vam_store_release(&park_tid, tid());
    cur->path();
  }
  vam_store_release(&holder_done, 1);
  return NULL;
}

static vam_atomic(pid_t) forker_tid;
static vam_atomic(int) forked;
static pid_t child_pid;
static void *forker(void *arg) {
  (void)arg;
  vam_store_release(&forker_tid, tid());
  pid_t pid = fork();
  if (pid == 0) _exit(child_work());
  child_pid = pid;
  vam_store_release(&forked, 1);
  return NULL;
}

/* The statistics report, parked inside compute_totals. */
static vam_atomic(pid_t) reporter_tid;
static void *reporter(void *arg) {
  (void)arg;
  vam_store_release(&reporter_tid, tid());
  vam_stats_t st;
  vam_stats_get(&st, sizeof st);
  return NULL;
}

static int wait_flag(vam_atomic(int) *flag, unsigned ms) {
  for (unsigned i = 0; i < ms && !vam_load_acquire(flag); i++) sleep_ms(1);
  return vam_load_acquire(flag);
}

/* Wait (at most ms) until thread t is blocked on the futex of lock l. */
static long wait_blocked_on(pid_t t, pthread_mutex_t *l, unsigned ms, vam_atomic(int) *done) {
  long last = 0;
  for (unsigned i = 0; i < ms; i++) {
    last = blocked_on(t);
    if (last == (long)(uintptr_t)l) return last;
    if (done && vam_load_acquire(done)) return -2; /* forked (and maybe gone) */
    if (last < 0) return last;
    sleep_ms(1);
  }
  return last;
}

/* Exit codes of a runner (and of its child: 3-10, 100+signal). */
enum {
  R_NO_PARK = 20,  /* the path made no kernel call with the lock held */
  R_NOT_HELD = 21, /* the lock was free while the holder was parked */
  R_FORKED = 22,   /* fork went through with the lock held: not in the handlers */
  R_OTHER = 23,    /* fork_prepare waits on another lock than this one */
  R_NO_PROC = 24,  /* /proc cannot show futex waits */
  R_CHILD_HUNG = 25,
  R_REPORTER = 26, /* the report did not park holding the statistics lock */
};

static int wait_child(pid_t pid, unsigned ms) {
  for (unsigned i = 0; i < ms; i++) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid)
      return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
    sleep_ms(1);
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  return R_CHILD_HUNG;
}

static pthread_mutex_t *stats_lock(void) { return &vam__stats_lock; }
static pthread_mutex_t *chunk_lock(void) { return &vam__chunk_lock; }
static int run_scenario(const scenario_t *s) {
  cur = s;
  atomic_store(&vam__os_park_hook, park_hook);
  if (s->setup) s->setup();
  pthread_mutex_t *l = s->lock();
  bool stats = l == &vam__stats_lock; /* the report parks holding it, behind a chunk holder */
  pthread_mutex_t *held = stats ? &vam__chunk_lock : l;
  pthread_t h, r, f;
  pthread_create(&h, NULL, holder, NULL);
  if (!wait_flag(&parked, 10000)) {
    wait_flag(&holder_done, 10000);
    return R_NO_PARK;
  }
  if (pthread_mutex_trylock(held) != EBUSY) return R_NOT_HELD;
  fprintf(stderr, "  %s: holder parked%s%s\n", s->name, s->simulated ? " (took the lock itself)" : " in ",
          s->simulated ? "" : vam__os_call_names[vam_load_relaxed(&park_kind)]);
  if (stats) {
    pthread_create(&r, NULL, reporter, NULL);
    while (!vam_load_acquire(&reporter_tid)) sleep_ms(1);
    long w = wait_blocked_on(vam_load_acquire(&reporter_tid), &vam__chunk_lock, 10000, NULL);
    if (w < 0) return R_NO_PROC;
    if (w != (long)(uintptr_t)&vam__chunk_lock || pthread_mutex_trylock(&vam__stats_lock) != EBUSY)
      return R_REPORTER;
    fprintf(stderr, "  %s: a report is parked holding it, waiting for the chunk lock\n", s->name);
  }
  pthread_create(&f, NULL, forker, NULL);
  while (!vam_load_acquire(&forker_tid)) sleep_ms(1);
  long w = wait_blocked_on(vam_load_acquire(&forker_tid), l, 10000, &forked);
  int rc = 0;
  if (w == -2) rc = R_FORKED;
  else if (w == -1) rc = R_NO_PROC;
  else if (w != (long)(uintptr_t)l) rc = R_OTHER;
  else fprintf(stderr, "  %s: fork_prepare waits for it\n", s->name);
  vam_store_release(&released, 1);
  pthread_join(h, NULL);
  if (stats) pthread_join(r, NULL);
  pthread_join(f, NULL);
  int child = wait_child(child_pid, 20000);
  if (child != 0) {
    fprintf(stderr, "  %s: child %s (%d)\n", s->name,
            child == 100 + SIGALRM || child == R_CHILD_HUNG ? "hung: a lock was inherited held" : "failed",
            child);
    return rc ? rc : child;
  }
  return rc;
}

/* ---- the locks ------------------------------------------------------------- */

/* chunk: a cached empty chunk is unmapped under the chunk lock (the
 * out-of-memory path's vam__chunk_release_cached). */
static void setup_empty_chunks(void) {
  void *p[8];
  for (int i = 0; i < 8; i++) p[i] = vam_malloc(VAM_LARGE_MAX);
  for (int i = 0; i < 8; i++) vam_free(p[i]);
  vam__heap_trim_own(); /* the thread's span cache too */
}
static void path_chunk(void) { vam__chunk_release_cached(); }

/* meta: an object larger than what is left of the region takes a new one. */
static void path_meta(void) { vam__meta_alloc(128 << 10); }

/* map: a leaf for a range nobody has mapped is metadata, and the metadata
 * region is exhausted first, so the leaf needs a reservation. */
#define FAR_ADDR ((uintptr_t)1 << 45)
static void setup_map(void) { vam__meta_alloc(128 << 10); /* exactly one region: nothing left */ }
static void path_map(void) {
  vam__chunkmap_set(FAR_ADDR, VAM_MAP_CHUNK);
  vam__chunkmap_set(FAR_ADDR, VAM_MAP_NONE);
}

/* hint: a huge region is reserved under no lock but the VA-bits hint lock. */
static void path_hint(void) { vam_free(vam_malloc(48 << 20)); }

/* page registry: the first page-API reservation grows the registry (a
 * reservation under the registry lock). */
static void path_pages(void) {
  void *p = vam_pages_reserve(1 << 20, 0, 0);
  if (p) vam_pages_release(p, 1 << 20);
}

/* a first-class heap's lock: a huge block is reserved under it. */
static vam_heap_t *uheap;
static void setup_uheap(void) {
  vam_heap_options o = {.struct_size = sizeof o, .name = "held"};
  uheap = vam_heap_new(&o);
}
/* (before setup_uheap, in main's check: any non-NULL stand-in; UBSan
 * rightly rejects &uheap->lock of a NULL uheap) */
static pthread_mutex_t *uheap_lock(void) {
  static pthread_mutex_t not_yet;
  return uheap ? &uheap->lock : &not_yet;
}
static void path_uheap(void) { vam_free(vam_heap_malloc(uheap, 48 << 20)); }

/* statistics: the holder parks in the chunk path; a report then parks
 * inside compute_totals, holding the statistics lock (run_scenario). */

static pthread_mutex_t *huge_lock(void) { return &vam__huge_cache_lock; }
static pthread_mutex_t *map_lock(void) { return &vam__map_lock; }
static pthread_mutex_t *meta_lock(void) { return &vam__meta_lock; }
static pthread_mutex_t *hint_lock(void) { return &vam__hint_lock; }
static pthread_mutex_t *pages_lock(void) { return &vam__pages_lock; }
static pthread_mutex_t *heap_pool_lock(void) { return local_object("heap.c", "pool_lock"); }
static pthread_mutex_t *shared_lock(void) { return local_object("heap.c", "shared_lock"); }
static pthread_mutex_t *list_lock(void) { return local_object("userheap.c", "list_lock"); }

#if VAM_SECURE_BUILD
/* secure build: the first malloc(0) reserves its PROT_NONE range under
 * secure.c's lock (static there until it is named vam__zero_lock). */
static pthread_mutex_t *zero_lock(void) {
  pthread_mutex_t *l = local_object("secure.c", "zero_lock");
  return l ? l : local_object(NULL, "vam__zero_lock");
}
static void path_zero(void) { vam_free(vam_malloc(0)); }
#endif

static const scenario_t scenarios[] = {
    {"chunk", chunk_lock, setup_empty_chunks, path_chunk, false, false},
    {"meta", meta_lock, NULL, path_meta, false, false},
    {"chunkmap", map_lock, setup_map, path_map, false, false},
    {"hint", hint_lock, NULL, path_hint, false, true},
    {"pages", pages_lock, NULL, path_pages, false, false},
    {"userheap", uheap_lock, setup_uheap, path_uheap, false, false},
    {"stats", stats_lock, setup_empty_chunks, path_chunk, false, false},
    {"huge_pool", huge_lock, NULL, NULL, true, false},
    {"heap_pool", heap_pool_lock, NULL, NULL, true, false},
    {"shared_heap", shared_lock, NULL, NULL, true, false},
    {"userheap_list", list_lock, NULL, NULL, true, false},
#if VAM_SECURE_BUILD
    {"malloc0", zero_lock, NULL, path_zero, false, false},
#endif
};

static const char *why(int rc) {
  switch (rc) {
    case R_NO_PARK: return "setup: the path made no kernel call with the lock held";
    case R_NOT_HELD: return "setup: the lock was free while the holder was parked";
    case R_FORKED: return "fork went through while the lock was held: it is not in the atfork handlers";
    case R_OTHER: return "fork_prepare blocked on another lock first: this one is not in the handlers (or out of order)";
    case R_NO_PROC: return "/proc/self/task/*/syscall is unreadable";
    case R_CHILD_HUNG: return "the child hung";
    case R_REPORTER: return "setup: the report did not park holding the statistics lock";
    case -1: return "the runner hung (deadlock in the parent)";
    default: return rc >= 100 ? "the child died on a signal (SIGALRM: hung)" : "the child's allocator calls failed";
  }
}

int main(int argc, char **argv) {
  vam__ensure_init();
  vam_free(vam_malloc(1)); /* a thread heap, so the runners start warm */
  bool va_bits = vam__options.va_bits != 0;
  int failed = 0, ran = 0;
  for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++) {
    const scenario_t *s = &scenarios[i];
    if (argc > 1 && (argv[1][0] == '!' ? strstr(s->name, argv[1] + 1) != NULL
                                       : strstr(s->name, argv[1]) == NULL))
      continue;
    if (s->needs_va_bits && !va_bits) {
      fprintf(stderr, "%s: skipped (needs VAMALLOC_VA_BITS: the hint lock is only taken then)\n", s->name);
      continue;
    }
    if (s->lock() == NULL) {
      fprintf(stderr, "%s: FAIL: lock not found in the symbol table\n", s->name);
      failed++;
      continue;
    }
    ran++;
    /* Each scenario in a runner process: a deadlock fails it on a timeout. */
    pid_t pid = fork();
    if (pid == 0) {
      alarm(60);
      _exit(run_scenario(s));
    }
    int status = 0;
    waitpid(pid, &status, 0);
    int rc = WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status) == SIGALRM ? -1 : 100 + WTERMSIG(status);
    if (rc == 0) {
      fprintf(stderr, "%s: ok\n", s->name);
    } else {
      fprintf(stderr, "%s: FAIL: %s (%d)\n", s->name, why(rc), rc);
      failed++;
    }
  }
  if (ran == 0 && failed == 0) return 77;
  return failed ? 1 : 0;
}
