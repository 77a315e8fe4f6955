// gbench_malloc: Google Benchmark views of the malloc family.
//
// Like the C benchmarks it calls only the standard names and is not linked
// with vamalloc; pick the allocator with LD_PRELOAD:
//
//   LD_PRELOAD=build/libvamalloc.so build/bench/gbench_malloc --benchmark_filter=Pair
//
// Each block is stamped and checked before it is freed; a mismatch aborts
// the run with SkipWithError, so a broken allocator never yields a number.
// Built only when libbenchmark (pkg-config 'benchmark') and a C++ compiler
// are available.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

inline unsigned char tag_of(size_t i) { return static_cast<unsigned char>(i * 131 + 7); }

inline void stamp(void *p, size_t n, unsigned char t)
{
    auto *b = static_cast<unsigned char *>(p);
    b[0] = t;
    b[n - 1] = static_cast<unsigned char>(~t);
}

inline bool intact(const void *p, size_t n, unsigned char t)
{
    auto *b = static_cast<const unsigned char *>(p);
    return b[0] == t && b[n - 1] == static_cast<unsigned char>(~t);
}

// One malloc + free of a fixed size (the thread-cache fast path).
void BM_Pair(benchmark::State &state)
{
    const size_t n = static_cast<size_t>(state.range(0));
    size_t i = 0;
    for (auto _ : state) {
        void *p = std::malloc(n);
        if (!p) { state.SkipWithError("malloc returned NULL"); break; }
        stamp(p, n, tag_of(i));
        benchmark::DoNotOptimize(p);
        if (!intact(p, n, tag_of(i))) { state.SkipWithError("block corrupted"); break; }
        std::free(p);
        i++;
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Pair)->RangeMultiplier(4)->Range(16, 64 << 10)->ThreadRange(1, 2);

// Allocate a batch of `range(0)` blocks of 16..256 B, then free them all
// (FIFO order, so frees do not simply undo the last allocation).
void BM_Batch(benchmark::State &state)
{
    const size_t batch = static_cast<size_t>(state.range(0));
    std::vector<void *> v(batch);
    for (auto _ : state) {
        for (size_t i = 0; i < batch; i++) {
            size_t n = 16 * (1 + (i % 16));
            v[i] = std::malloc(n);
            if (!v[i]) { state.SkipWithError("malloc returned NULL"); return; }
            stamp(v[i], n, tag_of(i));
        }
        for (size_t i = 0; i < batch; i++) {
            size_t n = 16 * (1 + (i % 16));
            if (!intact(v[i], n, tag_of(i))) { state.SkipWithError("block corrupted"); return; }
            std::free(v[i]);
        }
    }
    state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(batch));
}
BENCHMARK(BM_Batch)->Arg(64)->Arg(1024)->Arg(16384)->ThreadRange(1, 2);

// calloc + free: the cost of handing out zeroed memory.
void BM_Calloc(benchmark::State &state)
{
    const size_t n = static_cast<size_t>(state.range(0));
    for (auto _ : state) {
        auto *p = static_cast<unsigned char *>(std::calloc(1, n));
        if (!p) { state.SkipWithError("calloc returned NULL"); break; }
        if (p[0] != 0 || p[n - 1] != 0) { state.SkipWithError("calloc not zeroed"); break; }
        p[0] = 1;
        benchmark::DoNotOptimize(p);
        std::free(p);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Calloc)->Arg(64)->Arg(4096)->Arg(256 << 10);

// Grow a buffer by doubling from 16 B to range(0), as a string builder does.
void BM_ReallocGrow(benchmark::State &state)
{
    const size_t max = static_cast<size_t>(state.range(0));
    for (auto _ : state) {
        size_t n = 16;
        auto *p = static_cast<unsigned char *>(std::malloc(n));
        if (!p) { state.SkipWithError("malloc returned NULL"); break; }
        p[0] = 0x5a;
        while (n < max) {
            n *= 2;
            p = static_cast<unsigned char *>(std::realloc(p, n));
            if (!p) { state.SkipWithError("realloc returned NULL"); return; }
            if (p[0] != 0x5a) { state.SkipWithError("realloc lost data"); std::free(p); return; }
            p[n - 1] = 1;
        }
        benchmark::DoNotOptimize(p);
        std::free(p);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ReallocGrow)->Arg(4096)->Arg(1 << 20);

}  // namespace

BENCHMARK_MAIN();
