"""Budget workload: a deterministic Python program that fits in 128 MiB of
address space (RLIMIT_AS) under glibc with PYTHONMALLOC=malloc, so every
object goes through the preloaded malloc.

It mixes what real programs do: many small objects (dicts, tuples, short
strings), medium lists and strings, and a few multi-MiB bytes/bytearray
buffers (huge allocations that come and go).  Output is checksums only, so
it is the same under every correct allocator; run_budget.py compares it with
a plain, unlimited run.
"""
import hashlib
import zlib


def lcg(seed):
    x = seed
    while True:
        x = (x * 6364136223846793005 + 1442695040888963407) & (2**64 - 1)
        yield x >> 33


def small_objects(rounds):
    rng = lcg(11)
    crc = 0
    for r in range(rounds):
        d = {}
        for i in range(20000):
            k = "key-%d-%d" % (next(rng) % 30000, r)
            d[k] = (i, str(i), [i] * (i % 5))
        for k in list(d)[::3]:
            del d[k]
        crc = zlib.crc32(repr(sorted(d.items())[:2000]).encode(), crc)
        crc = zlib.crc32(str(len(d)).encode(), crc)
    return crc


def medium_objects(rounds):
    rng = lcg(12)
    h = hashlib.sha256()
    for _ in range(rounds):
        lists = [[next(rng) % 100000 for _ in range(next(rng) % 4000)] for _ in range(60)]
        strs = ["".join(chr(97 + (v % 26)) for v in lst[:2000]) for lst in lists]
        lists.sort(key=lambda l: (len(l), l[:3]))
        for s in sorted(strs):
            h.update(s.encode())
        h.update(repr([sum(l) for l in lists]).encode())
    return h.hexdigest()


def huge_buffers(rounds):
    rng = lcg(13)
    h = hashlib.sha256()
    for _ in range(rounds):
        kept = []
        for _ in range(3):
            n = (2 + next(rng) % 7) << 20  # 2..8 MiB
            b = bytearray(n)
            step = 4093
            for i in range(0, n, step):
                b[i] = (i // step) & 0xFF
            kept.append(b)
        joined = bytes(kept[0]) + bytes(kept[1][: 1 << 20])
        h.update(hashlib.sha256(joined).digest())
        for b in kept:
            h.update(hashlib.sha256(b).digest())
        del kept, joined
    return h.hexdigest()


def growth(rounds):
    crc = 0
    for r in range(rounds):
        acc = []
        s = ""
        for i in range(3000):
            acc.append(("x%d" % i) * (1 + i % 17))
            if i % 100 == 0:
                s += "".join(acc[-50:])
        crc = zlib.crc32(s.encode(), crc)
        crc = zlib.crc32(repr(acc[::97]).encode(), crc)
    return crc


def main():
    print("small", small_objects(6))
    print("medium", medium_objects(6))
    print("huge", huge_buffers(5))
    print("growth", growth(5))


if __name__ == "__main__":
    main()
