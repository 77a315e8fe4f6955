/* The chunk map under ThreadSanitizer (the core built with
 * -fsanitize=thread): one thread reads kinds, as free() does for any
 * pointer, while another gives top-level slots their first leaf and marks
 * and clears chunks in them.  Every access to the map is atomic, so the
 * run is race-free; TSan fails it (exit 66) on a plain access racing a
 * store.  The slots are above 2^47, where nothing of this process lives. */
#include <pthread.h>
#include <stdio.h>
#include "internal.h"

#define SLOT0 4200u /* 32 GiB slots: 4200 << 35 is past 2^47 */
#define SLOTS 64u
#define CHUNKS 8u

static uintptr_t addr_of(unsigned slot, unsigned chunk) {
  return ((uintptr_t)slot << (VAM_CHUNK_SHIFT + VAM_MAP_LEAF_BITS)) + (uintptr_t)chunk * VAM_CHUNK_SIZE;
}

/* Relaxed flags: they order nothing, so TSan sees reads and stores that no
 * synchronisation separates. */
static vam_atomic(int) go, done;

static void *writer(void *arg) {
  (void)arg;
  while (!vam_load_relaxed(&go)) {
  }
  for (unsigned s = SLOT0; s < SLOT0 + SLOTS; s++)
    for (unsigned c = 0; c < CHUNKS; c++) {
      if (vam__chunkmap_set(addr_of(s, c), VAM_MAP_CHUNK) != 0) return (void *)1;
      if (vam__chunkmap_set(addr_of(s, c), VAM_MAP_NONE) != 0) return (void *)2;
    }
  vam_store_relaxed(&done, 1);
  return NULL;
}

int main(void) {
  vam__ensure_init();
  pthread_t w;
  pthread_create(&w, NULL, writer, NULL);
  unsigned long seen = 0, reads = 0;
  vam_store_relaxed(&go, 1);
  while (!vam_load_relaxed(&done)) {
    for (unsigned s = SLOT0; s < SLOT0 + SLOTS; s++)
      for (unsigned c = 0; c < CHUNKS; c++, reads++) {
        unsigned k = vam__chunkmap_kind(addr_of(s, c));
        if (k != VAM_MAP_NONE && k != VAM_MAP_CHUNK) return 3;
        seen += k;
      }
  }
  void *r;
  pthread_join(w, &r);
  if (r) return 4;
  for (unsigned s = SLOT0; s < SLOT0 + SLOTS; s++)
    for (unsigned c = 0; c < CHUNKS; c++)
      if (vam__chunkmap_kind(addr_of(s, c)) != VAM_MAP_NONE) return 5;
  printf("chunk map: %lu reads (%lu saw a chunk) while %u leaves were made\n", reads, seen, SLOTS);
  return 0;
}
