// Shim workload: GC churn that makes the engine give memory back with madvise.
//
// Runs under node (with --expose-gc) and under bun.  Each round builds many
// short-lived objects and a few large ArrayBuffers, keeps a small verified
// survivor set, drops the rest and forces a full GC, so the engine's heap
// shrinks and returns pages (V8: madvise(MADV_DONTNEED) when it frees or
// discards pages; Bun/JSC: libpas/bmalloc decommit with MADV_DONTNEED).
// Every survivor is checked against a recomputation, and the output is
// checksums only, so "completed" means "completed correctly": the driver
// compares stdout with an uninjected reference run.
//
// Then a few worker threads each run a smaller churn and exit.  A worker's
// exit tears its isolate's heap down, and V8 decommits those pages with
// madvise(MADV_DONTNEED) and CHECKs the result, so an injected EAGAIN there
// kills plain node in the middle of the run (a main-thread-only script would
// reach that CHECK only at process teardown, after its output).
//
// Usage: gc_churn.js [ROUNDS [WORKERS]]   (defaults 24, 3)
'use strict';

const wt = (() => {
  try { return require('worker_threads'); } catch (e) { return null; }
})();

const gc = typeof globalThis.gc === 'function' ? () => globalThis.gc()
  : (typeof Bun !== 'undefined' ? () => Bun.gc(true) : null);
if (!gc) {
  console.error('gc_churn.js: no gc(): run node with --expose-gc');
  process.exit(2);
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

function fnv(h, s) {
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 16777619) >>> 0;
  }
  return h;
}

function fail(msg) {
  console.error('gc_churn.js: data check failed: ' + msg);
  process.exit(3);
}

function churn(rounds, seedBase) {
  const survivors = [];
  let h = 2166136261;
  for (let round = 0; round < rounds; round++) {
    const r = rng(seedBase + round + 1);
    // Short-lived small objects: young-generation churn.
    let objs = [];
    for (let i = 0; i < 60000; i++) objs.push({ id: i, round, v: r() % 1000, s: 'o' + (i % 977) });
    let sum = 0;
    for (const o of objs) sum = (sum + o.v + o.s.length) % 1000000007;
    h = fnv(h, 'r' + round + ':' + sum);
    // Large buffers (outside the JS heap in both engines) filled with a pattern.
    let bufs = [];
    for (let i = 0; i < 6; i++) {
      const a = new Uint32Array((1 << 20) + i * 4096);   // ~4 MiB each
      for (let j = 0; j < a.length; j += 257) a[j] = (j ^ round ^ i) >>> 0;
      bufs.push(a);
    }
    let bsum = 0;
    for (let i = 0; i < bufs.length; i++) {
      const a = bufs[i];
      for (let j = 0; j < a.length; j += 257) {
        if (a[j] !== ((j ^ round ^ i) >>> 0)) fail('buffer ' + i + ' of round ' + round);
        bsum = (bsum + a[j]) % 1000000007;
      }
    }
    h = fnv(h, 'b' + bsum);
    // Keep a few survivors (old generation), drop the rest, force a full GC.
    survivors.push({ round, first: objs[round], tail: bufs[5].slice(0, 1024) });
    if (survivors.length > 8) survivors.shift();
    objs = null;
    bufs = null;
    gc();
    // Survivors must be intact after the GC (and the madvise calls it made).
    for (const s of survivors) {
      if (s.first.id !== s.round || s.first.round !== s.round) fail('survivor object of round ' + s.round);
      for (let j = 0; j < s.tail.length; j += 257) {
        if (s.tail[j] !== ((j ^ s.round ^ 5) >>> 0)) fail('survivor buffer of round ' + s.round);
      }
    }
  }
  return { h: h >>> 0, survivors: survivors.map((s) => s.round).join(',') };
}

function runWorker(i) {
  return new Promise((resolve, reject) => {
    const w = new wt.Worker(__filename, { workerData: { index: i } });
    let result = null;
    w.on('message', (m) => { result = m; });
    w.on('error', reject);
    w.on('exit', (code) => {
      if (code !== 0 || !result) reject(new Error('worker ' + i + ' exited with ' + code));
      else resolve(result);
    });
  });
}

if (wt && !wt.isMainThread) {
  const i = wt.workerData.index;
  const res = churn(6, 1000 * (i + 1));
  wt.parentPort.postMessage('worker ' + i + ' checksum ' + res.h + ' survivors ' + res.survivors);
} else {
  const ROUNDS = Number(process.argv[2] || 24);
  const WORKERS = wt ? Number(process.argv[3] || 3) : 0;
  const res = churn(ROUNDS, 0);
  console.log('rounds', ROUNDS);
  console.log('checksum', res.h);
  console.log('survivors', res.survivors);
  (async () => {
    // One at a time, so each exit (and its decommits) happens mid-run.
    for (let i = 0; i < WORKERS; i++) console.log(await runWorker(i));
    console.log('done');
    // Bun skips exit-time destructors, so vamalloc's stats line is asked for
    // here (run_shim.py bun-transient sets SHIM_VAMALLOC_SO).
    if (typeof Bun !== 'undefined' && process.env.SHIM_VAMALLOC_SO) {
      const { dlopen, FFIType } = require('bun:ffi');
      const lib = dlopen(process.env.SHIM_VAMALLOC_SO,
        { vam_stats_print: { args: [FFIType.i32, FFIType.i32], returns: FFIType.void } });
      lib.symbols.vam_stats_print(2, 1);
    }
  })().catch((e) => {
    console.error('gc_churn.js: ' + e.message);
    process.exit(4);
  });
}
