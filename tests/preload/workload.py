"""Preload workload: dict-, list- and str-heavy Python.

Run with PYTHONMALLOC=malloc by the driver so every object goes through the
preloaded malloc instead of pymalloc's private arenas.  Output is checksums
only, so it is identical under any correct allocator.
"""
import hashlib
import zlib


def lcg(seed):
    # Own PRNG: the random module's output is stable too, but this keeps the
    # workload independent of the Python version.
    x = seed
    while True:
        x = (x * 6364136223846793005 + 1442695040888963407) & (2**64 - 1)
        yield x >> 33


def dict_churn(rounds):
    rng = lcg(1)
    crc = 0
    for r in range(rounds):
        d = {}
        for i in range(4000):
            k = "k%d_%d" % (next(rng) % 5000, r)
            d[k] = d.get(k, 0) + i
        # Delete half so the table shrinks and rehashes on the next round.
        for k in list(d)[::2]:
            del d[k]
        nested = {k: [v, str(v), {"v": v}] for k, v in d.items()}
        crc = zlib.crc32(repr(sorted(nested.items())).encode(), crc)
    return crc


def list_churn(rounds):
    rng = lcg(2)
    h = hashlib.sha256()
    for _ in range(rounds):
        lists = [[next(rng) % 1000 for _ in range(next(rng) % 300)] for _ in range(200)]
        lists.sort(key=len)
        flat = [x for sub in lists for x in sub]
        flat.sort()
        tuples = list(zip(flat[::2], flat[1::2]))
        h.update(repr(tuples[:500]).encode())
        h.update(str(sum(map(sum, lists))).encode())
    return h.hexdigest()


def str_churn(rounds):
    rng = lcg(3)
    h = hashlib.sha256()
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
    for _ in range(rounds):
        parts = []
        for _ in range(3000):
            w = words[next(rng) % len(words)]
            parts.append(w.upper() if next(rng) & 1 else w * (1 + next(rng) % 4))
        text = " ".join(parts)
        text = text.replace("ALPHA", "omega-" * 3).swapcase()
        counts = {}
        for tok in text.split():
            counts[tok] = counts.get(tok, 0) + 1
        # Large strings exercise realloc; the bytes round trip exercises big frees.
        big = "".join(sorted(counts, key=lambda t: (-counts[t], t))) * 50
        h.update(big.encode("utf-8"))
        h.update(text.encode("utf-16"))
    return h.hexdigest()


def main():
    print("dict", dict_churn(12))
    print("list", list_churn(20))
    print("str", str_churn(20))
    # Many small live objects at once, then dropped together.
    objs = [{"i": i, "s": "x" * (i % 64), "l": [i] * (i % 8)} for i in range(200000)]
    print("objs", sum(len(o["s"]) + len(o["l"]) for o in objs))
    del objs


if __name__ == "__main__":
    main()
