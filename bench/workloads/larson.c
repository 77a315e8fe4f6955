/* larson: a server simulation, after Larson and Krishnan's benchmark.
 *
 * Each thread owns an array of slots holding blocks of 8..1000 bytes.  It
 * replaces randomly chosen slots (check, free, malloc a new random size,
 * stamp) a fixed number of times, then exits; a new thread takes its slot
 * array over for the next round, so most frees release blocks that an
 * earlier, now dead, thread allocated -- as a server's worker threads
 * inherit connections' data.
 *
 * ns_per_op = wall ns per free+malloc, over all threads.
 */
#include "workload.h"

#define MINSZ 8
#define MAXSZ 1000

typedef struct {
    void **p;
    uint32_t *n;
    uint64_t *seq;
    unsigned slots;
    uint64_t ops;
    uint64_t rng;
    uint64_t next_seq;
    const char *name;
    char pad[64];
} larson_arg_t;

static void *worker(void *v)
{
    larson_arg_t *a = v;
    for (uint64_t i = 0; i < a->ops; i++) {
        uint64_t r = bench_rand(&a->rng);
        unsigned s = (unsigned)(r % a->slots);
        size_t n = MINSZ + (size_t)((r >> 32) % (MAXSZ - MINSZ + 1));
        bench_check(a->name, a->p[s], a->n[s], a->seq[s]);
        free(a->p[s]);
        a->p[s] = wl_malloc(a->name, n);
        a->n[s] = (uint32_t)n;
        a->seq[s] = a->next_seq++;
        bench_stamp(a->p[s], n, a->seq[s]);
    }
    return NULL;
}

static void run(const bench_opts_t *o, const char *name)
{
    int t = bench_threads(o, 1);
    unsigned slots = o->smoke ? 500 : 2000;
    uint64_t rounds = o->smoke ? 4 : 20;
    uint64_t per = bench_iters(o, 250000, 5000);   /* replacements per thread per round */
    larson_arg_t *a = calloc((size_t)t, sizeof *a);
    double t0, t1;
    char extra[64];

    if (!a) bench_fail("%s: no memory", name);
    for (int i = 0; i < t; i++) {
        a[i].slots = slots;
        a[i].name = name;
        a[i].rng = bench_seed((uint64_t)i);
        a[i].next_seq = (uint64_t)i << 40;
        a[i].p = wl_malloc(name, slots * sizeof(void *));
        a[i].n = wl_malloc(name, slots * sizeof(uint32_t));
        a[i].seq = wl_malloc(name, slots * sizeof(uint64_t));
        for (unsigned s = 0; s < slots; s++) {
            size_t n = bench_rand_range(&a[i].rng, MINSZ, MAXSZ);
            a[i].p[s] = wl_malloc(name, n);
            a[i].n[s] = (uint32_t)n;
            a[i].seq[s] = a[i].next_seq++;
            bench_stamp(a[i].p[s], n, a[i].seq[s]);
        }
    }
    t0 = bench_now();
    for (uint64_t r = 0; r < rounds; r++) {
        for (int i = 0; i < t; i++) a[i].ops = per;
        /* new threads each round; rotate the arrays so a slot array also
         * moves to a thread of another index */
        wl_run_threads(name, t, worker, a, sizeof *a);
        if (t > 1) {
            larson_arg_t first = a[0];
            for (int i = 0; i + 1 < t; i++) a[i] = a[i + 1];
            a[t - 1] = first;
        }
    }
    t1 = bench_now();
    for (int i = 0; i < t; i++) {
        for (unsigned s = 0; s < slots; s++) {
            bench_check(name, a[i].p[s], a[i].n[s], a[i].seq[s]);
            free(a[i].p[s]);
        }
        free(a[i].p);
        free(a[i].n);
        free(a[i].seq);
    }
    free(a);
    snprintf(extra, sizeof extra, "unit=free+malloc threads=%d", t);
    bench_result(name, rounds * per * (uint64_t)t, t1 - t0, extra);
}

WL_MAIN("larson", "server simulation: threads replace random slots, arrays handed to new threads",
        run)
