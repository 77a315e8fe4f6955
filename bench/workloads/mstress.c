/* mstress: a stress mix with cross-thread frees, in the style of mimalloc's
 * test-stress.
 *
 * Rounds of threads (all exit at the end of a round; new threads start the
 * next).  Every thread keeps a local array of up to 4096 live blocks and
 * does a random mix of steps:
 *   45%  malloc a block (mostly 16..256 B, 1 in 16 up to 8 KiB, 1 in 512
 *        up to 256 KiB) into a random local slot, freeing what was there;
 *   25%  free a random local block;
 *   25%  exchange a random local block with a random slot of a global
 *        transfer array (atomic exchange): blocks migrate between threads
 *        and are freed by a thread other than the one that made them;
 *    5%  malloc and free a short-lived block right away.
 * At the end of a round a thread frees half its local blocks and leaves the
 * rest in the transfer array for the next round's threads to free.
 *
 * ns_per_op = wall ns per step, over all threads.
 */
#include "workload.h"

#define LOCAL 4096
#define TRANSFER 1024

typedef struct {
    uint64_t steps, rng, seq;
    _Atomic(void *) *transfer;
    const char *name;
    char pad[64];
} marg_t;

static size_t pick(uint64_t *rng)
{
    uint64_t r = bench_rand(rng);
    if ((r & 511) == 0) return bench_rand_log(rng, 8192, 256 * 1024);
    if ((r & 15) == 0) return bench_rand_log(rng, 256, 8192);
    return BENCH_OBJ_MIN + (size_t)((r >> 16) % (256 - BENCH_OBJ_MIN + 1));
}

static void *make(marg_t *a)
{
    size_t n = pick(&a->rng);
    void *p = wl_malloc(a->name, n);
    bench_obj_stamp(p, n, a->seq++);
    return p;
}

static void drop(marg_t *a, void *p)
{
    if (p) {
        bench_obj_check(a->name, p);
        free(p);
    }
}

static void *worker(void *v)
{
    marg_t *a = v;
    void **local = calloc(LOCAL, sizeof(void *));
    if (!local) bench_fail("%s: no memory", a->name);
    for (uint64_t i = 0; i < a->steps; i++) {
        uint64_t r = bench_rand(&a->rng);
        unsigned c = (unsigned)(r % 100), s = (unsigned)((r >> 16) % LOCAL);
        if (c < 45) {
            drop(a, local[s]);
            local[s] = make(a);
        } else if (c < 70) {
            drop(a, local[s]);
            local[s] = NULL;
        } else if (c < 95) {
            unsigned g = (unsigned)((r >> 40) % TRANSFER);
            local[s] = atomic_exchange(&a->transfer[g], local[s]);
        } else {
            drop(a, make(a));
        }
    }
    for (unsigned s = 0; s < LOCAL; s++) {
        if (s & 1) {
            drop(a, local[s]);
        } else if (local[s]) {
            unsigned g = (unsigned)(bench_rand(&a->rng) % TRANSFER);
            drop(a, atomic_exchange(&a->transfer[g], local[s]));
        }
    }
    free(local);
    return NULL;
}

static void run(const bench_opts_t *o, const char *name)
{
    int t = bench_threads(o, 2);
    uint64_t rounds = o->smoke ? 3 : 10, steps = bench_iters(o, 800000, 20000);
    _Atomic(void *) *transfer = calloc(TRANSFER, sizeof *transfer);
    marg_t a[64];
    double t0, t1;
    char extra[64];

    if (!transfer) bench_fail("%s: no memory", name);
    t0 = bench_now();
    for (uint64_t r = 0; r < rounds; r++) {
        for (int i = 0; i < t; i++)
            a[i] = (marg_t){ .steps = steps, .rng = bench_seed(r * 64 + (uint64_t)i + 300),
                             .seq = (r * 64 + (uint64_t)i) << 32, .transfer = transfer,
                             .name = name };
        wl_run_threads(name, t, worker, a, sizeof a[0]);
    }
    t1 = bench_now();
    for (unsigned g = 0; g < TRANSFER; g++) {
        void *p = atomic_load(&transfer[g]);
        if (p) {
            bench_obj_check(name, p);
            free(p);
        }
    }
    free(transfer);
    snprintf(extra, sizeof extra, "unit=step threads=%d", t);
    bench_result(name, rounds * steps * (uint64_t)t, t1 - t0, extra);
}

WL_MAIN("mstress", "random malloc/free/exchange through a global transfer array, rounds of threads",
        run)
