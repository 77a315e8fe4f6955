#!/usr/bin/env python3
"""Run gc-sweep's object part under glibc and the peers (LD_PRELOAD), plain
and under madvise EAGAIN storms, in interleaved rounds, and print a Markdown
table.  Not part of CI: run it by hand and keep the table in
tests/gcsweep/results-latest.md.

  tests/gcsweep/compare.py [--build build] [--rounds 3] [--duration 3]
                           [--pages off|auto] [--out FILE]

Modes:
  plain       no fault; madvise counted with `perf stat -e
              syscalls:sys_exit_madvise` when perf works (else not counted)
  strace      `strace -f --seccomp-bpf -e trace=madvise
              -e inject=madvise:error=EAGAIN:when=2+3`: calls 2, 5, 8, ... of
              each thread fail (a transient storm); madvise counted from the
              strace log (injected calls included)
  persistent  seccomp-inject: every madvise fails with EAGAIN, no tracer;
              counted with perf (a refused call still passes sys_exit)

Each cell is the median over the rounds; "result" lists the outcome of every
round (ok, FROZEN: did not end within the tool's --timeout, STUCK: a thread
never came back from the allocator, MISMATCH: data check failed, or the exit
status/signal).  Objects/s is the tool's own count over its wall time; CPU/wall
is the tool's getrusage (strace's own CPU is not in it); RSS from the tool.
With --pages auto vamalloc's rows also use its page API and the others the
plain mmap/madvise path (spinning on EAGAIN like bmalloc, capped by --timeout).
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
LIBDIR = '/usr/lib/x86_64-linux-gnu'
PEERS = [('glibc', None), ('jemalloc', LIBDIR + '/libjemalloc.so.2'),
         ('mimalloc', LIBDIR + '/libmimalloc.so.2'),
         ('tcmalloc', LIBDIR + '/libtcmalloc_minimal.so.4')]
MODES = ['plain', 'strace', 'persistent']


def base_env():
    env = {k: v for k, v in os.environ.items()
           if not k.startswith('VAMALLOC_') and k != 'LD_PRELOAD'}
    env['LC_ALL'] = 'C'
    return env


def perf_works():
    perf = shutil.which('perf')
    if not perf:
        return None
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, 'p')
        try:
            subprocess.run([perf, 'stat', '-x,', '-o', out, '-e', 'syscalls:sys_exit_madvise',
                            '--', 'true'], capture_output=True, timeout=30, check=True)
            return perf
        except (OSError, subprocess.SubprocessError):
            return None


def perf_count(path):
    try:
        for line in open(path, errors='replace'):
            f = line.split(',')
            if len(f) >= 3 and f[2].startswith('syscalls:sys_exit_madvise'):
                return int(f[0]) if f[0].strip().isdigit() else None
    except OSError:
        pass
    return None


def run_one(args, so, mode, work, tag):
    tool = [args.exe, '--json', '--duration', str(args.duration),
            '--timeout', str(args.duration + 5), '--pages', args.pages]
    inner = (['env', 'LD_PRELOAD=' + so] if so else []) + tool
    count_file = os.path.join(work, tag + '.count')
    if mode == 'strace':
        argv = [args.strace, '-f', '-qq', '--seccomp-bpf', '-o', count_file, '-e', 'trace=madvise',
                '-e', 'inject=madvise:error=EAGAIN:when=2+3'] + inner
    else:
        if mode == 'persistent':
            inner = [args.seccomp, '--syscall', 'madvise', '--'] + inner
        argv = ([args.perf, 'stat', '-x,', '-o', count_file, '-e', 'syscalls:sys_exit_madvise',
                 '--'] if args.perf else []) + inner
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, env=base_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, errors='replace',
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=args.duration + 60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        return {'result': 'KILLED', 'wall': time.monotonic() - t0}
    res = None
    for line in out.splitlines():
        if line.startswith('{"tool":"gc-sweep"'):
            res = json.loads(line)
    if res is None:
        rc = proc.returncode
        what = ('signal %s' % signal.Signals(-rc).name) if rc < 0 else 'exit %d' % rc
        if rc > 128 and rc - 128 < 65:
            what = 'exit %d (%s?)' % (rc, signal.Signals(rc - 128).name)
        return {'result': what, 'err': err[-300:]}
    calls = None
    if mode == 'strace':
        try:
            calls = sum(1 for l in open(count_file, errors='replace') if 'madvise(' in l)
        except OSError:
            pass
    elif args.perf:
        calls = perf_count(count_file)
    if calls is not None and res.get('wall_s'):
        res['syscall_madvise_per_s'] = calls / res['wall_s']
    return res


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def fmt(v, kind):
    if v is None:
        return 'n/a'
    if kind == 'rate':
        return '{:,.0f}'.format(v)
    if kind == 'ratio':
        return '%.2f' % v
    if kind == 'mib':
        return '%.0f' % (v / 1024.0)
    return str(v)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--build', default=os.path.join(REPO, 'build'))
    ap.add_argument('--rounds', type=int, default=3)
    ap.add_argument('--duration', type=float, default=3.0)
    ap.add_argument('--pages', choices=('off', 'auto'), default='off')
    ap.add_argument('--modes', default=','.join(MODES))
    ap.add_argument('--out', help='also write the table to this file')
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    so = os.path.join(build, 'libvamalloc.so')
    args.exe = os.path.join(build, 'tools', 'gc-sweep')
    args.seccomp = os.path.join(build, 'tests', 'shim', 'seccomp-inject')
    args.strace = shutil.which('strace')
    args.perf = perf_works()
    modes = [m for m in args.modes.split(',') if m]
    for need in [args.exe, so] + ([args.seccomp] if 'persistent' in modes else []):
        if not os.path.exists(need):
            sys.exit('missing %s (build first)' % need)
    if 'strace' in modes and not args.strace:
        sys.exit('strace is not installed')
    allocs = [(n, p) for n, p in PEERS if p is None or os.path.exists(p)] + [('vamalloc', so)]
    results = {}
    t_start = time.monotonic()
    for rnd in range(args.rounds):
        for mode in modes:
            for name, lib in allocs:
                with tempfile.TemporaryDirectory(prefix='gcsweep-cmp-') as work:
                    r = run_one(args, lib, mode, work, '%s-%s' % (name, mode))
                results.setdefault((name, mode), []).append(r)
                print('round %d %-10s %-9s %-8s %s objects/s, madvise %s/s, CPU/wall %s'
                      % (rnd + 1, mode, name, r.get('result'),
                         fmt(r.get('objects_per_s'), 'rate'),
                         fmt(r.get('syscall_madvise_per_s'), 'rate'),
                         fmt(r.get('cpu_per_wall'), 'ratio')), file=sys.stderr, flush=True)
    head = ('| mode | allocator | objects/s | madvise/s | CPU/wall | peak RSS MiB | '
            'final RSS MiB | result (each round) |')
    lines = [head, '|' + '---|' * 8]
    for mode in modes:
        for name, _ in allocs:
            rs = results[(name, mode)]
            lines.append('| %s | %s | %s | %s | %s | %s | %s | %s |' % (
                mode, name, fmt(med([r.get('objects_per_s') for r in rs]), 'rate'),
                fmt(med([r.get('syscall_madvise_per_s') for r in rs]), 'rate'),
                fmt(med([r.get('cpu_per_wall') for r in rs]), 'ratio'),
                fmt(med([r.get('rss_peak_kb') for r in rs]), 'mib'),
                fmt(med([r.get('rss_final_kb') for r in rs]), 'mib'),
                ', '.join(r.get('result', '?') for r in rs)))
    first = next((r for rs in results.values() for r in rs if 'mutators' in r), {})
    note = ('%d rounds, interleaved; %s s per run; %s mutators, %s sweepers, sizes %s..%s B '
            '(%s%% up to %s B), %s%% dead; pages %s; madvise counted with %s (plain, '
            'persistent) and the strace log (strace); %d CPUs; %.0f s in all.'
            % (args.rounds, args.duration, first.get('mutators'), first.get('sweepers'),
               first.get('min_size'), first.get('max_size'),
               (first.get('large_ratio') or 0) * 100, first.get('large_max'),
               (first.get('dead_ratio') or 0) * 100, args.pages,
               'perf' if args.perf else 'nothing', os.cpu_count(),
               time.monotonic() - t_start))
    table = '\n'.join(lines) + '\n\n' + note + '\n'
    print(table)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(table)


if __name__ == '__main__':
    main()
