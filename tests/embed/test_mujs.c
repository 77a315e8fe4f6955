/* embed suite: MuJS on first-class vamalloc heaps, linked statically against
 * libvamalloc.a.  MuJS takes one js_Alloc (realloc-like; size 0 frees); its
 * context is the vam_heap_t *.  Every block the engine gets must belong to
 * that heap (vam_heap_of).
 *
 * gc_script: GC_SCRIPT, 1,000 objects a round, 10 rounds, a forced js_gc
 *   every 2 (5 GCs); result checked against expected_result(); after
 *   js_freestate the heap has 0 live bytes and 0 live blocks.
 * destroy_live: 50 cycles of heap + engine + script, then vam_heap_destroy
 *   with the engine's objects live (no js_freestate); RSS and VmSize flat
 *   after a 10-cycle warm-up (1% + 512 KiB).
 * isolates: 4 threads, one MuJS state and one vamalloc heap each, at once.
 * byte_limit: on a 4 MiB heap an unbounded script ends in a caught "out of
 *   memory" error; the state then runs the script correctly after a GC.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <mujs.h>

#include "vamalloc.h"
#include "embed_common.h"

static _Thread_local int gc_calls;
static atomic_long foreign_blocks;

static void *vm_alloc(void *ctx, void *ptr, int size)
{
    vam_heap_t *heap = ctx;
    if (size <= 0) {
        vam_heap_free(heap, ptr);
        return NULL;
    }
    void *p = vam_heap_realloc(heap, ptr, (size_t)size);
    if (p && vam_heap_of(p) != heap)
        atomic_fetch_add(&foreign_blocks, 1);
    return p;
}

static void vm_panic(js_State *J)
{
    fprintf(stderr, "mujs panic: %s\n", js_trystring(J, -1, "?"));
    abort();
}

static void native_gc(js_State *J)
{
    js_gc(J, 0);
    gc_calls++;
    js_pushundefined(J);
}

static js_State *engine_new(vam_heap_t *heap)
{
    js_State *J = js_newstate(vm_alloc, heap, 0);
    if (J) {
        js_atpanic(J, vm_panic);
        js_newcfunction(J, native_gc, "gc", 0);
        js_setglobal(J, "gc");
    }
    return J;
}

static vam_heap_t *heap_new(const char *name, size_t limit)
{
    vam_heap_options o = {.struct_size = sizeof o, .byte_limit = limit, .name = name};
    return vam_heap_new(&o);
}

static vam_heap_stats_t heap_stats(vam_heap_t *heap)
{
    vam_heap_stats_t st;
    memset(&st, 0, sizeof st);
    if (vam_heap_stats(heap, &st, sizeof st) != 0)
        st.struct_size = 0;
    return st;
}

/* 0 and the numeric result, or -1 and the error message in err. */
static int eval_number(js_State *J, const char *src, double *out, char *err, size_t errlen)
{
    if (js_ploadstring(J, "[embed]", src) != 0) {
        if (err)
            snprintf(err, errlen, "%s", js_trystring(J, -1, "?"));
        js_pop(J, 1);
        return -1;
    }
    js_pushundefined(J);
    if (js_pcall(J, 0) != 0) {
        if (err)
            snprintf(err, errlen, "%s", js_trystring(J, -1, "?"));
        js_pop(J, 1);
        return -1;
    }
    *out = js_tonumber(J, -1);
    js_pop(J, 1);
    return 0;
}

static void test_gc_script(void **state)
{
    (void)state;
    enum { N = 1000, ROUNDS = 10, GC_EVERY = 2 };
    static char src[SCRIPT_BUF];
    const unsigned seed = 31337;
    make_script(src, sizeof src, seed, N, ROUNDS, GC_EVERY);
    uint64_t want = expected_result(seed, N, ROUNDS);
    long foreign0 = atomic_load(&foreign_blocks);

    vam_heap_t *heap = heap_new("mujs-main", 0);
    assert_non_null(heap);
    js_State *J = engine_new(heap);
    assert_non_null(J);
    gc_calls = 0;
    double got = -1;
    char err[256] = "";
    int rc = eval_number(J, src, &got, err, sizeof err);
    if (rc != 0)
        print_message("script error: %s\n", err);
    assert_int_equal(rc, 0);
    assert_true(got == (double)want);
    assert_true(gc_calls >= 5);
    assert_true(heap_stats(heap).live_bytes > 0);
    js_freestate(J);
    vam_heap_stats_t end = heap_stats(heap);
    print_message("gc_script: result %.0f (expected %llu), %d forced GCs, peak %llu KiB, "
                  "%llu allocations\n", got, (unsigned long long)want, gc_calls,
                  (unsigned long long)(end.peak_bytes / 1024),
                  (unsigned long long)end.malloc_calls);
    assert_int_equal(end.live_bytes, 0);
    assert_int_equal(end.live_blocks, 0);
    vam_heap_destroy(heap);
    assert_int_equal(atomic_load(&foreign_blocks), foreign0);
}

static void test_destroy_live(void **state)
{
    (void)state;
    enum { CYCLES = 50, WARMUP = 10, N = 200, ROUNDS = 1, LIVE = 1500 };
    static char src[SCRIPT_BUF + 512];
    const unsigned seed = 4711;
    snprintf(src, sizeof src, "%s"
             "var live = [], pad = new Array(501).join('p');\n"
             "for (var j = 0; j < %d; j++) live.push({ j: j, s: pad + j, a: [j, j] });\n"
             "var big = 'L'; while (big.length < 65536) big = big + big;\n"
             "for (var k = 0; k < 8; k++) live.push(big + k);\n"
             "run(%u, %d, %d, 1);\n", GC_SCRIPT, LIVE, seed, N, ROUNDS);
    uint64_t want = expected_result(seed, N, ROUNDS);
    size_t rss_warm = 0, vsz_warm = 0, rss_end, vsz_end;
    uint64_t live_min = UINT64_MAX;
    for (int c = 0; c < CYCLES; c++) {
        vam_heap_t *heap = heap_new("mujs-cycle", 0);
        assert_non_null(heap);
        js_State *J = engine_new(heap);
        assert_non_null(J);
        double got = -1;
        assert_int_equal(eval_number(J, src, &got, NULL, 0), 0);
        assert_true(got == (double)want);
        uint64_t live = heap_stats(heap).live_bytes;
        live_min = live < live_min ? live : live_min;
        vam_heap_destroy(heap); /* no js_freestate */
        if (c + 1 == WARMUP) {
            vam_collect(true);
            proc_mem(&rss_warm, &vsz_warm);
        }
    }
    vam_collect(true);
    proc_mem(&rss_end, &vsz_end);
    print_message("destroy_live: %d cycles, >= %llu KiB live at each destroy; RSS after %d "
                  "cycles %zu KiB, after %d %zu KiB; VmSize %zu KiB -> %zu KiB\n", CYCLES,
                  (unsigned long long)(live_min / 1024), WARMUP, rss_warm / KiB, CYCLES,
                  rss_end / KiB, vsz_warm / KiB, vsz_end / KiB);
    assert_true(live_min >= MiB);
    assert_true(rss_end <= rss_warm + rss_warm / 100 + 512 * KiB);
    assert_true(vsz_end <= vsz_warm + vsz_warm / 100 + 512 * KiB);
}

enum { ISOLATES = 4, ISO_N = 500, ISO_ROUNDS = 10, ISO_GC_EVERY = 2 };

struct isolate {
    pthread_t tid;
    int id;
    pthread_barrier_t *start;
    unsigned seed;
    double result;
    int rc, gcs;
    uint64_t live_after, blocks_after;
    char err[160];
};

static void *isolate_main(void *arg)
{
    struct isolate *iso = arg;
    char name[32], *src = malloc(SCRIPT_BUF);
    snprintf(name, sizeof name, "mujs-isolate-%d", iso->id);
    iso->rc = -1;
    if (!src)
        return NULL;
    make_script(src, SCRIPT_BUF, iso->seed, ISO_N, ISO_ROUNDS, ISO_GC_EVERY);
    vam_heap_t *heap = heap_new(name, 0);
    js_State *J = heap ? engine_new(heap) : NULL;
    pthread_barrier_wait(iso->start);
    if (J) {
        gc_calls = 0;
        iso->rc = eval_number(J, src, &iso->result, iso->err, sizeof iso->err);
        iso->gcs = gc_calls;
        js_freestate(J);
        vam_heap_stats_t st = heap_stats(heap);
        iso->live_after = st.live_bytes;
        iso->blocks_after = st.live_blocks;
    }
    vam_heap_destroy(heap);
    free(src);
    return NULL;
}

static void test_isolates(void **state)
{
    (void)state;
    struct isolate iso[ISOLATES];
    pthread_barrier_t start;
    long foreign0 = atomic_load(&foreign_blocks);
    pthread_barrier_init(&start, NULL, ISOLATES);
    for (int i = 0; i < ISOLATES; i++) {
        memset(&iso[i], 0, sizeof iso[i]);
        iso[i].id = i;
        iso[i].start = &start;
        iso[i].seed = 2000 + 104729u * (unsigned)i;
        assert_int_equal(pthread_create(&iso[i].tid, NULL, isolate_main, &iso[i]), 0);
    }
    for (int i = 0; i < ISOLATES; i++)
        pthread_join(iso[i].tid, NULL);
    pthread_barrier_destroy(&start);
    for (int i = 0; i < ISOLATES; i++) {
        uint64_t want = expected_result(iso[i].seed, ISO_N, ISO_ROUNDS);
        print_message("isolate %d: rc %d, result %.0f (expected %llu), %d GCs, live after "
                      "js_freestate %llu B / %llu blocks %s\n", i, iso[i].rc, iso[i].result,
                      (unsigned long long)want, iso[i].gcs,
                      (unsigned long long)iso[i].live_after,
                      (unsigned long long)iso[i].blocks_after, iso[i].err);
        assert_int_equal(iso[i].rc, 0);
        assert_true(iso[i].result == (double)want);
        assert_true(iso[i].gcs >= 5);
        assert_int_equal(iso[i].live_after, 0);
        assert_int_equal(iso[i].blocks_after, 0);
    }
    assert_int_equal(atomic_load(&foreign_blocks), foreign0);
}

static void test_byte_limit(void **state)
{
    (void)state;
    enum { LIMIT = 4 << 20 };
    static char src[SCRIPT_BUF];
    make_script(src, sizeof src, 4242, 200, 2, 1);
    vam_heap_t *heap = heap_new("mujs-limited", LIMIT);
    assert_non_null(heap);
    js_State *J = engine_new(heap);
    assert_non_null(J);
    double got = -1;
    char err[160] = "";
    int rc = eval_number(J, GREEDY_SMALL, &got, err, sizeof err);
    vam_heap_stats_t st = heap_stats(heap);
    js_gc(J, 0);
    int after = eval_number(J, src, &got, NULL, 0);
    print_message("byte_limit: rc %d (\"%s\"), live %llu KiB of %llu KiB, %llu refusals; "
                  "script after it rc %d\n", rc, err, (unsigned long long)(st.live_bytes / 1024),
                  (unsigned long long)(st.byte_limit / 1024),
                  (unsigned long long)st.limit_refusals, after);
    assert_int_equal(rc, -1);
    assert_non_null(strstr(err, "out of memory"));
    assert_true(st.limit_refusals > 0);
    assert_true(st.live_bytes <= LIMIT);
    assert_int_equal(after, 0);
    assert_true(got == (double)expected_result(4242, 200, 2));
    js_freestate(J);
    assert_int_equal(heap_stats(heap).live_bytes, 0);
    vam_heap_destroy(heap);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gc_script),
        cmocka_unit_test(test_destroy_live),
        cmocka_unit_test(test_isolates),
        cmocka_unit_test(test_byte_limit),
    };
    return cmocka_run_group_tests_name("embed_mujs", tests, NULL, NULL);
}
