/* rptest: batched allocation with cross-thread frees through lock-free
 * lists, in the style of rpmalloc's benchmark.
 *
 * Every thread repeats: malloc a batch of 1024 blocks of 16 B..16 KiB
 * (log-uniform); free a random half of them in random order; push one in
 * eight of the rest onto the lock-free stack (an intrusive list through the
 * blocks themselves) of a random other thread; free the remainder; then pop
 * its own stack and free what other threads sent it.
 *
 * ns_per_op = wall ns per malloc+free, over all threads.
 */
#include "workload.h"

#define BATCH 1024
#define MINSZ 32            /* room for the list link and the stamp */
#define MAXSZ 16384

typedef struct node {
    struct node *next;      /* overwrites nothing: the stamp starts at +16 */
    uint64_t pad;
} node_t;

typedef struct {
    _Alignas(64) _Atomic(node_t *) head;
    uint64_t freed;
} inbox_t;

typedef struct {
    uint64_t rounds, rng, seq, sent;
    unsigned id, nthreads;
    inbox_t *inbox;
    _Atomic int *done;
    const char *name;
    char pad[64];
} rarg_t;

/* The stamp lives 16 bytes in, so the link at the front does not touch it. */
static void *make(rarg_t *a)
{
    size_t n = bench_rand_log(&a->rng, MINSZ, MAXSZ);
    unsigned char *p = wl_malloc(a->name, n);
    bench_obj_stamp(p + 16, n - 16, a->seq++);
    return p;
}

static void drop(rarg_t *a, void *p)
{
    bench_obj_check(a->name, (unsigned char *)p + 16);
    free(p);
}

static unsigned drain(rarg_t *a)
{
    inbox_t *me = &a->inbox[a->id];
    node_t *n = atomic_exchange_explicit(&me->head, NULL, memory_order_acquire);
    unsigned got = 0;
    while (n) {
        node_t *next = n->next;
        drop(a, n);
        got++;
        n = next;
    }
    me->freed += got;
    return got;
}

static void *worker(void *v)
{
    rarg_t *a = v;
    void *p[BATCH];
    for (uint64_t r = 0; r < a->rounds; r++) {
        for (unsigned i = 0; i < BATCH; i++)
            p[i] = make(a);
        /* free a random half in random order: shuffle, free the first half */
        for (unsigned i = BATCH - 1; i > 0; i--) {
            unsigned j = (unsigned)(bench_rand(&a->rng) % (i + 1));
            void *x = p[i];
            p[i] = p[j];
            p[j] = x;
        }
        for (unsigned i = 0; i < BATCH / 2; i++)
            drop(a, p[i]);
        for (unsigned i = BATCH / 2; i < BATCH; i++) {
            if ((i & 7) == 0 && a->nthreads > 1) {
                unsigned to = (a->id + 1 + (unsigned)(bench_rand(&a->rng) % (a->nthreads - 1)))
                              % a->nthreads;
                node_t *n = p[i];
                n->next = atomic_load_explicit(&a->inbox[to].head, memory_order_relaxed);
                while (!atomic_compare_exchange_weak_explicit(&a->inbox[to].head, &n->next, n,
                                                              memory_order_release,
                                                              memory_order_relaxed))
                    ;
                a->sent++;
            } else {
                drop(a, p[i]);
            }
        }
        drain(a);
    }
    atomic_fetch_add(a->done, 1);
    while (atomic_load(a->done) < (int)a->nthreads) {
        unsigned spins = 0;
        if (!drain(a)) wl_backoff(&spins);
    }
    drain(a);
    return NULL;
}

static void run(const bench_opts_t *o, const char *name)
{
    int t = bench_threads(o, 2);
    uint64_t rounds = bench_iters(o, 3000, 100), sent = 0, freed = 0;
    _Atomic int done = 0;
    inbox_t *inbox = calloc((size_t)t, sizeof *inbox);
    rarg_t a[64];
    double t0, t1;
    char extra[64];

    if (!inbox) bench_fail("%s: no memory", name);
    for (int i = 0; i < t; i++)
        a[i] = (rarg_t){ .rounds = rounds, .rng = bench_seed((uint64_t)i + 400),
                         .seq = (uint64_t)i << 32, .id = (unsigned)i, .nthreads = (unsigned)t,
                         .inbox = inbox, .done = &done, .name = name };
    t0 = bench_now();
    wl_run_threads(name, t, worker, a, sizeof a[0]);
    t1 = bench_now();
    for (int i = 0; i < t; i++) {
        sent += a[i].sent;
        freed += inbox[i].freed;
    }
    if (sent != freed)
        bench_fail("%s: %llu blocks sent, %llu freed", name, (unsigned long long)sent,
                   (unsigned long long)freed);
    free(inbox);
    snprintf(extra, sizeof extra, "unit=malloc+free threads=%d remote=%llu", t,
             (unsigned long long)sent);
    bench_result(name, rounds * BATCH * (uint64_t)t, t1 - t0, extra);
}

WL_MAIN("rptest", "batches of 16 B..16 KiB, random-order frees, 1/16 freed by another thread",
        run)
