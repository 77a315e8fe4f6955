/* churn: a deterministic allocation churn for external fault injection.
 *
 * Standard names only (malloc, calloc, realloc, free), never linked with
 * vamalloc: it gets an allocator through LD_PRELOAD, so the same binary runs
 * under glibc and every peer.  Each round, on each thread:
 *   1. small phase: many small blocks (16..2048 bytes, several MiB in all),
 *      verified and freed in a scrambled order, so whole chunks become empty
 *      and an allocator that gives memory back calls madvise (or munmap);
 *   2. large phase: blocks of 256 KiB..2 MiB, some from calloc (must read as
 *      zeroes even when the memory is reused after a failed decommit), some
 *      grown or shrunk with realloc (the prefix must survive);
 *   3. huge phase: blocks of 2..10 MiB (own mappings in most allocators, so
 *      mmap and munmap on every round), again partly calloc'd and realloc'd.
 * Every byte is checked before it is freed.  The pattern depends on the
 * thread, round and block index only (never on addresses), so stdout is the
 * same under every correct allocator and can be compared with a clean run.
 *
 * Usage: churn [--rounds=N] [--threads=N] [--scale=N] [--wait-ms=N]
 *   --rounds   rounds per thread (default 8)
 *   --threads  worker threads, each doing the same work with its own seed
 *              (default 1: the main thread works itself)
 *   --scale    multiplies the amount of small and large memory (default 1)
 *   --wait-ms  sleep this long before the first allocation, so a tracer can
 *              attach (strace -f -p PID) and count from the first call
 * The first thing main does is prctl(PR_SET_NAME, "churn-main"): a marker
 * in a strace log between start-up and the workload.
 *
 * Exit status and messages (one line on stderr):
 *   0  "churn: OK ..." on stdout
 *   1  "churn: CORRUPT: ..."     data differs from what was written
 *   3  "churn: out of memory: ..." an allocation returned NULL (a clean
 *      failure; errno is printed too)
 *   2  usage error
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/prctl.h>
#endif

#define MAX_THREADS 64
#define SMALL_BLOCKS 24000   /* x scale; average ~1 KiB: ~24 MiB per round */
#define LARGE_BLOCKS 24      /* x scale */
#define HUGE_BLOCKS 4
#define PAT_K UINT64_C(0x9E3779B97F4A7C15)

static unsigned opt_rounds = 8, opt_threads = 1, opt_scale = 1, opt_wait_ms = 0;

static void fail(int status, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));

static void fail(int status, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if ((size_t)n > sizeof buf - 2) n = (int)sizeof buf - 2;
    buf[n++] = '\n';
    /* write(2) and _exit: the heap may be in any state. */
    if (write(2, buf, (size_t)n) < 0) { /* nothing to do */ }
    _exit(status);
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 30; x *= UINT64_C(0xbf58476d1ce4e5b9);
    x ^= x >> 27; x *= UINT64_C(0x94d049bb133111eb);
    x ^= x >> 31;
    return x;
}

static uint64_t rnd(uint64_t *s) { *s += PAT_K; return mix(*s); }

/* Byte j of a block with key k: byte j%8 of word mix(k) ^ ((j/8+1)*K). */
static void fill(unsigned char *p, size_t n, uint64_t key)
{
    uint64_t base = mix(key);
    size_t w = n / 8, j;
    for (j = 0; j < w; j++) {
        uint64_t v = base ^ ((j + 1) * PAT_K);
        memcpy(p + j * 8, &v, 8);
    }
    if (n % 8) {
        uint64_t v = base ^ ((w + 1) * PAT_K);
        memcpy(p + w * 8, &v, n % 8);
    }
}

/* Checks n bytes against the pattern of key; returns a checksum of them. */
static uint64_t check(const unsigned char *p, size_t n, uint64_t key, const char *what,
                      unsigned tid, unsigned round)
{
    uint64_t base = mix(key), sum = 0;
    size_t w = n / 8, j;
    for (j = 0; j <= w; j++) {
        size_t len = j < w ? 8 : n % 8;
        if (!len) break;
        uint64_t v = base ^ ((j + 1) * PAT_K), got = 0;
        memcpy(&got, p + j * 8, len);
        if (len < 8) v &= (UINT64_C(1) << (len * 8)) - 1;
        if (got != v)
            fail(1, "churn: CORRUPT: thread %u round %u %s block %p size %zu: bytes at offset %zu "
                 "are %016" PRIx64 ", expected %016" PRIx64, tid, round, what, (void *)p, n,
                 j * 8, got, v);
        sum = mix(sum ^ v);
    }
    return sum;
}

static void check_zero(const unsigned char *p, size_t n, const char *what, unsigned tid,
                       unsigned round)
{
    /* Every 64th byte plus the last: a stale page is caught without
     * reading the whole block twice. */
    for (size_t j = 0; j < n; j += 64)
        if (p[j])
            fail(1, "churn: CORRUPT: thread %u round %u calloc'd %s block %p size %zu: byte at "
                 "offset %zu is %#x, not zero", tid, round, what, (void *)p, n, j, p[j]);
    if (n && p[n - 1])
        fail(1, "churn: CORRUPT: thread %u round %u calloc'd %s block %p size %zu: last byte "
             "is %#x, not zero", tid, round, what, (void *)p, n, p[n - 1]);
}

static void *alloc_or_die(size_t n, int zero, const char *what, unsigned tid, unsigned round)
{
    errno = 0;
    void *p = zero ? calloc(1, n) : malloc(n);
    if (!p) {
        int e = errno;
        fail(3, "churn: out of memory: thread %u round %u: %s(%zu) for a %s block returned NULL "
             "(errno %d, %s)", tid, round, zero ? "calloc" : "malloc", n, what, e, strerror(e));
    }
    return p;
}

static void *realloc_or_die(void *old, size_t n, const char *what, unsigned tid, unsigned round)
{
    errno = 0;
    void *p = realloc(old, n);
    if (!p) {
        int e = errno;
        fail(3, "churn: out of memory: thread %u round %u: realloc(%p, %zu) for a %s block "
             "returned NULL (errno %d, %s)", tid, round, old, n, what, e, strerror(e));
    }
    return p;
}

typedef struct {
    unsigned char *p;
    size_t n;
    uint64_t key;
} blk_t;

typedef struct {
    unsigned id;
    uint64_t sum;
    uint64_t bytes;
    pthread_t th;
} worker_t;

/* Allocate, fill (calloc'd ones checked for zeroes first), maybe realloc,
 * then verify and free the blocks of one phase. */
static void phase(worker_t *w, unsigned round, uint64_t *rng, const char *what, size_t count,
                  size_t min, size_t max, unsigned zero_every, unsigned realloc_every)
{
    blk_t *b = calloc(count, sizeof *b);
    if (!b) fail(3, "churn: out of memory: thread %u: calloc of the %s table returned NULL",
                 w->id, what);
    for (size_t i = 0; i < count; i++) {
        size_t n = min + (size_t)(rnd(rng) % (max - min + 1));
        int zero = zero_every && i % zero_every == 0;
        b[i].p = alloc_or_die(n, zero, what, w->id, round);
        if (zero) check_zero(b[i].p, n, what, w->id, round);
        b[i].n = n;
        b[i].key = ((uint64_t)w->id << 48) ^ ((uint64_t)round << 32) ^ (i << 1) ^ rnd(rng);
        fill(b[i].p, n, b[i].key);
    }
    if (realloc_every) {
        for (size_t i = 0; i < count; i += realloc_every) {
            /* Grow or shrink by up to 2x; the common prefix must survive. */
            size_t n = b[i].n, m = rnd(rng) & 1 ? n + n / 2 + 1 : n / 2 + 1;
            size_t keep = n < m ? n : m;
            b[i].p = realloc_or_die(b[i].p, m, what, w->id, round);
            w->sum = mix(w->sum ^ check(b[i].p, keep, b[i].key, what, w->id, round));
            b[i].n = m;
            b[i].key ^= UINT64_C(0x5555);
            fill(b[i].p, m, b[i].key);
        }
    }
    /* Free in a scrambled order (a stride coprime with count). */
    size_t stride = count > 7 && count % 7 ? 7 : 1;
    for (size_t k = 0, i = 0; k < count; k++, i = (i + stride) % count) {
        w->sum = mix(w->sum ^ check(b[i].p, b[i].n, b[i].key, what, w->id, round));
        w->bytes += b[i].n;
        free(b[i].p);
    }
    free(b);
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    uint64_t rng = 0xC0FFEE ^ ((uint64_t)w->id << 40);
    for (unsigned r = 0; r < opt_rounds; r++) {
        phase(w, r, &rng, "small", (size_t)SMALL_BLOCKS * opt_scale, 16, 2048, 5, 97);
        phase(w, r, &rng, "large", (size_t)LARGE_BLOCKS * opt_scale, 256 << 10, 2 << 20, 3, 4);
        phase(w, r, &rng, "huge", HUGE_BLOCKS, (2 << 20) + 1, 10 << 20, 2, 2);
    }
    return NULL;
}

static unsigned parse(const char *arg, const char *name, unsigned lo, unsigned hi)
{
    char *end;
    unsigned long v = strtoul(arg + strlen(name), &end, 10);
    if (*end || v < lo || v > hi) {
        fprintf(stderr, "churn: %s wants a number in %u..%u, got '%s'\n", name, lo, hi, arg);
        exit(2);
    }
    return (unsigned)v;
}

int main(int argc, char **argv)
{
#if defined(__linux__)
    /* Also a marker for the fault harness: the first syscall of main, so a
     * tracer can tell start-up (loader, allocator init) from the workload. */
    prctl(PR_SET_NAME, "churn-main", 0, 0, 0);
#endif
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strncmp(a, "--rounds=", 9)) opt_rounds = parse(a, "--rounds=", 1, 100000);
        else if (!strncmp(a, "--threads=", 10)) opt_threads = parse(a, "--threads=", 1, MAX_THREADS);
        else if (!strncmp(a, "--scale=", 8)) opt_scale = parse(a, "--scale=", 1, 64);
        else if (!strncmp(a, "--wait-ms=", 10)) opt_wait_ms = parse(a, "--wait-ms=", 0, 60000);
        else {
            fprintf(stderr, "usage: churn [--rounds=N] [--threads=N] [--scale=N] [--wait-ms=N]\n");
            return 2;
        }
    }
    if (opt_wait_ms) {
        struct timespec ts = { opt_wait_ms / 1000, (long)(opt_wait_ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) { }
    }
    worker_t w[MAX_THREADS];
    memset(w, 0, sizeof w);
    if (opt_threads == 1) {
        worker_main(&w[0]);
    } else {
        for (unsigned t = 0; t < opt_threads; t++) {
            w[t].id = t;
            int rc = pthread_create(&w[t].th, NULL, worker_main, &w[t]);
            if (rc != 0)
                fail(3, "churn: out of memory: pthread_create failed (%d, %s)", rc, strerror(rc));
        }
        for (unsigned t = 0; t < opt_threads; t++) pthread_join(w[t].th, NULL);
    }
    uint64_t sum = 0, bytes = 0;
    for (unsigned t = 0; t < opt_threads; t++) {
        sum = mix(sum ^ w[t].sum);
        bytes += w[t].bytes;
    }
    printf("churn: OK rounds=%u threads=%u scale=%u bytes=%" PRIu64 " checksum=%016" PRIx64 "\n",
           opt_rounds, opt_threads, opt_scale, bytes, sum);
    return 0;
}
