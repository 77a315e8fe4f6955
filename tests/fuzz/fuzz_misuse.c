/* fuzz_misuse: a libFuzzer target that mixes ordinary calls with heap
 * misuse and checks that every misuse is reported and none is absorbed.
 *
 * It runs with VAMALLOC_ON_CORRUPTION=warn (set in the environment before
 * vamalloc's init reads it; fuzz_common.h's ensure_env), so a report is
 * one stderr line and the call returns.  Misuses:
 *   double free        of a block just freed (its slab kept by a neighbour),
 *                      through free, free_sized or vam_heap_free;
 *   stale free         of a pointer freed earlier that no live block covers
 *                      now (reported as some misuse, any kind);
 *   interior free      of an address inside a live block;
 *   foreign pointer    free/realloc/usable_size of a stack buffer, a global,
 *                      a libc (ASan) block, a private mapping, (void *)4096,
 *                      a page-API reservation;
 *   freed pointer      realloc/usable_size of a block just freed;
 *   write after free   garbage in the first word of a freed small block,
 *                      then mallocs of its size until it comes back.
 * Checks, per misuse: the misuse_* counters grow by exactly one, of the
 * expected kind; exactly one report line, naming that kind, the address
 * and the call; realloc answers NULL/EINVAL and usable_size 0; the misused
 * block (when live) keeps its contents and size.  Throughout: no block is
 * handed out twice or overlapping a live one (the interval set), or outside
 * vamalloc's memory, and live contents stay intact.
 *
 * The report line is read from a pipe put on fd 2 around the misused call
 * only; FUZZ_TRACE=1 prints one line per operation. */
#include "fuzz_common.h"
#include <fcntl.h>
#include <sys/mman.h>
#include "internal.h" /* vam__options: check the mode took */

#define MAX_BLOCKS 384
#define MAX_LIVE_BYTES (64 * MiB)
#define FREED_RING 64

typedef struct block {
  uint8_t *p;
  size_t usable;
  uint32_t id;
  int heap; /* 0 thread heap, 1.. user heaps */
} block_t;

static struct {
  block_t b[MAX_BLOCKS];
  size_t nb, live_bytes;
  ivset_t iv;
  uint32_t next_id;
  void *freed[FREED_RING]; /* recently freed pointers */
  size_t nfreed;
  vam_heap_t *heaps[3];
  uint64_t expect_corrupt; /* write-after-free reports that may still come
                             (the block did not come back): misuse ops wait */
} M;

static int pipe_r = -1, pipe_w = -1, saved_err = -1;
static bool trace;
/* Known, unfixed bugs (README.md, "Findings") are tolerated so that CI
 * stays green and the fuzzer looks further; FUZZ_STRICT=1 checks them. */
static bool strict;
static char *mapping; /* a private mapping: foreign memory */
static void *reservation; /* a page-API reservation: not a block */
static char global_buf[256];


/* ---- the report line ------------------------------------------------------------ */

static char report[8192];
static size_t report_len;

static void capture_begin(void) {
  fflush(stderr);
  dup2(pipe_w, 2);
}

static void capture_end(void) {
  dup2(saved_err, 2);
  report_len = 0;
  for (;;) {
    ssize_t n = read(pipe_r, report + report_len, sizeof report - 1 - report_len);
    if (n <= 0) break;
    report_len += (size_t)n;
  }
  report[report_len] = 0;
}

static unsigned count_lines(void) {
  unsigned n = 0;
  for (size_t i = 0; i < report_len; i++) n += report[i] == '\n';
  return n;
}

enum { K_DOUBLE = 0, K_INTERIOR, K_INVALID, K_FREELIST };
/* Sets of kinds a report may have. */
#define M_(k) (1u << (k))
#define K_ANY 15u
static const char *const kind_words[] = {"double free", "interior free", "invalid pointer", "free-list corruption"};

static uint64_t kind_count(const vam_stats_t *s, int k) {
  switch (k) {
    case K_DOUBLE: return s->misuse_double_free;
    case K_INTERIOR: return s->misuse_interior_free;
    case K_INVALID: return s->misuse_invalid_pointer;
    default: return s->misuse_freelist_corrupt;
  }
}

/* After a misused call: exactly one report of a kind in the set `kinds`,
 * counted and printed, naming p (NULL: any address) and the call op. */
static void expect_report(const vam_stats_t *before, unsigned kinds, const void *p, const char *op, const char *what) {
  vam_stats_t s = stats_now();
  uint64_t d = misuse_total(&s) - misuse_total(before);
  if (d != 1)
    die("%s %p: %llu misuse reports counted, expected exactly 1 (output: %s)", what, p, (unsigned long long)d,
        report_len ? report : "none");
  int got = -1;
  for (int j = 0; j < 4; j++)
    if (kind_count(&s, j) != kind_count(before, j)) got = j;
  if (got < 0) die("%s %p: the report counted no kind this target knows", what, p);
  if (!(kinds & M_(got))) {
    char want[128] = "";
    for (int j = 0; j < 4; j++)
      if (kinds & M_(j)) snprintf(want + strlen(want), sizeof want - strlen(want), "%s%s", *want ? " or " : "", kind_words[j]);
    die("%s %p: reported as %s, expected %s", what, p, kind_words[got], want);
  }
  if (s.foreign_frees + s.invalid_frees != before->foreign_frees + before->invalid_frees + 1)
    die("%s %p: foreign_frees + invalid_frees did not grow by one", what, p);
  if (count_lines() != 1) die("%s %p: %u report lines, expected 1: %s", what, p, count_lines(), report);
  char want[160];
  snprintf(want, sizeof want, "vamalloc: heap misuse: %s ", kind_words[got]);
  if (strstr(report, want) != report) die("%s %p: report line '%s' does not start '%s'", what, p, report, want);
  if (p) {
    snprintf(want, sizeof want, " 0x%016lx in %s;", (unsigned long)(uintptr_t)p, op);
    if (!strstr(report, want)) die("%s: report line '%s' does not name '%s'", what, report, want);
  }
  if (!strstr(report, "continuing (VAMALLOC_ON_CORRUPTION=warn)"))
    die("%s: report line '%s' does not say it continues", what, report);
}

static void expect_quiet(const vam_stats_t *before, const char *what) {
  vam_stats_t s = stats_now();
  uint64_t d = misuse_total(&s) - misuse_total(before);
  if (d > M.expect_corrupt || kind_count(&s, K_FREELIST) - kind_count(before, K_FREELIST) != d)
    die("%s: %llu misuse reports where none was made (%s)", what, (unsigned long long)d, report_len ? report : "");
  M.expect_corrupt -= d;
}

/* ---- blocks --------------------------------------------------------------------- */

static bool room_for(size_t req) { return M.nb < MAX_BLOCKS && M.live_bytes + req <= MAX_LIVE_BYTES; }

static void on_alloc(uint8_t *p, size_t req, int heap, const char *what) {
  if (p == NULL) die("%s(%zu) returned NULL", what, req);
  if ((uintptr_t)p % (req >= 16 ? 16 : 1)) die("%s(%zu) returned %p, misaligned", what, req, (void *)p);
  if (!vam_owns(p)) die("%s(%zu) returned %p, not in vamalloc's memory", what, req, (void *)p);
  size_t u = vam_usable_size(p);
  if (u < req) die("%s(%zu): usable size %zu", what, req, u);
  block_t *b = &M.b[M.nb++];
  *b = (block_t){p, u, M.next_id++, heap};
  iv_add(&M.iv, (uintptr_t)p, (uintptr_t)p + (u ? u : 1), (int)b->id, what);
  fill(p, u, b->id);
  M.live_bytes += u;
}

static void check_block(const block_t *b, const char *what) {
  vam_stats_t before = stats_now();
  size_t u = vam_usable_size(b->p);
  if (u != b->usable) die("%s: usable size of %p is %zu, was %zu", what, (void *)b->p, u, b->usable);
  expect_quiet(&before, what);
  verify(b->p, b->usable, b->usable, b->id, what);
}

static void remember_freed(void *p) { M.freed[M.nfreed++ % FREED_RING] = p; }

static void drop_block(size_t i) {
  iv_del(&M.iv, (uintptr_t)M.b[i].p);
  M.live_bytes -= M.b[i].usable;
  M.b[i] = M.b[--M.nb];
}

static void free_block(size_t i) {
  vam_stats_t before = stats_now();
  check_block(&M.b[i], "block before free");
  void *p = M.b[i].p;
  vam_free(p);
  expect_quiet(&before, "free");
  drop_block(i);
  remember_freed(p);
}

static uint8_t *alloc(size_t req, int heap) {
  vam_stats_t before = stats_now();
  uint8_t *p = heap ? vam_heap_malloc(M.heaps[heap], req) : vam_malloc(req);
  expect_quiet(&before, "malloc");
  on_alloc(p, req, heap, heap ? "heap_malloc" : "malloc");
  return p;
}

static size_t find_block(const void *p) {
  for (size_t i = 0; i < M.nb; i++)
    if (M.b[i].p == p) return i;
  die("block %p not in the model (fuzzer bug)", p);
}

static int pick_heap(reader_t *r) {
  uint8_t v = rd_u8(r);
  if (v < 160) return 0;
  int h = 1 + v % 2;
  if (M.heaps[h] == NULL) {
    vam_heap_options o = {.struct_size = sizeof o, .name = "misuse"};
    M.heaps[h] = vam_heap_new(&o);
    if (M.heaps[h] == NULL) die("vam_heap_new failed");
  }
  return h;
}

/* A size for misuse: no absurd ones. */
static size_t rd_req(reader_t *r) {
  bool absurd;
  size_t n = rd_size(r, &absurd);
  return absurd ? 64 : n;
}

/* ---- ordinary operations ------------------------------------------------------------ */

static void op_malloc(reader_t *r) {
  size_t req = rd_req(r);
  int h = pick_heap(r);
  if (!room_for(req)) return;
  fz_op_name = "malloc";
  alloc(req, h);
}

static void op_free(reader_t *r) {
  if (M.nb == 0) return;
  fz_op_name = "free";
  free_block(rd_u16(r) % M.nb);
}

static void op_realloc(reader_t *r) {
  if (M.nb == 0) return;
  size_t i = rd_u16(r) % M.nb;
  size_t req = rd_req(r);
  if (!room_for(req)) return;
  fz_op_name = "realloc";
  block_t old = M.b[i];
  check_block(&old, "block before realloc");
  vam_stats_t before = stats_now();
  uint8_t *q = vam_realloc(old.p, req);
  expect_quiet(&before, "realloc");
  if (q == NULL) die("realloc(%p, %zu) returned NULL", (void *)old.p, req);
  verify(q, old.usable, old.usable < req ? old.usable : req, old.id, "contents after realloc");
  drop_block(i);
  if (q != old.p) remember_freed(old.p);
  on_alloc(q, req, old.heap, "realloc");
}

static void op_heap_destroy(reader_t *r) {
  int h = 1 + rd_u8(r) % 2;
  if (M.heaps[h] == NULL) return;
  fz_op_name = "heap_destroy";
  for (size_t i = 0; i < M.nb;)
    if (M.b[i].heap == h) {
      check_block(&M.b[i], "block before heap_destroy");
      remember_freed(M.b[i].p);
      drop_block(i);
    } else {
      i++;
    }
  vam_stats_t before = stats_now();
  vam_heap_destroy(M.heaps[h]);
  expect_quiet(&before, "heap_destroy");
  M.heaps[h] = NULL;
}

/* ---- misuse ------------------------------------------------------------------------- */

typedef enum { VIA_FREE, VIA_SIZED, VIA_HEAP_FREE, VIA_REALLOC, VIA_USABLE } via_t;

/* Misuse p through one call; checks the call's own contract (realloc
 * NULL/EINVAL, usable_size 0) and returns the call name for the report. */
static const char *misuse_call(void *p, via_t via, size_t size) {
  const char *op = "free";
  capture_begin();
  errno = 0;
  switch (via) {
    case VIA_FREE: vam_free(p); break;
    case VIA_SIZED: vam_free_sized(p, size); break;
    case VIA_HEAP_FREE: vam_heap_free(M.heaps[1], p); break;
    case VIA_REALLOC: {
      void *q = vam_realloc(p, size);
      int e = errno;
      capture_end();
      if (q != NULL || e != EINVAL) die("realloc of misused %p returned %p errno %d, not NULL/EINVAL", p, q, e);
      return "realloc";
    }
    case VIA_USABLE: {
      size_t u = vam_usable_size(p);
      capture_end();
      if (u != 0) die("usable_size of misused %p returned %zu, not 0", p, u);
      return "malloc_usable_size";
    }
  }
  capture_end();
  return op;
}

static via_t rd_via(reader_t *r, bool frees_only) {
  uint8_t v = rd_u8(r);
  if (frees_only) return (via_t)(v % 3);
  return (via_t)(v % 5);
}

/* Double free of a block just freed; a neighbour of the same size stays
 * live, so a small block's slab stays put. */
static void op_double_free(reader_t *r) {
  if (M.expect_corrupt) return; /* a report still due would be counted here */
  size_t req = rd_req(r);
  via_t via = rd_via(r, true);
  int h = pick_heap(r);
  if (!room_for(2 * req + 64)) return;
  fz_op_name = "double_free";
  if (trace) fprintf(stderr, "  double free: %zu bytes, heap %d, via %d\n", req, h, (int)via);
  alloc(req, h); /* the neighbour, left live */
  uint8_t *p = alloc(req, h);
  size_t i = find_block(p);
  vam_stats_t before = stats_now();
  vam_free(p);
  expect_quiet(&before, "first free");
  drop_block(i);
  before = stats_now();
  const char *op = misuse_call(p, via, req);
  /* A large or huge block's memory may have gone back to the OS at the
   * first free (its chunk or region released): then vamalloc can only
   * call the pointer invalid.  A small block's slab is kept by the
   * neighbour, so that is a double free. */
  unsigned kinds = req > 256 * KiB ? M_(K_DOUBLE) | M_(K_INVALID) : M_(K_DOUBLE);
  expect_report(&before, kinds, p, op, "double free");
  remember_freed(p);
}

/* Known bug 5 (/tmp/helperB-src-5.patch): a small block that looks free
 * (its link decodes inside the chunk) but is on none of its slab's lists
 * was abandoned when a corrupt list was cut.  A second free of it is
 * taken for the free of a live block: not reported, and the slab's count
 * of blocks out drops by one too many (it wraps from 0; a later free can
 * then give the slab back with a block live, which the purge zeroes).  So
 * outside FUZZ_STRICT such frees are not made at all.  (Only the
 * internals can tell; single-threaded, the list walk is safe.) */
static bool abandoned_block(const void *p) {
  if (vam__chunkmap_kind((uintptr_t)p) != VAM_MAP_CHUNK) return false;
  vam_span_t *pg = vam__span_of(vam__chunk_of(p), p);
  if (pg->kind != VAM_SPAN_SMALL || !vam__slab_block_ok(pg, p)) return false;
  const vam_block_t *b = p;
  return vam__block_looks_free(pg, b) && !vam__slab_holds_free(pg, b);
}

/* Free (or realloc, usable_size) of a pointer freed earlier that no live
 * block covers: reported, as whatever it looks like now. */
static void op_stale(reader_t *r) {
  if (M.expect_corrupt) return; /* a report still due would be counted here */
  if (M.nfreed == 0) return;
  size_t n = M.nfreed < FREED_RING ? M.nfreed : FREED_RING;
  void *p = M.freed[rd_u8(r) % n];
  via_t via = rd_via(r, false);
  if (via == VIA_SIZED) via = VIA_FREE;
  if (via == VIA_HEAP_FREE && M.heaps[1] == NULL) via = VIA_FREE;
  if (iv_overlap(&M.iv, (uintptr_t)p, (uintptr_t)p + 1) != -1) return; /* reused: live */
  if (!strict && abandoned_block(p)) return; /* known bug 5: would corrupt the heap */
  fz_op_name = "stale";
  vam_stats_t before = stats_now();
  const char *op = misuse_call(p, via, 64);
  expect_report(&before, K_ANY, p, op, "stale pointer");
}

static void op_interior(reader_t *r) {
  if (M.expect_corrupt) return; /* a report still due would be counted here */
  if (M.nb == 0) return;
  size_t i = rd_u16(r) % M.nb;
  uint32_t off = rd_u32(r);
  via_t via = rd_via(r, false);
  if (via == VIA_HEAP_FREE && M.heaps[1] == NULL) via = VIA_FREE;
  block_t b = M.b[i];
  if (b.usable < 2) return;
  size_t o = 1 + off % (b.usable - 1);
  if (off & 0x80000000u) o = (o / 4096) * 4096 ? (o / 4096) * 4096 : o; /* page boundaries too */
  fz_op_name = "interior";
  if (trace) fprintf(stderr, "  interior: block %p usable %zu offset %zu via %d\n", (void *)b.p, b.usable, o, (int)via);
  vam_stats_t before = stats_now();
  const char *op = misuse_call(b.p + o, via, 64);
  /* realloc and usable_size of an interior address: what is wrong with it is
   * the same (interior free) */
  /* Known bug 3 (/tmp/helperB-src-3.patch): a huge block taken from the
   * pool over the head of a block freed before keeps that chunk marked
   * HUGE_FREED, so an address there reads as a double free (free) or an
   * invalid pointer (realloc, usable_size).  Still reported. */
  unsigned kind = !strict && b.usable > 2 * MiB ? K_ANY : M_(K_INTERIOR);
  expect_report(&before, kind, b.p + o, op, "interior pointer");
  check_block(&b, "block after an interior misuse");
}

static void op_foreign(reader_t *r) {
  if (M.expect_corrupt) return; /* a report still due would be counted here */
  uint8_t v = rd_u8(r);
  via_t via = rd_via(r, false);
  if (via == VIA_HEAP_FREE && M.heaps[1] == NULL) via = VIA_FREE;
  char stack_buf[64];
  void *p;
  void *libc_block = NULL;
  switch (v % 6) {
    case 0: p = stack_buf; break;
    case 1: p = global_buf + (v >> 3) % 16 * 16; break;
    case 2: p = libc_block = malloc(48); break;
    case 3: p = mapping + (v >> 3) % 4 * 4096; break;
    case 4: p = (void *)(uintptr_t)4096; break;
    default: p = reservation; break;
  }
  if (p == NULL) return;
  fz_op_name = "foreign";
  vam_stats_t before = stats_now();
  const char *op = misuse_call(p, via, 64);
  expect_report(&before, M_(K_INVALID), p, op, "foreign pointer");
  free(libc_block);
}

/* realloc/usable_size of a block just freed (its neighbour live). */
static void op_freed_use(reader_t *r) {
  if (M.expect_corrupt) return; /* a report still due would be counted here */
  size_t req = rd_req(r);
  via_t via = (rd_u8(r) & 1) ? VIA_REALLOC : VIA_USABLE;
  if (!room_for(2 * req + 64)) return;
  fz_op_name = "freed_use";
  alloc(req, 0);
  uint8_t *p = alloc(req, 0);
  size_t i = find_block(p);
  vam_stats_t before = stats_now();
  vam_free(p);
  expect_quiet(&before, "free");
  drop_block(i);
  before = stats_now();
  const char *op = misuse_call(p, via, req + 1);
  expect_report(&before, M_(K_INVALID), p, op, "freed pointer");
  remember_freed(p);
}

/* Write after free: garbage in the first word of a freed small block that
 * sits in its slab's free list behind (or in front of) another, then
 * mallocs of its size until it comes back.  The pop that reaches it must
 * report free-list corruption, and no malloc may return the garbage or a
 * block that overlaps a live one. */
static void op_write_after_free(reader_t *r) {
  if (M.expect_corrupt) return; /* a report still due would be counted here */
  uint8_t v = rd_u8(r);
  uint64_t garbage = rd_u32(r) | (uint64_t)rd_u32(r) << 32;
  size_t req = 16 + (size_t)(v % 32) * 16; /* small classes */
  int h = (v & 0x40) ? pick_heap(r) : 0;
  if (!room_for(3 * 512)) return;
  fz_op_name = "write_after_free";
  uint8_t *keep = alloc(req, h);
  uint8_t *q = alloc(req, h), *p = alloc(req, h);
  (void)keep;
  /* LIFO: the one freed last is popped first */
  bool p_first = v & 0x80;
  uint8_t *order[2] = {p_first ? q : p, p_first ? p : q};
  vam_stats_t before = stats_now();
  for (int k = 0; k < 2; k++) {
    size_t i = find_block(order[k]);
    vam_free(order[k]);
    drop_block(i);
  }
  expect_quiet(&before, "free");
  uint64_t old;
  memcpy(&old, p, 8);
  if (garbage == old) garbage ^= 0x8000000000000001ull;
  memcpy(p, &garbage, 8); /* the use after free */
  before = stats_now();
  /* Pop until p comes back: at most a carve batch and then some (a heap's
   * frees wait on the remote list, collected when the local list runs
   * out).  The blocks are checked against the live ones, then freed. */
  enum { TRIES = 700 };
  static uint8_t *got[TRIES];
  int n = 0;
  bool back = false;
  capture_begin();
  while (n < TRIES && !back) {
    uint8_t *g = h ? vam_heap_malloc(M.heaps[h], req) : vam_malloc(req);
    if (g == NULL) break;
    got[n++] = g;
    back = g == p;
  }
  capture_end();
  vam_stats_t after = stats_now();
  if (n < TRIES && !back) die("malloc(%zu) returned NULL after a write after free", req);
  for (int k = 0; k < n; k++) {
    if ((uintptr_t)got[k] == (uintptr_t)garbage || !vam_owns(got[k]))
      die("malloc(%zu) returned %p after %#llx was written into a freed block", req, (void *)got[k],
          (unsigned long long)garbage);
    iv_add(&M.iv, (uintptr_t)got[k], (uintptr_t)got[k] + req, -1, "malloc after a write after free");
  }
  uint64_t d = kind_count(&after, K_FREELIST) - kind_count(&before, K_FREELIST);
  if (misuse_total(&after) - misuse_total(&before) != d)
    die("write after free: reported as another kind (%s)", report);
  if (back && d != 1)
    die("write after free of %#llx into %p: the block came back after %d mallocs with %llu reports (%s)",
        (unsigned long long)garbage, (void *)p, n, (unsigned long long)d, report_len ? report : "no output");
  if (d > 1) die("write after free: %llu reports", (unsigned long long)d);
  if (d == 1) {
    if (count_lines() != 1 || !strstr(report, "heap misuse: free-list corruption ") ||
        (!strstr(report, " in malloc;") && !strstr(report, " in free;")))
      die("write after free: report '%s'", report);
  } else {
    M.expect_corrupt++; /* not reached: a later malloc may find it */
  }
  before = stats_now();
  for (int k = 0; k < n; k++) {
    iv_del(&M.iv, (uintptr_t)got[k]);
    vam_free(got[k]);
  }
  expect_quiet(&before, "freeing the blocks popped after a write after free");
}

/* ---- the driver ---------------------------------------------------------------------- */

static void check_all(void) {
  for (size_t i = 0; i < M.nb; i++) verify(M.b[i].p, M.b[i].usable, M.b[i].usable, M.b[i].id, "live block");
}

static void cleanup(void) {
  fz_op_name = "cleanup";
  while (M.nb) free_block(M.nb - 1);
  for (int h = 1; h < 3; h++)
    if (M.heaps[h]) {
      vam_stats_t before = stats_now();
      vam_heap_destroy(M.heaps[h]);
      expect_quiet(&before, "heap_destroy");
      M.heaps[h] = NULL;
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
  static const char *const env[] = {"VAMALLOC_ON_CORRUPTION=warn", "VAMALLOC_RETRY_MAX=1",
                                    "VAMALLOC_RETRY_DELAY_US=0", NULL};
  ensure_env(argc, argv, env);
  vam__ensure_init();
  if (vam__options.on_corruption != VAM_CORRUPT_WARN)
    die("VAMALLOC_ON_CORRUPTION=warn did not take (mode %llu)", (unsigned long long)vam__options.on_corruption);
  trace = getenv("FUZZ_TRACE") != NULL;
  strict = getenv("FUZZ_STRICT") && strcmp(getenv("FUZZ_STRICT"), "0") != 0;
  int fds[2];
  if (pipe(fds) != 0) die("pipe");
  pipe_r = fds[0];
  pipe_w = fds[1];
  fcntl(pipe_r, F_SETFL, O_NONBLOCK);
  fcntl(pipe_w, F_SETPIPE_SZ, 1 << 20);
  saved_err = dup(2);
  mapping = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mapping == MAP_FAILED) die("mmap");
  reservation = vam_pages_reserve(4 * vam_page_size(), 0, VAM_PAGES_COMMIT);
  if (reservation == NULL) die("vam_pages_reserve");
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  reader_t r = {data, size, 0};
  memset(&M, 0, sizeof M);
  fz_op_index = 0;
  while (rd_more(&r) && fz_op_index < 300) {
    uint8_t op = rd_u8(&r);
    fz_op_index++;
    switch (op % 20) {
      case 0: case 1: case 2: case 3: op_malloc(&r); break;
      case 4: case 5: case 6: op_free(&r); break;
      case 7: op_realloc(&r); break;
      case 8: op_heap_destroy(&r); break;
      case 9: case 10: op_double_free(&r); break;
      case 11: case 12: op_stale(&r); break;
      case 13: case 14: op_interior(&r); break;
      case 15: op_foreign(&r); break;
      case 16: op_freed_use(&r); break;
      case 17: case 18: op_write_after_free(&r); break;
      default: {
        fz_op_name = "collect";
        vam_stats_t before = stats_now();
        vam_collect(op & 0x80);
        expect_quiet(&before, "collect");
        break;
      }
    }
    if (trace) fprintf(stderr, "op #%lu %u %s: %zu blocks\n", fz_op_index, op % 20, fz_op_name, M.nb);
    fz_op_name = "";
    if ((fz_op_index & 15) == 0) check_all();
  }
  check_all();
  cleanup();
  return 0;
}
