#!/usr/bin/env python3
"""Find, by bisection, the lowest RLIMIT_AS (`ulimit -v`) at which node and
bun start, and at which the client workloads of tests/clients run correctly,
without the preload (glibc) and with libvamalloc.so.  Not part of CI: run it
by hand; it writes tests/clients/ulimit-latest.md.  The node-ulimit and
bun-ulimit tests probe their own limit on the machine (run_clients.py: a
coarser bisection of the glibc workload limit, plus 15%).

  tests/clients/ulimit_probe.py [--so build/libvamalloc.so] [--step 16]
                                [--out tests/clients/ulimit-latest.md]

"start" is a trivial script (`node -e` / `bun -e` printing one line);
"workload" is node_battery.js with a fixed pool of 2 workers (plus the 4
battery workers and the HTTP part) or bun_gc.js, with the output compared
with an unlimited run.  A limit counts as passing only when it passes
--confirm times in a row (threads make the margin near the edge noisy).
"""
import argparse
import os
import platform
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run_clients as rc  # noqa: E402

LO_MIB, HI_MIB = 32, 65536


def make_check(which, exe, so, kind, timeout):
    if kind == 'start':
        code = 'console.log("hello " + (6 * 7))'
        argv = [exe, '-e', code]
        want = 'hello 42\n'
        env = rc.client_env(which, so)

        def check(lim):
            r, out, err, _ = rc.run(argv, env, timeout, lim << 20)
            return r == 0 and out == want, rc.describe_rc(r), err
        return check
    r, ref, err, _ = rc.run_client(which, exe, None, timeout * 3, None, ulimit=True)
    if r != 0:
        sys.exit('%s workload fails without a limit: %s\n%s' % (which, rc.describe_rc(r), err))

    def check(lim):
        r, out, err, _ = rc.run_client(which, exe, so, timeout, lim << 20, ulimit=True)
        ok = r == 0 and out == ref
        return ok, rc.describe_rc(r) + ('' if out == ref or r != 0 else ', output differs'), err
    return check


def lowest(check, step, confirm, label):
    """The lowest limit (MiB, a multiple of step) that passes `confirm` times."""
    def passes(lim):
        for i in range(confirm):
            ok, what, err = check(lim)
            if not ok:
                first = [l for l in err.splitlines() if l.strip() and not l.startswith('{')][:1]
                print('  %-28s %6d MiB: fails (%s)%s' % (label, lim, what,
                      (': ' + first[0][:120]) if first else ''), file=sys.stderr, flush=True)
                return False
        print('  %-28s %6d MiB: passes' % (label, lim), file=sys.stderr, flush=True)
        return True
    if not passes(HI_MIB):
        return None
    lo, hi = LO_MIB, HI_MIB  # lo fails (assumed), hi passes
    while hi - lo > step:
        mid = (lo + hi) // 2 // step * step
        if mid <= lo:
            mid = lo + step
        if passes(mid):
            hi = mid
        else:
            lo = mid
    return hi


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--so', default=os.path.join(rc.REPO, 'build', 'libvamalloc.so'))
    ap.add_argument('--step', type=int, default=16, help='resolution in MiB (default 16)')
    ap.add_argument('--confirm', type=int, default=2, help='passes needed at a limit (default 2)')
    ap.add_argument('--timeout', type=int, default=60)
    ap.add_argument('--clients', default='node,bun')
    ap.add_argument('--out', default=os.path.join(rc.HERE, 'ulimit-latest.md'))
    args = ap.parse_args()
    so = os.path.abspath(args.so)
    t0 = time.monotonic()
    rows = []
    for which in args.clients.split(','):
        try:
            exe = rc.find_node() if which == 'node' else rc.find_bun()
        except rc.Skip as e:
            print('%s: %s' % (which, e), file=sys.stderr)
            continue
        ver = subprocess.run([exe, '--version'], capture_output=True, text=True).stdout.strip()
        for kind in ('start', 'workload'):
            res = {}
            for alloc, lib in (('glibc', None), ('vamalloc', so)):
                label = '%s %s %s' % (which, kind, alloc)
                res[alloc] = lowest(make_check(which, exe, lib, kind, args.timeout),
                                    args.step, args.confirm, label)
                print('%s: lowest passing RLIMIT_AS %s MiB' % (label, res[alloc]), flush=True)
            rows.append((which, ver, kind, res['glibc'], res['vamalloc']))
    lines = ['| client | version | what | glibc (no preload) | vamalloc |',
             '|---|---|---|---|---|']
    for which, ver, kind, g, v in rows:
        lines.append('| %s | %s | %s | %s | %s |' % (
            which, ver, kind, '%d MiB' % g if g else 'fails at %d MiB' % HI_MIB,
            '%d MiB' % v if v else 'fails at %d MiB' % HI_MIB))
    note = ('Lowest RLIMIT_AS (MiB, %d MiB resolution, %d passes in a row) at which each '
            'runs correctly; "start" prints one line, "workload" is node_battery.js '
            '%s / bun_gc.js with the output checked.  %s, %s, %d CPUs; %.0f s.'
            % (args.step, args.confirm, ' '.join(rc.ULIMIT_NODE_ARGS), platform.platform(),
               'libvamalloc ' + so, os.cpu_count(), time.monotonic() - t0))
    text = '\n'.join(lines) + '\n\n' + note + '\n'
    print(text)
    with open(args.out, 'w') as f:
        f.write('# RLIMIT_AS probe (tests/clients/ulimit_probe.py)\n\n' + text)


if __name__ == '__main__':
    main()
