// Fault-test workload: deterministic, GC-heavy JavaScript for node.
//
// JS objects live in V8's own heap (which V8 maps itself), but the backing
// stores of typed arrays, and V8's and node's internal tables, come from
// malloc/calloc, so the typed arrays below (64 KiB .. 6 MiB: large and huge
// allocations in most allocators) reach the preloaded allocator, and
// dropping them lets it give memory back.  Run with --expose-gc so each
// round ends with a full collection (the script also works without it).
// Output: checksums only, identical under every correct allocator.
'use strict';

function fnv(h, s) {
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 16777619) >>> 0;
  }
  return h;
}

function rng(seed) {
  let x = seed >>> 0;
  return () => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x;
  };
}

function oneRound(round, r) {
  let h = 2166136261 ^ round;
  // Objects and strings (V8 heap; exercises the GC).
  const arr = [];
  for (let i = 0; i < 15000; i++) arr.push({ id: i, tag: 't' + (r() % 97), v: [r() % 100, r() % 100] });
  arr.sort((a, b) => a.v[0] - b.v[0] || a.id - b.id);
  h = fnv(h, JSON.stringify(arr.slice(0, 100)));
  const m = new Map();
  for (let i = 0; i < 10000; i++) m.set('k' + (r() % 5000), i);
  h = fnv(h, String(m.size));
  // Typed arrays: malloc/calloc-backed stores of 64 KiB .. 6 MiB.
  const bufs = [];
  for (let i = 0; i < 24; i++) {
    const n = i % 6 === 5 ? (3 << 20) + (r() % (3 << 20)) : (64 << 10) + (r() % (2 << 20));
    const a = new Uint8Array(n);
    for (let j = 0; j < n; j += 4096) a[j] = (r() + j) & 255;
    a[n - 1] = i;
    bufs.push(a);
  }
  let s = 0;
  for (const a of bufs) {
    for (let j = 0; j < a.length; j += 4096) s = (s + a[j]) % 1000000007;
    s = (s + a[a.length - 1] + a.length) % 1000000007;
  }
  h = fnv(h, String(s));
  // Text through TextEncoder/Decoder (malloc'd buffers on the C++ side).
  const text = arr.slice(0, 3000).map((o) => o.tag + ':' + o.id).join(',');
  const enc = new TextEncoder().encode(text);
  h = fnv(h, new TextDecoder().decode(enc.subarray(0, 2000)));
  return h >>> 0;
}

const rounds = Number(process.argv[2] || 6);
const r = rng(12345);
let total = 0;
for (let round = 0; round < rounds; round++) {
  const h = oneRound(round, r);
  if (typeof global.gc === 'function') global.gc();
  total = fnv(total, h.toString(16));
  console.log('round ' + round + ' hash ' + h.toString(16));
}
console.log('node workload OK rounds=' + rounds + ' total=' + (total >>> 0).toString(16));
