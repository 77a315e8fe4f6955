/* os_darwin.c: the macOS backend of os.h.  NOT BUILT OR TESTED HERE (the
 * project's machines are Linux); it is written against the documented
 * Darwin calls and kept in step with os.h.
 *
 * Differences from Linux: MAP_NORESERVE does not exist (the VM is lazy
 * anyway); decommit is MADV_FREE_REUSABLE, whose pages must be reclaimed
 * with MADV_FREE_REUSE before reuse (so "zeroed" is never promised);
 * mremap does not exist (remap answers ENOTSUP and the caller copies); the
 * page size is 16 KiB on arm64. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <crt_externs.h>
#include "../os.h"

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

static int protect_rw(void *addr, size_t size) {
  return mprotect(addr, size, PROT_READ | PROT_WRITE) == 0 ? 0 : errno;
}

int vam__os_commit(void *addr, size_t size) {
  return VAM_OS_RETRY(VAM_OS_mprotect, protect_rw(addr, size));
}

static int remap_noaccess(void *addr, size_t size) {
  void *p = mmap(addr, size, PROT_NONE, MAP_PRIVATE | MAP_ANON | MAP_FIXED, -1, 0);
  return p == MAP_FAILED ? errno : 0;
}

int vam__os_uncommit(void *addr, size_t size) {
  return VAM_OS_ONCE(VAM_OS_mmap, remap_noaccess(addr, size));
}

static int protect_none(void *addr, size_t size) {
  return mprotect(addr, size, PROT_NONE) == 0 ? 0 : errno;
}

int vam__os_noaccess(void *addr, size_t size) {
  return VAM_OS_RETRY(VAM_OS_mprotect, protect_none(addr, size));
}

int vam__os_release(void *addr, size_t size) {
  return VAM_OS_ONCE(VAM_OS_munmap, unmap(addr, size));
}

static int advise(void *addr, size_t size, int advice) {
  return madvise(addr, size, advice) == 0 ? 0 : errno;
}

int vam__os_decommit(void *addr, size_t size, bool *zeroed) {
  int err = VAM_OS_RETRY(VAM_OS_madvise, advise(addr, size, MADV_FREE_REUSABLE));
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

static int residency(void *addr, size_t size, unsigned char *vec) {
  return mincore(addr, size, (char *)vec) == 0 ? 0 : errno;
}

int vam__os_residency(void *addr, size_t size, unsigned char *vec) {
  return VAM_OS_RETRY(VAM_OS_mincore, residency(addr, size, vec));
}

int vam__os_host_madvise(void *addr, size_t len, int advice, unsigned max_retries) {
  if (max_retries == 0) return VAM_OS_ONCE(VAM_OS_host_madvise, advise(addr, len, advice));
  return VAM_OS_RETRY_MAX(VAM_OS_host_madvise, max_retries, advise(addr, len, advice));
}

int vam__os_host_mincore(void *addr, size_t len, unsigned char *vec, unsigned max_retries) {
  if (max_retries == 0) return VAM_OS_ONCE(VAM_OS_host_mincore, residency(addr, len, vec));
  return VAM_OS_RETRY_MAX(VAM_OS_host_mincore, max_retries, residency(addr, len, vec));
}

bool vam__os_advice_is_dump_only(int advice) {
  (void)advice;
  return false; /* Darwin has no per-range core-dump advice */
}

void vam__os_write(int fd, const char *buf, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, buf, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    buf += n;
    len -= (size_t)n;
  }
}

int vam__os_read_file(const char *path, char *buf, size_t cap, size_t *len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  ssize_t n = read(fd, buf, cap);
  int err = n < 0 ? errno : 0;
  close(fd);
  if (err) return err;
  *len = (size_t)n;
  return 0;
}

long vam__os_getpid(void) { return (long)getpid(); }

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
