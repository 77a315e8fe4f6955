/* misuse.c: what happens when the caller misuses the heap.
 *
 * A double free, an interior free, a pointer vamalloc never handed out or
 * a free list overwritten after free is the caller's bug, often an exploit
 * primitive under a JS engine.  It is never absorbed: it is counted per
 * kind, reported in one stderr line naming the kind, the address and the
 * call that found it, and by default the process aborts (like glibc).
 * VAMALLOC_ON_CORRUPTION=warn|ignore lets it go on: the caller then drops
 * the operation, so the heap stays consistent.  Only OS errors degrade
 * quietly (stats.c's health); misuse never does. */
#include <stdlib.h>
#include "internal.h"

static void count(unsigned kind) {
  switch (kind) {
#define VAM_MISUSE_COUNT_CASE(NAME, field, words) \
  case VAM_MISUSE_##NAME:                         \
    VAM_COUNT(misuse_##field);                    \
    break;
    VAM_MISUSE_KINDS(VAM_MISUSE_COUNT_CASE)
#undef VAM_MISUSE_COUNT_CASE
  }
  if (kind == VAM_MISUSE_INVALID_POINTER) VAM_COUNT(foreign_frees);
  else VAM_COUNT(invalid_frees);
}

static const char *const words[VAM_MISUSE_COUNT] = {
#define VAM_MISUSE_WORDS(NAME, field, w) [VAM_MISUSE_##NAME] = w,
    VAM_MISUSE_KINDS(VAM_MISUSE_WORDS)
#undef VAM_MISUSE_WORDS
};

void vam__misuse(unsigned kind, const void *p, const char *op) {
  count(kind);
  uint64_t mode = vam__options.on_corruption;
  if (mode == VAM_CORRUPT_IGNORE) return;
  char hex[2 + 16 + 1] = "0x";
  uintptr_t v = (uintptr_t)p;
  for (int i = 0; i < 16; i++) hex[2 + i] = "0123456789abcdef"[(v >> (60 - 4 * i)) & 15];
  hex[18] = 0;
  vam__log("heap misuse: ", kind < VAM_MISUSE_COUNT ? words[kind] : "unknown", " ", hex, " in ", op,
           mode == VAM_CORRUPT_ABORT ? "; aborting (VAMALLOC_ON_CORRUPTION=warn|ignore continues)"
                                     : "; continuing (VAMALLOC_ON_CORRUPTION=warn)",
           NULL);
  if (mode == VAM_CORRUPT_ABORT) abort();
}
