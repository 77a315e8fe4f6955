/* xmalloc: producer/consumer across threads, after Lever and Boreham's
 * xmalloc-test.
 *
 * Half the threads (at least one) produce: they malloc blocks of 16..512
 * bytes (log-uniform), stamp them and push them in batches of 128 onto a
 * shared mutex-protected queue.  The other half consume: they pop batches,
 * check every block and free it.  Nearly every free is thus a remote free.
 * The batch records themselves are malloc'd by producers and freed by
 * consumers too.  At most 256 batches wait in the queue; a producer that
 * finds it full waits.
 *
 * ns_per_op = wall ns per block (malloc on one thread + free on another).
 */
#include "workload.h"

#define BATCH 128
#define MAXQ 256

typedef struct batch {
    struct batch *next;
    void *p[BATCH];
} batch_t;

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t nonempty, nonfull;
    batch_t *head, *tail;
    unsigned len;
    int producers_left;
    const char *name;
} queue_t;

typedef struct {
    queue_t *q;
    uint64_t batches;       /* producer: batches to make */
    uint64_t rng;
    uint64_t seq;
    uint64_t freed;         /* consumer: blocks freed */
} xarg_t;

static void *producer(void *v)
{
    xarg_t *a = v;
    queue_t *q = a->q;
    for (uint64_t b = 0; b < a->batches; b++) {
        batch_t *bt = wl_malloc(q->name, sizeof *bt);
        bt->next = NULL;
        for (unsigned j = 0; j < BATCH; j++) {
            size_t n = bench_rand_log(&a->rng, BENCH_OBJ_MIN, 512);
            bt->p[j] = wl_malloc(q->name, n);
            bench_obj_stamp(bt->p[j], n, a->seq++);
        }
        pthread_mutex_lock(&q->lock);
        while (q->len >= MAXQ)
            pthread_cond_wait(&q->nonfull, &q->lock);
        if (q->tail) q->tail->next = bt;
        else q->head = bt;
        q->tail = bt;
        q->len++;
        pthread_cond_signal(&q->nonempty);
        pthread_mutex_unlock(&q->lock);
    }
    pthread_mutex_lock(&q->lock);
    q->producers_left--;
    pthread_cond_broadcast(&q->nonempty);
    pthread_mutex_unlock(&q->lock);
    return NULL;
}

static void *consumer(void *v)
{
    xarg_t *a = v;
    queue_t *q = a->q;
    for (;;) {
        batch_t *bt;
        pthread_mutex_lock(&q->lock);
        while (!q->head && q->producers_left > 0)
            pthread_cond_wait(&q->nonempty, &q->lock);
        bt = q->head;
        if (!bt) {
            pthread_mutex_unlock(&q->lock);
            return NULL;
        }
        q->head = bt->next;
        if (!q->head) q->tail = NULL;
        q->len--;
        pthread_cond_signal(&q->nonfull);
        pthread_mutex_unlock(&q->lock);
        for (unsigned j = 0; j < BATCH; j++) {
            bench_obj_check(q->name, bt->p[j]);
            free(bt->p[j]);
        }
        free(bt);
        a->freed += BATCH;
    }
}

static void *role(void *v)
{
    xarg_t *a = v;
    return a->batches ? producer(v) : consumer(v);
}

static void run(const bench_opts_t *o, const char *name)
{
    int t = bench_threads(o, 2), np = t / 2;
    uint64_t blocks = bench_iters(o, 4000000, 100000), freed = 0;
    queue_t q = { .name = name, .producers_left = np };
    xarg_t a[64];
    double t0, t1;
    char extra[80];

    pthread_mutex_init(&q.lock, NULL);
    pthread_cond_init(&q.nonempty, NULL);
    pthread_cond_init(&q.nonfull, NULL);
    memset(a, 0, sizeof a);
    for (int i = 0; i < t; i++) {
        a[i].q = &q;
        a[i].rng = bench_seed((uint64_t)i);
        a[i].seq = (uint64_t)i << 32;
        a[i].batches = i < np ? (blocks / BATCH + (uint64_t)np - 1) / (uint64_t)np : 0;
    }
    t0 = bench_now();
    wl_run_threads(name, t, role, a, sizeof a[0]);
    t1 = bench_now();
    for (int i = np; i < t; i++) freed += a[i].freed;
    if (freed != a[0].batches * (uint64_t)np * BATCH)
        bench_fail("%s: %llu blocks freed, %llu made", name, (unsigned long long)freed,
                   (unsigned long long)(a[0].batches * (uint64_t)np * BATCH));
    snprintf(extra, sizeof extra, "unit=block threads=%d producers=%d", t, np);
    bench_result(name, freed, t1 - t0, extra);
}

WL_MAIN("xmalloc", "producers malloc, consumers free through a shared queue (remote frees)", run)
