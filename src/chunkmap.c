/* chunkmap.c: which 4 MiB-aligned ranges of the address space are ours.
 *
 * free() must never dereference a pointer vamalloc did not hand out (memory
 * from before the preload, from another allocator, a stack address).  The map
 * answers "is this a vamalloc chunk?" in two loads with no branch on a
 * missing leaf: every top-level slot starts out pointing at one shared,
 * all-zero leaf, and gets a real leaf (8 KiB, 1 byte per chunk) the first
 * time a chunk in its 32 GiB range is mapped.  Leaves are never freed: there
 * are at most 8192 of them (one per 32 GiB of 48-bit address space). */
#include "internal.h"

static const uint8_t zero_leaf[(size_t)1 << VAM_MAP_LEAF_BITS];

#define Z (uint8_t *)zero_leaf
#define Z4 Z, Z, Z, Z
#define Z16 Z4, Z4, Z4, Z4
#define Z64 Z16, Z16, Z16, Z16
#define Z256 Z64, Z64, Z64, Z64
#define Z1K Z256, Z256, Z256, Z256
uint8_t *vam__chunkmap_top[(size_t)1 << VAM_MAP_TOP_BITS] = {Z1K, Z1K, Z1K, Z1K, Z1K, Z1K, Z1K, Z1K};
_Static_assert(VAM_MAP_TOP_BITS == 13, "initialiser above covers 8192 slots");

pthread_mutex_t vam__map_lock = PTHREAD_MUTEX_INITIALIZER;

int vam__chunkmap_set(uintptr_t addr, unsigned kind) {
  uintptr_t idx = addr >> VAM_CHUNK_SHIFT;
  if (idx >> (VAM_MAP_TOP_BITS + VAM_MAP_LEAF_BITS)) return EINVAL;
  size_t top = idx >> VAM_MAP_LEAF_BITS;
  uint8_t *leaf = __atomic_load_n(&vam__chunkmap_top[top], __ATOMIC_ACQUIRE);
  if (leaf == zero_leaf) {
    if (kind == VAM_MAP_NONE) return 0;
    pthread_mutex_lock(&vam__map_lock);
    leaf = vam__chunkmap_top[top];
    if (leaf == zero_leaf) {
      leaf = vam__meta_alloc((size_t)1 << VAM_MAP_LEAF_BITS);
      if (leaf == NULL) {
        pthread_mutex_unlock(&vam__map_lock);
        return ENOMEM;
      }
      memset(leaf, 0, (size_t)1 << VAM_MAP_LEAF_BITS);
      __atomic_store_n(&vam__chunkmap_top[top], leaf, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&vam__map_lock);
  }
  uint8_t *slot = &leaf[idx & (((uintptr_t)1 << VAM_MAP_LEAF_BITS) - 1)];
  uint8_t old = __atomic_exchange_n(slot, (uint8_t)kind, __ATOMIC_SEQ_CST);
  /* A chunk going away: heaps that skip the map for it must stop first
   * (the chunk is empty, so no heap is allocating from it). */
  if (old == VAM_MAP_CHUNK && kind != VAM_MAP_CHUNK)
    vam__heap_forget_chunk(addr & ~(uintptr_t)VAM_CHUNK_MASK);
  return 0;
}

int vam_owns(const void *p) {
  unsigned kind = vam__chunkmap_kind((uintptr_t)p);
  if (kind == VAM_MAP_CHUNK) {
    vam_chunk_t *c = vam__chunk_of(p);
    return vam__page_of(c, p)->kind != VAM_PAGE_NONE;
  }
  if (kind == VAM_MAP_HUGE_HEAD || kind == VAM_MAP_HUGE_USER) return vam__huge_of(p) != NULL;
  return 0;
}
