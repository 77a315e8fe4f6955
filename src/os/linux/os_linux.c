/* os_linux.c: the Linux backend of os.h.
 *
 * Reservations are private anonymous read/write mappings with
 * MAP_NORESERVE: under overcommit modes 0 and 1 nothing is charged until
 * touched, and decommit is a madvise, which never splits a VMA.  (Strict
 * mode 2 and the address-space budget are the business of vabudget, built
 * on top of this.)  Alignment beyond the page size is obtained by mapping
 * size + align and trimming both ends, so the result is one VMA.
 *
 * What Linux shares with Darwin (commit, no-access, residency, the host
 * program's madvise/mincore, write, getpid) is in os/posix/os_posix.c,
 * built over this file's raw madvise and mincore (os_posix.h).  Reading
 * /proc files is Linux's alone. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "../os.h"
#include "../posix/os_posix.h"

#ifndef MADV_FREE
#define MADV_FREE 8
#endif
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

vam_os_config_t vam__os_config = {.page_size = 4096, .overcommit_mode = -1};

extern char **environ;
char **vam__os_environ(void) { return environ; }

/* Up to cap bytes of a /proc or /sys file (its contents may come in more
 * than one read): 0 or the errno. */
static int read_file(const char *path, char *buf, size_t cap, size_t *len) {
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
  if (read_file("/proc/sys/vm/overcommit_memory", buf, sizeof buf, &len) == 0)
    vam__os_config.overcommit_mode = parse_small_int(buf, len);
  vam__os_config.has_madv_free = true; /* probed lazily: EINVAL falls back to DONTNEED */
  return 0;
}

static int map_anon(void *hint, size_t size, unsigned flags, bool exact, void **out) {
  int prot = (flags & VAM_RESERVE_NOACCESS) ? PROT_NONE : PROT_READ | PROT_WRITE;
  int mflags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | (exact ? MAP_FIXED_NOREPLACE : 0);
  void *p = mmap(hint, size, prot, mflags, -1, 0);
  if (p == MAP_FAILED) return errno ? errno : ENOMEM;
  if (exact && p != hint) {
    /* a kernel before 4.17 took the flag as a mere hint */
    munmap(p, size);
    return EEXIST;
  }
  *out = p;
  return 0;
}

static int unmap(void *addr, size_t size) {
  return munmap(addr, size) == 0 ? 0 : errno;
}

int vam__os_reserve(size_t size, size_t align, unsigned flags, void *hint, void **out) {
  size_t page = vam__os_config.page_size;
  if (align < page) align = page;
  if (size == 0 || size > SIZE_MAX - align) return ENOMEM;
  void *p = NULL;
  if (hint) return VAM_OS_ONCE(VAM_OS_mmap, map_anon(hint, size, flags, true, out));
  int err = VAM_OS_ONCE(VAM_OS_mmap, map_anon(NULL, size, flags, false, &p));
  if (err) return err;
  if (((uintptr_t)p & (align - 1)) == 0) {
    *out = p;
    return 0;
  }
  /* Not aligned: try once more at the next aligned address (cheap, and
   * keeps neighbouring chunks in one VMA), then fall back to over-mapping
   * and trimming. */
  VAM_OS_ONCE(VAM_OS_munmap, unmap(p, size));
  uintptr_t next = ((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1);
  err = VAM_OS_ONCE(VAM_OS_mmap, map_anon((void *)next, size, flags, true, &p));
  if (err == 0) {
    *out = p;
    return 0;
  }
  size_t over = size + align;
  err = VAM_OS_ONCE(VAM_OS_mmap, map_anon(NULL, over, flags, false, &p));
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

static int remap_noaccess(void *addr, size_t size) {
  void *p = mmap(addr, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
  return p == MAP_FAILED ? errno : 0;
}

int vam__os_uncommit(void *addr, size_t size) {
  return VAM_OS_ONCE(VAM_OS_mmap, remap_noaccess(addr, size));
}

int vam__os_release(void *addr, size_t size) {
  return VAM_OS_ONCE(VAM_OS_munmap, unmap(addr, size));
}

/* Raw system calls, not the libc wrappers: when preloaded, libvamalloc.so
 * itself exports madvise/mincore (the host shim), and the core must not
 * loop back into it. */
int vam__os_sys_madvise(void *addr, size_t size, int advice) {
  return syscall(SYS_madvise, addr, size, advice) == 0 ? 0 : errno;
}

int vam__os_decommit(void *addr, size_t size, bool *zeroed) {
  /* DONTNEED: later reads see zeroes, so metadata can trust "zeroed". */
  int err = VAM_OS_RETRY(VAM_OS_madvise, vam__os_sys_madvise(addr, size, MADV_DONTNEED));
  if (zeroed) *zeroed = (err == 0);
  return err;
}

int vam__os_purge(void *addr, size_t size, bool lazy_free, bool *zeroed) {
  if (lazy_free && vam__os_config.has_madv_free) {
    int err = VAM_OS_RETRY(VAM_OS_madvise, vam__os_sys_madvise(addr, size, MADV_FREE));
    if (err != EINVAL) {
      if (zeroed) *zeroed = false;
      return err;
    }
    vam__os_config.has_madv_free = false; /* kernel before 4.5 */
  }
  return vam__os_decommit(addr, size, zeroed);
}

uint64_t vam__os_now_ms(void) {
  VAM_OS_FAKE_CLOCK(); /* test builds: the fake clock, when set */
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
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
  return VAM_OS_RETRY(VAM_OS_madvise, vam__os_sys_madvise(addr, size, MADV_DONTDUMP));
}

int vam__os_sys_mincore(void *addr, size_t size, unsigned char *vec) {
  return syscall(SYS_mincore, addr, size, vec) == 0 ? 0 : errno;
}

bool vam__os_advice_is_dump_only(int advice) {
  return advice == MADV_DONTDUMP || advice == MADV_DODUMP;
}

int vam__os_random(void *buf, size_t len) {
  uint8_t *p = buf;
  while (len > 0) {
    /* GRND_NONBLOCK: never wait for the entropy pool at start-up. */
    long n = syscall(SYS_getrandom, p, len, 1 /* GRND_NONBLOCK */);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

bool vam__os_secure_exec(void) { return getauxval(AT_SECURE) != 0; }

/* ---- platform facts, read with open/read into stack buffers ------------- */

/* The number after `key` in a "Key:   1234 kB" file, in bytes. */
static bool field_kb(const char *buf, size_t len, const char *key, uint64_t *out) {
  size_t kl = strlen(key);
  for (size_t i = 0; i + kl < len; i++) {
    if ((i == 0 || buf[i - 1] == '\n') && strncmp(buf + i, key, kl) == 0) {
      size_t j = i + kl;
      while (j < len && (buf[j] == ' ' || buf[j] == '\t')) j++;
      uint64_t v = 0;
      bool any = false;
      while (j < len && buf[j] >= '0' && buf[j] <= '9') {
        v = v * 10 + (uint64_t)(buf[j++] - '0');
        any = true;
      }
      if (!any) return false;
      *out = v * 1024;
      return true;
    }
  }
  return false;
}

static bool read_u64_file(const char *path, uint64_t *out) {
  char buf[64];
  size_t len = 0;
  if (read_file(path, buf, sizeof buf - 1, &len) != 0 || len == 0) return false;
  uint64_t v = 0;
  size_t i = 0;
  if (buf[0] < '0' || buf[0] > '9') return false;
  while (i < len && buf[i] >= '0' && buf[i] <= '9') v = v * 10 + (uint64_t)(buf[i++] - '0');
  *out = v;
  return true;
}

/* Walk /proc/self/maps: count lines and find the highest user address. */
static int scan_maps(uint64_t *count, uint64_t *top) {
  int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  char buf[4096];
  uint64_t n = 0, hi = 0, cur = 0;
  int state = 0; /* 0: start address, 1: end address, 2: rest of line */
  for (;;) {
    ssize_t got = read(fd, buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    for (ssize_t i = 0; i < got; i++) {
      char c = buf[i];
      if (c == '\n') {
        n++;
        state = 0;
        cur = 0;
      } else if (state == 0 && c == '-') {
        state = 1;
        cur = 0;
      } else if (state == 1) {
        if (c == ' ') {
          /* kernel-space entries ([vsyscall]) sit at the top half */
          if (cur < ((uint64_t)1 << 63) && cur > hi) hi = cur;
          state = 2;
        } else {
          cur = cur * 16 + (uint64_t)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
        }
      }
    }
  }
  close(fd);
  *count = n;
  *top = hi;
  return 0;
}

int vam__os_vmsize(uint64_t *vmsize) {
  char buf[2048];
  size_t len = 0;
  int err = read_file("/proc/self/status", buf, sizeof buf, &len);
  if (err) return err;
  return field_kb(buf, len, "VmSize:", vmsize) ? 0 : ENOENT;
}

int vam__os_platform(vam_os_platform_t *p) {
  p->rlimit_as = UINT64_MAX;
  struct rlimit rl;
  if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) p->rlimit_as = rl.rlim_cur;
  p->vmsize = 0;
  vam__os_vmsize(&p->vmsize);
  p->overcommit_mode = vam__os_config.overcommit_mode;
  char buf[4096];
  size_t len = 0;
  p->commit_limit = p->committed_as = 0;
  if (read_file("/proc/meminfo", buf, sizeof buf, &len) == 0) {
    field_kb(buf, len, "CommitLimit:", &p->commit_limit);
    field_kb(buf, len, "Committed_AS:", &p->committed_as);
  }
  p->max_map_count = 0;
  read_u64_file("/proc/sys/vm/max_map_count", &p->max_map_count);
  p->mmap_min_addr = 65536;
  read_u64_file("/proc/sys/vm/mmap_min_addr", &p->mmap_min_addr);
  uint64_t top = 0;
  p->map_count = 0;
  p->va_bits = 47;
  p->va_bits_how = "default (47): /proc/self/maps unreadable";
  if (scan_maps(&p->map_count, &top) == 0 && top) {
    /* The stack sits just below the top of user space: the bit length of
     * the highest mapping is the user VA size (39, 42, 47, 48, ...). */
    unsigned bits = 64 - (unsigned)__builtin_clzll(top - 1);
    p->va_bits = bits;
    p->va_bits_how = "highest mapping in /proc/self/maps";
  }
  /* cgroup v2: "0::/path" in /proc/self/cgroup names our memory.max */
  p->cgroup_memory_max = UINT64_MAX;
  if (read_file("/proc/self/cgroup", buf, sizeof buf - 1, &len) == 0) {
    buf[len] = 0;
    char *line = strstr(buf, "0::");
    if (line) {
      char path[512] = "/sys/fs/cgroup";
      size_t pl = strlen(path);
      for (char *c = line + 3; *c && *c != '\n' && pl < sizeof path - 16; c++) path[pl++] = *c;
      memcpy(path + pl, "/memory.max", 12);
      uint64_t v;
      if (read_u64_file(path, &v)) p->cgroup_memory_max = v;
    }
  }
  return 0;
}
