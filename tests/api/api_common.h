/* Helpers shared by the api suite's test programs.  Header-only (static
 * functions), no dependence on vamalloc itself, so the preload test can use
 * it without linking the library. */
#ifndef VAM_TESTS_API_COMMON_H
#define VAM_TESTS_API_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define GiB ((size_t)1 << 30)

/* Hide a value from the optimiser, so it cannot fold a comparison between
 * two allocation results or warn about a constant huge size. */
static inline size_t opaque_size(size_t x)
{
    __asm__ volatile("" : "+r"(x));
    return x;
}
static inline void *launder(void *p)
{
    __asm__ volatile("" : "+r"(p));
    return p;
}
static inline uintptr_t addr_of(const void *p)
{
    return (uintptr_t)launder((void *)(uintptr_t)p);
}
static inline int is_aligned(const void *p, size_t a)
{
    return (addr_of(p) & (a - 1)) == 0;
}

/* The alignment a block of n bytes must have: 16 for n >= 16, otherwise the
 * largest power of two dividing n (what any object of that size can need:
 * 8 -> 8, 4 -> 4, 12 -> 4, 7 -> 1). */
static inline size_t required_align(size_t n)
{
    if (n >= 16)
        return 16;
    if (n == 0)
        return 1;
    return n & (~n + 1);
}

static inline size_t page_size(void)
{
    return (size_t)sysconf(_SC_PAGESIZE);
}

/* Deterministic PRNG (xorshift64*). */
static inline uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* Byte i of a block filled with seed. */
static inline uint8_t pat_byte(unsigned seed, size_t i)
{
    return (uint8_t)(seed * 131u + (unsigned)(i * 7u) + (unsigned)(i >> 8));
}
static inline void pat_fill(void *p, size_t n, unsigned seed)
{
    uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        b[i] = pat_byte(seed, i);
}
/* Returns the first offset that does not match, or n when all match. */
static inline size_t pat_check(const void *p, size_t n, unsigned seed)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != pat_byte(seed, i))
            return i;
    return n;
}
/* First offset whose byte is not c, or n. */
static inline size_t first_not(const void *p, size_t n, uint8_t c)
{
    const uint8_t *b = p;
    size_t i = 0;
    uint64_t w;
    memset(&w, c, sizeof w);
    for (; i < n && (addr_of(b + i) & 7) != 0; i++)
        if (b[i] != c)
            return i;
    for (; i + 8 <= n; i += 8)
        if (*(const uint64_t *)(const void *)(b + i) != w)
            break;
    for (; i < n; i++)
        if (b[i] != c)
            return i;
    return n;
}

/* Resident set size in bytes, from /proc/self/statm (no allocation). */
static inline size_t rss_bytes(void)
{
    char buf[128];
    unsigned long vsz = 0, rss = 0;
    ssize_t n;
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    if (sscanf(buf, "%lu %lu", &vsz, &rss) != 2)
        return 0;
    return (size_t)rss * page_size();
}

/* Can this process map n bytes at all (any way an allocator might try)? */
static inline int can_map(size_t n)
{
    static const int prots[] = {PROT_READ | PROT_WRITE, PROT_NONE};
    for (int i = 0; i < 2; i++) {
        void *m = mmap(NULL, n, prots[i], MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m != MAP_FAILED) {
            munmap(m, n);
            return 1;
        }
    }
    return 0;
}

#endif
