/* vam-budget: print what vamalloc computed for this machine and this
 * process: VA bits and how they were found, RLIMIT_AS, the VA budget left
 * and the reservation unit, the commit strategy, the map-count headroom and
 * the effective settings.  `--json` for one JSON object.  The VAMALLOC_*
 * variables apply as they would in any program. */
#include <string.h>
#include "internal.h"

int main(int argc, char **argv) {
  bool json = argc > 1 && strcmp(argv[1], "--json") == 0;
  if (argc > 1 && !json) {
    vam__os_write(2, "usage: vam-budget [--json]\n", 27);
    return 2;
  }
  vam__ensure_init();
  vam__budget_print(1, json);
  return 0;
}
