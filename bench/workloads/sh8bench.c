/* sh8bench: sh6bench's batches with cross-thread frees, in the style of
 * MicroQuill's sh8bench.
 *
 * Every thread repeats: malloc a batch of 2000 blocks of 8..1000 bytes;
 * keep the even ones and post the odd ones (as one message) to the next
 * thread's mailbox; free the blocks other threads posted to it; then free
 * its own even blocks back to front.  Half of all frees are remote.
 * A thread waits while its neighbour still has 8 of its messages unread.
 *
 * ns_per_op = wall ns per malloc+free, over all threads.
 */
#include "workload.h"

#define BATCH 2000
#define HALF (BATCH / 2)
#define MINSZ 16
#define MAXSZ 1000
#define MAXMSG 8

typedef struct msg {
    struct msg *next;
    void *p[HALF];
} msg_t;

typedef struct {
    _Alignas(64) pthread_mutex_t lock;
    msg_t *head;
    unsigned len;
    uint64_t freed;
} mbox_t;

typedef struct {
    uint64_t rounds;
    unsigned id, nthreads;
    mbox_t *boxes;
    _Atomic int *done;
    const char *name;
    char pad[64];
} s8arg_t;

static unsigned drain(s8arg_t *a)
{
    mbox_t *me = &a->boxes[a->id];
    msg_t *m;
    unsigned got = 0;
    pthread_mutex_lock(&me->lock);
    m = me->head;
    me->head = NULL;
    me->len = 0;
    pthread_mutex_unlock(&me->lock);
    while (m) {
        msg_t *next = m->next;
        for (unsigned i = 0; i < HALF; i++) {
            bench_obj_check(a->name, m->p[i]);
            free(m->p[i]);
        }
        free(m);
        me->freed += HALF;
        got++;
        m = next;
    }
    return got;
}

static void *worker(void *v)
{
    s8arg_t *a = v;
    void *mine[HALF];
    uint64_t seq = (uint64_t)a->id << 32;
    mbox_t *next = &a->boxes[(a->id + 1) % a->nthreads];
    for (uint64_t r = 0; r < a->rounds; r++) {
        size_t sz = MINSZ + (size_t)(r * 37 % (MAXSZ - MINSZ));
        msg_t *m = wl_malloc(a->name, sizeof *m);
        for (unsigned i = 0; i < BATCH; i++) {
            void *p = wl_malloc(a->name, sz);
            bench_obj_stamp(p, sz, seq++);
            if (i & 1) m->p[i / 2] = p;
            else mine[i / 2] = p;
            sz += 17;
            if (sz > MAXSZ) sz = MINSZ + (sz - MAXSZ);
        }
        for (;;) {
            unsigned spins = 0;
            pthread_mutex_lock(&next->lock);
            if (next->len < MAXMSG) {
                m->next = next->head;
                next->head = m;
                next->len++;
                pthread_mutex_unlock(&next->lock);
                break;
            }
            pthread_mutex_unlock(&next->lock);
            if (!drain(a)) wl_backoff(&spins);
        }
        drain(a);
        for (unsigned i = HALF; i-- > 0;) {
            bench_obj_check(a->name, mine[i]);
            free(mine[i]);
        }
    }
    atomic_fetch_add(a->done, 1);
    /* keep draining until every thread has posted its last message */
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
    uint64_t rounds = bench_iters(o, 800, 40), freed = 0;
    _Atomic int done = 0;
    mbox_t *boxes = calloc((size_t)t, sizeof *boxes);
    s8arg_t a[64];
    double t0, t1;
    char extra[64];

    if (!boxes) bench_fail("%s: no memory", name);
    for (int i = 0; i < t; i++) {
        pthread_mutex_init(&boxes[i].lock, NULL);
        a[i] = (s8arg_t){ .rounds = rounds, .id = (unsigned)i, .nthreads = (unsigned)t,
                          .boxes = boxes, .done = &done, .name = name };
    }
    t0 = bench_now();
    wl_run_threads(name, t, worker, a, sizeof a[0]);
    t1 = bench_now();
    for (int i = 0; i < t; i++) freed += boxes[i].freed;
    if (freed != rounds * HALF * (uint64_t)t)
        bench_fail("%s: %llu remote blocks freed, %llu posted", name, (unsigned long long)freed,
                   (unsigned long long)(rounds * HALF * (uint64_t)t));
    free(boxes);
    snprintf(extra, sizeof extra, "unit=malloc+free threads=%d", t);
    bench_result(name, rounds * BATCH * (uint64_t)t, t1 - t0, extra);
}

WL_MAIN("sh8bench", "sh6bench-style batches, half of each freed by the next thread", run)
