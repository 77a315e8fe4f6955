/* report.c: the statistics snapshot, vam_stats_get, vam_health, and the
 * text and JSON reports, all read from one snapshot (a vam_stats_t on the
 * stack: stats.c's counters and gauges, the OS call counters, and totals
 * summed here from the heaps and live slabs), so they agree and nothing
 * allocates.  The fast paths count only on their slab; the other call
 * counts are per-heap fields; all are summed when read (compute_totals),
 * so a snapshot taken while threads run is not an exact cut. */
#include "internal.h"

/* The T entries of the list: computed when read. */
typedef struct totals {
#define VAM_TOTAL_FIELD(name, doc) uint64_t name;
  VAMALLOC_STATS_FIELDS(VAM_TOTAL_FIELD, VAM_STAT_SKIP_, VAM_STAT_SKIP_, VAM_STAT_SKIP_)
#undef VAM_TOTAL_FIELD
} totals_t;

/* Held while the totals are summed, around the pool and chunk locks (fork
 * takes it first: init.c). */
pthread_mutex_t vam__stats_lock = PTHREAD_MUTEX_INITIALIZER;

/* The fast paths keep no call counts (each would cost an instruction per
 * call): mallocs are counted per slab and folded into the heaps; a small
 * block's owner-side free is derived as handed out - still out - taken
 * back from other threads (those count as remote frees) - dropped with a
 * destroyed heap. */
static void compute_totals(totals_t *t) {
  static vam_heap_counters_t sum; /* large: not on the stack; under the lock */
  pthread_mutex_lock(&vam__stats_lock);
  memset(&sum, 0, sizeof sum);
  uint64_t out = 0;
  vam__heap_sum_counters(&sum);
  vam__chunk_sum_slabs(sum.bin_mallocs, &out);
  uint64_t small = 0;
  t->bytes_allocated = 0;
  for (size_t b = 0; b < VAM_BINS; b++) {
    small += sum.bin_mallocs[b];
    t->bytes_allocated += sum.bin_mallocs[b] * vam__bin_size[b];
  }
  uint64_t gone = out + sum.collected + sum.discarded;
  uint64_t owner_frees = small > gone ? small - gone : 0;
  t->remote_frees = sum.calls[VAM_CALL_REMOTE_FREE];
  t->calloc_calls = sum.calls[VAM_CALL_CALLOC];
  t->realloc_calls = sum.calls[VAM_CALL_REALLOC];
  t->aligned_calls = sum.calls[VAM_CALL_ALIGNED];
  pthread_mutex_unlock(&vam__stats_lock);
  uint64_t large = vam_load_relaxed(&vam__stats.large_allocs);
  uint64_t huge = vam_load_relaxed(&vam__stats.huge_allocs);
  t->malloc_calls = small + large + huge;
  /* Blocks dropped with a destroyed first-class heap count as freed, as
   * its large spans and huge mappings do (large_frees, huge_frees): then
   * malloc_calls - free_calls is the number of blocks live. */
  t->free_calls = owner_frees + sum.discarded + t->remote_frees +
                  vam_load_relaxed(&vam__stats.large_frees) +
                  vam_load_relaxed(&vam__stats.huge_frees);
  vam__health_get(NULL, &t->degrade_events);
}

static uint64_t gauge_now(vam_gauge_t *g) {
  int64_t v = vam_load_relaxed(&g->current);
  return v > 0 ? (uint64_t)v : 0; /* a free seen before its allocation */
}

static void snapshot(vam_stats_t *s) {
  totals_t t;
  compute_totals(&t);
  s->struct_size = sizeof *s;
#define SNAP_T(name, doc) s->name = t.name;
#define SNAP_C(name, doc) s->name = vam_load_relaxed(&vam__stats.name);
#define SNAP_G(name, doc)                  \
  s->name = gauge_now(&vam__stats.name);   \
  s->name##_peak = (uint64_t)vam_load_relaxed(&vam__stats.name.peak);
#define SNAP_O(call, doc)                                                          \
  {                                                                                \
    vam_os_counters_t *c = &vam__os_counters[VAM_OS_##call];                       \
    s->call##_calls = vam_load_relaxed(&c->calls);                                 \
    s->call##_eagain = vam_load_relaxed(&c->eagain);                               \
    s->call##_retries = vam_load_relaxed(&c->retries);                             \
    s->call##_giveups = vam_load_relaxed(&c->giveups);                             \
    s->call##_failures = vam_load_relaxed(&c->failures);                           \
  }
  VAMALLOC_STATS_FIELDS(SNAP_T, SNAP_C, SNAP_G, SNAP_O)
#undef SNAP_T
#undef SNAP_C
#undef SNAP_G
#undef SNAP_O
}

VAM_API size_t vam_stats_get(vam_stats_t *out, size_t struct_size) {
  if (out == NULL || struct_size < sizeof(uint64_t)) {
    errno = EINVAL;
    return 0;
  }
  vam__ensure_init();
  vam_stats_t s;
  snapshot(&s);
  /* A caller built against an older header passes a smaller size: it gets
   * the prefix it knows, and not one byte more. */
  size_t n = struct_size < sizeof s ? struct_size : sizeof s;
  s.struct_size = n;
  memcpy(out, &s, n);
  return n;
}

VAM_API int vam_health(vam_health_t *out) {
  vam__ensure_init();
  const char *reason;
  uint64_t events;
  unsigned bits = vam__health_get(&reason, &events);
  int status = bits ? VAM_HEALTH_DEGRADED : VAM_HEALTH_OK;
  if (out) {
    memset(out, 0, sizeof *out);
    out->status = status;
    out->reason = bits && reason ? reason : "";
    out->degrade_events = events;
    for (int k = 0; k < VAM_OS_CALL_KINDS; k++) {
      out->os_eagain += vam_load_relaxed(&vam__os_counters[k].eagain);
      out->os_giveups += vam_load_relaxed(&vam__os_counters[k].giveups);
      out->os_failures += vam_load_relaxed(&vam__os_counters[k].failures);
    }
    out->enomem_returns = vam_load_relaxed(&vam__stats.enomem_returns);
    out->decommit_failures = vam_load_relaxed(&vam__stats.decommit_failures);
  }
  return status;
}

/* ---- the reports ---------------------------------------------------------- */

typedef struct printer {
  vam_buf_t b;
  bool json, first;
} printer_t;

static void key(printer_t *p, const char *k) {
  if (p->json) {
    vam__buf_str(&p->b, p->first ? "\"" : ",\"");
    vam__buf_str(&p->b, k);
    vam__buf_str(&p->b, "\":");
  } else {
    vam__buf_str(&p->b, "vamalloc:   ");
    vam__buf_str(&p->b, k);
    for (size_t n = strlen(k); n < 30; n++) vam__buf_str(&p->b, " ");
  }
  p->first = false;
}

static void kv_u(printer_t *p, const char *k, uint64_t v) {
  key(p, k);
  vam__buf_u64(&p->b, v);
  if (!p->json) vam__buf_str(&p->b, "\n");
}

/* Keys are identifiers, but values are free text (health reasons): JSON
 * gets them escaped so the report always parses. */
static void kv_s(printer_t *p, const char *k, const char *v) {
  key(p, k);
  if (!p->json) {
    vam__buf_str(&p->b, v);
    vam__buf_str(&p->b, "\n");
    return;
  }
  static const char hex[] = "0123456789abcdef";
  vam__buf_str(&p->b, "\"");
  for (const char *c = v; *c; c++) {
    unsigned char u = (unsigned char)*c;
    if (u == '"' || u == '\\') {
      char esc[2] = {'\\', (char)u};
      vam__buf_strn(&p->b, esc, 2);
    } else if (u < 0x20) {
      char esc[6] = {'\\', 'u', '0', '0', hex[u >> 4], hex[u & 15]};
      vam__buf_strn(&p->b, esc, 6);
    } else {
      vam__buf_strn(&p->b, c, 1);
    }
  }
  vam__buf_str(&p->b, "\"");
}

/* name + suffix into key (names are short identifiers from the list). */
static const char *join(char *buf, size_t cap, const char *name, const char *suffix) {
  size_t nl = strlen(name), sl = strlen(suffix);
  if (nl + sl + 1 > cap) nl = cap - sl - 1;
  memcpy(buf, name, nl);
  memcpy(buf + nl, suffix, sl + 1);
  return buf;
}

static void print_os(printer_t *p, vam_os_call_t kind, const uint64_t vals[5]) {
  static const char *const parts[] = {"_calls", "_eagain", "_retries", "_giveups", "_failures"};
  const char *n = vam__os_call_names[kind];
  char k[64];
  for (size_t i = 0; i < 5; i++) {
    /* The text report keeps to what happened; JSON has every key. */
    if (!p->json && i > 0 && vals[i] == 0) continue;
    kv_u(p, join(k, sizeof k, n, parts[i]), vals[i]);
  }
  vam_os_counters_t *c = &vam__os_counters[kind];
  for (int e = 0; e < VAM_OS_ERRNO_KINDS; e++) {
    uint64_t v = vam_load_relaxed(&c->by_errno[e]);
    if (v == 0) continue; /* only errnos that happened, to keep it short */
    char sfx[16];
    join(sfx, sizeof sfx, "_", vam__os_errno_names[e]);
    kv_u(p, join(k, sizeof k, n, sfx), v);
  }
}

#define VAM_STR_(x) #x
#define VAM_STR(x) VAM_STR_(x)
#define VAM_VERSION_STRING \
  VAM_STR(VAMALLOC_VERSION_MAJOR) "." VAM_STR(VAMALLOC_VERSION_MINOR) "." VAM_STR(VAMALLOC_VERSION_PATCH)

void vam__stats_print(int fd, int format) {
  printer_t p = {.json = format == VAM_STATS_JSON, .first = true};
  vam__buf_init(&p.b, fd);
  vam_stats_t s;
  snapshot(&s);
  if (p.json) vam__buf_str(&p.b, "{");
  else vam__buf_str(&p.b, "vamalloc: statistics\n");
  kv_s(&p, "vamalloc_version", VAM_VERSION_STRING);
  kv_u(&p, "pid", (uint64_t)vam__os_getpid());
  const char *reason;
  unsigned bits = vam__health_get(&reason, NULL);
  kv_s(&p, "health", bits ? "degraded" : "ok");
  kv_s(&p, "health_reason", bits && reason ? reason : "");
  /* Grouped by kind (totals, counters, gauges, kernel calls), each group in
   * the list's order. */
#define PRINT_ONE(name, doc) kv_u(&p, #name, s.name);
#define PRINT_GAUGE(name, doc)  \
  kv_u(&p, #name, s.name);      \
  kv_u(&p, #name "_peak", s.name##_peak);
#define PRINT_OS(call, doc)                                                                     \
  {                                                                                             \
    const uint64_t v[5] = {s.call##_calls, s.call##_eagain, s.call##_retries, s.call##_giveups, \
                           s.call##_failures};                                                  \
    print_os(&p, VAM_OS_##call, v);                                                             \
  }
  VAMALLOC_STATS_FIELDS(PRINT_ONE, VAM_STAT_SKIP_, VAM_STAT_SKIP_, VAM_STAT_SKIP_)
  VAMALLOC_STATS_FIELDS(VAM_STAT_SKIP_, PRINT_ONE, VAM_STAT_SKIP_, VAM_STAT_SKIP_)
  VAMALLOC_STATS_FIELDS(VAM_STAT_SKIP_, VAM_STAT_SKIP_, PRINT_GAUGE, VAM_STAT_SKIP_)
  VAMALLOC_STATS_FIELDS(VAM_STAT_SKIP_, VAM_STAT_SKIP_, VAM_STAT_SKIP_, PRINT_OS)
#undef PRINT_ONE
#undef PRINT_GAUGE
#undef PRINT_OS
  if (p.json) vam__buf_str(&p.b, "}\n");
  vam__buf_flush(&p.b);
}

VAM_API void vam_stats_print(int fd, int format) {
  vam__ensure_init();
  vam__stats_print(fd, format);
}
