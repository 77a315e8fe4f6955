/* realloc_growth: many strings and vectors growing by realloc at once.
 *
 * Every thread keeps 512 growing buffers.  Each step picks one at random
 * and appends 1..64 bytes to it:
 *   - even buffers are strings: realloc to exactly the new length + 1
 *     (many small reallocs, as a naive string builder does);
 *   - odd buffers are vectors: capacity doubles (x1.5 for some) when full.
 * A buffer that reaches its target length (log-uniform, 64 B..256 KiB) is
 * checked in full and freed, and a new one starts in its place.  Every
 * appended byte is a function of the buffer and its offset; after each
 * realloc the first and the last byte written are checked, and a buffer is
 * checked completely before it is freed.
 *
 * ns_per_op = wall ns per append step (not every step reallocs).
 */
#include "workload.h"

#define BUFS 512

typedef struct {
    unsigned char *p;
    size_t len, cap, target;
    uint64_t id;
} gbuf_t;

typedef struct {
    uint64_t steps, rng, next_id, reallocs;
    const char *name;
    char pad[64];
} rgarg_t;

static inline unsigned char byte_at(uint64_t id, size_t off)
{
    return (unsigned char)(id * 131 + off * 7 + (off >> 8));
}

static void start(rgarg_t *a, gbuf_t *b)
{
    b->id = a->next_id++;
    b->len = 0;
    b->cap = 16;
    b->target = bench_rand_log(&a->rng, 64, 256 * 1024);
    b->p = wl_malloc(a->name, b->cap);
}

static void check_all(rgarg_t *a, const gbuf_t *b)
{
    for (size_t i = 0; i < b->len; i++)
        if (b->p[i] != byte_at(b->id, i))
            bench_fail("%s: buffer #%llu at %p (length %zu): byte %zu is 0x%02x, expected 0x%02x",
                       a->name, (unsigned long long)b->id, (void *)b->p, b->len, i, b->p[i],
                       byte_at(b->id, i));
}

static void append(rgarg_t *a, gbuf_t *b, unsigned slot, size_t k)
{
    size_t need = b->len + k + 1;
    if (need > b->cap) {
        size_t cap;
        if ((slot & 1) == 0) cap = need;                          /* string: exact */
        else if (slot & 2) cap = b->cap + b->cap / 2 > need ? b->cap + b->cap / 2 : need;
        else cap = b->cap * 2 > need ? b->cap * 2 : need;         /* vector: double */
        b->p = realloc(b->p, cap);
        if (!b->p) bench_fail("%s: realloc(%zu) returned NULL", a->name, cap);
        b->cap = cap;
        a->reallocs++;
        if (b->len && (b->p[0] != byte_at(b->id, 0) ||
                       b->p[b->len - 1] != byte_at(b->id, b->len - 1)))
            bench_fail("%s: buffer #%llu lost its data in realloc to %zu bytes (at %p)",
                       a->name, (unsigned long long)b->id, cap, (void *)b->p);
    }
    for (size_t i = 0; i < k; i++)
        b->p[b->len + i] = byte_at(b->id, b->len + i);
    b->len += k;
    b->p[b->len] = 0;
}

static void *worker(void *v)
{
    rgarg_t *a = v;
    gbuf_t *bufs = wl_malloc(a->name, BUFS * sizeof *bufs);
    for (unsigned s = 0; s < BUFS; s++)
        start(a, &bufs[s]);
    for (uint64_t i = 0; i < a->steps; i++) {
        uint64_t r = bench_rand(&a->rng);
        unsigned s = (unsigned)(r % BUFS);
        gbuf_t *b = &bufs[s];
        append(a, b, s, 1 + (size_t)((r >> 32) % 64));
        if (b->len >= b->target) {
            check_all(a, b);
            free(b->p);
            start(a, b);
        }
    }
    for (unsigned s = 0; s < BUFS; s++) {
        check_all(a, &bufs[s]);
        free(bufs[s].p);
    }
    free(bufs);
    return NULL;
}

static void run(const bench_opts_t *o, const char *name)
{
    int t = bench_threads(o, 1);
    uint64_t steps = bench_iters(o, 2000000, 30000), reallocs = 0;
    rgarg_t a[64];
    double t0, t1;
    char extra[96];

    for (int i = 0; i < t; i++)
        a[i] = (rgarg_t){ .steps = steps, .rng = bench_seed((uint64_t)i + 500),
                          .next_id = (uint64_t)i << 40, .name = name };
    t0 = bench_now();
    wl_run_threads(name, t, worker, a, sizeof a[0]);
    t1 = bench_now();
    for (int i = 0; i < t; i++) reallocs += a[i].reallocs;
    snprintf(extra, sizeof extra, "unit=append threads=%d reallocs=%llu", t,
             (unsigned long long)reallocs);
    bench_result(name, steps * (uint64_t)t, t1 - t0, extra);
}

WL_MAIN("realloc_growth", "512 strings/vectors per thread growing by realloc to 64 B..256 KiB",
        run)
