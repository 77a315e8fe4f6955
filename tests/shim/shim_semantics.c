/* shim_semantics: what a host program sees from madvise/mincore.
 *
 * Uses only the standard names and is never linked with vamalloc: the
 * driver (run_shim.py) runs it plainly, with LD_PRELOAD=libvamalloc.so
 * under several VAMALLOC_HOST_* settings, and under tools/seccomp-inject.
 * The same checks pass without the preload, which validates the test.
 *
 *   shim_semantics MODE EXPECT_SHIM [N]
 *
 * EXPECT_SHIM: "shim" when madvise must resolve into libvamalloc.so,
 * "libc" when it must resolve into libc.
 * MODE:
 *   basic       MADV_DONTNEED succeeds and the memory reads zero; MADV_FREE,
 *               MADV_WILLNEED succeed; success leaves errno alone; errors (unaligned: EINVAL, unmapped:
 *               ENOMEM, bad advice: EINVAL) match the raw system call; mincore
 *               matches the raw system call (result vector and errors);
 *               MADV_DONTDUMP marks the VMA "dd" in /proc/self/smaps and
 *               MADV_DODUMP clears it (VAMALLOC_HOST_DONTDUMP=keep, the default).
 *   drop        MADV_DONTDUMP and MADV_DODUMP return 0 and the VMA is never
 *               marked "dd" (VAMALLOC_HOST_DONTDUMP=drop).  Run under
 *               seccomp-inject failing DONTDUMP/DODUMP, it also shows the calls
 *               never reached the kernel.
 *   eagain N    under seccomp-inject failing every MADV_DONTNEED with EAGAIN:
 *               N calls each return -1 with errno EAGAIN, the memory keeps its
 *               contents (the advice did not happen), other advice still works;
 *               prints "elapsed_us=T calls=N" for the driver, which checks the
 *               retry counters in vamalloc's stats line.
 *
 * Prints "ok MODE" and exits 0 on success; prints the failed check and exits 1.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static int failures;
static long page;

#define CHECK(cond, ...)                                  \
  do {                                                    \
    if (!(cond)) {                                        \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);                       \
      fputc('\n', stderr);                                \
      failures++;                                         \
    }                                                     \
  } while (0)

/* madvise through the dynamic symbol (the shim when preloaded). */
static int host_madvise(void *a, size_t len, int advice, int *err) {
  errno = 0;
  int r = madvise(a, len, advice);
  *err = r ? errno : 0;
  return r;
}

/* The kernel's answer, bypassing every library. */
static int raw_madvise(void *a, size_t len, int advice, int *err) {
  long r = syscall(SYS_madvise, a, len, advice);
  *err = r ? errno : 0;
  return (int)r;
}

static unsigned char *map_pages(size_t n) {
  void *p = mmap(NULL, n * (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    perror("mmap");
    exit(1);
  }
  return p;
}

/* 1 when the VMA starting at addr has VmFlags "dd", 0 when not, -1 when the
 * VMA is not found. */
static int vma_dontdump(const void *addr) {
  FILE *f = fopen("/proc/self/smaps", "r");
  if (!f) return -1;
  char line[512];
  int in = 0, found = -1;
  uintptr_t want = (uintptr_t)addr;
  while (fgets(line, sizeof line, f)) {
    unsigned long lo, hi;
    if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
      in = (lo == want);
      continue;
    }
    if (in && strncmp(line, "VmFlags:", 8) == 0) {
      found = strstr(line, " dd") != NULL;
      break;
    }
  }
  fclose(f);
  return found;
}

static const char *where(void *fn) {
  Dl_info info;
  if (!fn || !dladdr(fn, &info) || !info.dli_fname) return "?";
  return info.dli_fname;
}

static void check_resolution(const char *expect) {
  void *m = dlsym(RTLD_DEFAULT, "madvise");
  void *c = dlsym(RTLD_DEFAULT, "mincore");
  const char *mw = where(m), *cw = where(c);
  int m_shim = strstr(mw, "libvamalloc") != NULL;
  int c_shim = strstr(cw, "libvamalloc") != NULL;
  if (strcmp(expect, "shim") == 0) {
    CHECK(m_shim, "madvise resolves to %s, expected libvamalloc", mw);
    CHECK(c_shim, "mincore resolves to %s, expected libvamalloc", cw);
  } else {
    CHECK(!m_shim, "madvise resolves to %s, expected libc", mw);
    CHECK(!c_shim, "mincore resolves to %s, expected libc", cw);
  }
  printf("madvise from %s, mincore from %s\n", mw, cw);
}

static void fill(unsigned char *p, size_t len, unsigned char seed) {
  for (size_t i = 0; i < len; i++) p[i] = (unsigned char)(seed + i * 7 + 1) | 1;
}

static int all_zero(const unsigned char *p, size_t len) {
  for (size_t i = 0; i < len; i++)
    if (p[i]) return 0;
  return 1;
}

static int intact(const unsigned char *p, size_t len, unsigned char seed) {
  for (size_t i = 0; i < len; i++)
    if (p[i] != ((unsigned char)(seed + i * 7 + 1) | 1)) return 0;
  return 1;
}

/* Errors must be the kernel's, unchanged: compare with the raw call. */
static void same_error(const char *what, void *a, size_t len, int advice, int want) {
  int e_host, e_raw;
  int r_host = host_madvise(a, len, advice, &e_host);
  int r_raw = raw_madvise(a, len, advice, &e_raw);
  CHECK(r_host == -1 && r_raw == -1, "%s: madvise returned %d (raw %d), expected -1", what, r_host,
        r_raw);
  CHECK(e_host == e_raw, "%s: errno %d (%s) but the kernel says %d (%s)", what, e_host,
        strerror(e_host), e_raw, strerror(e_raw));
  CHECK(e_host == want, "%s: errno %d (%s), expected %d (%s)", what, e_host, strerror(e_host), want,
        strerror(want));
}

static void mode_basic(void) {
  const size_t n = 16;
  size_t len = n * (size_t)page;
  unsigned char *p = map_pages(n);
  int err;

  /* Success behaves exactly as before: DONTNEED zeroes private anon memory. */
  fill(p, len, 3);
  CHECK(host_madvise(p, len, MADV_DONTNEED, &err) == 0, "MADV_DONTNEED: %s", strerror(err));
  CHECK(all_zero(p, len), "memory after MADV_DONTNEED does not read zero");
  fill(p, len, 4);
  CHECK(host_madvise(p + page, 2 * (size_t)page, MADV_DONTNEED, &err) == 0, "partial DONTNEED: %s",
        strerror(err));
  CHECK(intact(p, (size_t)page, 4), "page before a partial DONTNEED changed");
  CHECK(all_zero(p + page, 2 * (size_t)page), "partially DONTNEED'd pages do not read zero");
  CHECK(host_madvise(p, len, MADV_FREE, &err) == 0, "MADV_FREE: %s", strerror(err));
  CHECK(host_madvise(p, len, MADV_WILLNEED, &err) == 0, "MADV_WILLNEED: %s", strerror(err));
  CHECK(host_madvise(p, len, MADV_NORMAL, &err) == 0, "MADV_NORMAL: %s", strerror(err));
  /* A successful call leaves errno alone, as libc's does. */
  errno = ENOTTY;
  CHECK(madvise(p, len, MADV_DONTNEED) == 0 && errno == ENOTTY,
        "successful madvise changed errno to %d", errno);
  unsigned char v1[16];
  errno = ENOTTY;
  CHECK(mincore(p, len, v1) == 0 && errno == ENOTTY, "successful mincore changed errno to %d", errno);

  /* Errors are the kernel's. */
  same_error("unaligned address", p + 1, (size_t)page, MADV_DONTNEED, EINVAL);
  same_error("bad advice", p, (size_t)page, 12345, EINVAL);
  unsigned char *hole = map_pages(4);
  munmap(hole, 4 * (size_t)page);
  same_error("unmapped range", hole, 4 * (size_t)page, MADV_WILLNEED, ENOMEM);

  /* mincore: same vector and errors as the kernel. */
  fill(p, len, 5);
  CHECK(host_madvise(p + 4 * page, 4 * (size_t)page, MADV_DONTNEED, &err) == 0, "DONTNEED: %s",
        strerror(err));
  unsigned char v_host[16], v_raw[16];
  memset(v_host, 0xee, sizeof v_host);
  memset(v_raw, 0xee, sizeof v_raw);
  errno = 0;
  int r = mincore(p, len, v_host);
  CHECK(r == 0, "mincore returned %d (%s)", r, strerror(errno));
  CHECK(syscall(SYS_mincore, p, len, v_raw) == 0, "raw mincore failed: %s", strerror(errno));
  for (size_t i = 0; i < n; i++) {
    CHECK((v_host[i] & 1) == (v_raw[i] & 1), "mincore page %zu: %d, kernel says %d", i,
          v_host[i] & 1, v_raw[i] & 1);
    if (i < 4) CHECK(v_host[i] & 1, "mincore: touched page %zu not resident", i);
    if (i >= 4 && i < 8) CHECK(!(v_host[i] & 1), "mincore: DONTNEED'd page %zu resident", i);
  }
  errno = 0;
  r = mincore(p + 1, (size_t)page, v_host);
  int e1 = errno;
  CHECK(r == -1 && e1 == EINVAL, "mincore unaligned: %d errno %d, expected EINVAL", r, e1);
  errno = 0;
  r = mincore(hole, 4 * (size_t)page, v_host);
  int e2 = errno;
  CHECK(r == -1 && e2 == ENOMEM, "mincore unmapped: %d errno %d, expected ENOMEM", r, e2);

  /* DONTDUMP reaches the kernel by default (VAMALLOC_HOST_DONTDUMP=keep). */
  CHECK(vma_dontdump(p) == 0, "fresh mapping already dd (or not found: %d)", vma_dontdump(p));
  CHECK(host_madvise(p, len, MADV_DONTDUMP, &err) == 0, "MADV_DONTDUMP: %s", strerror(err));
  CHECK(vma_dontdump(p) == 1, "after MADV_DONTDUMP the VMA is not dd (%d)", vma_dontdump(p));
  CHECK(host_madvise(p, len, MADV_DODUMP, &err) == 0, "MADV_DODUMP: %s", strerror(err));
  CHECK(vma_dontdump(p) == 0, "after MADV_DODUMP the VMA is still dd (%d)", vma_dontdump(p));
  munmap(p, len);
}

static void mode_drop(void) {
  const size_t n = 8;
  size_t len = n * (size_t)page;
  unsigned char *p = map_pages(n);
  int err;
  fill(p, len, 9);
  CHECK(host_madvise(p, len, MADV_DONTDUMP, &err) == 0, "MADV_DONTDUMP: %d (%s)", err,
        strerror(err));
  CHECK(vma_dontdump(p) == 0, "VAMALLOC_HOST_DONTDUMP=drop but the VMA is dd (%d)", vma_dontdump(p));
  CHECK(host_madvise(p, len, MADV_DODUMP, &err) == 0, "MADV_DODUMP: %d (%s)", err, strerror(err));
  CHECK(vma_dontdump(p) == 0, "VMA dd after DODUMP (%d)", vma_dontdump(p));
  CHECK(intact(p, len, 9), "memory changed by DONTDUMP/DODUMP");
  /* Other advice still reaches the kernel. */
  CHECK(host_madvise(p, len, MADV_DONTNEED, &err) == 0, "MADV_DONTNEED: %s", strerror(err));
  CHECK(all_zero(p, len), "memory after MADV_DONTNEED does not read zero");
  same_error("unaligned address", p + 1, (size_t)page, MADV_DONTNEED, EINVAL);
  munmap(p, len);
}

static long now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000L + ts.tv_nsec / 1000;
}

static void mode_eagain(long calls) {
  const size_t n = 4;
  size_t len = n * (size_t)page;
  unsigned char *p = map_pages(n);
  int err;
  fill(p, len, 11);
  long t0 = now_us();
  for (long i = 0; i < calls; i++) {
    int r = host_madvise(p, len, MADV_DONTNEED, &err);
    CHECK(r == -1 && err == EAGAIN, "call %ld: madvise returned %d errno %d (%s), expected -1 EAGAIN",
          i, r, err, strerror(err));
  }
  long t1 = now_us();
  /* The advice did not happen: a give-up must leave the memory as it was. */
  CHECK(intact(p, len, 11), "memory changed although every MADV_DONTNEED failed");
  /* Only DONTNEED is injected: other advice and mincore still work. */
  CHECK(host_madvise(p, len, MADV_WILLNEED, &err) == 0, "MADV_WILLNEED: %s", strerror(err));
  unsigned char v[4];
  CHECK(mincore(p, len, v) == 0, "mincore: %s", strerror(errno));
  printf("elapsed_us=%ld calls=%ld\n", t1 - t0, calls);
  munmap(p, len);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: shim_semantics basic|drop|eagain shim|libc [N]\n");
    return 2;
  }
  page = sysconf(_SC_PAGESIZE);
  setvbuf(stdout, NULL, _IONBF, 0);
  check_resolution(argv[2]);
  if (strcmp(argv[1], "basic") == 0)
    mode_basic();
  else if (strcmp(argv[1], "drop") == 0)
    mode_drop();
  else if (strcmp(argv[1], "eagain") == 0)
    mode_eagain(argc > 3 ? atol(argv[3]) : 1);
  else {
    fprintf(stderr, "unknown mode %s\n", argv[1]);
    return 2;
  }
  if (failures) {
    fprintf(stderr, "%d check(s) failed in mode %s\n", failures, argv[1]);
    return 1;
  }
  printf("ok %s\n", argv[1]);
  return 0;
}
