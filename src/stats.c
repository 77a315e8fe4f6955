/* stats.c: the statistics counters and gauges, and health.
 *
 * One list, VAMALLOC_STATS_FIELDS in include/vamalloc.h, declares every
 * statistic: the public vam_stats_t, the internal counters and gauges kept
 * here (internal.h), the kernel call kinds (os.h), and the snapshot and
 * reports of report.c.  Adding a statistic is one line at the end of that
 * list.  This file reads nothing above the base floor: the totals summed
 * from the heaps and slabs are report.c's.
 *
 * Health is a set of bits, one per kind of kernel trouble (internal.h); the
 * process is degraded while any is set.  The latest reason is kept as a
 * pointer to a static string, so reading it never races with freeing it. */
#include "internal.h"

vam_stats_global_t vam__stats;

static vam_atomic(unsigned) health_bits;
static const char *vam_atomic(health_reason);
static vam_atomic(uint64_t) degrade_events;

void vam__health_fail(unsigned bit, const char *reason) {
  vam_store_relaxed(&health_reason, reason);
  unsigned old = atomic_fetch_or(&health_bits, bit);
  if (old & bit) return;
  vam_stat_add(&degrade_events, 1);
  if (old == 0 && vam__options.verbose) vam__log("degraded: ", reason, NULL);
}

void vam__health_ok(unsigned bit, const char *what) {
  if (!(vam_load_relaxed(&health_bits) & bit)) return; /* the common case: one load */
  unsigned old = atomic_fetch_and(&health_bits, ~bit);
  if ((old & bit) && old == bit && vam__options.verbose) vam__log("recovered: ", what, NULL);
}

unsigned vam__health_get(const char **reason, uint64_t *events) {
  if (reason) *reason = vam_load_relaxed(&health_reason);
  if (events) *events = vam_load_relaxed(&degrade_events);
  return vam_load_relaxed(&health_bits);
}
