/* os_darwin.c: the macOS backend of os.h.  NOT BUILT OR TESTED HERE (the
 * project's machines are Linux); it is written against the documented
 * Darwin calls and kept in step with os.h.
 *
 * Differences from Linux: MAP_NORESERVE does not exist (the VM is lazy
 * anyway); decommit is MADV_FREE_REUSABLE, whose pages must be reclaimed
 * with MADV_FREE_REUSE before reuse (so "zeroed" is never promised);
 * mremap does not exist (remap answers ENOTSUP and the caller copies); the
 * page size is 16 KiB on arm64.
 *
 * What Darwin shares with Linux (commit, no-access, residency, the host
 * program's madvise/mincore, write, getpid) is in os/posix/os_posix.c,
 * built over this file's raw madvise and mincore (os_posix.h). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <crt_externs.h>
#include "../os.h"
#include "../posix/os_posix.h"

vam_os_config_t vam__os_config = {.page_size = 4096, .overcommit_mode = -1};

char **vam__os_environ(void) { return *_NSGetEnviron(); }

int vam__os_init(void) {
  long ps = sysconf(_SC_PAGESIZE);
  if (ps > 0) vam__os_config.page_size = (size_t)ps;
  vam__os_config.has_madv_free = true;
  return 0;
}

static int map_anon(void *hint, size_t size, unsigned flags, void **out) {
  int prot = (flags & VAM_RESERVE_NOACCESS) ? PROT_NONE : PROT_READ | PROT_WRITE;
  void *p = mmap(hint, size, prot, MAP_PRIVATE | MAP_ANON, -1, 0);
  if (p == MAP_FAILED) return errno ? errno : ENOMEM;
  if (hint && p != hint) {
    munmap(p, size);
    return EEXIST;
  }
  *out = p;
  return 0;
}

static int unmap(void *addr, size_t size) { return munmap(addr, size) == 0 ? 0 : errno; }

int vam__os_reserve(size_t size, size_t align, unsigned flags, void *hint, void **out) {
  size_t page = vam__os_config.page_size;
  if (align < page) align = page;
  if (size == 0 || size > SIZE_MAX - align) return ENOMEM;
  if (hint) return VAM_OS_ONCE(VAM_OS_mmap, map_anon(hint, size, flags, out));
  void *p = NULL;
  size_t over = size + align - page;
  int err = VAM_OS_ONCE(VAM_OS_mmap, map_anon(NULL, over, flags, &p));
  if (err) return err;
  uintptr_t start = (uintptr_t)p;
  uintptr_t aligned = (start + align - 1) & ~(uintptr_t)(align - 1);
  size_t head = aligned - start, tail = over - head - size;
  if (head) VAM_OS_ONCE(VAM_OS_munmap, unmap(p, head));
  if (tail) VAM_OS_ONCE(VAM_OS_munmap, unmap((void *)(aligned + size), tail));
  *out = (void *)aligned;
  return 0;
}

static int remap_noaccess(void *addr, size_t size) {
  void *p = mmap(addr, size, PROT_NONE, MAP_PRIVATE | MAP_ANON | MAP_FIXED, -1, 0);
  return p == MAP_FAILED ? errno : 0;
}

int vam__os_uncommit(void *addr, size_t size) {
  return VAM_OS_ONCE(VAM_OS_mmap, remap_noaccess(addr, size));
}

int vam__os_release(void *addr, size_t size) {
  return VAM_OS_ONCE(VAM_OS_munmap, unmap(addr, size));
}

int vam__os_sys_madvise(void *addr, size_t size, int advice) {
  return madvise(addr, size, advice) == 0 ? 0 : errno;
}

int vam__os_decommit(void *addr, size_t size, bool *zeroed) {
  int err = VAM_OS_RETRY(VAM_OS_madvise, vam__os_sys_madvise(addr, size, MADV_FREE_REUSABLE));
  if (zeroed) *zeroed = false;
  return err;
}

int vam__os_purge(void *addr, size_t size, bool lazy_free, bool *zeroed) {
  (void)lazy_free; /* MADV_FREE_REUSABLE is already the lazy kind */
  return vam__os_decommit(addr, size, zeroed);
}

uint64_t vam__os_now_ms(void) {
  VAM_OS_FAKE_CLOCK(); /* test builds: the fake clock, when set */
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int vam__os_remap(void *addr, size_t old_size, size_t new_size, void *target, void **out) {
  (void)addr; (void)old_size; (void)new_size; (void)target; (void)out;
  return ENOTSUP;
}

int vam__os_dontdump(void *addr, size_t size) {
  (void)addr; (void)size;
  return 0; /* no per-range core-dump control on Darwin */
}

int vam__os_sys_mincore(void *addr, size_t size, unsigned char *vec) {
  return mincore(addr, size, (char *)vec) == 0 ? 0 : errno;
}

bool vam__os_advice_is_dump_only(int advice) {
  (void)advice;
  return false; /* Darwin has no per-range core-dump advice */
}

int vam__os_random(void *buf, size_t len) {
  arc4random_buf(buf, len); /* never fails, never blocks */
  return 0;
}

/* issetugid: the process changed credentials at exec (Darwin's AT_SECURE). */
bool vam__os_secure_exec(void) { return issetugid() != 0; }

int vam__os_vmsize(uint64_t *vmsize) {
  (void)vmsize;
  return ENOTSUP; /* task_info would do; not needed for the budget here */
}

int vam__os_platform(vam_os_platform_t *p) {
  struct rlimit rl;
  p->rlimit_as = UINT64_MAX;
  if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) p->rlimit_as = rl.rlim_cur;
  p->vmsize = 0;
  p->overcommit_mode = -1;
  p->commit_limit = p->committed_as = 0;
  p->max_map_count = 0;
  p->map_count = 0;
  p->cgroup_memory_max = UINT64_MAX;
  p->mmap_min_addr = 4096;
  p->va_bits = 47;
  p->va_bits_how = "Darwin user space (47 bits)";
  return 0;
}
