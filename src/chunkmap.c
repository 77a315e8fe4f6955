/* chunkmap.c: which 4 MiB-aligned ranges of the address space are ours.
 *
 * free() must never dereference a pointer vamalloc did not hand out (memory
 * from before the preload, from another allocator, a stack address).  The map
 * answers "is this a vamalloc chunk?" in two loads with no branch on a
 * missing leaf: every top-level slot starts out pointing at one shared,
 * all-zero leaf, and gets a real leaf (8 KiB, 1 byte per chunk) the first
 * time a chunk in its 32 GiB range is mapped.  Leaves are never freed: there
 * are at most 8192 of them (one per 32 GiB of 48-bit address space).
 *
 * Both levels are C11 atomics, so ThreadSanitizer checks the protocol
 * (test_chunkmap_tsan): a slot's release store publishes its new leaf and
 * readers load it with an acquire; the kind bytes are stored with release
 * and read relaxed (internal.h).  On x86 the reads stay plain movs. */
#include "internal.h"

static const uint8_t zero_leaf[(size_t)1 << VAM_MAP_LEAF_BITS];

/* Slot t starts out as the shared zero leaf, biased by t (see internal.h):
 * static, so free() works before the constructor runs. */
#define BIAS(t) ((uintptr_t)(t) << VAM_MAP_LEAF_BITS)
#define Z1(t) (uintptr_t)zero_leaf - BIAS(t)
#define Z2(t) Z1(t), Z1((t) + 1)
#define Z4(t) Z2(t), Z2((t) + 2)
#define Z8(t) Z4(t), Z4((t) + 4)
#define Z16(t) Z8(t), Z8((t) + 8)
#define Z32(t) Z16(t), Z16((t) + 16)
#define Z64(t) Z32(t), Z32((t) + 32)
#define Z128(t) Z64(t), Z64((t) + 64)
#define Z256(t) Z128(t), Z128((t) + 128)
#define Z512(t) Z256(t), Z256((t) + 256)
#define Z1K(t) Z512(t), Z512((t) + 512)
#define Z2K(t) Z1K(t), Z1K((t) + 1024)
#define Z4K(t) Z2K(t), Z2K((t) + 2048)
vam_atomic(uintptr_t) vam__chunkmap_top[(size_t)1 << VAM_MAP_TOP_BITS] = {Z4K(0), Z4K(4096)};
_Static_assert(VAM_MAP_TOP_BITS == 13, "initialiser above covers 8192 slots");

pthread_mutex_t vam__map_lock = PTHREAD_MUTEX_INITIALIZER;

int vam__chunkmap_set(uintptr_t addr, unsigned kind) {
  uintptr_t idx = addr >> VAM_CHUNK_SHIFT;
  if (idx >> (VAM_MAP_TOP_BITS + VAM_MAP_LEAF_BITS)) return EINVAL;
  size_t top = idx >> VAM_MAP_LEAF_BITS;
  vam_atomic(uint8_t) *leaf = (vam_atomic(uint8_t) *)(vam_load_acquire(&vam__chunkmap_top[top]) + BIAS(top));
  if ((const void *)leaf == zero_leaf) {
    if (kind == VAM_MAP_NONE) return 0;
    pthread_mutex_lock(&vam__map_lock);
    leaf = (vam_atomic(uint8_t) *)(vam_load_relaxed(&vam__chunkmap_top[top]) + BIAS(top));
    if ((const void *)leaf == zero_leaf) {
      leaf = vam__meta_alloc((size_t)1 << VAM_MAP_LEAF_BITS);
      if (leaf == NULL) {
        pthread_mutex_unlock(&vam__map_lock);
        return ENOMEM;
      }
      memset((void *)leaf, 0, (size_t)1 << VAM_MAP_LEAF_BITS); /* published by the release below */
      vam_store_release(&vam__chunkmap_top[top], (uintptr_t)leaf - BIAS(top));
    }
    pthread_mutex_unlock(&vam__map_lock);
  }
  vam_store_release(&leaf[idx & (((uintptr_t)1 << VAM_MAP_LEAF_BITS) - 1)], (uint8_t)kind);
  return 0;
}
