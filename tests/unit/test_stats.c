/* Statistics: the counters move with real allocations, and the JSON report
 * is one line holding every counter of the table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <unistd.h>
#include <cmocka.h>
#include "internal.h"

static char out[65536];
static const char *report(int format) {
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  vam_stats_print(fds[1], format);
  close(fds[1]);
  size_t len = 0;
  ssize_t n;
  while ((n = read(fds[0], out + len, sizeof out - 1 - len)) > 0) len += (size_t)n;
  close(fds[0]);
  out[len] = 0;
  return out;
}

static uint64_t json_u64(const char *json, const char *key) {
  char pat[128];
  size_t kl = strlen(key);
  pat[0] = '"';
  memcpy(pat + 1, key, kl);
  memcpy(pat + 1 + kl, "\":", 3);
  const char *p = strstr(json, pat);
  assert_non_null(p);
  p += strlen(pat);
  uint64_t v = 0;
  while (*p >= '0' && *p <= '9') v = v * 10 + (uint64_t)(*p++ - '0');
  return v;
}

static void test_counters_follow_calls(void **state) {
  (void)state;
  const char *j = report(VAM_STATS_JSON);
  uint64_t m0 = json_u64(j, "malloc_calls"), f0 = json_u64(j, "free_calls");
  uint64_t h0 = json_u64(j, "huge_allocs");
  void *p[1000];
  for (int i = 0; i < 1000; i++) p[i] = vam_malloc(64);
  for (int i = 0; i < 1000; i++) vam_free(p[i]);
  void *h = vam_malloc(16 << 20);
  vam_free(h);
  j = report(VAM_STATS_JSON);
  assert_int_equal(json_u64(j, "malloc_calls") - m0, 1001);
  assert_int_equal(json_u64(j, "free_calls") - f0, 1001);
  assert_int_equal(json_u64(j, "huge_allocs") - h0, 1);
  assert_true(json_u64(j, "reserved_bytes") >= VAM_CHUNK_SIZE);
  assert_true(json_u64(j, "mmap_calls") >= 1);
}

static void test_json_shape(void **state) {
  (void)state;
  const char *j = report(VAM_STATS_JSON);
  assert_int_equal(j[0], '{');
  assert_non_null(strstr(j, "}\n"));
  /* One line: the first newline is the last character. */
  const char *nl = strchr(j, '\n');
  assert_non_null(nl);
  assert_int_equal(nl[1], '\0');
  assert_non_null(strstr(j, "\"vamalloc_version\":\"0.1.0\""));
  assert_non_null(strstr(j, "\"health\":\"ok\""));
#define CHECK_KEY(name, doc) assert_non_null(strstr(j, "\"" #name "\":"));
  VAM_STAT_COUNTERS(CHECK_KEY)
#undef CHECK_KEY
#define CHECK_GAUGE(name, doc) assert_non_null(strstr(j, "\"" #name "_peak\":"));
  VAM_STAT_GAUGES(CHECK_GAUGE)
#undef CHECK_GAUGE
}

static void test_text_shape(void **state) {
  (void)state;
  const char *t = report(VAM_STATS_TEXT);
  assert_non_null(strstr(t, "vamalloc: statistics\n"));
  assert_non_null(strstr(t, "malloc_calls"));
  assert_non_null(strstr(t, "madvise_calls"));
}

int main(void) {
  vam__ensure_init();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_counters_follow_calls),
      cmocka_unit_test(test_json_shape),
      cmocka_unit_test(test_text_shape),
  };
  return cmocka_run_group_tests_name("stats", tests, NULL, NULL);
}
