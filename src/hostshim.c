/* hostshim.c: the host program's madvise and mincore, when preloaded.
 *
 * Bun (bmalloc/libpas) and V8 call madvise themselves; on EAGAIN the first
 * spins with no delay and the second dies on a CHECK (why.md item 1).
 * Preloaded, libvamalloc.so exports madvise/mincore (override.c) and routes
 * them here: the same capped, backed-off retry as vamalloc's own calls.  A
 * call that succeeds behaves exactly as before; after the cap the kernel's
 * last error comes back.  VAMALLOC_HOST_SHIM=0 passes calls straight
 * through; VAMALLOC_HOST_DONTDUMP=drop answers MADV_DONTDUMP/DODUMP without
 * the kernel (they only change core-dump size, and they split VMAs). */
#include "internal.h"

/* The retries a host call gets: the full cap, or none with the shim off. */
static unsigned host_retries(void) {
  return vam__options.host_shim ? (unsigned)vam__options.retry_max : 0;
}

int vam__host_madvise(void *addr, size_t len, int advice) {
  vam__ensure_init();
  if (vam__options.host_dontdump == VAM_HOST_DONTDUMP_DROP && vam__os_advice_is_dump_only(advice)) {
    VAM_COUNT(host_dontdump_dropped);
    return 0;
  }
  unsigned retries = host_retries();
  int err = vam__os_host_madvise(addr, len, advice, retries);
  if (err) {
    errno = err;
    return -1;
  }
  return 0;
}

int vam__host_mincore(void *addr, size_t len, unsigned char *vec) {
  vam__ensure_init();
  unsigned retries = host_retries();
  int err = vam__os_host_mincore(addr, len, vec, retries);
  if (err) {
    errno = err;
    return -1;
  }
  return 0;
}
