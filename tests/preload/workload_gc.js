// Preload workload: GC-heavy JavaScript (node and bun).
//
// Many short-lived objects, arrays, strings, Maps and typed arrays.  JS objects
// live in the engine's own heap, but typed-array backing stores, large strings
// handed to TextEncoder and the engine's internal tables come from malloc, so
// the churn below reaches the preloaded allocator.  Plain ECMAScript only, so
// the same file runs under node and bun; output is checksums only.
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

function objects(rounds) {
  const r = rng(1);
  let h = 2166136261;
  for (let round = 0; round < rounds; round++) {
    const arr = [];
    for (let i = 0; i < 20000; i++) {
      arr.push({ id: i, tag: 't' + (r() % 97), vals: [r() % 100, r() % 100] });
    }
    // Keep a sorted slice alive across a round boundary, drop the rest.
    arr.sort((a, b) => a.vals[0] - b.vals[0] || a.id - b.id);
    const json = JSON.stringify(arr.slice(0, 200));
    h = fnv(h, json);
    h = fnv(h, String(JSON.parse(json).length));
  }
  return h;
}

function maps(rounds) {
  const r = rng(2);
  let h = 2166136261;
  for (let round = 0; round < rounds; round++) {
    const m = new Map();
    const s = new Set();
    for (let i = 0; i < 30000; i++) {
      const k = 'key' + (r() % 10000);
      m.set(k, (m.get(k) || 0) + i);
      if (i % 3 === 0) s.add(k + ':' + round);
    }
    for (const k of m.keys()) if (k.length % 2 === 0) m.delete(k);
    let sum = 0;
    for (const v of m.values()) sum = (sum + v) % 1000000007;
    h = fnv(h, sum + ':' + s.size + ':' + m.size);
  }
  return h;
}

function strings(rounds) {
  const r = rng(3);
  const enc = new TextEncoder();
  let h = 2166136261;
  for (let round = 0; round < rounds; round++) {
    let parts = [];
    for (let i = 0; i < 5000; i++) parts.push('w' + (r() % 1000).toString(36));
    let text = parts.join(' ');
    text = text.replace(/w([0-9a-z])/g, 'W$1$1').toUpperCase();
    const bytes = enc.encode(text.repeat(4));
    let b = 0;
    for (let i = 0; i < bytes.length; i += 7) b = (b + bytes[i]) >>> 0;
    h = fnv(h, text.slice(0, 100) + b + ':' + text.split(' ').length);
  }
  return h;
}

function typed(rounds) {
  const r = rng(4);
  let acc = 0;
  for (let round = 0; round < rounds; round++) {
    // Sizes spread from tiny to ~1 MiB so every allocator size range is hit.
    const bufs = [];
    for (let i = 0; i < 400; i++) {
      const n = 1 + (r() % (i % 50 === 0 ? 131072 : 512));
      const a = new Float64Array(n);
      for (let j = 0; j < n; j += 16) a[j] = j * 0.5 + round;
      bufs.push(a);
    }
    for (const a of bufs) acc = (acc + a.length + (a[0] | 0)) % 1000000007;
    // ArrayBuffer.prototype.slice copies into a new backing store.
    acc = (acc + bufs[0].buffer.slice(0, 8).byteLength) % 1000000007;
  }
  return acc;
}

console.log('objects', objects(12));
console.log('maps', maps(12));
console.log('strings', strings(20));
console.log('typed', typed(15));
