/* Metadata a linear overflow cannot reach (chunk.c, huge.c).
 *
 * - Every chunk starts with a PROT_NONE page before its descriptors: a
 *   write running off the end of the chunk below (its last bytes, then the
 *   next chunk) dies on the guard, and the next chunk's descriptors are
 *   unchanged.
 * - Every huge object has a PROT_NONE page before its header: an overflow
 *   off the end of the object below it in the region dies there.
 * - The guards go when the memory is reused: a freed huge range serves a
 *   block that is written end to end.
 * Each overflow runs in a forked child, which must die of SIGSEGV. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include "internal.h"

/* Run fn(arg) in a child; its exit: the signal that killed it, or 0. */
static int child_signal(void (*fn)(void *), void *arg) {
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    signal(SIGSEGV, SIG_DFL); /* not cmocka's handler: die of it */
    signal(SIGBUS, SIG_DFL);
    fn(arg);
    _exit(0);
  }
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

/* An opaque copy of the bytes: the overflow the compiler cannot drop. */
static void overflow(uint8_t *from, size_t n) {
  volatile uint8_t *p = from;
  for (size_t i = 0; i < n; i++) p[i] = 0xa5;
}

static void write_across(void *arg) {
  /* the last 64 bytes of the chunk below, then into the next one */
  overflow((uint8_t *)arg - 64, 64 + VAM_CHUNK_GUARD + 256);
}

static void test_chunk_front_guard(void **state) {
  (void)state;
  if (vam__os_config.page_size != VAM_CHUNK_GUARD) skip(); /* documented: 4 KiB pages only */
  /* Large blocks until two chunks sit next to each other. */
  enum { N = 64 };
  void *v[N];
  uint8_t *next = NULL;
  int n = 0;
  for (; n < N && next == NULL; n++) {
    v[n] = vam_malloc(1 << 20);
    assert_non_null(v[n]);
    uint8_t *c = (uint8_t *)vam__chunk_of(v[n]);
    if (vam__chunkmap_kind((uintptr_t)c - VAM_CHUNK_SIZE) == VAM_MAP_CHUNK) next = c;
    else if (vam__chunkmap_kind((uintptr_t)c + VAM_CHUNK_SIZE) == VAM_MAP_CHUNK) next = c + VAM_CHUNK_SIZE;
  }
  assert_non_null(next);
  vam_chunk_t *c = (vam_chunk_t *)next;
  assert_int_equal(c->front_guarded, 1);
  assert_int_equal(c->magic, VAM_CHUNK_MAGIC);
  vam_span_t before = c->spans[1];
  assert_int_equal(child_signal(write_across, next), SIGSEGV);
  /* (in the child; here nothing was written, and the guard stays) */
  assert_memory_equal(&before, &c->spans[1], sizeof before);
  for (int i = 0; i < n; i++) vam_free(v[i]);
}

static uint8_t *overflow_to; /* write_off_end runs up to here */

static void write_off_end(void *arg) {
  uint8_t *p = arg, *from = p + vam_usable_size(p) - 64;
  overflow(from, (size_t)(overflow_to - from));
}

static void test_huge_front_guard(void **state) {
  (void)state;
  size_t size = 6 << 20;
  uint8_t *a = vam_malloc(size), *b = vam_malloc(size);
  assert_non_null(a);
  assert_non_null(b);
  if (b < a) {
    uint8_t *t = a;
    a = b;
    b = t;
  }
  vam_huge_t *ha = vam__huge_of(a), *hb = vam__huge_of(b);
  assert_non_null(ha);
  assert_non_null(hb);
  assert_int_equal(ha->front_guarded, 1);
  assert_int_equal(hb->front_guarded, 1);
  /* the header lives one page past the guard, both before the data */
  assert_ptr_equal((uint8_t *)ha, ha->map_base + vam__os_config.page_size);
  assert_true((uint8_t *)(ha + 1) <= a);
  /* An overflow off the end of a (through whatever free range of the
   * region lies between) dies before it reaches b's header. */
  vam_huge_t before = *hb;
  overflow_to = (uint8_t *)(hb + 1);
  assert_int_equal(child_signal(write_off_end, a), SIGSEGV);
  assert_memory_equal(&before, hb, sizeof before);
  vam_free(a);
  vam_free(b);
  /* The ranges are reused with the guards lifted: written end to end. */
  uint8_t *c = vam_malloc(2 * size), *d = vam_malloc(size);
  assert_non_null(c);
  assert_non_null(d);
  memset(c, 1, 2 * size);
  memset(d, 1, size);
  vam_free(c);
  vam_free(d);
}

int main(void) {
  vam__ensure_init();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_chunk_front_guard),
      cmocka_unit_test(test_huge_front_guard),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
