/* types.h: every struct of the allocator, and the constants that shape them.
 *
 * Memory layout, bottom up:
 *   chunk  CHUNK_SIZE (4 MiB) aligned reservation.  Unit 0 holds the chunk
 *          header (this struct); units 1..127 (32 KiB each) are handed out
 *          as spans.  free() finds the header by masking the pointer.
 *   span   a run of units: either a slab ("page") of equal-size blocks for
 *          one size class, or one large object.
 *   page   the descriptor of a span, kept in the chunk header at the index
 *          of the span's first unit; later units hold TAIL descriptors that
 *          point back to it.
 *   huge   objects above LARGE_MAX get their own CHUNK_SIZE-aligned mapping
 *          with a small header at its start.
 *   heap   one per thread (pooled and reused across threads), owning pages.
 */
#ifndef VAM_TYPES_H
#define VAM_TYPES_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "atomic.h"

#define VAM_CHUNK_SHIFT 22
#define VAM_CHUNK_SIZE ((size_t)1 << VAM_CHUNK_SHIFT)
#define VAM_CHUNK_MASK (VAM_CHUNK_SIZE - 1)
#define VAM_UNIT_SHIFT 15
#define VAM_UNIT_SIZE ((size_t)1 << VAM_UNIT_SHIFT)
#define VAM_UNITS (VAM_CHUNK_SIZE / VAM_UNIT_SIZE) /* 128, unit 0 = header */

/* Size classes (sizeclass.c has the spacing formula). */
#define VAM_SMALL_MAX ((size_t)256 * 1024)
#define VAM_FAST_MAX 1024           /* sizes served by the table lookup */
#define VAM_MID_MAX 32768           /* ... and by the coarser one (128-byte steps) */
#define VAM_BINS 98                 /* bins 1..VAM_BINS-1 are used; bin 0 = size 0 */
/* Large objects: spans of whole units inside a chunk. */
#define VAM_LARGE_MAX ((size_t)2 * 1024 * 1024)

/* The address range vamalloc ever maps at: user space below 2^48 on every
 * supported kernel (hints above 2^47 are never given). */
#define VAM_VA_BITS_MAX 48
#define VAM_MAP_LEAF_BITS 13
#define VAM_MAP_TOP_BITS (VAM_VA_BITS_MAX - VAM_CHUNK_SHIFT - VAM_MAP_LEAF_BITS)

/* A free block: its first word is an encoded link (slab.c), never a raw
 * pointer. */
/* The secure build (secure.c): canary bytes at the end of each small
 * block, a per-thread quarantine, guard pages. */
#ifdef VAM_SECURE
#define VAM_SECURE_BUILD 1
#define VAM_CANARY_SIZE 8
#else
#define VAM_SECURE_BUILD 0
#define VAM_CANARY_SIZE 0
#endif
#define VAM_QUARANTINE 256
/* link ^ key of a block in quarantine: no real link decodes to it (links
 * are 8-aligned), so a second free of it is certain to be a double free. */
#define VAM_QUARANTINED ((uintptr_t)1)

typedef struct vam_block {
  uintptr_t link;
} vam_block_t;

struct vam_heap;

typedef enum {
  VAM_SPAN_NONE = 0,  /* header unit or free units: free() here is invalid */
  VAM_SPAN_SMALL = 1, /* slab of blocks of one size class */
  VAM_SPAN_LARGE = 2, /* one large object */
  VAM_SPAN_TAIL = 3,  /* a later unit of a multi-unit span; head_offset
                         units back is the span's descriptor */
} vam_span_kind_t;

/* A span descriptor, one per unit so free() finds it by shifting the
 * pointer; 128 bytes so the index is a shift, not a multiply.  The first
 * 64 bytes are all the fast paths touch.
 *
 * Free lists are in-band but encoded (slab.c): a free block's first word
 * holds next ^ (its own address) ^ key, where next is the next free block
 * or, at the end of the list, the chunk's base address.  Both lie in the
 * block's chunk, so a decoded link that leaves the chunk is corruption. */
typedef struct __attribute__((aligned(128))) vam_span {
  vam_block_t *free;             /* next block to hand out (owner only);
                                    the chunk base (low bits 0) when empty */
  struct vam_heap *local_owner;  /* == owner heap while the page is in a bin
                                    queue; NULL when full/large/free, which
                                    routes free() to the slow path; written
                                    by the owner, read by any thread
                                    (vam_racy_load/store) */
  uintptr_t key;                 /* random secret the links are encoded with */
  uint8_t *start;                /* first block */
  uint64_t div_mul;              /* floor(2^64 / block_size) + 1 */
  uint64_t mallocs;              /* blocks handed out since the owner last
                                    folded this into its heap's counters */
  uint64_t div_limit;            /* capacity * (block_size * div_mul mod
                                    2^64): free's boundary test (internal.h) */
  uint32_t used;                 /* blocks out, as the owner knows it */
  uint16_t head_offset;          /* TAIL units: distance to the head unit */
  uint8_t kind;                  /* vam_span_kind_t */
  /* ---- second line: slow paths only ---- */
  vam_atomic(uintptr_t) xfree;   /* frees from other threads (encoded like
                                    free); bit 0 = page is queued on its
                                    heap's remote stack */
  struct vam_heap *heap;         /* owner, stable while the span is assigned */
  uint32_t block_size;
  uint32_t reserved;             /* blocks that fit */
  uint16_t units;                /* span length */
  uint8_t bin;
  uint8_t in_full;               /* on its heap's full list */
  uint8_t zeroed;                /* large: span known to read as zeroes */
  uint8_t guarded;               /* its last OS page is PROT_NONE (secure) */
  uint8_t lost;                  /* small: a corrupt free list was cut here
                                    (slab.c); its abandoned blocks still look
                                    free but are on no list */
  uint32_t capacity;             /* blocks carved so far (lazily) */
  struct vam_span *next, *prev;  /* bin queue or full list */
  vam_atomic(struct vam_span *) remote_next; /* heap remote stack link */
} vam_span_t;

typedef struct vam_span_queue {
  vam_span_t *head, *tail;
} vam_span_queue_t;

/* The first 4 KiB of every chunk are PROT_NONE where the OS page is 4 KiB
 * (chunk.c): a linear overflow off the end of the chunk below faults there
 * instead of rewriting these descriptors. */
#define VAM_CHUNK_GUARD 4096

typedef struct vam_chunk {
  uint8_t guard[VAM_CHUNK_GUARD];  /* never touched */
  vam_span_t spans[VAM_UNITS];     /* one per unit; a span's descriptor is
                                      at its first unit */
  uint64_t used_map[VAM_UNITS / 64];
  uint64_t dirty_map[VAM_UNITS / 64]; /* touched since the last successful decommit */
  uint32_t free_units;
  uint32_t magic;
  uint8_t part_of_arena; /* carved from a larger reservation: unmapping it
                            alone would split that mapping */
  uint8_t body_committed; /* strict mode: units 1.. are read/write */
  uint8_t front_guarded;  /* guard[] is PROT_NONE */
  uintptr_t list_end;     /* always 0: the end of every free list in this
                             chunk (slab.c); a pop that reads it fails the
                             link check and takes the slow path */
  uint8_t arena_slot;     /* 1 + index in chunk.c's arena table; 0 = none */
  uint32_t age;           /* reservation number: older chunks are used first */
  uint64_t free_since_ms; /* last free of a unit; 0 = nothing left to purge */
  struct vam_chunk *next, *prev;   /* chunk list (under the chunk lock) */
} vam_chunk_t;

_Static_assert(sizeof(vam_span_t) == 128, "page descriptors index by shift");
_Static_assert(sizeof(vam_chunk_t) <= VAM_UNIT_SIZE, "the chunk header fits in unit 0");

#define VAM_CHUNK_MAGIC 0x7661636bu
#define VAM_HUGE_MAGIC 0x76616875u

/* Header of a huge object: its mapping's second page, after a guard page. */
typedef struct vam_huge {
  uint32_t magic;
  uint32_t zeroed;
  uint8_t *map_base;
  size_t map_size;
  uint8_t *user;      /* the pointer handed out */
  size_t usable;      /* bytes usable at user */
  struct vam_heap *heap;               /* first-class heap, or NULL */
  struct vam_huge *heap_next, *heap_prev; /* that heap's huge objects */
  uint8_t guarded;    /* the page after usable is PROT_NONE (secure) */
  uint8_t front_guarded; /* the page before this header is PROT_NONE */
} vam_huge_t;

/* Per-heap counters, written only by the owning thread with plain stores;
 * readers sum them for reports.  The fast paths count nothing here: malloc
 * counts on its page (folded in when the page is given up), and frees are
 * derived: blocks handed out, minus those still out, minus those counted
 * elsewhere (stats.c). */
enum { VAM_CALL_CALLOC, VAM_CALL_REALLOC, VAM_CALL_ALIGNED, VAM_CALL_REMOTE_FREE, VAM_CALL_KINDS };

typedef struct vam_heap_counters {
  uint64_t bin_mallocs[VAM_BINS]; /* allocations served per size class (folded) */
  uint64_t collected;             /* remote frees taken back into this heap's pages */
  uint64_t discarded;             /* blocks still out when a heap was destroyed */
  uint64_t calls[VAM_CALL_KINDS];  /* calls by this thread (internal.h) */
} vam_heap_counters_t;

/* vam_heap_t.hot_chunk when no chunk is hot: never a chunk base (low bits
 * set), so no pointer's chunk compares equal, NULL's included. */
#define VAM_NO_CHUNK ((uintptr_t)1)

typedef struct vam_heap {
  vam_span_t *direct[VAM_BINS];   /* head of each bin queue, or the empty page */
  uint8_t bin_of_small[VAM_FAST_MAX + 1]; /* vam__bin_of_small's copy (all 0,
                                     the empty page's bin, in the static
                                     heaps): malloc's fast path indexes it
                                     off the heap it loaded anyway */
  uintptr_t hot_chunk;            /* the chunk of this heap's newest slab while
                                     the heap holds a slab there (so it stays
                                     mapped), else VAM_NO_CHUNK: free's fast
                                     path skips the chunk map for it */
  vam_heap_counters_t counters;
  vam_span_queue_t queues[VAM_BINS]; /* pages with (possibly) free blocks */
  vam_span_queue_t full;          /* pages with no free block */
  vam_atomic(vam_span_t *) remote_pages; /* pages with frees from other threads */
  struct vam_heap *pool_next;     /* heap pool (threads that exited) */
  struct vam_heap *all_next;      /* every heap ever made, for stats */
  uint32_t page_count;
  vam_span_t *spare;              /* empty slabs kept for reuse (page next) */
  uint32_t spare_units;           /* units held in spare slabs */
  vam_span_t *large_cache;        /* freed large spans kept for reuse (page next) */
  uint32_t large_cache_units;     /* units held there */
  uint64_t cache_used_ms;         /* vam__purge_clock_ms when a cache was last used */
  uint64_t key_seq;               /* free-list keys drawn (slab.c) */
#if VAM_SECURE_BUILD
  void *quarantine[VAM_QUARANTINE]; /* freed blocks waiting (secure.c) */
  uint32_t quarantine_pos;
  uint32_t slabs_made;            /* every GUARD_SLAB_RATIO-th gets a guard */
#endif
  bool is_shared;                 /* the locked heap for threads in teardown */
  bool is_user;                   /* a first-class heap (userheap.c) */
  /* First-class heaps only.  Allocation happens under `lock`; frees come
   * from any thread, lock-free for small blocks, so the live totals are
   * atomics. */
  pthread_mutex_t lock;
  vam_atomic(uint64_t) live_bytes;
  vam_atomic(uint64_t) live_blocks;
  vam_atomic(uint64_t) user_frees;
  uint64_t byte_limit, peak_bytes, limit_refusals, user_mallocs;
  vam_span_queue_t large;         /* live large spans (page next/prev) */
  vam_huge_t *huge;               /* live huge objects */
  struct vam_heap *user_next, *user_prev; /* every live first-class heap */
  char name[32];
} vam_heap_t;

#endif
