/* cache_thrash: active false sharing, after Hoard's cache-thrash.
 *
 * Every thread repeatedly mallocs one small object (8 bytes by default),
 * writes each of its bytes many times, checks it and frees it.  The threads
 * never share an object; but an allocator that hands objects of different
 * threads out of one cache line makes the cores fight over that line.
 *
 * ns_per_op = wall ns per malloc+write loop+free, over all threads.
 */
#include "workload.h"

#define OBJ 8

typedef struct {
    uint64_t iters, reps;
    unsigned id;
    const char *name;
    char pad[64];
} targ_t;

static void *worker(void *v)
{
    targ_t *a = v;
    for (uint64_t i = 0; i < a->iters; i++) {
        volatile unsigned char *p = wl_malloc(a->name, OBJ);
        unsigned char want = 0;
        for (uint64_t r = 0; r < a->reps; r++)
            for (unsigned j = 0; j < OBJ; j++)
                p[j] = (unsigned char)(r + j + a->id);
        for (unsigned j = 0; j < OBJ; j++) {
            want = (unsigned char)(a->reps - 1 + j + a->id);
            if (p[j] != want)
                bench_fail("%s: object %p byte %u is 0x%02x, expected 0x%02x", a->name,
                           (void *)p, j, p[j], want);
        }
        free((void *)p);
    }
    return NULL;
}

static void run(const bench_opts_t *o, const char *name)
{
    int t = bench_threads(o, 1);
    uint64_t iters = bench_iters(o, 4000, 50), reps = o->smoke ? 1000 : 20000;
    targ_t a[64];
    double t0, t1;
    char extra[80];

    for (int i = 0; i < t; i++)
        a[i] = (targ_t){ .iters = iters, .reps = reps, .id = (unsigned)i, .name = name };
    t0 = bench_now();
    wl_run_threads(name, t, worker, a, sizeof a[0]);
    t1 = bench_now();
    snprintf(extra, sizeof extra, "unit=object threads=%d writes_per_object=%llu", t,
             (unsigned long long)reps * OBJ);
    bench_result(name, iters * (uint64_t)t, t1 - t0, extra);
}

WL_MAIN("cache_thrash", "active false sharing: each thread mallocs, writes and frees small objects",
        run)
