/* micro_pairs: the malloc/free fast path, same-thread and cross-thread.
 *
 * Cases (see bench.h for the common options and the RESULT line):
 *   pairs_16_256    one thread; each iteration frees one block of a 64-block
 *                   working set and mallocs its replacement, sizes cycling
 *                   16, 32, ..., 256.  ns_per_op = ns per malloc+free pair.
 *   pairs_null      the same loop over a trivial LIFO stack of static
 *                   buffers instead of malloc/free: the harness floor (the
 *                   loop, the data checks, two calls).  Subtract it to see
 *                   what the allocator itself costs.
 *   xthread_16_256  two threads; the producer mallocs blocks (16..256 B),
 *                   stamps them and hands them over in batches of 64 through
 *                   a lock-free single-producer/single-consumer ring; the
 *                   consumer checks and frees them.  ns_per_op = wall ns per
 *                   block in steady state (after the warm-up batches).
 *
 * Every block is stamped at both ends (first and last byte, a tag derived
 * from the block's sequence number) and checked before it is freed, so a
 * broken allocator fails the run instead of producing a number.
 *
 * Uses only the standard names; get an allocator with LD_PRELOAD.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"

#define WS 64               /* live blocks in the pairs working set (power of 2) */
#define NSIZES 16           /* 16, 32, ..., 256 */

/* Size of block number i: cycles through the 16 sizes, shifted by one each
 * pass over the working set, so a slot does not always get the same size. */
static inline size_t pair_size(uint64_t i)
{
    return 16 * (1 + ((i + (i / WS)) % NSIZES));
}
static inline uint8_t pair_tag(uint64_t i) { return (uint8_t)(i * 131 + 7); }

static inline void stamp(unsigned char *p, uint64_t i)
{
    size_t n = pair_size(i);
    p[0] = pair_tag(i);
    p[n - 1] = (uint8_t)~pair_tag(i);
}

static inline void check(const char *name, const unsigned char *p, uint64_t i)
{
    size_t n = pair_size(i);
    uint8_t head = pair_tag(i), tail = (uint8_t)~head;
    if (p[0] != head || p[n - 1] != tail)
        bench_fail("%s: block #%llu at %p (size %zu): head 0x%02x (expected 0x%02x), "
                   "tail 0x%02x (expected 0x%02x)", name, (unsigned long long)i, (void *)p, n,
                   p[0], head, p[n - 1], tail);
}

/* ---- pairs_16_256 / pairs_null ------------------------------------------------- */

/* The trivial allocator for pairs_null: a LIFO stack of WS+1 static buffers. */
static unsigned char null_bufs[WS + 1][256];
static unsigned char *null_stack[WS + 1];
static unsigned null_top;

__attribute__((noinline)) static void *null_malloc(size_t n)
{
    (void)n;
    return null_stack[--null_top];
}
__attribute__((noinline)) static void null_free(void *p)
{
    null_stack[null_top++] = p;
}
static void *real_malloc(size_t n) { return malloc(n); }
static void real_free(void *p) { free(p); }

typedef struct {
    unsigned char *p[WS];
    uint64_t seq[WS];       /* sequence number of the block in each slot */
} workset_t;

/* Free slot i%WS and malloc block number i in its place.  Inlined with
 * constant m/f, so the calls are direct. */
static inline __attribute__((always_inline)) void
pairs_loop(workset_t *ws, uint64_t from, uint64_t to, const char *name,
           void *(*m)(size_t), void (*f)(void *))
{
    for (uint64_t i = from; i < to; i++) {
        unsigned s = (unsigned)(i % WS);
        unsigned char *p;
        check(name, ws->p[s], ws->seq[s]);
        f(ws->p[s]);
        p = m(pair_size(i));
        if (!p)
            bench_fail("%s: malloc(%zu) returned NULL", name, pair_size(i));
        stamp(p, i);
        ws->p[s] = p;
        ws->seq[s] = i;
    }
}

static inline __attribute__((always_inline)) void
pairs_case(const bench_opts_t *o, const char *name, void *(*m)(size_t), void (*f)(void *))
{
    uint64_t n = bench_iters(o, 20000000, 20000), w = bench_warmup(o, 200000, 1000);
    workset_t ws;
    double t0, t1;

    for (unsigned s = 0; s < WS; s++) {
        ws.p[s] = m(pair_size(s));
        if (!ws.p[s])
            bench_fail("%s: malloc(%zu) returned NULL", name, pair_size(s));
        stamp(ws.p[s], s);
        ws.seq[s] = s;
    }
    pairs_loop(&ws, WS, WS + w, name, m, f);
    t0 = bench_now();
    pairs_loop(&ws, WS + w, WS + w + n, name, m, f);
    t1 = bench_now();
    for (unsigned s = 0; s < WS; s++) {
        check(name, ws.p[s], ws.seq[s]);
        f(ws.p[s]);
    }
    bench_result(name, n, t1 - t0, "unit=pair");
}

static void run_pairs(const bench_opts_t *o, const char *name)
{
    pairs_case(o, name, real_malloc, real_free);
}

static void run_pairs_null(const bench_opts_t *o, const char *name)
{
    null_top = 0;
    for (unsigned i = 0; i < WS + 1; i++)
        null_stack[null_top++] = null_bufs[i];
    pairs_case(o, name, null_malloc, null_free);
}

/* ---- xthread_16_256 ---------------------------------------------------------------- */

#define BATCH 64
#define RING 64             /* batches in flight (power of 2) */

typedef struct {
    _Alignas(64) _Atomic uint64_t tail;     /* batches published (producer) */
    _Alignas(64) _Atomic uint64_t head;     /* batches consumed (consumer) */
    _Alignas(64) _Atomic int start;          /* both threads ready */
    double t0;                              /* producer: start of batch `warm` */
    double t1;                              /* consumer: last block freed */
    uint64_t batches, warm;
    const char *name;
    unsigned char *slot[RING][BATCH];
} ring_t;

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Spin briefly, then yield: the peer may share our core. */
static inline void backoff(unsigned *spins)
{
    if (++*spins < 100)
        cpu_relax();
    else
        sched_yield();
}

static void *producer(void *arg)
{
    ring_t *r = arg;
    atomic_fetch_add(&r->start, 1);
    while (atomic_load(&r->start) < 2) cpu_relax();
    for (uint64_t b = 0; b < r->batches; b++) {
        unsigned spins = 0;
        unsigned char **slot = r->slot[b % RING];
        if (b == r->warm)
            r->t0 = bench_now();       /* read by main after the joins */
        while (b - atomic_load_explicit(&r->head, memory_order_acquire) >= RING)
            backoff(&spins);
        for (unsigned j = 0; j < BATCH; j++) {
            uint64_t i = b * BATCH + j;
            unsigned char *p = malloc(pair_size(i));
            if (!p)
                bench_fail("%s: malloc(%zu) returned NULL", r->name, pair_size(i));
            stamp(p, i);
            slot[j] = p;
        }
        atomic_store_explicit(&r->tail, b + 1, memory_order_release);
    }
    return NULL;
}

static void *consumer(void *arg)
{
    ring_t *r = arg;
    atomic_fetch_add(&r->start, 1);
    while (atomic_load(&r->start) < 2) cpu_relax();
    for (uint64_t b = 0; b < r->batches; b++) {
        unsigned spins = 0;
        unsigned char **slot = r->slot[b % RING];
        while (atomic_load_explicit(&r->tail, memory_order_acquire) <= b)
            backoff(&spins);
        for (unsigned j = 0; j < BATCH; j++) {
            check(r->name, slot[j], b * BATCH + j);
            free(slot[j]);
        }
        atomic_store_explicit(&r->head, b + 1, memory_order_release);
    }
    r->t1 = bench_now();
    return NULL;
}

static void run_xthread(const bench_opts_t *o, const char *name)
{
    uint64_t n = bench_iters(o, 4000000, 20000), w = bench_warmup(o, 100000, 1000);
    ring_t *r = calloc(1, sizeof *r);
    pthread_t pt, ct;
    if (!r)
        bench_fail("%s: no memory for the ring", name);
    r->name = name;
    r->warm = (w + BATCH - 1) / BATCH;
    r->batches = r->warm + (n + BATCH - 1) / BATCH;
    if (pthread_create(&ct, NULL, consumer, r) || pthread_create(&pt, NULL, producer, r))
        bench_fail("%s: pthread_create failed", name);
    pthread_join(ct, NULL);
    pthread_join(pt, NULL);
    bench_result(name, (r->batches - r->warm) * BATCH, r->t1 - r->t0, "unit=block threads=2");
    free(r);
}

static const bench_case_t cases[] = {
    { "pairs_16_256", "1 thread: free+malloc pairs, 16..256 B, 64 live blocks", run_pairs },
    { "pairs_null", "the pairs loop over a trivial static LIFO (harness floor)", run_pairs_null },
    { "xthread_16_256", "2 threads: malloc on one, free on the other, batches of 64", run_xthread },
};

int main(int argc, char **argv)
{
    return bench_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
