/* main() for a cmocka test program of another suite, built into a
 * sanitizer suite with -Dmain=vam_san_test_main: it leaves out the tests
 * whose names match VAM_SAN_SKIP (a cmocka glob; see tests/README.md for
 * why each one is left out), then runs the program's own main. */
#undef main
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

int vam_san_test_main(void);

int main(void) {
  cmocka_set_skip_filter(VAM_SAN_SKIP);
  return vam_san_test_main();
}
