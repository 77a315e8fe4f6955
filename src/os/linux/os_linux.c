/* os_linux.c: the Linux backend of os.h.
 *
 * Reservations are private anonymous read/write mappings with
 * MAP_NORESERVE: under overcommit modes 0 and 1 nothing is charged until
 * touched, and decommit is a madvise, which never splits a VMA.  (Strict
 * mode 2 and the address-space budget are the business of vabudget, built
 * on top of this.)  Alignment beyond the page size is obtained by mapping
 * size + align and trimming both ends, so the result is one VMA. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "../os.h"

#ifndef MADV_FREE
#define MADV_FREE 8
#endif

vam_os_config_t vam__os_config = {.page_size = 4096, .overcommit_mode = -1};

extern char **environ;
char **vam__os_environ(void) { return environ; }

static int parse_small_int(const char *s, size_t n) {
  int v = 0;
  bool any = false;
  for (size_t i = 0; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
    v = v * 10 + (s[i] - '0');
    any = true;
  }
  return any ? v : -1;
}

int vam__os_init(void) {
  long ps = sysconf(_SC_PAGESIZE);
  if (ps > 0) vam__os_config.page_size = (size_t)ps;
  char buf[32];
  size_t len = 0;
  if (vam__os_read_file("/proc/sys/vm/overcommit_memory", buf, sizeof buf, &len) == 0)
    vam__os_config.overcommit_mode = parse_small_int(buf, len);
  vam__os_config.has_madv_free = true; /* probed lazily: EINVAL falls back to DONTNEED */
  return 0;
}

static int map_anon(void *hint, size_t size, void **out) {
  void *p = mmap(hint, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
  if (p == MAP_FAILED) return errno ? errno : ENOMEM;
  *out = p;
  return 0;
}

static int unmap(void *addr, size_t size) {
  return munmap(addr, size) == 0 ? 0 : errno;
}

int vam__os_reserve(size_t size, size_t align, void **out) {
  size_t page = vam__os_config.page_size;
  if (align < page) align = page;
  if (size == 0 || size > SIZE_MAX - align) return ENOMEM;
  void *p = NULL;
  int err = VAM_OS_ONCE(VAM_OS_mmap, map_anon(NULL, size, &p));
  if (err) return err;
  if (((uintptr_t)p & (align - 1)) == 0) {
    *out = p;
    return 0;
  }
  /* Not aligned: try once more with a hint at the next aligned address
   * (cheap, and keeps neighbouring chunks in one VMA), then fall back to
   * over-mapping and trimming. */
  VAM_OS_ONCE(VAM_OS_munmap, unmap(p, size));
  uintptr_t hint = ((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1);
  err = VAM_OS_ONCE(VAM_OS_mmap, map_anon((void *)hint, size, &p));
  if (err == 0 && ((uintptr_t)p & (align - 1)) == 0) {
    *out = p;
    return 0;
  }
  if (err == 0) VAM_OS_ONCE(VAM_OS_munmap, unmap(p, size));
  size_t over = size + align;
  err = VAM_OS_ONCE(VAM_OS_mmap, map_anon(NULL, over, &p));
  if (err) return err;
  uintptr_t start = (uintptr_t)p;
  uintptr_t aligned = (start + align - 1) & ~(uintptr_t)(align - 1);
  size_t head = aligned - start;
  size_t tail = over - head - size;
  /* A failed trim only leaves extra address space mapped; the aligned part
   * is still usable, so the result does not depend on it. */
  if (head) VAM_OS_ONCE(VAM_OS_munmap, unmap(p, head));
  if (tail) VAM_OS_ONCE(VAM_OS_munmap, unmap((void *)(aligned + size), tail));
  *out = (void *)aligned;
  return 0;
}

int vam__os_release(void *addr, size_t size) {
  return VAM_OS_ONCE(VAM_OS_munmap, unmap(addr, size));
}

/* Raw system calls, not the libc wrappers: when preloaded, libvamalloc.so
 * itself exports madvise/mincore (the host shim), and the core must not
 * loop back into it. */
static int advise(void *addr, size_t size, int advice) {
  return syscall(SYS_madvise, addr, size, advice) == 0 ? 0 : errno;
}

int vam__os_decommit(void *addr, size_t size, bool *zeroed) {
  /* DONTNEED: later reads see zeroes, so metadata can trust "zeroed". */
  int err = VAM_OS_RETRY(VAM_OS_madvise, advise(addr, size, MADV_DONTNEED));
  if (zeroed) *zeroed = (err == 0);
  return err;
}

static int remap(void *addr, size_t old_size, size_t new_size, void *target, void **out) {
  void *p = target ? mremap(addr, old_size, new_size, MREMAP_MAYMOVE | MREMAP_FIXED, target)
                   : mremap(addr, old_size, new_size, 0);
  if (p == MAP_FAILED) return errno;
  *out = p;
  return 0;
}

int vam__os_remap(void *addr, size_t old_size, size_t new_size, void *target, void **out) {
  return VAM_OS_ONCE(VAM_OS_mremap, remap(addr, old_size, new_size, target, out));
}

int vam__os_dontdump(void *addr, size_t size) {
  return VAM_OS_RETRY(VAM_OS_madvise, advise(addr, size, MADV_DONTDUMP));
}

static int residency(void *addr, size_t size, unsigned char *vec) {
  return syscall(SYS_mincore, addr, size, vec) == 0 ? 0 : errno;
}

int vam__os_residency(void *addr, size_t size, unsigned char *vec) {
  return VAM_OS_RETRY(VAM_OS_mincore, residency(addr, size, vec));
}

int vam__os_host_madvise(void *addr, size_t len, int advice, bool once) {
  if (once) return VAM_OS_ONCE(VAM_OS_host_madvise, advise(addr, len, advice));
  return VAM_OS_RETRY(VAM_OS_host_madvise, advise(addr, len, advice));
}

int vam__os_host_mincore(void *addr, size_t len, unsigned char *vec, bool once) {
  if (once) return VAM_OS_ONCE(VAM_OS_host_mincore, residency(addr, len, vec));
  return VAM_OS_RETRY(VAM_OS_host_mincore, residency(addr, len, vec));
}

bool vam__os_advice_is_dump_only(int advice) {
  return advice == MADV_DONTDUMP || advice == MADV_DODUMP;
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
  size_t got = 0;
  while (got < cap) {
    ssize_t n = read(fd, buf + got, cap - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      close(fd);
      return err;
    }
    if (n == 0) break;
    got += (size_t)n;
  }
  close(fd);
  *len = got;
  return 0;
}

long vam__os_getpid(void) { return (long)getpid(); }
