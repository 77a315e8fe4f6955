// Bun client workload: GC-heavy work with checked results, so JSC's heap and
// libpas/bmalloc grow, shrink and give pages back with madvise (through
// vamalloc's host shim when libvamalloc.so is preloaded).
//
//   bun bun_gc.js [ROUNDS]          (default 16)
//
// Each round builds objects, strings, closures, arrays, Maps and typed
// arrays, keeps a small survivor set, drops the rest and forces a full GC
// (Bun.gc(true)), at least 5 times in all.  Survivors are checked against a
// recomputation after every GC, and the output is checksums only.
//
// Bun skips exit-time destructors, so vamalloc's VAMALLOC_STATS line would
// never be printed; when CLIENT_VAMALLOC_SO names the preloaded library, the script
// calls vam_stats_print(2, JSON) itself through bun:ffi at the end (a note
// goes to stderr when FFI is unavailable).
'use strict';

function fail(msg) {
  process.stderr.write('FAIL: ' + msg + '\n');
  process.exit(1);
}

function rng(seed) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
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

function makeItem(seed, i) {
  const tag = 'item-' + seed + '-' + i;
  const inner = { n: i, sq: i * i, tag };
  const f = (k) => inner.sq + k + tag.length; // a closure over inner
  return { tag, inner, f, list: [i, i + 1, i + 2, tag], bytes: new Uint8Array(16 + (i % 48)).fill(i & 0xff) };
}

function checkItem(it, seed, i) {
  const tag = 'item-' + seed + '-' + i;
  if (it.tag !== tag || it.inner.tag !== tag || it.inner.n !== i || it.inner.sq !== i * i) {
    fail('survivor ' + tag + ' changed');
  }
  if (it.f(1) !== i * i + 1 + tag.length) fail('closure of ' + tag + ' changed');
  if (it.list[3] !== tag || it.list[2] !== i + 2) fail('array of ' + tag + ' changed');
  if (it.bytes.length !== 16 + (i % 48) || it.bytes.some((v) => v !== (i & 0xff))) {
    fail('bytes of ' + tag + ' changed');
  }
}

const ROUNDS = parseInt(process.argv[2] || '16', 10);
const survivors = [];
let h = 2166136261;
let gcs = 0;
for (let r = 0; r < ROUNDS; r++) {
  const next = rng(r + 1);
  const garbage = [];
  const map = new Map();
  for (let i = 0; i < 60000; i++) {
    const it = makeItem(r, i);
    garbage.push(it);
    if ((next() & 7) === 0) map.set(it.tag, it.list.join(','));
  }
  // Large buffers: libpas's large heap, returned on GC.
  const big = [];
  for (let k = 0; k < 6; k++) big.push(new ArrayBuffer((1 << 20) * (1 + (k % 3))));
  let s = '';
  for (let i = 0; i < 2000; i++) s += String.fromCharCode(97 + (next() % 26));
  h = fnv(h, s);
  for (const [k, v] of map) {
    if (!v.startsWith(k.slice(5 + String(r).length + 1))) fail('map entry ' + k + ' changed');
  }
  h = fnv(h, String(map.size) + ':' + big.length);
  for (let i = 0; i < garbage.length; i += 997) survivors.push([r, i, garbage[i]]);
  garbage.length = 0;
  map.clear();
  big.length = 0;
  Bun.gc(true);
  gcs++;
  for (const [sr, si, it] of survivors) checkItem(it, sr, si);
}
if (gcs < 5) fail('only ' + gcs + ' full GCs');
for (const [sr, si, it] of survivors) h = fnv(h, it.tag + it.f(sr));
console.log('rounds %d, full GCs %d, survivors %d, checksum %s', ROUNDS, gcs, survivors.length,
  h.toString(16));

if (process.env.CLIENT_VAMALLOC_SO) {
  // Is the preload really in this process?  (Before the bun:ffi dlopen
  // below, which would map the library itself.)  Under a low RLIMIT_AS Bun
  // turns its JIT off and bun:ffi cannot run, so this line is what
  // run_clients.py checks there.
  const fs = require('fs');
  let so = process.env.CLIENT_VAMALLOC_SO;
  try { so = fs.realpathSync(so); } catch (e) { /* keep the name */ }
  const mapped = fs.readFileSync('/proc/self/maps', 'utf8').split('\n').some((l) => l.endsWith(' ' + so));
  process.stderr.write('note: vamalloc preload ' + (mapped ? 'mapped' : 'NOT mapped') + ': ' + so + '\n');
  try {
    const { dlopen, FFIType } = require('bun:ffi');
    const lib = dlopen(process.env.CLIENT_VAMALLOC_SO,
      { vam_stats_print: { args: [FFIType.i32, FFIType.i32], returns: FFIType.void } });
    lib.symbols.vam_stats_print(2, 1);
  } catch (e) {
    process.stderr.write('note: no vamalloc stats (bun:ffi: ' + e.message + ')\n');
  }
}
