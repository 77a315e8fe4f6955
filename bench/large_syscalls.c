/* large_syscalls: the workloads behind bench/large_figures.py.
 *
 * Standard names only, never linked with vamalloc: an allocator comes in
 * with LD_PRELOAD.  The programs do not count system calls themselves;
 * large_figures.py runs them under `perf stat -e syscalls:sys_exit_*` (or
 * strace -c) twice, with N and 2N operations after the same warm-up, so
 * start-up and exit cancel in the difference.
 *
 *   large_syscalls churn SET WARMUP N
 *       A working set of slots; each operation checks and frees a random
 *       slot's block and mallocs a new one, touching every page.  SET:
 *         huge   20 slots, 5..25 MiB uniform (malloc_large's mix)
 *         mixed  64 slots, 256 KiB..32 MiB log-uniform
 *         span   64 slots, 256 KiB..2 MiB log-uniform (the span pool)
 *   large_syscalls purge ROUNDS MIB GAP_MS [collect]
 *       ROUNDS times: malloc blocks of 512 KiB..16 MiB (log-uniform) until
 *       MIB MiB are live, touch every page, free them in shuffled order,
 *       sleep GAP_MS (longer than the purge delay), then malloc+free 1 MiB
 *       (an allocator slow path, where a lazy purge runs).  With `collect`,
 *       vam_collect(false) is called after the sleep when the preloaded
 *       allocator has it (looked up with dlsym; absent under the peers).
 *   large_syscalls rss MIB SLEEP_MS
 *       Warm-up: the same cycle with MIB/16 MiB, sleep SLEEP_MS, slow path.
 *       VmRSS (and RssAnon) before; malloc MIB MiB in blocks of 512 KiB..16 MiB, touch
 *       every page (peak); free them all in shuffled order; sleep SLEEP_MS;
 *       malloc+free 1 MiB (slow path); VmRSS again.  Prints one line:
 *       `RSS before_kib=.. peak_kib=.. freed_kib=.. after_kib=..`.
 *
 * Every block carries a pattern on every page and at both ends, checked
 * before free; a mismatch exits 1 with the address and the bytes.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define KIB ((size_t)1 << 10)
#define MIB ((size_t)1 << 20)
#define PAGE 4096u
#define ENDS 16u

static uint64_t rng = 0x243F6A8885A308D3ULL;

static inline uint64_t rng_next(void)
{
    uint64_t x = rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static size_t size_uniform(size_t min, size_t max)
{
    return min + (size_t)(rng_next() % (max - min + 1));
}

static size_t size_log(size_t min, size_t max)
{
    uint64_t r = rng_next();
    unsigned lo = 63 - (unsigned)__builtin_clzll(min);
    unsigned hi = 63 - (unsigned)__builtin_clzll(max);
    unsigned oct = lo + (unsigned)((r >> 32) % (hi - lo));
    size_t base = (size_t)1 << oct;
    size_t n = base + (size_t)((r & 0xffffffffu) % base);
    return n < min ? min : n > max ? max : n;
}

static inline uint8_t tag_of(uint64_t seq, size_t i)
{
    return (uint8_t)(seq * 0x9Du + i * 7u + 1u);
}

static void touch(unsigned char *p, size_t n, uint64_t seq)
{
    for (size_t off = 0; off < n; off += PAGE)
        p[off] = tag_of(seq, off / PAGE);
    for (unsigned i = 0; i < ENDS; i++) {
        p[i] = tag_of(seq, 1000003u + i);
        p[n - 1 - i] = (uint8_t)~tag_of(seq, i);
    }
}

static void check(const unsigned char *p, size_t n, uint64_t seq)
{
    for (unsigned i = 0; i < ENDS; i++) {
        uint8_t head = tag_of(seq, 1000003u + i), tail = (uint8_t)~tag_of(seq, i);
        if (p[i] != head || p[n - 1 - i] != tail)
            bench_fail("block #%llu at %p (%zu bytes): end byte %u is 0x%02x/0x%02x, "
                       "expected 0x%02x/0x%02x", (unsigned long long)seq, (const void *)p, n, i,
                       p[i], p[n - 1 - i], head, tail);
    }
    for (size_t off = PAGE; off + ENDS < n; off += PAGE)
        if (p[off] != tag_of(seq, off / PAGE))
            bench_fail("block #%llu at %p (%zu bytes): byte at %zu is 0x%02x, expected 0x%02x",
                       (unsigned long long)seq, (const void *)p, n, off, p[off],
                       tag_of(seq, off / PAGE));
}

static unsigned char *alloc_touch(size_t n, uint64_t seq)
{
    unsigned char *p = malloc(n);
    if (!p)
        bench_fail("malloc(%zu) returned NULL", n);
    touch(p, n, seq);
    return p;
}

/* A field of /proc/self/status, in KiB (read with plain syscalls). */
static long status_kib(const char *key)
{
    char buf[4096];
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    ssize_t n;
    char *s;
    if (fd < 0)
        return -1;
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    s = strstr(buf, key);
    return s ? strtol(s + strlen(key), NULL, 10) : -1;
}

static long vmrss_kib(void) { return status_kib("VmRSS:"); }
static long rssanon_kib(void) { return status_kib("RssAnon:"); }

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* One small trip through the allocator's slow path: a 1 MiB block. */
static void slow_path_poke(void)
{
    unsigned char *p = malloc(MIB);
    if (!p)
        bench_fail("malloc(1 MiB) returned NULL");
    p[0] = 1;
    __asm__ volatile("" : : "r"(p) : "memory");
    free(p);
}

/* ---- churn ------------------------------------------------------------------- */

static int do_churn(const char *set, long warm, long n)
{
    unsigned slots;
    size_t min, max;
    int logu;
    if (!strcmp(set, "huge")) slots = 20, min = 5 * MIB, max = 25 * MIB, logu = 0;
    else if (!strcmp(set, "mixed")) slots = 64, min = 256 * KIB, max = 32 * MIB, logu = 1;
    else if (!strcmp(set, "span")) slots = 64, min = 256 * KIB, max = 2 * MIB, logu = 1;
    else {
        fprintf(stderr, "churn: unknown set %s (huge, mixed, span)\n", set);
        return 2;
    }
    unsigned char *p[64];
    size_t sz[64];
    uint64_t seq[64];
    uint64_t i = 0;
    for (unsigned s = 0; s < slots; s++, i++) {
        sz[s] = logu ? size_log(min, max) : size_uniform(min, max);
        seq[s] = i;
        p[s] = alloc_touch(sz[s], i);
    }
    for (long k = 0; k < warm + n; k++, i++) {
        unsigned s = (unsigned)(rng_next() % slots);
        check(p[s], sz[s], seq[s]);
        free(p[s]);
        sz[s] = logu ? size_log(min, max) : size_uniform(min, max);
        seq[s] = i;
        p[s] = alloc_touch(sz[s], i);
    }
    for (unsigned s = 0; s < slots; s++) {
        check(p[s], sz[s], seq[s]);
        free(p[s]);
    }
    printf("CHURN set=%s warmup=%ld ops=%ld\n", set, warm, n);
    return 0;
}

/* ---- batches: allocate MIB, free all ---------------------------------------- */

typedef struct {
    unsigned char **p;
    size_t *n;
    size_t count, cap;
} batch_t;

static uint64_t batch_seq;

static size_t batch_fill(batch_t *b, size_t total)
{
    size_t live = 0;
    b->count = 0;
    while (live < total) {
        size_t n = size_log(512 * KIB, 16 * MIB);
        if (b->count == b->cap) {
            size_t cap = b->cap ? 2 * b->cap : 256;
            unsigned char **np = realloc(b->p, cap * sizeof *np);
            size_t *nn = np ? realloc(b->n, cap * sizeof *nn) : NULL;
            if (!np || !nn)
                bench_fail("no memory for the block table");
            b->p = np;
            b->n = nn;
            b->cap = cap;
        }
        b->n[b->count] = n;
        b->p[b->count] = alloc_touch(n, batch_seq + b->count);
        b->count++;
        live += n;
    }
    return live;
}

static void batch_free(batch_t *b)
{
    /* shuffled order (Fisher-Yates over the table, seq kept by index) */
    size_t *order = malloc(b->count * sizeof *order);
    if (!order)
        bench_fail("no memory for the free order");
    for (size_t i = 0; i < b->count; i++)
        order[i] = i;
    for (size_t i = b->count; i > 1; i--) {
        size_t j = (size_t)(rng_next() % i), t = order[i - 1];
        order[i - 1] = order[j];
        order[j] = t;
    }
    for (size_t k = 0; k < b->count; k++) {
        size_t i = order[k];
        check(b->p[i], b->n[i], batch_seq + i);
        free(b->p[i]);
    }
    free(order);
    batch_seq += b->count;
    b->count = 0;
}

static int do_purge(long rounds, long mib, long gap_ms, bool collect)
{
    void (*vam_collect)(bool) = NULL;
    batch_t b = { 0 };
    uint64_t freed = 0;
    if (collect)
        *(void **)&vam_collect = dlsym(RTLD_DEFAULT, "vam_collect");
    for (long r = 0; r < rounds; r++) {
        freed += batch_fill(&b, (size_t)mib * MIB);
        batch_free(&b);
        sleep_ms(gap_ms);
        slow_path_poke();
        if (vam_collect)
            vam_collect(false);
    }
    free(b.p);
    free(b.n);
    printf("PURGE rounds=%ld freed_bytes=%llu collect=%s\n", rounds, (unsigned long long)freed,
           vam_collect ? "vam_collect" : "none");
    return 0;
}

static int do_rss(long mib, long sleep)
{
    batch_t b = { 0 };
    long before, peak, freed, after, anon_before, anon_after;
    /* Warm-up: one smaller cycle of the same kind, so "before" is a
     * process that has run the allocator's paths once (its code pages are
     * in) and has let it purge, like a long-running one; the same for every
     * allocator. */
    batch_fill(&b, (size_t)(mib / 16 + 1) * MIB);
    batch_free(&b);
    sleep_ms(sleep);
    slow_path_poke();
    before = vmrss_kib();
    anon_before = rssanon_kib();
    batch_fill(&b, (size_t)mib * MIB);
    peak = vmrss_kib();
    batch_free(&b);
    freed = vmrss_kib();
    sleep_ms(sleep);
    slow_path_poke();
    after = vmrss_kib();
    anon_after = rssanon_kib();
    free(b.p);
    free(b.n);
    printf("RSS before_kib=%ld peak_kib=%ld freed_kib=%ld after_kib=%ld sleep_ms=%ld "
           "anon_before_kib=%ld anon_after_kib=%ld\n", before, peak, freed, after, sleep,
           anon_before, anon_after);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 5 && !strcmp(argv[1], "churn"))
        return do_churn(argv[2], atol(argv[3]), atol(argv[4]));
    if (argc >= 5 && !strcmp(argv[1], "purge"))
        return do_purge(atol(argv[2]), atol(argv[3]), atol(argv[4]),
                        argc >= 6 && !strcmp(argv[5], "collect"));
    if (argc >= 4 && !strcmp(argv[1], "rss"))
        return do_rss(atol(argv[2]), atol(argv[3]));
    fprintf(stderr, "usage: %s churn huge|mixed|span WARMUP N\n"
                    "       %s purge ROUNDS MIB GAP_MS [collect]\n"
                    "       %s rss MIB SLEEP_MS\n", argv[0], argv[0], argv[0]);
    return 2;
}
