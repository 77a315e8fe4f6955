// Budget workload for node: deterministic, modest memory, output checksums
// only (identical under every correct allocator; run_budget.py compares it
// with a plain, unlimited run).  Buffers and typed arrays go through node's
// ArrayBuffer allocator, i.e. through the preloaded malloc/calloc; objects,
// arrays and strings exercise V8's own heap and the GC.
'use strict';
const crypto = require('crypto');
const zlib = require('zlib');

function lcg(seed) {
  let x = BigInt(seed);
  const M = (1n << 64n) - 1n;
  return () => {
    x = (x * 6364136223846793005n + 1442695040888963407n) & M;
    return Number(x >> 40n);
  };
}

function objects(rounds) {
  const rng = lcg(21);
  const h = crypto.createHash('sha256');
  for (let r = 0; r < rounds; r++) {
    const m = new Map();
    for (let i = 0; i < 20000; i++) {
      const k = 'k' + (rng() % 30000) + '-' + r;
      m.set(k, { i, s: String(i), a: new Array(i % 5).fill(i) });
    }
    let n = 0;
    for (const k of m.keys()) if (n++ % 3 === 0) m.delete(k);
    const keys = [...m.keys()].sort();
    h.update(keys.slice(0, 2000).join(','));
    h.update(String(m.size));
  }
  return h.digest('hex');
}

function buffers(rounds) {
  const rng = lcg(22);
  const h = crypto.createHash('sha256');
  for (let r = 0; r < rounds; r++) {
    const kept = [];
    for (let j = 0; j < 40; j++) {
      const n = 1 + (rng() % (256 * 1024));
      const b = Buffer.alloc(n);
      for (let i = 0; i < n; i += 509) b[i] = (i / 509) & 0xff;
      kept.push(b);
    }
    for (let j = 0; j < 3; j++) {
      const n = (2 + (rng() % 7)) << 20; // 2..8 MiB
      const b = Buffer.allocUnsafe(n);
      b.fill(j + r);
      kept.push(b);
    }
    const all = Buffer.concat(kept.slice(0, 40));
    h.update(crypto.createHash('sha256').update(all).digest());
    h.update(zlib.deflateSync(all.subarray(0, 1 << 20)));
    for (const b of kept.slice(40)) h.update(crypto.createHash('sha256').update(b).digest());
  }
  return h.digest('hex');
}

function strings(rounds) {
  const h = crypto.createHash('sha256');
  for (let r = 0; r < rounds; r++) {
    const parts = [];
    for (let i = 0; i < 20000; i++) parts.push(('y' + i).repeat(1 + (i % 13)));
    const s = parts.join('|');
    h.update(s);
    h.update(JSON.stringify(parts.filter((_, i) => i % 101 === 0)));
  }
  return h.digest('hex');
}

console.log('objects', objects(4));
console.log('buffers', buffers(4));
console.log('strings', strings(4));
