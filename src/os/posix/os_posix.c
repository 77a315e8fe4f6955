/* os_posix.c: the part of os.h that every POSIX backend shares, compiled
 * beside os/linux/os_linux.c or os/darwin/os_darwin.c (meson picks the
 * backend; this file goes with both).
 *
 * Here: commit and no-access (mprotect), residency and the host program's
 * madvise/mincore through the capped retry, write and getpid.  The
 * backends keep only their differences: how memory is reserved,
 * decommitted and purged, the clock, random bytes, secure execution,
 * platform facts, and the raw madvise/mincore (os_posix.h) this file
 * builds on.  Calls go one way: this file calls the backend, never the
 * reverse (tests/unit/check_layers.py). */
#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>
#include "../os.h"
#include "os_posix.h"

static int protect_rw(void *addr, size_t size) {
  return mprotect(addr, size, PROT_READ | PROT_WRITE) == 0 ? 0 : errno;
}

int vam__os_commit(void *addr, size_t size) {
  return VAM_OS_RETRY(VAM_OS_mprotect, protect_rw(addr, size));
}

static int protect_none(void *addr, size_t size) {
  return mprotect(addr, size, PROT_NONE) == 0 ? 0 : errno;
}

int vam__os_noaccess(void *addr, size_t size) {
  return VAM_OS_RETRY(VAM_OS_mprotect, protect_none(addr, size));
}

int vam__os_residency(void *addr, size_t size, unsigned char *vec) {
  return VAM_OS_RETRY(VAM_OS_mincore, vam__os_sys_mincore(addr, size, vec));
}

int vam__os_host_madvise(void *addr, size_t len, int advice, unsigned max_retries) {
  if (max_retries == 0) return VAM_OS_ONCE(VAM_OS_host_madvise, vam__os_sys_madvise(addr, len, advice));
  return VAM_OS_RETRY_MAX(VAM_OS_host_madvise, max_retries, vam__os_sys_madvise(addr, len, advice));
}

int vam__os_host_mincore(void *addr, size_t len, unsigned char *vec, unsigned max_retries) {
  if (max_retries == 0) return VAM_OS_ONCE(VAM_OS_host_mincore, vam__os_sys_mincore(addr, len, vec));
  return VAM_OS_RETRY_MAX(VAM_OS_host_mincore, max_retries, vam__os_sys_mincore(addr, len, vec));
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

long vam__os_getpid(void) { return (long)getpid(); }
