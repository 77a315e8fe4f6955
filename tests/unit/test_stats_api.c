/* The public statistics and health API: vam_stats_get versioned by size,
 * counters that follow real calls, a JSON report that a real JSON parser
 * accepts with every field of the list in it, and vam_health going from ok
 * to degraded under an injected fault and back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include "internal.h"

static void faults(const char *spec) { assert_int_equal(vam__os_fault_spec(spec, true), 0); }

static void test_short_struct_gets_its_prefix(void **state) {
  (void)state;
  unsigned char buf[sizeof(vam_stats_t) + 64];
  const size_t sizes[] = {8, 12, offsetof(vam_stats_t, calloc_calls), offsetof(vam_stats_t, calloc_calls) + 3,
                          sizeof(vam_stats_t) - 8, sizeof(vam_stats_t)};
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    size_t n = sizes[k];
    memset(buf, 0xee, sizeof buf);
    assert_int_equal(vam_stats_get((vam_stats_t *)(void *)buf, n), n);
    uint64_t filled;
    memcpy(&filled, buf, 8);
    assert_int_equal(filled, n); /* struct_size says how much is there */
    for (size_t i = n; i < sizeof buf; i++)
      if (buf[i] != 0xee) fail_msg("byte %zu written with struct_size %zu", i, n);
  }
  /* a newer caller's bigger struct: only what this library knows */
  memset(buf, 0xee, sizeof buf);
  assert_int_equal(vam_stats_get((vam_stats_t *)(void *)buf, sizeof buf), sizeof(vam_stats_t));
  for (size_t i = sizeof(vam_stats_t); i < sizeof buf; i++) assert_int_equal(buf[i], 0xee);
  vam_stats_t s;
  memcpy(&s, buf, sizeof s);
  assert_int_equal(s.struct_size, sizeof(vam_stats_t));
  /* a prefix is the same data as the whole (mmap_calls moves only with mmaps) */
  vam_stats_t part;
  memset(&part, 0, sizeof part);
  size_t upto = offsetof(vam_stats_t, mmap_calls) + sizeof(uint64_t);
  assert_int_equal(vam_stats_get(&part, upto), upto);
  assert_int_equal(part.mmap_calls, s.mmap_calls);
}

static void test_bad_arguments(void **state) {
  (void)state;
  vam_stats_t s;
  errno = 0;
  assert_int_equal(vam_stats_get(NULL, sizeof s), 0);
  assert_int_equal(errno, EINVAL);
  errno = 0;
  memset(&s, 0xee, sizeof s);
  assert_int_equal(vam_stats_get(&s, 7), 0);
  assert_int_equal(errno, EINVAL);
  assert_int_equal(s.struct_size, 0xeeeeeeeeeeeeeeeeull); /* untouched */
  errno = 0;
  assert_int_equal(vam_stats_get(&s, 0), 0);
  assert_int_equal(errno, EINVAL);
}

static void test_counters_follow_calls(void **state) {
  (void)state;
  vam_stats_t a, b;
  assert_int_equal(vam_stats_get(&a, sizeof a), sizeof a);
  void *p[1000];
  for (int i = 0; i < 1000; i++) p[i] = vam_malloc(48);
  for (int i = 0; i < 1000; i++) vam_free(p[i]);
  void *h = vam_calloc(1, 16 << 20);
  vam_free(h);
  size_t pg = vam_page_size();
  void *r = vam_pages_reserve(8 * pg, 0, 0);
  assert_non_null(r);
  assert_int_equal(vam_pages_commit(r, 8 * pg), 0);
  assert_int_equal(vam_pages_decommit(r, 4 * pg, 0), 0);
  vam_stats_t mid;
  assert_int_equal(vam_stats_get(&mid, sizeof mid), sizeof mid);
  assert_int_equal(vam_pages_release(r, 8 * pg), 0);
  assert_int_equal(vam_pages_commit(r, pg), EINVAL);
  assert_int_equal(vam_stats_get(&b, sizeof b), sizeof b);
  assert_int_equal(b.malloc_calls - a.malloc_calls, 1001);
  assert_int_equal(b.free_calls - a.free_calls, 1001);
  assert_int_equal(b.calloc_calls - a.calloc_calls, 1);
  assert_int_equal(b.huge_allocs - a.huge_allocs, 1);
  assert_true(b.bytes_allocated - a.bytes_allocated >= 48000);
  assert_true(b.mmap_calls > a.mmap_calls);
  assert_true(b.madvise_calls > a.madvise_calls); /* the decommit */
  assert_int_equal(b.pages_reserves - a.pages_reserves, 1);
  assert_int_equal(b.pages_commits - a.pages_commits, 1);
  assert_int_equal(b.pages_committed_bytes - a.pages_committed_bytes, 8 * pg);
  assert_int_equal(b.pages_decommits - a.pages_decommits, 1);
  assert_int_equal(b.pages_decommitted_bytes - a.pages_decommitted_bytes, 4 * pg);
  assert_int_equal(b.pages_releases - a.pages_releases, 1);
  assert_int_equal(b.pages_einval - a.pages_einval, 1);
  assert_int_equal(mid.pages_reserved - a.pages_reserved, 8 * pg); /* a gauge: up, */
  assert_int_equal(b.pages_reserved, a.pages_reserved);             /* and down again */
  assert_true(b.pages_reserved_peak >= mid.pages_reserved);
  assert_true(b.reserved_bytes_peak >= b.reserved_bytes);
}

/* The JSON report, through a real JSON parser: it must load, hold every
 * field of vam_stats_t as an integer, and carry a health reason with
 * quotes, backslashes and a newline intact. */
static const char check_py[] =
    "import json, sys\n"
    "d = json.load(open(sys.argv[1]))\n"
    "want_reason = sys.argv[2]\n"
    "assert d['health'] == 'degraded', d['health']\n"
    "assert d['health_reason'] == want_reason, repr(d['health_reason'])\n"
    "missing = [k for k in sys.argv[3:] if not isinstance(d.get(k), int)]\n"
    "assert not missing, missing\n"
    "print('json ok:', len(d), 'keys')\n";

static void test_json_parses(void **state) {
  (void)state;
  static const char reason[] = "test: a \"quoted\" reason \\ with\ta tab\nand a newline";
  vam__health_fail(VAM_HEALTH_META, reason);
  char path[] = "/tmp/vam-stats-json-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  vam_stats_print(fd, VAM_STATS_JSON);
  close(fd);
  vam__health_ok(VAM_HEALTH_META, "test over");
  assert_int_equal(vam_health(NULL), VAM_HEALTH_OK);

  const char *argv[256];
  size_t n = 0;
  argv[n++] = "python3";
  argv[n++] = "-c";
  argv[n++] = check_py;
  argv[n++] = path;
  argv[n++] = reason;
#define KEY1(name, doc) argv[n++] = #name;
#define KEYG(name, doc) argv[n++] = #name; argv[n++] = #name "_peak";
#define KEYO(call, doc) argv[n++] = #call "_calls"; argv[n++] = #call "_eagain"; \
  argv[n++] = #call "_retries"; argv[n++] = #call "_giveups"; argv[n++] = #call "_failures";
  VAMALLOC_STATS_FIELDS(KEY1, KEY1, KEYG, KEYO)
#undef KEY1
#undef KEYG
#undef KEYO
  argv[n] = NULL;
  assert_true(n < 256);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    execvp("python3", (char *const *)argv);
    _exit(127);
  }
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  unlink(path);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_text_report(void **state) {
  (void)state;
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  vam_stats_print(fds[1], VAM_STATS_TEXT);
  close(fds[1]);
  static char out[65536];
  size_t len = 0;
  ssize_t r;
  while ((r = read(fds[0], out + len, sizeof out - 1 - len)) > 0) len += (size_t)r;
  close(fds[0]);
  out[len] = 0;
  assert_non_null(strstr(out, "vamalloc: statistics\n"));
  assert_non_null(strstr(out, "pages_reserved "));
  assert_non_null(strstr(out, "pages_decommit_failures "));
}

/* ok, then degraded while the kernel refuses, then ok by itself. */
static void test_health_transitions(void **state) {
  (void)state;
  vam_health_t h;
  assert_int_equal(vam_health(&h), VAM_HEALTH_OK);
  assert_int_equal(h.status, VAM_HEALTH_OK);
  assert_string_equal(h.reason, "");
  uint64_t events0 = h.degrade_events, giveups0 = h.os_giveups, eagain0 = h.os_eagain;
  uint64_t fails0 = h.os_failures, dfail0 = h.decommit_failures;
  size_t pg = vam_page_size();
  unsigned char *r = vam_pages_reserve(2 * pg, 0, VAM_PAGES_COMMIT);
  assert_non_null(r);
  faults(vam__va_strict() ? "mmap=ENOMEM" : "madvise=EAGAIN");
  int err = vam_pages_decommit(r, 2 * pg, 0);
  faults("");
  assert_int_equal(err, vam__va_strict() ? ENOMEM : EAGAIN);
  assert_int_equal(vam_health(&h), VAM_HEALTH_DEGRADED);
  assert_int_equal(h.status, VAM_HEALTH_DEGRADED);
  assert_true(strlen(h.reason) > 0);
  assert_int_equal(h.degrade_events - events0, 1);
  assert_int_equal(h.decommit_failures - dfail0, 1);
  assert_true(h.os_failures > fails0);
  if (!vam__va_strict()) {
    assert_int_equal(h.os_giveups - giveups0, 1);
    assert_int_equal(h.os_eagain - eagain0, vam__os_retry_max + 1); /* every try */
  }
  vam_stats_t s;
  vam_stats_get(&s, sizeof s);
  assert_int_equal(s.degrade_events, h.degrade_events);
  assert_int_equal(vam_pages_decommit(r, 2 * pg, 0), 0); /* the kernel cooperates */
  assert_int_equal(vam_health(&h), VAM_HEALTH_OK);
  assert_string_equal(h.reason, "");
  assert_int_equal(h.degrade_events - events0, 1);
  assert_int_equal(vam_health(NULL), VAM_HEALTH_OK);
  assert_int_equal(vam_pages_release(r, 2 * pg), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_short_struct_gets_its_prefix),
      cmocka_unit_test(test_bad_arguments),
      cmocka_unit_test(test_counters_follow_calls),
      cmocka_unit_test(test_json_parses),
      cmocka_unit_test(test_text_report),
      cmocka_unit_test(test_health_transitions),
  };
  return cmocka_run_group_tests_name("stats_api", tests, NULL, NULL);
}
