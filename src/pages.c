/* pages.c: the page API for garbage collectors (vam_pages_*).  In progress. */
#include "internal.h"
