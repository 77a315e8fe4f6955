#!/usr/bin/env python3
"""Writes the hand-made seed inputs of tests/fuzz/corpus/ (committed; rerun
after changing the input encoding of fuzz_shadow.c or fuzz_misuse.c).

Each input is a sequence of operations: an opcode byte (taken modulo the
target's operation count) and the operation's argument bytes, read as the
target's rd_* functions read them (little-endian).  A size is a selector
byte (low 4 bits: 0-6 small, 7-10 medium, 11-12 large, 13 huge, 14 an edge
size, 15 odd or absurd) and a 32-bit value.
"""
import os
import struct
import sys

KiB, MiB = 1024, 1024 * 1024


def u8(v):
    return bytes([v & 0xff])


def u16(v):
    return struct.pack('<H', v & 0xffff)


def u32(v):
    return struct.pack('<I', v & 0xffffffff)


def small(n):
    return u8(0) + u32(n)


def medium(n):
    return u8(7) + u32(n - 1025)


def large(n):
    return u8(11) + u32(n - (256 * KiB + 1))


def huge(n):
    return u8(13) + u32(n - (2 * MiB + 1))


def edge(i):
    return u8(14) + u32(i)


def absurd():
    return u8(15) + u32(0)


# ---- fuzz_shadow (opcode % 40) ----------------------------------------------
def s_malloc(size):
    return u8(0) + size


def s_calloc(size, k=1):
    return u8(6) + size + u8(k)


def s_realloc(size, idx, via=8):
    return u8(via) + u8(200) + size + u16(idx)


def s_posix(size, align_shift):
    return u8(12) + size + u8(align_shift)


def s_aligned(size, align_shift, op=13):  # 13 aligned_alloc, 14 memalign, 15 valloc, 95 pvalloc
    return u8(op) + size + u8(align_shift)


def s_free(idx, op=16, v=1):  # op 20: free_sized, 180: free_aligned_sized, 27: heap_free
    return u8(op) + u16(idx) + u8(v)


def s_usable(idx):
    return u8(21) + u16(idx)


def s_heap_new(limit_kind, limit):
    return u8(22) + u8(limit_kind) + u32(limit)


def s_heap_alloc(size, calloc=0, heap=0):
    return u8(23) + u8(64 + heap) + size + u8(calloc)


def s_heap_memalign(size, align_shift, heap=0):
    return u8(25) + size + u8(align_shift) + u8(64 + heap)


def s_heap_destroy(heap=0):
    return u8(28) + u8(heap)


def s_reserve(npages, a=0):
    return u8(29) + u8(npages - 1) + u8(a)


def s_commit(pi, k0, cnt):
    return u8(30) + u8(pi) + u8(k0) + u8(cnt - 1)


def s_decommit(pi, k0, cnt, flags=0):
    return u8(32) + u8(pi) + u8(k0) + u8(cnt - 1) + u8(flags)


def s_release(pi, k0, cnt):
    return u8(33) + u8(pi) + u8(k0) + u8(cnt - 1)


def s_bad(v):
    return u8(34) + u8(v)


def s_collect(force):
    return u8(195 if force else 35)  # 195 % 40 == 35, bit 7 set: force


def s_faults(kind, count, after=0):
    return u8(36) + u8(kind) + u8((count - 1) | (after << 3))


def s_faults_off():
    return u8(37)


SHADOW = {
    'sizes': b''.join(s_malloc(z) for z in (small(0), small(24), small(1024), medium(20000), large(300000),
                                             huge(3 * MiB), edge(5), edge(13), absurd()))
             + s_free(0) + s_free(0) + s_usable(0) + s_free(2, op=20) + s_free(1, op=180),
    'realloc': s_malloc(small(100)) + s_realloc(small(50), 0) + s_realloc(medium(9000), 0)
               + s_realloc(large(600000), 0) + s_realloc(huge(5 * MiB), 0) + s_realloc(small(10), 0)
               + s_realloc(small(0), 0, via=11)[:1] + u16(0) + s_realloc(large(400000), 0, via=10),
    'calloc-aligned': s_calloc(medium(5000), 3) + s_calloc(small(8), 220) + s_posix(small(100), 6)
                      + s_posix(large(300000), 16) + s_aligned(small(7), 12) + s_aligned(medium(3000), 0x1f, op=14)
                      + s_aligned(small(1), 3, op=15) + s_aligned(small(5000), 3, op=95),
    'heaps': s_heap_new(1, 100000) + s_heap_alloc(medium(30000)) + s_heap_alloc(medium(30000), calloc=1)
             + s_heap_alloc(medium(30000)) + s_heap_alloc(large(300000)) + s_heap_memalign(small(64), 9)
             + s_heap_memalign(small(64), 0x1f) + s_free(0, op=27) + s_heap_new(0, 0)
             + s_heap_alloc(huge(3 * MiB), heap=1) + s_heap_destroy(0),
    'pages': s_reserve(16) + s_commit(0, 0, 8) + s_commit(0, 4, 8) + s_decommit(0, 2, 4, 1)
             + s_commit(0, 0, 16) + s_release(0, 5, 3) + s_commit(0, 0, 5) + s_release(0, 0, 5)
             + s_reserve(4, 0x80 | 0x20 | 9) + s_bad(4) + s_bad(4 | 8) + s_bad(5 | 16) + s_bad(2) + s_bad(0x1f),
    'faults': s_faults(0, 3) + s_malloc(huge(3 * MiB)) + s_malloc(large(500000)) + s_reserve(8)
              + s_faults(4, 2) + s_reserve(8) + s_commit(0, 0, 8) + s_faults(2, 4) + s_decommit(0, 0, 8)
              + s_faults(1, 2) + s_free(0) + s_release(0, 0, 8) + s_faults_off() + s_collect(True)
              + s_malloc(huge(4 * MiB)),
}


# ---- fuzz_misuse (opcode % 20) ----------------------------------------------
def m_malloc(size, heap=0):
    return u8(0) + size + u8(160 + heap if heap else 0)


def m_free(idx):
    return u8(4) + u16(idx)


def m_double(size, via=0, heap=0):
    return u8(9) + size + u8(via) + u8(160 + heap if heap else 0)


def m_stale(i, via=0):
    return u8(11) + u8(i) + u8(via)


def m_interior(idx, off, via=0):
    return u8(13) + u16(idx) + u32(off) + u8(via)


def m_foreign(kind, via=0):
    return u8(15) + u8(kind) + u8(via)


def m_freed_use(size, realloc):
    return u8(16) + size + u8(1 if realloc else 0)


def m_waf(cls, garbage, p_first=False, heap=None):
    v = cls | (0x80 if p_first else 0) | (0x40 if heap is not None else 0)
    out = u8(17) + u8(v) + u32(garbage & 0xffffffff) + u32(garbage >> 32)
    if heap is not None:
        out += u8(160 + heap if heap else 0)
    return out


MISUSE = {
    'double-free': m_double(small(48)) + m_double(medium(20000), 1) + m_double(large(300000), 0)
                   + m_double(huge(3 * MiB), 0) + m_double(small(100), 2, heap=1),
    'interior': m_malloc(small(48)) + m_malloc(large(600000)) + m_malloc(huge(5 * MiB))
                + m_interior(0, 0) + m_interior(1, 32767, 3) + m_interior(2, 0x80000000 | 4 * MiB, 4)
                + m_interior(0, 15, 1),
    'foreign': b''.join(m_foreign(k, v) for k, v in ((0, 0), (1, 3), (2, 4), (3, 0), (4, 1), (5, 3))),
    'freed-use': m_freed_use(small(64), True) + m_freed_use(large(400000), False)
                 + m_freed_use(huge(3 * MiB), True) + m_stale(0) + m_stale(1, 3) + m_stale(2, 4),
    'write-after-free': m_waf(2, 0x9c3e5a17d2b4f681) + m_waf(5, 0x00007fffdeadbeef, True)
                        + m_waf(1, 0x4141414141414141, heap=1) + m_malloc(small(40)) + m_free(0),
}


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'corpus')
    for target, seeds in (('shadow', SHADOW), ('misuse', MISUSE)):
        d = os.path.join(root, target)
        os.makedirs(d, exist_ok=True)
        for name, data in seeds.items():
            with open(os.path.join(d, name), 'wb') as f:
                f.write(data)
    print('wrote', sum(len(s) for s in (SHADOW, MISUSE)), 'seeds under', root, file=sys.stderr)


if __name__ == '__main__':
    main()
