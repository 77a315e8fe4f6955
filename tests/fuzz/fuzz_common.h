/* fuzz_common.h: what both fuzz targets share (tests/fuzz/README.md).
 *
 * - the input reader: the fuzzer's bytes as a stream of small integers,
 *   zero once the input is used up;
 * - sizes and alignments that span every size range (small, medium, large,
 *   huge capped at HUGE_CAP so a run stays fast) and the boundaries between;
 * - the content pattern of a block, derived from its id and the offset;
 * - the interval set of live memory (blocks and page reservations): a new
 *   block that overlaps anything live is a bug;
 * - die(): one line naming the mismatch, then abort() so that libFuzzer
 *   saves the input;
 * - options: the library reads VAMALLOC_* from the environment once, at
 *   init, so a target that needs options re-executes itself with them set.
 *
 * The targets link vamalloc's internals (the fault hook, the options), but
 * the checks go through the public API (include/vamalloc.h). */
#ifndef VAM_FUZZ_COMMON_H
#define VAM_FUZZ_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "vamalloc.h"

#define KiB ((size_t)1024)
#define MiB ((size_t)1024 * 1024)
#define HUGE_CAP (6 * MiB)   /* the largest ordinary request */
#define MAX_ALIGN (4 * MiB)  /* the largest alignment asked for */

/* ---- failing ------------------------------------------------------------- */

static unsigned long fz_op_index; /* the operation being checked */
static const char *fz_op_name = "";

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\nFUZZ MODEL MISMATCH (op #%lu %s): %s\n", fz_op_index, fz_op_name, msg);
  fflush(stderr);
  abort();
}

/* ---- the input ----------------------------------------------------------- */

typedef struct reader {
  const uint8_t *p;
  size_t n, at;
} reader_t;

static inline bool rd_more(const reader_t *r) { return r->at < r->n; }
static inline uint8_t rd_u8(reader_t *r) { return r->at < r->n ? r->p[r->at++] : 0; }
static inline uint16_t rd_u16(reader_t *r) {
  uint16_t lo = rd_u8(r);
  return (uint16_t)(lo | (unsigned)rd_u8(r) << 8);
}
static inline uint32_t rd_u32(reader_t *r) {
  uint32_t lo = rd_u16(r);
  return lo | (uint32_t)rd_u16(r) << 16;
}

/* A request size: mostly small, then medium, large and huge (at most
 * HUGE_CAP), and the edges of each range; *absurd is set for sizes no
 * allocator can serve (above PTRDIFF_MAX), which must fail with ENOMEM. */
static inline size_t rd_size(reader_t *r, bool *absurd) {
  static const size_t edges[] = {0, 1, 7, 8, 15, 16, 17, 1024, 1025, 32 * KiB, 32 * KiB + 1,
                                 256 * KiB - 1, 256 * KiB, 256 * KiB + 1, 2 * MiB - 1, 2 * MiB,
                                 2 * MiB + 1, 4 * MiB, 4 * MiB + 1};
  uint8_t sel = rd_u8(r);
  uint32_t v = rd_u32(r);
  *absurd = false;
  switch (sel & 15) {
    case 0: case 1: case 2: case 3: case 4: case 5: case 6: return v % 1025;       /* small */
    case 7: case 8: case 9: case 10: return 1025 + v % (256 * KiB - 1024);        /* medium */
    case 11: case 12: return 256 * KiB + 1 + v % (2 * MiB - 256 * KiB);           /* large */
    case 13: return 2 * MiB + 1 + v % (HUGE_CAP - 2 * MiB);                        /* huge */
    case 14: return edges[v % (sizeof edges / sizeof edges[0])];
    default:
      if ((v & 7) == 0) {
        *absurd = true;
        return (v & 8) ? SIZE_MAX - (v >> 4) % 4096 : (size_t)PTRDIFF_MAX + 1 + (v >> 4) % 4096;
      }
      return v % 97;
  }
}

/* A power-of-two alignment from 1 to MAX_ALIGN, or (bad) a non-power. */
static inline size_t rd_align(reader_t *r, bool *bad) {
  uint8_t v = rd_u8(r);
  *bad = false;
  if ((v & 0x1f) == 0x1f) {
    *bad = true;
    static const size_t odd[] = {0, 3, 24, 48, 4095, 65537};
    return odd[(v >> 5) % 6];
  }
  unsigned shift = v % 23; /* 1 B .. 4 MiB */
  return (size_t)1 << shift;
}

/* ---- content patterns ------------------------------------------------------
 * Every byte of a live block is a function of the block's id and its
 * offset, with bit 7 set: a word of pattern never decodes as a free-list
 * link (the page keys have top bits 0x01..0x2e), so live data never
 * "looks free" to the double-free check.  Blocks up to SAMPLE_ALL bytes
 * are written whole; bigger ones at their first and last 4 KiB and 64
 * bytes every 64 KiB between (fast, and still sees a copy that is short by
 * a byte at either end of a region). */
#define SAMPLE_ALL (16 * KiB)

static inline uint8_t pat(uint32_t id, size_t off) {
  uint32_t x = id * 0x9e3779b1u + (uint32_t)off * 0x85ebca6bu;
  x ^= x >> 15;
  return (uint8_t)(0x80 | (x & 0x7f));
}

/* Calls fn(off, len) for each region of a block of n bytes. */
#define FOR_REGIONS(n, off, len, body)                                         \
  do {                                                                         \
    size_t n_ = (n);                                                           \
    if (n_ <= SAMPLE_ALL) {                                                    \
      size_t off = 0, len = n_;                                                \
      body;                                                                    \
    } else {                                                                   \
      {                                                                        \
        size_t off = 0, len = 4096;                                            \
        body;                                                                  \
      }                                                                        \
      for (size_t k_ = 64 * KiB; k_ + 64 <= n_ - 4096; k_ += 64 * KiB) {     \
        size_t off = k_, len = 64;                                             \
        body;                                                                  \
      }                                                                        \
      {                                                                        \
        size_t off = n_ - 4096, len = 4096;                                    \
        body;                                                                  \
      }                                                                        \
    }                                                                          \
  } while (0)

static inline void fill(uint8_t *p, size_t n, uint32_t id) {
  FOR_REGIONS(n, off, len, {
    for (size_t i = off; i < off + len; i++) p[i] = pat(id, i);
  });
}

/* Checks the regions of a block of `n` bytes filled with id, up to `limit`
 * bytes; dies naming what and the first bad byte. */
static inline void verify(const uint8_t *p, size_t n, size_t limit, uint32_t id, const char *what) {
  FOR_REGIONS(n, off, len, {
    for (size_t i = off; i < off + len && i < limit; i++)
      if (p[i] != pat(id, i))
        die("%s: block %u at %p (%zu bytes, %zu checked): byte %zu is %#x, expected %#x", what,
            id, (void *)p, n, limit, i, p[i], pat(id, i));
  });
}

static inline void verify_zero(const uint8_t *p, size_t n, const char *what) {
  size_t i = 0;
  for (; i < n && ((uintptr_t)(p + i) & 7); i++)
    if (p[i]) die("%s: %p byte %zu of %zu is %#x, not zero", what, (void *)p, i, n, p[i]);
  for (; i + 8 <= n; i += 8)
    if (*(const uint64_t *)(p + i)) break;
  for (; i < n; i++)
    if (p[i]) die("%s: %p byte %zu of %zu is %#x, not zero", what, (void *)p, i, n, p[i]);
}

/* ---- the interval set of live memory --------------------------------------- */

typedef struct ival {
  uintptr_t start, end; /* [start, end) */
  int tag;              /* who owns it (the target's index) */
} ival_t;

typedef struct ivset {
  ival_t v[4096];
  size_t n;
} ivset_t;

/* First index whose start is >= a. */
static inline size_t iv_lower(const ivset_t *s, uintptr_t a) {
  size_t lo = 0, hi = s->n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (s->v[mid].start < a) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/* The tag of an interval overlapping [a, e), or -1. */
static inline int iv_overlap(const ivset_t *s, uintptr_t a, uintptr_t e) {
  size_t i = iv_lower(s, a);
  if (i < s->n && s->v[i].start < e) return s->v[i].tag;
  if (i > 0 && s->v[i - 1].end > a) return s->v[i - 1].tag;
  return -1;
}

static inline void iv_add(ivset_t *s, uintptr_t a, uintptr_t e, int tag, const char *what) {
  int o = iv_overlap(s, a, e);
  if (o >= 0) die("%s: new range [%#lx, %#lx) overlaps live range #%d", what, (unsigned long)a,
                  (unsigned long)e, o);
  if (s->n == sizeof s->v / sizeof s->v[0]) die("interval set full (fuzzer bug)");
  size_t i = iv_lower(s, a);
  memmove(&s->v[i + 1], &s->v[i], (s->n - i) * sizeof s->v[0]);
  s->v[i] = (ival_t){a, e, tag};
  s->n++;
}

static inline void iv_del(ivset_t *s, uintptr_t a) {
  size_t i = iv_lower(s, a);
  if (i >= s->n || s->v[i].start != a) die("interval %#lx not in the set (fuzzer bug)", (unsigned long)a);
  memmove(&s->v[i], &s->v[i + 1], (s->n - i - 1) * sizeof s->v[0]);
  s->n--;
}

/* ---- statistics ------------------------------------------------------------ */

static inline vam_stats_t stats_now(void) {
  vam_stats_t s;
  memset(&s, 0, sizeof s);
  if (vam_stats_get(&s, sizeof s) != sizeof s) die("vam_stats_get did not fill the struct");
  return s;
}

static inline uint64_t misuse_total(const vam_stats_t *s) {
  return s->misuse_double_free + s->misuse_interior_free + s->misuse_invalid_pointer +
         s->misuse_freelist_corrupt + s->misuse_canary + s->misuse_write_after_free;
}

/* ---- options --------------------------------------------------------------
 * vamalloc reads VAMALLOC_* once, at init, from environ (src/options.c),
 * before LLVMFuzzerInitialize runs.  When a wanted option is missing from
 * the environment the target sets them all and executes itself again, so
 * the library reads them the ordinary way.  FUZZ_NO_REEXEC=1 turns that off
 * (then the run goes on with whatever the environment says). */
static inline void ensure_env(int *argc, char ***argv, const char *const *vars) {
  (void)argc;
  bool missing = false;
  for (const char *const *v = vars; *v; v++) {
    const char *eq = strchr(*v, '=');
    char name[64];
    size_t n = (size_t)(eq - *v);
    if (n >= sizeof name) n = sizeof name - 1;
    memcpy(name, *v, n);
    name[n] = 0;
    const char *have = getenv(name);
    if (have == NULL || strcmp(have, eq + 1) != 0) {
      missing = true;
      setenv(name, eq + 1, 1);
    }
  }
  if (!missing || getenv("FUZZ_NO_REEXEC")) return;
  setenv("FUZZ_NO_REEXEC", "1", 1); /* once */
  execv("/proc/self/exe", *argv);
  perror("fuzz: re-exec with the VAMALLOC_* options failed");
  exit(1);
}

#endif
