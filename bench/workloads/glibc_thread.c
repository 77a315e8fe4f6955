/* glibc_thread: random sizes per thread, in the style of glibc's
 * bench-malloc-thread.
 *
 * Every thread keeps its own working set of 1024 blocks and, for a fixed
 * number of iterations, picks a random slot, checks and frees its block and
 * mallocs one of a random size in its place.  Sizes follow a skewed
 * distribution: three quarters up to 128 bytes, the rest log-uniform up to
 * 32 KiB.  Nothing crosses threads; this is the per-thread fast path under
 * a realistic size mix.
 *
 * ns_per_op = wall ns per free+malloc, over all threads.
 */
#include "workload.h"

#define WS 1024

typedef struct {
    uint64_t iters, rng;
    const char *name;
    char pad[64];
} garg_t;

static size_t pick(uint64_t *rng)
{
    uint64_t r = bench_rand(rng);
    if ((r & 3) != 0)
        return 4 + (size_t)((r >> 8) % 125);
    return bench_rand_log(rng, 4, 32768);
}

static void *worker(void *v)
{
    garg_t *a = v;
    void *p[WS];
    uint32_t n[WS];
    uint64_t seq[WS];
    for (unsigned s = 0; s < WS; s++) {
        n[s] = (uint32_t)pick(&a->rng);
        seq[s] = s;
        p[s] = wl_malloc(a->name, n[s]);
        bench_stamp(p[s], n[s], seq[s]);
    }
    for (uint64_t i = 0; i < a->iters; i++) {
        unsigned s = (unsigned)(bench_rand(&a->rng) % WS);
        bench_check(a->name, p[s], n[s], seq[s]);
        free(p[s]);
        n[s] = (uint32_t)pick(&a->rng);
        seq[s] = WS + i;
        p[s] = wl_malloc(a->name, n[s]);
        bench_stamp(p[s], n[s], seq[s]);
    }
    for (unsigned s = 0; s < WS; s++) {
        bench_check(a->name, p[s], n[s], seq[s]);
        free(p[s]);
    }
    return NULL;
}

static void run(const bench_opts_t *o, const char *name)
{
    int t = bench_threads(o, 1);
    uint64_t iters = bench_iters(o, 10000000, 50000);
    garg_t a[64];
    double t0, t1;
    char extra[64];

    for (int i = 0; i < t; i++)
        a[i] = (garg_t){ .iters = iters, .rng = bench_seed((uint64_t)i + 100), .name = name };
    t0 = bench_now();
    wl_run_threads(name, t, worker, a, sizeof a[0]);
    t1 = bench_now();
    snprintf(extra, sizeof extra, "unit=free+malloc threads=%d", t);
    bench_result(name, iters * (uint64_t)t, t1 - t0, extra);
}

WL_MAIN("glibc_thread", "per-thread random replace of 1024 blocks, skewed sizes up to 32 KiB", run)
