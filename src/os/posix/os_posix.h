/* os_posix.h: what a backend in src/os/<system>/ gives os_posix.c, the
 * POSIX code the backends share.  Private to src/os/: the core goes
 * through os.h only.
 *
 * The raw calls, one try, no retry and no counting (os_posix.c wraps them
 * in VAM_OS_RETRY): 0 or the errno.  Linux makes them raw system calls,
 * because preloaded, libvamalloc.so itself exports madvise and mincore
 * (the host shim) and the core must not loop back into it. */
#ifndef VAM_OS_POSIX_H
#define VAM_OS_POSIX_H

#include <stddef.h>

int vam__os_sys_madvise(void *addr, size_t len, int advice);
int vam__os_sys_mincore(void *addr, size_t len, unsigned char *vec);

#endif
