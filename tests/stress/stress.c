/* stress: multi-threaded allocator stress test with full data verification.
 *
 * Written against the STANDARD names only (malloc, free, calloc, realloc,
 * posix_memalign, aligned_alloc, malloc_usable_size) and never linked with
 * vamalloc, so the same binary runs under any allocator through LD_PRELOAD:
 *
 *   LD_PRELOAD=build/libvamalloc.so build/tests/stress/stress --short
 *   LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 stress 4 1 200000
 *
 * Usage: stress [threads] [scale] [iterations] [--short] [--seed=N]
 *               [--gens=N] [--no-edge] [--strict-errno] [--avoid-peer-bugs]
 *   threads     worker threads per generation (default 2)
 *   scale       live-slot multiplier: each thread keeps 2048*scale slots
 *   iterations  operations per thread, summed over all generations
 *   --short     CI mode: a few seconds on 2 cores (default iterations 120000,
 *               else 1000000)
 *   --gens=N    run the workers in N generations; blocks still live when a
 *               generation's threads exit are handed to the next generation,
 *               so memory allocated by dead threads is freed by new ones
 *   --no-edge   skip the single-threaded edge cases run first (NULL on
 *               overflow, EINVAL alignments, huge alignments, every size
 *               0..4096 written to its full usable size)
 *   --strict-errno  a failed allocation must set errno = ENOMEM (the
 *               vamalloc contract; jemalloc, mimalloc and tcmalloc do not
 *               always, so by default that is only a note)
 *   --avoid-peer-bugs  steer clear of known bugs in peer allocators so the
 *               rest of the test can run under them: mimalloc 2.0.9 (Debian
 *               12) returns misaligned blocks for posix_memalign/aligned_alloc
 *               with alignment 256..1024 and size a power of two in
 *               [alignment, 1024] (microsoft/mimalloc#700, fixed upstream in
 *               2.1); with this flag aligned requests of alignment >= 256
 *               are never smaller than 1025 bytes.  Never use it for vamalloc.
 *   --allow-enomem  fault-injection runs: an allocation may return NULL with
 *               ENOMEM (counted; a failed realloc's block is re-verified)
 *
 * What one operation does (per thread, deterministic PRNG seeded per thread):
 *   pick a random slot; empty -> allocate (malloc / calloc / posix_memalign /
 *   aligned_alloc / realloc(NULL) / malloc(0)); occupied -> realloc (grow or
 *   shrink), verify in place, or free -- and about half of the frees are not
 *   done locally but posted to another thread's mailbox, whose owner
 *   verifies and frees (or adopts and later reallocs) the block.
 *
 * The pattern.  Byte j of a block is byte j%8 of the 64-bit word
 *   W(j/8) = base ^ ((j/8 + 1) * K),  base = mix(address, fill, salt)
 * where fill is the number of bytes written and salt is drawn fresh for
 * every allocation.  A block handed out twice, a stale write, a shifted copy
 * or a zeroed page therefore all show up as a mismatch.  Every block is
 * verified in full before it is freed or realloc'd.  After realloc, the
 * preserved prefix -- min(old requested size, new size), NOT the old usable
 * size -- must equal the OLD pattern, i.e. the one computed from the old
 * address, old fill and old salt, even though it now lives at the new
 * address (the old pointer is never dereferenced after realloc).  The block
 * is then rewritten with a fresh pattern for its new address.
 *
 * On any failure: one line naming what failed (address, offset, expected,
 * got) on stderr, exit status 1.  On success: one summary line on stdout.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <signal.h>
#include <unistd.h>
#if defined(__APPLE__)
#include <malloc/malloc.h>
#define usable_size(p) malloc_size(p)
#else
#include <malloc.h>
#define usable_size(p) malloc_usable_size(p)
#endif

#define MAX_THREADS 256
#define SLOTS_PER_SCALE 2048
#define MAILBOX_CAP 1024
#define CARRY_CAP 8192
#define MAX_BLOCK ((size_t)8 << 20)   /* largest requested size: 8 MiB */
#define MAX_ALIGN_SHIFT 12            /* alignments 16 << 0 .. 16 << 12 = 64 KiB */
#define PAT_K UINT64_C(0x9E3779B97F4A7C15)

/* ---- options ----------------------------------------------------------- */
static struct {
    unsigned threads;
    unsigned scale;
    uint64_t iters;
    unsigned gens;
    uint64_t seed;
    int edge;
    int is_short;
    int strict_errno;
    int avoid_peer_bugs;
    int allow_enomem;
} opt = { 2, 1, 0, 0, 0x5eed, 1, 0, 0, 0, 0 };

/* ---- counters (one list drives struct, merge and summary) --------------- */
#define STRESS_COUNTERS(X)                                                     \
    X(malloc) X(calloc) X(posix_memalign) X(aligned_alloc) X(realloc_null)     \
    X(zero) X(realloc) X(realloc_grow) X(realloc_shrink) X(free)               \
    X(free_remote) X(sent) X(adopted) X(carried) X(usable_writes) X(verify)    \
    X(mailbox_full) X(large) X(bytes_verified) X(enomem)

typedef struct {
#define X(n) uint64_t n;
    STRESS_COUNTERS(X)
#undef X
} counters_t;

/* ---- a live block -------------------------------------------------------- */
enum { K_MALLOC, K_CALLOC, K_MEMALIGN, K_ALIGNED, K_REALLOC, K_ZERO };
static const char *const kind_name[] = {
    "malloc", "calloc", "posix_memalign", "aligned_alloc", "realloc", "malloc(0)"
};

typedef struct {
    unsigned char *p;   /* NULL: slot empty (or a malloc(0) that returned NULL) */
    size_t req;         /* requested size */
    size_t fill;        /* bytes holding the pattern (req, or the usable size) */
    uint64_t salt;
    uint32_t align;     /* alignment asked for (0: default) */
    uint16_t owner;     /* worker that allocated / last realloc'd it */
    uint8_t kind;
    uint8_t live;
} blk_t;

typedef struct {
    pthread_mutex_t mu;
    size_t n;
    blk_t items[MAILBOX_CAP];
} mailbox_t;

typedef struct {
    unsigned id;        /* index within the generation (mailbox index) */
    unsigned gid;       /* global id, for reports */
    unsigned gen;
    uint64_t rng;
    uint64_t iters;
    size_t nslots;
    blk_t *slots;
    blk_t *inbox;       /* private copy of the mailbox while draining */
    counters_t c;
    pthread_t th;
} worker_t;

static mailbox_t *mailboxes;
static pthread_barrier_t gen_barrier;
static pthread_mutex_t carry_mu = PTHREAD_MUTEX_INITIALIZER;
static blk_t *carry;
static size_t carry_n;

/* ---- failure reporting ----------------------------------------------------- */
static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
    va_list ap;
    char buf[1024];
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    /* write(2) directly: the heap may be corrupt, and we leave with _exit. */
    size_t len = strlen(buf);
    if (write(2, "stress: FAIL: ", 14) < 0 || write(2, buf, len) < 0 || write(2, "\n", 1) < 0) {
        /* nothing more we can do */
    }
    _exit(1);
}

/* With --allow-enomem (fault-injection runs), an allocation may fail
 * cleanly: NULL with errno ENOMEM.  It is counted and the slot stays empty;
 * anything else is still a failure. */
#define ENOMEM_OK(w, err) (opt.allow_enomem && (err) == ENOMEM && ((w)->c.enomem++, 1))

/* ---- crash reporting ---------------------------------------------------------
 * Each thread notes the allocator call it is in; a fatal signal prints that
 * note (async-signal-safe) before the default action kills the process. */
typedef struct {
    const char *op;
    uintptr_t ptr;
    size_t size;
    uint64_t iter;
    unsigned gid;
} cur_op_t;
static __thread volatile cur_op_t cur;   /* volatile: read by the signal handler */
#define NOTE_OP(o, p, n) (cur.op = (o), cur.ptr = (uintptr_t)(p), cur.size = (n))

static char *fmt_u(char *d, uint64_t v, unsigned base)
{
    char tmp[24];
    int n = 0;
    if (base == 16) { *d++ = '0'; *d++ = 'x'; }
    do { tmp[n++] = "0123456789abcdef"[v % base]; v /= base; } while (v);
    while (n) *d++ = tmp[--n];
    return d;
}

static void on_crash(int sig)
{
    char buf[256], *d = buf;
    const char *s;
    for (s = "stress: CRASH: signal "; *s; ) *d++ = *s++;
    d = fmt_u(d, (uint64_t)sig, 10);
    for (s = " in thread "; *s; ) *d++ = *s++;
    d = fmt_u(d, cur.gid, 10);
    for (s = ", iteration "; *s; ) *d++ = *s++;
    d = fmt_u(d, cur.iter, 10);
    for (s = ", during "; *s; ) *d++ = *s++;
    for (s = cur.op ? cur.op : "harness code"; *s && d < buf + 160; ) *d++ = *s++;
    for (s = " ptr "; *s; ) *d++ = *s++;
    d = fmt_u(d, cur.ptr, 16);
    for (s = " size "; *s; ) *d++ = *s++;
    d = fmt_u(d, cur.size, 10);
    *d++ = '\n';
    if (write(2, buf, (size_t)(d - buf)) < 0) {
        /* ignore */
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

/* errno after a failed call: ISO C does not require it, POSIX and the
 * vamalloc contract do (ENOMEM).  Several mainstream allocators leave errno
 * alone, so a wrong errno is fatal only with --strict-errno. */
static void errno_expect(int got, int want, const char *what)
{
    if (got == want)
        return;
    if (opt.strict_errno)
        die("edge: %s: errno %d (%s), expected %d (%s)", what, got, strerror(got), want,
            strerror(want));
    fprintf(stderr, "stress: note: %s: errno %d (%s), expected %d (%s) "
            "(fatal with --strict-errno)\n", what, got, strerror(got), want, strerror(want));
}

/* ---- PRNG: splitmix64 --------------------------------------------------------- */
static inline uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}
static inline uint64_t rnd(uint64_t *s)
{
    *s += PAT_K;
    return mix64(*s);
}
static inline uint64_t rnd_below(uint64_t *s, uint64_t n) { return rnd(s) % n; }
static inline uint64_t rnd_range(uint64_t *s, uint64_t lo, uint64_t hi) /* [lo, hi] */
{
    return lo + rnd(s) % (hi - lo + 1);
}

/* ---- the pattern ------------------------------------------------------------- */
static inline uint64_t pat_base(uintptr_t addr, size_t fill, uint64_t salt)
{
    return mix64((uint64_t)addr ^ mix64((uint64_t)fill + salt));
}
static inline uint64_t pat_word(uint64_t base, size_t i) { return base ^ ((uint64_t)(i + 1) * PAT_K); }

static void pat_write(unsigned char *p, size_t len, uint64_t base)
{
    size_t nw = len / 8, i;
    for (i = 0; i < nw; i++) {
        uint64_t w = pat_word(base, i);
        memcpy(p + 8 * i, &w, 8);
    }
    if (len % 8) {
        uint64_t w = pat_word(base, nw);
        memcpy(p + 8 * nw, &w, len % 8);
    }
}

/* Returns the byte offset of the first mismatching word (rounded down to 8),
 * or SIZE_MAX when all len bytes match; *exp / *got get the words. */
static size_t pat_check(const unsigned char *p, size_t len, uint64_t base, uint64_t *exp, uint64_t *got)
{
    size_t nw = len / 8, i;
    for (i = 0; i < nw; i++) {
        uint64_t w;
        memcpy(&w, p + 8 * i, 8);
        if (w != pat_word(base, i)) {
            *exp = pat_word(base, i);
            *got = w;
            return 8 * i;
        }
    }
    if (len % 8) {
        uint64_t w = 0, e = 0, pw = pat_word(base, nw);
        memcpy(&w, p + 8 * nw, len % 8);
        memcpy(&e, &pw, len % 8);
        if (w != e) {
            *exp = e;
            *got = w;
            return 8 * nw;
        }
    }
    return SIZE_MAX;
}

static void blk_fill(blk_t *b)
{
    NOTE_OP("pattern write (harness)", b->p, b->fill);
    pat_write(b->p, b->fill, pat_base((uintptr_t)b->p, b->fill, b->salt));
}

/* Verify the whole pattern of a live block. */
static void blk_verify(worker_t *w, const blk_t *b, const char *when)
{
    uint64_t e, g;
    size_t off;
    if (!b->p || !b->fill)
        return;
    NOTE_OP("pattern check (harness)", b->p, b->fill);
    off = pat_check(b->p, b->fill, pat_base((uintptr_t)b->p, b->fill, b->salt), &e, &g);
    if (off != SIZE_MAX)
        die("thread %u: pattern mismatch %s: block %p (%s, requested %zu, filled %zu, "
            "align %u, allocated by thread %u) at offset %zu (address %p): "
            "expected 0x%016" PRIx64 " got 0x%016" PRIx64,
            w->gid, when, (void *)b->p, kind_name[b->kind], b->req, b->fill, b->align,
            b->owner, off, (void *)(b->p + off), e, g);
    w->c.verify++;
    w->c.bytes_verified += b->fill;
}

static void check_natural_alignment(worker_t *w, uintptr_t p, size_t n, const char *what)
{
    /* Fundamental alignment: 16 for n >= 16, else the largest power of two
     * <= n (allocators legitimately hand out 8-aligned 8-byte blocks). */
    uintptr_t a = n >= 16 ? 16 : n >= 8 ? 8 : n >= 4 ? 4 : n >= 2 ? 2 : 1;
    if (p & (a - 1))
        die("thread %u: %s(%zu) returned 0x%" PRIxPTR ", not %zu-byte aligned", w->gid, what, n,
            p, (size_t)a);
}

/* After any allocation: usable size >= requested, and choose what to fill. */
static void blk_finish(worker_t *w, blk_t *b)
{
    size_t u;
    b->live = 1;
    b->owner = (uint16_t)w->gid;
    b->salt = rnd(&w->rng);
    b->fill = b->req;
    if (!b->p)
        return;
    NOTE_OP("malloc_usable_size", b->p, b->req);
    u = usable_size(b->p);
    NOTE_OP(NULL, 0, 0);
    if (u < b->req)
        die("thread %u: malloc_usable_size(%p) = %zu < requested %zu (%s)", w->gid,
            (void *)b->p, u, b->req, kind_name[b->kind]);
    if (u > b->req && rnd_below(&w->rng, 8) == 0) {
        b->fill = u;      /* write every usable byte */
        w->c.usable_writes++;
    }
    blk_fill(b);
}

/* ---- sizes ---------------------------------------------------------------------- */
static size_t log_uniform(uint64_t *s, size_t lo, size_t hi)
{
    /* Pick a power-of-two band uniformly, then a size inside it. */
    unsigned lb = 63 - (unsigned)__builtin_clzll(lo), hb = 63 - (unsigned)__builtin_clzll(hi);
    unsigned b = (unsigned)rnd_range(s, lb, hb);
    size_t blo = (size_t)1 << b, bhi = ((size_t)2 << b) - 1;
    if (blo < lo) blo = lo;
    if (bhi > hi) bhi = hi;
    return (size_t)rnd_range(s, blo, bhi);
}

static size_t pick_size(worker_t *w)
{
    uint64_t r = rnd_below(&w->rng, 10000);
    if (r < 4500) return (size_t)rnd_range(&w->rng, 1, 128);
    if (r < 9000) return (size_t)rnd_range(&w->rng, 1, 1024);
    if (r < 9960) return log_uniform(&w->rng, 1025, 256 << 10);
    w->c.large++;
    return log_uniform(&w->rng, (256 << 10) + 1, MAX_BLOCK);
}

/* ---- operations ------------------------------------------------------------------- */
static void op_alloc(worker_t *w, blk_t *b)
{
    uint64_t r = rnd_below(&w->rng, 1000);
    size_t n = pick_size(w);
    memset(b, 0, sizeof *b);
    b->req = n;
    if (r < 20) {                                  /* malloc(0): NULL or unique */
        b->kind = K_ZERO;
        b->req = 0;
        NOTE_OP("malloc", 0, 0);
        b->p = malloc(0);
        w->c.zero++;
    } else if (r < 100) {                          /* calloc: verify zeroes */
        size_t cnt = 1, sz = n;
        switch (rnd_below(&w->rng, 3)) {
        case 0: if (n % 8 == 0) { cnt = n / 8; sz = 8; } break;
        case 1: cnt = n; sz = 1; break;
        default: break;
        }
        b->kind = K_CALLOC;
        NOTE_OP("calloc", 0, n);
        b->p = calloc(cnt, sz);
        if (!b->p && ENOMEM_OK(w, errno)) { memset(b, 0, sizeof *b); return; }
        if (!b->p)
            die("thread %u: calloc(%zu, %zu) returned NULL (errno %d)", w->gid, cnt, sz, errno);
        NOTE_OP("calloc zero check (harness)", b->p, n);
        for (size_t i = 0; i < n; i++)
            if (b->p[i] != 0)
                die("thread %u: calloc(%zu, %zu) = %p: byte at offset %zu (address %p) "
                    "expected 0x00 got 0x%02x", w->gid, cnt, sz, (void *)b->p, i,
                    (void *)(b->p + i), b->p[i]);
        check_natural_alignment(w, (uintptr_t)b->p, n, "calloc");
        w->c.calloc++;
    } else if (r < 140) {                          /* posix_memalign */
        void *q = NULL;
        int rc;
        b->kind = K_MEMALIGN;
        b->align = 16u << rnd_below(&w->rng, MAX_ALIGN_SHIFT + 1);
        if (rnd_below(&w->rng, 4) == 0 && n > 4096)
            n = b->req = (size_t)rnd_range(&w->rng, 1, 4096);  /* mostly small ones */
        if (opt.avoid_peer_bugs && b->align >= 256 && n <= 1024)
            n = b->req = 1025;
        NOTE_OP("posix_memalign", b->align, n);
        rc = posix_memalign(&q, b->align, n);
        if (rc != 0 && ENOMEM_OK(w, rc)) { memset(b, 0, sizeof *b); return; }
        if (rc != 0 || !q)
            die("thread %u: posix_memalign(align %u, size %zu) failed: rc %d", w->gid,
                b->align, n, rc);
        if ((uintptr_t)q % b->align)
            die("thread %u: posix_memalign(align %u, size %zu) returned %p: misaligned by %zu",
                w->gid, b->align, n, q, (size_t)((uintptr_t)q % b->align));
        b->p = q;
        w->c.posix_memalign++;
    } else if (r < 160) {                          /* aligned_alloc: size a multiple */
        b->kind = K_ALIGNED;
        b->align = 16u << rnd_below(&w->rng, MAX_ALIGN_SHIFT + 1);
        if (n > 65536) n = (size_t)rnd_range(&w->rng, 1, 65536);
        if (opt.avoid_peer_bugs && b->align >= 256 && n <= 1024)
            n = 1025;
        n = (n + b->align - 1) / b->align * b->align;
        b->req = n;
        NOTE_OP("aligned_alloc", b->align, n);
        b->p = aligned_alloc(b->align, n);
        if (!b->p && ENOMEM_OK(w, errno)) { memset(b, 0, sizeof *b); return; }
        if (!b->p)
            die("thread %u: aligned_alloc(%u, %zu) returned NULL (errno %d)", w->gid,
                b->align, n, errno);
        if ((uintptr_t)b->p % b->align)
            die("thread %u: aligned_alloc(%u, %zu) returned %p: misaligned by %zu", w->gid,
                b->align, n, (void *)b->p, (size_t)((uintptr_t)b->p % b->align));
        w->c.aligned_alloc++;
    } else if (r < 180) {                          /* realloc(NULL, n) == malloc(n) */
        unsigned char *p;
        NOTE_OP("realloc", 0, n);
        p = realloc(NULL, n);
        if (!p && ENOMEM_OK(w, errno)) { memset(b, 0, sizeof *b); return; }
        if (!p)
            die("thread %u: realloc(NULL, %zu) returned NULL (errno %d)", w->gid, n, errno);
        check_natural_alignment(w, (uintptr_t)p, n, "realloc(NULL)");
        b->kind = K_REALLOC;
        b->p = p;
        w->c.realloc_null++;
    } else {
        unsigned char *p;
        NOTE_OP("malloc", 0, n);
        p = malloc(n);
        if (!p && ENOMEM_OK(w, errno)) { memset(b, 0, sizeof *b); return; }
        if (!p)
            die("thread %u: malloc(%zu) returned NULL (errno %d)", w->gid, n, errno);
        check_natural_alignment(w, (uintptr_t)p, n, "malloc");
        b->kind = K_MALLOC;
        b->p = p;
        w->c.malloc++;
    }
    blk_finish(w, b);
}

static void op_free(worker_t *w, blk_t *b)
{
    blk_verify(w, b, "before free");
    if (b->owner != w->gid)
        w->c.free_remote++;
    NOTE_OP("free", b->p, b->req);
    free(b->p);
    w->c.free++;
    memset(b, 0, sizeof *b);
}

static size_t pick_realloc_size(worker_t *w, size_t old)
{
    size_t n;
    switch (rnd_below(&w->rng, 5)) {
    case 0: n = old + (size_t)rnd_range(&w->rng, 1, 64); break;          /* grow a bit */
    case 1: n = old * (size_t)rnd_range(&w->rng, 2, 4) + 1; break;      /* grow a lot */
    case 2: n = old - old / (size_t)rnd_range(&w->rng, 2, 8); break;    /* shrink */
    case 3: n = old > 1 ? (size_t)rnd_range(&w->rng, 1, old) : 1; break;
    default: n = pick_size(w); break;                                  /* anything */
    }
    if (n == 0) n = 1;          /* realloc(p, 0) is implementation-defined: avoid */
    if (n > MAX_BLOCK) n = MAX_BLOCK;
    return n;
}

static void op_realloc(worker_t *w, blk_t *b)
{
    blk_t old = *b;
    size_t n = pick_realloc_size(w, old.req), keep;
    uint64_t e, g;
    unsigned char *q;
    uintptr_t old_addr = (uintptr_t)old.p;  /* only a number after realloc */

    blk_verify(w, &old, "before realloc");
    NOTE_OP("realloc", old.p, n);
    q = realloc(old.p, n);
    if (!q && ENOMEM_OK(w, errno)) {
        /* a failed realloc must leave the old block exactly as it was */
        blk_verify(w, b, "after failed realloc");
        return;
    }
    old.p = NULL;
    if (!q)
        die("thread %u: realloc(0x%" PRIxPTR ", %zu) returned NULL (errno %d); old block %s size %zu",
            w->gid, old_addr, n, errno, kind_name[old.kind], old.req);
    check_natural_alignment(w, (uintptr_t)q, n, "realloc");
    /* The first min(old requested, new) bytes keep the OLD pattern: the one
     * computed for the old address, old fill and old salt. */
    keep = old.req < n ? old.req : n;
    if (old_addr && keep) {
        size_t off;
        NOTE_OP("realloc prefix check (harness)", q, keep);
        off = pat_check(q, keep, pat_base(old_addr, old.fill, old.salt), &e, &g);
        if (off != SIZE_MAX)
            die("thread %u: realloc(0x%" PRIxPTR ", %zu) -> %p (%s, old requested %zu, filled %zu, "
                "allocated by thread %u) lost data at offset %zu (address %p): "
                "expected 0x%016" PRIx64 " got 0x%016" PRIx64,
                w->gid, old_addr, n, (void *)q, kind_name[old.kind], old.req, old.fill,
                old.owner, off, (void *)(q + off), e, g);
        w->c.bytes_verified += keep;
    }
    if (old.owner != w->gid)
        w->c.free_remote++;        /* a realloc frees (or resizes) a remote block */
    if (n > old.req) w->c.realloc_grow++; else w->c.realloc_shrink++;
    w->c.realloc++;
    memset(b, 0, sizeof *b);
    b->p = q;
    b->req = n;
    b->kind = K_REALLOC;
    blk_finish(w, b);
}

/* Post a block to another worker's mailbox; falls back to a local free. */
static void op_send(worker_t *w, blk_t *b)
{
    unsigned to = (unsigned)rnd_below(&w->rng, opt.threads - 1);
    mailbox_t *mb;
    if (to >= w->id) to++;
    mb = &mailboxes[to];
    pthread_mutex_lock(&mb->mu);
    if (mb->n < MAILBOX_CAP) {
        mb->items[mb->n++] = *b;
        pthread_mutex_unlock(&mb->mu);
        memset(b, 0, sizeof *b);
        w->c.sent++;
        return;
    }
    pthread_mutex_unlock(&mb->mu);
    w->c.mailbox_full++;
    op_free(w, b);
}

/* Take everything posted to us.  adopt: may keep blocks in our slots. */
static void drain_inbox(worker_t *w, int adopt)
{
    mailbox_t *mb = &mailboxes[w->id];
    size_t n, i;
    pthread_mutex_lock(&mb->mu);
    n = mb->n;
    memcpy(w->inbox, mb->items, n * sizeof(blk_t));
    mb->n = 0;
    pthread_mutex_unlock(&mb->mu);
    for (i = 0; i < n; i++) {
        blk_t *b = &w->inbox[i];
        if (adopt && rnd_below(&w->rng, 2) == 0) {
            blk_t *s = &w->slots[rnd_below(&w->rng, w->nslots)];
            if (!s->live) {
                blk_verify(w, b, "on adoption from mailbox");
                *s = *b;
                w->c.adopted++;
                continue;
            }
        }
        op_free(w, b);
    }
}

static void carry_take(worker_t *w)
{
    size_t want = w->nslots / 4, got = 0;
    pthread_mutex_lock(&carry_mu);
    while (got < want && carry_n > 0) {
        blk_t *s = &w->slots[rnd_below(&w->rng, w->nslots)];
        if (s->live) { got++; continue; }     /* bounded: counts as a try */
        *s = carry[--carry_n];
        pthread_mutex_unlock(&carry_mu);
        blk_verify(w, s, "on adoption from an exited thread");
        w->c.adopted++;
        got++;
        pthread_mutex_lock(&carry_mu);
    }
    pthread_mutex_unlock(&carry_mu);
}

static void carry_put_or_free(worker_t *w, blk_t *b, int last_gen)
{
    if (!last_gen && rnd_below(&w->rng, 2) == 0) {
        pthread_mutex_lock(&carry_mu);
        if (carry_n < CARRY_CAP) {
            carry[carry_n++] = *b;
            pthread_mutex_unlock(&carry_mu);
            memset(b, 0, sizeof *b);
            w->c.carried++;
            return;
        }
        pthread_mutex_unlock(&carry_mu);
    }
    op_free(w, b);
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    int last_gen = w->gen + 1 == opt.gens;
    uint64_t i;

    carry_take(w);
    cur.gid = w->gid;
    for (i = 0; i < w->iters; i++) {
        blk_t *b;
        uint64_t r;
        cur.iter = i;
        if ((i & 31) == 0)
            drain_inbox(w, 1);
        b = &w->slots[rnd_below(&w->rng, w->nslots)];
        if (!b->live) {
            op_alloc(w, b);
            continue;
        }
        r = rnd_below(&w->rng, 100);
        if (r < 15)
            op_realloc(w, b);
        else if (r < 20)
            blk_verify(w, b, "while live");
        else if (opt.threads > 1 && r < 60)
            op_send(w, b);
        else
            op_free(w, b);
        if ((i & 1023) == 0)
            free(NULL);
    }
    /* Nobody sends after the barrier, so one more drain empties our box. */
    pthread_barrier_wait(&gen_barrier);
    drain_inbox(w, 0);
    for (size_t s = 0; s < w->nslots; s++)
        if (w->slots[s].live)
            carry_put_or_free(w, &w->slots[s], last_gen);
    return NULL;
}

/* ---- edge cases, once, on the main thread ---------------------------------------- */
static void edge_cases(void)
{
    worker_t w0;
    volatile size_t huge = SIZE_MAX, half = SIZE_MAX / 2 + 1;
    void *p, *q;
    int rc;

    memset(&w0, 0, sizeof w0);
    w0.rng = opt.seed;
    free(NULL);
    if (usable_size(NULL) != 0)
        die("edge: malloc_usable_size(NULL) = %zu, expected 0", (size_t)usable_size(NULL));
    errno = 0;
    if ((p = malloc(huge)) != NULL)
        die("edge: malloc(SIZE_MAX) returned %p", p);
    errno_expect(errno, ENOMEM, "malloc(SIZE_MAX)");
    errno = 0;
    if ((p = calloc(half, 2)) != NULL)
        die("edge: calloc(SIZE_MAX/2+1, 2) (overflow) returned %p", p);
    errno_expect(errno, ENOMEM, "calloc(SIZE_MAX/2+1, 2) (overflow)");
    /* A failed realloc leaves the block alone. */
    {
        blk_t b;
        memset(&b, 0, sizeof b);
        b.p = malloc(100);
        b.req = 100;
        if (!b.p) die("edge: malloc(100) returned NULL");
        blk_finish(&w0, &b);
        errno = 0;
        if ((q = realloc(b.p, huge - 4096)) != NULL)
            die("edge: realloc(p, SIZE_MAX-4096) returned %p", q);
        errno_expect(errno, ENOMEM, "realloc(p, SIZE_MAX-4096)");
        blk_verify(&w0, &b, "after a failed realloc");
        free(b.p);
    }
    q = (void *)&w0;
    if ((rc = posix_memalign(&q, 24, 8)) != EINVAL)
        die("edge: posix_memalign(align 24) returned %d, expected EINVAL", rc);
    if ((rc = posix_memalign(&q, sizeof(void *) / 2, 8)) != EINVAL)
        die("edge: posix_memalign(align %zu) returned %d, expected EINVAL", sizeof(void *) / 2, rc);
    if (q != (void *)&w0)
        die("edge: failed posix_memalign changed *memptr to %p", q);
    /* Large alignments, beyond what the workers use. */
    for (size_t a = (size_t)64 << 10; a <= ((size_t)4 << 20); a <<= 1) {
        blk_t b;
        memset(&b, 0, sizeof b);
        if ((rc = posix_memalign((void **)&b.p, a, 100)) != 0 || !b.p)
            die("edge: posix_memalign(align %zu, 100) failed: %d", a, rc);
        if ((uintptr_t)b.p % a)
            die("edge: posix_memalign(align %zu) returned %p", a, (void *)b.p);
        b.req = 100;
        b.kind = K_MEMALIGN;
        blk_finish(&w0, &b);
        blk_verify(&w0, &b, "edge aligned");
        free(b.p);
    }
    /* Every small size once: usable size and the whole usable area. */
    for (size_t n = 0; n <= 4096; n++) {
        blk_t b;
        memset(&b, 0, sizeof b);
        b.req = n;
        b.p = malloc(n);
        if (!b.p && n)
            die("edge: malloc(%zu) returned NULL", n);
        if (b.p) {
            size_t u = usable_size(b.p);
            if (u < n) die("edge: malloc_usable_size(malloc(%zu)) = %zu", n, u);
            b.fill = u;
            b.salt = n;
            blk_fill(&b);
            blk_verify(&w0, &b, "edge usable");
        }
        free(b.p);
    }
}

/* ---- main ---------------------------------------------------------------------- */
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void usage(void)
{
    fprintf(stderr,
        "usage: stress [threads] [scale] [iterations] [--short] [--seed=N] [--gens=N]\n"
        "              [--no-edge] [--strict-errno] [--avoid-peer-bugs]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    unsigned npos = 0;
    double t0, t1;
    counters_t tot;
    worker_t *ws;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        char *end;
        if (!strcmp(a, "--short")) opt.is_short = 1;
        else if (!strncmp(a, "--seed=", 7)) opt.seed = strtoull(a + 7, NULL, 0);
        else if (!strncmp(a, "--gens=", 7)) opt.gens = (unsigned)strtoul(a + 7, NULL, 0);
        else if (!strcmp(a, "--no-edge")) opt.edge = 0;
        else if (!strcmp(a, "--strict-errno")) opt.strict_errno = 1;
        else if (!strcmp(a, "--avoid-peer-bugs")) opt.avoid_peer_bugs = 1;
        else if (!strcmp(a, "--allow-enomem")) opt.allow_enomem = 1;
        else if (a[0] == '-') usage();
        else {
            unsigned long long v = strtoull(a, &end, 0);
            if (*end || v == 0) usage();
            if (npos == 0) opt.threads = (unsigned)v;
            else if (npos == 1) opt.scale = (unsigned)v;
            else if (npos == 2) opt.iters = v;
            else usage();
            npos++;
        }
    }
    if (opt.threads > MAX_THREADS) opt.threads = MAX_THREADS;
    if (!opt.iters) opt.iters = opt.is_short ? 120000 : 1000000;
    if (!opt.gens) opt.gens = opt.is_short ? 2 : 4;

    signal(SIGSEGV, on_crash);
    signal(SIGBUS, on_crash);
    signal(SIGABRT, on_crash);
    signal(SIGILL, on_crash);
    signal(SIGFPE, on_crash);
    cur.gid = 0xffff;
    t0 = now();
    if (opt.edge)
        edge_cases();

    mailboxes = calloc(opt.threads, sizeof *mailboxes);
    carry = calloc(CARRY_CAP, sizeof *carry);
    ws = calloc(opt.threads, sizeof *ws);
    if (!mailboxes || !carry || !ws)
        die("main: out of memory for the harness");
    for (unsigned t = 0; t < opt.threads; t++)
        pthread_mutex_init(&mailboxes[t].mu, NULL);

    /* The main thread allocates some blocks that workers of the first
     * generation adopt and free. */
    {
        worker_t m;
        memset(&m, 0, sizeof m);
        m.gid = 0xffff;
        m.rng = mix64(opt.seed ^ 0xabcdef);
        for (size_t i = 0; i < 512 && carry_n < CARRY_CAP; i++) {
            op_alloc(&m, &carry[carry_n]);
            carry[carry_n].owner = 0xffff;
            carry_n++;
        }
    }

    memset(&tot, 0, sizeof tot);
    for (unsigned g = 0; g < opt.gens; g++) {
        pthread_barrier_init(&gen_barrier, NULL, opt.threads);
        for (unsigned t = 0; t < opt.threads; t++) {
            worker_t *w = &ws[t];
            memset(&w->c, 0, sizeof w->c);
            w->id = t;
            w->gen = g;
            w->gid = g * opt.threads + t;
            w->rng = mix64(opt.seed ^ mix64(((uint64_t)g << 32) | t));
            w->iters = opt.iters / opt.gens;
            w->nslots = (size_t)SLOTS_PER_SCALE * opt.scale;
            w->slots = calloc(w->nslots, sizeof(blk_t));
            w->inbox = calloc(MAILBOX_CAP, sizeof(blk_t));
            if (!w->slots || !w->inbox)
                die("main: out of memory for the harness");
            if (pthread_create(&w->th, NULL, worker_main, w) != 0)
                die("main: pthread_create failed");
        }
        for (unsigned t = 0; t < opt.threads; t++) {
            worker_t *w = &ws[t];
            pthread_join(w->th, NULL);
#define X(n) tot.n += w->c.n;
            STRESS_COUNTERS(X)
#undef X
            free(w->slots);
            free(w->inbox);
        }
        pthread_barrier_destroy(&gen_barrier);
    }

    /* The last generation frees all its own blocks; what remains in the
     * hand-over pool (blocks of exited threads nobody adopted) is freed here
     * by the main thread. */
    {
        worker_t m;
        memset(&m, 0, sizeof m);
        m.gid = 0xfffe;
        for (size_t i = 0; i < carry_n; i++)
            op_free(&m, &carry[i]);
        carry_n = 0;
#define X(n) tot.n += m.c.n;
        STRESS_COUNTERS(X)
#undef X
    }
    for (unsigned t = 0; t < opt.threads; t++) {
        if (mailboxes[t].n)
            die("main: mailbox %u still holds %zu blocks", t, mailboxes[t].n);
        pthread_mutex_destroy(&mailboxes[t].mu);
    }
    free(mailboxes);
    free(carry);
    free(ws);
    t1 = now();

    printf("stress: OK threads=%u scale=%u iters=%" PRIu64 " gens=%u seed=%" PRIu64 " secs=%.2f",
           opt.threads, opt.scale, opt.iters, opt.gens, opt.seed, t1 - t0);
#define X(n) printf(" " #n "=%" PRIu64, tot.n);
    STRESS_COUNTERS(X)
#undef X
    printf("\n");
    return 0;
}
