/* The page API (pages.c): reserve, commit, decommit, release, their
 * arguments, the VA budget, DONTDUMP, and how each call degrades and
 * recovers when the kernel says no (through the OS layer's fault hook).
 *
 * meson runs this twice: lazy commit (VAMALLOC_COMMIT=lazy: decommit is
 * MADV_DONTNEED then PROT_NONE) and strict (a fresh PROT_NONE mapping), with
 * VAMALLOC_VA_BUDGET=1G and a short retry delay. */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include "internal.h"

static size_t PG;

static uint64_t stat(vam_atomic(uint64_t) *c) { return vam_load_relaxed(c); }
static int64_t gauge(vam_gauge_t *g) { return vam_load_relaxed(&g->current); }
static void faults(const char *spec) { assert_int_equal(vam__os_fault_spec(spec, true), 0); }

/* What happens when a child process touches p: 0 when it could, else the
 * signal that killed it.  A child, because the fault must really happen. */
static int touch_in_child(volatile unsigned char *p, bool write) {
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    struct rlimit none = {0, 0};
    setrlimit(RLIMIT_CORE, &none);
    signal(SIGSEGV, SIG_DFL); /* cmocka catches it otherwise */
    signal(SIGBUS, SIG_DFL);
    if (write) p[0] = 1;
    else (void)p[0];
    _exit(0);
  }
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  if (WIFSIGNALED(status)) return WTERMSIG(status);
  assert_true(WIFEXITED(status));
  return WEXITSTATUS(status) == 0 ? 0 : -1;
}

static bool all_bytes(const unsigned char *p, size_t n, unsigned char v) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != v) return false;
  return true;
}

static int setup(void **state) {
  (void)state;
  PG = vam_page_size();
  /* The registry of reservations maps its first page on first use; take
   * that out of the byte counts the tests compare. */
  void *p = vam_pages_reserve(PG, 0, 0);
  assert_non_null(p);
  assert_int_equal(vam_pages_release(p, PG), 0);
  return 0;
}

static void test_page_size(void **state) {
  (void)state;
  assert_int_equal(vam_page_size(), (size_t)sysconf(_SC_PAGESIZE));
  assert_true(vam_is_pow2(vam_page_size()));
  /* the environment meson gives this test reached the options */
  assert_int_equal(vam__va_budget(), (uint64_t)1 << 30);
  assert_int_equal(vam__os_retry_delay_us, 100);
}

/* The whole life of a range, and the zero guarantees. */
static void test_lifecycle(void **state) {
  (void)state;
  int64_t res0 = gauge(&vam__stats.pages_reserved), all0 = gauge(&vam__stats.reserved_bytes);
  uint64_t n0 = stat(&vam__stats.pages_reserves);
  unsigned char *p = vam_pages_reserve(16 * PG, 0, 0);
  assert_non_null(p);
  assert_int_equal((uintptr_t)p % PG, 0);
  assert_int_equal(gauge(&vam__stats.pages_reserved) - res0, (int64_t)(16 * PG));
  assert_int_equal(gauge(&vam__stats.reserved_bytes) - all0, (int64_t)(16 * PG));
  assert_int_equal(stat(&vam__stats.pages_reserves) - n0, 1);

  assert_int_equal(vam_pages_commit(p, 8 * PG), 0);
  assert_true(all_bytes(p, 8 * PG, 0)); /* first commit reads zero */
  memset(p, 0xab, 8 * PG);
  /* decommit pages 2..4, then bring them back: zero there, data elsewhere */
  assert_int_equal(vam_pages_decommit(p + 2 * PG, 3 * PG, 0), 0);
  assert_int_equal(vam_pages_commit(p + 2 * PG, 3 * PG), 0);
  assert_true(all_bytes(p + 2 * PG, 3 * PG, 0));
  assert_true(all_bytes(p, 2 * PG, 0xab));
  assert_true(all_bytes(p + 5 * PG, 3 * PG, 0xab));
  /* committing committed pages keeps their contents */
  assert_int_equal(vam_pages_commit(p, 8 * PG), 0);
  assert_true(all_bytes(p, 2 * PG, 0xab));
  /* the rest of the reservation was never committed: first commit zero */
  assert_int_equal(vam_pages_commit(p + 8 * PG, 8 * PG), 0);
  assert_true(all_bytes(p + 8 * PG, 8 * PG, 0));

  assert_int_equal(vam_pages_release(p, 16 * PG), 0);
  assert_int_equal(gauge(&vam__stats.pages_reserved), res0);
  assert_int_equal(gauge(&vam__stats.reserved_bytes), all0);
  /* released: a second release is an unknown range */
  assert_int_equal(vam_pages_release(p, 16 * PG), EINVAL);
}

/* Reserved and decommitted pages fault; committed ones do not. */
static void test_uncommitted_faults(void **state) {
  (void)state;
  unsigned char *p = vam_pages_reserve(4 * PG, 0, 0);
  assert_non_null(p);
  assert_int_equal(touch_in_child(p, false), SIGSEGV);
  assert_int_equal(touch_in_child(p + 3 * PG, true), SIGSEGV);
  assert_int_equal(vam_pages_commit(p, 2 * PG), 0);
  assert_int_equal(touch_in_child(p, true), 0);
  assert_int_equal(touch_in_child(p + PG, false), 0);
  assert_int_equal(touch_in_child(p + 2 * PG, false), SIGSEGV); /* not committed */
  assert_int_equal(vam_pages_decommit(p, 2 * PG, 0), 0);
  assert_int_equal(touch_in_child(p, false), SIGSEGV);
  assert_int_equal(vam_pages_release(p, 4 * PG), 0);
}

static void test_reserve_committed_and_aligned(void **state) {
  (void)state;
  size_t align = (size_t)2 << 20;
  unsigned char *p = vam_pages_reserve(3 * PG, align, VAM_PAGES_COMMIT);
  assert_non_null(p);
  assert_int_equal((uintptr_t)p % align, 0);
  assert_true(all_bytes(p, 3 * PG, 0));
  memset(p, 7, 3 * PG); /* usable at once */
  assert_int_equal(touch_in_child(p + 2 * PG, true), 0);
  assert_int_equal(vam_pages_decommit(p, 3 * PG, 0), 0);
  assert_int_equal(touch_in_child(p, false), SIGSEGV); /* decommitted like any other */
  assert_int_equal(vam_pages_commit(p, 3 * PG), 0);
  assert_true(all_bytes(p, 3 * PG, 0));
  assert_int_equal(vam_pages_release(p, 3 * PG), 0);
}

static void expect_reserve_einval(size_t size, size_t align, unsigned flags) {
  errno = 0;
  assert_null(vam_pages_reserve(size, align, flags));
  assert_int_equal(errno, EINVAL);
}

/* Every malformed call is EINVAL and changes nothing. */
static void test_bad_arguments(void **state) {
  (void)state;
  uint64_t e0 = stat(&vam__stats.pages_einval);
  int64_t res0 = gauge(&vam__stats.pages_reserved);
  expect_reserve_einval(0, 0, 0);
  expect_reserve_einval(PG + 1, 0, 0);
  expect_reserve_einval(PG / 2, 0, 0);
  expect_reserve_einval(PG, 3 * PG, 0);  /* not a power of two */
  expect_reserve_einval(PG, 12345, 0);
  expect_reserve_einval(PG, 0, 1u << 7); /* unknown flag */

  unsigned char *p = vam_pages_reserve(4 * PG, 0, 0);
  assert_non_null(p);
  /* misaligned address or size, zero size, wrap-around */
  assert_int_equal(vam_pages_commit(NULL, PG), EINVAL);
  assert_int_equal(vam_pages_commit(p + 1, PG), EINVAL);
  assert_int_equal(vam_pages_commit(p, PG + 1), EINVAL);
  assert_int_equal(vam_pages_commit(p, 0), EINVAL);
  assert_int_equal(vam_pages_commit((void *)(UINTPTR_MAX & ~(uintptr_t)(PG - 1)), 2 * PG), EINVAL);
  assert_int_equal(vam_pages_decommit(p + 1, PG, 0), EINVAL);
  assert_int_equal(vam_pages_decommit(p, PG, VAM_PAGES_COMMIT), EINVAL); /* not a decommit flag */
  assert_int_equal(vam_pages_release(p, 3), EINVAL);
  /* ranges that are not (wholly) a page-API reservation */
  assert_int_equal(vam_pages_commit(p, 5 * PG), EINVAL);      /* runs past the end */
  assert_int_equal(vam_pages_commit(p - PG, 2 * PG), EINVAL); /* starts before */
  unsigned char *heap = vam_malloc(1 << 20);                  /* malloc's memory is not */
  uintptr_t hp = ((uintptr_t)heap + PG - 1) & ~(uintptr_t)(PG - 1);
  assert_int_equal(vam_pages_decommit((void *)hp, PG, 0), EINVAL);
  assert_int_equal(vam_pages_release((void *)hp, PG), EINVAL);
  heap[0] = 1; /* still mapped and ours */
  vam_free(heap);
  char on_stack[64];
  uintptr_t sp = (uintptr_t)on_stack & ~(uintptr_t)(PG - 1);
  assert_int_equal(vam_pages_release((void *)sp, PG), EINVAL);
  assert_int_equal(stat(&vam__stats.pages_einval) - e0, 19); /* each call above */
  /* nothing changed: the reservation still works */
  assert_int_equal(vam_pages_commit(p, 4 * PG), 0);
  p[4 * PG - 1] = 1;
  assert_int_equal(vam_pages_release(p, 4 * PG), 0);
  assert_int_equal(gauge(&vam__stats.pages_reserved), res0);
}

/* Any page-aligned part may go back; the rest stays a reservation. */
static void test_partial_release(void **state) {
  (void)state;
  int64_t res0 = gauge(&vam__stats.pages_reserved), n0 = gauge(&vam__stats.pages_reservations);
  int64_t maps0 = gauge(&vam__stats.mappings);
  unsigned char *p = vam_pages_reserve(8 * PG, 0, 0);
  assert_non_null(p);
  assert_int_equal(vam_pages_commit(p, 8 * PG), 0);
  memset(p, 0x11, 8 * PG);
  assert_int_equal(vam_pages_release(p + 3 * PG, 2 * PG), 0); /* a hole: two ranges */
  assert_int_equal(gauge(&vam__stats.pages_reservations) - n0, 2);
  assert_int_equal(gauge(&vam__stats.mappings) - maps0, 2);
  assert_int_equal(gauge(&vam__stats.pages_reserved) - res0, (int64_t)(6 * PG));
  assert_int_equal(touch_in_child(p + 3 * PG, false), SIGSEGV); /* unmapped */
  assert_int_equal(vam_pages_commit(p + 3 * PG, PG), EINVAL);
  assert_int_equal(vam_pages_commit(p + 2 * PG, 2 * PG), EINVAL); /* spans the hole */
  assert_true(all_bytes(p, 3 * PG, 0x11));
  assert_true(all_bytes(p + 5 * PG, 3 * PG, 0x11));
  assert_int_equal(vam_pages_release(p + 7 * PG, PG), 0); /* a tail */
  assert_int_equal(vam_pages_release(p, PG), 0);          /* a head */
  assert_int_equal(vam_pages_decommit(p + PG, 2 * PG, 0), 0);
  assert_int_equal(vam_pages_release(p + PG, 2 * PG), 0);
  assert_int_equal(vam_pages_release(p + 5 * PG, 2 * PG), 0);
  assert_int_equal(gauge(&vam__stats.pages_reservations), n0);
  assert_int_equal(gauge(&vam__stats.pages_reserved), res0);
  assert_int_equal(gauge(&vam__stats.mappings), maps0);
}

/* Reservations count against VAMALLOC_VA_BUDGET (1 GiB here). */
static void test_budget(void **state) {
  (void)state;
  uint64_t budget = vam__va_budget();
  uint64_t now = (uint64_t)gauge(&vam__stats.reserved_bytes);
  uint64_t left = budget - now;
  size_t a_size = (size_t)(left / 2) & ~(PG - 1);
  size_t b_size = (size_t)(left * 3 / 4) & ~(PG - 1);
  uint64_t refusals0 = stat(&vam__stats.budget_refusals);
  uint64_t mmaps0 = stat(&vam__os_counters[VAM_OS_mmap].calls);
  errno = 0;
  assert_null(vam_pages_reserve((size_t)left + PG, 0, 0));
  assert_int_equal(errno, ENOMEM);
  assert_int_equal(stat(&vam__stats.budget_refusals) - refusals0, 1);
  assert_int_equal(stat(&vam__os_counters[VAM_OS_mmap].calls), mmaps0); /* refused before the kernel */
  void *a = vam_pages_reserve(a_size, 0, 0);
  assert_non_null(a);
  errno = 0;
  assert_null(vam_pages_reserve(b_size, 0, 0)); /* a holds the room */
  assert_int_equal(errno, ENOMEM);
  assert_int_equal(vam_health(NULL), VAM_HEALTH_DEGRADED);
  assert_int_equal(vam_pages_release(a, a_size), 0);
  void *b = vam_pages_reserve(b_size, 0, 0); /* the room is back */
  assert_non_null(b);
  assert_int_equal(vam_health(NULL), VAM_HEALTH_OK);
  assert_int_equal(vam_pages_release(b, b_size), 0);
}

/* The VmFlags of the mapping holding addr, from /proc/self/smaps. */
static bool has_vmflag(const void *addr, const char *flag) {
  FILE *f = fopen("/proc/self/smaps", "r");
  assert_non_null(f);
  char line[1024];
  bool inside = false, found = false, seen = false;
  while (fgets(line, sizeof line, f)) {
    unsigned long lo, hi;
    if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
      inside = (uintptr_t)addr >= lo && (uintptr_t)addr < hi;
    } else if (inside && strncmp(line, "VmFlags:", 8) == 0) {
      seen = true;
      for (char *t = strtok(line + 8, " \n"); t; t = strtok(NULL, " \n"))
        if (strcmp(t, flag) == 0) found = true;
      inside = false;
    }
  }
  fclose(f);
  assert_true(seen);
  return found;
}

static void test_dontdump(void **state) {
  (void)state;
  uint64_t dd0 = stat(&vam__stats.pages_dontdump_failures);
  unsigned char *p = vam_pages_reserve(4 * PG, 0, VAM_PAGES_DONTDUMP);
  assert_non_null(p);
  assert_true(has_vmflag(p, "dd"));
  assert_int_equal(vam_pages_commit(p, 2 * PG), 0);
  assert_true(has_vmflag(p, "dd")); /* commit does not undo it */
  assert_int_equal(vam_pages_decommit(p, 2 * PG, 0), 0);
  assert_true(has_vmflag(p, "dd")); /* nor does decommit (strict: marked again) */
  assert_int_equal(vam_pages_release(p, 4 * PG), 0);

  unsigned char *q = vam_pages_reserve(4 * PG, 0, 0);
  assert_non_null(q);
  assert_false(has_vmflag(q, "dd"));
  assert_int_equal(vam_pages_commit(q, 4 * PG), 0);
  memset(q, 3, 4 * PG);
  assert_int_equal(vam_pages_decommit(q + 2 * PG, 2 * PG, VAM_PAGES_DONTDUMP), 0);
  assert_true(has_vmflag(q + 2 * PG, "dd"));
  assert_false(has_vmflag(q, "dd")); /* only the decommitted part */
  assert_int_equal(vam_pages_commit(q + 2 * PG, 2 * PG), 0);
  assert_true(has_vmflag(q + 2 * PG, "dd"));
  /* a refused mark is ignored and counted: the decommit itself worked */
  /* lazy: DONTNEED passes and the mark fails; strict: the mark is the
   * only madvise */
  faults(vam__va_strict() ? "madvise=EINVAL:count=1" : "madvise=EINVAL:after=1:count=1");
  assert_int_equal(vam_pages_decommit(q, 2 * PG, VAM_PAGES_DONTDUMP), 0);
  faults("");
  assert_int_equal(stat(&vam__stats.pages_dontdump_failures) - dd0, 1);
  assert_false(has_vmflag(q, "dd"));
  assert_int_equal(vam_pages_release(q, 4 * PG), 0);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* madvise answers EAGAIN every time: decommit sleeps through the capped
 * retry, gives up with EAGAIN, the pages stay usable, health says
 * degraded; once the kernel cooperates, the same call works and health
 * comes back.  (Strict mode has no madvise in decommit: there the refusal
 * is the PROT_NONE mapping's, ENOMEM, one try.) */
static void test_decommit_refused(void **state) {
  (void)state;
  bool strict = vam__va_strict();
  unsigned char *p = vam_pages_reserve(4 * PG, 0, 0);
  assert_non_null(p);
  assert_int_equal(vam_pages_commit(p, 4 * PG), 0);
  memset(p, 0x5c, 4 * PG);
  assert_int_equal(vam_health(NULL), VAM_HEALTH_OK);
  vam_os_counters_t *mad = &vam__os_counters[VAM_OS_madvise];
  uint64_t retries0 = stat(&mad->retries), giveups0 = stat(&mad->giveups);
  uint64_t fail0 = stat(&vam__stats.pages_decommit_failures), all0 = stat(&vam__stats.decommit_failures);
  faults(strict ? "mmap=ENOMEM" : "madvise=EAGAIN");
  double t0 = now_s();
  int err = vam_pages_decommit(p, 4 * PG, 0);
  double took = now_s() - t0;
  assert_int_equal(err, strict ? ENOMEM : EAGAIN);
  if (!strict) {
    /* every retry was taken, with a real sleep each, and then it stopped */
    assert_int_equal(stat(&mad->retries) - retries0, vam__os_retry_max);
    assert_int_equal(stat(&mad->giveups) - giveups0, 1);
    assert_true(took >= vam__os_retry_max * vam__os_retry_delay_us * 1e-6);
    assert_true(took < 10.0);
  }
  assert_int_equal(stat(&vam__stats.pages_decommit_failures) - fail0, 1);
  assert_int_equal(stat(&vam__stats.decommit_failures) - all0, 1);
  vam_health_t h;
  assert_int_equal(vam_health(&h), VAM_HEALTH_DEGRADED);
  assert_int_equal(h.status, VAM_HEALTH_DEGRADED);
  assert_non_null(strstr(h.reason, "page-API decommit"));
  /* still committed: readable and writable, the data (old or zero) there */
  for (size_t i = 0; i < 4 * PG; i++) assert_true(p[i] == 0x5c || p[i] == 0);
  memset(p, 0x5d, 4 * PG);
  faults("");
  assert_int_equal(vam_pages_decommit(p, 4 * PG, 0), 0);
  assert_int_equal(vam_health(&h), VAM_HEALTH_OK);
  assert_string_equal(h.reason, "");
  assert_int_equal(vam_pages_commit(p, 4 * PG), 0);
  assert_true(all_bytes(p, 4 * PG, 0));
  assert_int_equal(vam_pages_release(p, 4 * PG), 0);
}

/* Lazy mode: DONTNEED worked but PROT_NONE was refused.  The decommit
 * reports the failure and the pages stay usable, now zero. */
static void test_decommit_protect_refused(void **state) {
  (void)state;
  if (vam__va_strict()) skip();
  unsigned char *p = vam_pages_reserve(2 * PG, 0, 0);
  assert_non_null(p);
  assert_int_equal(vam_pages_commit(p, 2 * PG), 0);
  memset(p, 0x77, 2 * PG);
  faults("mprotect=EAGAIN");
  assert_int_equal(vam_pages_decommit(p, 2 * PG, 0), EAGAIN);
  faults("");
  assert_int_equal(vam_health(NULL), VAM_HEALTH_DEGRADED);
  assert_true(all_bytes(p, 2 * PG, 0));
  memset(p, 1, 2 * PG);
  assert_int_equal(vam_pages_decommit(p, 2 * PG, 0), 0);
  assert_int_equal(vam_health(NULL), VAM_HEALTH_OK);
  assert_int_equal(vam_pages_release(p, 2 * PG), 0);
}

/* A refused commit leaves the range unusable and says so; it recovers. */
static void test_commit_refused(void **state) {
  (void)state;
  unsigned char *p = vam_pages_reserve(2 * PG, 0, 0);
  assert_non_null(p);
  uint64_t f0 = stat(&vam__stats.pages_commit_failures);
  faults("mprotect=ENOMEM");
  assert_int_equal(vam_pages_commit(p, 2 * PG), ENOMEM);
  faults("");
  assert_int_equal(stat(&vam__stats.pages_commit_failures) - f0, 1);
  vam_health_t h;
  assert_int_equal(vam_health(&h), VAM_HEALTH_DEGRADED);
  assert_non_null(strstr(h.reason, "commit"));
  assert_int_equal(touch_in_child(p, false), SIGSEGV);
  assert_int_equal(vam_pages_commit(p, 2 * PG), 0);
  assert_int_equal(vam_health(NULL), VAM_HEALTH_OK);
  p[0] = 1;
  assert_int_equal(vam_pages_release(p, 2 * PG), 0);
}

/* munmap refused: the range stays reserved and in the books. */
static void test_release_refused(void **state) {
  (void)state;
  int64_t res0 = gauge(&vam__stats.pages_reserved);
  unsigned char *p = vam_pages_reserve(4 * PG, 0, 0);
  assert_non_null(p);
  faults("munmap=ENOMEM");
  assert_int_equal(vam_pages_release(p + PG, PG), ENOMEM);
  assert_int_equal(vam_pages_release(p, 4 * PG), ENOMEM);
  faults("");
  assert_int_equal(vam_health(NULL), VAM_HEALTH_DEGRADED);
  assert_int_equal(gauge(&vam__stats.pages_reserved) - res0, (int64_t)(4 * PG));
  assert_int_equal(vam_pages_commit(p, 4 * PG), 0); /* still a whole reservation */
  p[4 * PG - 1] = 9;
  assert_int_equal(vam_pages_release(p, 4 * PG), 0);
  assert_int_equal(vam_health(NULL), VAM_HEALTH_OK);
  assert_int_equal(gauge(&vam__stats.pages_reserved), res0);
}

/* Many threads, many reservations: the registry stays consistent (every
 * range keeps its own data) and grows past its first page. */
#define THREADS 4
#define PER_THREAD 200
static void *worker(void *arg) {
  uintptr_t id = (uintptr_t)arg;
  unsigned char *mine[PER_THREAD];
  for (int i = 0; i < PER_THREAD; i++) {
    mine[i] = vam_pages_reserve(2 * PG, 0, 0);
    if (!mine[i] || vam_pages_commit(mine[i], 2 * PG) != 0) return (void *)1;
    memset(mine[i], (int)(id * 16 + (uintptr_t)i % 16), 2 * PG);
  }
  for (int i = 0; i < PER_THREAD; i++) {
    unsigned char v = (unsigned char)(id * 16 + (uintptr_t)i % 16);
    if (!all_bytes(mine[i], 2 * PG, v)) return (void *)2;
    if (i % 2 && vam_pages_decommit(mine[i] + PG, PG, 0) != 0) return (void *)3;
    if (vam_pages_release(mine[i], 2 * PG) != 0) return (void *)4;
  }
  return NULL;
}

static void test_threads(void **state) {
  (void)state;
  int64_t n0 = gauge(&vam__stats.pages_reservations);
  pthread_t t[THREADS];
  for (uintptr_t i = 0; i < THREADS; i++) assert_int_equal(pthread_create(&t[i], NULL, worker, (void *)i), 0);
  for (int i = 0; i < THREADS; i++) {
    void *r;
    assert_int_equal(pthread_join(t[i], &r), 0);
    assert_null(r);
  }
  assert_int_equal(gauge(&vam__stats.pages_reservations), n0);
}

/* A decommit racing a release of the same pages: the release (and whatever
 * maps the addresses next) waits for the decommit's kernel calls, so
 * PROT_NONE never lands on memory mapped there after the release.  The
 * allocator is linked statically, so its mprotect (lazy: the PROT_NONE
 * after MADV_DONTNEED) and mmap64 (strict: the PROT_NONE mapping over the
 * pages) come to the two below, which pause the decommit right before that
 * call while another thread releases the range and maps memory of its own
 * there. */
static unsigned char *race_at;     /* the range being decommitted */
static vam_atomic(int) race_go, race_done, race_paused;
static void race_pause(void *addr, int prot) {
  if (prot != PROT_NONE || addr != race_at || atomic_exchange(&race_paused, 1)) return;
  atomic_store(&race_go, 1);
  for (int i = 0; i < 300 && !atomic_load(&race_done); i++) usleep(1000);
}
int mprotect(void *addr, size_t len, int prot) {
  race_pause(addr, prot);
  return (int)syscall(SYS_mprotect, addr, len, prot);
}
void *mmap64(void *addr, size_t len, int prot, int flags, int fd, __off64_t off) {
  if (flags & MAP_FIXED) race_pause(addr, prot);
  return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

static void *release_and_reuse(void *arg) {
  size_t size = (size_t)(uintptr_t)arg;
  while (!atomic_load(&race_go)) usleep(100);
  void *p = race_at;
  if (vam_pages_release(p, size) != 0) return (void *)1;
  /* Someone else (another library, malloc's next chunk) maps there now. */
  unsigned char *q = mmap(p, size, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (q != p) return (void *)2;
  memset(q, 0x5a, size);
  atomic_store(&race_done, 1);
  return NULL;
}

static void test_decommit_races_release(void **state) {
  (void)state;
  size_t size = 4 * PG;
  for (int round = 0; round < 3; round++) {
    unsigned char *p = vam_pages_reserve(size, 0, VAM_PAGES_COMMIT);
    assert_non_null(p);
    memset(p, 1, size);
    race_at = p;
    atomic_store(&race_go, 0);
    atomic_store(&race_done, 0);
    atomic_store(&race_paused, 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, release_and_reuse, (void *)(uintptr_t)size), 0);
    int err = vam_pages_decommit(p, size, 0);
    void *r;
    assert_int_equal(pthread_join(t, &r), 0);
    race_at = NULL;
    assert_true(atomic_load(&race_paused)); /* the decommit reached its PROT_NONE */
    assert_int_equal(err, 0);
    assert_null(r);
    /* The new owner's memory is untouched and accessible. */
    assert_int_equal(touch_in_child(p, true), 0);
    assert_true(all_bytes(p, size, 0x5a));
    munmap(p, size);
  }
}

/* The registry's lock survives a fork taken while another thread uses it. */
static void *churn(void *arg) {
  volatile bool *stop = arg;
  while (!*stop) {
    void *p = vam_pages_reserve(PG, 0, 0);
    if (p) vam_pages_release(p, PG);
  }
  return NULL;
}

static void test_fork_while_busy(void **state) {
  (void)state;
  volatile bool stop = false;
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, churn, (void *)&stop), 0);
  for (int i = 0; i < 20; i++) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      void *p = vam_pages_reserve(PG, 0, VAM_PAGES_COMMIT);
      _exit(p && vam_pages_release(p, PG) == 0 ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  stop = true;
  pthread_join(t, NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_page_size),
      cmocka_unit_test(test_lifecycle),
      cmocka_unit_test(test_uncommitted_faults),
      cmocka_unit_test(test_reserve_committed_and_aligned),
      cmocka_unit_test(test_bad_arguments),
      cmocka_unit_test(test_partial_release),
      cmocka_unit_test(test_budget),
      cmocka_unit_test(test_dontdump),
      cmocka_unit_test(test_decommit_refused),
      cmocka_unit_test(test_decommit_protect_refused),
      cmocka_unit_test(test_commit_refused),
      cmocka_unit_test(test_release_refused),
      cmocka_unit_test(test_threads),
      cmocka_unit_test(test_fork_while_busy),
      cmocka_unit_test(test_decommit_races_release),
  };
  return cmocka_run_group_tests_name("pages", tests, setup, NULL);
}
