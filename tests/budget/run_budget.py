#!/usr/bin/env python3
"""Address-space budget tests (suite 'budget'): real programs under RLIMIT_AS,
simulated VA bits and a simulated mapping cap, with vamalloc preloaded.

Usage: run_budget.py [--so PATH] [--live-heap EXE] [--stress EXE] CHECK [ARGS]

CHECKS
  as-limit --limit-mib L --program stress|python|node
      The program runs under RLIMIT_AS = L MiB with the allocator preloaded
      and must finish with correct output: stress (--short --strict-errno
      --allow-enomem 2) prints "stress: OK"; python3 (PYTHONMALLOC=malloc) and
      node run workload.py / workload.js and must print exactly what a plain,
      unlimited run prints.  Where plain node itself cannot start under L
      the check fails, naming the lowest limit at which plain node starts
      (meson.build runs node only at 1024 and 8192 MiB).
  live-heap --limit-mib L --slack-mib S
      With B = live_heap's own VmSize (a plain run, no allocator preloaded),
      `live_heap --mib N` must succeed under RLIMIT_AS = L for
      N = floor((L - B) / MiB) - S; `live_heap --mib L` (more than fits) must
      end in a clean NULL with errno ENOMEM (exit 3, no crash); and
      `live_heap --max` must exit 0 (NULL with ENOMEM at the top, everything
      verified, recovery after freeing).  Prints the largest N reached.
  va-bits --bits B --program live|stress
      With VAMALLOC_VA_BITS=B: `live_heap --check-below B` (no block and no
      mapping made after main() started may reach 2^B; mappings vamalloc made
      in its constructor are in the snapshot, so for those only the blocks
      handed out from them are checked), or the stress test.
  map-max --map-max M --program stress|churn
      With VAMALLOC_MAP_MAX=M: the stress test (--allow-enomem) passes,
      vamalloc's mappings (mappings_peak if reported, else mappings) stay
      below M and the process's map count, sampled every 10 ms, never
      exceeds M; or `live_heap --map-churn 1500` (1500 blocks of 5 MiB, each
      needing its own mapping): it must get a clean NULL+ENOMEM and recover after
      freeing, with vamalloc's mapping count below M; and the process's own
      map count at the peak must stay at or below M (what max_map_count
      limits).  Both run with VAMALLOC_LARGE_POOL_MAX=1 and
      VAMALLOC_RESERVE_MAX=4M (no pool packing huge blocks, no large
      reservations), so that they need many mappings.  With vamalloc the
      cap must bind (budget_refusals > 0; no VA budget is set, so every
      refusal is the cap's).  Under another
      allocator VAMALLOC_MAP_MAX means nothing and the kernel merges adjacent
      mappings, so there this check passes without testing much.
  startup --max-mib X
      VmSize at main() entry of a plain run vs VmSize right after the first
      malloc(16) of a preloaded run, minus the mapped image of the preloaded
      library: at most X MiB for vamalloc.  The same figure is printed for
      glibc and the peers (jemalloc, mimalloc, tcmalloc) where installed.

The allocator under test is --so (BUDGET_TEST_SO in the environment
replaces it; an empty value means plain glibc), so the checks themselves can
be run against the peers.  vamalloc-only checks (stats) apply only when the
library's name contains "vamalloc".  VAMALLOC_* variables in the environment
are passed on, except the ones a check sets itself.

Exit status: 0 pass, 1 fail, 77 skip.
"""
import argparse
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SKIP = 77
MIB = 1 << 20
KIB = 1 << 10
STATS_MARK = '{"vamalloc_version"'
PEERS = [
    ('jemalloc', '/usr/lib/x86_64-linux-gnu/libjemalloc.so.2'),
    ('mimalloc', '/usr/lib/x86_64-linux-gnu/libmimalloc.so.2'),
    ('tcmalloc', '/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4'),
]


class Failure(Exception):
    pass


class Skip(Exception):
    pass


def log(msg):
    print(msg, flush=True)


def is_vamalloc(so):
    return bool(so) and 'vamalloc' in os.path.basename(so)


def python_exe():
    # The distribution's python (a pyenv shim is a shell script that may pick
    # another interpreter); fall back to whatever python3 is on PATH.
    for p in ('/usr/bin/python3', shutil.which('python3')):
        if p and os.path.exists(p):
            return p
    raise Skip('python3 is not installed')


def node_exe():
    p = shutil.which('node') or shutil.which('nodejs')
    if not p:
        raise Skip('node is not installed (`tools/vamalloc deps --test` installs it)')
    return p


class Run:
    def __init__(self, argv, rc, out, err):
        self.argv, self.rc, self.out, self.err = argv, rc, out, err

    def describe(self):
        if self.rc is None:
            what = 'timed out'
        elif self.rc < 0:
            try:
                what = 'killed by %s' % signal.Signals(-self.rc).name
            except ValueError:
                what = 'killed by signal %d' % -self.rc
        else:
            what = 'exit %d' % self.rc
        return '%s: %s' % (' '.join(os.path.basename(a) if i == 0 else a for i, a in enumerate(self.argv)), what)

    def tail(self, n=15):
        lines = (self.out + self.err).splitlines()
        lines = [l if len(l) < 600 else l[:600] + '...' for l in lines]
        return '\n'.join('    | ' + l for l in lines[-n:])

    def stats(self):
        """vamalloc's stats JSON lines on stderr (several with vam_stats_print)."""
        found = []
        for line in self.err.splitlines():
            if line.startswith(STATS_MARK):
                try:
                    found.append(json.loads(line))
                except ValueError:
                    raise Failure('unparsable stats line: %s' % line[:300])
        return found


def count_maps(pid):
    try:
        with open('/proc/%d/maps' % pid, 'rb') as f:
            return f.read().count(b'\n')
    except OSError:
        return 0


def run(argv, so=None, limit_mib=None, env=None, timeout=180, cwd=None, sample_maps=False):
    """Run argv with the allocator `so` preloaded (None/'' = plain glibc),
    under RLIMIT_AS = limit_mib MiB when given.  With sample_maps, the
    process's mapping count is read every 10 ms while it runs (best effort:
    a short peak can be missed, a count that is seen is real) and kept as
    Run.maps_peak."""
    e = dict(os.environ)
    e.pop('LD_PRELOAD', None)
    # meson sets MALLOC_PERTURB_ (glibc malloc only): the plain reference
    # runs need no poisoning, and the figures should match tools/ulimit-matrix
    e.pop('MALLOC_PERTURB_', None)
    if so:
        e['LD_PRELOAD'] = so
    if env:
        e.update(env)

    def limit():
        # a crash is reported by its signal; no core files from low limits
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if limit_mib is not None:
            n = int(limit_mib * MIB)
            resource.setrlimit(resource.RLIMIT_AS, (n, n))

    peak = 0
    if sample_maps:
        with tempfile.TemporaryFile() as fo, tempfile.TemporaryFile() as fe:
            p = subprocess.Popen(argv, env=e, cwd=cwd, stdin=subprocess.DEVNULL, stdout=fo, stderr=fe,
                                 preexec_fn=limit)
            deadline = time.monotonic() + timeout
            rc = None
            while time.monotonic() < deadline:
                rc = p.poll()
                if rc is not None:
                    break
                peak = max(peak, count_maps(p.pid))
                time.sleep(0.01)
            if rc is None:
                p.kill()
                p.wait()
            fo.seek(0)
            fe.seek(0)
            out, err = fo.read(), fe.read()
    else:
        try:
            p = subprocess.run(argv, env=e, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True,
                               timeout=timeout, preexec_fn=limit)
            rc = p.returncode
            out, err = p.stdout, p.stderr
        except subprocess.TimeoutExpired as t:
            rc, out, err = None, t.stdout or b'', t.stderr or b''
    r = Run(argv, rc, out.decode(errors='replace'), err.decode(errors='replace'))
    r.maps_peak = peak
    return r


def stats_env(so):
    return {'VAMALLOC_STATS': 'json'} if is_vamalloc(so) else {}


def require_ok(r, what):
    if r.rc != 0:
        raise Failure('%s failed: %s\n%s' % (what, r.describe(), r.tail()))


def require_stats(r, so, what):
    """The last stats line (the exit report) when vamalloc is the allocator."""
    if not is_vamalloc(so):
        return None
    st = r.stats()
    if not st:
        raise Failure('%s: no vamalloc stats line on stderr (was vamalloc really preloaded?)\n%s' % (what, r.tail()))
    return st[-1]


def summarize_stats(st):
    if not st:
        return ''
    keys = ['health', 'reserved_bytes_peak', 'committed_bytes_peak', 'mappings', 'mappings_peak',
            'enomem_returns', 'budget_refusals', 'mmap_failures']
    return ' '.join('%s=%s' % (k, st[k]) for k in keys if k in st)


def kv(text, key):
    """The integer value of key=N in live_heap's output (last occurrence)."""
    m = re.findall(r'\b%s=(\d+)' % re.escape(key), text)
    if not m:
        raise Failure('live_heap printed no %s=' % key)
    return int(m[-1])


# ---- as-limit ------------------------------------------------------------------

def stress_argv(args, allow_enomem=True):
    argv = [args.stress, '--short'] + (['--allow-enomem'] if allow_enomem else [])
    # vamalloc and glibc promise errno == ENOMEM; the peers do not always,
    # and mimalloc 2.0.9 has an alignment bug the stress test steers around.
    if is_vamalloc(args.so) or not args.so:
        argv.append('--strict-errno')
    else:
        argv.append('--avoid-peer-bugs')
    return argv + ['2']


def node_start_ok(node, limit_mib):
    # Under a very low limit plain node can hang (a V8 worker thread fails to
    # start and the main thread waits for it forever), so a start that takes
    # this long counts as a failure; a normal start takes well under a second.
    r = run([node, '-e', 'console.log("ok")'], limit_mib=limit_mib, timeout=10)
    return r.rc == 0 and r.out.strip() == 'ok'


def node_start_min(node, lo=1, hi_mib=16384):
    """Lowest RLIMIT_AS (MiB) above lo (where it fails) at which plain node
    starts, by bisection."""
    if not node_start_ok(node, hi_mib):
        return None
    while hi_mib - lo > 1:
        mid = (lo + hi_mib) // 2
        if node_start_ok(node, mid):
            hi_mib = mid
        else:
            lo = mid
    return hi_mib


def check_as_limit(args):
    L = args.limit_mib
    so = args.so
    if args.program == 'stress':
        r = run(stress_argv(args), so=so, limit_mib=L, env=stats_env(so), timeout=args.timeout)
        require_ok(r, 'stress under RLIMIT_AS=%d MiB' % L)
        if 'stress: OK' not in r.out:
            raise Failure('stress did not report OK\n%s' % r.tail())
        st = require_stats(r, so, 'stress')
        ok_line = [l for l in r.out.splitlines() if l.startswith('stress: OK')][0]
        enomem = re.search(r'enomem=(\d+)', ok_line)
        log('stress under RLIMIT_AS=%d MiB: OK (%s) %s' % (L, 'enomem=' + enomem.group(1) if enomem else '',
                                                          summarize_stats(st)))
        return
    if args.program == 'python':
        exe = python_exe()
        argv = [exe, os.path.join(HERE, 'workload.py')]
        env = {'PYTHONMALLOC': 'malloc'}
    else:
        exe = node_exe()
        argv = [exe, os.path.join(HERE, 'workload.js')]
        env = {}
        if not node_start_ok(exe, L):
            low = node_start_min(exe, lo=L)
            raise Failure('plain node (glibc, no preload) does not start under RLIMIT_AS=%d MiB '
                          '(lowest limit where it starts: %s MiB): run node only at limits '
                          'where it starts (tests/budget/meson.build)'
                          % (L, low if low else '> 16384'))
    ref = run(argv, env=env, timeout=args.timeout)
    require_ok(ref, 'plain unlimited reference run')
    r = run(argv, so=so, limit_mib=L, env=dict(env, **stats_env(so)), timeout=args.timeout)
    require_ok(r, '%s under RLIMIT_AS=%d MiB' % (args.program, L))
    if r.out != ref.out:
        raise Failure('%s under RLIMIT_AS=%d MiB printed different output:\n--- plain\n%s--- limited\n%s'
                      % (args.program, L, ref.out, r.out))
    st = require_stats(r, so, args.program)
    if st is not None and st.get('malloc_calls', 0) == 0:
        raise Failure('vamalloc served no malloc calls (stats: %s)' % summarize_stats(st))
    log('%s under RLIMIT_AS=%d MiB: OK, output identical to the plain run (%d lines) %s'
        % (args.program, L, len(ref.out.splitlines()), summarize_stats(st)))


# ---- live-heap -------------------------------------------------------------------

def check_live_heap(args):
    L, S, so, exe = args.limit_mib, args.slack_mib, args.so, args.live_heap
    base = run([exe, '--mib', '0'], timeout=60)
    require_ok(base, 'plain live_heap --mib 0')
    base_kib = kv(base.out, 'baseline_vmsize_kib')
    N = (L * MIB - base_kib * KIB) // MIB - S
    log('live_heap baseline VmSize (plain, its own mappings): %d KiB; L=%d MiB, slack %d MiB -> N=%d MiB'
        % (base_kib, L, S, N))
    env = stats_env(so)

    r = run([exe, '--mib', str(N)], so=so, limit_mib=L, env=env, timeout=args.timeout)
    pre = kv(r.out, 'baseline_vmsize_kib') if 'baseline_vmsize_kib=' in r.out else None
    if pre is not None:
        log('live_heap baseline VmSize with the allocator preloaded: %d KiB' % pre)
    if r.rc == 3:
        raise Failure('live_heap --mib %d under RLIMIT_AS=%d MiB got NULL (ENOMEM) after %s MiB: the allocator '
                      'needs more than %d MiB of address space beyond the program\'s own\n%s'
                      % (N, L, re.findall(r'reached_mib=(\d+)', r.out) or '?', S, r.tail()))
    require_ok(r, 'live_heap --mib %d under RLIMIT_AS=%d MiB' % (N, L))
    log('live_heap --mib %d under RLIMIT_AS=%d MiB: OK %s' % (N, L, summarize_stats(require_stats(r, so, 'live_heap'))))

    over = run([exe, '--mib', str(L), '--churn', '0'], so=so, limit_mib=L, env=env, timeout=args.timeout)
    if over.rc != 3:
        raise Failure('live_heap --mib %d (more than fits) under RLIMIT_AS=%d MiB: expected a clean NULL with '
                      'ENOMEM (exit 3), got %s\n%s' % (L, L, over.describe(), over.tail()))
    log('live_heap --mib %d under RLIMIT_AS=%d MiB: clean NULL with ENOMEM after %s MiB, as expected'
        % (L, L, kv(over.out, 'reached_mib')))

    m = run([exe, '--max'], so=so, limit_mib=L, env=env, timeout=args.timeout)
    require_ok(m, 'live_heap --max under RLIMIT_AS=%d MiB' % L)
    mx, rec, capped = kv(m.out, 'max_mib'), kv(m.out, 'recovered_mib'), kv(m.out, 'capped')
    if capped:
        raise Failure('live_heap --max reached its cap without a NULL: RLIMIT_AS was not in effect?')
    st = require_stats(m, so, 'live_heap --max')
    if st is not None and st.get('enomem_returns', 0) < 1:
        raise Failure('live_heap --max got NULL but vamalloc counted no enomem_returns (%s)' % summarize_stats(st))
    log('live_heap --max under RLIMIT_AS=%d MiB: largest N reached = %d MiB, recovered %d MiB after freeing %s'
        % (L, mx, rec, summarize_stats(st)))
    log('RESULT live_heap_max_mib=%d limit_mib=%d required_mib=%d' % (mx, L, N))


# ---- va-bits -----------------------------------------------------------------------

def check_va_bits(args):
    B, so = args.bits, args.so
    env = dict(stats_env(so), VAMALLOC_VA_BITS=str(B))
    if args.program == 'live':
        r = run([args.live_heap, '--check-below', str(B)], so=so, env=env, timeout=args.timeout)
        if r.rc == 6:
            raise Failure('with VAMALLOC_VA_BITS=%d an allocation or a new mapping lies at or above 2^%d\n%s'
                          % (B, B, r.tail()))
        require_ok(r, 'live_heap --check-below %d' % B)
        log([l for l in r.out.splitlines() if 'check_below' in l][0])
        log('OK %s' % summarize_stats(require_stats(r, so, 'live_heap')))
    else:
        r = run(stress_argv(args, allow_enomem=False), so=so, env=env, timeout=args.timeout)
        require_ok(r, 'stress with VAMALLOC_VA_BITS=%d' % B)
        if 'stress: OK' not in r.out:
            raise Failure('stress did not report OK\n%s' % r.tail())
        log('stress with VAMALLOC_VA_BITS=%d: OK %s' % (B, summarize_stats(require_stats(r, so, 'stress'))))


# ---- map-max -------------------------------------------------------------------------

def peak_mappings(stats_lines):
    """Largest mapping count in any stats line (mappings_peak where present)."""
    best = None
    for st in stats_lines:
        v = st.get('mappings_peak', st.get('mappings'))
        if v is not None:
            best = v if best is None else max(best, v)
    return best


def require_cap_bound(st, M, what):
    """The cap really bound: vamalloc refused a reservation (no VA budget is
    set here, so every refusal is the map cap's)."""
    if st is None:
        return
    if 'budget_refusals' not in st:
        raise Failure('%s: stats report no budget_refusals' % what)
    if st['budget_refusals'] <= 0:
        raise Failure('%s: VAMALLOC_MAP_MAX=%d never bound (budget_refusals=0): the test '
                      'tested nothing; %s' % (what, M, summarize_stats(st)))


def check_map_max(args):
    M, so = args.map_max, args.so
    # No huge-block pool and reservations of at most 4 MiB: every huge block
    # and every chunk needs a mapping of its own, so the programs run into
    # the cap (with the defaults vamalloc packs them into 10-20 mappings,
    # and the cap leaves it at least 16).
    env = dict(stats_env(so), VAMALLOC_MAP_MAX=str(M), VAMALLOC_LARGE_POOL_MAX='1',
               VAMALLOC_RESERVE_MAX='4M')
    if args.program == 'stress':
        r = run(stress_argv(args), so=so, env=env, timeout=args.timeout, sample_maps=True)
        require_ok(r, 'stress with VAMALLOC_MAP_MAX=%d' % M)
        if 'stress: OK' not in r.out:
            raise Failure('stress did not report OK\n%s' % r.tail())
        if r.maps_peak > M:
            raise Failure('the stress process was seen with %d mappings, above VAMALLOC_MAP_MAX=%d'
                          % (r.maps_peak, M))
        st = require_stats(r, so, 'stress')
        if st is not None:
            key = 'mappings_peak' if 'mappings_peak' in st else 'mappings'
            if key not in st:
                raise Failure('stats report no mappings count')
            if st[key] >= M:
                raise Failure('vamalloc %s=%d, not below VAMALLOC_MAP_MAX=%d' % (key, st[key], M))
            require_cap_bound(st, M, 'stress')
            log('stress with VAMALLOC_MAP_MAX=%d: OK, vamalloc %s=%d, process mappings seen at most %d; %s'
                % (M, key, st[key], r.maps_peak, summarize_stats(st)))
        else:
            log('stress with VAMALLOC_MAP_MAX=%d: OK, process mappings seen at most %d (not vamalloc: no '
                'mapping count of its own)' % (M, r.maps_peak))
        return
    K = args.churn_blocks
    r = run([args.live_heap, '--map-churn', str(K)], so=so, env=env, timeout=args.timeout)
    require_ok(r, 'live_heap --map-churn %d with VAMALLOC_MAP_MAX=%d' % (K, M))
    held, reached_null = kv(r.out, 'held'), kv(r.out, 'reached_null')
    proc_peak = kv(r.out, 'process_maps_at_peak')
    log('\n'.join(l for l in r.out.splitlines() if 'map_churn' in l))
    peak = peak_mappings(r.stats()) if is_vamalloc(so) else None
    if is_vamalloc(so) and peak is None:
        raise Failure('no vamalloc stats with a mapping count\n%s' % r.tail())
    if peak is not None and peak >= M:
        raise Failure('vamalloc held %d mappings (peak), not below VAMALLOC_MAP_MAX=%d (%d of %d blocks held, '
                      'NULL reached: %s)' % (peak, M, held, K, bool(reached_null)))
    if proc_peak > M:
        raise Failure('the process had %d mappings at the peak, above VAMALLOC_MAP_MAX=%d' % (proc_peak, M))
    if is_vamalloc(so):
        if not reached_null:
            raise Failure('all %d blocks held under VAMALLOC_MAP_MAX=%d: the cap never bound' % (K, M))
        require_cap_bound(max(r.stats(), key=lambda s: s.get('budget_refusals', 0)), M, 'map-churn')
    if reached_null:
        log('OK: clean NULL with ENOMEM after %d blocks of 5 MiB, recovered after freeing; vamalloc mappings '
            'peak %s, process maps at peak %d' % (held, peak, proc_peak))
    else:
        log('OK: all %d blocks held with vamalloc mappings peak %s (< %d) and process maps %d: the allocator '
            'packed them' % (K, peak, M, proc_peak))


# ---- startup -----------------------------------------------------------------------------

def probe(exe, so, lib):
    r = run([exe, '--startup-probe', '--lib', lib], so=so, timeout=60)
    require_ok(r, 'live_heap --startup-probe (%s)' % (so or 'glibc'))
    return {k: kv(r.out, k) for k in ('entry_kib', 'after_malloc_kib', 'file_kib', 'lib_kib')}


def check_startup(args):
    exe, so = args.live_heap, args.so
    plain = probe(exe, None, '')
    rows = [('glibc (no preload)', plain, 0, plain['after_malloc_kib'] - plain['entry_kib'])]
    subject = None
    cands = []
    if so:
        cands.append((os.path.basename(so), so))
    cands += [(n, p) for n, p in PEERS if os.path.exists(p) and p != so]
    for name, path in cands:
        pr = probe(exe, path, os.path.basename(path))
        image = pr['lib_kib']
        # every file-backed mapping the plain run lacks: the library's own
        # image plus the libraries it pulled in (libstdc++ for jemalloc and
        # tcmalloc)
        new_files = pr['file_kib'] - plain['file_kib']
        rows.append((name, pr, new_files - image, pr['after_malloc_kib'] - plain['entry_kib'] - new_files))
        if path == so:
            subject = (name, pr['after_malloc_kib'] - plain['entry_kib'] - image, image, new_files - image)
    log('| allocator | VmSize at main() entry | VmSize after malloc(16) | library image | libraries it pulled in '
        '| growth over the plain entry VmSize, minus all those images |')
    log('|---|---|---|---|---|---|')
    for name, pr, deps, net in rows:
        log('| %s | %d KiB | %d KiB | %d KiB | %d KiB | %.2f MiB |' % (
            name, pr['entry_kib'], pr['after_malloc_kib'], pr['lib_kib'], deps, net / 1024))
    if subject is None:
        log('(no allocator under test: glibc only)')
        return
    name, net, image, deps = subject
    if image == 0:
        raise Failure('%s is not in /proc/self/maps of the preloaded run' % name)
    # The check subtracts only the library's own image: libraries it pulls in
    # count against it.
    if net > args.max_mib * 1024:
        raise Failure('%s: VmSize right after the first malloc is %.2f MiB above the plain program\'s at main() '
                      '(library image of %d KiB already subtracted; %d KiB of it is libraries it pulled in), '
                      'more than %d MiB' % (name, net / 1024, image, deps, args.max_mib))
    log('%s: start-up VmSize growth minus its image %.2f MiB <= %d MiB: OK' % (name, net / 1024, args.max_mib))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--so', default='', help='allocator to preload (BUDGET_TEST_SO overrides; empty: glibc)')
    ap.add_argument('--live-heap', help='the live_heap executable')
    ap.add_argument('--stress', help='the stress executable (tests/stress)')
    ap.add_argument('--timeout', type=int, default=150, help='per program run, seconds')
    sub = ap.add_subparsers(dest='check', required=True)
    p = sub.add_parser('as-limit')
    p.add_argument('--limit-mib', type=int, required=True)
    p.add_argument('--program', choices=['stress', 'python', 'node'], required=True)
    p = sub.add_parser('live-heap')
    p.add_argument('--limit-mib', type=int, default=256)
    p.add_argument('--slack-mib', type=int, default=32)
    p = sub.add_parser('va-bits')
    p.add_argument('--bits', type=int, default=39)
    p.add_argument('--program', choices=['live', 'stress'], required=True)
    p = sub.add_parser('map-max')
    p.add_argument('--map-max', type=int, default=1000)
    p.add_argument('--program', choices=['stress', 'churn'], required=True)
    p.add_argument('--churn-blocks', type=int, default=1500)
    p = sub.add_parser('startup')
    p.add_argument('--max-mib', type=int, default=8)
    args = ap.parse_args()
    if 'BUDGET_TEST_SO' in os.environ:
        args.so = os.environ['BUDGET_TEST_SO']
    if args.so and not os.path.exists(args.so):
        print('FAIL: %s does not exist' % args.so)
        return 1
    log('allocator: %s' % (args.so or 'glibc (no preload)'))
    try:
        {'as-limit': check_as_limit, 'live-heap': check_live_heap, 'va-bits': check_va_bits,
         'map-max': check_map_max, 'startup': check_startup}[args.check](args)
    except Skip as s:
        print('SKIP: %s' % s)
        return SKIP
    except Failure as f:
        print('FAIL: %s' % f)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
