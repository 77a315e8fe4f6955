/* api suite: the public vam_* API, linked statically (vamalloc_dep).
 *
 * Pins down the malloc-family contract of include/vamalloc.h: zero-size and
 * NULL handling, alignment, ENOMEM/EINVAL reporting, realloc paths, calloc
 * zeroing, usable sizes, sized frees and foreign pointers.  In this binary the
 * plain malloc/free are glibc's (unless the library was built with
 * -Doverride=true, see VAM_TEST_STATIC_OVERRIDE), which gives us a real
 * foreign allocator to test against.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "vamalloc.h"
#include "api_common.h"

#ifndef VAM_TEST_STATIC_OVERRIDE
#define VAM_TEST_STATIC_OVERRIDE 0
#endif

#define PD ((size_t)PTRDIFF_MAX)
#define SENTINEL ((void *)(uintptr_t)0x5a5a5a5a5a5a5a50ULL)

/* Call an allocating expression with errno cleared; it must give NULL and
 * ENOMEM. */
#define EXPECT_FAIL(call, want_errno)                                            \
    do {                                                                         \
        errno = 0;                                                               \
        void *r_ = (call);                                                       \
        int e_ = errno;                                                          \
        if (r_ != NULL || e_ != (want_errno)) {                                  \
            if (r_ != NULL)                                                      \
                vam_free(r_);                                                    \
            fail_msg("%s: got %p errno %d (%s), want NULL errno %d", #call,     \
                     r_, e_, strerror(e_), (want_errno));                        \
        }                                                                        \
    } while (0)
#define EXPECT_ENOMEM(call) EXPECT_FAIL(call, ENOMEM)

static int cmp_uptr(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return (x > y) - (x < y);
}

/* A short allocate/fill/verify/free workload: the heap still works. */
static void workload_ok(unsigned seed)
{
    enum { N = 2000 };
    static void *v[N];
    static size_t sz[N];
    uint64_t s = 0x9e3779b97f4a7c15ULL ^ seed;
    for (int i = 0; i < N; i++) {
        uint64_t r = rng_next(&s);
        sz[i] = (i % 100 == 0) ? (size_t)(r % (2 * MiB)) : (size_t)(r % 2048);
        v[i] = vam_malloc(sz[i]);
        assert_non_null(v[i]);
        pat_fill(v[i], sz[i], seed + (unsigned)i);
    }
    for (int i = 0; i < N; i++) {
        size_t bad = pat_check(v[i], sz[i], seed + (unsigned)i);
        if (bad != sz[i])
            fail_msg("workload block %d (%zu B at %p) corrupt at offset %zu", i, sz[i], v[i], bad);
        vam_free(v[i]);
    }
}

/* ---- malloc(0), free(NULL) -------------------------------------------- */

static void test_malloc_zero_free_null(void **state)
{
    enum { N = 1000 };
    static uintptr_t addrs[N];
    static void *v[N];
    (void)state;

    void *a = vam_malloc(0);
    void *b = vam_malloc(0);
    assert_non_null(a);
    assert_non_null(b);
    assert_true(addr_of(a) != addr_of(b));
    assert_true(vam_owns(a) != 0);
    vam_free(a);
    vam_free(b);

    /* Many live zero-size blocks are pairwise distinct. */
    for (int i = 0; i < N; i++) {
        v[i] = vam_malloc(0);
        assert_non_null(v[i]);
        addrs[i] = addr_of(v[i]);
    }
    qsort(addrs, N, sizeof addrs[0], cmp_uptr);
    for (int i = 1; i < N; i++)
        if (addrs[i] == addrs[i - 1])
            fail_msg("vam_malloc(0) returned %#lx twice", (unsigned long)addrs[i]);
    for (int i = 0; i < N; i++)
        vam_free(v[i]);

    /* free(NULL) and the sized variants with NULL are no-ops, errno kept. */
    errno = 4242;
    vam_free(NULL);
    vam_free_sized(NULL, 0);
    vam_free_sized(NULL, 128);
    vam_free_aligned_sized(NULL, 64, 0);
    assert_int_equal(errno, 4242);
    workload_ok(1);
}

/* ---- alignment -------------------------------------------------------- */

static void check_block(void *p, size_t n, size_t align, const char *what)
{
    if (p == NULL)
        fail_msg("%s(%zu): NULL (errno %d)", what, n, errno);
    if (!is_aligned(p, align))
        fail_msg("%s(%zu) = %p, not %zu-aligned", what, n, p, align);
    size_t us = vam_usable_size(p);
    if (us < n)
        fail_msg("%s(%zu) = %p: usable size %zu < %zu", what, n, p, us, n);
    if (n > 0) {
        volatile uint8_t *b = p;
        b[0] = 0x5c;
        b[n - 1] = 0xc5;
        if (n > 1 && b[0] != 0x5c)
            fail_msg("%s(%zu): first byte lost", what, n);
    }
}

static void test_alignment_small(void **state)
{
    enum { K = 6 };
    void *v[K];
    (void)state;
    for (size_t n = 1; n <= 4096; n++) {
        size_t a = required_align(n);
        for (int k = 0; k < K; k++) {
            v[k] = vam_malloc(n);
            check_block(v[k], n, a, "vam_malloc");
        }
        for (int k = 0; k < K; k++)
            vam_free(v[k]);
    }
}

static void test_alignment_big(void **state)
{
    void *v[3];
    (void)state;
    for (size_t p = 4 * KiB; p <= 64 * MiB; p *= 2) {
        size_t cand[] = {p - 1, p, p + 1, p + p / 4 + 3, p + p / 2, p + p / 2 + 16 + 1};
        for (size_t c = 0; c < sizeof cand / sizeof cand[0]; c++) {
            size_t n = cand[c];
            if (n > 64 * MiB)
                continue;
            for (int k = 0; k < 3; k++) {
                v[k] = vam_malloc(n);
                check_block(v[k], n, 16, "vam_malloc");
            }
            for (int k = 0; k < 3; k++)
                vam_free(v[k]);
        }
    }
}

/* ---- ENOMEM ----------------------------------------------------------- */

static void test_enomem(void **state)
{
    (void)state;
    /* Sizes above PTRDIFF_MAX, including ones that wrap when rounded. */
    const size_t over[] = {PD + 1, PD + 4096, SIZE_MAX - 4096 * 1024, SIZE_MAX - 4096,
                           SIZE_MAX - 15, SIZE_MAX - 1, SIZE_MAX};
    for (size_t i = 0; i < sizeof over / sizeof over[0]; i++) {
        size_t x = opaque_size(over[i]);
        EXPECT_ENOMEM(vam_malloc(x));
        EXPECT_ENOMEM(vam_calloc(1, x));
        EXPECT_ENOMEM(vam_calloc(x, 1));
        EXPECT_ENOMEM(vam_realloc(NULL, x));
        EXPECT_ENOMEM(vam_reallocarray(NULL, x, 1));
        EXPECT_ENOMEM(vam_reallocarray(NULL, 1, x));
        EXPECT_ENOMEM(vam_aligned_alloc(16, x));
        EXPECT_ENOMEM(vam_aligned_alloc(4096, x));
        EXPECT_ENOMEM(vam_aligned_alloc(2 * MiB, x));
        EXPECT_ENOMEM(vam_memalign(16, x));
        EXPECT_ENOMEM(vam_memalign(4096, x));
        EXPECT_ENOMEM(vam_memalign(MiB, x));
        EXPECT_ENOMEM(vam_valloc(x));
        EXPECT_ENOMEM(vam_pvalloc(x));
    }

    /* Multiplication overflow (including products that wrap to 0 or to a
     * small number). */
    const size_t ovf[][2] = {
        {SIZE_MAX / 2 + 1, 2}, {2, SIZE_MAX / 2 + 1}, {SIZE_MAX, SIZE_MAX},
        {(size_t)1 << 32, (size_t)1 << 32}, {((size_t)1 << 32) + 1, (size_t)1 << 32},
        {SIZE_MAX / 3 + 1, 3}, {((size_t)1 << 60) + 1, 16},
    };
    for (size_t i = 0; i < sizeof ovf / sizeof ovf[0]; i++) {
        size_t a = opaque_size(ovf[i][0]), b = opaque_size(ovf[i][1]);
        EXPECT_ENOMEM(vam_calloc(a, b));
        EXPECT_ENOMEM(vam_reallocarray(NULL, a, b));
    }
    /* Products that do not wrap but exceed PTRDIFF_MAX. */
    EXPECT_ENOMEM(vam_calloc(opaque_size(PD / 2 + 1), 2));
    EXPECT_ENOMEM(vam_calloc(opaque_size((size_t)1 << 31), (size_t)1 << 32));
    EXPECT_ENOMEM(vam_reallocarray(NULL, opaque_size(PD / 2 + 1), 2));

    /* Sizes at or below PTRDIFF_MAX that no x86-64/aarch64 process can map
     * (user address space is at most 2^47 without a high mmap hint). */
    const size_t unmappable[] = {PD, PD - 4095, (size_t)1 << 62, (size_t)1 << 48,
                                 ((size_t)1 << 47) + 1, (size_t)1 << 47};
    for (size_t i = 0; i < sizeof unmappable / sizeof unmappable[0]; i++) {
        size_t x = opaque_size(unmappable[i]);
        EXPECT_ENOMEM(vam_malloc(x));
        EXPECT_ENOMEM(vam_calloc(1, x));
        EXPECT_ENOMEM(vam_realloc(NULL, x));
        EXPECT_ENOMEM(vam_aligned_alloc(4096, x & ~(size_t)4095));
        EXPECT_ENOMEM(vam_memalign(MiB, x));
        EXPECT_ENOMEM(vam_valloc(x));
        EXPECT_ENOMEM(vam_pvalloc(x));
    }
    EXPECT_ENOMEM(vam_calloc(opaque_size((size_t)1 << 23), (size_t)1 << 24));

    /* 64 TiB: fails on most machines, but a kernel with overcommit that lets
     * this process map 2^46 bytes may legitimately let it succeed. */
    {
        size_t x = opaque_size((size_t)1 << 46);
        if (!can_map(x)) {
            EXPECT_ENOMEM(vam_malloc(x));
            EXPECT_ENOMEM(vam_calloc(x, 1));
        } else {
            errno = 0;
            void *p = vam_malloc(x);
            int e = errno;
            if (p == NULL) {
                assert_int_equal(e, ENOMEM);
                print_message("note: vam_malloc(64 TiB) -> NULL/ENOMEM (kernel could map it)\n");
            } else {
                check_block(p, x, 16, "vam_malloc");
                assert_true(vam_owns(p) != 0);
                vam_free(p);
                print_message("note: vam_malloc(64 TiB) succeeded (kernel allows the mapping)\n");
            }
        }
    }

    /* Still alive afterwards. */
    workload_ok(2);
}

/* A failed realloc leaves the block intact. */
static void test_realloc_fail_keeps_block(void **state)
{
    const size_t starts[] = {24, 1000, 100 * KiB, 8 * MiB};
    const size_t huge[] = {PD + 1, SIZE_MAX, SIZE_MAX - 15, (size_t)1 << 47, PD};
    (void)state;
    for (size_t i = 0; i < sizeof starts / sizeof starts[0]; i++) {
        size_t n = starts[i];
        void *p = vam_malloc(n);
        assert_non_null(p);
        pat_fill(p, n, 77 + (unsigned)i);
        for (size_t j = 0; j < sizeof huge / sizeof huge[0]; j++) {
            EXPECT_ENOMEM(vam_realloc(launder(p), opaque_size(huge[j])));
            if (pat_check(p, n, 77 + (unsigned)i) != n)
                fail_msg("block of %zu changed by failed realloc to %zu", n, huge[j]);
        }
        EXPECT_ENOMEM(vam_reallocarray(launder(p), opaque_size(SIZE_MAX / 2 + 1), 2));
        EXPECT_ENOMEM(vam_reallocarray(launder(p), opaque_size((size_t)1 << 24), (size_t)1 << 24));
        assert_int_equal(pat_check(p, n, 77 + (unsigned)i), n);
        assert_true(vam_owns(p) != 0);
        assert_true(vam_usable_size(p) >= n);
        /* The block is still a live block: it can grow and be freed. */
        void *q = vam_realloc(p, n + 1);
        assert_non_null(q);
        assert_int_equal(pat_check(q, n, 77 + (unsigned)i), n);
        vam_free(q);
    }
    workload_ok(3);
}

/* ---- posix_memalign / aligned_alloc / memalign ------------------------ */

static void test_posix_memalign_errors(void **state)
{
    const size_t bad[] = {0, 1, 2, 4, 3, 5, 12, 24, 48, 100, 4097, 3 * 4096,
                          (size_t)1 << 20 | 8, SIZE_MAX, SIZE_MAX - 7, PD};
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (bad[i] >= sizeof(void *) && (bad[i] & (bad[i] - 1)) == 0)
            continue; /* 8 on ILP32 would be valid */
        size_t sizes[] = {0, 16, 4096};
        for (size_t s = 0; s < 3; s++) {
            void *m = SENTINEL;
            errno = 0;
            int rc = vam_posix_memalign(&m, opaque_size(bad[i]), sizes[s]);
            if (rc != EINVAL)
                fail_msg("posix_memalign(align %zu, %zu) = %d, want EINVAL", bad[i], sizes[s], rc);
            if (m != SENTINEL)
                fail_msg("posix_memalign(align %zu) touched *memptr (%p)", bad[i], m);
        }
    }

    const size_t huge[] = {PD + 1, SIZE_MAX, SIZE_MAX - 15, SIZE_MAX - 4095, PD, (size_t)1 << 47};
    const size_t aligns[] = {sizeof(void *), 16, 64, 4096, MiB, 64 * MiB};
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++)
        for (size_t j = 0; j < sizeof aligns / sizeof aligns[0]; j++) {
            void *m = SENTINEL;
            int rc = vam_posix_memalign(&m, aligns[j], opaque_size(huge[i]));
            if (rc != ENOMEM)
                fail_msg("posix_memalign(align %zu, size %zu) = %d, want ENOMEM", aligns[j], huge[i], rc);
            if (m != SENTINEL)
                fail_msg("posix_memalign(align %zu, size %zu) touched *memptr", aligns[j], huge[i]);
        }

    /* 2^63 is a power of two but cannot be honoured: ENOMEM (glibc) or
     * EINVAL, never success, never a touched *memptr. */
    {
        void *m = SENTINEL;
        int rc = vam_posix_memalign(&m, opaque_size(SIZE_MAX / 2 + 1), 16);
        if (rc != ENOMEM && rc != EINVAL)
            fail_msg("posix_memalign(align 2^63) = %d", rc);
        assert_ptr_equal(m, SENTINEL);
    }
    workload_ok(4);
}

static void test_posix_memalign_ok(void **state)
{
    (void)state;
    for (size_t a = sizeof(void *); a <= GiB; a *= 2) {
        size_t sizes[] = {1, 100, a};
        int nsizes = a <= 64 * MiB ? 3 : 2;
        for (int s = 0; s < nsizes; s++) {
            void *m = SENTINEL;
            errno = 0;
            int rc = vam_posix_memalign(&m, a, sizes[s]);
            if (rc != 0)
                fail_msg("posix_memalign(align %zu, size %zu) = %d", a, sizes[s], rc);
            assert_true(m != SENTINEL);
            check_block(m, sizes[s], a, "posix_memalign");
            assert_true(vam_owns(m) != 0);
            vam_free(m);
        }
    }
    /* Several live small aligned blocks at once do not overlap. */
    for (size_t a = sizeof(void *); a <= 64 * KiB; a *= 2) {
        enum { K = 16 };
        void *v[K];
        for (int k = 0; k < K; k++) {
            assert_int_equal(vam_posix_memalign(&v[k], a, 100), 0);
            check_block(v[k], 100, a, "posix_memalign");
            pat_fill(v[k], 100, (unsigned)k);
        }
        for (int k = 0; k < K; k++) {
            assert_int_equal(pat_check(v[k], 100, (unsigned)k), 100);
            vam_free(v[k]);
        }
    }
}

static size_t next_pow2(size_t x)
{
    size_t p = 1;
    while (p < x)
        p <<= 1;
    return p;
}

/* For an invalid alignment: NULL with EINVAL, or (older glibc behaviour) a
 * block aligned to the next power of two.  Reports which. */
static void check_bad_alignment(void *r, int e, size_t align, const char *fn)
{
    if (r == NULL) {
        if (e != EINVAL)
            fail_msg("%s(align %zu): NULL with errno %d, want EINVAL", fn, align, e);
        return;
    }
    if (!is_aligned(r, next_pow2(align)))
        fail_msg("%s(align %zu) = %p: not aligned to %zu", fn, align, r, next_pow2(align));
    check_block(r, 64, 1, fn);
    vam_free(r);
    print_message("note: %s(align %zu) rounded the alignment up instead of EINVAL\n", fn, align);
}

static void test_aligned_alloc_memalign(void **state)
{
    (void)state;
    for (size_t a = 1; a <= GiB; a *= 2) {
        size_t sizes[] = {1, 100, a};
        int nsizes = a <= 64 * MiB ? 3 : 2;
        for (int s = 0; s < nsizes; s++) {
            size_t want = a < required_align(sizes[s]) ? required_align(sizes[s]) : a;
            errno = 0;
            void *p = vam_aligned_alloc(a, sizes[s]);
            check_block(p, sizes[s], want, "aligned_alloc");
            assert_true(vam_owns(p) != 0);
            vam_free(p);
            errno = 0;
            p = vam_memalign(a, sizes[s]);
            check_block(p, sizes[s], want, "memalign");
            assert_true(vam_owns(p) != 0);
            vam_free(p);
        }
    }
    const size_t bad[] = {0, 3, 24, 48, 100, 4097, 3 * 4096};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        void *r = vam_aligned_alloc(opaque_size(bad[i]), 64);
        check_bad_alignment(r, errno, bad[i], "aligned_alloc");
        errno = 0;
        r = vam_memalign(opaque_size(bad[i]), 64);
        check_bad_alignment(r, errno, bad[i], "memalign");
    }
    workload_ok(5);
}

static void test_valloc_pvalloc(void **state)
{
    const size_t pg = page_size();
    const size_t sizes[] = {1, 100, pg - 1, pg, pg + 1, 3 * pg + 5, MiB + 1, 8 * MiB + 3};
    (void)state;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        void *p = vam_valloc(n);
        check_block(p, n, pg, "valloc");
        vam_free(p);
        p = vam_pvalloc(n);
        size_t rounded = (n + pg - 1) & ~(pg - 1);
        check_block(p, rounded, pg, "pvalloc");
        vam_free(p);
    }
    void *p = vam_pvalloc(0);
    assert_non_null(p);
    assert_true(is_aligned(p, pg));
    vam_free(p);
    p = vam_valloc(0);
    assert_non_null(p);
    assert_true(is_aligned(p, pg));
    vam_free(p);
}

/* ---- usable size ------------------------------------------------------ */

static void test_usable_size(void **state)
{
    (void)state;
    assert_int_equal(vam_usable_size(NULL), 0);
    for (size_t n = 0; n <= (1u << 20); n += (n < 8192 ? 1 : (n < 65536 ? 17 : 251))) {
        void *p = vam_malloc(n);
        assert_non_null(p);
        size_t us = vam_usable_size(p);
        if (us < n)
            fail_msg("usable_size(malloc(%zu)) = %zu", n, us);
        vam_free(p);
    }
    for (size_t b = 1 * MiB; b <= 256 * MiB; b *= 2) {
        size_t cand[] = {b - 1, b, b + 1, b + 12345};
        for (int c = 0; c < 4; c++) {
            void *p = vam_malloc(cand[c]);
            check_block(p, cand[c], 16, "vam_malloc");
            vam_free(p);
        }
    }
}

struct blk {
    uint8_t *p;
    size_t us;
    uint8_t c;
};

static void fill_and_verify(struct blk *v, size_t count)
{
    for (size_t i = 0; i < count; i++)
        memset(v[i].p, v[i].c, v[i].us);
    for (size_t i = 0; i < count; i++) {
        size_t bad = first_not(v[i].p, v[i].us, v[i].c);
        if (bad != v[i].us)
            fail_msg("block %zu (%p, usable %zu, byte %#x) overwritten at offset %zu with %#x",
                     i, (void *)v[i].p, v[i].us, v[i].c, bad, v[i].p[bad]);
    }
}

/* Writing the whole usable size of a block never disturbs another block. */
static void test_usable_size_writable(void **state)
{
    enum { MAXB = 4096 };
    static struct blk v[MAXB];
    unsigned tag = 1;
    (void)state;
    for (size_t n = 0; n <= 70 * KiB; n += (n < 1024 ? 1 : (n < 16384 ? 61 : 1021))) {
        size_t count = n <= 1024 ? 48 : (n <= 16384 ? 12 : 4);
        for (size_t i = 0; i < count; i++) {
            v[i].p = vam_malloc(n);
            assert_non_null(v[i].p);
            v[i].us = vam_usable_size(v[i].p);
            assert_true(v[i].us >= n);
            v[i].c = (uint8_t)(tag++ % 251 + 1);
        }
        fill_and_verify(v, count);
        for (size_t i = 0; i < count; i++)
            vam_free(v[i].p);
    }
    for (size_t n = 128 * KiB; n <= 16 * MiB; n = n * 2 + 4099) {
        for (size_t i = 0; i < 3; i++) {
            v[i].p = vam_malloc(n);
            assert_non_null(v[i].p);
            v[i].us = vam_usable_size(v[i].p);
            assert_true(v[i].us >= n);
            v[i].c = (uint8_t)(tag++ % 251 + 1);
        }
        fill_and_verify(v, 3);
        for (size_t i = 0; i < 3; i++)
            vam_free(v[i].p);
    }
    /* Mixed sizes (and aligned blocks) live together. */
    uint64_t s = 12345;
    for (size_t i = 0; i < MAXB; i++) {
        uint64_t r = rng_next(&s);
        size_t n = (i % 64 == 0) ? (size_t)(r % (300 * KiB)) : (size_t)(r % 1500);
        if (i % 17 == 0)
            v[i].p = vam_aligned_alloc((size_t)64 << (r % 7), n);
        else
            v[i].p = vam_malloc(n);
        assert_non_null(v[i].p);
        v[i].us = vam_usable_size(v[i].p);
        assert_true(v[i].us >= n);
        v[i].c = (uint8_t)(i % 251 + 1);
    }
    fill_and_verify(v, MAXB);
    for (size_t i = 0; i < MAXB; i++)
        vam_free(v[i].p);
}

/* ---- realloc ---------------------------------------------------------- */

static void *realloc_step(void *p, size_t old, size_t new, unsigned *seed)
{
    void *q = vam_realloc(p, new);
    if (q == NULL)
        fail_msg("realloc(%p, %zu -> %zu) failed, errno %d", p, old, new, errno);
    size_t keep = old < new ? old : new;
    size_t bad = pat_check(q, keep, *seed);
    if (bad != keep)
        fail_msg("realloc %zu -> %zu lost content at offset %zu", old, new, bad);
    assert_true(vam_usable_size(q) >= new);
    *seed += 1;
    pat_fill(q, new, *seed);
    return q;
}

static void test_realloc_paths(void **state)
{
    unsigned seed = 1;
    (void)state;
    void *p = vam_realloc(NULL, 100);
    assert_non_null(p);
    assert_true(vam_owns(p) != 0);
    pat_fill(p, 100, seed);
    const size_t steps[] = {
        200,            /* small -> small */
        3000,           /* small -> bigger small */
        64 * KiB,       /* small -> large */
        1 * MiB,        /* large -> large */
        64 * MiB,       /* large -> huge */
        64 * MiB + 12345, /* huge grow */
        16 * MiB + 1,   /* huge shrink */
        16 * MiB + 1,   /* same size */
        100,            /* huge -> small */
        100,            /* same size */
        1,              /* shrink */
        5000,
        40 * KiB,
        300,            /* large -> small */
        200 * MiB,      /* small -> huge */
        64 * MiB,
        2 * MiB,
        8,
    };
    size_t cur = 100;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        p = realloc_step(p, cur, steps[i], &seed);
        cur = steps[i];
    }
    vam_free(p);

    /* Grow one byte at a time, then shrink one byte at a time. */
    p = vam_malloc(1);
    assert_non_null(p);
    cur = 1;
    pat_fill(p, 1, seed);
    for (size_t n = 2; n <= 3000; n++) {
        p = realloc_step(p, cur, n, &seed);
        cur = n;
    }
    for (size_t n = 2999; n >= 1; n--) {
        p = realloc_step(p, cur, n, &seed);
        cur = n;
    }
    vam_free(p);

    /* Growing by a quarter each time up to 32 MiB (the vector pattern). */
    p = NULL;
    cur = 0;
    for (size_t n = 16; n <= 32 * MiB; n += n / 4 + 1) {
        p = realloc_step(p, cur, n, &seed);
        cur = n;
    }
    vam_free(p);

    /* realloc of an over-aligned block keeps its content. */
    void *m = NULL;
    assert_int_equal(vam_posix_memalign(&m, 4096, 700), 0);
    pat_fill(m, 700, seed);
    m = realloc_step(m, 700, 20000, &seed);
    m = realloc_step(m, 20000, 50, &seed);
    vam_free(m);
}

static void test_realloc_zero(void **state)
{
    (void)state;
    /* realloc(NULL, 0) is malloc(0): a unique, freeable block. */
    void *a = vam_realloc(NULL, 0);
    void *b = vam_realloc(NULL, 0);
    assert_non_null(a);
    assert_non_null(b);
    assert_true(addr_of(a) != addr_of(b));
    vam_free(a);
    vam_free(b);

    /* realloc(p, 0) frees p and returns a new minimal block, never NULL
     * (README "Semantics"): a vamalloc block as small as malloc(0)'s. */
    void *z = vam_malloc(0);
    assert_non_null(z);
    size_t min_usable = vam_usable_size(z);
    vam_free(z);
    const size_t sizes[] = {1, 64, 5000, 300 * KiB, 16 * MiB};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = vam_malloc(sizes[i]);
        assert_non_null(p);
        memset(p, 0x3c, sizes[i]);
        errno = 0;
        void *q = vam_realloc(p, 0);
        if (q == NULL)
            fail_msg("vam_realloc(p of %zu, 0) = NULL (errno %d), want a minimal block",
                     sizes[i], errno);
        assert_true(vam_owns(q) != 0);
        if (vam_usable_size(q) != min_usable)
            fail_msg("vam_realloc(p of %zu, 0): usable size %zu, malloc(0) has %zu",
                     sizes[i], vam_usable_size(q), min_usable);
        memset(q, 0x3d, vam_usable_size(q));
        vam_free(q);
    }

    /* It does not leak: 200k cycles of malloc(256) + realloc(p, 0) + free
     * of the result keep RSS flat.  A leak would be
     * 50 MiB. */
    for (int i = 0; i < 2000; i++) {
        void *p = vam_malloc(256);
        assert_non_null(p);
        memset(p, 1, 256);
        vam_free(vam_realloc(p, 0));
    }
    size_t before = rss_bytes();
    for (int i = 0; i < 200000; i++) {
        void *p = vam_malloc(256);
        assert_non_null(p);
        memset(p, 1, 256);
        vam_free(vam_realloc(p, 0));
    }
    size_t after = rss_bytes();
    if (after > before + 8 * MiB)
        fail_msg("realloc(p, 0) leaks: RSS %zu -> %zu", before, after);
    workload_ok(6);
}

/* ---- calloc ----------------------------------------------------------- */

static void test_calloc_zeroed(void **state)
{
    const size_t sizes[] = {1, 8, 16, 17, 100, 256, 1000, 4095, 4096, 4097, 16384,
                            65536 + 3, 256 * KiB, MiB, MiB + 1, 4 * MiB, 16 * MiB + 5, 64 * MiB};
    enum { MAXN = 64 };
    void *v[MAXN];
    (void)state;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        size_t cnt = n <= 64 * KiB ? MAXN : (n <= 4 * MiB ? 4 : 2);
        /* Dirty the memory first. */
        for (size_t k = 0; k < cnt; k++) {
            v[k] = vam_malloc(n);
            assert_non_null(v[k]);
            memset(v[k], 0xAA, vam_usable_size(v[k]));
        }
        for (size_t k = 0; k < cnt; k++)
            vam_free(v[k]);
        for (int round = 0; round < 5; round++) {
            for (size_t k = 0; k < cnt; k++) {
                if ((round & 1) && n % 8 == 0)
                    v[k] = vam_calloc(n / 8, 8);
                else
                    v[k] = vam_calloc(1, n);
                assert_non_null(v[k]);
                size_t bad = first_not(v[k], n, 0);
                if (bad != n)
                    fail_msg("calloc(%zu) round %d block %zu: byte %zu is %#x", n, round, k,
                             bad, ((uint8_t *)v[k])[bad]);
                memset(v[k], 0xAA, vam_usable_size(v[k]));
            }
            for (size_t k = 0; k < cnt; k++)
                vam_free(v[k]);
        }
        /* Immediate reuse: free a dirty block, calloc the same size. */
        if (n <= 64 * KiB)
            for (int r = 0; r < 500; r++) {
                void *p = vam_malloc(n);
                assert_non_null(p);
                memset(p, 0xAA, vam_usable_size(p));
                vam_free(p);
                p = vam_calloc(n, 1);
                assert_non_null(p);
                assert_int_equal(first_not(p, n, 0), n);
                vam_free(p);
            }
    }
    void *p = vam_calloc(0, 0);
    assert_non_null(p);
    vam_free(p);
    p = vam_calloc(1000, 24);
    assert_non_null(p);
    assert_int_equal(first_not(p, 24000, 0), 24000);
    vam_free(p);
}

/* ---- sized free ------------------------------------------------------- */

static void test_free_sized(void **state)
{
    enum { N = 1000 };
    static void *v[N];
    static size_t sz[N];
    uint64_t s = 99;
    (void)state;

    /* Small blocks: 300 rounds of 1000 blocks (24 MiB if never freed). */
    size_t before = 0;
    for (int round = 0; round < 320; round++) {
        if (round == 20)
            before = rss_bytes();
        for (int i = 0; i < N; i++) {
            sz[i] = 16 + (size_t)(rng_next(&s) % 150);
            v[i] = vam_malloc(sz[i]);
            assert_non_null(v[i]);
            memset(v[i], 0x11, sz[i]);
        }
        for (int i = 0; i < N; i++)
            vam_free_sized(v[i], sz[i]);
    }
    size_t after = rss_bytes();
    if (after > before + 8 * MiB)
        fail_msg("vam_free_sized (small) does not free: RSS %zu -> %zu", before, after);

    /* Large blocks: 200 x 2 MiB (400 MiB if never freed). */
    for (int round = 0; round < 220; round++) {
        if (round == 20)
            before = rss_bytes();
        size_t n = 2 * MiB + (size_t)round * 64;
        void *p = vam_malloc(n);
        assert_non_null(p);
        memset(p, 0x22, n);
        vam_free_sized(p, n);
    }
    after = rss_bytes();
    if (after > before + 32 * MiB)
        fail_msg("vam_free_sized (large) does not free: RSS %zu -> %zu", before, after);

    /* Aligned blocks with vam_free_aligned_sized. */
    for (int round = 0; round < 220; round++) {
        if (round == 20)
            before = rss_bytes();
        size_t a = (size_t)64 << (round % 15); /* 64 B .. 1 MiB */
        size_t n = 300 * KiB + (size_t)round;
        void *p = vam_aligned_alloc(a, n);
        assert_non_null(p);
        assert_true(is_aligned(p, a));
        memset(p, 0x33, n);
        vam_free_aligned_sized(p, a, n);
        for (int i = 0; i < 50; i++) {
            void *q = vam_aligned_alloc(a, 40);
            assert_non_null(q);
            memset(q, 0x34, 40);
            vam_free_aligned_sized(q, a, 40);
        }
    }
    after = rss_bytes();
    if (after > before + 32 * MiB)
        fail_msg("vam_free_aligned_sized does not free: RSS %zu -> %zu", before, after);
    workload_ok(7);
}

/* ---- foreign pointers ------------------------------------------------- */

static char static_arr[16384] __attribute__((aligned(4096)));

static int realloc_null_count;

/* f lies in [base, base + len), which holds pattern seed. */
static void foreign_one(void *f, void *base, size_t len, unsigned seed, const char *what)
{
    if (vam_owns(f) != 0)
        fail_msg("vam_owns(%s %p) != 0", what, f);
    if (vam_usable_size(f) != 0)
        fail_msg("vam_usable_size(%s %p) = %zu, want 0", what, f, vam_usable_size(f));
    vam_free(f);
    /* Reported misuse: in warn and ignore mode NULL with errno EINVAL
     * (README "Semantics"), the foreign memory untouched (checked below). */
    errno = 0;
    void *r = vam_realloc(f, 64);
    int e = errno;
    if (r != NULL || e != EINVAL)
        fail_msg("vam_realloc(%s %p, 64) = %p with errno %d, want NULL/EINVAL", what, f, r, e);
    realloc_null_count++;
    if (vam_owns(f) != 0 || vam_usable_size(f) != 0)
        fail_msg("%s %p adopted by vamalloc after free/realloc", what, f);
    size_t bad = pat_check(base, len, seed);
    if (bad != len)
        fail_msg("foreign memory (%s) written at offset %zu", what, bad);
}

static void test_foreign_pointers(void **state)
{
    (void)state;
    assert_int_equal(vam_owns(NULL), 0);
    /* A foreign pointer is reported misuse: by default one line and abort
     * (tests/misuse).  Here the API's answers in warn and ignore mode, which
     * must leave the foreign memory untouched: run again in a child that has
     * VAMALLOC_ON_CORRUPTION=warn, then =ignore, from the start. */
    const char *mode = getenv("VAMALLOC_ON_CORRUPTION");
    if (mode == NULL || (strcmp(mode, "ignore") != 0 && strcmp(mode, "warn") != 0)) {
        const char *modes[] = {"warn", "ignore"};
        for (int m = 0; m < 2; m++) {
            pid_t pid = fork();
            assert_true(pid >= 0);
            if (pid == 0) {
                char *argv[] = {(char *)"/proc/self/exe", (char *)"foreign", NULL};
                setenv("VAMALLOC_ON_CORRUPTION", modes[m], 1);
                execv("/proc/self/exe", argv);
                _exit(127);
            }
            int st = 0;
            assert_int_equal(waitpid(pid, &st, 0), pid);
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
                fail_msg("foreign-pointer child (%s mode) failed: status 0x%x", modes[m], st);
        }
        return;
    }

    /* Our own mapping, with a 4 MiB-aligned address inside it and contents
     * that would make a header-trusting free crash. */
    size_t maplen = 12 * MiB;
    uint8_t *map = mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(map != MAP_FAILED);
    pat_fill(map, maplen, 5);
    uint8_t *al = (uint8_t *)(((uintptr_t)map + 4 * MiB - 1) & ~(uintptr_t)(4 * MiB - 1));
    void *mp[] = {map, map + 16, map + 4096, al, al + 16, al + 64 * KiB, al + 2 * MiB};
    for (size_t i = 0; i < sizeof mp / sizeof mp[0]; i++)
        foreign_one(mp[i], map, maplen, 5, "mmap");

    /* Static array. */
    pat_fill(static_arr, sizeof static_arr, 6);
    void *sp[] = {static_arr, static_arr + 16, static_arr + 4096};
    for (size_t i = 0; i < 3; i++)
        foreign_one(sp[i], static_arr, sizeof static_arr, 6, "static");

    /* Stack. */
    _Alignas(64) char stackbuf[1024];
    pat_fill(stackbuf, sizeof stackbuf, 7);
    foreign_one(stackbuf, stackbuf, sizeof stackbuf, 7, "stack");
    foreign_one(stackbuf + 16, stackbuf, sizeof stackbuf, 7, "stack");

    /* glibc's malloc (the plain name in this statically linked binary). */
    if (VAM_TEST_STATIC_OVERRIDE) {
        print_message("note: built with -Doverride=true; glibc-pointer case skipped\n");
    } else {
        const size_t gs[] = {24, 200, 5000, 2 * MiB};
        for (size_t i = 0; i < sizeof gs / sizeof gs[0]; i++) {
            void *g = malloc(gs[i]);
            assert_non_null(g);
            pat_fill(g, gs[i], 8 + (unsigned)i);
            foreign_one(g, g, gs[i], 8 + (unsigned)i, "glibc malloc");
            /* glibc still owns it and its heap is intact. */
            void *g2 = realloc(g, gs[i] * 2);
            assert_non_null(g2);
            assert_int_equal(pat_check(g2, gs[i], 8 + (unsigned)i), gs[i]);
            free(g2);
        }
    }
    assert_true(realloc_null_count >= 9); /* every case above ran */
    munmap(map, maplen);

    /* vam pointers of every kind say yes. */
    void *own[6];
    own[0] = vam_malloc(1);
    own[1] = vam_malloc(700);
    own[2] = vam_malloc(64 * KiB);
    own[3] = vam_malloc(8 * MiB);
    own[4] = vam_malloc(64 * MiB);
    own[5] = NULL;
    assert_int_equal(vam_posix_memalign(&own[5], MiB, 100), 0);
    for (int i = 0; i < 6; i++) {
        assert_non_null(own[i]);
        if (vam_owns(own[i]) == 0)
            fail_msg("vam_owns(own[%d] = %p) == 0", i, own[i]);
    }
    for (int i = 0; i < 6; i++)
        vam_free(own[i]);
    workload_ok(8);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "foreign") == 0) {
        const struct CMUnitTest only[] = {cmocka_unit_test(test_foreign_pointers)};
        return cmocka_run_group_tests_name("api-foreign-warn-ignore", only, NULL, NULL);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_malloc_zero_free_null),
        cmocka_unit_test(test_alignment_small),
        cmocka_unit_test(test_alignment_big),
        cmocka_unit_test(test_enomem),
        cmocka_unit_test(test_realloc_fail_keeps_block),
        cmocka_unit_test(test_posix_memalign_errors),
        cmocka_unit_test(test_posix_memalign_ok),
        cmocka_unit_test(test_aligned_alloc_memalign),
        cmocka_unit_test(test_valloc_pvalloc),
        cmocka_unit_test(test_usable_size),
        cmocka_unit_test(test_usable_size_writable),
        cmocka_unit_test(test_realloc_paths),
        cmocka_unit_test(test_realloc_zero),
        cmocka_unit_test(test_calloc_zeroed),
        cmocka_unit_test(test_free_sized),
        cmocka_unit_test(test_foreign_pointers),
    };
    return cmocka_run_group_tests_name("api", tests, NULL, NULL);
}
