/* Options: good values are taken, bad ones produce exactly one stderr line
 * naming the variable, the bad value and the value used instead, unknown
 * VAMALLOC_ variables are reported, and the table prints as docs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <unistd.h>
#include <cmocka.h>
#include "internal.h"

/* Run vam__options_init(env) with fd 2 captured; returns the text. */
static char captured[8192];
static const char *capture_options_init(char **env) {
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  int saved = dup(2);
  dup2(fds[1], 2);
  vam__options_init(env);
  dup2(saved, 2);
  close(saved);
  close(fds[1]);
  ssize_t n = read(fds[0], captured, sizeof captured - 1);
  close(fds[0]);
  captured[n > 0 ? n : 0] = 0;
  return captured;
}

static int count_lines(const char *s) {
  int n = 0;
  for (; *s; s++) n += *s == '\n';
  return n;
}

static void test_good_values(void **state) {
  (void)state;
  vam_options_t saved = vam__options;
  char *env[] = {"VAMALLOC_RETRY_MAX=250", "VAMALLOC_STATS=json", "VAMALLOC_VERBOSE=yes",
                 "VAMALLOC_ON_CORRUPTION=warn", "PATH=/bin", NULL};
  const char *out = capture_options_init(env);
  assert_string_equal(out, "");
  assert_int_equal(vam__options.retry_max, 250);
  assert_int_equal(vam__options.stats, VAM_STATS_ON_JSON);
  assert_int_equal(vam__options.verbose, 1);
  assert_int_equal(vam__options.on_corruption, VAM_CORRUPT_WARN);
  char *env2[] = {"VAMALLOC_STATS=1", NULL};
  capture_options_init(env2);
  assert_int_equal(vam__options.stats, VAM_STATS_ON_TEXT);
  vam__options = saved;
}

static void test_bad_values(void **state) {
  (void)state;
  vam_options_t saved = vam__options;
  char *env[] = {"VAMALLOC_RETRY_MAX=abc", NULL};
  const char *out = capture_options_init(env);
  assert_int_equal(count_lines(out), 1);
  assert_non_null(strstr(out, "VAMALLOC_RETRY_MAX"));
  assert_non_null(strstr(out, "'abc'"));
  assert_non_null(strstr(out, "using 100"));
  assert_int_equal(vam__options.retry_max, 100);

  char *env2[] = {"VAMALLOC_RETRY_DELAY_US=2000000", NULL}; /* out of range */
  out = capture_options_init(env2);
  assert_int_equal(count_lines(out), 1);
  assert_non_null(strstr(out, "0..1000000"));
  assert_non_null(strstr(out, "using 1000"));

  char *env3[] = {"VAMALLOC_STATS=loud", "VAMALLOC_VERBOSE=2", "VAMALLOC_RETRY_MAX=-1",
                  "VAMALLOC_CHUNK_CACHE=", NULL};
  out = capture_options_init(env3);
  assert_int_equal(count_lines(out), 4);
  assert_non_null(strstr(out, "VAMALLOC_STATS='loud' is not one of off|text|json; using off"));
  vam__options = saved;
}

static void test_unknown_variable(void **state) {
  (void)state;
  char *env[] = {"VAMALLOC_NO_SUCH_THING=1", NULL};
  const char *out = capture_options_init(env);
  assert_int_equal(count_lines(out), 1);
  assert_non_null(strstr(out, "VAMALLOC_NO_SUCH_THING"));
}

static void test_faults_spec(void **state) {
  (void)state;
  vam_options_t saved = vam__options;
  char *bad[] = {"VAMALLOC_FAULTS=madvise=EWHAT", NULL};
  const char *out = capture_options_init(bad);
  assert_int_equal(count_lines(out), 1);
  assert_non_null(strstr(out, "VAMALLOC_FAULTS='madvise=EWHAT'"));
  assert_non_null(strstr(out, "using none"));
  assert_int_equal(vam__options.faults, 0);
  /* a release library has no hook: a valid spec is taken but the user is
   * told it does nothing (with -Dfault_injection=true it just works) */
  char *good[] = {"VAMALLOC_FAULTS=madvise=EAGAIN:every=3", NULL};
  out = capture_options_init(good);
  if (vam__os_fault_spec("madvise=EAGAIN", false) == ENOTSUP) {
    assert_int_equal(count_lines(out), 1);
    assert_non_null(strstr(out, "has no effect"));
  } else {
    assert_string_equal(out, "");
  }
  assert_non_null((const char *)(uintptr_t)vam__options.faults);
  vam__options = saved;
}

/* What a secure-execution program prints (test_secure_exec runs one): one
 * line naming at most 8 variables, none when none is set, nothing taken. */
static char captured_ignore[8192];
static const char *capture_ignore(char **env) {
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  int saved = dup(2);
  dup2(fds[1], 2);
  vam__options_ignore(env);
  dup2(saved, 2);
  close(saved);
  close(fds[1]);
  ssize_t n = read(fds[0], captured_ignore, sizeof captured_ignore - 1);
  close(fds[0]);
  captured_ignore[n > 0 ? n : 0] = 0;
  return captured_ignore;
}

static void test_secure_ignore(void **state) {
  (void)state;
  vam_options_t saved = vam__options;
  char *none[] = {"PATH=/bin", NULL};
  assert_string_equal(capture_ignore(none), "");
  char *many[] = {"VAMALLOC_ON_CORRUPTION=ignore", "VAMALLOC_A\x1b[2J=1", "VAMALLOC_3=1",
                  "VAMALLOC_4=1", "VAMALLOC_5=1", "VAMALLOC_6=1", "VAMALLOC_7=1",
                  "VAMALLOC_8=1", "VAMALLOC_NINTH=1", "VAMALLOC_TENTH=1", NULL};
  const char *out = capture_ignore(many);
  assert_int_equal(count_lines(out), 1);
  assert_non_null(strstr(out, "secure-execution"));
  assert_non_null(strstr(out, "VAMALLOC_ON_CORRUPTION, VAMALLOC_A?[2J, "));
  assert_non_null(strstr(out, "VAMALLOC_8, ...; the defaults apply"));
  assert_null(strstr(out, "NINTH"));
  assert_int_equal(vam__options.on_corruption, saved.on_corruption);
}

static void test_parse_sizes(void **state) {
  (void)state;
  uint64_t v;
  assert_true(vam__parse_u64("4096", &v, false) && v == 4096);
  assert_true(vam__parse_u64("64K", &v, true) && v == 65536);
  assert_true(vam__parse_u64("3MiB", &v, true) && v == 3u << 20);
  assert_true(vam__parse_u64("2g", &v, true) && v == 2ull << 30);
  assert_false(vam__parse_u64("2g", &v, false));
  assert_false(vam__parse_u64("", &v, true));
  assert_false(vam__parse_u64("12x", &v, true));
  assert_false(vam__parse_u64("99999999999999999999", &v, false));
  assert_false(vam__parse_u64("17179869184G", &v, true)); /* overflows */
}

static void test_docs_from_table(void **state) {
  (void)state;
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  vam_options_print(fds[1]);
  close(fds[1]);
  ssize_t n = read(fds[0], captured, sizeof captured - 1);
  close(fds[0]);
  captured[n] = 0;
#define CHECK_DOC(NAME, field, type, def, min, max, values, doc) \
  assert_non_null(strstr(captured, "VAMALLOC_" #NAME "\n"));    \
  assert_non_null(strstr(captured, doc));
  VAM_OPTIONS(CHECK_DOC)
#undef CHECK_DOC
}

int main(void) {
  vam__ensure_init();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_good_values),     cmocka_unit_test(test_bad_values),
      cmocka_unit_test(test_unknown_variable), cmocka_unit_test(test_parse_sizes),
      cmocka_unit_test(test_faults_spec),     cmocka_unit_test(test_secure_ignore),
      cmocka_unit_test(test_docs_from_table),
  };
  return cmocka_run_group_tests_name("options", tests, NULL, NULL);
}
