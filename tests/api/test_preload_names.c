/* api suite: the STANDARD names (malloc, free, ...) with libvamalloc.so
 * LD_PRELOADed.  This program does not link vamalloc; it finds vam_owns with
 * dlsym to prove the preload is active and that every entry point hands out
 * vamalloc memory.  Compiled with -fno-builtin so the compiler does not fold
 * or elide the calls under test.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "api_common.h"

#define PD ((size_t)PTRDIFF_MAX)
#define SENTINEL ((void *)(uintptr_t)0x5a5a5a5a5a5a5a50ULL)

#define EXPECT_ENOMEM(call)                                                      \
    do {                                                                         \
        errno = 0;                                                               \
        void *r_ = (call);                                                       \
        int e_ = errno;                                                          \
        if (r_ != NULL || e_ != ENOMEM) {                                        \
            if (r_ != NULL)                                                      \
                free(r_);                                                        \
            fail_msg("%s: got %p errno %d (%s), want NULL/ENOMEM", #call, r_,   \
                     e_, strerror(e_));                                          \
        }                                                                        \
    } while (0)

static int (*owns)(const void *);

static void need_owned(const void *p, const char *what)
{
    if (p == NULL)
        fail_msg("%s returned NULL (errno %d)", what, errno);
    if (owns(p) == 0)
        fail_msg("%s returned %p which vamalloc does not own: name not overridden?", what, p);
}

/* Fails loudly (before any test runs) unless vamalloc really serves malloc. */
static int vamalloc_active(void)
{
    *(void **)(&owns) = dlsym(RTLD_DEFAULT, "vam_owns");
    if (owns == NULL) {
        fprintf(stderr, "FATAL: vamalloc is NOT active: dlsym(RTLD_DEFAULT, \"vam_owns\") = NULL "
                "(LD_PRELOAD=%s)\n", getenv("LD_PRELOAD") ? getenv("LD_PRELOAD") : "(unset)");
        return 0;
    }
    void *p = malloc(32);
    int o = p ? owns(p) : 0;
    free(p);
    if (o == 0) {
        fprintf(stderr, "FATAL: vamalloc is NOT active: vam_owns(malloc(32)) == 0\n");
        return 0;
    }
    return 1;
}

static void test_active_everywhere(void **state)
{
    void *p;
    (void)state;
    assert_non_null(owns);
    p = malloc(32);            need_owned(p, "malloc");           free(p);
    p = malloc(0);             need_owned(p, "malloc(0)");        free(p);
    p = malloc(8 * MiB);       need_owned(p, "malloc(8 MiB)");    free(p);
    p = calloc(3, 100);        need_owned(p, "calloc");           free(p);
    p = realloc(NULL, 70);     need_owned(p, "realloc(NULL)");
    p = realloc(p, 7000);      need_owned(p, "realloc");          free(p);
    p = reallocarray(NULL, 5, 9); need_owned(p, "reallocarray");  free(p);
    p = NULL;
    assert_int_equal(posix_memalign(&p, 256, 10), 0);
    need_owned(p, "posix_memalign");                              free(p);
    p = aligned_alloc(128, 128); need_owned(p, "aligned_alloc");  free(p);
    p = memalign(4096, 10);    need_owned(p, "memalign");         free(p);
    p = valloc(10);            need_owned(p, "valloc");           free(p);
    p = pvalloc(10);           need_owned(p, "pvalloc");          free(p);
    p = strdup("vamalloc");    need_owned(p, "strdup (libc-internal malloc)");
    assert_true(malloc_usable_size(p) >= 9);
    free(p);
}

static void test_zero_and_null(void **state)
{
    (void)state;
    void *a = malloc(0), *b = malloc(0);
    assert_non_null(a);
    assert_non_null(b);
    assert_true(addr_of(a) != addr_of(b));
    free(a);
    free(b);
    errno = 4242;
    free(NULL);
    assert_int_equal(errno, 4242);
    assert_int_equal(malloc_usable_size(NULL), 0);
    void *p = pvalloc(0);
    assert_non_null(p);
    assert_true(is_aligned(p, page_size()));
    free(p);
}

static void test_alignment(void **state)
{
    void *v[4];
    (void)state;
    for (size_t n = 1; n <= 4096; n++) {
        for (int k = 0; k < 4; k++) {
            v[k] = malloc(n);
            assert_non_null(v[k]);
            if (!is_aligned(v[k], required_align(n)))
                fail_msg("malloc(%zu) = %p not %zu-aligned", n, v[k], required_align(n));
            assert_true(malloc_usable_size(v[k]) >= n);
        }
        for (int k = 0; k < 4; k++)
            free(v[k]);
    }
    for (size_t n = 4097; n <= 64 * MiB; n = n * 2 + 1) {
        void *p = malloc(n);
        assert_non_null(p);
        assert_true(is_aligned(p, 16));
        assert_true(malloc_usable_size(p) >= n);
        ((volatile char *)p)[n - 1] = 1;
        free(p);
    }
}

static void test_enomem(void **state)
{
    (void)state;
    const size_t over[] = {PD + 1, SIZE_MAX - 4096, SIZE_MAX - 15, SIZE_MAX, PD, (size_t)1 << 47};
    for (size_t i = 0; i < sizeof over / sizeof over[0]; i++) {
        size_t x = opaque_size(over[i]);
        EXPECT_ENOMEM(malloc(x));
        EXPECT_ENOMEM(calloc(1, x));
        EXPECT_ENOMEM(realloc(NULL, x));
        EXPECT_ENOMEM(reallocarray(NULL, x, 1));
        EXPECT_ENOMEM(aligned_alloc(4096, x & ~(size_t)4095));
        EXPECT_ENOMEM(memalign(64, x));
        EXPECT_ENOMEM(valloc(x));
        EXPECT_ENOMEM(pvalloc(x));
    }
    EXPECT_ENOMEM(calloc(opaque_size(SIZE_MAX / 2 + 1), 2));
    EXPECT_ENOMEM(calloc(opaque_size((size_t)1 << 32), (size_t)1 << 32));
    EXPECT_ENOMEM(calloc(opaque_size(PD / 2 + 1), 2));
    EXPECT_ENOMEM(reallocarray(NULL, opaque_size(SIZE_MAX / 2 + 1), 2));
    {
        size_t x = opaque_size((size_t)1 << 46);
        if (!can_map(x)) {
            EXPECT_ENOMEM(malloc(x));
        } else {
            errno = 0;
            void *p = malloc(x);
            if (p == NULL)
                assert_int_equal(errno, ENOMEM);
            else
                assert_true(malloc_usable_size(p) >= x);
            free(p);
        }
    }
    void *p = malloc(100);
    assert_non_null(p);
    free(p);
}

static void test_realloc_fail_keeps_block(void **state)
{
    const size_t starts[] = {40, 3000, 200 * KiB, 4 * MiB};
    (void)state;
    for (size_t i = 0; i < sizeof starts / sizeof starts[0]; i++) {
        size_t n = starts[i];
        void *p = malloc(n);
        assert_non_null(p);
        pat_fill(p, n, 3 + (unsigned)i);
        EXPECT_ENOMEM(realloc(launder(p), opaque_size(PD + 1)));
        EXPECT_ENOMEM(realloc(launder(p), opaque_size(SIZE_MAX)));
        EXPECT_ENOMEM(realloc(launder(p), opaque_size((size_t)1 << 47)));
        EXPECT_ENOMEM(reallocarray(launder(p), opaque_size(SIZE_MAX / 2 + 1), 2));
        assert_int_equal(pat_check(p, n, 3 + (unsigned)i), n);
        assert_true(malloc_usable_size(p) >= n);
        void *q = realloc(p, 2 * n);
        assert_non_null(q);
        assert_int_equal(pat_check(q, n, 3 + (unsigned)i), n);
        free(q);
    }
}

static void test_posix_memalign(void **state)
{
    (void)state;
    const size_t bad[] = {0, 1, 2, 4, 3, 24, 48, 4097, SIZE_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (bad[i] >= sizeof(void *) && (bad[i] & (bad[i] - 1)) == 0)
            continue;
        void *m = SENTINEL;
        int rc = posix_memalign(&m, opaque_size(bad[i]), 16);
        if (rc != EINVAL)
            fail_msg("posix_memalign(align %zu) = %d, want EINVAL", bad[i], rc);
        assert_ptr_equal(m, SENTINEL);
    }
    const size_t huge[] = {PD + 1, SIZE_MAX, SIZE_MAX - 4095, PD, (size_t)1 << 47};
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        void *m = SENTINEL;
        int rc = posix_memalign(&m, 4096, opaque_size(huge[i]));
        if (rc != ENOMEM)
            fail_msg("posix_memalign(4096, %zu) = %d, want ENOMEM", huge[i], rc);
        assert_ptr_equal(m, SENTINEL);
    }
    for (size_t a = sizeof(void *); a <= GiB; a *= 2) {
        size_t sizes[] = {1, 100, a};
        int ns = a <= 64 * MiB ? 3 : 2;
        for (int s = 0; s < ns; s++) {
            void *m = SENTINEL;
            int rc = posix_memalign(&m, a, sizes[s]);
            if (rc != 0)
                fail_msg("posix_memalign(%zu, %zu) = %d", a, sizes[s], rc);
            if (!is_aligned(m, a))
                fail_msg("posix_memalign(%zu, %zu) = %p misaligned", a, sizes[s], m);
            need_owned(m, "posix_memalign");
            ((volatile char *)m)[0] = 1;
            ((volatile char *)m)[sizes[s] - 1] = 2;
            assert_true(malloc_usable_size(m) >= sizes[s]);
            free(m);
        }
    }
    /* 1 GiB alignment through the other two names as well. */
    void *p = aligned_alloc(GiB, GiB);
    assert_non_null(p);
    assert_true(is_aligned(p, GiB));
    ((volatile char *)p)[GiB - 1] = 1;
    free(p);
    p = memalign(GiB, 100);
    assert_non_null(p);
    assert_true(is_aligned(p, GiB));
    free(p);
    p = valloc(100);
    assert_non_null(p);
    assert_true(is_aligned(p, page_size()));
    free(p);
    p = pvalloc(page_size() + 1);
    assert_non_null(p);
    assert_true(is_aligned(p, page_size()));
    assert_true(malloc_usable_size(p) >= 2 * page_size());
    free(p);
}

static void test_calloc_zeroed(void **state)
{
    const size_t sizes[] = {1, 24, 100, 1000, 4096, 5000, 100 * KiB, MiB + 3, 16 * MiB, 64 * MiB};
    enum { K = 16 };
    void *v[K];
    (void)state;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        size_t cnt = n <= MiB ? K : 2;
        for (size_t k = 0; k < cnt; k++) {
            v[k] = malloc(n);
            assert_non_null(v[k]);
            memset(v[k], 0xAA, malloc_usable_size(v[k]));
        }
        for (size_t k = 0; k < cnt; k++)
            free(v[k]);
        for (int round = 0; round < 4; round++) {
            for (size_t k = 0; k < cnt; k++) {
                v[k] = calloc(n, 1);
                assert_non_null(v[k]);
                size_t bad = first_not(v[k], n, 0);
                if (bad != n)
                    fail_msg("calloc(%zu) byte %zu = %#x", n, bad, ((uint8_t *)v[k])[bad]);
                memset(v[k], 0xAA, malloc_usable_size(v[k]));
            }
            for (size_t k = 0; k < cnt; k++)
                free(v[k]);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_active_everywhere),
        cmocka_unit_test(test_zero_and_null),
        cmocka_unit_test(test_alignment),
        cmocka_unit_test(test_enomem),
        cmocka_unit_test(test_realloc_fail_keeps_block),
        cmocka_unit_test(test_posix_memalign),
        cmocka_unit_test(test_calloc_zeroed),
    };
    if (!vamalloc_active())
        return 1;
    return cmocka_run_group_tests_name("api_preload_names", tests, NULL, NULL);
}
