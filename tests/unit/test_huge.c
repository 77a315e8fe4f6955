/* Huge objects (huge.c): realloc of an object alone in its region moves it
 * with mremap(MREMAP_FIXED).  The moment mremap returns, the old range is
 * free for anyone to map, so the chunk map must have forgotten the old
 * head before: a chunk mapped there meanwhile keeps its entry.  A failed
 * move leaves the object where it was, still known.
 *
 * This file defines mremap and munmap: the allocator, linked statically,
 * calls these, which force the move and play the thread that maps a chunk
 * into the freed range right after it (after the move's last unmap: the
 * old front guard page stays behind until then). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <cmocka.h>
#include "internal.h"

enum { PASS, SQUAT, SQUAT_AT_UNMAP, FAIL_MOVE };
static int mode = PASS;
static void *squatted;          /* the chunk mapped into the vacated range */
static unsigned kind_at_move;   /* the old head's map entry when mremap returned */
static void *moved_from;        /* the old head: its guard page is unmapped last */

static void squat(void *old) {
  /* Another thread's new chunk lands where the object was. */
  void *c = mmap(old, VAM_CHUNK_SIZE, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (c == old && vam__chunkmap_set((uintptr_t)c, VAM_MAP_CHUNK) == 0) squatted = c;
}

/* The move leaves the old front guard page behind and unmaps it after:
 * only then is the whole old range free to map. */
int munmap(void *addr, size_t size) {
  int r = (int)syscall(SYS_munmap, addr, size);
  if (r == 0 && mode == SQUAT_AT_UNMAP && addr == moved_from) {
    mode = PASS;
    squat(addr);
  }
  return r;
}

void *mremap(void *old, size_t old_size, size_t new_size, int flags, ...) {
  void *target = NULL;
  if (flags & MREMAP_FIXED) {
    va_list ap;
    va_start(ap, flags);
    target = va_arg(ap, void *);
    va_end(ap);
  }
  if (mode != PASS && (!(flags & MREMAP_MAYMOVE) || mode == FAIL_MOVE)) {
    errno = ENOMEM; /* in place: no room after it, so the object must move */
    return MAP_FAILED;
  }
  void *r = (void *)syscall(SYS_mremap, old, old_size, new_size, flags, target);
  if (r != MAP_FAILED && mode == SQUAT && (flags & MREMAP_FIXED)) {
    moved_from = vam__chunk_of(old);
    kind_at_move = vam__chunkmap_kind((uintptr_t)moved_from);
    mode = old == moved_from ? PASS : SQUAT_AT_UNMAP;
    if (mode == PASS) squat(old);
  }
  return r;
}

/* An object alone in a region of its own (no pool: regions are exact). */
static unsigned char *alone_object(size_t size) {
  vam__options.large_pool_max = 1 << 20;
  unsigned char *p = vam_malloc(size);
  assert_non_null(p);
  for (size_t i = 0; i < size; i += 4096) p[i] = (unsigned char)(i >> 12);
  return p;
}

static void check_contents(const unsigned char *p, size_t size) {
  for (size_t i = 0; i < size; i += 4096) assert_int_equal(p[i], (unsigned char)(i >> 12));
}

static void test_move_forgets_old_head_first(void **state) {
  (void)state;
  size_t size = 6 << 20;
  unsigned char *p = alone_object(size);
  uintptr_t old_head = (uintptr_t)vam__chunk_of(p);
  assert_int_equal(vam__chunkmap_kind(old_head), VAM_MAP_HUGE_HEAD);
  squatted = NULL;
  mode = SQUAT;
  unsigned char *q = vam_realloc(p, 20 << 20);
  mode = PASS;
  assert_non_null(q);
  assert_ptr_not_equal(q, p); /* it moved */
  assert_ptr_equal(moved_from, (void *)old_head);
  assert_non_null(squatted);
  assert_ptr_equal(squatted, (void *)old_head);
  /* The squatter's chunk is still known as a chunk. */
  assert_int_equal(vam__chunkmap_kind(old_head), VAM_MAP_CHUNK);
  assert_int_equal(kind_at_move, VAM_MAP_NONE); /* forgotten before mremap */
  check_contents(q, size);
  assert_int_equal(vam_usable_size(q), 20 << 20);
  vam__chunkmap_set(old_head, VAM_MAP_NONE);
  munmap(squatted, VAM_CHUNK_SIZE);
  vam_free(q);
  vam__options.large_pool_max = 0;
}

static void test_failed_move_keeps_object(void **state) {
  (void)state;
  size_t size = 6 << 20;
  unsigned char *p = alone_object(size);
  uintptr_t head = (uintptr_t)vam__chunk_of(p);
  uint64_t foreign0 = vam_load_relaxed(&vam__stats.foreign_frees);
  int64_t huge0 = vam_load_relaxed(&vam__stats.huge_bytes.current);
  mode = FAIL_MOVE;
  unsigned char *q = vam_realloc(p, 20 << 20); /* copied instead */
  mode = PASS;
  assert_non_null(q);
  check_contents(q, size);
  /* The old object was still known, so realloc's free of it worked. */
  assert_int_equal(vam_load_relaxed(&vam__stats.foreign_frees), foreign0);
  assert_int_not_equal(vam__chunkmap_kind(head), VAM_MAP_HUGE_HEAD);
  assert_int_equal(vam_load_relaxed(&vam__stats.huge_bytes.current),
                   huge0 - (int64_t)size + (20 << 20));
  vam_free(q);
  vam__options.large_pool_max = 0;
}

/* One object per region (no pool): more live huge blocks than the first
 * table of regions holds, and than the fixed table of 1,024 there used to
 * be; every one is served and freed. */
#define MANY_HUGE 1100
static void test_regions_past_fixed_table(void **state) {
  (void)state;
  static void *v[MANY_HUGE];
  vam__options.large_pool_max = 1 << 20;
  size_t size = ((size_t)4 << 20) + 1;
  for (int i = 0; i < MANY_HUGE; i++) {
    v[i] = vam_malloc(size);
    if (v[i] == NULL) fail_msg("huge block %d of %d: NULL", i + 1, MANY_HUGE);
    ((char *)v[i])[size - 1] = (char)i;
  }
  for (int i = 0; i < MANY_HUGE; i++) {
    assert_int_equal(((char *)v[i])[size - 1], (char)i);
    vam_free(v[i]);
  }
  vam__options.large_pool_max = 0;
}

int main(void) {
  vam__ensure_init();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_regions_past_fixed_table),
      cmocka_unit_test(test_move_forgets_old_head_first),
      cmocka_unit_test(test_failed_move_keeps_object),
  };
  return cmocka_run_group_tests_name("huge", tests, NULL, NULL);
}
