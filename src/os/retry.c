/* retry.c: the capped, backed-off retry every madvise/mprotect/mincore call
 * goes through, and the per-call-kind counters.
 *
 * Why: WebKit's SYSCALL() loop retried EAGAIN with no delay and no cap, and
 * spun GC threads at 250,000 madvise calls per second when a VMA split could
 * never succeed (why.md item 1).  Here each EAGAIN costs a real sleep
 * (nanosleep, default 1 ms) and after retry_max tries (default 100) the
 * error goes up to a caller that can degrade. */
#include <errno.h>
#include <time.h>
#include "os.h"

vam_os_counters_t vam__os_counters[VAM_OS_CALL_KINDS];
unsigned vam__os_retry_max = 100;
unsigned vam__os_retry_delay_us = 1000;

const char *const vam__os_call_names[VAM_OS_CALL_KINDS] = {
#define VAM_OS_NAME(name, doc) #name,
  VAM_OS_CALLS(VAM_OS_NAME)
#undef VAM_OS_NAME
};
const char *const vam__os_errno_names[VAM_OS_ERRNO_KINDS] = {
#define VAM_OS_ENAME(name) #name,
  VAM_OS_ERRNOS(VAM_OS_ENAME)
#undef VAM_OS_ENAME
};

static vam_os_errno_t errno_kind(int err) {
  switch (err) {
    case EAGAIN: return VAM_OS_E_EAGAIN;
    case ENOMEM: return VAM_OS_E_ENOMEM;
    case EINVAL: return VAM_OS_E_EINVAL;
    case EFAULT: return VAM_OS_E_EFAULT;
    case EPERM: return VAM_OS_E_EPERM;
    default: return VAM_OS_E_other;
  }
}

void vam__os_count(vam_os_call_t kind, int err) {
  vam_os_counters_t *c = &vam__os_counters[kind];
  vam_stat_add(&c->calls, 1);
  /* EEXIST is a placement hint that missed (MAP_FIXED_NOREPLACE), not a
   * refusal: the caller tries elsewhere. */
  if (err != 0 && err != EEXIST) {
    vam_stat_add(&c->failures, 1);
    vam_stat_add(&c->by_errno[errno_kind(err)], 1);
  }
}

/* Called after an EAGAIN answer.  Returns non-zero when the caller must stop
 * trying (the cap is reached); otherwise it has slept and the caller tries
 * again. */
int vam__os_retry_eagain(vam_os_call_t kind, unsigned max, unsigned *tries) {
  vam_os_counters_t *c = &vam__os_counters[kind];
  vam_stat_add(&c->eagain, 1);
  if (max > vam__os_retry_max) max = vam__os_retry_max;
  if (*tries >= max) {
    vam_stat_add(&c->giveups, 1);
    return 1;
  }
  (*tries)++;
  vam_stat_add(&c->retries, 1);
  vam__os_sleep_us(vam__os_retry_delay_us);
  return 0;
}

void vam__os_sleep_us(unsigned us) {
  if (us == 0) {
    /* A zero delay still yields the CPU for a scheduler tick's worth of
     * fairness; it is never a pure spin. */
    us = 1;
  }
  struct timespec ts = {.tv_sec = us / 1000000u, .tv_nsec = (long)(us % 1000000u) * 1000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

