/* slab.c: slabs of equal-size blocks, and their encoded free lists.
 *
 * A slab's blocks are carved into its free list lazily, a few KiB at a time,
 * so a slab of a big class touches (and commits) only what is used.
 *
 * Free-list sharding: `free` is the owner's list, used without atomics;
 * `xfree` collects frees from other threads with a CAS push.  The first such
 * free after a collection (bit 0 of xfree clear) also pushes the page onto
 * its heap's remote stack, so the owner finds pages with remote frees
 * without scanning.  Only the owner clears bit 0, when it takes the page
 * off that stack, so a page is on the stack at most once, and a page with
 * bit 0 set is never released (a freer may still be about to link it).
 *
 * Links a write after free cannot steer (the safe-linking idea, with a
 * secret): both lists store next ^ (the link's own address) ^ pg->key, a
 * random per-slab key, and end in the chunk's base address rather than
 * NULL.  So every honest link decodes to an address in the block's own
 * chunk; malloc's pop checks exactly that (two instructions), and the slow
 * walks here check the full truth (in the slab, on a block boundary, carved).
 * A word overwritten by a use after free decodes outside the chunk unless
 * the writer knows the key.  The same test tells free() that a block
 * "looks free" (a double free); the owner confirms by walking its lists,
 * another thread cannot and reports at once (internal.h, key choice). */
#include "internal.h"

#define EXTEND_BYTES 4096u
#define QUEUED ((uintptr_t)1)

static uint64_t key_seed;

void vam__slab_keys_init(void) {
  uint64_t s = 0;
  if (vam__os_random(&s, sizeof s) != 0 || s == 0)
    s = vam__os_now_ms() * 0x9e3779b97f4a7c15ull ^ (uintptr_t)&s ^ ((uint64_t)vam__os_getpid() << 32);
  key_seed = s;
}

/* A fresh key: splitmix64 over the heap's own sequence (no shared state on
 * this path), placed so that the key's top 16 bits are in [0x0100, 0x2f00):
 * no canonical pointer, small integer, NaN-boxed value or ordinary double
 * has such high bits, so live data almost never "looks free" (internal.h). */
static uintptr_t key_new(vam_heap_t *heap) {
  uint64_t z = key_seed + (heap->key_seq += 0x9e3779b97f4a7c15ull) + (uintptr_t)heap;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  uint64_t top = 0x0100 + (z >> 48) % 0x2e00;
  return (uintptr_t)((z & 0x0000ffffffffffffull) | (top << 48));
}

void vam__slab_init(vam_span_t *pg, size_t bin, vam_heap_t *heap) {
  size_t bs = vam__bin_size[bin];
  pg->kind = VAM_SPAN_SMALL;
  pg->bin = (uint8_t)bin;
  pg->block_size = (uint32_t)bs;
  pg->div_mul = vam__bin_mul[bin];
  size_t page = vam__os_config.page_size;
  /* A guarded spare reused for a class whose one block needs the guard's
   * page: lift the guard (if the kernel refuses, the last block is lost). */
  if (pg->guarded && pg->units * VAM_UNIT_SIZE - page < bs) vam__span_unguard(pg);
  size_t bytes = pg->units * VAM_UNIT_SIZE - (pg->guarded ? page : 0);
  pg->reserved = (uint32_t)(bytes / bs);
  vam_racy_store(&pg->capacity, 0);
  vam_racy_store(&pg->div_limit, 0);
  pg->used = 0;
  pg->key = key_new(heap);
  pg->lost = 0;
  pg->free = vam__slab_end(pg);
  pg->heap = heap;
  vam_racy_store(&pg->local_owner, heap);
  vam_store_relaxed(&pg->xfree, 0);
}

static void set_capacity(vam_span_t *pg, uint32_t capacity) {
  vam_racy_store(&pg->capacity, capacity);
  vam_racy_store(&pg->div_limit, capacity * (pg->div_mul * pg->block_size)); /* capacity * e */
}

/* Carve the next few blocks into the free list; false when the slab is
 * fully carved. */
bool vam__slab_extend(vam_span_t *pg) {
  uint32_t left = pg->reserved - pg->capacity;
  if (left == 0) return false;
  uint32_t n = EXTEND_BYTES / pg->block_size;
  if (n == 0) n = 1;
  if (n > left) n = left;
  size_t bs = pg->block_size;
  uint8_t *first = pg->start + (size_t)pg->capacity * bs;
  /* Linked from the last block back, so the list runs in address order. */
#if VAM_SECURE_BUILD
  /* Secure: blocks start zeroed (no old data from a reused span) and go out in random
   * order (a Fisher-Yates walk over the batch). */
  memset(first, 0, (size_t)n * bs);
  uint32_t order[EXTEND_BYTES / 16 + 1];
  if (n > sizeof order / sizeof order[0]) n = sizeof order / sizeof order[0];
  for (uint32_t i = 0; i < n; i++) order[i] = i;
  for (uint32_t i = n; i > 1; i--) {
    uint32_t j = (uint32_t)(vam__secure_random(pg->heap) % i), t = order[i - 1];
    order[i - 1] = order[j];
    order[j] = t;
  }
  set_capacity(pg, pg->capacity + n); /* first: the pushes below are boundary-checked */
  for (uint32_t i = 0; i < n; i++) vam__slab_push(pg, (vam_block_t *)(first + (size_t)order[i] * bs));
#else
  for (uint32_t i = n; i-- > 0;) vam__slab_push(pg, (vam_block_t *)(first + (size_t)i * bs));
  set_capacity(pg, pg->capacity + n);
#endif
  return true;
}

/* Decode b's link with the full checks (slow paths): the next block, the
 * list's end (vam__slab_end), or NULL when the link is corrupt. */
static vam_block_t *link_next(const vam_span_t *pg, const vam_block_t *b) {
  uintptr_t x = b->link ^ pg->key;
  if (x >> VAM_CHUNK_SHIFT) return NULL;
  vam_block_t *next = (vam_block_t *)(x ^ (uintptr_t)b);
  if (next == vam__slab_end(pg)) return next;
  return vam__slab_block_ok(pg, next) ? next : NULL;
}

/* Owner only, with the page taken off the remote stack: move the remote
 * frees into the local list and clear the queued bit.  Returns how many.
 * A corrupt link or a list longer than the blocks out is reported; what
 * follows it is abandoned (leaked), never handed out. */
uint32_t vam__slab_collect_remote(vam_span_t *pg) {
  uintptr_t list = vam_exchange_acq_rel(&pg->xfree, 0);
  vam_block_t *b = (vam_block_t *)(list & ~QUEUED);
  vam_block_t *end = vam__slab_end(pg);
  uint32_t n = 0;
  if (b == NULL) return 0;
  if (!vam__slab_block_ok(pg, b)) {
    pg->lost = 1;
    vam__misuse(VAM_MISUSE_FREELIST_CORRUPT, b, "free");
    return 0;
  }
  while (b != end) {
    vam_block_t *next = link_next(pg, b);
    if (next == NULL || n >= pg->used) {
      pg->lost = 1;
      vam__misuse(VAM_MISUSE_FREELIST_CORRUPT, b, "free");
      break;
    }
    vam__slab_push(pg, b);
    n++;
    b = next;
  }
  pg->used -= n;
  return n;
}

void vam__slab_remote_free(vam_span_t *pg, vam_block_t *b) {
  uintptr_t old = vam_load_relaxed(&pg->xfree);
  vam_block_t *end = vam__slab_end(pg);
  do {
    vam_block_t *head = (vam_block_t *)(old & ~QUEUED);
    b->link = (uintptr_t)(head ? head : end) ^ (uintptr_t)b ^ pg->key;
  } while (!vam_cas_weak_release(&pg->xfree, &old, (uintptr_t)b | QUEUED));
  if (old & QUEUED) return;
  /* First remote free since the owner last looked: tell the heap.  The heap
   * stays valid: heaps are never unmapped, only pooled and reused, and the
   * page keeps its heap while any block (this one included) is out. */
  vam_heap_t *heap = pg->heap;
  vam_span_t *head = vam_load_relaxed(&heap->remote_pages);
  do {
    vam_store_relaxed(&pg->remote_next, head);
  } while (!atomic_compare_exchange_weak_explicit(&heap->remote_pages, &head, pg,
                                                  memory_order_acq_rel, memory_order_relaxed));
}

/* Is b on one of pg's free lists?  Owner only (or under the owner's lock):
 * the confirmation behind free()'s "looks free" test.  Bounded by the
 * blocks carved; a corrupt link ends the walk. */
static bool list_holds(const vam_span_t *pg, vam_block_t *cur, const vam_block_t *b) {
  vam_block_t *end = vam__slab_end(pg);
  for (uint32_t steps = 0; cur && cur != end && steps <= pg->capacity; steps++) {
    if (cur == b) return true;
    cur = link_next(pg, cur);
  }
  return false;
}

bool vam__slab_holds_free(const vam_span_t *pg, const vam_block_t *b) {
  if (list_holds(pg, pg->free, b)) return true;
  uintptr_t x = vam_load_acquire(&((vam_span_t *)pg)->xfree);
  vam_block_t *head = (vam_block_t *)(x & ~QUEUED);
  return head && vam__slab_block_ok(pg, head) && list_holds(pg, head, b);
}

/* malloc's pop found a link that leaves the chunk: a write after free.
 * Report it; if the program goes on, the rest of the list is abandoned
 * (leaked) and the head, a checked block, is handed out. */
void *vam__slab_pop_corrupt(vam_span_t *pg) {
  vam_block_t *b = pg->free;
  pg->lost = 1;
  vam__misuse(VAM_MISUSE_FREELIST_CORRUPT, b, "malloc");
  b->link = (uintptr_t)vam__slab_end(pg) ^ (uintptr_t)b ^ pg->key;
  return vam__slab_try_pop(pg);
}
