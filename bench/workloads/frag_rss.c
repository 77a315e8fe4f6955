/* frag_rss: fragmentation and resident memory.
 *
 * Phase 1  malloc mixed sizes, 16 B..64 KiB (log-uniform), until about
 *          200 MiB are live; every block is written in full.
 * Phase 2  free 90% of the blocks, chosen at random.
 * Phase 3  malloc about the same amount again with another size mix
 *          (three in four 24..512 B, the rest 4..128 KiB), written in full.
 * Phase 4  free everything.
 * The resident set (/proc/self/statm) after each phase goes on the RESULT
 * line (rss1_kib .. rss4_kib, with live_kib, the bytes the program holds,
 * after phases 1 and 3): an allocator that cannot reuse the holes phase 2
 * left, or keeps freed memory resident, shows it here.  bench/run.py also
 * records the peak RSS of the process.
 *
 * Runs on one thread; --threads is ignored.
 * ns_per_op = wall ns per malloc or free, over the four phases.
 */
#include "workload.h"

#define MIB ((size_t)1 << 20)

typedef struct {
    unsigned char *p;
    uint32_t n;
    uint64_t seq;
} blk_t;

static void fill(blk_t *b)
{
    memset(b->p, (int)(b->seq * 37 + 11) & 0xff, b->n);
    bench_stamp(b->p, b->n, b->seq);
}

static void check(const char *name, const blk_t *b)
{
    unsigned char v = (unsigned char)(b->seq * 37 + 11);
    bench_check(name, b->p, b->n, b->seq);
    for (size_t i = 8; i + 1 < b->n; i += 509)
        if (b->p[i] != v)
            bench_fail("%s: block #%llu at %p (%u bytes): byte %zu is 0x%02x, expected 0x%02x",
                       name, (unsigned long long)b->seq, (void *)b->p, b->n, i, b->p[i], v);
}

static void run(const bench_opts_t *o, const char *name)
{
    size_t total = (size_t)bench_scaled(o, 200, 24) * MIB, live = 0, live1, live3;
    size_t cap = total / 512 + 4096, nb = 0, nb1;      /* blocks average ~15 KiB */
    blk_t *b = malloc(cap * sizeof *b);
    uint64_t rng = bench_seed(700), seq = 0, ops = 0;
    uint64_t rss0 = bench_rss_kib(), rss[4];
    double t0, t1;
    char extra[320];

    if (!b) bench_fail("%s: no memory", name);
    t0 = bench_now();
    /* phase 1 */
    while (live < total && nb < cap) {
        blk_t *x = &b[nb++];
        x->n = (uint32_t)bench_rand_log(&rng, 16, 64 * 1024);
        x->seq = seq++;
        x->p = wl_malloc(name, x->n);
        fill(x);
        live += x->n;
        ops++;
    }
    live1 = live;
    nb1 = nb;
    rss[0] = bench_rss_kib();
    /* phase 2: free 90% at random (shuffle, then free the first 90%) */
    for (size_t i = nb; i-- > 1;) {
        size_t j = (size_t)(bench_rand(&rng) % (i + 1));
        blk_t tmp = b[i];
        b[i] = b[j];
        b[j] = tmp;
    }
    {
        size_t nfree = nb / 10 * 9, k = 0;
        for (size_t i = 0; i < nfree; i++) {
            check(name, &b[i]);
            free(b[i].p);
            live -= b[i].n;
            ops++;
        }
        for (size_t i = nfree; i < nb; i++) b[k++] = b[i];
        nb = k;
    }
    rss[1] = bench_rss_kib();
    /* phase 3: about the same amount again, another size mix */
    {
        size_t goal = live + live1;
        while (live < goal && nb < cap) {
            blk_t *x = &b[nb++];
            uint64_t r = bench_rand(&rng);
            x->n = (uint32_t)((r & 3) ? bench_rand_range(&rng, 24, 512)
                                      : bench_rand_log(&rng, 4096, 128 * 1024));
            x->seq = seq++;
            x->p = wl_malloc(name, x->n);
            fill(x);
            live += x->n;
            ops++;
        }
    }
    live3 = live;
    rss[2] = bench_rss_kib();
    /* phase 4 */
    for (size_t i = 0; i < nb; i++) {
        check(name, &b[i]);
        free(b[i].p);
        ops++;
    }
    rss[3] = bench_rss_kib();
    t1 = bench_now();
    free(b);
    snprintf(extra, sizeof extra,
             "unit=malloc|free threads=1 blocks1=%zu rss0_kib=%llu rss1_kib=%llu rss2_kib=%llu "
             "rss3_kib=%llu rss4_kib=%llu live1_kib=%zu live3_kib=%zu",
             nb1, (unsigned long long)rss0, (unsigned long long)rss[0],
             (unsigned long long)rss[1], (unsigned long long)rss[2], (unsigned long long)rss[3],
             live1 / 1024, live3 / 1024);
    bench_result(name, ops, t1 - t0, extra);
}

WL_MAIN("frag_rss", "200 MiB of 16 B..64 KiB, free 90% at random, refill with another mix; RSS",
        run)
