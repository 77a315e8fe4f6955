/* live_heap: keep N MiB of real, verified memory live through the standard
 * malloc names, to measure and test what an allocator gives a program under
 * an address-space budget (RLIMIT_AS, VAMALLOC_VA_BUDGET, VA bits, a mapping
 * cap).
 *
 * Written against the STANDARD names only and never linked with vamalloc: it
 * gets vamalloc (or jemalloc, mimalloc, tcmalloc) through LD_PRELOAD, and runs
 * plainly under glibc, so the same binary validates the tests that use it.
 *
 * Usage:
 *   live_heap --mib N [--churn R]     keep N MiB live (sum of requested sizes),
 *                                     then R rounds (default 2) of: free about
 *                                     1/8 of the blocks, refill to N MiB
 *   live_heap --max [--cap-mib C]     grow until the first NULL (or C MiB,
 *                                     default 4096), print the largest N
 *                                     reached, free everything, then grow
 *                                     again with the same sizes to show
 *                                     recovery (must reach 3/4 of N)
 *   live_heap --check-below BITS [--mib N]
 *                                     keep N MiB live (default 64) plus huge,
 *                                     over-aligned, calloc'd and realloc-grown
 *                                     blocks; then every block must end below
 *                                     2^BITS and so must every mapping that
 *                                     appeared in /proc/self/maps after main()
 *                                     started (a snapshot is taken first, with
 *                                     open/read into a static buffer, before
 *                                     any allocation)
 *   live_heap --map-churn K [--huge-kib S]
 *                                     hold up to K huge blocks of S KiB
 *                                     (default 5120: just over a 4 MiB chunk,
 *                                     so each needs its own mapping) until the
 *                                     first NULL; then free every other one and
 *                                     allocate a quarter of what was held
 *                                     again (all of it must succeed)
 *   live_heap --startup-probe         print VmSize at main() entry (before any
 *                                     allocation by this program) and right
 *                                     after malloc(16), and the sizes of the
 *                                     file-backed mappings (total, and those
 *                                     whose path contains --lib SUBSTR)
 *   common: --seed S   PRNG seed (default 1; the same seed gives the same
 *                      sizes under every allocator)
 *
 * Sizes (by bytes, so the small blocks really dominate the block count):
 * 70% of the bytes in small blocks of 16..1024 B, 25% in medium blocks of
 * 1..256 KiB, 5% in large blocks of 256 KiB..8 MiB (the next class is the one
 * furthest behind its share; the size within a class comes from a
 * splitmix64 PRNG).  Every byte of every block is written: a 16-byte header
 * {next, size, id} links the blocks into a list (so this program needs no
 * other memory: no metadata array that could itself fail or count against
 * the budget) and the rest is a pattern derived from (seed, id, offset).
 * Every block is verified in full before it is freed; ids must decrease
 * strictly along the list and the block count and byte sum must match.
 *
 * Output: "live_heap: key=value ..." lines on stdout, written with write(2)
 * (no stdio buffers, so nothing here allocates except the blocks).  The
 * first line always carries baseline_vmsize_kib, VmSize at main() entry.
 *
 * Exit status: 0 success; 1 data corruption (a verify failed); 2 usage;
 * 3 (--mib, --check-below) an allocation returned NULL with errno ENOMEM;
 * 4 an allocation returned NULL with errno other than ENOMEM; 5 recovery
 * failed after freeing; 6 (--check-below) a block or a new mapping lies at
 * or above 2^BITS; 7 /proc could not be read.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MIB ((uint64_t)1 << 20)
#define KIB ((uint64_t)1 << 10)

enum { EXIT_CORRUPT = 1, EXIT_USAGE = 2, EXIT_NULL = 3, EXIT_ERRNO = 4,
       EXIT_RECOVERY = 5, EXIT_ABOVE = 6, EXIT_PROC = 7 };

/* ---- output without malloc --------------------------------------------- */

static void out_fd(int fd, const char *fmt, va_list ap) {
  char buf[1024];
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  if (n < 0) return;
  if ((size_t)n >= sizeof buf) n = (int)sizeof buf - 1;
  const char *p = buf;
  while (n > 0) {
    ssize_t w = write(fd, p, (size_t)n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return;
    }
    p += w;
    n -= (int)w;
  }
}

__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  out_fd(1, fmt, ap);
  va_end(ap);
}

__attribute__((format(printf, 1, 2))) static void err(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  out_fd(2, fmt, ap);
  va_end(ap);
}

/* ---- /proc without malloc ------------------------------------------------ */

/* Read a whole /proc file into buf (NUL-terminated); returns its length or
 * -1.  /proc/self/maps is generated page by page, so read until EOF. */
static ssize_t read_proc(const char *path, char *buf, size_t cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t len = 0;
  for (;;) {
    if (len + 1 >= cap) {
      close(fd);
      return -1; /* buffer too small: never silently truncate */
    }
    ssize_t r = read(fd, buf + len, cap - 1 - len);
    if (r < 0) {
      if (errno == EINTR) continue;
      close(fd);
      return -1;
    }
    if (r == 0) break;
    len += (size_t)r;
  }
  close(fd);
  buf[len] = 0;
  return (ssize_t)len;
}

static uint64_t vmsize_kib(void) {
  static char buf[8192];
  if (read_proc("/proc/self/status", buf, sizeof buf) < 0) return 0;
  const char *p = strstr(buf, "\nVmSize:");
  if (!p) return 0;
  return strtoull(p + 8, NULL, 10);
}

/* Mappings are compared as [start, end) pairs; a mapping that the kernel
 * merged with a new one, or split, has a new pair and so counts as new. */
#define MAPS_BUF (1u << 20)
#define MAPS_MAX 16384
struct range { uint64_t start, end; };
static char maps_buf[MAPS_BUF];
static struct range snap[MAPS_MAX];
static size_t snap_n;

/* Parse /proc/self/maps (already in maps_buf).  For each line calls
 * fn(start, end, path-or-empty, ctx). */
static int parse_maps(void (*fn)(uint64_t, uint64_t, const char *, size_t, void *), void *ctx) {
  char *p = maps_buf;
  int lines = 0;
  while (*p) {
    char *nl = strchr(p, '\n');
    if (!nl) nl = p + strlen(p);
    char *q;
    uint64_t s = strtoull(p, &q, 16);
    if (*q != '-') return -1;
    uint64_t e = strtoull(q + 1, &q, 16);
    /* fields: range perms offset dev inode [path] */
    const char *path = "";
    size_t plen = 0;
    int field = 1;
    while (q < nl && field < 6) {
      while (q < nl && *q == ' ') q++;
      if (q >= nl) break;
      field++;
      if (field == 6) {
        path = q;
        plen = (size_t)(nl - q);
        break;
      }
      while (q < nl && *q != ' ') q++;
    }
    fn(s, e, path, plen, ctx);
    lines++;
    p = *nl ? nl + 1 : nl;
  }
  return lines;
}

static void snap_one(uint64_t s, uint64_t e, const char *path, size_t plen, void *ctx) {
  (void)path; (void)plen; (void)ctx;
  if (snap_n < MAPS_MAX) snap[snap_n++] = (struct range){s, e};
}

static int in_snapshot(uint64_t s, uint64_t e) {
  for (size_t i = 0; i < snap_n; i++)
    if (snap[i].start == s && snap[i].end == e) return 1;
  return 0;
}

/* ---- PRNG and pattern ---------------------------------------------------- */

static uint64_t rng_state;
static uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
static uint64_t rnd(void) { return splitmix(&rng_state); }

static uint64_t seed_opt = 1;

struct blk {
  struct blk *next;
  uint32_t size; /* requested size in bytes, 16 .. < 4 GiB */
  uint32_t id;
};

#define PAT_K 0x9e3779b97f4a7c15ull
static uint64_t pat_base(uint32_t id, uint64_t size) {
  uint64_t s = seed_opt * 0x100000001b3ull ^ ((uint64_t)id << 32) ^ size;
  return splitmix(&s);
}

/* Fill bytes [from, size) of p with the pattern for (id, size). */
static void fill(unsigned char *p, uint64_t from, uint64_t size, uint32_t id) {
  uint64_t base = pat_base(id, size);
  uint64_t i = from;
  for (; i < size && (i & 7); i++) p[i] = (unsigned char)((base ^ ((i / 8 + 1) * PAT_K)) >> (8 * (i & 7)));
  for (; i + 8 <= size; i += 8) {
    uint64_t w = base ^ ((i / 8 + 1) * PAT_K);
    memcpy(p + i, &w, 8);
  }
  for (; i < size; i++) p[i] = (unsigned char)((base ^ ((i / 8 + 1) * PAT_K)) >> (8 * (i & 7)));
}

/* Returns the first bad offset, or -1. */
static int64_t check(const unsigned char *p, uint64_t from, uint64_t size, uint32_t id) {
  uint64_t base = pat_base(id, size);
  uint64_t i = from;
  for (; i < size && (i & 7); i++)
    if (p[i] != (unsigned char)((base ^ ((i / 8 + 1) * PAT_K)) >> (8 * (i & 7)))) return (int64_t)i;
  for (; i + 8 <= size; i += 8) {
    uint64_t w = base ^ ((i / 8 + 1) * PAT_K), g;
    memcpy(&g, p + i, 8);
    if (g != w) {
      for (uint64_t j = i; j < i + 8; j++)
        if (p[j] != (unsigned char)(w >> (8 * (j - i)))) return (int64_t)j;
    }
  }
  for (; i < size; i++)
    if (p[i] != (unsigned char)((base ^ ((i / 8 + 1) * PAT_K)) >> (8 * (i & 7)))) return (int64_t)i;
  return -1;
}

/* ---- the live list --------------------------------------------------------- */

enum { SMALL, MEDIUM, LARGE, NCLASS };
static const unsigned share[NCLASS] = {70, 25, 5};

static struct blk *head;
static uint64_t live_bytes, live_blocks, class_bytes[NCLASS];
static uint32_t next_id = 1;
static uint64_t above_limit; /* --check-below: 2^BITS, else 0 */
static int above_count;

static int class_of(uint64_t size) {
  return size <= 1024 ? SMALL : size <= 256 * KIB ? MEDIUM : LARGE;
}

static int pick_class(void) {
  /* the class furthest behind its share of the bytes: min bytes_c/share_c */
  int best = SMALL;
  for (int c = 1; c < NCLASS; c++)
    if (class_bytes[c] * share[best] < class_bytes[best] * share[c]) best = c;
  return best;
}

static uint64_t pick_size(int c) {
  uint64_t r = rnd();
  switch (c) {
  case SMALL: return 16 + r % (1024 - 16 + 1);
  case MEDIUM: return 1024 + r % (256 * KIB - 1024 + 1);
  default: return 256 * KIB + r % (8 * MIB - 256 * KIB + 1);
  }
}

static void note_pointer(const void *p, uint64_t size, const char *what) {
  if (!above_limit) return;
  uint64_t a = (uint64_t)(uintptr_t)p;
  if (a + size > above_limit) {
    if (above_count++ < 10)
      err("live_heap: FAIL %s block %p + %" PRIu64 " ends at or above 2^%d (0x%" PRIx64 ")\n",
          what, p, size, __builtin_ctzll(above_limit), above_limit);
  }
}

/* A NULL from malloc: check errno.  Returns EXIT_NULL or EXIT_ERRNO. */
static int null_result(int e, uint64_t size, const char *what) {
  if (e != ENOMEM) {
    err("live_heap: FAIL %s(%" PRIu64 ") returned NULL with errno %d (%s), not ENOMEM\n", what, size, e,
        strerror(e));
    return EXIT_ERRNO;
  }
  return EXIT_NULL;
}

/* Allocate one block of `size` (>= 16) and link it in.  0, or EXIT_NULL /
 * EXIT_ERRNO with nothing changed. */
static int add_block(uint64_t size) {
  errno = 0;
  struct blk *b = malloc(size);
  if (!b) return null_result(errno, size, "malloc");
  note_pointer(b, size, "malloc");
  b->next = head;
  b->size = (uint32_t)size;
  b->id = next_id++;
  fill((unsigned char *)b, sizeof *b, size, b->id);
  head = b;
  live_bytes += size;
  live_blocks++;
  class_bytes[class_of(size)] += size;
  return 0;
}

static int verify_block(const struct blk *b) {
  int64_t bad = check((const unsigned char *)b, sizeof *b, b->size, b->id);
  if (bad >= 0) {
    err("live_heap: FAIL block %p id %u size %u: byte %" PRId64 " corrupted\n", (const void *)b, b->id,
        b->size, bad);
    return EXIT_CORRUPT;
  }
  return 0;
}

static void drop_block(struct blk *b) {
  live_bytes -= b->size;
  live_blocks--;
  class_bytes[class_of(b->size)] -= b->size;
  free(b);
}

/* Grow until live_bytes >= target (the last block is clamped so the sum is
 * exact).  0, or EXIT_NULL / EXIT_ERRNO. */
static int grow_to(uint64_t target) {
  while (live_bytes < target) {
    uint64_t size = pick_size(pick_class());
    if (size > target - live_bytes) size = target - live_bytes;
    if (size < 16) size = 16;
    int r = add_block(size);
    if (r) return r;
  }
  return 0;
}

/* Walk the list: every block verified, ids strictly decreasing, count and
 * sum as recorded. */
static int verify_all(void) {
  uint64_t n = 0, bytes = 0;
  uint32_t prev = UINT32_MAX;
  for (struct blk *b = head; b; b = b->next) {
    if (b->id >= prev || b->size < 16) {
      err("live_heap: FAIL list header corrupted at %p (id %u after %u, size %u)\n", (void *)b, b->id,
          prev, b->size);
      return EXIT_CORRUPT;
    }
    prev = b->id;
    int r = verify_block(b);
    if (r) return r;
    n++;
    bytes += b->size;
  }
  if (n != live_blocks || bytes != live_bytes) {
    err("live_heap: FAIL list holds %" PRIu64 " blocks / %" PRIu64 " bytes, expected %" PRIu64 " / %" PRIu64 "\n",
        n, bytes, live_blocks, live_bytes);
    return EXIT_CORRUPT;
  }
  return 0;
}

static int free_all(void) {
  while (head) {
    struct blk *b = head;
    int r = verify_block(b);
    if (r) return r;
    head = b->next;
    drop_block(b);
  }
  return 0;
}

/* Free about 1 in `k` blocks (PRNG), each verified first. */
static int free_some(unsigned k) {
  struct blk **pp = &head;
  while (*pp) {
    struct blk *b = *pp;
    if (rnd() % k == 0) {
      int r = verify_block(b);
      if (r) return r;
      *pp = b->next;
      drop_block(b);
    } else {
      pp = &b->next;
    }
  }
  return 0;
}

static void print_state(const char *what) {
  say("live_heap: %s live_mib=%" PRIu64 " live_bytes=%" PRIu64 " blocks=%" PRIu64
      " small_mib=%" PRIu64 " medium_mib=%" PRIu64 " large_mib=%" PRIu64 " vmsize_kib=%" PRIu64 "\n",
      what, live_bytes / MIB, live_bytes, live_blocks, class_bytes[SMALL] / MIB, class_bytes[MEDIUM] / MIB,
      class_bytes[LARGE] / MIB, vmsize_kib());
}

/* vamalloc's own statistics at a moment of interest (peak), when it is the
 * allocator: one JSON line on stderr. */
static void (*stats_print)(int, int);
static void print_allocator_stats(void) {
  if (stats_print) stats_print(2, 1 /* VAM_STATS_JSON */);
}

/* ---- modes -------------------------------------------------------------------- */

static int mode_mib(uint64_t mib, unsigned churn) {
  uint64_t target = mib * MIB;
  int r = grow_to(target);
  if (r) {
    print_state("NULL");
    say("live_heap: reached_mib=%" PRIu64 " target_mib=%" PRIu64 "\n", live_bytes / MIB, mib);
    return r;
  }
  print_state("grown");
  for (unsigned round = 0; round < churn; round++) {
    if ((r = free_some(8))) return r;
    if ((r = grow_to(target))) {
      print_state("NULL");
      say("live_heap: reached_mib=%" PRIu64 " target_mib=%" PRIu64 " churn_round=%u\n", live_bytes / MIB, mib,
          round);
      return r;
    }
  }
  if (churn) print_state("churned");
  if ((r = verify_all())) return r;
  if ((r = free_all())) return r;
  say("live_heap: OK mib=%" PRIu64 " churn=%u\n", mib, churn);
  return 0;
}

static int mode_max(uint64_t cap_mib) {
  uint64_t cap = cap_mib * MIB;
  int r = grow_to(cap);
  int capped = (r == 0);
  if (r == EXIT_ERRNO) return r;
  uint64_t max_bytes = live_bytes;
  print_state(capped ? "cap" : "NULL");
  print_allocator_stats();
  say("live_heap: max_mib=%" PRIu64 " max_bytes=%" PRIu64 " capped=%d\n", max_bytes / MIB, max_bytes, capped);
  if ((r = verify_all())) return r;
  if ((r = free_all())) return r;
  /* Recovery: the same sizes again, up to what fitted before. */
  rng_state = seed_opt;
  next_id = 1;
  r = grow_to(max_bytes);
  if (r == EXIT_ERRNO) return r;
  uint64_t again = live_bytes;
  print_state(r ? "recovery-NULL" : "recovered");
  say("live_heap: recovered_mib=%" PRIu64 " recovered_bytes=%" PRIu64 "\n", again / MIB, again);
  if ((r = verify_all())) return r;
  if ((r = free_all())) return r;
  if (again < max_bytes / 4 * 3) {
    err("live_heap: FAIL after freeing everything only %" PRIu64 " MiB could be allocated again (had %" PRIu64
        " MiB)\n", again / MIB, max_bytes / MIB);
    return EXIT_RECOVERY;
  }
  say("live_heap: OK max_mib=%" PRIu64 " recovered_mib=%" PRIu64 "\n", max_bytes / MIB, again / MIB);
  return 0;
}

static int maps_violations;
static uint64_t maps_new, maps_highest_new;
static void check_one(uint64_t s, uint64_t e, const char *path, size_t plen, void *ctx) {
  (void)ctx;
  if (in_snapshot(s, e)) return;
  /* the main stack may have grown: it is the kernel's, not an allocator's */
  if (plen == 7 && !memcmp(path, "[stack]", 7)) return;
  maps_new++;
  if (e > maps_highest_new) maps_highest_new = e;
  if (e > above_limit) {
    if (maps_violations++ < 10)
      err("live_heap: FAIL new mapping %" PRIx64 "-%" PRIx64 " %.*s lies at or above 2^%d\n", s, e, (int)plen,
          path, __builtin_ctzll(above_limit));
  }
}

/* One extra block, allocated some other way; written in full; kept on the
 * list so it is verified and freed like the others. */
static int add_special(struct blk *b, uint64_t size, const char *what) {
  note_pointer(b, size, what);
  b->next = head;
  b->size = (uint32_t)size;
  b->id = next_id++;
  fill((unsigned char *)b, sizeof *b, size, b->id);
  head = b;
  live_bytes += size;
  live_blocks++;
  class_bytes[class_of(size)] += size;
  return 0;
}

static int mode_check_below(unsigned bits, uint64_t mib) {
  int r = grow_to(mib * MIB);
  if (r) return r;
  /* huge, over-aligned, zeroed and realloc-grown blocks */
  static const uint64_t huge_sizes[] = {12 * MIB, 32 * MIB + 4096, 100 * MIB};
  for (size_t i = 0; i < sizeof huge_sizes / sizeof *huge_sizes; i++)
    if ((r = add_block(huge_sizes[i]))) return r;
  static const struct { uint64_t align, size; } al[] = {
    {2 * MIB, 3 * MIB}, {64 * MIB, 8 * MIB}, {1ull << 30, 6 * MIB}, {4096, 300 * KIB}};
  for (size_t i = 0; i < sizeof al / sizeof *al; i++) {
    void *p = NULL;
    int e = posix_memalign(&p, al[i].align, al[i].size);
    if (e) return null_result(e, al[i].size, "posix_memalign");
    if ((uint64_t)(uintptr_t)p % al[i].align) {
      err("live_heap: FAIL posix_memalign(%" PRIu64 ") returned %p\n", al[i].align, p);
      return EXIT_CORRUPT;
    }
    add_special(p, al[i].size, "posix_memalign");
  }
  {
    uint64_t size = 48 * MIB;
    errno = 0;
    unsigned char *p = calloc(1, size);
    if (!p) return null_result(errno, size, "calloc");
    for (uint64_t i = 0; i < size; i += 4096)
      if (p[i] | p[i + 4095]) {
        err("live_heap: FAIL calloc block not zero at offset %" PRIu64 "\n", i);
        return EXIT_CORRUPT;
      }
    add_special((struct blk *)p, size, "calloc");
  }
  {
    /* grow a block by realloc through large into huge sizes: an mremap that
     * may move must stay below the limit too */
    uint64_t size = 1 * MIB;
    errno = 0;
    unsigned char *p = malloc(size);
    if (!p) return null_result(errno, size, "malloc");
    fill(p, 0, size, 0xffffff00u);
    static const uint64_t steps[] = {3 * MIB, 20 * MIB, 160 * MIB};
    for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
      errno = 0;
      unsigned char *q = realloc(p, steps[i]);
      if (!q) return null_result(errno, steps[i], "realloc");
      int64_t bad = check(q, 0, size, 0xffffff00u + (uint32_t)i);
      if (bad >= 0) {
        err("live_heap: FAIL realloc to %" PRIu64 " lost byte %" PRId64 "\n", steps[i], bad);
        return EXIT_CORRUPT;
      }
      note_pointer(q, steps[i], "realloc");
      p = q;
      size = steps[i];
      fill(p, 0, size, 0xffffff00u + (uint32_t)i + 1);
    }
    add_special((struct blk *)p, size, "realloc");
  }
  print_state("grown");
  if (read_proc("/proc/self/maps", maps_buf, sizeof maps_buf) < 0) {
    err("live_heap: cannot read /proc/self/maps\n");
    return EXIT_PROC;
  }
  parse_maps(check_one, NULL);
  say("live_heap: check_below bits=%u new_mappings=%" PRIu64 " highest_new_end=0x%" PRIx64
      " mapping_violations=%d block_violations=%d\n",
      bits, maps_new, maps_highest_new, maps_violations, above_count);
  if ((r = verify_all())) return r;
  if ((r = free_all())) return r;
  if (maps_violations || above_count) return EXIT_ABOVE;
  say("live_heap: OK check_below bits=%u\n", bits);
  return 0;
}

static int count_lines(void) {
  if (read_proc("/proc/self/maps", maps_buf, sizeof maps_buf) < 0) return -1;
  int n = 0;
  for (const char *p = maps_buf; *p; p++) n += (*p == '\n');
  return n;
}

/* Huge blocks written at both ends and one word per MiB (so the run stays
 * light on RSS while every block is still checked). */
#define CHURN_MAX 100000
static unsigned char *churn_blk[CHURN_MAX];
static void churn_fill(unsigned char *p, uint64_t size, uint32_t id) {
  fill(p, 0, 4096, id);
  fill(p + size - 4096, 0, 4096, id ^ 0x5a5a5a5au);
  for (uint64_t off = MIB; off + 8 <= size - 4096; off += MIB) {
    uint64_t w = pat_base(id, off);
    memcpy(p + off, &w, 8);
  }
}
static int churn_check(const unsigned char *p, uint64_t size, uint32_t id) {
  if (check(p, 0, 4096, id) >= 0 || check(p + size - 4096, 0, 4096, id ^ 0x5a5a5a5au) >= 0) goto bad;
  for (uint64_t off = MIB; off + 8 <= size - 4096; off += MIB) {
    uint64_t w = pat_base(id, off), g;
    memcpy(&g, p + off, 8);
    if (g != w) goto bad;
  }
  return 0;
bad:
  err("live_heap: FAIL huge block %p id %u corrupted\n", (const void *)p, id);
  return EXIT_CORRUPT;
}

static int mode_map_churn(unsigned k, uint64_t huge_kib) {
  uint64_t size = huge_kib * KIB;
  if (k > CHURN_MAX || size < 2 * 4096) return EXIT_USAGE;
  int base_maps = count_lines();
  unsigned held = 0;
  int reached_null = 0, r;
  while (held < k) {
    errno = 0;
    unsigned char *p = malloc(size);
    if (!p) {
      if ((r = null_result(errno, size, "malloc")) == EXIT_ERRNO) return r;
      reached_null = 1;
      break;
    }
    churn_fill(p, size, held);
    churn_blk[held++] = p;
  }
  int peak_maps = count_lines();
  print_allocator_stats();
  say("live_heap: map_churn held=%u of=%u reached_null=%d block_kib=%" PRIu64
      " process_maps_before=%d process_maps_at_peak=%d vmsize_kib=%" PRIu64 "\n",
      held, k, reached_null, huge_kib, base_maps, peak_maps, vmsize_kib());
  /* free every other block */
  unsigned freed = 0;
  for (unsigned i = 0; i < held; i += 2) {
    if ((r = churn_check(churn_blk[i], size, i))) return r;
    free(churn_blk[i]);
    churn_blk[i] = NULL;
    freed++;
  }
  /* a quarter of what was held must fit again, in the freed slots */
  unsigned want = held / 4, got = 0;
  for (unsigned i = 0; i < held && got < want; i += 2) {
    errno = 0;
    unsigned char *p = malloc(size);
    if (!p) {
      if ((r = null_result(errno, size, "malloc")) == EXIT_ERRNO) return r;
      break;
    }
    churn_fill(p, size, i);
    churn_blk[i] = p;
    got++;
  }
  say("live_heap: map_churn freed=%u reallocated=%u wanted=%u process_maps=%d\n", freed, got, want,
      count_lines());
  for (unsigned i = 0; i < held; i++)
    if (churn_blk[i]) {
      if ((r = churn_check(churn_blk[i], size, i))) return r;
      free(churn_blk[i]);
    }
  if (got < want) {
    err("live_heap: FAIL after freeing %u huge blocks only %u of %u could be allocated again\n", freed, got,
        want);
    return EXIT_RECOVERY;
  }
  say("live_heap: OK map_churn held=%u reached_null=%d\n", held, reached_null);
  return 0;
}

struct libsum { const char *sub; uint64_t file_kib, lib_kib, anon_kib; };
static void sum_one(uint64_t s, uint64_t e, const char *path, size_t plen, void *ctx) {
  struct libsum *ls = ctx;
  uint64_t kib = (e - s) / KIB;
  if (plen && path[0] == '/') {
    ls->file_kib += kib;
    if (ls->sub && *ls->sub && memmem(path, plen, ls->sub, strlen(ls->sub))) ls->lib_kib += kib;
  } else if (!plen) {
    ls->anon_kib += kib;
  }
}

static int mode_startup(uint64_t entry_kib, const char *lib) {
  void *p = malloc(16);
  uint64_t after = vmsize_kib();
  if (!p) return null_result(errno, 16, "malloc");
  memset(p, 0x5a, 16);
  if (read_proc("/proc/self/maps", maps_buf, sizeof maps_buf) < 0) return EXIT_PROC;
  struct libsum ls = {lib, 0, 0, 0};
  parse_maps(sum_one, &ls);
  say("live_heap: startup entry_kib=%" PRIu64 " after_malloc_kib=%" PRIu64 " file_kib=%" PRIu64
      " lib_kib=%" PRIu64 " anon_kib=%" PRIu64 "\n", entry_kib, after, ls.file_kib, ls.lib_kib, ls.anon_kib);
  free(p);
  return 0;
}

static void usage(void) {
  err("usage: live_heap --mib N [--churn R] | --max [--cap-mib C] | --check-below BITS [--mib N]\n"
      "                 | --map-churn K [--huge-kib S] | --startup-probe [--lib SUBSTR]   [--seed S]\n");
}

int main(int argc, char **argv) {
  /* Before anything else: VmSize and the mapping snapshot. */
  uint64_t baseline = vmsize_kib();
  if (read_proc("/proc/self/maps", maps_buf, sizeof maps_buf) < 0) {
    err("live_heap: cannot read /proc/self/maps\n");
    return EXIT_PROC;
  }
  parse_maps(snap_one, NULL);

  enum { NONE, MIB_MODE, MAX_MODE, BELOW_MODE, CHURN_MODE, STARTUP_MODE } mode = NONE;
  uint64_t mib = 0, cap_mib = 4096, huge_kib = 5120;
  unsigned churn = 2, bits = 0, churn_k = 0;
  int have_mib = 0;
  const char *lib = "";
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEEDV() do { if (!v) { usage(); return EXIT_USAGE; } i++; } while (0)
    if (!strcmp(a, "--mib")) { NEEDV(); mib = strtoull(v, NULL, 0); have_mib = 1; if (mode == NONE) mode = MIB_MODE; }
    else if (!strcmp(a, "--max")) mode = MAX_MODE;
    else if (!strcmp(a, "--cap-mib")) { NEEDV(); cap_mib = strtoull(v, NULL, 0); }
    else if (!strcmp(a, "--churn")) { NEEDV(); churn = (unsigned)strtoul(v, NULL, 0); }
    else if (!strcmp(a, "--check-below")) { NEEDV(); bits = (unsigned)strtoul(v, NULL, 0); mode = BELOW_MODE; }
    else if (!strcmp(a, "--map-churn")) { NEEDV(); churn_k = (unsigned)strtoul(v, NULL, 0); mode = CHURN_MODE; }
    else if (!strcmp(a, "--huge-kib")) { NEEDV(); huge_kib = strtoull(v, NULL, 0); }
    else if (!strcmp(a, "--startup-probe")) mode = STARTUP_MODE;
    else if (!strcmp(a, "--lib")) { NEEDV(); lib = v; }
    else if (!strcmp(a, "--seed")) { NEEDV(); seed_opt = strtoull(v, NULL, 0); }
    else { usage(); return EXIT_USAGE; }
#undef NEEDV
  }
  if (mode == STARTUP_MODE) return mode_startup(baseline, lib);
  say("live_heap: baseline_vmsize_kib=%" PRIu64 " baseline_mappings=%zu\n", baseline, snap_n);
  rng_state = seed_opt;
  {
    void *sym = dlsym(RTLD_DEFAULT, "vam_stats_print");
    memcpy(&stats_print, &sym, sizeof sym); /* object to function pointer, portably */
  }
  switch (mode) {
  case MIB_MODE: return mode_mib(mib, churn);
  case MAX_MODE: return mode_max(cap_mib);
  case BELOW_MODE:
    if (bits < 20 || bits > 63) { usage(); return EXIT_USAGE; }
    above_limit = 1ull << bits;
    return mode_check_below(bits, have_mib ? mib : 64);
  case CHURN_MODE: return mode_map_churn(churn_k, huge_kib);
  default: usage(); return EXIT_USAGE;
  }
}
