/* atomic.h: the few atomic operations vamalloc uses, over <stdatomic.h>.
 * Named by intent so the memory order of each use is visible at the call
 * site's name rather than buried in an argument list. */
#ifndef VAM_ATOMIC_H
#define VAM_ATOMIC_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdbool.h>

#define vam_atomic(T) _Atomic(T)

/* VAM_TSAN: built with ThreadSanitizer (gcc's macro, clang's feature). */
#if defined(__SANITIZE_THREAD__)
#define VAM_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define VAM_TSAN 1
#endif
#endif
#ifndef VAM_TSAN
#define VAM_TSAN 0
#endif

/* A plain field one thread writes while another may read it, where either
 * value read leads to a right decision (each use says why): relaxed
 * atomics under ThreadSanitizer, which then checks everything around them;
 * plain accesses otherwise: the same instructions on every target, but
 * the compiler may fold the load into a compare (the fast paths count). */
#if VAM_TSAN
#define vam_racy_load(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define vam_racy_store(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#else
#define vam_racy_load(p) (*(p))
#define vam_racy_store(p, v) ((void)(*(p) = (v)))
#endif

#define vam_load_relaxed(p)      atomic_load_explicit((p), memory_order_relaxed)
#define vam_load_acquire(p)      atomic_load_explicit((p), memory_order_acquire)
#define vam_store_relaxed(p, v)  atomic_store_explicit((p), (v), memory_order_relaxed)
#define vam_store_release(p, v)  atomic_store_explicit((p), (v), memory_order_release)
#define vam_exchange_acq_rel(p, v) atomic_exchange_explicit((p), (v), memory_order_acq_rel)
#define vam_cas_weak_release(p, expected, desired) \
  atomic_compare_exchange_weak_explicit((p), (expected), (desired), \
                                        memory_order_release, memory_order_relaxed)
#define vam_cas_strong_acq_rel(p, expected, desired) \
  atomic_compare_exchange_strong_explicit((p), (expected), (desired), \
                                          memory_order_acq_rel, memory_order_acquire)
#define vam_fetch_add_relaxed(p, v) atomic_fetch_add_explicit((p), (v), memory_order_relaxed)
#define vam_fetch_sub_relaxed(p, v) atomic_fetch_sub_explicit((p), (v), memory_order_relaxed)

/* Statistics counters read by other threads only for reporting: a relaxed
 * add is enough, and it never orders anything. */
static inline void vam_stat_add(vam_atomic(uint64_t) *c, uint64_t v) {
  atomic_fetch_add_explicit(c, v, memory_order_relaxed);
}

/* A gauge that tracks current and peak in one place. */
typedef struct vam_gauge {
  vam_atomic(int64_t) current;
  vam_atomic(int64_t) peak;
} vam_gauge_t;

static inline void vam_gauge_add(vam_gauge_t *g, int64_t delta) {
  int64_t now = atomic_fetch_add_explicit(&g->current, delta, memory_order_relaxed) + delta;
  int64_t peak = atomic_load_explicit(&g->peak, memory_order_relaxed);
  while (now > peak &&
         !atomic_compare_exchange_weak_explicit(&g->peak, &peak, now, memory_order_relaxed,
                                                memory_order_relaxed)) {
  }
}

#endif
