/* purge.c: when freed memory goes back to the OS.
 *
 * Free spans and cached huge mappings that stay unused for
 * VAMALLOC_PURGE_DELAY_MS (default 1000 ms) are given back, in batches of
 * coalesced ranges (one madvise per contiguous run), never on the free fast
 * path.  A second is long enough that the churn of request loops and GC
 * cycles reuses memory without a syscall or a page fault (the cost that
 * made malloc-large 10x slower under allocators that hand back eagerly),
 * and short enough that an idle process's RSS comes back promptly.
 *
 * Purging runs from the allocation and free slow paths (alloc.c, userheap.c)
 * after a span, slab or huge range was taken or given back (the floors
 * below note it in vam__purge_due and never call up here), checked
 * against a coarse clock at most every delay/4, from
 * vam_collect(), and, with VAMALLOC_BACKGROUND=1, from a thread that wakes
 * every delay/2 so a process that stops calling the allocator still gets
 * its memory back.  Purge failures follow the OS layer's rules: the range
 * stays dirty and is tried again next time. */
#include "internal.h"

static vam_atomic(uint64_t) last_check_ms;
static vam_atomic(int) purging; /* one purge pass at a time */

/* After a purge gives up (madvise refused past the retry cap), purging
 * backs off: 1 s, doubling to 60 s, and each pass in that state tries a
 * single run, as a probe.  A pass stops at its first give-up.  Without this an EAGAIN storm would cost every
 * slow path up to retry_max x retry_delay per run; with it the program
 * keeps running and RSS comes back once the kernel cooperates. */
static vam_atomic(uint64_t) backoff_ms; /* its end: vam__purge_backoff_until_ms (vabudget.c) */

static void purge_pass(bool force) {
  int expected = 0;
  if (!atomic_compare_exchange_strong(&purging, &expected, 1)) return;
  uint64_t now = vam__os_now_ms();
  uint64_t backoff = vam_load_relaxed(&backoff_ms);
  if (!force && backoff && now < vam_load_relaxed(&vam__purge_backoff_until_ms)) {
    vam_store_release(&purging, 0);
    return;
  }
  uint64_t delay = vam__options.purge_delay_ms;
  size_t max_runs = backoff && !force ? 1 : SIZE_MAX;
  uint64_t failures0 = vam_load_relaxed(&vam__stats.decommit_failures);
  vam_store_relaxed(&vam__purge_clock_ms, now);
  vam__chunk_purge(now, delay, force, max_runs);
  /* A give-up ends the pass: the huge pool only unmaps its idle regions
   * (no madvise), or an EAGAIN storm would cost a second retry budget. */
  bool gave_up = vam_load_relaxed(&vam__stats.decommit_failures) != failures0;
  vam__huge_purge(now, delay, force, gave_up ? 0 : max_runs);
  if (vam_load_relaxed(&vam__stats.decommit_failures) != failures0) {
    backoff = backoff ? (backoff * 2 > 60000 ? 60000 : backoff * 2) : 1000;
    vam_store_relaxed(&backoff_ms, backoff);
    vam_store_relaxed(&vam__purge_backoff_until_ms, vam__os_now_ms() + backoff);
  } else if (backoff) {
    vam_store_relaxed(&backoff_ms, 0);
    vam_store_relaxed(&vam__purge_backoff_until_ms, 0);
  }
  vam_store_release(&purging, 0);
}

void vam__purge_tick(void) {
  vam_store_relaxed(&vam__purge_due, false);
  uint64_t now = vam__os_now_ms();
  if (now - vam_load_relaxed(&last_check_ms) < vam__options.purge_delay_ms / 4) return;
  vam_store_relaxed(&last_check_ms, now);
  purge_pass(false);
}

/* fork: a pass another thread was running does not exist in the child. */
void vam__purge_fork_child(void) { vam_store_relaxed(&purging, 0); }

VAM_API void vam_collect(bool force) {
  vam__ensure_init();
  vam__heap_pool_collect();
  if (force) vam__heap_trim_own();
  purge_pass(force);
  if (force) vam__huge_release_cache();
}

static void *background_main(void *arg) {
  (void)arg;
  for (;;) {
    uint64_t delay = vam__options.purge_delay_ms;
    vam__os_sleep_us((unsigned)((delay / 2 ? delay / 2 : 1) * 1000u));
    purge_pass(false);
  }
  return NULL;
}

/* Called once from the library constructor, after init, when asked for. */
void vam__purge_start_background(void) {
  pthread_t t;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  if (pthread_create(&t, &attr, background_main, NULL) != 0)
    vam__log("VAMALLOC_BACKGROUND=1: could not start the purge thread; purging from slow paths only",
             NULL);
  pthread_attr_destroy(&attr);
}
