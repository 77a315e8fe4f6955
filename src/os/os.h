/* os.h: the one door between vamalloc and the kernel.
 *
 * Contract (every backend implements exactly this: src/os/<system>/ for
 * what differs, src/os/posix/os_posix.c for what the POSIX systems share):
 *  - Every function that can fail returns 0 or an errno value; it never
 *    aborts, never prints, never allocates.
 *  - Addresses and sizes are multiples of the OS page size and non-zero.
 *  - madvise, mprotect and mincore go through VAM_OS_RETRY (retry.c): on
 *    EAGAIN it sleeps retry_delay_us with nanosleep and tries at most
 *    retry_max times, then hands the error up.  These calls are advisory or
 *    recoverable, so the caller degrades and counts; it never spins.
 *  - Facts the core needs (is the memory zeroed?) come back through
 *    out-parameters.
 *
 * Error policy, the same for every caller in the core: errno goes up; the
 * caller degrades (keeps the range, falls back, returns NULL+ENOMEM) and the
 * failure is counted here, per call kind and errno.
 */
#ifndef VAM_OS_H
#define VAM_OS_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "../atomic.h"
#include "vamalloc.h" /* the statistics list: VAM_OS_CALLS below */

/* Filled once by vam__os_init; read-only afterwards. */
typedef struct vam_os_config {
  size_t page_size;        /* OS page size (4 KiB on x86_64, 16 KiB on Darwin arm64) */
  int overcommit_mode;     /* vm.overcommit_memory: 0, 1, 2; -1 when unknown */
  bool has_madv_free;      /* MADV_FREE (Linux 4.5+) or MADV_FREE_REUSABLE */
} vam_os_config_t;

extern vam_os_config_t vam__os_config;

/* The kinds of kernel call we count, X(name, doc): the O entries of the one
 * statistics list (VAMALLOC_STATS_FIELDS in include/vamalloc.h), so a call
 * kind, its counters and its public vam_stats_t fields are declared once. */
#define VAM_OS_SKIP_(name, doc)
#define VAM_OS_CALLS(X) VAMALLOC_STATS_FIELDS(VAM_OS_SKIP_, VAM_OS_SKIP_, VAM_OS_SKIP_, X)

typedef enum {
#define VAM_OS_ENUM(name, doc) VAM_OS_##name,
  VAM_OS_CALLS(VAM_OS_ENUM)
#undef VAM_OS_ENUM
  VAM_OS_CALL_KINDS
} vam_os_call_t;

/* The errno values we count by name; anything else lands in "other". */
#define VAM_OS_ERRNOS(X) X(EAGAIN) X(ENOMEM) X(EINVAL) X(EFAULT) X(EPERM) X(other)
typedef enum {
#define VAM_OS_EENUM(name) VAM_OS_E_##name,
  VAM_OS_ERRNOS(VAM_OS_EENUM)
#undef VAM_OS_EENUM
  VAM_OS_ERRNO_KINDS
} vam_os_errno_t;

typedef struct vam_os_counters {
  vam_atomic(uint64_t) calls;
  vam_atomic(uint64_t) eagain;      /* EAGAIN answers seen (each try) */
  vam_atomic(uint64_t) retries;     /* sleeps taken before another try */
  vam_atomic(uint64_t) giveups;     /* still EAGAIN after retry_max tries */
  vam_atomic(uint64_t) failures;    /* calls that returned an error in the end */
  vam_atomic(uint64_t) by_errno[VAM_OS_ERRNO_KINDS];
} vam_os_counters_t;

extern vam_os_counters_t vam__os_counters[VAM_OS_CALL_KINDS];
extern const char *const vam__os_call_names[VAM_OS_CALL_KINDS];
extern const char *const vam__os_errno_names[VAM_OS_ERRNO_KINDS];

/* Retry settings, set from options at init. */
extern unsigned vam__os_retry_max;
extern unsigned vam__os_retry_delay_us;

void vam__os_count(vam_os_call_t kind, int err);
int vam__os_retry_eagain(vam_os_call_t kind, unsigned max, unsigned *tries);
/* Test hook: the errno to inject for this call, or 0.  Compiled in only
 * with -Dfault_injection=true (and in the test-only libraries); otherwise
 * it folds away to nothing.  Rules come from VAMALLOC_FAULTS (fault.c). */
#ifdef VAM_FAULT_INJECTION
int vam__os_fault(vam_os_call_t kind);
/* Test hooks of the same builds (fault.c), for deterministic concurrency
 * tests; none of them exists in the shipped libraries.
 *  - vam__os_park_hook: when set, called on the calling thread at the start
 *    of every counted kernel call (before the fault rule), whatever locks
 *    the caller holds; it may block there, so a test can hold a thread
 *    inside the allocator with a lock taken and fork meanwhile.
 *  - vam__os_fake_ms: when non-zero, vam__os_now_ms returns it (the purge
 *    clock under the test's control). */
typedef void (*vam_os_park_fn)(vam_os_call_t kind);
extern _Atomic(vam_os_park_fn) vam__os_park_hook;
extern vam_atomic(uint64_t) vam__os_fake_ms;
#define VAM_OS_FAKE_CLOCK()                                     \
  do {                                                          \
    uint64_t vam_fake_ = vam_load_relaxed(&vam__os_fake_ms);    \
    if (vam_fake_) return vam_fake_;                            \
  } while (0)
#else
static inline int vam__os_fault(vam_os_call_t kind) { (void)kind; return 0; }
#define VAM_OS_FAKE_CLOCK() ((void)0)
#endif
/* Parse a VAMALLOC_FAULTS spec; with install, make it the active rule set
 * (and restart the call counters).  Returns 0, EINVAL for a bad spec, or
 * ENOTSUP when fault injection is not compiled in. */
int vam__os_fault_spec(const char *spec, bool install);

/* The retry macro: `expr` is evaluated again after each EAGAIN, with a
 * nanosleep between tries, at most vam__os_retry_max extra times.  It yields
 * 0 or the final errno, and counts everything. */
#define VAM_OS_RETRY(kind, expr) VAM_OS_RETRY_MAX(kind, vam__os_retry_max, expr)
/* The same with an explicit cap (never above vam__os_retry_max). */
#define VAM_OS_RETRY_MAX(kind, max, expr)                                  \
  ({                                                                       \
    unsigned vam_tries_ = 0;                                               \
    int vam_err_;                                                          \
    for (;;) {                                                             \
      vam_err_ = vam__os_fault(kind);                                      \
      if (vam_err_ == 0) vam_err_ = (expr);                                \
      if (vam_err_ != EAGAIN) break;                                       \
      if (vam__os_retry_eagain(kind, (max), &vam_tries_)) break;           \
    }                                                                      \
    vam__os_count(kind, vam_err_);                                         \
    vam_err_;                                                              \
  })

/* Calls that are not retried (mmap, munmap, mremap): one try, counted, with
 * the same fault hook. */
#define VAM_OS_ONCE(kind, expr)                  \
  ({                                             \
    int vam_err_ = vam__os_fault(kind);          \
    if (vam_err_ == 0) vam_err_ = (expr);        \
    vam__os_count(kind, vam_err_);               \
    vam_err_;                                    \
  })

/* ---- the interface ----------------------------------------------------- */
int vam__os_init(void);

/* What the core needs to know about this process's address space, read
 * once at init without allocating (open/read into stack buffers). */
typedef struct vam_os_platform {
  unsigned va_bits;          /* user address bits, from the highest mapping */
  const char *va_bits_how;   /* how va_bits was found */
  uint64_t rlimit_as;        /* RLIMIT_AS soft limit; UINT64_MAX = none */
  uint64_t vmsize;           /* the process's VmSize now */
  int overcommit_mode;       /* vm.overcommit_memory, -1 unknown */
  uint64_t commit_limit;     /* CommitLimit (bytes), 0 unknown */
  uint64_t committed_as;     /* Committed_AS (bytes), 0 unknown */
  uint64_t max_map_count;    /* vm.max_map_count, 0 unknown */
  uint64_t map_count;        /* lines in /proc/self/maps now */
  uint64_t cgroup_memory_max;/* cgroup v2 memory.max; UINT64_MAX = none */
  uint64_t mmap_min_addr;    /* vm.mmap_min_addr */
} vam_os_platform_t;
int vam__os_platform(vam_os_platform_t *out);
/* The current VmSize and map count (cheap re-reads for the budget). */
int vam__os_vmsize(uint64_t *vmsize);

/* Reserve size bytes aligned to align (a power of two >= page size).  Fresh
 * memory reads as zeroes.  Without VAM_RESERVE_NOACCESS it is readable and
 * writable and not charged up front where the OS allows; with it, it is
 * PROT_NONE (never charged, even under strict overcommit) until
 * vam__os_commit.  With a hint the range must start exactly there
 * (MAP_FIXED_NOREPLACE): EEXIST when something is in the way. */
enum { VAM_RESERVE_NOACCESS = 1 };
int vam__os_reserve(size_t size, size_t align, unsigned flags, void *hint, void **out);
/* Strict commit: make a PROT_NONE range readable and writable (charged). */
int vam__os_commit(void *addr, size_t size);
/* Strict decommit: replace the range by a fresh PROT_NONE mapping, which
 * returns its commit charge; it reads as zeroes once committed again. */
int vam__os_uncommit(void *addr, size_t size);
/* Make a range inaccessible (PROT_NONE) and keep its pages: the page API's
 * decommit after a zeroing madvise, so a stray access faults. */
int vam__os_noaccess(void *addr, size_t size);
/* Give a reservation (or an aligned part of one) back. */
int vam__os_release(void *addr, size_t size);
/* Tell the OS the contents are no longer needed.  *zeroed says whether the
 * range now reads as zeroes (true for MADV_DONTNEED on private anonymous
 * memory, false for MADV_FREE).  On failure the contents are unchanged. */
int vam__os_decommit(void *addr, size_t size, bool *zeroed);
/* Purge: like decommit, but with MADV_FREE when lazy_free (pages keep their
 * contents until the kernel needs them: *zeroed is then false), falling
 * back to MADV_DONTNEED where MADV_FREE is not supported. */
int vam__os_purge(void *addr, size_t size, bool lazy_free, bool *zeroed);
/* Milliseconds of a monotonic clock (coarse is fine). */
uint64_t vam__os_now_ms(void);

/* Grow or shrink a mapping.  With target == NULL only in place; otherwise
 * the pages move (without copying) onto target, which must be a reservation
 * of new_size bytes that the move replaces.  ENOTSUP where the OS has no
 * remap: the caller copies. */
int vam__os_remap(void *addr, size_t old_size, size_t new_size, void *target, void **out);
/* Exclude from core dumps (optional, called once per reservation). */
int vam__os_dontdump(void *addr, size_t size);
/* Residency of each page in vec (1 = resident). */
int vam__os_residency(void *addr, size_t size, unsigned char *vec);

/* The host program's own madvise/mincore (the preload shim): the raw call
 * through the same capped retry, at most max_retries retries (0: one try),
 * counted as host_*.  Returns 0 or the final errno. */
int vam__os_host_madvise(void *addr, size_t len, int advice, unsigned max_retries);
int vam__os_host_mincore(void *addr, size_t len, unsigned char *vec, unsigned max_retries);
/* MADV_DONTDUMP or MADV_DODUMP: advice that only changes core-dump size. */
bool vam__os_advice_is_dump_only(int advice);

/* Small services the core needs, none of which allocate. */
void vam__os_write(int fd, const char *buf, size_t len);
void vam__os_sleep_us(unsigned us);
long vam__os_getpid(void);
/* The process environment (may be NULL very early in start-up). */
char **vam__os_environ(void);
/* len random bytes from the kernel (getrandom / arc4random): the secrets
 * free-list links are encoded with.  0 or the errno (ENOSYS, EAGAIN before
 * the pool is ready...); the caller falls back to weaker entropy. */
int vam__os_random(void *buf, size_t len);
/* True in a secure-execution program (setuid/setgid, file capabilities:
 * AT_SECURE), where environment variables must not weaken the heap. */
bool vam__os_secure_exec(void);

#endif
