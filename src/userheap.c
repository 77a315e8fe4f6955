/* userheap.c: first-class heaps (vam_heap_*), one per isolate or worker.
 *
 * A first-class heap is a vam_heap_t like a thread's, with its own lock
 * instead of a thread: allocation takes the lock, runs the same bin queues
 * and slab code as a thread heap, and lets go.  Its pages never match any
 * thread's heap, so every free of its blocks takes the remote path: lock-
 * free, from any thread, and counted off the heap's live totals there.
 *
 * Large spans and huge mappings are linked on the heap, so destroy can
 * hand back everything in one step: every slab span, every large span,
 * every huge mapping, whatever blocks are still out.  The heap structs are
 * metadata and go back to meta.c for reuse, so create/destroy churn
 * reaches a steady state (why.md item 4: no pool that only grows).
 *
 * Lock order (init.c lists every lock): no path holds the list lock and a
 * heap's lock together except fork, which takes the list lock, then every
 * heap's; a heap's lock comes before heap.c's locks and all below them. */
#include "internal.h"

static pthread_mutex_t list_lock = PTHREAD_MUTEX_INITIALIZER;
static vam_heap_t *user_heaps;

static vam_cold void *refuse(int err) {
  if (err == ENOMEM) VAM_COUNT(enomem_returns); /* EINVAL is not an ENOMEM return */
  errno = err;
  return NULL;
}

VAM_API vam_heap_t *vam_heap_new(const vam_heap_options *opts) {
  vam__ensure_init();
  vam_heap_options o = {0};
  if (opts) {
    size_t n = opts->struct_size;
    if (n < sizeof(size_t) || n > 4096) {
      errno = EINVAL;
      return NULL;
    }
    memcpy(&o, opts, n < sizeof o ? n : sizeof o);
  }
  vam_heap_t *h = vam__meta_alloc(sizeof(vam_heap_t));
  if (h == NULL) return refuse(ENOMEM);
  memset(h, 0, sizeof *h);
  for (size_t b = 0; b < VAM_BINS; b++) h->direct[b] = &vam__empty_slab;
  h->hot_chunk = VAM_NO_CHUNK;
  h->is_user = true;
  pthread_mutex_init(&h->lock, NULL);
  h->byte_limit = o.byte_limit;
  for (size_t i = 0; o.name && o.name[i] && i + 1 < sizeof h->name; i++) h->name[i] = o.name[i];
  /* Before this heap's first block exists (internal.h). */
  vam__userheap_hooks = (vam_userheap_hooks_t){vam__userheap_forget_large, vam__userheap_forget_huge,
                                               vam_heap_realloc};
  vam__heap_register(h);
  pthread_mutex_lock(&list_lock);
  h->user_next = user_heaps;
  if (user_heaps) user_heaps->user_prev = h;
  user_heaps = h;
  pthread_mutex_unlock(&list_lock);
  VAM_COUNT(user_heaps_created);
  VAM_GAUGE(user_heaps, 1);
  return h;
}

/* Link a fresh large or huge block on its heap (under the heap lock). */
static void track(vam_heap_t *h, void *p) {
  vam_ref_t at = vam__classify(p);
  if (at.pg) {
    vam_span_t *pg = at.pg;
    if (pg->kind != VAM_SPAN_LARGE) return; /* slabs: the bin queues track them */
    pg->heap = h;
    pg->prev = NULL;
    pg->next = h->large.head;
    if (h->large.head) h->large.head->prev = pg;
    else h->large.tail = pg;
    h->large.head = pg;
    return;
  }
  vam_huge_t *hg = at.huge;
  if (hg == NULL) return;
  hg->heap = h;
  hg->heap_prev = NULL;
  hg->heap_next = h->huge;
  if (h->huge) h->huge->heap_prev = hg;
  h->huge = hg;
}

static void live_add(vam_heap_t *h, uint64_t bytes) {
  uint64_t now = atomic_fetch_add_explicit(&h->live_bytes, bytes, memory_order_relaxed) + bytes;
  vam_stat_add(&h->live_blocks, 1);
  if (now > h->peak_bytes) h->peak_bytes = now;
  h->user_mallocs++;
}

/* Free a block just allocated from h and never counted (under h's lock).
 * free() takes a small block off its heap's live totals and counts a free
 * (its large and huge blocks are not linked yet, so free skips them): put
 * it on first, take the free back after.  Under the lock no allocation or
 * report sees the blip. */
static void give_back_uncounted(vam_heap_t *h, void *p, size_t usable) {
  bool counted_by_free = vam_heap_of(p) == h; /* small blocks only */
  if (counted_by_free) {
    vam_stat_add(&h->live_bytes, usable);
    vam_stat_add(&h->live_blocks, 1);
  }
  vam_free(p);
  if (counted_by_free) vam_stat_add(&h->user_frees, (uint64_t)-1);
}

static void *heap_alloc(vam_heap_t *h, size_t size, size_t align, bool zero) {
  if (h == NULL) return refuse(EINVAL);
  int saved = errno;
  pthread_mutex_lock(&h->lock);
  uint64_t live = vam_load_relaxed(&h->live_bytes);
  if (h->byte_limit && (size > h->byte_limit || live > h->byte_limit - size)) {
    h->limit_refusals++;
    pthread_mutex_unlock(&h->lock);
    VAM_COUNT(heap_limit_refusals);
    return refuse(ENOMEM);
  }
  void *p = vam__alloc_in_heap(h, size, align, zero);
  if (p == NULL) {
    pthread_mutex_unlock(&h->lock);
    return refuse(ENOMEM);
  }
  size_t usable = vam_usable_size(p);
  if (h->byte_limit && live + usable > h->byte_limit) {
    /* The request fit but its size class does not: same answer. */
    h->limit_refusals++;
    give_back_uncounted(h, p, usable);
    pthread_mutex_unlock(&h->lock);
    VAM_COUNT(heap_limit_refusals);
    return refuse(ENOMEM);
  }
  track(h, p);
  live_add(h, usable);
  pthread_mutex_unlock(&h->lock);
  errno = saved;
  return p;
}

VAM_API void *vam_heap_malloc(vam_heap_t *h, size_t size) { return heap_alloc(h, size, 0, false); }

VAM_API void *vam_heap_calloc(vam_heap_t *h, size_t count, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(count, size, &total)) return refuse(ENOMEM);
  return heap_alloc(h, total, 0, true);
}

VAM_API void *vam_heap_memalign(vam_heap_t *h, size_t alignment, size_t size) {
  if (!vam_is_pow2(alignment)) return refuse(EINVAL);
  return heap_alloc(h, size, alignment, false);
}

VAM_API void vam_heap_free(vam_heap_t *h, void *p) {
  (void)h;
  vam_free(p);
}

VAM_API void *vam_heap_realloc(vam_heap_t *h, void *p, size_t size) {
  if (h == NULL) return vam_realloc(p, size);
  if (p == NULL) return vam_heap_malloc(h, size);
  size_t old = vam_usable_size(p);
  if (old == 0) {
    errno = EINVAL; /* not ours: how much to copy is unknown */
    return NULL;
  }
  /* Keep a small block whose class still fits; the live total is unchanged. */
  if (vam_heap_of(p) == h && size <= old && old <= VAM_SMALL_MAX && size >= old / 2) return p;
  void *q = vam_heap_malloc(h, size);
  if (q == NULL) return NULL; /* p untouched */
  memcpy(q, p, old < size ? old : size);
  vam_free(p);
  return q;
}

/* free() of a heap's large span or huge mapping: unlink it and count it off
 * before alloc.c gives the memory back. */
void vam__userheap_forget_large(vam_span_t *pg) {
  vam_heap_t *h = pg->heap;
  pthread_mutex_lock(&h->lock);
  if (pg->prev) pg->prev->next = pg->next;
  else h->large.head = pg->next;
  if (pg->next) pg->next->prev = pg->prev;
  else h->large.tail = pg->prev;
  pg->next = pg->prev = NULL;
  pg->heap = NULL;
  vam_stat_add(&h->live_bytes, -(uint64_t)pg->block_size);
  vam_stat_add(&h->live_blocks, (uint64_t)-1);
  vam_stat_add(&h->user_frees, 1);
  pthread_mutex_unlock(&h->lock);
}

void vam__userheap_forget_huge(vam_huge_t *hg) {
  vam_heap_t *h = hg->heap;
  pthread_mutex_lock(&h->lock);
  if (hg->heap_prev) hg->heap_prev->heap_next = hg->heap_next;
  else h->huge = hg->heap_next;
  if (hg->heap_next) hg->heap_next->heap_prev = hg->heap_prev;
  hg->heap = NULL;
  vam_stat_add(&h->live_bytes, -(uint64_t)hg->usable);
  vam_stat_add(&h->live_blocks, (uint64_t)-1);
  vam_stat_add(&h->user_frees, 1);
  pthread_mutex_unlock(&h->lock);
}

VAM_API void vam_heap_destroy(vam_heap_t *h) {
  if (h == NULL) return;
  pthread_mutex_lock(&h->lock);
  vam__heap_release_all(h);
  while (h->large.head) {
    vam_span_t *pg = h->large.head;
    h->large.head = pg->next;
    pg->next = pg->prev = NULL;
    pg->heap = NULL;
    VAM_GAUGE(large_bytes, -(int64_t)pg->block_size);
    VAM_COUNT(large_frees);
    vam__span_free(pg);
  }
  h->large.tail = NULL;
  while (h->huge) {
    vam_huge_t *hg = h->huge;
    h->huge = hg->heap_next;
    hg->heap = NULL;
    vam__huge_free(hg);
  }
  pthread_mutex_unlock(&h->lock);
  pthread_mutex_lock(&list_lock);
  if (h->user_prev) h->user_prev->user_next = h->user_next;
  else user_heaps = h->user_next;
  if (h->user_next) h->user_next->user_prev = h->user_prev;
  pthread_mutex_unlock(&list_lock);
  vam__heap_unregister(h);
  pthread_mutex_destroy(&h->lock);
  h->is_user = false;
  vam__meta_free(h, sizeof(vam_heap_t));
  VAM_COUNT(user_heaps_destroyed);
  VAM_GAUGE(user_heaps, -1);
  vam__purge_tick_if_due(); /* its spans and huge ranges went back */
}

VAM_API int vam_heap_stats(vam_heap_t *h, vam_heap_stats_t *out, size_t struct_size) {
  if (h == NULL || out == NULL || struct_size < sizeof(uint64_t)) return EINVAL;
  vam_heap_stats_t s = {0};
  pthread_mutex_lock(&h->lock);
  s.live_bytes = vam_load_relaxed(&h->live_bytes);
  s.peak_bytes = h->peak_bytes;
  s.byte_limit = h->byte_limit;
  s.live_blocks = vam_load_relaxed(&h->live_blocks);
  s.malloc_calls = h->user_mallocs;
  s.free_calls = vam_load_relaxed(&h->user_frees);
  s.limit_refusals = h->limit_refusals;
  s.pages = h->page_count;
  memcpy(s.name, h->name, sizeof s.name);
  for (vam_span_t *pg = h->large.head; pg; pg = pg->next) s.large_blocks++;
  for (vam_huge_t *hg = h->huge; hg; hg = hg->heap_next) s.large_blocks++;
  pthread_mutex_unlock(&h->lock);
  size_t n = struct_size < sizeof s ? struct_size : sizeof s;
  s.struct_size = n;
  memcpy(out, &s, n);
  return 0;
}

/* fork: no heap lock may be held by a thread the child will not have. */
void vam__userheap_fork_prepare(void) {
  pthread_mutex_lock(&list_lock);
  for (vam_heap_t *h = user_heaps; h; h = h->user_next) pthread_mutex_lock(&h->lock);
}
void vam__userheap_fork_parent(void) {
  for (vam_heap_t *h = user_heaps; h; h = h->user_next) pthread_mutex_unlock(&h->lock);
  pthread_mutex_unlock(&list_lock);
}
void vam__userheap_fork_child(void) {
  for (vam_heap_t *h = user_heaps; h; h = h->user_next) pthread_mutex_init(&h->lock, NULL);
  pthread_mutex_init(&list_lock, NULL);
}
