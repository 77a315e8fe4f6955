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
  node-ulimit   the same workloads under RLIMIT_AS (`ulimit -v`) at --limit-mib:
  bun-ulimit    the lowest limit where the workload runs with glibc, found by
                ulimit_probe.py (tests/clients/ulimit-latest.md), plus a
                margin.  node runs with a fixed pool of 2 workers there, so
                the limit does not depend on the CPU count.  The run without
                the preload comes first: if it fails at this limit here
                (another machine, another node), the test skips and says so.
                Otherwise the preloaded run must pass too: vamalloc must not
                need more address space than glibc.

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
    stats = stats_lines(err)
    if not stats:
        raise Failure('%s with vamalloc printed no stats line (is vamalloc loaded?)\n%s'
                      % (which, tail(err)))
    st = max(stats, key=lambda s: s.get('malloc_calls', 0))
    log('  vamalloc stats: malloc_calls=%s health=%s host_madvise calls=%s eagain=%s '
        'giveups=%s; enomem_returns=%s'
        % (st.get('malloc_calls'), st.get('health'), st.get('host_madvise_calls'),
           st.get('host_madvise_eagain'), st.get('host_madvise_giveups'),
           st.get('enomem_returns')))
    if which == 'node' and st.get('malloc_calls', 0) <= 0:
        raise Failure('node with vamalloc: malloc_calls = 0')
    if which == 'bun' and st.get('host_madvise_calls', 0) <= 0:
        raise Failure('bun with vamalloc: host_madvise_calls = %s: the host shim saw no '
                      'madvise from Bun' % st.get('host_madvise_calls'))


def t_ulimit(args, which):
    check_so(args.so)
    if not args.limit_mib:
        raise Failure('--limit-mib is required')
    exe = find_node(args.node) if which == 'node' else find_bun(args.bun)
    lim = args.limit_mib << 20
    rc, ref, err, secs = run_client(which, exe, None, args.timeout, lim, ulimit=True)
    log('%s without the preload, RLIMIT_AS %d MiB: %s in %.1fs'
        % (which, args.limit_mib, describe_rc(rc), secs))
    if rc != 0:
        raise Skip('%s does not run without the preload at %d MiB here (%s), so there is '
                   'nothing to compare; rerun tests/clients/ulimit_probe.py\n%s'
                   % (which, args.limit_mib, describe_rc(rc), tail(err, 6)))
    rc, out, err, secs = run_client(which, exe, args.so, args.timeout, lim, ulimit=True)
    stats = stats_lines(err)
    st = max(stats, key=lambda s: s.get('malloc_calls', 0)) if stats else {}
    log('%s with vamalloc, RLIMIT_AS %d MiB: %s in %.1fs, output %s; health=%s '
        'budget_refusals=%s enomem_returns=%s reserved_bytes_peak=%s'
        % (which, args.limit_mib, describe_rc(rc), secs, 'correct' if out == ref else 'DIFFERENT',
           st.get('health'), st.get('budget_refusals'), st.get('enomem_returns'),
           st.get('reserved_bytes_peak')))
    for line in err.splitlines():
        if line.startswith('note:'):
            log('  ' + line)
    if rc != 0:
        raise Failure('%s runs without the preload at %d MiB but not with vamalloc: %s\n%s'
                      % (which, args.limit_mib, describe_rc(rc), tail(err)))
    if out != ref:
        raise Failure('%s with vamalloc at %d MiB: output differs:\n%s\n--- vs ---\n%s'
                      % (which, args.limit_mib, out, ref))


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
