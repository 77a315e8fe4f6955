// gbench_malloc: Google Benchmark views of the malloc family.
//
// Like the C benchmarks it calls only the standard names and is not linked
// with vamalloc; pick the allocator with LD_PRELOAD:
//
//   LD_PRELOAD=build/libvamalloc.so build/bench/gbench_malloc --benchmark_filter=Pair
//
// Cases: BM_Pair (fixed sizes, 1-2 threads), BM_PairClass (one per size
// class), BM_Batch, BM_Calloc, BM_ReallocGrow (doubling), BM_ReallocAppend
// (small steps), BM_Aligned (aligned_alloc / posix_memalign), and
// BM_CrossThreadFree (malloc here, free on another thread).
//
// Each block is stamped and checked before it is freed; a mismatch aborts
// the run with SkipWithError, so a broken allocator never yields a number.
// Built only when libbenchmark (pkg-config 'benchmark') and a C++ compiler
// are available.
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <thread>
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

// Sizes at and just past the usual size-class boundaries: 8..128 in steps of
// 8 and 16, then four per power of two up to 32 KiB (the steps most
// allocators' class tables use), so a class with a slow path shows up.
void SizeClassArgs(benchmark::internal::Benchmark *b)
{
    for (int64_t n = 8; n <= 64; n += 8) b->Arg(n);
    for (int64_t n = 80; n <= 128; n += 16) b->Arg(n);
    for (int64_t p = 128; p < (32 << 10); p *= 2)
        for (int64_t q = 1; q <= 4; q++) b->Arg(p + p * q / 4);
}

// malloc + free per size class, with a 16-block working set so a freed
// block is not always the next one handed out.
void BM_PairClass(benchmark::State &state)
{
    const size_t n = static_cast<size_t>(state.range(0));
    void *ws[16];
    size_t i = 0;
    for (size_t k = 0; k < 16; k++) {
        ws[k] = std::malloc(n);
        if (!ws[k]) { state.SkipWithError("malloc returned NULL"); return; }
        stamp(ws[k], n, tag_of(k));
    }
    for (auto _ : state) {
        size_t s = i % 16;
        if (!intact(ws[s], n, tag_of(i))) { state.SkipWithError("block corrupted"); break; }
        std::free(ws[s]);
        ws[s] = std::malloc(n);
        if (!ws[s]) { state.SkipWithError("malloc returned NULL"); return; }
        i++;
        stamp(ws[s], n, tag_of(i + 15));
    }
    for (size_t k = 0; k < 16; k++) std::free(ws[k]);
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PairClass)->Apply(SizeClassArgs);

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

// Grow by small steps (append 1..32 bytes, realloc to the exact length), as
// a naive string builder does: most reallocs should stay in place.
void BM_ReallocAppend(benchmark::State &state)
{
    const size_t max = static_cast<size_t>(state.range(0));
    for (auto _ : state) {
        size_t n = 1, step = 0;
        auto *p = static_cast<unsigned char *>(std::malloc(n));
        if (!p) { state.SkipWithError("malloc returned NULL"); break; }
        p[0] = 0x5a;
        while (n < max) {
            size_t add = 1 + (step++ * 7) % 32;
            p = static_cast<unsigned char *>(std::realloc(p, n + add));
            if (!p) { state.SkipWithError("realloc returned NULL"); return; }
            if (p[0] != 0x5a || p[n - 1] != static_cast<unsigned char>(n - 1 == 0 ? 0x5a : n - 1)) {
                state.SkipWithError("realloc lost data");
                std::free(p);
                return;
            }
            for (size_t k = n; k < n + add; k++) p[k] = static_cast<unsigned char>(k);
            n += add;
        }
        benchmark::DoNotOptimize(p);
        std::free(p);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ReallocAppend)->Arg(1024)->Arg(64 << 10);

// aligned_alloc / posix_memalign + free at a given alignment (64-byte
// blocks; 4096-byte blocks for page alignment and above).
void BM_Aligned(benchmark::State &state)
{
    const size_t align = static_cast<size_t>(state.range(0));
    const size_t n = align >= 4096 ? align : 64;
    size_t i = 0;
    for (auto _ : state) {
        void *p = nullptr;
        if (i & 1) {
            p = std::aligned_alloc(align, n);
        } else if (posix_memalign(&p, align, n) != 0) {
            p = nullptr;
        }
        if (!p) { state.SkipWithError("aligned allocation failed"); break; }
        if (reinterpret_cast<uintptr_t>(p) % align != 0) {
            state.SkipWithError("misaligned block");
            break;
        }
        stamp(p, n, tag_of(i));
        benchmark::DoNotOptimize(p);
        if (!intact(p, n, tag_of(i))) { state.SkipWithError("block corrupted"); break; }
        std::free(p);
        i++;
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Aligned)->Arg(16)->Arg(64)->Arg(256)->Arg(4096)->Arg(64 << 10);

// Cross-thread free: the benchmark thread mallocs batches of 64 blocks
// (16..256 B) and hands each batch to a second thread, which checks and
// frees them, through a single-slot mailbox per batch (a ring of 8).
// Reported per block; the time includes waiting for the freeing thread.
struct XRing {
    static constexpr size_t kBatch = 64, kRing = 8;
    std::atomic<uint64_t> made{0}, freed{0};
    std::atomic<bool> stop{false}, bad{false};
    void *slot[kRing][kBatch];
};

void BM_CrossThreadFree(benchmark::State &state)
{
    XRing r;
    std::thread freer([&r] {
        uint64_t b = 0;
        for (;;) {
            while (r.made.load(std::memory_order_acquire) <= b) {
                if (r.stop.load(std::memory_order_acquire) &&
                    r.made.load(std::memory_order_acquire) <= b)
                    return;
                std::this_thread::yield();
            }
            void **s = r.slot[b % XRing::kRing];
            for (size_t j = 0; j < XRing::kBatch; j++) {
                size_t n = 16 * (1 + j % 16);
                if (!intact(s[j], n, tag_of(b * XRing::kBatch + j)))
                    r.bad.store(true);
                std::free(s[j]);
            }
            r.freed.store(++b, std::memory_order_release);
        }
    });
    uint64_t b = 0;
    for (auto _ : state) {
        while (b - r.freed.load(std::memory_order_acquire) >= XRing::kRing)
            std::this_thread::yield();
        void **s = r.slot[b % XRing::kRing];
        for (size_t j = 0; j < XRing::kBatch; j++) {
            size_t n = 16 * (1 + j % 16);
            s[j] = std::malloc(n);
            if (!s[j]) { state.SkipWithError("malloc returned NULL"); std::abort(); }
            stamp(s[j], n, tag_of(b * XRing::kBatch + j));
        }
        r.made.store(++b, std::memory_order_release);
    }
    r.stop.store(true, std::memory_order_release);
    freer.join();
    if (r.bad.load()) state.SkipWithError("block corrupted");
    state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(XRing::kBatch));
}
BENCHMARK(BM_CrossThreadFree)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
