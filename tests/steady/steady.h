/* steady suite: shared helpers (header only).
 *
 * The programs use the standard names and run with libvamalloc.so
 * preloaded.  They take two snapshots of the process -- one after a warm-up,
 * one at the end -- at points where the program holds the same live data
 * (all threads joined, all churn blocks freed), and fail when the end
 * exceeds the warm-up snapshot:
 *
 *   VmSize  (/proc/self/status)           by 1% or more
 *   VmRSS   (/proc/self/status)           by 1% or more (and by 256 KiB or
 *                                         more: 1% of a 3 MiB RSS is a few
 *                                         pages of noise)
 *   vamalloc's mapping count              by more than 2
 *     (`mappings` in its JSON statistics, read through dlsym("vam_stats_print"))
 *   lines in /proc/self/maps              by more than 4
 *
 * Before each snapshot, vam_collect(true) is called when the preloaded
 * library has it (found with dlsym): it gives back everything free,
 * including the cache of freed huge mappings, so the snapshot measures
 * what vamalloc keeps, not where its purge clock stands.  Memory that is
 * lost (a chunk or mapping that is never reused or released) still shows:
 * leaking one 4 MiB chunk per cycle grows VmSize by 4 MiB per cycle and the
 * mapping count with it.
 *
 * Options common to the programs: --require-vamalloc fails the run when
 * vam_stats_print cannot be found (meson passes it: a test that silently
 * measured glibc would prove nothing); --every=N prints a snapshot every N
 * cycles too (diagnosis only: it calls vam_collect more often, which
 * changes what is measured); --quiet prints no snapshot lines;
 * --inject-leak=BYTES loses BYTES (malloc, never freed, untouched) once per
 * cycle -- the suite's self-check runs each program so and expects it to
 * FAIL, which proves the measurement points can see a leak.
 */
#ifndef VAM_TESTS_STEADY_H
#define VAM_TESTS_STEADY_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define PAGE 4096u

/* ---- failing --------------------------------------------------------------- */

static inline void steady_die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static inline void steady_die(const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fputs("FAIL: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static inline double steady_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- PRNG and patterns --------------------------------------------------------- */

static inline uint64_t steady_rng(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static inline uint8_t steady_tag(uint64_t seed, size_t i)
{
    return (uint8_t)(seed * 0x9Du + i * 7u + (i >> 9) + 1u);
}

/* Small blocks: every byte.  Large blocks: one byte per page plus 64 bytes at
 * both ends (touches every page, checks cheaply). */
static inline void steady_stamp(unsigned char *p, size_t n, uint64_t seed)
{
    if (n <= 4 * KiB) {
        for (size_t i = 0; i < n; i++)
            p[i] = steady_tag(seed, i);
        return;
    }
    for (size_t off = 0; off < n; off += PAGE)
        p[off] = steady_tag(seed, off);
    for (size_t i = 0; i < 64; i++) {
        p[i] = steady_tag(seed, i);
        p[n - 1 - i] = steady_tag(seed, n - 1 - i);
    }
}

/* First byte of [0, n) that does not match (within what steady_stamp wrote
 * for a block of `stamped` bytes), or (size_t)-1 when all match.  n may be
 * smaller than stamped (a realloc kept a prefix). */
static inline size_t steady_verify(const unsigned char *p, size_t n, size_t stamped, uint64_t seed)
{
    if (stamped <= 4 * KiB) {
        for (size_t i = 0; i < n && i < stamped; i++)
            if (p[i] != steady_tag(seed, i))
                return i;
        return (size_t)-1;
    }
    for (size_t i = 0; i < 64 && i < n; i++)
        if (p[i] != steady_tag(seed, i))
            return i;
    for (size_t off = PAGE; off < n && off + 64 < stamped; off += PAGE)
        if (p[off] != steady_tag(seed, off))
            return off;
    if (n == stamped)
        for (size_t i = 0; i < 64; i++)
            if (p[n - 1 - i] != steady_tag(seed, n - 1 - i))
                return n - 1 - i;
    return (size_t)-1;
}

/* ---- process measurements --------------------------------------------------------- */

/* Read a whole /proc file into buf (NUL-terminated); returns its length or -1. */
static inline ssize_t steady_read_file(const char *path, char *buf, size_t cap)
{
    size_t len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    while (len + 1 < cap) {
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    return (ssize_t)len;
}

static inline long steady_status_kib(const char *key)
{
    char buf[8192];
    char *s;
    if (steady_read_file("/proc/self/status", buf, sizeof buf) <= 0)
        return -1;
    s = strstr(buf, key);
    return s ? strtol(s + strlen(key), NULL, 10) : -1;
}

/* Lines in /proc/self/maps (the process's VMAs), read in pieces. */
static inline long steady_maps_lines(void)
{
    char buf[16384];
    long lines = 0;
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        for (ssize_t i = 0; i < n; i++)
            lines += buf[i] == '\n';
    }
    close(fd);
    return lines;
}

typedef void (*steady_stats_fn)(int fd, int format);
typedef void (*steady_collect_fn)(bool force);

static steady_stats_fn steady_stats_print;
static steady_collect_fn steady_collect;
static bool steady_quiet;
static long steady_every;     /* --every=N: also snapshot every N cycles (diagnosis) */
static size_t steady_leak;    /* --inject-leak=BYTES: the self-check's deliberate leak */
static void *volatile steady_leaked;

/* The self-check (meson: should_fail): lose `steady_leak` bytes, untouched,
 * the way an allocator that forgets a chunk would. */
static inline void steady_maybe_leak(void)
{
    if (steady_leak)
        steady_leaked = malloc(steady_leak);
}

/* An unsigned field of vamalloc's JSON statistics, or -1. */
static inline long long steady_vam_stat(const char *key)
{
    char buf[16384], pat[80];
    int fds[2];
    size_t len = 0;
    char *s;
    if (!steady_stats_print || pipe2(fds, O_CLOEXEC) != 0)
        return -1;
    steady_stats_print(fds[1], 1 /* VAM_STATS_JSON */);
    close(fds[1]);
    for (;;) {
        ssize_t n = read(fds[0], buf + len, sizeof buf - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || len + (size_t)n + 1 >= sizeof buf) {
            if (n > 0)
                len += (size_t)n;
            break;
        }
        len += (size_t)n;
    }
    close(fds[0]);
    buf[len] = '\0';
    snprintf(pat, sizeof pat, "\"%s\":", key);
    s = strstr(buf, pat);
    return s ? strtoll(s + strlen(pat), NULL, 10) : -1;
}

/* Parse the common options; returns the index of the first other argument. */
static inline int steady_init(int argc, char **argv)
{
    bool require = false;
    int i = 1;
    for (; i < argc; i++) {
        if (!strcmp(argv[i], "--require-vamalloc"))
            require = true;
        else if (!strcmp(argv[i], "--quiet"))
            steady_quiet = true;
        else if (!strncmp(argv[i], "--every=", 8))
            steady_every = atol(argv[i] + 8);
        else if (!strncmp(argv[i], "--inject-leak=", 14))
            steady_leak = (size_t)strtoull(argv[i] + 14, NULL, 0);
        else
            break;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    *(void **)&steady_stats_print = dlsym(RTLD_DEFAULT, "vam_stats_print");
    *(void **)&steady_collect = dlsym(RTLD_DEFAULT, "vam_collect");
    if (require && !steady_stats_print)
        steady_die("vam_stats_print not found: run with LD_PRELOAD=libvamalloc.so");
    printf("# allocator: %s; vam_collect: %s%s\n",
           steady_stats_print ? "vamalloc (preloaded)" : "not vamalloc (no vam_stats_print)",
           steady_collect ? "yes (called before each snapshot)" : "no",
           steady_leak ? "; SELF-CHECK: leaking on purpose, this run must fail" : "");
    return i;
}

typedef struct {
    const char *label;
    long vmsize_kib, rss_kib, maps;
    long long vam_mappings;       /* -1: not vamalloc */
    long long vam_committed;      /* vamalloc's committed_bytes: live blocks plus
                                     what it keeps committed; -1: not vamalloc */
    long raw_vmsize_kib, raw_rss_kib; /* before vam_collect */
} steady_snap_t;

static inline void steady_snapshot(steady_snap_t *s, const char *label)
{
    s->label = label;
    s->raw_vmsize_kib = steady_status_kib("VmSize:");
    s->raw_rss_kib = steady_status_kib("VmRSS:");
    if (steady_collect)
        steady_collect(true);
    s->vmsize_kib = steady_status_kib("VmSize:");
    s->rss_kib = steady_status_kib("VmRSS:");
    s->maps = steady_maps_lines();
    s->vam_mappings = steady_vam_stat("mappings");
    s->vam_committed = steady_vam_stat("committed_bytes");
    if (s->vmsize_kib <= 0 || s->rss_kib <= 0 || s->maps <= 0)
        steady_die("cannot read /proc/self/status or /proc/self/maps");
    if (!steady_quiet)
        printf("# %-10s VmSize %8ld KiB  VmRSS %7ld KiB  maps %4ld  vamalloc mappings %3lld"
               "  (before collect: VmSize %ld KiB, VmRSS %ld KiB)\n", label, s->vmsize_kib,
               s->rss_kib, s->maps, s->vam_mappings, s->raw_vmsize_kib, s->raw_rss_kib);
}

enum { STEADY_VMSIZE = 1, STEADY_RSS = 2, STEADY_MAPS = 4, STEADY_ALL = 7 };

/* Returns the number of violated bounds (each printed). */
static inline int steady_compare(const steady_snap_t *a, const steady_snap_t *b, unsigned what,
                                 const char *test)
{
    int bad = 0;
    if ((what & STEADY_VMSIZE) && b->vmsize_kib * 100 >= a->vmsize_kib * 101) {
        fprintf(stderr, "FAIL: %s: VmSize grew %ld -> %ld KiB (+%.2f%%; limit < 1%%) between %s and %s\n",
                test, a->vmsize_kib, b->vmsize_kib,
                (double)(b->vmsize_kib - a->vmsize_kib) * 100.0 / (double)a->vmsize_kib, a->label,
                b->label);
        bad++;
    }
    if ((what & STEADY_RSS) && b->rss_kib * 100 >= a->rss_kib * 101 && b->rss_kib - a->rss_kib >= 256) {
        fprintf(stderr, "FAIL: %s: VmRSS grew %ld -> %ld KiB (+%.2f%%; limit < 1%% or < 256 KiB) "
                "between %s and %s\n", test, a->rss_kib, b->rss_kib,
                (double)(b->rss_kib - a->rss_kib) * 100.0 / (double)a->rss_kib, a->label, b->label);
        bad++;
    }
    /* Pooled address space can hide a leak from VmSize for a while (a
     * leaked block sits in a region reserved earlier); vamalloc's own
     * count of committed bytes cannot hide it. */
    if ((what & STEADY_RSS) && a->vam_committed >= 0 &&
        b->vam_committed * 100 >= a->vam_committed * 101 &&
        b->vam_committed - a->vam_committed >= 256 * 1024) {
        fprintf(stderr, "FAIL: %s: vamalloc's committed bytes grew %lld -> %lld (limit < 1%% or "
                "< 256 KiB) between %s and %s\n", test, a->vam_committed, b->vam_committed,
                a->label, b->label);
        bad++;
    }
    if ((what & STEADY_MAPS) && a->vam_mappings >= 0 && b->vam_mappings > a->vam_mappings + 2) {
        fprintf(stderr, "FAIL: %s: vamalloc's mappings grew %lld -> %lld (limit +2) between %s and %s\n",
                test, a->vam_mappings, b->vam_mappings, a->label, b->label);
        bad++;
    }
    if ((what & STEADY_MAPS) && b->maps > a->maps + 4) {
        fprintf(stderr, "FAIL: %s: /proc/self/maps grew %ld -> %ld lines (limit +4) between %s and %s\n",
                test, a->maps, b->maps, a->label, b->label);
        bad++;
    }
    return bad;
}

/* The exit status for `bad` violated bounds.  In a self-check run
 * (--inject-leak) the meaning flips: detecting the leak is the pass. */
static inline int steady_finish(int bad, const char *test)
{
    if (steady_leak) {
        if (bad) {
            printf("ok: self-check: %s detected the injected leak of %zu bytes per cycle\n", test,
                   steady_leak);
            return 0;
        }
        fprintf(stderr, "FAIL: self-check: %s did not detect an injected leak of %zu bytes per "
                "cycle: its measurement points cannot see a leak\n", test, steady_leak);
        return 1;
    }
    if (bad)
        return 1;
    printf("ok\n");
    return 0;
}

#endif /* VAM_TESTS_STEADY_H */
