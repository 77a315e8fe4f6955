/* sh6bench: batches allocated and freed in varied orders, in the style of
 * MicroQuill's sh6bench.
 *
 * Every thread repeats: malloc a batch of 2000 blocks whose sizes step
 * through 8..1000 bytes; free every other block, front to back; malloc
 * into those holes blocks of another size progression; then free the whole
 * batch back to front.  Blocks stay on the thread that made them.
 *
 * ns_per_op = wall ns per malloc+free, over all threads.
 */
#include "workload.h"

#define BATCH 2000
#define MINSZ 8
#define MAXSZ 1000

typedef struct {
    uint64_t rounds;
    unsigned id;
    const char *name;
    char pad[64];
} sharg_t;

static void *worker(void *v)
{
    sharg_t *a = v;
    void *p[BATCH];
    uint32_t n[BATCH];
    uint64_t seq = (uint64_t)a->id << 40;
    uint64_t seqs[BATCH];
    for (uint64_t r = 0; r < a->rounds; r++) {
        size_t sz = MINSZ + (size_t)(r * 37 % (MAXSZ - MINSZ));
        for (unsigned i = 0; i < BATCH; i++) {
            n[i] = (uint32_t)sz;
            seqs[i] = seq++;
            p[i] = wl_malloc(a->name, sz);
            bench_stamp(p[i], sz, seqs[i]);
            sz += 17;
            if (sz > MAXSZ) sz = MINSZ + (sz - MAXSZ);
        }
        for (unsigned i = 0; i < BATCH; i += 2) {
            bench_check(a->name, p[i], n[i], seqs[i]);
            free(p[i]);
        }
        sz = MAXSZ;
        for (unsigned i = 0; i < BATCH; i += 2) {
            n[i] = (uint32_t)sz;
            seqs[i] = seq++;
            p[i] = wl_malloc(a->name, sz);
            bench_stamp(p[i], sz, seqs[i]);
            sz = sz > MINSZ + 29 ? sz - 29 : MAXSZ;
        }
        for (unsigned i = BATCH; i-- > 0;) {
            bench_check(a->name, p[i], n[i], seqs[i]);
            free(p[i]);
        }
    }
    return NULL;
}

static void run(const bench_opts_t *o, const char *name)
{
    int t = bench_threads(o, 1);
    uint64_t rounds = bench_iters(o, 3000, 40);
    sharg_t a[64];
    double t0, t1;
    char extra[64];

    for (int i = 0; i < t; i++)
        a[i] = (sharg_t){ .rounds = rounds, .id = (unsigned)i, .name = name };
    t0 = bench_now();
    wl_run_threads(name, t, worker, a, sizeof a[0]);
    t1 = bench_now();
    snprintf(extra, sizeof extra, "unit=malloc+free threads=%d", t);
    bench_result(name, rounds * (BATCH + BATCH / 2) * (uint64_t)t, t1 - t0, extra);
}

WL_MAIN("sh6bench", "batches of 8..1000 B freed half front to back, refilled, freed back to front",
        run)
