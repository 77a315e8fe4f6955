/* stats.c: statistics and health, printed from the tables in internal.h
 * (VAM_STAT_COUNTERS, VAM_STAT_GAUGES) and os.h (VAM_OS_CALLS), so adding a
 * statistic is one line there and shows up in text and JSON alike.
 *
 * Per-heap fast-path counters (allocations per size class, frees) are plain
 * fields summed over all heaps at print time: a report taken while threads
 * run is a snapshot, not an exact cut. */
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

typedef struct totals {
  uint64_t malloc_calls, free_calls, bytes_allocated;
} totals_t;

static void compute_totals(totals_t *t) {
  uint64_t bins[VAM_BINS] = {0};
  uint64_t frees = 0;
  vam__heap_sum_counters(bins, &frees);
  t->malloc_calls = 0;
  t->bytes_allocated = 0;
  for (size_t b = 0; b < VAM_BINS; b++) {
    t->malloc_calls += bins[b];
    t->bytes_allocated += bins[b] * vam__bin_size[b];
  }
  uint64_t large = vam_load_relaxed(&vam__stats.large_allocs);
  uint64_t huge = vam_load_relaxed(&vam__stats.huge_allocs);
  t->malloc_calls += large + huge;
  t->free_calls = frees + vam_load_relaxed(&vam__stats.remote_frees) +
                  vam_load_relaxed(&vam__stats.large_frees) +
                  vam_load_relaxed(&vam__stats.huge_frees);
}

static void kv_u(vam_buf_t *b, bool json, bool *first, const char *key, uint64_t v) {
  if (json) {
    vam__buf_str(b, *first ? "\"" : ",\"");
    vam__buf_str(b, key);
    vam__buf_str(b, "\":");
    vam__buf_u64(b, v);
  } else {
    vam__buf_str(b, "vamalloc:   ");
    vam__buf_str(b, key);
    for (size_t n = strlen(key); n < 30; n++) vam__buf_str(b, " ");
    vam__buf_u64(b, v);
    vam__buf_str(b, "\n");
  }
  *first = false;
}

static void kv_s(vam_buf_t *b, bool json, bool *first, const char *key, const char *v) {
  if (json) {
    vam__buf_str(b, *first ? "\"" : ",\"");
    vam__buf_str(b, key);
    vam__buf_str(b, "\":\"");
    vam__buf_str(b, v);
    vam__buf_str(b, "\"");
  } else {
    vam__buf_str(b, "vamalloc:   ");
    vam__buf_str(b, key);
    for (size_t n = strlen(key); n < 30; n++) vam__buf_str(b, " ");
    vam__buf_str(b, v);
    vam__buf_str(b, "\n");
  }
  *first = false;
}

void vam__stats_print(int fd, int format) {
  bool json = format == VAM_STATS_JSON;
  vam_buf_t b;
  vam__buf_init(&b, fd);
  bool first = true;
  totals_t t;
  compute_totals(&t);
  if (json) vam__buf_str(&b, "{");
  else vam__buf_str(&b, "vamalloc: statistics\n");
  kv_s(&b, json, &first, "vamalloc_version", "0.1.0");
  kv_u(&b, json, &first, "pid", (uint64_t)vam__os_getpid());
  unsigned bits = vam_load_relaxed(&health_bits);
  const char *reason = vam_load_relaxed(&health_reason);
  kv_s(&b, json, &first, "health", bits ? "degraded" : "ok");
  kv_s(&b, json, &first, "health_reason", bits && reason ? reason : "");
  kv_u(&b, json, &first, "degrade_events", vam_load_relaxed(&degrade_events));
  kv_u(&b, json, &first, "malloc_calls", t.malloc_calls);
  kv_u(&b, json, &first, "free_calls", t.free_calls);
  kv_u(&b, json, &first, "bytes_allocated", t.bytes_allocated);
#define VAM_PRINT_COUNTER(name, doc) kv_u(&b, json, &first, #name, vam_load_relaxed(&vam__stats.name));
  VAM_STAT_COUNTERS(VAM_PRINT_COUNTER)
#undef VAM_PRINT_COUNTER
#define VAM_PRINT_GAUGE(name, doc)                                                  \
  {                                                                                 \
    int64_t cur = vam_load_relaxed(&vam__stats.name.current);                       \
    kv_u(&b, json, &first, #name, cur > 0 ? (uint64_t)cur : 0);                     \
    kv_u(&b, json, &first, #name "_peak", (uint64_t)vam_load_relaxed(&vam__stats.name.peak)); \
  }
  VAM_STAT_GAUGES(VAM_PRINT_GAUGE)
#undef VAM_PRINT_GAUGE
  for (int k = 0; k < VAM_OS_CALL_KINDS; k++) {
    vam_os_counters_t *c = &vam__os_counters[k];
    char key[64];
    const char *n = vam__os_call_names[k];
    size_t nl = strlen(n);
    static const char *const parts[] = {"_calls", "_eagain", "_retries", "_giveups", "_failures"};
    vam_atomic(uint64_t) *vals[] = {&c->calls, &c->eagain, &c->retries, &c->giveups, &c->failures};
    for (size_t i = 0; i < 5; i++) {
      /* The text report keeps to what happened; JSON has every key. */
      if (!json && i > 0 && vam_load_relaxed(vals[i]) == 0) continue;
      memcpy(key, n, nl);
      strcpy(key + nl, parts[i]);
      kv_u(&b, json, &first, key, vam_load_relaxed(vals[i]));
    }
    for (int e = 0; e < VAM_OS_ERRNO_KINDS; e++) {
      uint64_t v = vam_load_relaxed(&c->by_errno[e]);
      if (v == 0) continue; /* only errnos that happened, to keep it short */
      memcpy(key, n, nl);
      key[nl] = '_';
      strcpy(key + nl + 1, vam__os_errno_names[e]);
      kv_u(&b, json, &first, key, v);
    }
  }
  if (json) vam__buf_str(&b, "}\n");
  vam__buf_flush(&b);
}

VAM_API void vam_stats_print(int fd, int format) {
  vam__ensure_init();
  vam__stats_print(fd, format);
}
