/* steady: thread create/exit cycles keep VmSize and the mapping count flat.
 *
 *   thread_cycles [--require-vamalloc] [CYCLES]
 *
 * CYCLES (default 10,000) short-lived threads, two at a time; each mallocs
 * 1 MiB in 16..512 B blocks, fills them, checks and frees them.
 * Snapshots (see steady.h) after 500 cycles and at the end, with no thread
 * running: VmSize must grow by less than 1%, vamalloc's mapping count by at
 * most 2 and /proc/self/maps by at most 4 lines.  (RSS over the same kind
 * of churn is tests/api/test_threads.c's job; it is printed here.)
 *
 * What it catches: a heap, page or chunk that an exiting thread takes with
 * it (never reused by the next thread), metadata that only grows, a
 * per-thread mapping that is never unmapped.  Leaking one 4 MiB chunk per
 * cycle grows VmSize by 38 GiB over the run.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "steady.h"

enum { BATCH = 2, WARMUP = 500 };

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

struct node {
    struct node *next;
    size_t n;
    uint64_t seed;
};

static void *worker(void *arg)
{
    uint64_t id = (uint64_t)(uintptr_t)arg;
    uint64_t s = 0x9e3779b97f4a7c15ULL * (id + 1);
    struct node *head = NULL;
    size_t total = 0;
    steady_maybe_leak();
    while (total < MiB) {
        size_t n = 16 + (size_t)(steady_rng(&s) % 497);
        struct node *b = malloc(n < sizeof *b ? sizeof *b : n);
        if (!b) {
            record_error("thread %llu: malloc(%zu) returned NULL", (unsigned long long)id, n);
            break;
        }
        n = n < sizeof *b ? sizeof *b : n;
        memset(b, (int)(uint8_t)(id + total), n);
        b->next = head;
        b->n = n;
        b->seed = id + total;
        head = b;
        total += n;
    }
    while (head) {
        struct node *next = head->next;
        size_t n = head->n;
        uint8_t c = (uint8_t)head->seed;
        /* the node header was overwritten; the rest keeps the fill byte */
        const unsigned char *p = (const unsigned char *)head;
        if (n > sizeof *head && (p[sizeof *head] != c || p[n - 1] != c || p[n / 2 + 12] != c))
            record_error("thread %llu: block %p (%zu bytes) changed while live",
                         (unsigned long long)id, (const void *)p, n);
        free(head);
        head = next;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int ai = steady_init(argc, argv);
    long cycles = ai < argc ? atol(argv[ai]) : 10000;
    steady_snap_t warm = { 0 }, end;
    double t0 = steady_now(), tw = t0;
    if (cycles < 2 * WARMUP)
        cycles = 2 * WARMUP;
    for (long c = 0; c < cycles; c += BATCH) {
        pthread_t th[BATCH];
        for (unsigned b = 0; b < BATCH; b++)
            if (pthread_create(&th[b], NULL, worker, (void *)(uintptr_t)(c + b)) != 0)
                steady_die("pthread_create failed at cycle %ld", c + b);
        for (unsigned b = 0; b < BATCH; b++)
            pthread_join(th[b], NULL);
        if (steady_every > 0 && (c + BATCH) % steady_every == 0) {
            steady_snap_t t;
            steady_snapshot(&t, "cycle");
        }
        if (c + BATCH == WARMUP) {
            steady_snapshot(&warm, "warm-up");
            tw = steady_now();
        }
    }
    steady_snapshot(&end, "end");
    printf("# %ld cycles in %.1f s (warm-up %.1f s); RSS %ld -> %ld KiB (not checked here)\n",
           cycles, steady_now() - t0, tw - t0, warm.rss_kib, end.rss_kib);
    if (atomic_load(&errors))
        steady_die("%d worker errors; first: %s", atomic_load(&errors), first_error);
    return steady_finish(steady_compare(&warm, &end, STEADY_VMSIZE | STEADY_MAPS, "thread_cycles"),
                         "thread_cycles");
}
