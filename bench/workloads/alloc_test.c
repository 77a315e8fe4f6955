/* alloc_test: a mix of sizes and lifetimes, in the style of the alloc-test
 * benchmark.
 *
 * Every thread keeps an array of 32768 slots.  Each step picks a slot --
 * seven times in eight among the first 1024 (short-lived objects, replaced
 * often), else anywhere (long-lived ones) -- checks and frees what is there
 * and mallocs a new block: 80% of 8..128 bytes, 15% of 128..4096, 4% of
 * 4..64 KiB, 1% of 64..512 KiB.  Every byte of a new block up to 256 bytes
 * is written, larger blocks get their first and last 256 bytes written, as
 * a program initialising a structure would.
 *
 * ns_per_op = wall ns per free+malloc+write, over all threads.
 */
#include "workload.h"

#define SLOTS 32768
#define HOT 1024
#define TOUCH 256

typedef struct {
    uint64_t iters, rng;
    const char *name;
    char pad[64];
} aarg_t;

static size_t pick(uint64_t *rng)
{
    unsigned c = (unsigned)(bench_rand(rng) % 100);
    if (c < 80) return bench_rand_range(rng, 8, 128);
    if (c < 95) return bench_rand_range(rng, 129, 4096);
    if (c < 99) return bench_rand_range(rng, 4097, 65536);
    return bench_rand_range(rng, 65537, 512 * 1024);
}

static void fill(void *p, size_t n, uint64_t seq)
{
    unsigned char *b = p;
    unsigned char v = (unsigned char)(seq * 29 + 3);
    if (n <= 2 * TOUCH) {
        memset(b, v, n);
    } else {
        memset(b, v, TOUCH);
        memset(b + n - TOUCH, v, TOUCH);
    }
    bench_stamp(p, n, seq);
}

static void *worker(void *v)
{
    aarg_t *a = v;
    void **p = wl_malloc(a->name, SLOTS * sizeof(void *));
    uint32_t *n = wl_malloc(a->name, SLOTS * sizeof(uint32_t));
    uint64_t *seq = wl_malloc(a->name, SLOTS * sizeof(uint64_t));
    for (unsigned s = 0; s < SLOTS; s++) {
        n[s] = (uint32_t)pick(&a->rng);
        seq[s] = s;
        p[s] = wl_malloc(a->name, n[s]);
        fill(p[s], n[s], seq[s]);
    }
    for (uint64_t i = 0; i < a->iters; i++) {
        uint64_t r = bench_rand(&a->rng);
        unsigned s = (r & 7) ? (unsigned)((r >> 8) % HOT) : (unsigned)((r >> 8) % SLOTS);
        bench_check(a->name, p[s], n[s], seq[s]);
        free(p[s]);
        n[s] = (uint32_t)pick(&a->rng);
        seq[s] = SLOTS + i;
        p[s] = wl_malloc(a->name, n[s]);
        fill(p[s], n[s], seq[s]);
    }
    for (unsigned s = 0; s < SLOTS; s++) {
        bench_check(a->name, p[s], n[s], seq[s]);
        free(p[s]);
    }
    free(p);
    free(n);
    free(seq);
    return NULL;
}

static void run(const bench_opts_t *o, const char *name)
{
    int t = bench_threads(o, 1);
    uint64_t iters = bench_iters(o, 3000000, 20000);
    aarg_t a[64];
    double t0, t1;
    char extra[64];

    for (int i = 0; i < t; i++)
        a[i] = (aarg_t){ .iters = iters, .rng = bench_seed((uint64_t)i + 200), .name = name };
    t0 = bench_now();
    wl_run_threads(name, t, worker, a, sizeof a[0]);
    t1 = bench_now();
    snprintf(extra, sizeof extra, "unit=free+malloc threads=%d", t);
    bench_result(name, iters * (uint64_t)t, t1 - t0, extra);
}

WL_MAIN("alloc_test", "short- and long-lived objects of mixed sizes (8 B..512 KiB), random replace",
        run)
