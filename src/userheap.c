/* userheap.c: first-class heaps (vam_heap_*).  In progress. */
#include "internal.h"
