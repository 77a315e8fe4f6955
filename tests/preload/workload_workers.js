// Preload workload: a node worker_threads pool of 8 workers.
//
// Each worker is a thread with its own V8 isolate, so isolate set-up and
// tear-down and every task's buffers are malloc'd on several threads at once.
// Results travel back as transferred ArrayBuffers that the main thread frees,
// which exercises cross-thread free.  The main thread recomputes every task
// and exits non-zero on any mismatch; stdout is the checked results only.
'use strict';
const { Worker, isMainThread, parentPort, workerData } = require('worker_threads');

const POOL = 8;
const WAVES = 2;          // the pool is torn down and rebuilt: thread exit paths
const TASKS_PER_WAVE = 24;

// Allocation-heavy, deterministic work for one seed.
function work(seed) {
  let x = seed >>> 0 || 1;
  const next = () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x; };
  let h = 2166136261;
  const keep = [];
  for (let round = 0; round < 8; round++) {
    const m = new Map();
    for (let i = 0; i < 1500; i++) m.set('k' + (next() % 700), [i, String(i)]);
    const arrs = [];
    for (let i = 0; i < 40; i++) arrs.push(new Uint32Array(1 + (next() % 2048)).fill(round + i));
    let s = m.size;
    for (const a of arrs) s = (s + a.length + a[a.length - 1]) >>> 0;
    const str = Array.from(m.keys()).sort().join(',');
    for (let i = 0; i < str.length; i += 3) h = Math.imul(h ^ str.charCodeAt(i), 16777619) >>> 0;
    h = Math.imul(h ^ s, 16777619) >>> 0;
    if (round % 3 === 0) keep.push(arrs[0]);   // some survive the round
  }
  return (h ^ keep.length) >>> 0;
}

if (!isMainThread) {
  const shared = new Int32Array(workerData.shared);
  parentPort.on('message', (task) => {
    if (task === null) { parentPort.close(); return; }
    const result = work(task.seed);
    Atomics.store(shared, task.slot, result | 0);
    // A malloc'd backing store created here, freed on the main thread.
    const payload = new ArrayBuffer(64 * 1024 + task.seed % 4096);
    new Uint8Array(payload).fill(task.seed & 0xff);
    parentPort.postMessage({ slot: task.slot, seed: task.seed, result, payload }, [payload]);
  });
} else {
  runAll().catch((e) => { console.error(e); process.exit(1); });
}

function runWave(wave, shared) {
  return new Promise((resolve, reject) => {
    const results = new Map();
    const queue = [];
    for (let i = 0; i < TASKS_PER_WAVE; i++) {
      queue.push({ slot: i, seed: 1000 * (wave + 1) + 7 * i + 1 });
    }
    let done = 0;
    let exited = 0;
    const workers = [];
    for (let w = 0; w < POOL; w++) {
      const worker = new Worker(__filename, { workerData: { shared: shared.buffer } });
      workers.push(worker);
      worker.on('error', reject);
      worker.on('exit', (code) => {
        if (code !== 0) reject(new Error('worker exited with ' + code));
        if (++exited === POOL) resolve(results);
      });
      worker.on('message', (msg) => {
        const bytes = new Uint8Array(msg.payload);
        if (bytes.length !== 64 * 1024 + msg.seed % 4096 || bytes[bytes.length - 1] !== (msg.seed & 0xff)) {
          reject(new Error('bad payload for seed ' + msg.seed));
        }
        if (Atomics.load(shared, msg.slot) !== (msg.result | 0)) {
          reject(new Error('shared slot mismatch for seed ' + msg.seed));
        }
        results.set(msg.seed, msg.result);
        if (++done === TASKS_PER_WAVE) {
          for (const w2 of workers) w2.postMessage(null);
        } else if (queue.length) {
          worker.postMessage(queue.shift());
        }
      });
      worker.postMessage(queue.shift());
    }
  });
}

async function runAll() {
  let bad = 0;
  for (let wave = 0; wave < WAVES; wave++) {
    const shared = new Int32Array(new SharedArrayBuffer(4 * TASKS_PER_WAVE));
    const results = await runWave(wave, shared);
    const seeds = Array.from(results.keys()).sort((a, b) => a - b);
    if (seeds.length !== TASKS_PER_WAVE) throw new Error('missing results in wave ' + wave);
    for (const seed of seeds) {
      const want = work(seed);
      const got = results.get(seed);
      if (got !== want) {
        console.error(`seed ${seed}: worker got ${got}, main thread got ${want}`);
        bad++;
      }
      console.log(`wave ${wave} seed ${seed} ${got}`);
    }
  }
  if (bad) process.exit(1);
  console.log('workers ok');
}
