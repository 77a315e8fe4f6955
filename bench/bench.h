/* bench.h: the small shared core of the C benchmarks in bench/.
 *
 * A benchmark program holds a table of named cases; each case runs, checks
 * its own data, and reports one machine-readable line on stdout:
 *
 *   RESULT name=<case> ns_per_op=<float> ops=<count> secs=<float> [key=value...]
 *
 * bench/run.py reads only these lines and, at the end, one line
 *
 *   PEAK vmhwm_kib=<peak resident set of the process, from /proc/self/status>
 *
 * (anything else on stdout is ignored, so a program may print '#' comments).  Benchmarks use the standard malloc
 * names and never link vamalloc: they get an allocator through LD_PRELOAD,
 * so one binary measures glibc, the peers and vamalloc alike.
 *
 * Common command line (parsed by bench_parse_args):
 *   --smoke          run each case briefly (CI: proves it runs and checks data)
 *   --only=A,B       run only the named cases
 *   --iters=N        operations per case (0: the case's default)
 *   --scale=F        multiply the default operation counts by F (run.py
 *                    --quick uses 0.2)
 *   --warmup=N       untimed operations first (default: case-specific; the
 *                    count is fixed, so callgrind differences cancel it)
 *   --threads=N      threads for multi-threaded cases (0: the case's default,
 *                    usually the number of online CPUs, at least 2)
 *   --list           print the case names and exit
 *
 * The workloads in bench/workloads/ also use the helpers further down: a
 * deterministic PRNG, data stamps that any thread can check, and the
 * resident set size from /proc/self/statm.
 */
#ifndef VAM_BENCH_H
#define VAM_BENCH_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    int smoke;
    const char *only;       /* comma-separated case names, or NULL for all */
    uint64_t iters;         /* 0: the case's default */
    int64_t warmup;         /* -1: the case's default */
    double scale;           /* multiplies default iteration counts */
    int threads;            /* 0: the case's default */
} bench_opts_t;

typedef struct {
    const char *name;
    const char *what;                       /* one line for --list */
    void (*run)(const bench_opts_t *o, const char *name);
} bench_case_t;

static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Data check failed: say what and where, and fail the whole program. */
static inline void bench_fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static inline void bench_fail(const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fputs("bench: DATA CHECK FAILED: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static inline void bench_result(const char *name, uint64_t ops, double secs, const char *extra)
{
    printf("RESULT name=%s ns_per_op=%.3f ops=%llu secs=%.6f%s%s\n", name,
           ops ? secs * 1e9 / (double)ops : 0.0, (unsigned long long)ops, secs,
           extra && *extra ? " " : "", extra ? extra : "");
    fflush(stdout);
}

static inline uint64_t bench_iters(const bench_opts_t *o, uint64_t dflt, uint64_t smoke)
{
    uint64_t n;
    if (o->iters) return o->iters;
    if (o->smoke) return smoke;
    n = (uint64_t)((double)dflt * o->scale);
    return n ? n : 1;
}

static inline uint64_t bench_warmup(const bench_opts_t *o, uint64_t dflt, uint64_t smoke)
{
    if (o->warmup >= 0) return (uint64_t)o->warmup;
    return o->smoke ? smoke : dflt;
}

static inline int bench_selected(const bench_opts_t *o, const char *name)
{
    const char *s = o->only;
    size_t n = strlen(name);
    if (!s) return 1;
    while (*s) {
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (len == n && !strncmp(s, name, n)) return 1;
        if (!e) break;
        s = e + 1;
    }
    return 0;
}

/* ---- helpers for the workloads ------------------------------------------------ */

/* Online CPUs (at least 1). */
static inline int bench_ncpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* Threads for a multi-threaded case: --threads, else the online CPUs, at
 * least `min` (2 for the cross-thread workloads) and at most 64. */
static inline int bench_threads(const bench_opts_t *o, int min)
{
    int n = o->threads > 0 ? o->threads : bench_ncpus();
    if (n < min) n = min;
    return n > 64 ? 64 : n;
}

/* Scale a default count like bench_iters does, without --iters. */
static inline uint64_t bench_scaled(const bench_opts_t *o, uint64_t dflt, uint64_t smoke)
{
    uint64_t n;
    if (o->smoke) return smoke;
    n = (uint64_t)((double)dflt * o->scale);
    return n ? n : 1;
}

/* xorshift64*: deterministic; seed with any non-zero value. */
static inline uint64_t bench_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* A seed for stream `i` of a run (splitmix64 of i; never zero). */
static inline uint64_t bench_seed(uint64_t i)
{
    uint64_t z = (i + 1) * 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    return z ? z : 1;
}

/* Uniform in [lo, hi]. */
static inline size_t bench_rand_range(uint64_t *s, size_t lo, size_t hi)
{
    return lo + (size_t)(bench_rand(s) % (uint64_t)(hi - lo + 1));
}

/* Log-uniform in [lo, hi] (lo >= 1): pick a power-of-two octave, then a size
 * inside it.  Small sizes dominate, as in real programs. */
static inline size_t bench_rand_log(uint64_t *s, size_t lo, size_t hi)
{
    uint64_t r = bench_rand(s);
    unsigned a = 63 - (unsigned)__builtin_clzll(lo), b = 63 - (unsigned)__builtin_clzll(hi);
    unsigned oct = a + (unsigned)((r >> 40) % (b - a + 1));
    size_t base = (size_t)1 << oct;
    size_t n = base + (size_t)((r & 0xffffffffu) % base);
    return n < lo ? lo : n > hi ? hi : n;
}

/* The stamp of block `seq` of `n` bytes. */
static inline uint64_t bench_tag(uint64_t seq, size_t n)
{
    uint64_t z = seq * 0x9E3779B97F4A7C15ULL ^ (uint64_t)n * 0xC2B2AE3D27D4EB4FULL;
    return z ^ (z >> 29) ^ 0x5bd1e995u;
}

/* Stamp a block: the first 8 bytes carry the tag and the last byte its
 * complement's top byte (n <= 8: byte i is byte i of the tag).  bench_check()
 * verifies it; the caller remembers seq and n. */
static inline void bench_stamp(void *p, size_t n, uint64_t seq)
{
    unsigned char *b = p;
    uint64_t t = bench_tag(seq, n);
    if (n > 8) {
        memcpy(b, &t, 8);
        b[n - 1] = (unsigned char)~(t >> 56);
    } else {
        for (size_t i = 0; i < n; i++) b[i] = (unsigned char)(t >> (8 * i));
    }
}

static inline void bench_check(const char *name, const void *p, size_t n, uint64_t seq)
{
    const unsigned char *b = p;
    uint64_t t = bench_tag(seq, n), got = 0;
    if (n > 8) {
        unsigned char last = (unsigned char)~(t >> 56);
        memcpy(&got, b, 8);
        if (got != t || b[n - 1] != last)
            bench_fail("%s: block #%llu at %p (%zu bytes): head 0x%016llx tail 0x%02x, "
                       "expected 0x%016llx and 0x%02x", name, (unsigned long long)seq, p, n,
                       (unsigned long long)got, b[n - 1], (unsigned long long)t, last);
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (b[i] != (unsigned char)(t >> (8 * i)))
            bench_fail("%s: block #%llu at %p (%zu bytes): byte %zu is 0x%02x, expected 0x%02x",
                       name, (unsigned long long)seq, p, n, i, b[i],
                       (unsigned char)(t >> (8 * i)));
}

/* Self-describing blocks (n >= 16) for workloads that free a block on
 * another thread than the one that knows its size: the first 16 bytes hold
 * the size, the sequence number and a check word, the last byte a tag. */
#define BENCH_OBJ_MIN 16
static inline void bench_obj_stamp(void *p, size_t n, uint64_t seq)
{
    unsigned char *b = p;
    uint64_t h[2];
    h[0] = ((uint64_t)n << 40) | (seq & 0xffffffffffULL);
    h[1] = bench_tag(h[0], n);
    memcpy(b, h, 16);
    b[n - 1] = (unsigned char)(h[1] >> 56);
}

/* Check a self-describing block; returns its size. */
static inline size_t bench_obj_check(const char *name, const void *p)
{
    const unsigned char *b = p;
    uint64_t h[2];
    size_t n;
    memcpy(h, b, 16);
    n = (size_t)(h[0] >> 40);
    if (n < BENCH_OBJ_MIN || h[1] != bench_tag(h[0], n))
        bench_fail("%s: block at %p: header 0x%016llx 0x%016llx is not a valid stamp", name, p,
                   (unsigned long long)h[0], (unsigned long long)h[1]);
    if (b[n - 1] != (unsigned char)(h[1] >> 56))
        bench_fail("%s: block at %p (%zu bytes, #%llu): last byte 0x%02x, expected 0x%02x",
                   name, p, n, (unsigned long long)(h[0] & 0xffffffffffULL), b[n - 1],
                   (unsigned char)(h[1] >> 56));
    return n;
}

/* Resident set size in KiB (/proc/self/statm), or 0 where there is none. */
static inline uint64_t bench_rss_kib(void)
{
    unsigned long long size = 0, res = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    if (fscanf(f, "%llu %llu", &size, &res) != 2) res = 0;
    fclose(f);
    return (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE) / 1024;
}

/* Peak resident set size (VmHWM of /proc/self/status) in KiB, or 0. */
static inline uint64_t bench_peak_rss_kib(void)
{
    char line[256];
    unsigned long long kib = 0;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6)) {
            kib = strtoull(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return kib;
}

/* Parse the common options and run the selected cases. */
static inline int bench_main(int argc, char **argv, const bench_case_t *cases, size_t ncases)
{
    bench_opts_t o = { 0, NULL, 0, -1, 1.0, 0 };
    int ran = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--smoke")) o.smoke = 1;
        else if (!strncmp(a, "--only=", 7)) o.only = a + 7;
        else if (!strncmp(a, "--iters=", 8)) o.iters = strtoull(a + 8, NULL, 0);
        else if (!strncmp(a, "--warmup=", 9)) o.warmup = strtoll(a + 9, NULL, 0);
        else if (!strncmp(a, "--scale=", 8)) o.scale = strtod(a + 8, NULL);
        else if (!strncmp(a, "--threads=", 10)) o.threads = atoi(a + 10);
        else if (!strcmp(a, "--list")) {
            for (size_t c = 0; c < ncases; c++)
                printf("%-20s %s\n", cases[c].name, cases[c].what);
            return 0;
        } else {
            fprintf(stderr, "usage: %s [--smoke] [--only=A,B] [--iters=N] [--scale=F] [--warmup=N]"
                    " [--threads=N] [--list]\n", argv[0]);
            return 2;
        }
    }
    for (size_t c = 0; c < ncases; c++) {
        if (!bench_selected(&o, cases[c].name)) continue;
        cases[c].run(&o, cases[c].name);
        ran++;
    }
    if (!ran) {
        fprintf(stderr, "%s: no case matches --only=%s (try --list)\n", argv[0], o.only);
        return 2;
    }
    /* The process's own high-water mark: ru_maxrss from wait4 would also
     * count the parent's pages, which the kernel carries across fork+exec. */
    printf("PEAK vmhwm_kib=%llu\n", (unsigned long long)bench_peak_rss_kib());
    return 0;
}

#endif /* VAM_BENCH_H */
