/* fuzz_shadow: a libFuzzer target that runs the input as a sequence of
 * vamalloc calls and checks every answer against a shadow model.
 *
 * Operations: the malloc family (malloc, calloc, realloc, reallocarray,
 * posix_memalign, aligned_alloc, memalign, valloc, pvalloc, free,
 * free_sized, free_aligned_sized, usable_size), first-class heaps (new,
 * malloc/calloc/memalign, realloc, free, destroy, with byte limits), the
 * page API (reserve, commit, decommit, release, and calls that must be
 * EINVAL), vam_collect, and "fail the next N mmap/munmap/madvise/mprotect"
 * through the OS fault hook (VAM_FAULT_INJECTION builds).
 *
 * The model checks: alignment; usable size >= request and stable; no
 * overlap between live blocks and reservations (an interval set); contents
 * kept while live and across realloc (a pattern per block id); calloc and
 * fresh page commits read zero; NULL + ENOMEM only where allowed (an
 * injected fault is armed, a byte limit, a size above PTRDIFF_MAX), EINVAL
 * for bad alignments and page-API ranges; statistics move as the model
 * says (blocks live = malloc_calls - free_calls, enomem_returns, call
 * counters, page-API gauges and counters, heap stats, no misuse report).
 * Any mismatch: one line, abort(); libFuzzer saves the input.
 *
 * Every input starts and ends with nothing live (blocks freed, heaps
 * destroyed, reservations released, faults off), so inputs are
 * independent. */
#include "fuzz_common.h"
#include <sys/mman.h>
#include "internal.h" /* the fault hook (vam__os_fault_spec) */

#define MAX_BLOCKS 384
#define MAX_LIVE_BYTES (80 * MiB)
#define MAX_HEAPS 6
#define MAX_PIECES 48
#define MAX_RES_PAGES 64

typedef struct block {
  uint8_t *p;
  size_t req, usable;
  uint32_t id;
  int heap; /* model heap index, or -1 for the thread heap */
} block_t;

typedef struct mheap {
  vam_heap_t *h;
  size_t limit;
  uint64_t live_bytes, live_blocks, mallocs, frees;
  uint64_t refusals_min, refusals_max; /* NULLs sure to be limit refusals / all NULLs */
} mheap_t;

/* Page states of the page-API model. */
enum { PG_NOACCESS = 0, PG_DATA = 1, PG_OLD_OR_ZERO = 2 };
typedef struct piece { /* one contiguous live part of a reservation */
  uint8_t *base;
  size_t npages;
  uint8_t st[MAX_RES_PAGES];
  uint64_t tag[MAX_RES_PAGES]; /* PG_DATA: first and last word of the page; 0 = all zero */
} piece_t;

static struct model {
  block_t b[MAX_BLOCKS];
  size_t nb;
  size_t live_bytes;
  mheap_t heaps[MAX_HEAPS];
  size_t nh;
  piece_t pieces[MAX_PIECES];
  size_t np;
  ivset_t iv;
  uint32_t next_id;
  uint64_t next_tag;
  bool armed; /* a fault rule is installed */
  uint64_t destroyed_small; /* known bug 2: small blocks dropped by heap_destroy */
  uint64_t leaked_frees;    /* known bug 4: huge frees under faults, maybe uncounted */
  /* expected statistics deltas */
  uint64_t enomem, callocs, reallocs, aligned_calls;
  uint64_t heaps_created, heaps_destroyed, limit_min, limit_max;
  uint64_t reserves, commits, decommits, releases, pages_einval;
  int64_t pages_bytes, pieces_count;
} M;

static vam_stats_t base; /* at the start of the input */

/* Known, unfixed bugs (tests/fuzz/README.md, "Findings") are tolerated, so
 * that CI stays green and the fuzzer looks further; FUZZ_STRICT=1 checks
 * them too (and then their inputs in regressions/shadow-open/ fail). */
static bool strict;
static bool trace; /* FUZZ_TRACE=1: one line per operation on stderr */
static size_t page;

/* ---- blocks ------------------------------------------------------------------ */

static size_t natural_align(size_t req) {
  return req >= 16 ? 16 : req >= 8 ? 8 : req >= 4 ? 4 : req >= 2 ? 2 : 1;
}

static vam_heap_t *heap_ptr(int hi) { return hi < 0 ? NULL : M.heaps[hi].h; }

/* A fresh block from an allocation call: check it and enter it. */
static void on_alloc(uint8_t *p, size_t req, size_t align, bool zero, int hi, const char *what) {
  if (p == NULL) die("%s(%zu) returned NULL where it may not", what, req);
  size_t want = align > natural_align(req) ? align : natural_align(req);
  if ((uintptr_t)p % want) die("%s(%zu, align %zu) returned %p, not %zu-aligned", what, req, align, (void *)p, want);
  size_t u = vam_usable_size(p);
  if (u < req) die("%s(%zu): usable size %zu is below the request", what, req, u);
  if (!vam_owns(p)) die("%s(%zu): vam_owns(%p) is 0", what, req, (void *)p);
  if (vam_heap_of(p) != heap_ptr(hi))
    die("%s(%zu): vam_heap_of(%p) is %p, expected %p", what, req, (void *)p, (void *)vam_heap_of(p),
        (void *)heap_ptr(hi));
  if (zero) verify_zero(p, req, what);
  block_t *b = &M.b[M.nb];
  *b = (block_t){p, req, u, M.next_id++, hi};
  if (trace) fprintf(stderr, "  new: block %u %p (%zu bytes, usable %zu, heap %d) from %s\n", b->id, (void *)p, req, u, hi, what);
  iv_add(&M.iv, (uintptr_t)p, (uintptr_t)p + (u ? u : 1), (int)b->id, what);
  fill(p, u, b->id);
  M.nb++;
  M.live_bytes += u;
  if (hi >= 0) {
    M.heaps[hi].live_bytes += u;
    M.heaps[hi].live_blocks++;
    M.heaps[hi].mallocs++;
    if (M.heaps[hi].limit && M.heaps[hi].live_bytes > M.heaps[hi].limit)
      die("%s: heap %d holds %llu bytes, above its limit %zu", what, hi,
          (unsigned long long)M.heaps[hi].live_bytes, M.heaps[hi].limit);
  }
}

/* Check a live block is intact (contents, usable size). */
static void check_block(const block_t *b, const char *what) {
  size_t u = vam_usable_size(b->p);
  if (u != b->usable) die("%s: usable size of %p changed from %zu to %zu", what, (void *)b->p, b->usable, u);
  verify(b->p, b->usable, b->usable, b->id, what);
}

/* Forget block i (after a free or a realloc that moved it). */
static void drop_block(size_t i) {
  block_t *b = &M.b[i];
  if (trace) fprintf(stderr, "  gone: block %u %p (%zu bytes, usable %zu, heap %d)\n", b->id, (void *)b->p, b->req, b->usable, b->heap);
  iv_del(&M.iv, (uintptr_t)b->p);
  /* Known bug 4 (/tmp/helperB-src-4.patch): a huge block whose guard page
   * cannot be lifted (mprotect refused) is leaked by free, and that free
   * is not counted in huge_frees. */
  if (!strict && M.armed && vam__chunkmap_kind((uintptr_t)b->p) != VAM_MAP_CHUNK) M.leaked_frees++;
  M.live_bytes -= b->usable;
  if (b->heap >= 0) {
    M.heaps[b->heap].live_bytes -= b->usable;
    M.heaps[b->heap].live_blocks--;
    M.heaps[b->heap].frees++;
  }
  M.b[i] = M.b[--M.nb];
}

static bool room_for(size_t req) {
  return M.nb < MAX_BLOCKS && M.live_bytes + req <= MAX_LIVE_BYTES;
}

/* Is a NULL from an allocation of req bytes in heap hi allowed?  An armed
 * fault always allows it; a byte limit when the request plus the class
 * rounding could pass it (limit_sure: it surely passes). */
static bool null_allowed(int hi, size_t req, size_t align, bool absurd, bool *limit_sure) {
  *limit_sure = false;
  bool ok = absurd || M.armed;
  if (hi >= 0 && M.heaps[hi].limit) {
    mheap_t *h = &M.heaps[hi];
    if (req > h->limit || h->live_bytes + req > h->limit) {
      *limit_sure = true; /* refused before any other step */
      return true;
    }
    /* rounding: a size class (<= 25% + 16), a 32 KiB unit, a page, the alignment */
    size_t bound = req + req / 4 + 64 * KiB + (align > 16 ? align : 0);
    if (h->live_bytes + bound > h->limit) ok = true;
  }
  return ok;
}

static void expect_enomem(const char *what, size_t req) {
  if (errno != ENOMEM) die("%s(%zu) returned NULL with errno %d, not ENOMEM", what, req, errno);
  M.enomem++;
}

/* A NULL from heap hi's allocation: count it against the heap's refusals. */
static void heap_null(int hi, bool limit_sure) {
  if (hi < 0 || !M.heaps[hi].limit) return;
  M.heaps[hi].refusals_max++;
  M.limit_max++;
  if (limit_sure) {
    M.heaps[hi].refusals_min++;
    M.limit_min++;
  }
}

static int pick_heap(reader_t *r) { /* -1 or a live model heap */
  uint8_t v = rd_u8(r);
  if (M.nh == 0 || v < 64) return -1;
  return (int)(v % M.nh);
}

/* ---- malloc family ------------------------------------------------------------ */

static void op_malloc(reader_t *r) {
  bool absurd;
  size_t req = rd_size(r, &absurd);
  if (!absurd && !room_for(req)) return;
  fz_op_name = "malloc";
  errno = 0;
  uint8_t *p = vam_malloc(req);
  bool ls;
  if (p == NULL && null_allowed(-1, req, 0, absurd, &ls)) {
    expect_enomem("malloc", req);
    return;
  }
  if (absurd) die("malloc(%zu) returned %p: sizes above PTRDIFF_MAX must fail", req, (void *)p);
  on_alloc(p, req, 0, false, -1, "malloc");
}

static void op_calloc(reader_t *r) {
  bool absurd;
  size_t req = rd_size(r, &absurd);
  uint8_t k = rd_u8(r);
  size_t count, size;
  bool overflow = false;
  if (k < 200) {
    count = 1 + k % 8;
    size = req / count;
  } else { /* overflow */
    size = 2 + k % 5;
    count = SIZE_MAX / size + 1 + (k >> 3) % 4;
    overflow = true;
  }
  size_t total;
  if (__builtin_mul_overflow(count, size, &total) != overflow) die("calloc overflow case (fuzzer bug)");
  if (!overflow) absurd = total > (size_t)PTRDIFF_MAX;
  if (!overflow && !absurd && !room_for(total)) return;
  fz_op_name = "calloc";
  errno = 0;
  uint8_t *p = vam_calloc(count, size);
  if (!overflow) M.callocs++;
  bool ls;
  if (overflow || absurd) {
    if (p) die("calloc(%zu, %zu) overflows or is absurd but returned %p", count, size, (void *)p);
    {
    expect_enomem("calloc", total);
    return;
  }
  }
  if (p == NULL && null_allowed(-1, total, 0, false, &ls)) {
    expect_enomem("calloc", total);
    return;
  }
  on_alloc(p, total, 0, true, -1, "calloc");
}

static size_t pick_block(reader_t *r) { return M.nb ? rd_u16(r) % M.nb : 0; }

/* realloc (through vam_realloc, vam_reallocarray or vam_heap_realloc) of
 * block i, or of NULL when i is M.nb. */
static void do_realloc(size_t i, size_t req, bool absurd, int via, int hi_arg) {
  static const char *const names[] = {"realloc", "reallocarray", "heap_realloc"};
  const char *what = names[via];
  fz_op_name = what;
  block_t old = i < M.nb ? M.b[i] : (block_t){NULL, 0, 0, 0, hi_arg};
  if (old.p) check_block(&old, what);
  int hi = old.p ? old.heap : hi_arg; /* a heap's block stays in its heap */
  if (via == 2 && old.p && hi_arg != old.heap) return; /* only its own heap */
  if (!absurd && !room_for(req)) return;
  errno = 0;
  uint8_t *q;
  if (via == 0) q = vam_realloc(old.p, req);
  else if (via == 1) q = vam_reallocarray(old.p, 1, req);
  else q = vam_heap_realloc(heap_ptr(hi_arg), old.p, req);
  if (old.p && !absurd && via != 2) M.reallocs++;
  if (q == NULL) {
    bool ls;
    if (!null_allowed(hi, req, 0, absurd, &ls)) die("%s(%p, %zu) returned NULL where it may not", what, (void *)old.p, req);
    expect_enomem(what, req);
    /* vam_realloc refuses a size above PTRDIFF_MAX before the heap sees it */
    if (!(absurd && via != 2 && old.p)) heap_null(hi, ls);
    if (old.p) check_block(&old, "block after a failed realloc");
    return;
  }
  if (absurd) die("%s(%zu) returned %p: sizes above PTRDIFF_MAX must fail", what, req, (void *)q);
  if (old.p == NULL) {
    on_alloc(q, req, 0, false, hi, what);
    return;
  }
  /* contents kept up to the smaller of the old usable size and the request */
  size_t keep = old.usable < req ? old.usable : req;
  verify(q, old.usable, keep, old.id, "contents after realloc");
  bool moved = q != old.p;
  /* Enter the result first when it moved (the old block is then gone); in
   * place, the usable size may have changed. */
  drop_block(i);
  if (hi >= 0 && !moved) { /* in place: no malloc, no free in the heap's counts */
    M.heaps[hi].frees--;
    M.heaps[hi].mallocs--;
  }
  on_alloc(q, req, 0, false, hi, what);
}

static void op_realloc(reader_t *r, int via) {
  uint8_t which = rd_u8(r);
  bool absurd;
  size_t req = rd_size(r, &absurd);
  int hi = via == 2 ? pick_heap(r) : -1;
  if (via == 2 && hi < 0) return;
  size_t i = (which < 32 || M.nb == 0) ? M.nb : pick_block(r);
  if (via == 2 && i < M.nb && M.b[i].heap != hi) i = M.nb;
  do_realloc(i, req, absurd, via, hi);
}

static void op_realloc0(reader_t *r) {
  if (M.nb == 0) return;
  size_t i = pick_block(r);
  do_realloc(i, 0, false, 0, -1);
}

enum { AL_POSIX, AL_ALIGNED, AL_MEMALIGN, AL_VALLOC, AL_PVALLOC, AL_HEAP };

static void op_aligned(reader_t *r, int how) {
  static const char *const names[] = {"posix_memalign", "aligned_alloc", "memalign", "valloc", "pvalloc", "heap_memalign"};
  const char *what = names[how];
  fz_op_name = what;
  bool absurd, bad;
  size_t req = rd_size(r, &absurd);
  size_t align = rd_align(r, &bad);
  int hi = how == AL_HEAP ? pick_heap(r) : -1;
  if (how == AL_HEAP && hi < 0) return;
  if (how == AL_VALLOC || how == AL_PVALLOC) {
    align = page;
    bad = false;
  }
  size_t want = req;
  if (how == AL_PVALLOC && !absurd) want = req ? (req + page - 1) / page * page : page;
  if (!absurd && !room_for(want + align)) return;
  errno = 0;
  uint8_t *p = NULL;
  int rc = 0;
  switch (how) {
    case AL_POSIX: {
      void *out = (void *)&M; /* must stay untouched on failure */
      rc = vam_posix_memalign(&out, align, req);
      bool einval = bad || align < sizeof(void *);
      if (einval) {
        if (rc != EINVAL) die("posix_memalign(align %zu) returned %d, not EINVAL", align, rc);
        if (out != (void *)&M) die("posix_memalign touched *memptr on EINVAL");
        return;
      }
      M.aligned_calls++;
      if (rc) {
        bool ls;
        if (rc != ENOMEM) die("posix_memalign(%zu, %zu) returned %d", align, req, rc);
        if (out != (void *)&M) die("posix_memalign touched *memptr on ENOMEM");
        if (!null_allowed(-1, req, align, absurd, &ls)) die("posix_memalign(%zu, %zu) failed where it may not", align, req);
        M.enomem++;
        return;
      }
      if (absurd) die("posix_memalign(%zu) succeeded for a size above PTRDIFF_MAX", req);
      p = out;
      break;
    }
    case AL_ALIGNED: p = vam_aligned_alloc(align, req); break;
    case AL_MEMALIGN: p = vam_memalign(align, req); break;
    case AL_VALLOC: p = vam_valloc(req); break;
    case AL_PVALLOC: p = vam_pvalloc(req); break;
    case AL_HEAP: p = vam_heap_memalign(M.heaps[hi].h, align, req); break;
  }
  if (how != AL_POSIX) {
    if (bad) {
      if (p || errno != EINVAL) die("%s(align %zu) returned %p errno %d, not NULL/EINVAL", what, align, (void *)p, errno);
      /* Known bug 1 (/tmp/helperB-src-1.patch): vam_heap_memalign's EINVAL
       * goes through userheap.c's refuse(), which counts enomem_returns. */
      if (how == AL_HEAP && !strict) M.enomem++;
      return;
    }
    if (how != AL_HEAP && !(how == AL_PVALLOC && absurd)) M.aligned_calls++;
    if (p == NULL) {
      bool ls;
      if (!null_allowed(hi, want, align, absurd, &ls)) die("%s(%zu, %zu) returned NULL where it may not", what, align, req);
      expect_enomem(what, req);
      heap_null(hi, ls);
      return;
    }
    if (absurd) die("%s(%zu) succeeded for a size above PTRDIFF_MAX", what, req);
  }
  on_alloc(p, want, align, false, hi, what);
}

static void op_free(reader_t *r, int how) {
  if (M.nb == 0) return;
  size_t i = pick_block(r);
  uint8_t v = rd_u8(r);
  block_t b = M.b[i];
  fz_op_name = how == 0 ? "free" : how == 1 ? "free_sized" : how == 2 ? "free_aligned_sized" : "heap_free";
  check_block(&b, "block before free");
  /* sized frees: the right size mostly, sometimes a wrong one (a hint only) */
  size_t size = (v & 3) ? b.req : b.req + v;
  switch (how) {
    case 0: vam_free(b.p); break;
    case 1: vam_free_sized(b.p, size); break;
    case 2: vam_free_aligned_sized(b.p, natural_align(b.req), size); break;
    default: vam_heap_free(M.nh && (v & 1) ? M.heaps[v % M.nh].h : NULL, b.p); break;
  }
  drop_block(i);
}

static void op_usable(reader_t *r) {
  if (M.nb == 0) {
    if (vam_usable_size(NULL) != 0) die("usable_size(NULL) is not 0");
    return;
  }
  fz_op_name = "usable_size";
  check_block(&M.b[pick_block(r)], "usable_size");
}

/* ---- first-class heaps ------------------------------------------------------------- */

static void op_heap_new(reader_t *r) {
  if (M.nh == MAX_HEAPS) return;
  fz_op_name = "heap_new";
  uint8_t v = rd_u8(r);
  uint32_t l = rd_u32(r);
  size_t limit = (v & 3) == 0 ? 0 : (size_t)(l % (48 * MiB)) + 1;
  if ((v & 3) == 1) limit = (size_t)(l % (256 * KiB)) + 1; /* tight */
  vam_heap_options o = {.struct_size = sizeof o, .byte_limit = limit, .name = "fuzz"};
  errno = 0;
  vam_heap_t *h = vam_heap_new((v & 0x80) && limit == 0 ? NULL : &o);
  if (h == NULL) {
    if (!M.armed || errno != ENOMEM) die("vam_heap_new returned NULL, errno %d", errno);
    M.enomem++;
    return;
  }
  for (size_t k = 0; k < M.nh; k++)
    if (M.heaps[k].h == h) die("vam_heap_new returned a live heap again");
  M.heaps[M.nh++] = (mheap_t){.h = h, .limit = limit};
  M.heaps_created++;
}

static void op_heap_alloc(reader_t *r) {
  int hi = pick_heap(r);
  if (hi < 0) return;
  bool absurd;
  size_t req = rd_size(r, &absurd);
  uint8_t how = rd_u8(r) & 1; /* malloc or calloc; memalign is op_aligned */
  if (!absurd && !room_for(req)) return;
  const char *what = how ? "heap_calloc" : "heap_malloc";
  fz_op_name = what;
  errno = 0;
  uint8_t *p = how ? vam_heap_calloc(M.heaps[hi].h, 1, req) : vam_heap_malloc(M.heaps[hi].h, req);
  if (p == NULL) {
    bool ls;
    if (!null_allowed(hi, req, 0, absurd, &ls))
      die("%s(%zu) returned NULL: heap %d holds %llu of %zu bytes", what, req, hi,
          (unsigned long long)M.heaps[hi].live_bytes, M.heaps[hi].limit);
    expect_enomem(what, req);
    heap_null(hi, ls);
    return;
  }
  if (absurd) die("%s(%zu) succeeded for a size above PTRDIFF_MAX", what, req);
  on_alloc(p, req, 0, how == 1, hi, what);
}

/* Known bug 2 (/tmp/helperB-src-2.patch): stats.c counts the small blocks
 * a destroyed heap drops as neither live nor freed (its large and huge
 * blocks count as frees), so malloc_calls - free_calls stays above the
 * blocks live by one per such block.  Which blocks are slab blocks only
 * the internals can say. */
static bool is_small_block(const void *p) {
  if (vam__chunkmap_kind((uintptr_t)p) != VAM_MAP_CHUNK) return false;
  return vam__span_of(vam__chunk_of(p), p)->kind == VAM_SPAN_SMALL;
}

static void op_heap_destroy(reader_t *r) {
  if (M.nh == 0) return;
  int hi = (int)(rd_u8(r) % M.nh);
  fz_op_name = "heap_destroy";
  for (size_t i = 0; i < M.nb;) {
    if (M.b[i].heap == hi) {
      check_block(&M.b[i], "block before heap_destroy");
      if (!strict && is_small_block(M.b[i].p)) M.destroyed_small++;
      drop_block(i);
    } else {
      i++;
    }
  }
  vam_heap_destroy(M.heaps[hi].h);
  M.heaps_destroyed++;
  /* renumber: the last heap takes hi's place */
  int last = (int)M.nh - 1;
  M.heaps[hi] = M.heaps[last];
  M.nh--;
  for (size_t i = 0; i < M.nb; i++)
    if (M.b[i].heap == last) M.b[i].heap = hi;
}

static void check_heap(int hi) {
  vam_heap_stats_t s;
  mheap_t *h = &M.heaps[hi];
  if (vam_heap_stats(h->h, &s, sizeof s) != 0) die("vam_heap_stats failed");
  if (s.live_bytes != h->live_bytes || s.live_blocks != h->live_blocks)
    die("heap %d stats: %llu bytes in %llu blocks live, the model says %llu in %llu", hi,
        (unsigned long long)s.live_bytes, (unsigned long long)s.live_blocks,
        (unsigned long long)h->live_bytes, (unsigned long long)h->live_blocks);
  if (s.byte_limit != h->limit) die("heap %d stats: byte_limit %llu, set %zu", hi, (unsigned long long)s.byte_limit, h->limit);
  if (s.limit_refusals < h->refusals_min || s.limit_refusals > h->refusals_max)
    die("heap %d stats: %llu limit refusals, the model says %llu..%llu", hi, (unsigned long long)s.limit_refusals,
        (unsigned long long)h->refusals_min, (unsigned long long)h->refusals_max);
  if (s.malloc_calls != h->mallocs || s.free_calls != h->frees)
    die("heap %d stats: %llu mallocs %llu frees, the model says %llu and %llu", hi,
        (unsigned long long)s.malloc_calls, (unsigned long long)s.free_calls,
        (unsigned long long)h->mallocs, (unsigned long long)h->frees);
  if (h->limit && s.peak_bytes > h->limit) die("heap %d peak %llu above its limit %zu", hi, (unsigned long long)s.peak_bytes, h->limit);
}

/* ---- the page API ------------------------------------------------------------------ */

static void page_verify(piece_t *pc, size_t k, const char *what) {
  uint8_t *pg = pc->base + k * page;
  if (pc->st[k] == PG_DATA) {
    uint64_t first, last;
    memcpy(&first, pg, 8);
    memcpy(&last, pg + page - 8, 8);
    if (first != pc->tag[k] || last != pc->tag[k])
      die("%s: page %p holds %#llx/%#llx, expected %#llx", what, (void *)pg, (unsigned long long)first,
          (unsigned long long)last, (unsigned long long)pc->tag[k]);
    if (pc->tag[k] == 0) verify_zero(pg, page, what);
  } else if (pc->st[k] == PG_OLD_OR_ZERO) {
    uint64_t first, last;
    memcpy(&first, pg, 8);
    memcpy(&last, pg + page - 8, 8);
    bool old = first == pc->tag[k] && last == pc->tag[k];
    if (!old) verify_zero(pg, page, "page after a failed decommit (old or zero)");
  }
}

/* Mark committed page k with a fresh tag (its first and last word). */
static void page_tag(piece_t *pc, size_t k) {
  uint8_t *pg = pc->base + k * page;
  uint64_t t = (++M.next_tag * 0x9e3779b97f4a7c15ull) | 1;
  memcpy(pg, &t, 8);
  memcpy(pg + page - 8, &t, 8);
  pc->st[k] = PG_DATA;
  pc->tag[k] = t;
}

static void op_pages_reserve(reader_t *r) {
  if (M.np == MAX_PIECES || M.nb >= MAX_BLOCKS) return;
  fz_op_name = "pages_reserve";
  uint8_t v = rd_u8(r), a = rd_u8(r);
  size_t n = 1 + v % MAX_RES_PAGES;
  size_t size = n * page, align = (a & 0x80) ? (size_t)1 << (12 + a % 11) : 0;
  unsigned flags = (a >> 5) & 3;
  bool bad = false;
  if ((a & 0x1f) == 0x1f) { /* an EINVAL case */
    bad = true;
    switch (v % 4) {
      case 0: size = 0; break;
      case 1: size += 1; break;
      case 2: align = 3 * page; break;
      default: flags |= 1u << 7; break;
    }
  }
  errno = 0;
  uint8_t *p = vam_pages_reserve(size, align, flags);
  if (bad) {
    if (p || errno != EINVAL) die("pages_reserve(%zu, %zu, %#x) gave %p errno %d, not EINVAL", size, align, flags, (void *)p, errno);
    M.pages_einval++;
    return;
  }
  if (p == NULL) {
    if (!M.armed || errno != ENOMEM) die("pages_reserve(%zu, %zu, %#x) failed: errno %d", size, align, flags, errno);
    return;
  }
  if ((uintptr_t)p % (align ? align : page)) die("pages_reserve: %p not aligned to %zu", (void *)p, align);
  M.reserves++;
  M.pages_bytes += (int64_t)size;
  M.pieces_count++;
  piece_t *pc = &M.pieces[M.np];
  memset(pc, 0, sizeof *pc);
  pc->base = p;
  pc->npages = n;
  iv_add(&M.iv, (uintptr_t)p, (uintptr_t)p + size, -2 - (int)M.np, "pages_reserve");
  M.np++;
  for (size_t k = 0; k < n; k++) {
    if (flags & VAM_PAGES_COMMIT) {
      pc->st[k] = PG_DATA;
      pc->tag[k] = 0;
      if (k == 0 || k == n - 1) verify_zero(p + k * page, page, "pages_reserve(COMMIT)");
    }
  }
}

/* A range inside one piece: piece index, first page, count. */
static bool pick_range(reader_t *r, size_t *pi, size_t *k0, size_t *cnt) {
  if (M.np == 0) return false;
  *pi = rd_u8(r) % M.np;
  piece_t *pc = &M.pieces[*pi];
  *k0 = rd_u8(r) % pc->npages;
  *cnt = 1 + rd_u8(r) % (pc->npages - *k0);
  return true;
}

static void op_pages_commit(reader_t *r) {
  size_t pi, k0, cnt;
  if (!pick_range(r, &pi, &k0, &cnt)) return;
  fz_op_name = "pages_commit";
  piece_t *pc = &M.pieces[pi];
  int err = vam_pages_commit(pc->base + k0 * page, cnt * page);
  if (err) {
    if (!M.armed || (err != EAGAIN && err != ENOMEM)) die("pages_commit returned %d", err);
    return; /* do not use the range; its states stand */
  }
  M.commits++;
  for (size_t k = k0; k < k0 + cnt; k++) {
    if (pc->st[k] == PG_NOACCESS) {
      verify_zero(pc->base + k * page, page, "page committed fresh or after a decommit");
      pc->st[k] = PG_DATA;
      pc->tag[k] = 0;
    } else {
      page_verify(pc, k, "page committed again");
    }
    if ((k ^ k0) & 1) page_tag(pc, k);
    else if (pc->st[k] == PG_OLD_OR_ZERO) page_tag(pc, k);
  }
}

static void op_pages_decommit(reader_t *r) {
  size_t pi, k0, cnt;
  if (!pick_range(r, &pi, &k0, &cnt)) return;
  fz_op_name = "pages_decommit";
  piece_t *pc = &M.pieces[pi];
  unsigned flags = (rd_u8(r) & 1) ? VAM_PAGES_DONTDUMP : 0;
  for (size_t k = k0; k < k0 + cnt; k++) page_verify(pc, k, "page before decommit");
  int err = vam_pages_decommit(pc->base + k0 * page, cnt * page, flags);
  if (err) {
    if (!M.armed || (err != EAGAIN && err != ENOMEM)) die("pages_decommit returned %d", err);
    /* committed pages stay committed, old or zero */
    for (size_t k = k0; k < k0 + cnt; k++)
      if (pc->st[k] != PG_NOACCESS) {
        pc->st[k] = PG_OLD_OR_ZERO;
        page_verify(pc, k, "page after a failed decommit");
      }
    return;
  }
  M.decommits++;
  for (size_t k = k0; k < k0 + cnt; k++) pc->st[k] = PG_NOACCESS;
}

static void drop_piece(size_t pi) {
  iv_del(&M.iv, (uintptr_t)M.pieces[pi].base);
  M.pieces[pi] = M.pieces[--M.np];
}

static void op_pages_release(reader_t *r) {
  size_t pi, k0, cnt;
  if (!pick_range(r, &pi, &k0, &cnt)) return;
  if (M.np == MAX_PIECES) return; /* a hole needs a new piece */
  fz_op_name = "pages_release";
  piece_t *pc = &M.pieces[pi];
  for (size_t k = k0; k < k0 + cnt; k++) page_verify(pc, k, "page before release");
  int err = vam_pages_release(pc->base + k0 * page, cnt * page);
  if (err) {
    if (!M.armed || err != ENOMEM) die("pages_release returned %d", err);
    return;
  }
  M.releases++;
  M.pages_bytes -= (int64_t)(cnt * page);
  piece_t old = *pc;
  bool head = k0 > 0, tail = k0 + cnt < old.npages;
  M.pieces_count += head && tail ? 1 : (head || tail ? 0 : -1);
  drop_piece(pi);
  if (head) {
    piece_t *h = &M.pieces[M.np++];
    *h = old;
    h->npages = k0;
    iv_add(&M.iv, (uintptr_t)h->base, (uintptr_t)h->base + k0 * page, -2, "release head");
  }
  if (tail) {
    piece_t *t = &M.pieces[M.np++];
    size_t first = k0 + cnt;
    memset(t, 0, sizeof *t);
    t->base = old.base + first * page;
    t->npages = old.npages - first;
    memcpy(t->st, old.st + first, t->npages);
    memcpy(t->tag, old.tag + first, t->npages * sizeof old.tag[0]);
    iv_add(&M.iv, (uintptr_t)t->base, (uintptr_t)t->base + t->npages * page, -2, "release tail");
  }
}

/* Calls that must be EINVAL: misaligned, zero, unknown flags, ranges that
 * are not inside one live reservation (malloc's memory, past an end). */
static void op_pages_bad(reader_t *r) {
  fz_op_name = "pages_einval";
  uint8_t v = rd_u8(r);
  uint8_t *addr;
  size_t size = page;
  if (M.np && (v & 4)) {
    piece_t *pc = &M.pieces[v % M.np];
    switch ((v >> 3) & 3) {
      case 0: addr = pc->base + 1; break;                                   /* misaligned */
      case 1: addr = pc->base; size = 0; break;                             /* zero */
      case 2: addr = pc->base; size = (pc->npages + 1) * page; break;       /* past its end */
      default: addr = pc->base; size = page + 100; break;                   /* odd size */
    }
    /* past the end is EINVAL even where another reservation follows: a
     * range must lie inside one */
  } else if (M.nb) {
    block_t *b = &M.b[v % M.nb];
    addr = (uint8_t *)((uintptr_t)b->p & ~(uintptr_t)(page - 1));
  } else {
    addr = (uint8_t *)(uintptr_t)(page * 16);
  }
  int err;
  switch (v % 4) {
    case 0: err = vam_pages_commit(addr, size); break;
    case 1: err = vam_pages_decommit(addr, size, 0); break;
    case 2: err = vam_pages_release(addr, size); break;
    default:
      if (M.np == 0) return;
      err = vam_pages_decommit(M.pieces[0].base, page, 1u << 6); /* unknown flag */
      break;
  }
  if (err != EINVAL) die("a bad page-API call (%p, %zu, kind %d) returned %d, not EINVAL", (void *)addr, size, v % 4, err);
  M.pages_einval++;
}

/* ---- faults --------------------------------------------------------------------------- */

static void op_faults(reader_t *r) {
  static const char *const kinds[] = {"mmap=ENOMEM", "munmap=ENOMEM", "madvise=EAGAIN", "madvise=ENOMEM",
                                      "mprotect=ENOMEM", "mprotect=EAGAIN"};
  uint8_t v = rd_u8(r), w = rd_u8(r);
  char spec[128];
  int n = snprintf(spec, sizeof spec, "%s:count=%u:after=%u", kinds[v % 6], 1 + w % 8, (w >> 3) % 4);
  if (v & 0x80) snprintf(spec + n, sizeof spec - (size_t)n, ",%s:count=%u", kinds[(v >> 3) % 6], 1 + (w >> 5));
  fz_op_name = "faults";
  if (vam__os_fault_spec(spec, true) != 0) die("fault spec '%s' refused", spec);
  M.armed = true;
}

static void faults_off(void) {
  vam__os_fault_spec("", true);
  M.armed = false;
}

/* ---- statistics ------------------------------------------------------------------------ */

#define D(field) (s.field - base.field)
static void check_stats(void) {
  vam_stats_t s = stats_now();
  uint64_t live = (s.malloc_calls - s.free_calls) - (base.malloc_calls - base.free_calls);
  if (live < M.nb + M.destroyed_small || live > M.nb + M.destroyed_small + M.leaked_frees)
    die("stats: malloc_calls - free_calls moved by %lld, the model holds %zu blocks", (long long)live, M.nb);
  if (misuse_total(&s) != misuse_total(&base))
    die("stats: a misuse was reported (%llu), but the model made none", (unsigned long long)(misuse_total(&s) - misuse_total(&base)));
  if (D(enomem_returns) != M.enomem)
    die("stats: enomem_returns moved by %llu, the model counted %llu NULL/ENOMEM answers",
        (unsigned long long)D(enomem_returns), (unsigned long long)M.enomem);
  if (D(calloc_calls) != M.callocs || D(realloc_calls) != M.reallocs || D(aligned_calls) != M.aligned_calls)
    die("stats: calloc/realloc/aligned calls moved by %llu/%llu/%llu, the model says %llu/%llu/%llu",
        (unsigned long long)D(calloc_calls), (unsigned long long)D(realloc_calls), (unsigned long long)D(aligned_calls),
        (unsigned long long)M.callocs, (unsigned long long)M.reallocs, (unsigned long long)M.aligned_calls);
  if (D(user_heaps_created) != M.heaps_created || D(user_heaps_destroyed) != M.heaps_destroyed ||
      s.user_heaps != base.user_heaps + M.nh)
    die("stats: heaps created/destroyed/alive %llu/%llu/%llu, the model says %llu/%llu/%zu",
        (unsigned long long)D(user_heaps_created), (unsigned long long)D(user_heaps_destroyed),
        (unsigned long long)s.user_heaps, (unsigned long long)M.heaps_created,
        (unsigned long long)M.heaps_destroyed, M.nh);
  if (D(heap_limit_refusals) < M.limit_min || D(heap_limit_refusals) > M.limit_max)
    die("stats: heap_limit_refusals moved by %llu, the model says %llu..%llu", (unsigned long long)D(heap_limit_refusals),
        (unsigned long long)M.limit_min, (unsigned long long)M.limit_max);
  if ((int64_t)(s.pages_reserved - base.pages_reserved) != M.pages_bytes ||
      (int64_t)(s.pages_reservations - base.pages_reservations) != M.pieces_count)
    die("stats: pages_reserved %+lld bytes in %+lld reservations, the model says %+lld in %+lld",
        (long long)(s.pages_reserved - base.pages_reserved), (long long)(s.pages_reservations - base.pages_reservations),
        (long long)M.pages_bytes, (long long)M.pieces_count);
  if (D(pages_reserves) != M.reserves || D(pages_commits) != M.commits || D(pages_decommits) != M.decommits ||
      D(pages_releases) != M.releases || D(pages_einval) != M.pages_einval)
    die("stats: page-API reserves/commits/decommits/releases/einval %llu/%llu/%llu/%llu/%llu, the model says "
        "%llu/%llu/%llu/%llu/%llu",
        (unsigned long long)D(pages_reserves), (unsigned long long)D(pages_commits), (unsigned long long)D(pages_decommits),
        (unsigned long long)D(pages_releases), (unsigned long long)D(pages_einval), (unsigned long long)M.reserves,
        (unsigned long long)M.commits, (unsigned long long)M.decommits, (unsigned long long)M.releases,
        (unsigned long long)M.pages_einval);
  for (size_t h = 0; h < M.nh; h++) check_heap((int)h);
}

/* ---- the driver ------------------------------------------------------------------------ */

static void cleanup(void) {
  fz_op_name = "cleanup";
  faults_off();
  while (M.nb) {
    check_block(&M.b[M.nb - 1], "block at the end");
    vam_free(M.b[M.nb - 1].p);
    drop_block(M.nb - 1);
  }
  check_stats();
  while (M.nh) {
    vam_heap_destroy(M.heaps[M.nh - 1].h);
    M.heaps_destroyed++;
    M.nh--;
  }
  while (M.np) {
    piece_t *pc = &M.pieces[M.np - 1];
    for (size_t k = 0; k < pc->npages; k++) page_verify(pc, k, "page at the end");
    int err = vam_pages_release(pc->base, pc->npages * page);
    if (err) die("releasing a reservation at the end returned %d", err);
    M.releases++;
    M.pages_bytes -= (int64_t)(pc->npages * page);
    M.pieces_count--;
    drop_piece(M.np - 1);
  }
  check_stats();
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
  static const char *const env[] = {"VAMALLOC_RETRY_MAX=1", "VAMALLOC_RETRY_DELAY_US=0",
                                    "VAMALLOC_PURGE_DELAY_MS=0", NULL};
  ensure_env(argc, argv, env);
  strict = getenv("FUZZ_STRICT") && strcmp(getenv("FUZZ_STRICT"), "0") != 0;
  trace = getenv("FUZZ_TRACE") != NULL;
  page = vam_page_size();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  reader_t r = {data, size, 0};
  memset(&M, 0, sizeof M);
  base = stats_now();
  fz_op_index = 0;
  while (rd_more(&r) && fz_op_index < 400) {
    uint8_t op = rd_u8(&r);
    fz_op_index++;
    switch (op % 40) {
      case 0: case 1: case 2: case 3: case 4: case 5: op_malloc(&r); break;
      case 6: case 7: op_calloc(&r); break;
      case 8: case 9: op_realloc(&r, 0); break;
      case 10: op_realloc(&r, 1); break;
      case 11: op_realloc0(&r); break;
      case 12: op_aligned(&r, AL_POSIX); break;
      case 13: op_aligned(&r, AL_ALIGNED); break;
      case 14: op_aligned(&r, AL_MEMALIGN); break;
      case 15: op_aligned(&r, (op & 0x40) ? AL_PVALLOC : AL_VALLOC); break;
      case 16: case 17: case 18: case 19: op_free(&r, 0); break;
      case 20: op_free(&r, 1 + (op >> 7)); break;
      case 21: op_usable(&r); break;
      case 22: op_heap_new(&r); break;
      case 23: case 24: op_heap_alloc(&r); break;
      case 25: op_aligned(&r, AL_HEAP); break;
      case 26: op_realloc(&r, 2); break;
      case 27: op_free(&r, 3); break;
      case 28: op_heap_destroy(&r); break;
      case 29: op_pages_reserve(&r); break;
      case 30: case 31: op_pages_commit(&r); break;
      case 32: op_pages_decommit(&r); break;
      case 33: op_pages_release(&r); break;
      case 34: op_pages_bad(&r); break;
      case 35: fz_op_name = "collect"; vam_collect(op & 0x80); break;
      case 36: op_faults(&r); break;
      case 37: faults_off(); break;
      default: op_free(&r, 0); break;
    }
    if (trace) fprintf(stderr, "op #%lu %u %s: %zu blocks, %zu heaps, %zu pieces%s\n", fz_op_index, op % 40,
                       fz_op_name, M.nb, M.nh, M.np, M.armed ? ", faults armed" : "");
    fz_op_name = "";
    check_stats();
  }
  cleanup();
  return 0;
}
