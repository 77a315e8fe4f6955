/* steady: mixed large-block churn reaches a steady state.
 *
 *   large_churn [--require-vamalloc] [SECONDS]
 *
 * SECONDS: 10 by default (CI's short mode), 60 with STEADY_FULL=1 in the
 * environment (`STEADY_FULL=1 meson test -C build --suite steady`).
 *
 * 48 slots; each operation picks a slot at random (so lifetimes are random,
 * geometric) and
 *   - if it is empty, mallocs 256 KiB..32 MiB (log-uniform; one in 16 by
 *     posix_memalign with a 64 KiB..2 MiB alignment), touching every page;
 *   - if it holds a block, checks it and frees it, or (one in 6) reallocs it
 *     to a new size, checking the kept prefix.
 * Live bytes are capped per kind: blocks up to 2 MiB (vamalloc's span pool)
 * at 12 MiB, larger blocks (their own mappings) at 128 MiB; a new block that
 * would pass its cap first frees random blocks of its kind.  The caps bind
 * most of the time, so the peak demand is reached within the warm-up
 * instead of growing slowly with the extremes of a random walk.
 *
 * Every second all blocks are checked and freed (a drain).  Snapshots
 * (steady.h) are taken at the first drain after a 2 s warm-up and at the
 * last drain: VmSize and VmRSS must grow by less than 1%, vamalloc's
 * mapping count by at most 2, /proc/self/maps by at most 4 lines.  A chunk
 * or mapping that is lost once per second (a drain or a purge that forgets
 * one) grows VmSize by 4 MiB a second and fails the test.
 */
#include "steady.h"

enum { SLOTS = 48 };
#define SPAN_MAX (2 * MiB)
#define SPAN_CAP (12 * MiB)
#define HUGE_CAP (128 * MiB)

typedef struct {
    unsigned char *p;
    size_t n;          /* bytes stamped */
    uint64_t seed;
} slot_t;

static slot_t slot[SLOTS];
static size_t live[2];      /* [0]: blocks <= 2 MiB, [1]: larger */
static uint64_t rng = 0x9E3779B97F4A7C15ULL;
static uint64_t seq = 1;
static uint64_t n_alloc, n_free, n_realloc, n_aligned;

static unsigned kind_of(size_t n) { return n > SPAN_MAX; }

static size_t pick_size(void)
{
    uint64_t r = steady_rng(&rng);
    unsigned oct = 18 + (unsigned)((r >> 32) % 7);       /* 256 KiB .. 16 MiB octaves */
    size_t base = (size_t)1 << oct;
    return base + (size_t)((r & 0xffffffffu) % base);     /* up to 32 MiB */
}

static void check_slot(unsigned s, size_t prefix)
{
    size_t bad = steady_verify(slot[s].p, prefix, slot[s].n, slot[s].seed);
    if (bad != (size_t)-1)
        steady_die("slot %u: block %p (%zu bytes, seed %llu) changed at offset %zu: 0x%02x, "
                   "expected 0x%02x", s, (void *)slot[s].p, slot[s].n,
                   (unsigned long long)slot[s].seed, bad, slot[s].p[bad],
                   steady_tag(slot[s].seed, bad));
}

static void free_slot(unsigned s)
{
    check_slot(s, slot[s].n);
    free(slot[s].p);
    live[kind_of(slot[s].n)] -= slot[s].n;
    slot[s].p = NULL;
    n_free++;
}

/* Free random blocks of kind k until `need` more bytes fit under its cap. */
static void make_room(unsigned k, size_t need)
{
    size_t cap = k ? HUGE_CAP : SPAN_CAP;
    while (live[k] + need > cap) {
        unsigned s = (unsigned)(steady_rng(&rng) % SLOTS), tries = 0;
        while ((!slot[s].p || kind_of(slot[s].n) != k) && tries++ < SLOTS)
            s = (s + 1) % SLOTS;
        if (!slot[s].p || kind_of(slot[s].n) != k)
            break;
        free_slot(s);
    }
}

static void alloc_slot(unsigned s)
{
    size_t n = pick_size();
    unsigned k = kind_of(n);
    unsigned char *p = NULL;
    make_room(k, n);
    if (steady_rng(&rng) % 16 == 0) {
        size_t align = (size_t)64 * KiB << (steady_rng(&rng) % 6);   /* 64 KiB .. 2 MiB */
        void *q;
        if (posix_memalign(&q, align, n) == 0)
            p = q;
        if (p && (uintptr_t)p % align)
            steady_die("posix_memalign(%zu, %zu) = %p: not aligned", align, n, (void *)p);
        n_aligned++;
    } else {
        p = malloc(n);
    }
    if (!p)
        steady_die("allocation of %zu bytes failed", n);
    slot[s].p = p;
    slot[s].n = n;
    slot[s].seed = seq++;
    steady_stamp(p, n, slot[s].seed);
    live[k] += n;
    n_alloc++;
}

static void realloc_slot(unsigned s)
{
    size_t old = slot[s].n, n = pick_size();
    unsigned k = kind_of(n);
    unsigned char *q;
    live[kind_of(old)] -= old;
    if (live[k] + n > (k ? HUGE_CAP : SPAN_CAP)) {
        live[kind_of(old)] += old;
        free_slot(s);
        return;
    }
    q = realloc(slot[s].p, n);
    if (!q)
        steady_die("realloc(%p, %zu) failed", (void *)slot[s].p, n);
    slot[s].p = q;
    check_slot(s, old < n ? old : n);
    slot[s].n = n;
    slot[s].seed = seq++;
    steady_stamp(q, n, slot[s].seed);
    live[k] += n;
    n_realloc++;
}

static void drain(void)
{
    for (unsigned s = 0; s < SLOTS; s++)
        if (slot[s].p)
            free_slot(s);
    if (live[0] || live[1])
        steady_die("bookkeeping: %zu/%zu bytes live after a drain", live[0], live[1]);
}

int main(int argc, char **argv)
{
    int ai = steady_init(argc, argv);
    const char *full = getenv("STEADY_FULL");
    double secs = ai < argc ? atof(argv[ai]) : full && *full == '1' ? 60.0 : 10.0;
    const double warmup = 2.0;
    double t0 = steady_now(), next_drain = t0 + 1.0, now;
    steady_snap_t warm = { 0 }, end;
    bool have_warm = false;
    unsigned drains = 0;
    if (secs < 2 * warmup)
        secs = 2 * warmup;
    for (;;) {
        for (unsigned i = 0; i < 16; i++) {
            unsigned s = (unsigned)(steady_rng(&rng) % SLOTS);
            if (!slot[s].p)
                alloc_slot(s);
            else if (steady_rng(&rng) % 6 == 0)
                realloc_slot(s);
            else
                free_slot(s);
        }
        now = steady_now();
        if (now < next_drain)
            continue;
        drain();
        drains++;
        steady_maybe_leak();
        next_drain = now + 1.0;
        if (now - t0 >= secs) {
            steady_snapshot(&end, "end");
            break;
        }
        if (!have_warm && now - t0 >= warmup) {
            steady_snapshot(&warm, "warm-up");
            have_warm = true;
        } else if (steady_every > 0 && drains % (unsigned)steady_every == 0) {
            steady_snap_t t;
            steady_snapshot(&t, "drain");
        }
    }
    printf("# %.1f s, %u drains: %llu mallocs (%llu aligned), %llu frees, %llu reallocs\n",
           steady_now() - t0, drains, (unsigned long long)n_alloc, (unsigned long long)n_aligned,
           (unsigned long long)n_free, (unsigned long long)n_realloc);
    return steady_finish(steady_compare(&warm, &end, STEADY_ALL, "large_churn"), "large_churn");
}
