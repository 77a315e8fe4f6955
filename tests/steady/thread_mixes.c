/* steady: threads with different allocation mixes come and go; the process
 * reaches a steady state.
 *
 *   thread_mixes [--require-vamalloc] [CYCLES]
 *
 * CYCLES (default 1,000) create/join cycles of two concurrent threads.  In
 * cycle c the threads run mixes 2c mod 8 and 2c+1 mod 8, so each mix meets
 * every other parity and the pattern repeats every 4 cycles:
 *
 *   0 small       16..256 B, 2 MiB in all, freed LIFO
 *   1 medium      1..64 KiB, 4 MiB in all, freed FIFO
 *   2 spans       256 KiB..2 MiB (vamalloc's span pool), 6 blocks, every page touched
 *   3 huge        2..6 MiB, 2 blocks, every page touched
 *   4 realloc     chains grown from 16 B to 4 MiB and shrunk back
 *   5 aligned     posix_memalign/aligned_alloc (16 B..256 KiB alignments), calloc (zeroes checked)
 *   6 hand-off    frees the blocks the previous hand-off thread (now exited)
 *                 left behind, and leaves 256 small/medium blocks for the next
 *   7 mixed       a random mix of all of the above sizes
 *
 * Every block carries a pattern checked before it is freed.  The sizes
 * repeat every 32 cycles, and both threads of a cycle wait for each other
 * at their peak (a barrier), so the warm-up sees the same peak demand as
 * the rest of the run: growth after it is not a rare peak but memory that
 * is not reused.  Snapshots (steady.h) at cycle 100 and at the end, both at
 * a multiple of 4 cycles with no thread running, after main has freed the
 * hand-off list: VmSize and VmRSS must grow by less than 1%, vamalloc's
 * mapping count by at most 2, /proc/self/maps by at most 4 lines.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "steady.h"

enum { WARMUP = 100, NMIX = 8, HANDOFF = 256 };

static atomic_int errors;
static char first_error[256];

static void record_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void record_error(const char *fmt, ...)
{
    if (atomic_fetch_add(&errors, 1) == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(first_error, sizeof first_error, fmt, ap);
        va_end(ap);
    }
}

typedef struct {
    unsigned char *p;
    size_t n;
    uint64_t seed;
} blk_t;

typedef struct {
    uint64_t rng;
    uint64_t seq;
    unsigned mix;
    long cycle;
    bool peaked;
} ctx_t;

/* Both threads of a cycle meet here when they hold the most memory, so the
 * cycle's peak is the sum of both peaks every time, not only when the
 * scheduler happens to line them up: the warm-up then sees the same peaks as
 * the rest of the run. */
static pthread_barrier_t peak_barrier;

static void at_peak(ctx_t *c)
{
    if (!c->peaked) {
        c->peaked = true;
        pthread_barrier_wait(&peak_barrier);
    }
}

static unsigned char *get(ctx_t *c, blk_t *b, size_t n)
{
    b->p = malloc(n);
    b->n = n;
    b->seed = c->seq++ * 0x9E3779B1u + c->cycle;
    if (!b->p) {
        record_error("mix %u: malloc(%zu) returned NULL", c->mix, n);
        return NULL;
    }
    steady_stamp(b->p, n, b->seed);
    return b->p;
}

static void put(ctx_t *c, blk_t *b)
{
    size_t bad;
    if (!b->p)
        return;
    bad = steady_verify(b->p, b->n, b->n, b->seed);
    if (bad != (size_t)-1)
        record_error("mix %u, cycle %ld: block %p (%zu bytes) changed at offset %zu", c->mix,
                     c->cycle, (void *)b->p, b->n, bad);
    free(b->p);
    b->p = NULL;
}

static size_t range(ctx_t *c, size_t lo, size_t hi)
{
    return lo + (size_t)(steady_rng(&c->rng) % (hi - lo + 1));
}

/* A size from the whole menu (mix 7). */
static size_t any_size(ctx_t *c)
{
    switch (steady_rng(&c->rng) % 8) {
    case 0: case 1: case 2: return range(c, 16, 256);
    case 3: case 4: return range(c, KiB, 64 * KiB);
    case 5: return range(c, 64 * KiB, 256 * KiB);
    case 6: return range(c, 256 * KiB, 2 * MiB);
    default: return range(c, 2 * MiB, 6 * MiB);
    }
}

static void mix_bulk(ctx_t *c, size_t lo, size_t hi, size_t total, size_t max_blocks, int lifo)
{
    blk_t *v = calloc(max_blocks, sizeof *v);
    size_t k = 0, sum = 0;
    if (!v) {
        record_error("mix %u: calloc of the block table failed", c->mix);
        return;
    }
    while (sum < total && k < max_blocks) {
        size_t n = lo == hi ? lo : range(c, lo, hi);
        if (c->mix == 7)
            n = any_size(c);
        if (!get(c, &v[k], n))
            break;
        sum += n;
        k++;
        /* now and then free a random earlier block: holes, not just a stack */
        if (k > 4 && steady_rng(&c->rng) % 4 == 0) {
            size_t j = (size_t)(steady_rng(&c->rng) % (k - 1));
            sum -= v[j].n;
            put(c, &v[j]);
            v[j] = v[k - 1];
            k--;
        }
    }
    at_peak(c);
    if (lifo)
        while (k > 0)
            put(c, &v[--k]);
    else
        for (size_t i = 0; i < k; i++)
            put(c, &v[i]);
    free(v);
}

static void mix_realloc(ctx_t *c)
{
    for (unsigned chain = 0; chain < 3; chain++) {
        blk_t b;
        size_t n = 16;
        if (!get(c, &b, n))
            return;
        /* grow to 4 MiB: the prefix must survive each move, then restamp */
        while (n < 4 * MiB) {
            size_t m = n * 2 + range(c, 0, n / 2);
            unsigned char *q;
            if (m > 4 * MiB)
                m = 4 * MiB;
            q = realloc(b.p, m);
            if (!q) {
                record_error("realloc(%zu -> %zu) returned NULL", n, m);
                put(c, &b);
                return;
            }
            size_t bad = steady_verify(q, n, b.n, b.seed);
            if (bad != (size_t)-1)
                record_error("realloc(%zu -> %zu) lost byte %zu", n, m, bad);
            b.p = q;
            b.n = m;
            steady_stamp(q, m, b.seed);
            n = m;
        }
        /* and shrink back in steps */
        while (n > 64) {
            size_t m = n / 3;
            unsigned char *q = realloc(b.p, m);
            if (!q) {
                record_error("realloc(%zu -> %zu) returned NULL", n, m);
                put(c, &b);
                return;
            }
            size_t bad = steady_verify(q, m, b.n, b.seed);
            if (bad != (size_t)-1)
                record_error("realloc(%zu -> %zu) lost byte %zu", n, m, bad);
            b.p = q;
            b.n = m;
            steady_stamp(q, m, b.seed);
            n = m;
        }
        put(c, &b);
    }
}

static void mix_aligned(ctx_t *c)
{
    blk_t v[96];
    unsigned k = 0;
    for (unsigned i = 0; i < 96; i++) {
        size_t align = (size_t)16 << (steady_rng(&c->rng) % 15); /* 16 B .. 256 KiB */
        size_t n = range(c, 1, 96 * KiB);
        void *p = NULL;
        if (i % 3 == 0) {
            if (posix_memalign(&p, align, n) != 0)
                p = NULL;
        } else if (i % 3 == 1) {
            p = aligned_alloc(align, (n + align - 1) & ~(align - 1));
            n = (n + align - 1) & ~(align - 1);
        } else {
            unsigned char *z = calloc(1, n);
            align = 16;
            if (z) {
                size_t step = n > 4096 ? 4093 : 1;
                for (size_t j = 0; j < n; j += step)
                    if (z[j]) {
                        record_error("calloc(1, %zu): byte %zu is 0x%02x, not zero", n, j, z[j]);
                        break;
                    }
            }
            p = z;
        }
        if (!p) {
            record_error("aligned/calloc allocation of %zu (align %zu) failed", n, align);
            continue;
        }
        if ((uintptr_t)p % align)
            record_error("%p is not aligned to %zu", p, align);
        v[k].p = p;
        v[k].n = n;
        v[k].seed = c->seq++ + (uint64_t)c->cycle * 977;
        steady_stamp(v[k].p, n, v[k].seed);
        k++;
    }
    at_peak(c);
    while (k > 0)
        put(c, &v[--k]);
}

/* Mix 6: blocks handed from one generation of threads to the next. */
static blk_t handoff[HANDOFF];
static pthread_mutex_t handoff_lock = PTHREAD_MUTEX_INITIALIZER;

static void mix_handoff(ctx_t *c)
{
    pthread_mutex_lock(&handoff_lock);
    for (unsigned i = 0; i < HANDOFF; i++)
        put(c, &handoff[i]);
    for (unsigned i = 0; i < HANDOFF; i++)
        get(c, &handoff[i], i % 16 == 15 ? range(c, 4 * KiB, 32 * KiB) : range(c, 16, 512));
    pthread_mutex_unlock(&handoff_lock);
    mix_bulk(c, 16, 2048, 512 * KiB, 4096, 1);
}

/* Before a snapshot: main frees what the last hand-off thread left (remote
 * frees into an exited thread's heap), so every snapshot sees an empty list
 * instead of 256 blocks scattered over a varying number of pages. */
static void drain_handoff(long cycle)
{
    ctx_t c = { .mix = 6, .cycle = cycle };
    pthread_mutex_lock(&handoff_lock);
    for (unsigned i = 0; i < HANDOFF; i++)
        put(&c, &handoff[i]);
    pthread_mutex_unlock(&handoff_lock);
}

static void *worker(void *arg)
{
    ctx_t *c = arg;
    switch (c->mix) {
    case 0: mix_bulk(c, 16, 256, 2 * MiB, 1 << 16, 1); break;
    case 1: mix_bulk(c, KiB, 64 * KiB, 4 * MiB, 4096, 0); break;
    case 2: mix_bulk(c, 256 * KiB, 2 * MiB, 64 * MiB, 6, 0); break;
    case 3: mix_bulk(c, 2 * MiB + 1, 6 * MiB, 64 * MiB, 2, 1); break;
    case 4: mix_realloc(c); break;
    case 5: mix_aligned(c); break;
    case 6: mix_handoff(c); break;
    default: mix_bulk(c, 0, 1, 24 * MiB, 64, 0); break;
    }
    at_peak(c);     /* mix 4 (whose peak is one huge block) and any early exit */
    return NULL;
}

int main(int argc, char **argv)
{
    int ai = steady_init(argc, argv);
    long cycles = ai < argc ? atol(argv[ai]) : 1000;
    steady_snap_t warm = { 0 }, end;
    double t0 = steady_now(), tw = t0;
    cycles = (cycles + 3) / 4 * 4;
    pthread_barrier_init(&peak_barrier, NULL, 2);
    if (cycles < 2 * WARMUP)
        cycles = 2 * WARMUP;
    for (long cy = 0; cy < cycles; cy++) {
        pthread_t th[2];
        ctx_t ctx[2];
        for (unsigned b = 0; b < 2; b++) {
            ctx[b].mix = (unsigned)((2 * cy + b) % NMIX);
            /* sizes repeat every 32 cycles (8 draws per pair of mixes) */
            ctx[b].rng = 0x2545F4914F6CDD1DULL ^ ((uint64_t)(cy % 32) * 2 + b + 1) * 0x9E3779B97F4A7C15ULL;
            ctx[b].peaked = false;
            ctx[b].seq = 1;
            ctx[b].cycle = cy;
            if (pthread_create(&th[b], NULL, worker, &ctx[b]) != 0)
                steady_die("pthread_create failed at cycle %ld", cy);
        }
        for (unsigned b = 0; b < 2; b++)
            pthread_join(th[b], NULL);
        steady_maybe_leak();
        if (steady_every > 0 && (cy + 1) % steady_every == 0 && (cy + 1) % 4 == 0) {
            steady_snap_t t;
            drain_handoff(cy);
            steady_snapshot(&t, "cycle");
        }
        if (cy + 1 == WARMUP) {
            drain_handoff(cy);
            steady_snapshot(&warm, "warm-up");
            tw = steady_now();
        }
    }
    drain_handoff(cycles);
    steady_snapshot(&end, "end");
    printf("# %ld cycles in %.1f s (warm-up %.1f s)\n", cycles, steady_now() - t0, tw - t0);
    if (atomic_load(&errors))
        steady_die("%d worker errors; first: %s", atomic_load(&errors), first_error);
    return steady_finish(steady_compare(&warm, &end, STEADY_ALL, "thread_mixes"), "thread_mixes");
}
