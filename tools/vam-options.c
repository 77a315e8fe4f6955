/* vam-options: print the VAMALLOC_* options table as markdown (for the
 * README) or as text (--text).  Generated from the one table in
 * src/internal.h. */
#include <string.h>
#include "internal.h"

int main(int argc, char **argv) {
  vam__ensure_init();
  if (argc > 1 && strcmp(argv[1], "--text") == 0) vam_options_print(1);
  else vam__options_markdown(1);
  return 0;
}
