/* page.c: slabs of equal-size blocks.
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
 * bit 0 set is never released (a freer may still be about to link it). */
#include "internal.h"

#define EXTEND_BYTES 4096u
#define QUEUED ((uintptr_t)1)

void vam__page_init_small(vam_page_t *pg, size_t bin, vam_heap_t *heap) {
  size_t bs = vam__bin_size[bin];
  pg->kind = VAM_PAGE_SMALL;
  pg->bin = (uint8_t)bin;
  pg->block_size = (uint32_t)bs;
  pg->reserved = (uint32_t)((pg->units * VAM_UNIT_SIZE) / bs);
  pg->capacity = 0;
  pg->used = 0;
  pg->free = NULL;
  pg->heap = heap;
  pg->local_owner = heap;
  vam_store_relaxed(&pg->xfree, 0);
}

/* Carve the next few blocks into the free list; false when the slab is
 * fully carved. */
bool vam__page_extend(vam_page_t *pg) {
  uint32_t left = pg->reserved - pg->capacity;
  if (left == 0) return false;
  uint32_t n = EXTEND_BYTES / pg->block_size;
  if (n == 0) n = 1;
  if (n > left) n = left;
  size_t bs = pg->block_size;
  uint8_t *first = pg->start + (size_t)pg->capacity * bs;
  uint8_t *p = first;
  for (uint32_t i = 0; i + 1 < n; i++, p += bs) ((vam_block_t *)p)->next = (vam_block_t *)(p + bs);
  ((vam_block_t *)p)->next = pg->free;
  pg->free = (vam_block_t *)first;
  pg->capacity += n;
  return true;
}

/* Owner only, with the page taken off the remote stack: move the remote
 * frees into the local list and clear the queued bit.  Returns how many. */
uint32_t vam__page_collect_remote(vam_page_t *pg) {
  uintptr_t list = vam_exchange_acq_rel(&pg->xfree, 0);
  vam_block_t *b = (vam_block_t *)(list & ~QUEUED);
  uint32_t n = 0;
  while (b) {
    vam_block_t *next = b->next;
    b->next = pg->free;
    pg->free = b;
    b = next;
    n++;
  }
  pg->used -= n;
  return n;
}

void vam__page_remote_free(vam_page_t *pg, vam_block_t *b) {
  uintptr_t old = vam_load_relaxed(&pg->xfree);
  do {
    b->next = (vam_block_t *)(old & ~QUEUED);
  } while (!vam_cas_weak_release(&pg->xfree, &old, (uintptr_t)b | QUEUED));
  if (old & QUEUED) return;
  /* First remote free since the owner last looked: tell the heap.  The heap
   * stays valid: heaps are never unmapped, only pooled and reused, and the
   * page keeps its heap while any block (this one included) is out. */
  vam_heap_t *heap = pg->heap;
  vam_page_t *head = vam_load_relaxed(&heap->remote_pages);
  do {
    pg->remote_next = head;
  } while (!atomic_compare_exchange_weak_explicit(&heap->remote_pages, &head, pg,
                                                  memory_order_release, memory_order_relaxed));
}
