"""Fault-test workload: deterministic dict/list/str churn for python3.

Run with PYTHONMALLOC=malloc so every object goes through the (preloaded)
malloc, and PYTHONHASHSEED=0.  Each round builds a few MiB of dicts, lists
and strings (plus some lists and bytes big enough to be "huge" allocations
in most allocators) and then drops all of it, so a returning allocator
gives memory back (madvise, munmap) between rounds.  Output: checksums only,
identical under every correct allocator.  An allocation failure surfaces as
Python's own MemoryError (a clean out-of-memory failure).
"""
import sys
import zlib


def lcg(seed):
    x = seed
    while True:
        x = (x * 6364136223846793005 + 1442695040888963407) & (2**64 - 1)
        yield x >> 33


def one_round(r, rng):
    crc = r
    # Dicts of strings: many small blocks, table resizes (medium blocks).
    d = {}
    for i in range(12000):
        k = "k%d_%d" % (next(rng) % 16000, r)
        d[k] = d.get(k, "") + chr(97 + i % 26)
    for k in list(d)[::3]:
        del d[k]
    crc = zlib.crc32(repr(sorted(d.items())[:1000]).encode(), crc)
    # Lists: a big list (a 2.5 MiB array: a huge allocation) and many small ones.
    big = [next(rng) % 100000 for _ in range(320000)]
    big.sort()
    crc = zlib.crc32(repr(big[::1024]).encode(), crc)
    small = [[x, str(x), (x, x + 1)] for x in big[::32]]
    crc = zlib.crc32(repr(small[::250]).encode(), crc)
    # Strings and bytes: large joins and a multi-MiB bytes object.
    text = " ".join("w%d" % (x % 977) for x in big[::8])
    blob = text.encode() * 3
    crc = zlib.crc32(blob[::256], crc)
    crc = zlib.crc32(text.upper()[::128].encode(), crc)
    # Drop everything before the next round.
    del d, big, small, text, blob
    return crc


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 4
    rng = lcg(12345)
    total = 0
    for r in range(rounds):
        c = one_round(r, rng)
        total = zlib.crc32(str(c).encode(), total)
        print("round %d crc %08x" % (r, c))
    print("python workload OK rounds=%d total=%08x" % (rounds, total))


if __name__ == "__main__":
    main()
