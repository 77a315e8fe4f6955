/* fault.c: deterministic fault injection for tests (VAMALLOC_FAULTS).
 *
 * Spec: comma-separated rules, one per call kind:
 *   KIND=ERRNO[:after=N][:count=N][:every=N][:rate=P][:seed=S]
 * KIND is mmap, munmap, mremap, madvise, mprotect, mincore, host_madvise or
 * host_mincore; ERRNO is EAGAIN, ENOMEM, EINVAL, EFAULT, EPERM or a number,
 * or `park` (with :out=FD:in=FD): the chosen calls do not fail but stop
 * before the kernel call, write one byte to fd `out` and wait for one byte
 * on fd `in`, holding whatever locks the caller holds.  Only threads of the
 * process that installed the rules park, and never the thread that
 * installed them (the test's controller, which forks meanwhile).
 * The first `after` calls of that kind pass; of the rest, every `every`-th
 * fails (default every one), each with probability `rate` drawn from a
 * seeded generator (default 1), at most `count` times in all (default no
 * limit).  Calls are numbered per kind across the process, so a
 * single-threaded run is exactly repeatable.
 *
 * The hook itself (vam__os_fault) exists only in builds with
 * VAM_FAULT_INJECTION; the parser is always there so a release build can
 * say clearly that the variable has no effect.  The same builds carry the
 * in-process test hooks of os.h: the park callback and the fake clock. */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include "os.h"

#define FAULT_PARK (-1) /* the `park` pseudo-errno */
#define FD_UNSET UINT64_MAX

typedef struct fault_rule {
  int err;
  uint64_t after, count, every, rate_ppm, seed;
  uint64_t out, in; /* park: the fds to signal on and to wait on */
} fault_rule_t;

#ifdef VAM_FAULT_INJECTION
static fault_rule_t rules[VAM_OS_CALL_KINDS];
static vam_atomic(uint64_t) seen[VAM_OS_CALL_KINDS];
static vam_atomic(uint64_t) failed[VAM_OS_CALL_KINDS];
static vam_atomic(int) active;
static long installer_pid;
static __thread bool is_installer; /* this thread installed the rules */
_Atomic(vam_os_park_fn) vam__os_park_hook;
vam_atomic(uint64_t) vam__os_fake_ms;
#endif

static bool parse_num(const char **p, uint64_t *out) {
  const char *s = *p;
  uint64_t v = 0;
  if (*s < '0' || *s > '9') return false;
  while (*s >= '0' && *s <= '9') {
    if (v > UINT64_MAX / 10 - 9) return false;
    v = v * 10 + (uint64_t)(*s++ - '0');
  }
  *p = s;
  *out = v;
  return true;
}

/* "0.25" or "1" -> parts per million */
static bool parse_rate(const char **p, uint64_t *ppm) {
  uint64_t whole = 0, frac = 0, scale = 1000000;
  if (!parse_num(p, &whole) || whole > 1) return false;
  if (**p == '.') {
    (*p)++;
    while (**p >= '0' && **p <= '9') {
      scale /= 10;
      frac += (uint64_t)(**p - '0') * scale;
      (*p)++;
    }
  }
  *ppm = whole * 1000000 + frac;
  return *ppm <= 1000000;
}

static bool word_is(const char *s, size_t n, const char *w) {
  return strlen(w) == n && strncmp(s, w, n) == 0;
}

static int parse_errno(const char **p) {
  static const struct { const char *name; int err; } names[] = {
      {"EAGAIN", EAGAIN}, {"ENOMEM", ENOMEM}, {"EINVAL", EINVAL}, {"EFAULT", EFAULT}, {"EPERM", EPERM}};
  const char *s = *p, *e = s;
  while (*e && *e != ':' && *e != ',') e++;
  if (word_is(s, (size_t)(e - s), "park")) {
    *p = e;
    return FAULT_PARK;
  }
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (word_is(s, (size_t)(e - s), names[i].name)) {
      *p = e;
      return names[i].err;
    }
  uint64_t v;
  if (parse_num(p, &v) && *p == e && v > 0 && v < 4096) return (int)v;
  return 0;
}

static int parse(const char *spec, fault_rule_t *out) {
  const char *p = spec;
  while (*p) {
    const char *eq = p;
    while (*eq && *eq != '=') eq++;
    if (*eq != '=') return EINVAL;
    int kind = -1;
    for (int k = 0; k < VAM_OS_CALL_KINDS; k++)
      if (word_is(p, (size_t)(eq - p), vam__os_call_names[k])) kind = k;
    if (kind < 0) return EINVAL;
    p = eq + 1;
    fault_rule_t r = {.every = 1, .rate_ppm = 1000000, .count = UINT64_MAX, .out = FD_UNSET, .in = FD_UNSET};
    r.err = parse_errno(&p);
    if (r.err == 0) return EINVAL;
    while (*p == ':') {
      p++;
      const char *k = p;
      while (*p && *p != '=') p++;
      if (*p != '=') return EINVAL;
      size_t kl = (size_t)(p - k);
      p++;
      bool ok;
      if (word_is(k, kl, "after")) ok = parse_num(&p, &r.after);
      else if (word_is(k, kl, "count")) ok = parse_num(&p, &r.count);
      else if (word_is(k, kl, "every")) ok = parse_num(&p, &r.every) && r.every > 0;
      else if (word_is(k, kl, "seed")) ok = parse_num(&p, &r.seed);
      else if (word_is(k, kl, "rate")) ok = parse_rate(&p, &r.rate_ppm);
      else if (word_is(k, kl, "out")) ok = parse_num(&p, &r.out) && r.out < 65536;
      else if (word_is(k, kl, "in")) ok = parse_num(&p, &r.in) && r.in < 65536;
      else ok = false;
      if (!ok) return EINVAL;
    }
    if ((r.err == FAULT_PARK) != (r.out != FD_UNSET) || (r.out != FD_UNSET) != (r.in != FD_UNSET))
      return EINVAL; /* park needs both fds; an errno takes none */
    if (*p == ',') p++;
    else if (*p) return EINVAL;
    out[kind] = r;
  }
  return 0;
}

int vam__os_fault_spec(const char *spec, bool install) {
  fault_rule_t parsed[VAM_OS_CALL_KINDS];
  memset(parsed, 0, sizeof parsed);
  if (spec == NULL || parse(spec, parsed) != 0) return EINVAL;
#ifdef VAM_FAULT_INJECTION
  if (install) {
    vam_store_release(&active, 0);
    installer_pid = (long)getpid();
    is_installer = true;
    for (int k = 0; k < VAM_OS_CALL_KINDS; k++) {
      rules[k] = parsed[k];
      vam_store_relaxed(&seen[k], 0);
      vam_store_relaxed(&failed[k], 0);
    }
    vam_store_release(&active, 1);
  }
  return 0;
#else
  (void)install;
  return ENOTSUP;
#endif
}

#ifdef VAM_FAULT_INJECTION
static uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

/* A `park` rule: tell the controller, then wait for its go (no allocation,
 * raw fds).  A closed or failing fd ends the wait. */
static int park_on_fds(const fault_rule_t *r) {
  char c = 'P';
  if (write((int)r->out, &c, 1) != 1) return 0;
  while (read((int)r->in, &c, 1) < 0 && errno == EINTR) {
  }
  return 0;
}

int vam__os_fault(vam_os_call_t kind) {
  vam_os_park_fn park = atomic_load_explicit(&vam__os_park_hook, memory_order_acquire);
  if (park) park(kind);
  if (!vam_load_acquire(&active)) return 0;
  const fault_rule_t *r = &rules[kind];
  if (r->err == 0) return 0;
  if (r->err == FAULT_PARK &&
      ((long)getpid() != installer_pid || is_installer))
    return 0; /* a forked child, or the controller: never parked */
  uint64_t n = vam_fetch_add_relaxed(&seen[kind], 1);
  if (n < r->after) return 0;
  uint64_t m = n - r->after;
  if ((m + 1) % r->every != 0) return 0;
  if (r->rate_ppm < 1000000 && mix(r->seed ^ (m * 0x2545f4914f6cdd1dull)) % 1000000 >= r->rate_ppm)
    return 0;
  if (vam_fetch_add_relaxed(&failed[kind], 1) >= r->count) return 0;
  if (r->err == FAULT_PARK) {
    int saved = errno;
    park_on_fds(r);
    errno = saved;
    return 0;
  }
  return r->err;
}
#endif
