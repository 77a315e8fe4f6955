/* secure.c: what the secure build (libvamalloc-secure.so, -Dsecure=true)
 * adds to the default one, in the spirit of hardened_malloc.
 *
 *   canary        the last 8 bytes of every small block hold key ^ address;
 *                 free checks them (a linear overflow past the block);
 *   zero on free  a freed small block is wiped (its first
 *                 VAMALLOC_SECURE_WIPE_MAX bytes), and checked still zero
 *                 when it leaves the quarantine (a write after free, found
 *                 before the next owner can be misled by it; the block is
 *                 then dropped);
 *   quarantine    a freed small block waits in a per-thread ring of
 *                 QUARANTINE blocks before it can be reused, so a dangling
 *                 pointer does not meet the next object at once;
 *   random order  a slab's blocks are handed out in shuffled order;
 *   guard pages   a PROT_NONE page after every large object and after one
 *                 slab in GUARD_SLAB_RATIO (chunk.c keeps the flag);
 *   malloc(0)     a pointer into a PROT_NONE reservation: any access traps.
 *
 * The default build compiles none of this into its fast paths: every hook
 * is behind VAM_SECURE_BUILD, a compile-time constant. */
#include "internal.h"

#if VAM_SECURE_BUILD

/* ---- canary and zero-on-free (the per-block steps: internal.h) ------------ */

/* free found the canary overwritten: report; the block is dropped. */
bool vam__secure_canary_broken(vam_span_t *pg, void *b) {
  (void)pg;
  vam__misuse(VAM_MISUSE_CANARY, b, "free");
  return false;
}

/* ---- random order ------------------------------------------------------------ */

uint64_t vam__secure_random(vam_heap_t *heap) {
  uint64_t z = (heap->key_seq += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* ---- malloc(0) ------------------------------------------------------------------
 * One chunk-aligned PROT_NONE reservation (marked ZERO in the chunk map)
 * handed out in 16-byte slots tracked by a bitmap, so every live malloc(0)
 * pointer is unique, free of one is checked, and touching one faults. */
#define ZERO_SLOTS (VAM_CHUNK_SIZE / 16)
static uint8_t *zero_base;
static uint64_t zero_used[ZERO_SLOTS / 64];
static size_t zero_next;
/* Not static: init.c's fork handlers take it by name (a weak reference,
 * absent from the default build). */
pthread_mutex_t vam__zero_lock = PTHREAD_MUTEX_INITIALIZER;
#define zero_lock vam__zero_lock

void *vam__zero_alloc(void) {
  pthread_mutex_lock(&zero_lock);
  if (zero_base == NULL) {
    void *p = NULL;
    if (vam__va_reserve_flags(VAM_CHUNK_SIZE, VAM_CHUNK_SIZE, VAM_RESERVE_NOACCESS, &p) == 0 &&
        vam__chunkmap_set((uintptr_t)p, VAM_MAP_ZERO) == 0)
      zero_base = p;
    else if (p)
      vam__va_release(p, VAM_CHUNK_SIZE);
  }
  void *out = NULL;
  for (size_t n = 0; zero_base && n < ZERO_SLOTS; n++) {
    size_t i = (zero_next + n) % ZERO_SLOTS;
    if (zero_used[i / 64] & ((uint64_t)1 << (i % 64))) continue;
    zero_used[i / 64] |= (uint64_t)1 << (i % 64);
    zero_next = i + 1;
    out = zero_base + i * 16;
    break;
  }
  pthread_mutex_unlock(&zero_lock);
  return out; /* NULL: the caller serves a 1-byte block instead */
}

/* free() of an address in the ZERO reservation. */
void vam__zero_free(void *p) {
  size_t off = (size_t)((uint8_t *)p - zero_base);
  pthread_mutex_lock(&zero_lock);
  bool live = off % 16 == 0 && (zero_used[off / 16 / 64] & ((uint64_t)1 << (off / 16 % 64)));
  if (live) zero_used[off / 16 / 64] &= ~((uint64_t)1 << (off / 16 % 64));
  pthread_mutex_unlock(&zero_lock);
  if (!live) vam__misuse(off % 16 ? VAM_MISUSE_INTERIOR_FREE : VAM_MISUSE_DOUBLE_FREE, p, "free");
}

bool vam__zero_live(const void *p) {
  size_t off = (size_t)((const uint8_t *)p - zero_base);
  pthread_mutex_lock(&zero_lock);
  bool live = off % 16 == 0 && (zero_used[off / 16 / 64] & ((uint64_t)1 << (off / 16 % 64)));
  pthread_mutex_unlock(&zero_lock);
  return live;
}

#endif
