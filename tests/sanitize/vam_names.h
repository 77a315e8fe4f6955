/* Force-included (-include) into tests/stress/stress.c by the asan and tsan
 * suites: the standard allocation names become vamalloc's vam_ names, so the
 * same stress program drives the sanitized static library while the
 * sanitizer runtime keeps malloc for itself.  The system headers that
 * declare the standard names come first, so their declarations stay as they
 * are; only the calls in stress.c are renamed. */
#ifndef VAM_TESTS_SANITIZE_NAMES_H
#define VAM_TESTS_SANITIZE_NAMES_H
#include <malloc.h>
#include <stdlib.h>
#include "vamalloc.h"

#define malloc(n) vam_malloc(n)
#define free(p) vam_free(p)
#define calloc(n, s) vam_calloc(n, s)
#define realloc(p, n) vam_realloc(p, n)
#define posix_memalign(pp, a, n) vam_posix_memalign(pp, a, n)
#define aligned_alloc(a, n) vam_aligned_alloc(a, n)
#define malloc_usable_size(p) vam_usable_size(p)
#endif
