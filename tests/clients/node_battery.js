// Node client workload: a worker_threads pool plus the four-worker battery
// (why.md item 4), crypto, zlib and stream work, and an HTTP server serving
// requests to a keep-alive client in the same process.  Every result is
// checked here, and the output is deterministic (checksums only), so the
// driver can also compare it with a run without the preload.
//
//   node node_battery.js [--pool N] [--tasks N] [--requests N]
//
// Workers: a pool of --pool workers (default os.cpus().length) takes
// --tasks tasks from a queue; at the same time four more workers (the
// battery) each run every fourth task on their own and exit.  Every task is
// thus computed twice, by two different isolates, and the two digests must
// agree.  A task is crypto (SHA-256/512, SHA-1, HMAC, PBKDF2 with few
// iterations, randomBytes checked for length and non-zero content), zlib
// (gzip/gunzip, deflateRaw/inflateRaw and brotli round trips, compared byte
// for byte) or stream (Readable -> gzip -> gunzip -> hashing Writable
// through stream.pipeline, hash compared with the input's).
//
// HTTP: a server on 127.0.0.1 (ephemeral port); a client with a keep-alive
// agent (8 sockets) makes --requests requests (default 1000), 8 at a time;
// each body (1 B to 16 KiB, derived from the request number) is checked
// against its x-sha256 header and against a local recomputation.
//
// Exit status 0 when everything checked; 1 with "FAIL: ..." on stderr.
'use strict';

const wt = require('worker_threads');
const crypto = require('crypto');
const zlib = require('zlib');
const os = require('os');
const http = require('http');
const { pipeline, Readable, Writable } = require('stream');

function fail(msg) {
  process.stderr.write('FAIL: ' + msg + '\n');
  process.exit(1);
}

// Deterministic bytes: xorshift32 words, with runs of text so zlib has work.
function data(seed, n) {
  const buf = Buffer.alloc(n);
  let x = (seed * 2654435761 + 1) >>> 0 || 1;
  let i = 0;
  while (i < n) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    if ((x & 3) === 0) {
      const s = 'gc-sweep-' + (x % 97) + ' ';
      i += buf.write(s, i, 'latin1');
    } else {
      buf[i++] = x & 0xff;
    }
  }
  return buf;
}

const sha = (alg, b) => crypto.createHash(alg).update(b).digest('hex');

function taskCrypto(seed) {
  const b = data(seed, 64 * 1024 + seed * 131);
  const parts = [sha('sha256', b), sha('sha512', b), sha('sha1', b),
    crypto.createHmac('sha256', 'key' + seed).update(b).digest('hex'),
    crypto.pbkdf2Sync('password' + seed, 'salt' + seed, 1000, 32, 'sha256').toString('hex')];
  for (const n of [16, 64, 4096, 1 << 20]) {
    const r = crypto.randomBytes(n);
    if (r.length !== n) fail('randomBytes(' + n + ') gave ' + r.length + ' bytes');
    if (n >= 64 && r.every((v) => v === 0)) fail('randomBytes(' + n + ') gave only zeroes');
  }
  return sha('sha256', parts.join(':'));
}

function taskZlib(seed) {
  const b = data(seed, 256 * 1024 + seed * 977);
  const gz = zlib.gzipSync(b, { level: 6 });
  if (!zlib.gunzipSync(gz).equals(b)) fail('gzip round trip of task ' + seed);
  const raw = zlib.deflateRawSync(b);
  if (!zlib.inflateRawSync(raw).equals(b)) fail('deflateRaw round trip of task ' + seed);
  const br = zlib.brotliCompressSync(b.subarray(0, 64 * 1024),
    { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 4 } });
  if (!zlib.brotliDecompressSync(br).equals(b.subarray(0, 64 * 1024))) {
    fail('brotli round trip of task ' + seed);
  }
  return sha('sha256', Buffer.concat([gz, raw, br]));
}

function taskStream(seed) {
  return new Promise((resolve) => {
    const chunks = [];
    for (let i = 0; i < 64; i++) chunks.push(data(seed * 64 + i, 4096 + ((seed + i) % 7) * 1000));
    const want = sha('sha256', Buffer.concat(chunks));
    const h = crypto.createHash('sha256');
    let bytes = 0;
    const sink = new Writable({
      write(chunk, enc, cb) { h.update(chunk); bytes += chunk.length; cb(); },
    });
    pipeline(Readable.from(chunks), zlib.createGzip(), zlib.createGunzip(), sink, (err) => {
      if (err) fail('stream pipeline of task ' + seed + ': ' + err.message);
      const got = h.digest('hex');
      if (got !== want) fail('stream pipeline of task ' + seed + ': hash differs');
      resolve(sha('sha256', got + ':' + bytes));
    });
  });
}

async function runTask(seed) {
  const kind = ['crypto', 'zlib', 'stream'][seed % 3];
  const digest = kind === 'crypto' ? taskCrypto(seed)
    : kind === 'zlib' ? taskZlib(seed) : await taskStream(seed);
  return { seed, kind, digest };
}

// ---- worker side --------------------------------------------------------
if (!wt.isMainThread) {
  const { role, seeds } = wt.workerData;
  if (role === 'pool') {
    wt.parentPort.on('message', async (seed) => {
      if (seed < 0) { wt.parentPort.close(); return; }
      wt.parentPort.postMessage(await runTask(seed));
    });
  } else {
    (async () => {
      // The battery: each worker adds its own large mappings (a big
      // ArrayBuffer and many objects) while it works, then exits.
      const big = new Float64Array(4 << 20);
      for (let i = 0; i < big.length; i += 512) big[i] = i;
      const out = [];
      for (const seed of seeds) out.push(await runTask(seed));
      let sum = 0;
      for (let i = 0; i < big.length; i += 512) sum += big[i];
      if (sum !== (big.length / 512) * (big.length - 512) / 2) fail('battery buffer corrupted');
      wt.parentPort.postMessage(out);
    })();
  }
  return;
}

// ---- main side ------------------------------------------------------------
function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i > 0 ? parseInt(process.argv[i + 1], 10) : dflt;
}
const POOL = arg('--pool', os.cpus().length);
const TASKS = arg('--tasks', 24);
const REQUESTS = arg('--requests', 1000);

function runPool() {
  return new Promise((resolve) => {
    const results = new Map();
    let next = 0;
    let live = POOL;
    for (let w = 0; w < POOL; w++) {
      const worker = new wt.Worker(__filename, { workerData: { role: 'pool' } });
      const feed = () => worker.postMessage(next < TASKS ? next++ : -1);
      worker.on('message', (r) => { results.set(r.seed, r); feed(); });
      worker.on('error', (e) => fail('pool worker: ' + (e && e.stack || e)));
      worker.on('exit', (code) => {
        if (code !== 0) fail('pool worker exited with ' + code);
        if (--live === 0) resolve(results);
      });
      feed();
    }
  });
}

function runBattery() {
  const ws = [];
  for (let k = 0; k < 4; k++) {
    const seeds = [];
    for (let s = k; s < TASKS; s += 4) seeds.push(s);
    ws.push(new Promise((resolve) => {
      let got = null;
      const worker = new wt.Worker(__filename, { workerData: { role: 'battery', seeds } });
      worker.on('message', (m) => { got = m; });
      worker.on('error', (e) => fail('battery worker ' + k + ': ' + (e && e.stack || e)));
      worker.on('exit', (code) => {
        if (code !== 0 || !got) fail('battery worker ' + k + ' exited with ' + code);
        resolve(got);
      });
    }));
  }
  return Promise.all(ws).then((lists) => [].concat(...lists));
}

function body(n) {
  return data(n + 100000, 1 + ((n * 7919) % 16384));
}

function runHttp() {
  return new Promise((resolve) => {
    let connections = 0;
    const server = http.createServer((req, res) => {
      const n = parseInt(req.url.slice(1), 10);
      const b = body(n);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'x-sha256': sha('sha256', b) });
      res.end(b);
    });
    server.on('connection', () => { connections++; });
    server.listen(0, '127.0.0.1', () => {
      const port = server.address().port;
      const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
      let next = 0;
      let done = 0;
      let total = 0;
      const all = crypto.createHash('sha256');
      const digests = new Array(REQUESTS);
      const one = () => {
        if (next >= REQUESTS) return;
        const n = next++;
        http.get({ host: '127.0.0.1', port, path: '/' + n, agent }, (res) => {
          const parts = [];
          res.on('data', (c) => parts.push(c));
          res.on('end', () => {
            const b = Buffer.concat(parts);
            const h = sha('sha256', b);
            if (res.statusCode !== 200) fail('request ' + n + ': status ' + res.statusCode);
            if (h !== res.headers['x-sha256']) fail('request ' + n + ': body does not match its hash');
            if (!b.equals(body(n))) fail('request ' + n + ': body differs from the expected one');
            digests[n] = h;
            total += b.length;
            if (++done === REQUESTS) {
              for (const d of digests) all.update(d);
              agent.destroy();
              server.close(() => resolve({ connections, total, digest: all.digest('hex') }));
            } else {
              one();
            }
          });
        }).on('error', (e) => fail('request ' + n + ': ' + e.message));
      };
      for (let i = 0; i < 8; i++) one();
    });
  });
}

(async () => {
  const [pool, battery] = await Promise.all([runPool(), runBattery()]);
  if (pool.size !== TASKS) fail('pool returned ' + pool.size + ' of ' + TASKS + ' tasks');
  if (battery.length !== TASKS) fail('battery returned ' + battery.length + ' of ' + TASKS);
  const all = crypto.createHash('sha256');
  const kinds = {};
  for (const r of battery) {
    const p = pool.get(r.seed);
    if (!p || p.digest !== r.digest) {
      fail('task ' + r.seed + ' (' + r.kind + '): pool and battery disagree: ' +
        (p && p.digest) + ' vs ' + r.digest);
    }
  }
  for (let s = 0; s < TASKS; s++) {
    const r = pool.get(s);
    all.update(r.kind + r.digest);
    kinds[r.kind] = (kinds[r.kind] || 0) + 1;
  }
  console.log('workers: %d tasks (crypto %d, zlib %d, stream %d), pool and battery agree, digest %s',
    TASKS, kinds.crypto, kinds.zlib, kinds.stream, all.digest('hex').slice(0, 16));
  const h = await runHttp();
  if (h.connections > 16) fail('keep-alive: ' + h.connections + ' connections for 8 sockets');
  console.log('http: %d requests ok, %d bytes, digest %s', REQUESTS, h.total, h.digest.slice(0, 16));
  process.stderr.write('pool of ' + POOL + ' workers plus 4 battery workers; ' + h.connections +
    ' HTTP connections\n');
})().catch((e) => fail(e && e.stack || String(e)));
