/* embed suite: Duktape on first-class vamalloc heaps, linked statically
 * against libvamalloc.a (no LD_PRELOAD; malloc stays glibc's).
 *
 * Each Duktape heap gets its own vamalloc heap: duk_create_heap receives
 * alloc/realloc/free functions over vam_heap_*, with the vam_heap_t * as
 * udata.  Every block the engine gets is checked with vam_heap_of (it must
 * belong to that engine's heap).
 *
 * gc_script: GC_SCRIPT (embed_common.h) with 2,000 objects a round, 20
 *   rounds, a forced full GC every 4 (5 GCs, counted on the C side); the
 *   result must equal expected_result().  After duk_destroy_heap the heap
 *   has 0 live bytes and 0 live blocks.
 * memory_returns: 150,000 objects kept live; after duk_destroy_heap,
 *   vam_heap_destroy and vam_collect(true), RSS is back within 2 MiB of
 *   where it started.
 * destroy_live: 200 cycles of heap + engine + script, then vam_heap_destroy
 *   with the engine's objects still live (no duk_destroy_heap: an isolate
 *   torn down in one step).  RSS and VmSize after the last cycle may exceed
 *   those after a 20-cycle warm-up by at most 1% + 512 KiB.
 * isolates: 4 threads, each with its own vamalloc heap and Duktape heap,
 *   run the script at once (different seeds), all results checked.
 * byte_limit: an engine on a 4 MiB heap runs a script that allocates without
 *   bound; it must end in a caught error ("alloc failed"), not a fatal
 *   error, with limit_refusals > 0, and the engine must still run the script
 *   correctly after a GC.  Meanwhile an unlimited engine on another thread
 *   runs the script again and again, and every result must be right.
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
#include <time.h>
#include <cmocka.h>

#include <duktape.h>

#include "vamalloc.h"
#include "embed_common.h"

/* ---- the engine on a vamalloc heap ------------------------------------ */

/* Per thread: each engine runs on one thread. */
static _Thread_local int gc_calls;
/* Blocks handed to an engine that vam_heap_of does not place in its heap. */
static atomic_long foreign_blocks;

static void note_block(vam_heap_t *heap, void *p)
{
    if (p && vam_heap_of(p) != heap)
        atomic_fetch_add(&foreign_blocks, 1);
}

static void *vd_alloc(void *udata, duk_size_t size)
{
    void *p = vam_heap_malloc(udata, size);
    note_block(udata, p);
    return p;
}

static void *vd_realloc(void *udata, void *ptr, duk_size_t size)
{
    if (size == 0) { /* Duktape accepts NULL for a zero-size realloc */
        vam_heap_free(udata, ptr);
        return NULL;
    }
    void *p = vam_heap_realloc(udata, ptr, size);
    note_block(udata, p);
    return p;
}

static void vd_free(void *udata, void *ptr)
{
    vam_heap_free(udata, ptr);
}

static void vd_fatal(void *udata, const char *msg)
{
    (void)udata;
    fprintf(stderr, "duktape fatal error: %s\n", msg ? msg : "?");
    abort();
}

static duk_ret_t native_gc(duk_context *ctx)
{
    duk_gc(ctx, 0);
    gc_calls++;
    return 0;
}

static duk_context *engine_new(vam_heap_t *heap)
{
    duk_context *ctx = duk_create_heap(vd_alloc, vd_realloc, vd_free, heap, vd_fatal);
    if (ctx) {
        duk_push_c_function(ctx, native_gc, 0);
        duk_put_global_string(ctx, "gc");
    }
    return ctx;
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

static vam_stats_t global_stats(void)
{
    vam_stats_t g;
    memset(&g, 0, sizeof g);
    if (vam_stats_get(&g, sizeof g) != sizeof g)
        g.struct_size = 0;
    return g;
}

/* Evaluates src; returns 0 and the numeric result, or -1 and the error
 * message (copied into err). */
static int eval_number(duk_context *ctx, const char *src, double *out, char *err,
                       size_t errlen)
{
    int rc = duk_peval_string(ctx, src);
    if (rc != 0) {
        if (err)
            snprintf(err, errlen, "%s", duk_safe_to_string(ctx, -1));
        duk_pop(ctx);
        return -1;
    }
    *out = duk_get_number(ctx, -1);
    duk_pop(ctx);
    return 0;
}

/* ---- gc_script ---------------------------------------------------------- */

static void test_gc_script(void **state)
{
    (void)state;
    enum { N = 2000, ROUNDS = 20, GC_EVERY = 4 };
    static char src[SCRIPT_BUF];
    const unsigned seed = 20240601;
    make_script(src, sizeof src, seed, N, ROUNDS, GC_EVERY);
    uint64_t want = expected_result(seed, N, ROUNDS);

    long foreign0 = atomic_load(&foreign_blocks);
    vam_heap_t *heap = heap_new("duktape-main", 0);
    assert_non_null(heap);
    duk_context *ctx = engine_new(heap);
    assert_non_null(ctx);
    gc_calls = 0;
    double got = -1;
    char err[256] = "";
    int rc = eval_number(ctx, src, &got, err, sizeof err);
    if (rc != 0)
        print_message("script error: %s\n", err);
    assert_int_equal(rc, 0);
    assert_true(got == (double)want);
    assert_true(gc_calls >= 5);

    vam_heap_stats_t st = heap_stats(heap);
    assert_true(st.struct_size > 0);
    assert_true(st.live_bytes > 0);
    assert_true(st.malloc_calls > 0);
    duk_destroy_heap(ctx);
    vam_heap_stats_t end = heap_stats(heap);
    print_message("gc_script: result %.0f (expected %llu), %d forced GCs, peak %llu KiB, "
                  "%llu allocations, %llu frees\n", got, (unsigned long long)want,
                  gc_calls, (unsigned long long)(end.peak_bytes / 1024),
                  (unsigned long long)end.malloc_calls,
                  (unsigned long long)end.free_calls);
    assert_int_equal(end.live_bytes, 0);
    assert_int_equal(end.live_blocks, 0);
    vam_heap_destroy(heap);
    assert_int_equal(atomic_load(&foreign_blocks), foreign0);
}

/* ---- memory_returns ----------------------------------------------------- */

static void test_memory_returns(void **state)
{
    (void)state;
    enum { OBJECTS = 150000 };
    char src[256];
    snprintf(src, sizeof src,
             "var keep = [];\n"
             "for (var i = 0; i < %d; i++) keep.push({ i: i, s: 'str' + i });\n"
             "gc(); keep.length + keep[%d].i;\n", OBJECTS, OBJECTS - 1);
    size_t rss0, rss1, rss2, vsz0, vsz2;
    vam_collect(true);
    proc_mem(&rss0, &vsz0);
    vam_stats_t g0 = global_stats();

    vam_heap_t *heap = heap_new("duktape-bulk", 0);
    assert_non_null(heap);
    duk_context *ctx = engine_new(heap);
    assert_non_null(ctx);
    double got = -1;
    assert_int_equal(eval_number(ctx, src, &got, NULL, 0), 0);
    assert_true(got == (double)OBJECTS + (OBJECTS - 1));
    vam_heap_stats_t st = heap_stats(heap);
    proc_mem(&rss1, NULL);
    duk_destroy_heap(ctx);
    vam_heap_stats_t end = heap_stats(heap);
    assert_int_equal(end.live_bytes, 0);
    assert_int_equal(end.live_blocks, 0);
    vam_heap_destroy(heap);
    vam_collect(true);
    proc_mem(&rss2, &vsz2);
    vam_stats_t g2 = global_stats();

    print_message("memory_returns: %d objects, heap live %llu KiB (peak %llu KiB); "
                  "RSS before %zu KiB, with the engine %zu KiB, after destroy %zu KiB; "
                  "VmSize before %zu KiB, after %zu KiB; vamalloc committed %llu KiB "
                  "before, %llu KiB after (peak %llu KiB)\n", OBJECTS,
                  (unsigned long long)(st.live_bytes / 1024),
                  (unsigned long long)(end.peak_bytes / 1024), rss0 / KiB, rss1 / KiB,
                  rss2 / KiB, vsz0 / KiB, vsz2 / KiB,
                  (unsigned long long)(g0.committed_bytes / 1024),
                  (unsigned long long)(g2.committed_bytes / 1024),
                  (unsigned long long)(g2.committed_bytes_peak / 1024));
    assert_true(g0.struct_size > 0 && g2.struct_size > 0);
    assert_true(g2.committed_bytes <= g0.committed_bytes + MiB);
    assert_int_equal(g2.user_heaps, g0.user_heaps);
    /* The measurement means something: the engine's memory was resident. */
    assert_true(st.live_bytes >= 8 * MiB);
    assert_true(rss1 >= rss0 + st.live_bytes / 2);
    assert_true(rss2 <= rss0 + 2 * MiB);
}

/* ---- destroy_live ------------------------------------------------------- */

static void test_destroy_live(void **state)
{
    (void)state;
    enum { CYCLES = 200, WARMUP = 20, N = 200, ROUNDS = 1, LIVE = 1500 };
    static char src[SCRIPT_BUF + 256];
    const unsigned seed = 777;
    /* GC_SCRIPT, objects that are still live when the heap goes (small
     * ones, and strings above the small maximum), then the run. */
    snprintf(src, sizeof src, "%s"
             "var live = [], pad = new Array(501).join('p');\n"
             "for (var j = 0; j < %d; j++) live.push({ j: j, s: pad + j, a: [j, j] });\n"
             "var big = 'L'; while (big.length < 65536) big = big + big;\n"
             "for (var k = 0; k < 8; k++) live.push(big + k);\n"
             "run(%u, %d, %d, 1);\n", GC_SCRIPT, LIVE, seed, N, ROUNDS);
    uint64_t want = expected_result(seed, N, ROUNDS);
    size_t rss_warm = 0, vsz_warm = 0, rss_end, vsz_end;
    uint64_t live_min = UINT64_MAX, live_max = 0;
    long foreign0 = atomic_load(&foreign_blocks);
    vam_stats_t g0 = global_stats(), gw;
    memset(&gw, 0, sizeof gw);

    for (int c = 0; c < CYCLES; c++) {
        vam_heap_t *heap = heap_new("duktape-cycle", 0);
        assert_non_null(heap);
        duk_context *ctx = engine_new(heap);
        assert_non_null(ctx);
        double got = -1;
        assert_int_equal(eval_number(ctx, src, &got, NULL, 0), 0);
        assert_true(got == (double)want);
        vam_heap_stats_t st = heap_stats(heap);
        live_min = st.live_bytes < live_min ? st.live_bytes : live_min;
        live_max = st.live_bytes > live_max ? st.live_bytes : live_max;
        /* No duk_destroy_heap: the engine's memory goes with the heap. */
        vam_heap_destroy(heap);
        if (c + 1 == WARMUP) {
            vam_collect(true);
            proc_mem(&rss_warm, &vsz_warm);
            gw = global_stats();
        }
    }
    vam_collect(true);
    proc_mem(&rss_end, &vsz_end);
    vam_stats_t ge = global_stats();
    print_message("destroy_live: %d cycles, %llu..%llu KiB live at each destroy; "
                  "RSS after %d cycles %zu KiB, after %d %zu KiB; "
                  "VmSize %zu KiB -> %zu KiB; vamalloc committed %llu KiB -> %llu KiB, "
                  "mappings %llu -> %llu\n", CYCLES,
                  (unsigned long long)(live_min / 1024), (unsigned long long)(live_max / 1024),
                  WARMUP, rss_warm / KiB, CYCLES, rss_end / KiB, vsz_warm / KiB,
                  vsz_end / KiB, (unsigned long long)(gw.committed_bytes / 1024),
                  (unsigned long long)(ge.committed_bytes / 1024),
                  (unsigned long long)gw.mappings, (unsigned long long)ge.mappings);
    assert_int_equal(ge.user_heaps_destroyed - g0.user_heaps_destroyed, CYCLES);
    assert_int_equal(ge.user_heaps, g0.user_heaps);
    assert_true(ge.committed_bytes <= gw.committed_bytes + gw.committed_bytes / 100 + 512 * KiB);
    assert_true(ge.mappings <= gw.mappings);
    assert_true(live_min >= MiB);
    assert_true(rss_end <= rss_warm + rss_warm / 100 + 512 * KiB);
    assert_true(vsz_end <= vsz_warm + vsz_warm / 100 + 512 * KiB);
    assert_int_equal(atomic_load(&foreign_blocks), foreign0);
}

/* ---- isolates ----------------------------------------------------------- */

enum { ISOLATES = 4, ISO_N = 1000, ISO_ROUNDS = 10, ISO_GC_EVERY = 2 };

struct isolate {
    pthread_t tid;
    int id;
    pthread_barrier_t *start;
    unsigned seed;
    double result;
    int rc, gcs;
    uint64_t live_after, blocks_after, peak;
    char err[160];
};

static void *isolate_main(void *arg)
{
    struct isolate *iso = arg;
    char name[32], *src = malloc(SCRIPT_BUF);
    snprintf(name, sizeof name, "isolate-%d", iso->id);
    iso->rc = -1;
    if (!src)
        return NULL;
    make_script(src, SCRIPT_BUF, iso->seed, ISO_N, ISO_ROUNDS, ISO_GC_EVERY);
    vam_heap_t *heap = heap_new(name, 0);
    duk_context *ctx = heap ? engine_new(heap) : NULL;
    pthread_barrier_wait(iso->start);
    if (ctx) {
        gc_calls = 0;
        iso->rc = eval_number(ctx, src, &iso->result, iso->err, sizeof iso->err);
        iso->gcs = gc_calls;
        duk_destroy_heap(ctx);
        vam_heap_stats_t st = heap_stats(heap);
        iso->live_after = st.live_bytes;
        iso->blocks_after = st.live_blocks;
        iso->peak = st.peak_bytes;
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
        iso[i].seed = 1000 + 7919u * (unsigned)i;
        assert_int_equal(pthread_create(&iso[i].tid, NULL, isolate_main, &iso[i]), 0);
    }
    for (int i = 0; i < ISOLATES; i++)
        pthread_join(iso[i].tid, NULL);
    pthread_barrier_destroy(&start);
    for (int i = 0; i < ISOLATES; i++) {
        uint64_t want = expected_result(iso[i].seed, ISO_N, ISO_ROUNDS);
        print_message("isolate %d: rc %d, result %.0f (expected %llu), %d GCs, peak %llu KiB, "
                      "live after destroy %llu B / %llu blocks %s\n", i, iso[i].rc,
                      iso[i].result, (unsigned long long)want, iso[i].gcs,
                      (unsigned long long)(iso[i].peak / 1024),
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

/* ---- byte_limit --------------------------------------------------------- */

enum { LIMIT = 4 << 20 };

struct limited {
    pthread_barrier_t *start;
    atomic_int *done;
    int doubling_rc, small_rc, after_rc;
    double after_result;
    vam_heap_stats_t st_doubling, st_small;
    char err_doubling[160], err_small[160];
};

static void *limited_main(void *arg)
{
    struct limited *l = arg;
    static char src[SCRIPT_BUF];
    make_script(src, sizeof src, 4242, 200, 2, 1);
    vam_heap_t *heap = heap_new("duktape-limited", LIMIT);
    duk_context *ctx = heap ? engine_new(heap) : NULL;
    pthread_barrier_wait(l->start);
    l->doubling_rc = l->small_rc = l->after_rc = 1;
    if (ctx) {
        double unused;
        l->doubling_rc = eval_number(ctx, GREEDY_DOUBLING, &unused, l->err_doubling,
                                     sizeof l->err_doubling);
        l->st_doubling = heap_stats(heap);
        duk_gc(ctx, 0);
        l->small_rc = eval_number(ctx, GREEDY_SMALL, &unused, l->err_small,
                                  sizeof l->err_small);
        l->st_small = heap_stats(heap);
        duk_gc(ctx, 0);
        /* The engine survives its limit: the same heap runs the script. */
        l->after_rc = eval_number(ctx, src, &l->after_result, NULL, 0);
        duk_destroy_heap(ctx);
    }
    vam_heap_destroy(heap);
    atomic_store(l->done, 1);
    return NULL;
}

struct neighbour {
    pthread_barrier_t *start;
    atomic_int *done;
    int runs, bad;
};

static void *neighbour_main(void *arg)
{
    struct neighbour *nb = arg;
    static char src[SCRIPT_BUF];
    const unsigned seed = 99;
    make_script(src, sizeof src, seed, 500, 4, 2);
    double want = (double)expected_result(seed, 500, 4);
    vam_heap_t *heap = heap_new("duktape-neighbour", 0);
    duk_context *ctx = heap ? engine_new(heap) : NULL;
    pthread_barrier_wait(nb->start);
    if (!ctx) {
        nb->bad++;
    } else {
        /* Until the limited engine is done, and at least twice. */
        while (nb->runs < 2 || !atomic_load(nb->done)) {
            double got = -1;
            if (eval_number(ctx, src, &got, NULL, 0) != 0 || got != want)
                nb->bad++;
            nb->runs++;
        }
        duk_destroy_heap(ctx);
        if (heap_stats(heap).live_bytes != 0)
            nb->bad++;
    }
    vam_heap_destroy(heap);
    return NULL;
}

static void test_byte_limit(void **state)
{
    (void)state;
    pthread_barrier_t start;
    atomic_int done = 0;
    struct limited l;
    struct neighbour nb;
    pthread_t t1, t2;
    memset(&l, 0, sizeof l);
    memset(&nb, 0, sizeof nb);
    pthread_barrier_init(&start, NULL, 2);
    l.start = nb.start = &start;
    l.done = nb.done = &done;
    assert_int_equal(pthread_create(&t1, NULL, limited_main, &l), 0);
    assert_int_equal(pthread_create(&t2, NULL, neighbour_main, &nb), 0);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    pthread_barrier_destroy(&start);
    print_message("byte_limit: doubling strings: rc %d (\"%s\"), live %llu KiB of %llu KiB, "
                  "%llu refusals; small objects: rc %d (\"%s\"), live %llu KiB, %llu refusals "
                  "in all; script after them rc %d; neighbour ran %d times, %d bad\n",
                  l.doubling_rc, l.err_doubling,
                  (unsigned long long)(l.st_doubling.live_bytes / 1024),
                  (unsigned long long)(l.st_doubling.byte_limit / 1024),
                  (unsigned long long)l.st_doubling.limit_refusals, l.small_rc, l.err_small,
                  (unsigned long long)(l.st_small.live_bytes / 1024),
                  (unsigned long long)l.st_small.limit_refusals, l.after_rc, nb.runs, nb.bad);
    /* A large allocation fails: Duktape throws Error "alloc failed". */
    assert_int_equal(l.doubling_rc, -1);
    assert_non_null(strstr(l.err_doubling, "alloc failed"));
    assert_int_equal(l.st_doubling.byte_limit, LIMIT);
    assert_true(l.st_doubling.limit_refusals > 0);
    assert_true(l.st_doubling.live_bytes <= LIMIT);
    /* The heap is full of small objects: Duktape may have no room to build
     * the Error and throws its preallocated DoubleError; either way
     * the error is caught (a fatal error would abort the test). */
    assert_int_equal(l.small_rc, -1);
    assert_true(strstr(l.err_small, "alloc failed") || strstr(l.err_small, "DoubleError"));
    assert_true(l.st_small.limit_refusals > l.st_doubling.limit_refusals);
    assert_true(l.st_small.live_bytes <= LIMIT);
    assert_int_equal(l.after_rc, 0);
    assert_true(l.after_result == (double)expected_result(4242, 200, 2));
    assert_true(nb.runs >= 2);
    assert_int_equal(nb.bad, 0);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double t_start;

static int timer_start(void **state)
{
    (void)state;
    t_start = now_s();
    return 0;
}

static int timer_end(void **state)
{
    (void)state;
    print_message("  (%.2f s)\n", now_s() - t_start);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_gc_script, timer_start, timer_end),
        cmocka_unit_test_setup_teardown(test_memory_returns, timer_start, timer_end),
        cmocka_unit_test_setup_teardown(test_destroy_live, timer_start, timer_end),
        cmocka_unit_test_setup_teardown(test_isolates, timer_start, timer_end),
        cmocka_unit_test_setup_teardown(test_byte_limit, timer_start, timer_end),
    };
    return cmocka_run_group_tests_name("embed_duktape", tests, NULL, NULL);
}
