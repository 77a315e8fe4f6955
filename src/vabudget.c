/* vabudget.c: the one place that decides about address-space reservations.
 *
 * Every mapping the allocator makes or drops goes through here, so what is
 * reserved is known (reserved_bytes, the mapping count) and every refusal
 * by the kernel is turned into health state.  Reservations are marked
 * MADV_DONTDUMP once, whole, when VAMALLOC_DONTDUMP=1: never per chunk on
 * the commit path, which would split VMAs and take the mmap lock for write
 * (why.md item 1).  A DONTDUMP failure is counted and ignored. */
#include "internal.h"

static vam_atomic(uint64_t) mappings;

int vam__va_reserve(size_t size, size_t align, void **out) {
  int err = vam__os_reserve(size, align, out);
  if (err) {
    vam__health_fail(VAM_HEALTH_MMAP, "mmap refused: memory or address space exhausted");
    return err;
  }
  vam__health_ok(VAM_HEALTH_MMAP, "mmap works again");
  VAM_GAUGE(reserved_bytes, size);
  vam_stat_add(&mappings, 1);
  if (vam__options.dontdump && vam__os_dontdump(*out, size) != 0) VAM_COUNT(dontdump_failures);
  return 0;
}

int vam__va_release(void *addr, size_t size) {
  int err = vam__os_release(addr, size);
  if (err) {
    vam__health_fail(VAM_HEALTH_MUNMAP, "munmap refused: range kept as a decommitted region");
    return err;
  }
  vam__health_ok(VAM_HEALTH_MUNMAP, "munmap works again");
  VAM_GAUGE(reserved_bytes, -(int64_t)size);
  vam_fetch_sub_relaxed(&mappings, 1);
  return 0;
}

/* Give a range's pages back; false when the kernel said no (the pages stay
 * committed and their contents unchanged). */
bool vam__va_decommit(void *addr, size_t size, bool *zeroed) {
  bool z = false;
  int err = vam__os_decommit(addr, size, &z);
  if (zeroed) *zeroed = (err == 0) && z;
  if (err) {
    VAM_COUNT(decommit_failures);
    vam__health_fail(VAM_HEALTH_DECOMMIT, "madvise gave up: pages stay committed, retried later");
    return false;
  }
  vam__health_ok(VAM_HEALTH_DECOMMIT, "madvise works again");
  return true;
}

uint64_t vam__va_mappings(void) { return vam_load_relaxed(&mappings); }

/* Resize a mapping in place (target NULL) or move it onto target, a
 * reservation of new_size made through vam__va_reserve. */
int vam__va_remap(void *addr, size_t old_size, size_t new_size, void *target, void **out) {
  int err = vam__os_remap(addr, old_size, new_size, target, out);
  if (err) return err;
  if (target) {
    /* the old mapping is gone; target was already counted */
    VAM_GAUGE(reserved_bytes, -(int64_t)old_size);
    vam_fetch_sub_relaxed(&mappings, 1);
  } else {
    VAM_GAUGE(reserved_bytes, (int64_t)new_size - (int64_t)old_size);
  }
  return 0;
}
