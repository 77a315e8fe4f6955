/* workload.h: what the workloads in bench/workloads/ share beyond bench.h.
 *
 * Each workload is one program with one case named after it.  It prints
 *
 *   RESULT name=<workload> ns_per_op=<x> ops=<n> secs=<s> threads=<t> ...
 *
 * where an "op" is the workload's unit (say, one free+malloc), and checks
 * every block it frees: a broken allocator fails the run (exit 1).
 * bench/run.py times the whole process and reads its peak RSS; ns_per_op is
 * the workload's own view of its timed part.
 */
#ifndef VAM_WORKLOAD_H
#define VAM_WORKLOAD_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "../bench.h"

typedef void *(*wl_thread_fn)(void *);

/* Start n threads on fn(args + i * argsize) and join them all. */
static inline void wl_run_threads(const char *name, int n, wl_thread_fn fn, void *args,
                                  size_t argsize)
{
    pthread_t tid[64];
    if (n > 64) bench_fail("%s: at most 64 threads", name);
    for (int i = 0; i < n; i++)
        if (pthread_create(&tid[i], NULL, fn, (char *)args + (size_t)i * argsize))
            bench_fail("%s: pthread_create failed", name);
    for (int i = 0; i < n; i++)
        pthread_join(tid[i], NULL);
}

static inline void wl_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Spin briefly, then yield: on 2 cores the thread we wait for may need ours. */
static inline void wl_backoff(unsigned *spins)
{
    if (++*spins < 64)
        wl_relax();
    else
        sched_yield();
}

/* malloc that fails the run on NULL. */
static inline void *wl_malloc(const char *name, size_t n)
{
    void *p = malloc(n);
    if (!p) bench_fail("%s: malloc(%zu) returned NULL", name, n);
    return p;
}

/* A program with one case: the workload. */
#define WL_MAIN(wname, what, fn)                                                  \
    int main(int argc, char **argv)                                               \
    {                                                                             \
        static const bench_case_t cases[] = { { wname, what, fn } };              \
        return bench_main(argc, argv, cases, 1);                                  \
    }

#endif /* VAM_WORKLOAD_H */
