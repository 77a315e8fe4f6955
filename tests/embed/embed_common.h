/* embed suite: what the engine tests share.
 *
 * GC_SCRIPT is one ES5 program that both Duktape and MuJS run.  Its result
 * is a hash of values the script computes from a MINSTD random sequence
 * (objects in a doubly linked list, strings, closures, a sorted array, a
 * joined string, an object used as a map).  expected_result() computes the
 * same hash in C, independently, so a heap that corrupts an engine object
 * changes the answer.  All arithmetic stays below 2^53, so the doubles of
 * the engines are exact.
 *
 * The script calls gc() (a native function each test registers) every
 * gc_every rounds, so rounds / gc_every forced full collections happen.
 */
#ifndef EMBED_COMMON_H
#define EMBED_COMMON_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GC_SCRIPT                                                              \
    "var M = 1000000007;\n"                                                    \
    "function run(seed, n, rounds, gcEvery) {\n"                               \
    "  function rnd() { seed = (seed * 48271) % 2147483647; return seed; }\n"  \
    "  function mix(h, v) { return (h * 31 + v) % M; }\n"                      \
    "  function makeAdder(k) {\n"                                              \
    "    var total = 0;\n"                                                     \
    "    return function (x) { total += x + k; return total; };\n"             \
    "  }\n"                                                                    \
    "  var h = 0;\n"                                                           \
    "  for (var r = 0; r < rounds; r++) {\n"                                   \
    "    var list = null, adders = [], i, p;\n"                                \
    "    for (i = 0; i < n; i++) {\n"                                          \
    "      var v = rnd() % 1000;\n"                                            \
    "      var node = { v: v, s: 'n' + v + ':' + i, next: list, prev: null,\n" \
    "                   arr: [v, i, r] };\n"                                   \
    "      if (list !== null) list.prev = node; /* cycles: mark-and-sweep */\n" \
    "      list = node;\n"                                                     \
    "      adders.push(makeAdder(v));\n"                                       \
    "    }\n"                                                                  \
    "    var sum = 0, slen = 0;\n"                                             \
    "    for (p = list; p !== null; p = p.next) {\n"                           \
    "      sum += p.v + p.arr[1]; slen += p.s.length;\n"                       \
    "    }\n"                                                                  \
    "    var csum = 0;\n"                                                      \
    "    for (i = 0; i < n; i++) { adders[i](i); csum = (csum + adders[i](1)) % M; }\n" \
    "    var nums = [];\n"                                                     \
    "    for (i = 0; i < n; i++) nums.push(rnd() % 100000);\n"                 \
    "    nums.sort(function (a, b) { return a - b; });\n"                      \
    "    var words = [];\n"                                                    \
    "    for (i = 0; i < 50; i++) words.push('w' + (rnd() % 97));\n"           \
    "    var joined = words.join(',');\n"                                      \
    "    var map = {};\n"                                                      \
    "    for (i = 0; i < n; i++) map['k' + ((i * 7) % n)] = i;\n"              \
    "    h = mix(h, sum % M); h = mix(h, slen); h = mix(h, csum);\n"           \
    "    h = mix(h, nums[n >> 1]); h = mix(h, joined.length);\n"               \
    "    h = mix(h, Object.keys(map).length);\n"                               \
    "    if (r % gcEvery === gcEvery - 1) gc();\n"                             \
    "  }\n"                                                                    \
    "  return h;\n"                                                            \
    "}\n"

/* Scripts that never stop allocating (for byte_limit tests): what they
 * allocate stays reachable, so only the heap's limit ends them.
 * GREEDY_DOUBLING keeps strings of doubling length: the allocation that
 * fails is large, and the engine has room left to build its error.
 * GREEDY_SMALL keeps small objects until not even an error object fits. */
#define GREEDY_DOUBLING                                                        \
    "(function () {\n"                                                         \
    "  var keep = [], s = 'abcdefgh';\n"                                       \
    "  for (;;) { keep.push(s); s = s + s; }\n"                                \
    "})();\n"
#define GREEDY_SMALL                                                           \
    "(function () {\n"                                                         \
    "  var keep = [], pad = new Array(65).join('x');\n"                        \
    "  for (var i = 0; ; i++) keep.push({ i: i, s: pad + i });\n"              \
    "})();\n"

/* Fills buf with GC_SCRIPT followed by the call run(seed, n, rounds, gc_every). */
static inline void make_script(char *buf, size_t len, unsigned seed, int n,
                               int rounds, int gc_every)
{
    snprintf(buf, len, "%s\nrun(%u, %d, %d, %d);\n", GC_SCRIPT, seed, n, rounds,
             gc_every);
}

enum { SCRIPT_BUF = 4096 };

static inline unsigned digits(uint64_t v)
{
    unsigned d = 1;
    while (v >= 10) {
        v /= 10;
        d++;
    }
    return d;
}

static inline int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* The script's result, computed in C (libc malloc for scratch space). */
static inline uint64_t expected_result(unsigned seed0, int n, int rounds)
{
    const uint64_t M = 1000000007u;
    uint64_t seed = seed0, h = 0;
    uint64_t *nums = malloc((size_t)n * sizeof *nums);
    unsigned char *seen = malloc((size_t)n);
    if (!nums || !seen)
        abort();
#define RND() (seed = (seed * 48271u) % 2147483647u)
#define MIX(v) (h = (h * 31u + (uint64_t)(v)) % M)
    for (int r = 0; r < rounds; r++) {
        uint64_t sum = 0, slen = 0, csum = 0;
        for (int i = 0; i < n; i++) {
            uint64_t v = RND() % 1000;
            sum += v + (uint64_t)i;                      /* p.v + p.arr[1] */
            slen += 1 + digits(v) + 1 + digits((uint64_t)i); /* 'n' v ':' i */
            /* adders[i](i) leaves total = i + v; adders[i](1) adds 1 + v. */
            csum = (csum + (uint64_t)i + 2 * v + 1) % M;
        }
        for (int i = 0; i < n; i++)
            nums[i] = RND() % 100000;
        qsort(nums, (size_t)n, sizeof *nums, cmp_u64);
        uint64_t joined = 49; /* 50 words, 49 commas */
        for (int i = 0; i < 50; i++)
            joined += 1 + digits(RND() % 97);
        memset(seen, 0, (size_t)n);
        uint64_t keys = 0;
        for (int i = 0; i < n; i++) {
            size_t k = (size_t)(((uint64_t)i * 7) % (uint64_t)n);
            keys += !seen[k];
            seen[k] = 1;
        }
        MIX(sum % M);
        MIX(slen);
        MIX(csum);
        MIX(nums[n >> 1]);
        MIX(joined);
        MIX(keys);
    }
#undef RND
#undef MIX
    free(nums);
    free(seen);
    return h;
}

/* Resident set and virtual size in bytes, from /proc/self/statm (read(2),
 * so that measuring allocates nothing). */
static inline void proc_mem(size_t *rss, size_t *vsz)
{
    char buf[128];
    unsigned long pages = 0, resident = 0;
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n > 0) {
            buf[n] = '\0';
            if (sscanf(buf, "%lu %lu", &pages, &resident) != 2)
                pages = resident = 0;
        }
    }
    size_t ps = (size_t)sysconf(_SC_PAGESIZE);
    if (rss)
        *rss = resident * ps;
    if (vsz)
        *vsz = pages * ps;
}

#define KiB ((size_t)1024)
#define MiB ((size_t)1024 * 1024)

#endif /* EMBED_COMMON_H */
