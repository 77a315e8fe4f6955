/* bench.h: the small shared core of the C benchmarks in bench/.
 *
 * A benchmark program holds a table of named cases; each case runs, checks
 * its own data, and reports one machine-readable line on stdout:
 *
 *   RESULT name=<case> ns_per_op=<float> ops=<count> secs=<float> [key=value...]
 *
 * bench/run.py reads only these lines (anything else on stdout is ignored,
 * so a program may print '#' comments).  Benchmarks use the standard malloc
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
 *   --list           print the case names and exit
 */
#ifndef VAM_BENCH_H
#define VAM_BENCH_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    int smoke;
    const char *only;       /* comma-separated case names, or NULL for all */
    uint64_t iters;         /* 0: the case's default */
    int64_t warmup;         /* -1: the case's default */
    double scale;           /* multiplies default iteration counts */
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

/* Parse the common options and run the selected cases. */
static inline int bench_main(int argc, char **argv, const bench_case_t *cases, size_t ncases)
{
    bench_opts_t o = { 0, NULL, 0, -1, 1.0 };
    int ran = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--smoke")) o.smoke = 1;
        else if (!strncmp(a, "--only=", 7)) o.only = a + 7;
        else if (!strncmp(a, "--iters=", 8)) o.iters = strtoull(a + 8, NULL, 0);
        else if (!strncmp(a, "--warmup=", 9)) o.warmup = strtoll(a + 9, NULL, 0);
        else if (!strncmp(a, "--scale=", 8)) o.scale = strtod(a + 8, NULL);
        else if (!strcmp(a, "--list")) {
            for (size_t c = 0; c < ncases; c++)
                printf("%-20s %s\n", cases[c].name, cases[c].what);
            return 0;
        } else {
            fprintf(stderr, "usage: %s [--smoke] [--only=A,B] [--iters=N] [--scale=F] [--warmup=N] [--list]\n",
                    argv[0]);
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
    return 0;
}

#endif /* VAM_BENCH_H */
