/* gc_sweep: the object part of a garbage-collected runtime.
 *
 * A shared "heap" of 64 regions x 1024 object slots.  Mutator threads
 * (all threads but one) claim an empty-enough region, fill its empty slots
 * with new objects of mixed sizes (mostly 16..128 B, some up to 1 KiB, a
 * few 4 KiB arrays) and hand the region to the sweeper.  The sweeper thread
 * claims full regions, decides for every object whether it died (about
 * half do, at random), checks and frees the dead ones and checks the
 * survivors, then returns the region to the mutators.  Objects thus die on
 * another thread than the one that made them, and survivors of several
 * sweeps sit next to fresh objects, as in a non-moving collector.  The run
 * ends when the mutators have made their quota of objects.
 *
 * ns_per_op = wall ns per object allocated (and, on average, freed).
 */
#include "workload.h"

#define REGIONS 64
#define SLOTS 1024

enum { EMPTY, FILLING, FULL, SWEEPING };

typedef struct {
    _Alignas(64) _Atomic int state;
    void *obj[SLOTS];
} region_t;

typedef struct {
    region_t *heap;
    _Atomic uint64_t *made;         /* objects allocated so far, all mutators */
    _Atomic int *mutators_left;
    uint64_t quota, rng, seq, freed;
    int sweeper;
    const char *name;
    char pad[64];
} gcarg_t;

static size_t pick(uint64_t *rng)
{
    uint64_t r = bench_rand(rng);
    unsigned c = (unsigned)(r % 64);
    if (c < 48) return BENCH_OBJ_MIN + (size_t)((r >> 8) % (128 - BENCH_OBJ_MIN + 1));
    if (c < 63) return bench_rand_range(rng, 129, 1024);
    return bench_rand_range(rng, 2048, 4096);
}

static void mutate(gcarg_t *a)
{
    unsigned start = (unsigned)(bench_rand(&a->rng) % REGIONS), spins = 0;
    while (atomic_load_explicit(a->made, memory_order_relaxed) < a->quota) {
        int claimed = 0;
        for (unsigned k = 0; k < REGIONS && !claimed; k++) {
            region_t *rg = &a->heap[(start + k) % REGIONS];
            int want = EMPTY;
            if (atomic_compare_exchange_strong(&rg->state, &want, FILLING)) {
                uint64_t n = 0;
                for (unsigned s = 0; s < SLOTS; s++) {
                    if (rg->obj[s]) continue;
                    size_t sz = pick(&a->rng);
                    rg->obj[s] = wl_malloc(a->name, sz);
                    bench_obj_stamp(rg->obj[s], sz, a->seq++);
                    n++;
                }
                atomic_fetch_add_explicit(a->made, n, memory_order_relaxed);
                atomic_store_explicit(&rg->state, FULL, memory_order_release);
                start += k + 1;
                claimed = 1;
            }
        }
        if (!claimed) wl_backoff(&spins);
        else spins = 0;
    }
}

static void sweep(gcarg_t *a)
{
    unsigned spins = 0;
    for (;;) {
        int swept = 0;
        int last = atomic_load(a->mutators_left) == 0;
        for (unsigned k = 0; k < REGIONS; k++) {
            region_t *rg = &a->heap[k];
            int want = FULL;
            if (!atomic_compare_exchange_strong(&rg->state, &want, SWEEPING)) continue;
            for (unsigned s = 0; s < SLOTS; s++) {
                void *p = rg->obj[s];
                if (!p) continue;
                bench_obj_check(a->name, p);
                if (bench_rand(&a->rng) & 1) {
                    free(p);
                    rg->obj[s] = NULL;
                    a->freed++;
                }
            }
            atomic_store_explicit(&rg->state, EMPTY, memory_order_release);
            swept = 1;
        }
        if (last && !swept) return;
        if (!swept) wl_backoff(&spins);
        else spins = 0;
    }
}

static void *role(void *v)
{
    gcarg_t *a = v;
    if (a->sweeper) {
        sweep(a);
    } else {
        mutate(a);
        atomic_fetch_sub(a->mutators_left, 1);
    }
    return NULL;
}

static void run(const bench_opts_t *o, const char *name)
{
    int t = bench_threads(o, 2);
    uint64_t quota = bench_iters(o, 4000000, 200000), freed = 0;
    _Atomic uint64_t made = 0;
    _Atomic int left = t - 1;
    region_t *heap = calloc(REGIONS, sizeof *heap);
    gcarg_t a[64];
    double t0, t1;
    char extra[96];

    if (!heap) bench_fail("%s: no memory", name);
    for (int i = 0; i < t; i++)
        a[i] = (gcarg_t){ .heap = heap, .made = &made, .mutators_left = &left, .quota = quota,
                          .rng = bench_seed((uint64_t)i + 600), .seq = (uint64_t)i << 32,
                          .sweeper = i == t - 1, .name = name };
    t0 = bench_now();
    wl_run_threads(name, t, role, a, sizeof a[0]);
    t1 = bench_now();
    for (unsigned k = 0; k < REGIONS; k++)
        for (unsigned s = 0; s < SLOTS; s++)
            if (heap[k].obj[s]) {
                bench_obj_check(name, heap[k].obj[s]);
                free(heap[k].obj[s]);
            }
    free(heap);
    freed = a[t - 1].freed;
    snprintf(extra, sizeof extra, "unit=object threads=%d mutators=%d swept=%llu", t, t - 1,
             (unsigned long long)freed);
    bench_result(name, atomic_load(&made), t1 - t0, extra);
}

WL_MAIN("gc_sweep", "mutators fill heap regions, a sweeper thread frees a random half", run)
