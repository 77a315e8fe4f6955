#!/usr/bin/env python3
"""Real clients under LD_PRELOAD=libvamalloc.so, outputs checked.  Each
subcommand is one meson test (suite 'clients'):

  node          node_battery.js: a worker_threads pool of os.cpus().length
                workers plus the 4-worker battery (why.md item 4), crypto,
                zlib and stream work, an HTTP server on 127.0.0.1 serving
                1,000 keep-alive requests; the script checks every result,
                and its output must equal a run without the preload.  The
                preloaded run must print vamalloc's stats line with
                malloc_calls > 0 (vamalloc really served node).
  bun           bun_gc.js under bun (npm `bun` in .deps/, else PATH; skip if
                absent): GC-heavy, checked, output equal to a run without the
                preload; the host shim is on (the default) and the stats line
                (printed by the script through bun:ffi, as bun skips exit-time
                destructors) must show host_madvise_calls > 0.
  node-ulimit   the same workloads under RLIMIT_AS (`ulimit -v`), at a limit
  bun-ulimit    found on this machine: a geometric bisection (about 8 runs
                of a few seconds) finds the lowest limit where the workload
                runs correctly without the preload (glibc), and the test
                runs at that plus 15%.  node runs with a fixed pool of 2
                workers there.  The run without the preload must pass at the
                test limit (twice; failing is a failure, never a skip), then
                the preloaded run must pass too, with vamalloc really loaded
                (no "cannot be preloaded" from ld.so, a stats line with
                malloc_calls > 0): vamalloc must not need more address space
                than glibc.  --limit-mib N skips the probe.
                ulimit_probe.py (by hand) finds the same limits more finely,
                with and without the preload (ulimit-latest.md).

Exit status: 0 pass, 1 fail, 77 skip.
"""
import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))
from harness import STATS_MARK, Skip, Failure, log, base_env, describe_rc, tail, find_bun, verdict  # noqa: E402
NODE_SCRIPT = os.path.join(HERE, 'node_battery.js')
BUN_SCRIPT = os.path.join(HERE, 'bun_gc.js')
# The fixed worker pool of the RLIMIT_AS runs (see the docstring).
ULIMIT_NODE_ARGS = ['--pool', '2']
# The RLIMIT_AS probe of the -ulimit tests: bisection range, resolution
# (stop when hi/lo is below PROBE_RATIO or within one step) and the margin
# the test limit adds to the lowest passing limit.
PROBE_LO_MIB, PROBE_HI_MIB, PROBE_STEP_MIB = 64, 65536, 16
PROBE_RATIO, PROBE_MARGIN = 1.04, 1.15


def run(argv, env, timeout, limit_bytes=None, cwd=None):
    """Returns (rc or None on timeout, stdout, stderr, seconds)."""
    def pre():
        if limit_bytes:
            resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            errors='replace', start_new_session=True, preexec_fn=pre)
    try:
        out, err = proc.communicate(timeout=timeout)
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        rc = None
    return rc, out, err, time.monotonic() - t0


def stats_lines(text):
    out = []
    for line in text.splitlines():
        if line.startswith(STATS_MARK):
            try:
                out.append(json.loads(line))
            except ValueError:
                raise Failure('unparsable stats line: %s' % line[:200])
    return out


def find_node(explicit=None):
    node = explicit or shutil.which('node') or shutil.which('nodejs')
    if not node:
        raise Skip('node is not installed')
    return node


def client_cmd(which, exe, ulimit=False):
    if which == 'node':
        return [exe, NODE_SCRIPT] + (ULIMIT_NODE_ARGS if ulimit else [])
    return [exe, BUN_SCRIPT]


def client_env(which, so):
    env = base_env(BUN_RUNTIME_TRANSPILER_CACHE_PATH='0', DO_NOT_TRACK='1')
    if so:
        env['LD_PRELOAD'] = so
        env['VAMALLOC_STATS'] = 'json'
        if which == 'bun':
            env['CLIENT_VAMALLOC_SO'] = so
    return env


def run_client(which, exe, so, timeout, limit_bytes=None, ulimit=False):
    with tempfile.TemporaryDirectory(prefix='clients-') as work:
        return run(client_cmd(which, exe, ulimit), client_env(which, so), timeout,
                   limit_bytes, cwd=work)


def check_so(so):
    if not os.path.exists(so):
        raise Failure('%s does not exist (build first)' % so)


def t_client(args, which):
    check_so(args.so)
    exe = find_node(args.node) if which == 'node' else find_bun(args.bun)
    rc, ref, err, secs = run_client(which, exe, None, args.timeout)
    if rc != 0:
        raise Failure('%s without the preload failed: %s\n%s' % (which, describe_rc(rc), tail(err)))
    log('%s without the preload: %.1fs\n%s' % (which, secs, ref.rstrip()))
    rc, out, err, secs = run_client(which, exe, args.so, args.timeout)
    log('%s with vamalloc: %s in %.1fs' % (which, describe_rc(rc), secs))
    if rc != 0:
        raise Failure('%s with vamalloc failed: %s\n%s' % (which, describe_rc(rc), tail(err)))
    if out != ref:
        raise Failure('%s with vamalloc: output differs:\n%s\n--- vs the run without ---\n%s'
                      % (which, out, ref))
    st = require_loaded(which, err, '%s with vamalloc' % which)
    log('  vamalloc stats: malloc_calls=%s health=%s host_madvise calls=%s eagain=%s '
        'giveups=%s; enomem_returns=%s'
        % (st.get('malloc_calls'), st.get('health'), st.get('host_madvise_calls'),
           st.get('host_madvise_eagain'), st.get('host_madvise_giveups'),
           st.get('enomem_returns')))
    if which == 'bun' and st.get('host_madvise_calls', 0) <= 0:
        raise Failure('bun with vamalloc: host_madvise_calls = %s: the host shim saw no '
                      'madvise from Bun' % st.get('host_madvise_calls'))


def require_loaded(which, err, what):
    """vamalloc really served the run: ld.so did not drop the preload (it only
    warns when it cannot map it, e.g. under RLIMIT_AS), the stats line counts
    malloc calls, and for bun the library is in /proc/self/maps.  Returns
    the stats line ({} for bun without one)."""
    dropped = [l for l in err.splitlines() if 'cannot be preloaded' in l]
    if dropped:
        raise Failure('%s: ld.so dropped the preload: %s' % (what, dropped[0]))
    stats = stats_lines(err)
    if which == 'bun':
        # bun_gc.js reads /proc/self/maps before anything else maps the
        # library; its stats line (bun:ffi) is missing where Bun runs
        # without its JIT (a low RLIMIT_AS).
        if 'note: vamalloc preload mapped: ' not in err:
            raise Failure('%s: the preload is not in /proc/self/maps\n%s' % (what, tail(err)))
        if not stats:
            return {}
    if not stats:
        raise Failure('%s printed no stats line (is vamalloc loaded?)\n%s' % (what, tail(err)))
    st = max(stats, key=lambda s: s.get('malloc_calls', 0))
    if st.get('malloc_calls', 0) <= 0:
        raise Failure('%s: malloc_calls = %s: vamalloc served no malloc' % (what, st.get('malloc_calls')))
    return st


def round_up(mib, step=PROBE_STEP_MIB):
    return -(-int(mib) // step) * step


def probe_limit(which, exe, timeout):
    """The lowest RLIMIT_AS (MiB) at which the workload runs correctly without
    the preload on this machine: a geometric bisection between PROBE_LO_MIB
    and PROBE_HI_MIB down to PROBE_RATIO (about 8 runs of a few seconds).
    Returns (limit, reference output)."""
    rc0, ref, err, secs = run_client(which, exe, None, timeout, None, ulimit=True)
    if rc0 != 0:
        raise Failure('%s workload fails without a limit: %s\n%s' % (which, describe_rc(rc0), tail(err)))

    def passes(lim):
        r, out, err, secs = run_client(which, exe, None, timeout, lim << 20, ulimit=True)
        ok = r == 0 and out == ref
        log('  probe: %s without the preload at %5d MiB: %s in %.1fs%s'
            % (which, lim, describe_rc(r), secs, '' if ok or r != 0 else ', output differs'))
        return ok
    lo, hi = PROBE_LO_MIB, PROBE_HI_MIB
    if not passes(hi):
        raise Failure('%s does not run without the preload even at %d MiB' % (which, hi))
    while hi > lo * PROBE_RATIO and hi - lo > PROBE_STEP_MIB:
        mid = round_up((lo * hi) ** 0.5)
        if mid >= hi:
            break
        if passes(mid):
            hi = mid
        else:
            lo = mid
    return hi, ref


def t_ulimit(args, which):
    check_so(args.so)
    exe = find_node(args.node) if which == 'node' else find_bun(args.bun)
    if args.limit_mib:
        limit = args.limit_mib
        rc0, ref, err, secs = run_client(which, exe, None, args.timeout, None, ulimit=True)
        if rc0 != 0:
            raise Failure('%s workload fails without a limit: %s\n%s'
                          % (which, describe_rc(rc0), tail(err)))
    else:
        lowest, ref = probe_limit(which, exe, args.timeout)
        limit = round_up(lowest * PROBE_MARGIN)
        log('%s runs without the preload down to %d MiB here; testing at %d MiB (+%d%%)'
            % (which, lowest, limit, round((PROBE_MARGIN - 1) * 100)))
    lim = limit << 20
    # The run without the preload must pass at the limit (twice: the margin
    # absorbs thread-timing noise; a limit it cannot keep is a failure of the
    # probe, never a skip).
    for attempt in (1, 2):
        rc, out, err, secs = run_client(which, exe, None, args.timeout, lim, ulimit=True)
        log('%s without the preload, RLIMIT_AS %d MiB: %s in %.1fs, output %s'
            % (which, limit, describe_rc(rc), secs, 'correct' if out == ref else 'DIFFERENT'))
        if rc != 0 or out != ref:
            raise Failure('%s without the preload fails at %d MiB (%s): the limit is not one '
                          'glibc keeps\n%s' % (which, limit, describe_rc(rc), tail(err, 6)))
    rc, out, err, secs = run_client(which, exe, args.so, args.timeout, lim, ulimit=True)
    stats = stats_lines(err)
    st = max(stats, key=lambda s: s.get('malloc_calls', 0)) if stats else {}
    log('%s with vamalloc, RLIMIT_AS %d MiB: %s in %.1fs, output %s; malloc_calls=%s health=%s '
        'budget_refusals=%s enomem_returns=%s reserved_bytes_peak=%s'
        % (which, limit, describe_rc(rc), secs, 'correct' if out == ref else 'DIFFERENT',
           st.get('malloc_calls'), st.get('health'), st.get('budget_refusals'),
           st.get('enomem_returns'), st.get('reserved_bytes_peak')))
    for line in err.splitlines():
        if line.startswith('note:'):
            log('  ' + line)
    if rc != 0:
        raise Failure('%s runs without the preload at %d MiB but not with vamalloc: %s\n%s'
                      % (which, limit, describe_rc(rc), tail(err)))
    if out != ref:
        raise Failure('%s with vamalloc at %d MiB: output differs:\n%s\n--- vs ---\n%s'
                      % (which, limit, out, ref))
    require_loaded(which, err, '%s with vamalloc at %d MiB' % (which, limit))


TESTS = {
    'node': lambda a: t_client(a, 'node'),
    'bun': lambda a: t_client(a, 'bun'),
    'node-ulimit': lambda a: t_ulimit(a, 'node'),
    'bun-ulimit': lambda a: t_ulimit(a, 'bun'),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--so', default=os.path.join(REPO, 'build', 'libvamalloc.so'))
    ap.add_argument('--node', help='node binary (default: node on PATH)')
    ap.add_argument('--bun', help='bun binary (default: .deps/node_modules/.bin/bun, then PATH)')
    ap.add_argument('--limit-mib', type=int, help='RLIMIT_AS for the -ulimit tests')
    ap.add_argument('--timeout', type=int, default=90, help='seconds per run')
    ap.add_argument('test', choices=sorted(TESTS))
    args = ap.parse_args()
    args.so = os.path.abspath(args.so)
    return verdict(lambda: TESTS[args.test](args))


if __name__ == '__main__':
    sys.exit(main())
