/* heap.c: thread heaps.
 *
 * Each thread allocates from its own heap without locks or atomics.  A new
 * thread starts on the static empty heap, whose every bin points at one
 * empty page, so the fast path's "free list empty?" test also catches "this
 * thread has no heap yet" and no separate initialisation check is needed.
 *
 * Heaps are never unmapped.  When a thread exits, its empty pages go back
 * to their chunks and the heap, still owning its partly used pages, goes to
 * a pool; the next new thread takes it over whole.  Because a heap outlives
 * its thread, a block can be freed by any thread at any time: the free lands
 * on the page's remote list and the heap finds it later.  Any thread that
 * runs short of memory drains pooled heaps first (vam__heap_pool_collect).
 *
 * Each heap also caches empty slabs and freed large spans for its own next
 * allocations (bounded, aged out after the purge delay), and counts its
 * calls in plain fields the statistics sum.
 *
 * A thread that allocates after its heap was handed back (other libraries'
 * TLS destructors do) uses one shared heap under a lock. */
#include "internal.h"

/* The page every unused bin points at: its list is one word reading 0 and
 * its key has high bits, so the malloc fast path's link check fails on it
 * like on any list end (internal.h, vam__slab_try_pop). */
static uintptr_t empty_list_end; /* stays 0: only ever read */
vam_span_t vam__empty_slab = {.free = (vam_block_t *)&empty_list_end, .key = (uintptr_t)0x0100 << 48};
vam_heap_t vam__empty_heap = {.direct = {[0 ... VAM_BINS - 1] = &vam__empty_slab}, .hot_chunk = VAM_NO_CHUNK};
__thread vam_heap_t *vam__tls_heap = &vam__empty_heap;

enum { TLS_FRESH = 0, TLS_ACTIVE = 1, TLS_DONE = 2 };
static __thread uint8_t tls_state;

static pthread_key_t heap_key;
static bool key_ready; /* heap_key was created (vam__heap_init) */
vam_atomic(uint64_t) vam__heapless_calls[VAM_CALL_KINDS];
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;
static vam_heap_t *pool;
static vam_heap_t *all_heaps;
static vam_heap_t shared_heap = {.direct = {[0 ... VAM_BINS - 1] = &vam__empty_slab}, .hot_chunk = VAM_NO_CHUNK,
                                 .is_shared = true};

/* ---- page queues ----------------------------------------------------------- */
static void queue_push_front(vam_span_queue_t *q, vam_span_t *pg) {
  pg->prev = NULL;
  pg->next = q->head;
  if (q->head) q->head->prev = pg;
  else q->tail = pg;
  q->head = pg;
}
static void queue_push_back(vam_span_queue_t *q, vam_span_t *pg) {
  pg->next = NULL;
  pg->prev = q->tail;
  if (q->tail) q->tail->next = pg;
  else q->head = pg;
  q->tail = pg;
}
static void queue_remove(vam_span_queue_t *q, vam_span_t *pg) {
  if (pg->prev) pg->prev->next = pg->next;
  else q->head = pg->next;
  if (pg->next) pg->next->prev = pg->prev;
  else q->tail = pg->prev;
  pg->next = pg->prev = NULL;
}
static void set_direct(vam_heap_t *heap, size_t bin) {
  vam_span_t *head = heap->queues[bin].head;
  heap->direct[bin] = head ? head : &vam__empty_slab;
}

static void page_to_full(vam_heap_t *heap, vam_span_t *pg) {
  queue_remove(&heap->queues[pg->bin], pg);
  queue_push_back(&heap->full, pg);
  pg->in_full = 1;
  vam_racy_store(&pg->local_owner, NULL); /* frees into a full page go to the slow path */
}

static void page_from_full(vam_heap_t *heap, vam_span_t *pg) {
  queue_remove(&heap->full, pg);
  pg->in_full = 0;
  vam_racy_store(&pg->local_owner, heap);
  queue_push_back(&heap->queues[pg->bin], pg);
  if (heap->direct[pg->bin] == &vam__empty_slab) set_direct(heap, pg->bin);
}

/* The page's malloc count joins its heap's before the page stops being a
 * slab of this heap (the stats walk only sees live slabs). */
static inline void page_fold(vam_heap_t *heap, vam_span_t *pg) {
  heap->counters.bin_mallocs[pg->bin] += pg->mallocs;
  pg->mallocs = 0;
}

/* A slab, off every list of its heap, goes back to its chunk (idle: it sat
 * unused for the purge delay, so its pages go back too). */
static void slab_give_back(vam_heap_t *heap, vam_span_t *pg, bool idle) {
  page_fold(heap, pg); /* spares were folded when parked: a no-op for them */
  /* Its chunk may empty and be unmapped now: no longer hot (the next slab
   * taken makes one hot again). */
  if (heap->hot_chunk == (uintptr_t)vam__chunk_of(pg)) heap->hot_chunk = VAM_NO_CHUNK;
  heap->page_count--;
  VAM_COUNT(pages_released);
  if (idle) vam__span_free_idle(pg);
  else vam__span_free(pg);
}

static void page_release(vam_heap_t *heap, vam_span_t *pg) {
  size_t bin = pg->bin;
  queue_remove(&heap->queues[bin], pg);
  set_direct(heap, bin);
  slab_give_back(heap, pg, false);
}

/* Empty slabs of at most SPARE_UNITS units a heap keeps (any size class):
 * a program that frees a batch and allocates the next one (sh6bench,
 * rptest, a request loop) takes them back without the chunk lock.  At most
 * SPARE_BUDGET units (4 MiB) per heap; handed back at thread exit, when
 * memory runs short, and by the purge of idle memory. */
#define SPARE_BUDGET 128
#define SPARE_UNITS 8

/* A page whose blocks all came back.  Keep it while it heads its bin (the
 * next malloc of that size would only fetch another), else as a spare if
 * it is small and there is room, otherwise give the span back. */
void vam__heap_slab_empty(vam_heap_t *heap, vam_span_t *pg) {
  if (pg->in_full) page_from_full(heap, pg);
  if (heap->direct[pg->bin] == pg) return;
  if (pg->units <= SPARE_UNITS && heap->spare_units + pg->units <= SPARE_BUDGET) {
    size_t bin = pg->bin;
    queue_remove(&heap->queues[bin], pg);
    set_direct(heap, bin);
    vam_racy_store(&pg->local_owner, NULL); /* no block is out: nothing can be freed here, */
    pg->kind = VAM_SPAN_NONE; /* and a stray free is reported, not pushed */
    page_fold(heap, pg);
    pg->next = heap->spare;
    heap->spare = pg;
    heap->spare_units += pg->units;
    heap->cache_used_ms = vam_load_relaxed(&vam__purge_clock_ms);
    vam__purge_note();
    return;
  }
  page_release(heap, pg);
}

/* A spare slab of `units` units, unlinked; NULL when none fits. */
static vam_span_t *spare_take(vam_heap_t *heap, size_t units) {
  for (vam_span_t **pp = &heap->spare; *pp; pp = &(*pp)->next) {
    vam_span_t *pg = *pp;
    if (pg->units != units) continue;
    *pp = pg->next;
    pg->next = NULL;
    heap->spare_units -= pg->units;
    heap->cache_used_ms = vam_load_relaxed(&vam__purge_clock_ms);
    return pg;
  }
  return NULL;
}

static void spare_release_all(vam_heap_t *heap, bool idle);

/* Large spans freed by this thread, kept for its next large malloc: a
 * program that churns 64-512 KiB buffers skips the chunk lock and the
 * first-fit scan both ways.  At most LARGE_CACHE_UNITS units (2 MiB) per
 * heap; a span is reused for a request of at least 4/5 of its length.
 * Released like the spares. */
#define LARGE_CACHE_UNITS 64

bool vam__heap_large_keep(vam_heap_t *heap, vam_span_t *pg) {
  if (heap == &vam__empty_heap || heap->is_shared ||
      heap->large_cache_units + pg->units > LARGE_CACHE_UNITS)
    return false;
  pg->kind = VAM_SPAN_NONE; /* not live: a second free is reported */
  pg->next = heap->large_cache;
  heap->large_cache = pg;
  heap->large_cache_units += pg->units;
  heap->cache_used_ms = vam_load_relaxed(&vam__purge_clock_ms);
  return true;
}

vam_span_t *vam__heap_large_take(vam_heap_t *heap, size_t units) {
  for (vam_span_t **pp = &heap->large_cache; *pp; pp = &(*pp)->next) {
    vam_span_t *pg = *pp;
    if (pg->units < units || pg->units * 4 > units * 5) continue;
    *pp = pg->next;
    pg->next = NULL;
    heap->large_cache_units -= pg->units;
    heap->cache_used_ms = vam_load_relaxed(&vam__purge_clock_ms);
    return pg;
  }
  return NULL;
}

/* idle: the spans sat unused for the purge delay (see vam__span_free_idle). */
static void large_cache_release_all(vam_heap_t *heap, bool idle) {
  while (heap->large_cache) {
    vam_span_t *pg = heap->large_cache;
    heap->large_cache = pg->next;
    pg->next = NULL;
    heap->large_cache_units -= pg->units;
    if (idle) vam__span_free_idle(pg);
    else vam__span_free(pg);
  }
}

/* Caches unused for the purge delay go back to their chunks, their pages
 * returned to the OS on the way.  They are a speed device, not free memory,
 * so they stay at least CACHE_MIN_IDLE_MS even when the delay is 0 (else
 * every span would go back and be fetched again, a madvise each time). */
#define CACHE_MIN_IDLE_MS 100

void vam__heap_age_caches(vam_heap_t *heap) {
  if (heap->spare == NULL && heap->large_cache == NULL) return;
  uint64_t idle = vam__options.purge_delay_ms;
  if (idle < CACHE_MIN_IDLE_MS) idle = CACHE_MIN_IDLE_MS;
  uint64_t now = vam_load_relaxed(&vam__purge_clock_ms);
  if (now > heap->cache_used_ms && now - heap->cache_used_ms >= idle) {
    spare_release_all(heap, true);
    large_cache_release_all(heap, true);
  }
}

static void spare_release_all(vam_heap_t *heap, bool idle) {
  while (heap->spare) {
    vam_span_t *pg = heap->spare;
    heap->spare = pg->next;
    pg->next = NULL;
    heap->spare_units -= pg->units;
    slab_give_back(heap, pg, idle);
  }
}

/* Take in the frees other threads made into this heap's pages. */
static void drain_remote(vam_heap_t *heap) {
  if (vam_load_relaxed(&heap->remote_pages) == NULL) return;
  vam_span_t *pg = vam_exchange_acq_rel(&heap->remote_pages, NULL);
  while (pg) {
    vam_span_t *next = vam_load_relaxed(&pg->remote_next);
    heap->counters.collected += vam__slab_collect_remote(pg);
    if (pg->in_full) page_from_full(heap, pg);
    if (pg->used == 0) vam__heap_slab_empty(heap, pg);
    pg = next;
  }
}

void *vam__heap_malloc_small_slow(vam_heap_t *heap, size_t bin, bool *no_memory) {
  drain_remote(heap);
  vam__heap_age_caches(heap);
  vam_span_queue_t *q = &heap->queues[bin];
  vam_span_t *pg = q->head;
  while (pg) {
    vam_span_t *next = pg->next;
    if (vam__slab_has_free(pg) || vam__slab_extend(pg)) {
      if (pg != q->head) {
        queue_remove(q, pg);
        queue_push_front(q, pg);
      }
      heap->direct[bin] = pg;
      return vam__slab_pop(pg);
    }
    page_to_full(heap, pg);
    pg = next;
  }
  pg = spare_take(heap, vam__bin_units[bin]);
  if (pg) vam__purge_note(); /* the span allocator's note is not on this path */
  if (pg == NULL) {
    pg = vam__span_alloc(vam__bin_units[bin], 1, NULL);
    if (pg == NULL) {
      set_direct(heap, bin);
      *no_memory = true;
      return NULL;
    }
    VAM_COUNT(pages_acquired);
    heap->page_count++;
#if VAM_SECURE_BUILD
    if (heap->slabs_made++ % VAM_GUARD_SLAB_RATIO == 0 &&
        pg->units * VAM_UNIT_SIZE - vam__os_config.page_size >= vam__bin_size[bin])
      vam__span_guard(pg);
#endif
  }
  vam__slab_init(pg, bin, heap);
  /* Mapped while this slab is ours: slab_give_back unsets it first. */
  heap->hot_chunk = (uintptr_t)vam__chunk_of(pg);
  queue_push_front(q, pg);
  heap->direct[bin] = pg;
  vam__slab_extend(pg);
  return vam__slab_pop(pg);
}

void vam__heap_free_slow_small(vam_span_t *pg, vam_block_t *b) {
  vam_heap_t *heap = vam__tls_heap;
  if (pg->heap == heap) {
    /* Our own page, parked on the full list: it has room again. */
    vam__slab_push(pg, b);
    pg->used--;
    if (pg->in_full) page_from_full(heap, pg);
    if (pg->used == 0) vam__heap_slab_empty(heap, pg);
    return;
  }
  vam__count_call(VAM_CALL_REMOTE_FREE);
  vam_heap_t *owner = pg->heap;
  if (owner->is_user) {
    /* Before the push: once the block is on the page's list the owner may
     * hand it out again and count it live. */
    vam_stat_add(&owner->live_bytes, -(uint64_t)pg->block_size);
    vam_stat_add(&owner->live_blocks, (uint64_t)-1);
    vam_stat_add(&owner->user_frees, 1);
  }
  vam__slab_remote_free(pg, b);
}

static void heap_reset_empty(vam_heap_t *heap);

/* Give back every page of a heap, blocks still out or not: the one-step
 * end of a first-class heap.  The caller guarantees nobody frees into
 * these pages any more. */
void vam__heap_release_all(vam_heap_t *heap) {
  drain_remote(heap);
  spare_release_all(heap, false);
  for (size_t bin = 1; bin < VAM_BINS; bin++) {
    while (heap->queues[bin].head) {
      heap->counters.discarded += heap->queues[bin].head->used;
      page_release(heap, heap->queues[bin].head);
    }
  }
  while (heap->full.head) {
    vam_span_t *pg = heap->full.head;
    queue_remove(&heap->full, pg);
    heap->counters.discarded += pg->used;
    pg->in_full = 0;
    slab_give_back(heap, pg, false);
  }
  vam_store_relaxed(&heap->remote_pages, NULL);
  heap_reset_empty(heap);
}

static void heap_reset_empty(vam_heap_t *heap) {
  for (size_t bin = 0; bin < VAM_BINS; bin++) heap->direct[bin] = &vam__empty_slab;
  heap->hot_chunk = VAM_NO_CHUNK;
}

/* Give back every empty page of a heap (used at thread exit and by the pool
 * collector).  Pages still holding blocks stay with the heap. */
static void heap_trim(vam_heap_t *heap) {
  drain_remote(heap);
  spare_release_all(heap, false);
  large_cache_release_all(heap, false);
  for (size_t bin = 1; bin < VAM_BINS; bin++) {
    vam_span_t *pg = heap->queues[bin].head;
    while (pg) {
      vam_span_t *next = pg->next;
      if (pg->used == 0) page_release(heap, pg);
      pg = next;
    }
  }
}


static vam_heap_t *heap_acquire(void) {
  pthread_mutex_lock(&pool_lock);
  vam_heap_t *heap = pool;
  if (heap) pool = heap->pool_next;
  pthread_mutex_unlock(&pool_lock);
  if (heap) {
    heap->pool_next = NULL;
    VAM_COUNT(heaps_reused);
  } else {
    heap = vam__meta_alloc(sizeof(vam_heap_t));
    if (heap == NULL) return NULL;
    heap_reset_empty(heap);
    memcpy(heap->bin_of_small, vam__bin_of_small, sizeof heap->bin_of_small);
    pthread_mutex_lock(&pool_lock);
    heap->all_next = all_heaps;
    all_heaps = heap;
    pthread_mutex_unlock(&pool_lock);
    VAM_COUNT(heaps_created);
  }
  VAM_GAUGE(live_heaps, 1);
  return heap;
}

static void pool_push(vam_heap_t *heap) {
  pthread_mutex_lock(&pool_lock);
  heap->pool_next = pool;
  pool = heap;
  pthread_mutex_unlock(&pool_lock);
}

static void heap_thread_exit(void *arg) {
  vam_heap_t *heap = arg;
  tls_state = TLS_DONE;
  vam__tls_heap = &vam__empty_heap;
  if (heap == NULL || heap == &vam__empty_heap) return;
  heap_trim(heap);
  VAM_GAUGE(live_heaps, -1);
  pool_push(heap);
}

void vam__heap_thread_init(void) {
  if (tls_state != TLS_FRESH) return;
  vam_heap_t *heap = heap_acquire();
  if (heap == NULL) return; /* stays on the shared heap; retried next time */
  tls_state = TLS_ACTIVE;
  vam__tls_heap = heap;
  /* May allocate (glibc's second-level key array): the heap is in place. */
  if (key_ready) pthread_setspecific(heap_key, heap);
}

vam_heap_t *vam__heap_for_slow_path(bool *locked) {
  *locked = false;
  vam_heap_t *heap = vam__tls_heap;
  if (vam_likely(heap != &vam__empty_heap)) return heap;
  vam__ensure_init();
  if (tls_state == TLS_FRESH) {
    vam__heap_thread_init();
    heap = vam__tls_heap;
    if (heap != &vam__empty_heap) return heap;
  }
  pthread_mutex_lock(&shared_lock);
  *locked = true;
  return &shared_heap;
}

void vam__heap_unlock_shared(bool locked) {
  if (locked) pthread_mutex_unlock(&shared_lock);
}

/* The calling thread's empty slabs (spares, and the empty pages kept at
 * the head of their bins) go back; only the owner may touch them.  For
 * vam_collect(true) and the out-of-memory path. */
void vam__heap_trim_own(void) {
  vam_heap_t *heap = vam__tls_heap;
  if (heap != &vam__empty_heap) heap_trim(heap);
}

void vam__heap_pool_collect(void) {
  pthread_mutex_lock(&pool_lock);
  vam_heap_t *list = pool;
  pool = NULL;
  pthread_mutex_unlock(&pool_lock);
  while (list) {
    vam_heap_t *next = list->pool_next;
    heap_trim(list);
    pool_push(list);
    list = next;
  }
  if (pthread_mutex_trylock(&shared_lock) == 0) {
    heap_trim(&shared_heap);
    pthread_mutex_unlock(&shared_lock);
  }
}

/* Counters of first-class heaps that were destroyed, kept for the totals. */
static vam_heap_counters_t retired;

static void counters_add(vam_heap_counters_t *to, const vam_heap_counters_t *from) {
  for (size_t b = 0; b < VAM_BINS; b++) to->bin_mallocs[b] += from->bin_mallocs[b];
  to->collected += from->collected;
  to->discarded += from->discarded;
  for (size_t k = 0; k < VAM_CALL_KINDS; k++) to->calls[k] += from->calls[k];
}

/* First-class heaps join the list every report sums over, and leave it
 * with their counters folded into `retired`. */
void vam__heap_register(vam_heap_t *heap) {
  pthread_mutex_lock(&pool_lock);
  heap->all_next = all_heaps;
  all_heaps = heap;
  pthread_mutex_unlock(&pool_lock);
}

void vam__heap_unregister(vam_heap_t *heap) {
  pthread_mutex_lock(&pool_lock);
  for (vam_heap_t **pp = &all_heaps; *pp; pp = &(*pp)->all_next) {
    if (*pp == heap) {
      *pp = heap->all_next;
      break;
    }
  }
  counters_add(&retired, &heap->counters);
  pthread_mutex_unlock(&pool_lock);
}

void vam__heap_sum_counters(vam_heap_counters_t *sum) {
  pthread_mutex_lock(&pool_lock);
  counters_add(sum, &retired);
  for (vam_heap_t *h = all_heaps; h; h = h->all_next) counters_add(sum, &h->counters);
  pthread_mutex_unlock(&pool_lock);
  counters_add(sum, &shared_heap.counters);
  for (size_t k = 0; k < VAM_CALL_KINDS; k++) sum->calls[k] += vam_load_relaxed(&vam__heapless_calls[k]);
}

int vam__heap_init(void) {
  int err = pthread_key_create(&heap_key, heap_thread_exit);
  key_ready = err == 0;
  return err;
}

/* fork: hold every lock across fork() so the child never inherits one held
 * by a thread that does not exist there. */
void vam__heap_fork_prepare(void) {
  pthread_mutex_lock(&shared_lock); /* the order every other path takes */
  pthread_mutex_lock(&pool_lock);
}
void vam__heap_fork_parent(void) {
  pthread_mutex_unlock(&pool_lock);
  pthread_mutex_unlock(&shared_lock);
}
void vam__heap_fork_child(void) {
  pthread_mutex_init(&shared_lock, NULL);
  pthread_mutex_init(&pool_lock, NULL);
  /* The pool stays as it was (nobody touches a pooled heap without the pool
   * lock).  The heaps of threads that did not come along may have been
   * mid-update when fork struck: they are abandoned, never handed out in
   * the child, and their pages leak there (a little memory, in the child
   * only).  First-class heaps are their owners' (userheap.c), never pooled. */
}
