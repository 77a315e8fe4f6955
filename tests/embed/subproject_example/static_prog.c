/* embed suite: a program built against the installed vamalloc (pkg-config)
 * or as a meson subproject.  It uses vamalloc beside libc malloc: malloc
 * must still be glibc's, vam_malloc and heap blocks vamalloc's.  Prints
 * "static-prog: ok" and exits 0 when all holds.  Built against an archive
 * made with -Doverride=true, define STATIC_PROG_OVERRIDE=1: then malloc
 * must be vamalloc's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vamalloc.h>

#ifndef STATIC_PROG_OVERRIDE
#define STATIC_PROG_OVERRIDE 0
#endif

int main(void)
{
    void *libc_block = malloc(16);
    void *vam_block = vam_malloc(16);
    vam_heap_t *heap = vam_heap_new(NULL);
    void *heap_block = heap ? vam_heap_malloc(heap, 100) : NULL;
    if (!libc_block || !vam_block || !heap_block) {
        puts("static-prog: allocation failed");
        return 2;
    }
    memset(libc_block, 1, 16);
    memset(vam_block, 2, 16);
    memset(heap_block, 3, 100);
    int malloc_is_vam = vam_owns(libc_block) != 0;
    int vam_owned = vam_owns(vam_block) != 0;
    int in_heap = vam_heap_of(heap_block) == heap;
    printf("static-prog: malloc is %s (expected %s), vam_malloc is %s, heap block %s its heap\n",
           malloc_is_vam ? "vamalloc's" : "libc's", STATIC_PROG_OVERRIDE ? "vamalloc's" : "libc's",
           vam_owned ? "vamalloc's" : "NOT vamalloc's", in_heap ? "in" : "NOT in");
    free(libc_block);
    vam_free(vam_block);
    vam_heap_destroy(heap);
    int ok = malloc_is_vam == STATIC_PROG_OVERRIDE && vam_owned && in_heap;
    puts(ok ? "static-prog: ok" : "static-prog: FAIL");
    return ok ? 0 : 1;
}
