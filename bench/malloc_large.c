/* malloc_large: large-block churn, after mimalloc-bench's "malloc-large".
 *
 * Cases:
 *   malloc_large   a working set of 20 slots; each operation picks a slot
 *                  (deterministic PRNG), checks and frees the block in it and
 *                  mallocs a new one of 5..25 MiB (uniform, like
 *                  mimalloc-bench's 20 buffers; 1000 timed operations by
 *                  default, where mimalloc-bench runs 5000).
 *                  ns_per_op = wall ns per free+malloc+touch.
 *   large_mixed    the same over 64 slots with sizes 256 KiB..32 MiB,
 *                  log-uniform: both the span pool (up to 2 MiB) and the
 *                  huge path (above) are exercised.
 *
 * Every new block is touched on every page (mimalloc-bench value-initialises
 * the whole buffer; here one byte per 4 KiB page carries the page fault, the
 * TLB miss and a check value), plus a 16-byte pattern at both ends.  Before a
 * block is freed, both end patterns and every page byte are checked, so a
 * broken allocator (overlapping or recycled-while-live blocks) fails the run
 * instead of producing a number.
 *
 * Uses only the standard names; get an allocator with LD_PRELOAD.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"

#define MIB ((size_t)1 << 20)
#define KIB ((size_t)1 << 10)
#define PAGE 4096u
#define ENDS 16u
#define MAXSLOTS 64

typedef struct {
    unsigned char *p[MAXSLOTS];
    size_t n[MAXSLOTS];
    uint64_t seq[MAXSLOTS];
    unsigned slots;
    size_t min, max;
    int log_uniform;
    uint64_t rng;
    uint64_t bytes;         /* bytes allocated in the timed part */
} large_ws_t;

/* xorshift64*: deterministic, the same sequence under every allocator. */
static inline uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static size_t pick_size(large_ws_t *ws)
{
    uint64_t r = rng_next(&ws->rng);
    if (!ws->log_uniform)
        return ws->min + (size_t)(r % (ws->max - ws->min + 1));
    /* log-uniform: a power-of-two octave, then uniform inside it */
    unsigned lo = 63 - (unsigned)__builtin_clzll(ws->min);
    unsigned hi = 63 - (unsigned)__builtin_clzll(ws->max);
    unsigned oct = lo + (unsigned)((r >> 32) % (hi - lo));
    size_t base = (size_t)1 << oct;
    size_t n = base + (size_t)((r & 0xffffffffu) % base);
    return n < ws->min ? ws->min : n > ws->max ? ws->max : n;
}

static inline uint8_t tag_of(uint64_t seq, size_t i)
{
    return (uint8_t)(seq * 0x9Du + i * 7u + 1u);
}

static void touch(unsigned char *p, size_t n, uint64_t seq)
{
    for (size_t off = 0; off < n; off += PAGE)
        p[off] = tag_of(seq, off / PAGE);
    for (unsigned i = 0; i < ENDS; i++) {
        p[i] = tag_of(seq, 1000003u + i);
        p[n - 1 - i] = (uint8_t)~tag_of(seq, i);
    }
}

static void check(const char *name, const unsigned char *p, size_t n, uint64_t seq)
{
    for (unsigned i = 0; i < ENDS; i++) {
        uint8_t head = tag_of(seq, 1000003u + i), tail = (uint8_t)~tag_of(seq, i);
        if (p[i] != head)
            bench_fail("%s: block #%llu at %p (%zu bytes): head byte %u is 0x%02x, expected 0x%02x",
                       name, (unsigned long long)seq, (const void *)p, n, i, p[i], head);
        if (p[n - 1 - i] != tail)
            bench_fail("%s: block #%llu at %p (%zu bytes): tail byte %u is 0x%02x, expected 0x%02x",
                       name, (unsigned long long)seq, (const void *)p, n, i, p[n - 1 - i], tail);
    }
    for (size_t off = PAGE; off + ENDS < n; off += PAGE)
        if (p[off] != tag_of(seq, off / PAGE))
            bench_fail("%s: block #%llu at %p (%zu bytes): byte at %zu is 0x%02x, expected 0x%02x",
                       name, (unsigned long long)seq, (const void *)p, n, off, p[off],
                       tag_of(seq, off / PAGE));
}

static void fill_slot(large_ws_t *ws, unsigned s, uint64_t seq, const char *name)
{
    size_t n = pick_size(ws);
    unsigned char *p = malloc(n);
    if (!p)
        bench_fail("%s: malloc(%zu) returned NULL", name, n);
    touch(p, n, seq);
    ws->p[s] = p;
    ws->n[s] = n;
    ws->seq[s] = seq;
    ws->bytes += n;
}

static void churn(large_ws_t *ws, uint64_t from, uint64_t to, const char *name)
{
    for (uint64_t i = from; i < to; i++) {
        unsigned s = (unsigned)(rng_next(&ws->rng) % ws->slots);
        check(name, ws->p[s], ws->n[s], ws->seq[s]);
        free(ws->p[s]);
        fill_slot(ws, s, i, name);
    }
}

static void large_case(const bench_opts_t *o, const char *name, unsigned slots, size_t min,
                       size_t max, int log_uniform, uint64_t dflt, uint64_t smoke)
{
    uint64_t n = bench_iters(o, dflt, smoke), w = bench_warmup(o, slots * 2u, slots / 2u);
    large_ws_t ws = { .slots = slots, .min = min, .max = max, .log_uniform = log_uniform,
                      .rng = 0x243F6A8885A308D3ULL };
    double t0, t1;
    char extra[96];

    for (unsigned s = 0; s < slots; s++)
        fill_slot(&ws, s, s, name);
    churn(&ws, slots, slots + w, name);
    ws.bytes = 0;
    t0 = bench_now();
    churn(&ws, slots + w, slots + w + n, name);
    t1 = bench_now();
    for (unsigned s = 0; s < slots; s++) {
        check(name, ws.p[s], ws.n[s], ws.seq[s]);
        free(ws.p[s]);
    }
    snprintf(extra, sizeof extra, "unit=free+malloc+touch slots=%u mib_per_op=%.2f", slots,
             n ? (double)ws.bytes / (double)n / (double)MIB : 0.0);
    bench_result(name, n, t1 - t0, extra);
}

static void run_malloc_large(const bench_opts_t *o, const char *name)
{
    large_case(o, name, 20, 5 * MIB, 25 * MIB, 0, 1000, 40);
}

static void run_large_mixed(const bench_opts_t *o, const char *name)
{
    large_case(o, name, 64, 256 * KIB, 32 * MIB, 1, 2000, 100);
}

static const bench_case_t cases[] = {
    { "malloc_large", "20 slots, free+malloc 5..25 MiB, touch every page (mimalloc-bench)",
      run_malloc_large },
    { "large_mixed", "64 slots, free+malloc 256 KiB..32 MiB log-uniform, touch every page",
      run_large_mixed },
};

int main(int argc, char **argv)
{
    return bench_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
