#!/usr/bin/env python3
"""Run the heap-misuse cases (cases.c), each in a fresh process, and judge them.

Check mode (what meson runs):
  run_misuse.py --check --exe build/tests/misuse/misuse_cases \\
      --lib build/libvamalloc.so [--secure] --mode abort|warn|ignore
  run_misuse.py --check --exe build/tests/misuse/misuse_cases_api [--secure] --mode abort|warn
    (no --lib: the binary links libvamalloc.a and calls vam_* itself)

  Per case, the exact expected outcome under vamalloc's contract:
    abort   killed by SIGABRT, stderr holds exactly one line
            `vamalloc: heap misuse: <kind> 0x<16 hex> in <op>; aborting
            (VAMALLOC_ON_CORRUPTION=warn|ignore continues)`, with the case's
            kind, the misused address and (for direct misuses) the call;
    warn    exit 0, exactly one such line ending `; continuing
            (VAMALLOC_ON_CORRUPTION=warn)`, the kind's misuse_* counter == 1
            and no other misuse_* counter in the VAMALLOC_STATS=json line,
            and the case's own "nothing corrupted" checks passed (CHECKS OK);
    ignore  as warn but no line at all.
  Guard-page and malloc(0) cases (secure build) must die of SIGSEGV in every
  mode.  Secure-only cases are skipped (not passed) without --secure.
  Exit 0 when every case passes, 1 when one fails, 77 (skip) only when --lib
  names a library that does not exist.

Table mode (by hand, never in CI):
  run_misuse.py --table [--build-dir build] [--out FILE.md]
  runs every standard-names case plainly (glibc) and preloaded with jemalloc,
  mimalloc, tcmalloc, scudo and vamalloc (default and secure builds) and
  prints a markdown table: caught or not, per case and allocator.
"""
import argparse
import concurrent.futures
import glob
import json
import os
import platform
import re
import resource
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))
from harness import STATS_MARK, base_env, describe_rc, tail  # noqa: E402

SKIP = 77

# ---------------------------------------------------------------- expectations

DF, IF, IP = 'double free', 'interior free', 'invalid pointer'
FL, CAN, WAF = 'free-list corruption', 'canary overwritten', 'write after free'
COUNTER = {
    DF: 'misuse_double_free',
    IF: 'misuse_interior_free',
    IP: 'misuse_invalid_pointer',
    FL: 'misuse_freelist_corrupt',
    CAN: 'misuse_canary',
    WAF: 'misuse_write_after_free',
}
FREE_OPS = ('free', 'vam_free')
REALLOC_OPS = ('realloc', 'vam_realloc')
USABLE_OPS = ('malloc_usable_size', 'vam_usable_size')


class Expect:
    """What vamalloc must do with one case.

    kind     the report's <kind> (secure_kinds: accepted in the secure build)
    ops      accepted <op> values; None = any (found in a later call)
    addr     the report must name the address the case printed (misuse-addr)
    sigsegv  a fault, not a report, in every mode (guard pages, malloc(0))
    secure   only the secure build catches it
    api      only in the static-API binary (misuse_cases_api)
    """

    def __init__(self, kind=None, ops=None, addr=True, sigsegv=False, secure=False,
                 api=False, secure_kinds=None):
        self.kind, self.ops, self.addr = kind, ops, addr
        self.sigsegv, self.secure, self.api = sigsegv, secure, api
        self.secure_kinds = secure_kinds or ((kind,) if kind else ())

    def kinds(self, secure):
        return self.secure_kinds if secure else (self.kind,)


CASES = {
    'double-free-small': Expect(DF, FREE_OPS),
    'double-free-small-aba': Expect(DF, FREE_OPS),
    'double-free-medium': Expect(DF, FREE_OPS),
    'double-free-large': Expect(DF, FREE_OPS),
    'double-free-xlarge': Expect(DF, FREE_OPS),
    'double-free-huge': Expect(DF, FREE_OPS),
    # The second free comes from a thread that does not own the block; the
    # report may come from that free or from the owner collecting it.
    'double-free-small-thread': Expect(DF),
    'double-free-small-thread-ab': Expect(DF),
    'double-free-medium-thread': Expect(DF),
    'double-free-large-thread': Expect(DF),
    'double-free-xlarge-thread': Expect(DF),
    'double-free-huge-thread': Expect(DF),
    'interior-free-small-1': Expect(IF, FREE_OPS),
    'interior-free-small-16': Expect(IF, FREE_OPS),
    'interior-free-medium': Expect(IF, FREE_OPS),
    'interior-free-large': Expect(IF, FREE_OPS),
    'interior-free-xlarge': Expect(IF, FREE_OPS),
    'interior-free-huge': Expect(IF, FREE_OPS),
    'invalid-free-stack': Expect(IP, FREE_OPS),
    'invalid-free-global': Expect(IP, FREE_OPS),
    'invalid-free-4096': Expect(IP, FREE_OPS),
    'invalid-free-mmap': Expect(IP, FREE_OPS),
    'invalid-free-libc': Expect(IP, FREE_OPS, api=True),
    # A freed block handed to realloc/malloc_usable_size is no longer a
    # block: vamalloc names it an invalid pointer (src/alloc.c block_find).
    'realloc-freed': Expect(IP, REALLOC_OPS),
    'realloc-foreign': Expect(IP, REALLOC_OPS),
    'usable-size-freed': Expect(IP, USABLE_OPS),
    # Found in the free-list link by a later malloc/free (the secure build
    # may find the same write as a write after free).
    'uaf-steer': Expect(FL, addr=False, secure_kinds=(FL, WAF)),
    'freelist-garbage': Expect(FL, addr=False, secure_kinds=(FL, WAF)),
    'heap-double-free': Expect(DF, ('vam_heap_free',) + FREE_OPS, api=True),
    'overflow-small-1byte': Expect(CAN, FREE_OPS, addr=False, secure=True),
    'write-after-free': Expect(WAF, addr=False, secure=True),
    'malloc0-write': Expect(sigsegv=True, secure=True),
    'malloc0-read': Expect(sigsegv=True, secure=True),
    'guard-large': Expect(sigsegv=True, secure=True),
    'guard-xlarge': Expect(sigsegv=True, secure=True),
    'guard-huge': Expect(sigsegv=True, secure=True),
}

KIND_RE = '|'.join(re.escape(k) for k in COUNTER)
LINE_RE = {
    'abort': re.compile(r'vamalloc: heap misuse: (%s) 0x([0-9a-f]{16}) in ([a-z_]+); aborting '
                        r'\(VAMALLOC_ON_CORRUPTION=warn\|ignore continues\)' % KIND_RE),
    'warn': re.compile(r'vamalloc: heap misuse: (%s) 0x([0-9a-f]{16}) in ([a-z_]+); continuing '
                       r'\(VAMALLOC_ON_CORRUPTION=warn\)' % KIND_RE),
}
# Any report-like line from vamalloc (today's and the contract's wording).
REPORT_ANY = re.compile(r'vamalloc: heap (misuse|corruption)')
ADDR_RE = re.compile(r'^misuse-addr 0x([0-9a-f]{16})$', re.M)


# ---------------------------------------------------------------- running

class Result:
    def __init__(self, rc, out, err, secs):
        self.rc, self.out, self.err, self.secs = rc, out, err, secs

    def reports(self):
        return [l for l in self.err.splitlines() if REPORT_ANY.search(l)]

    def show(self):
        return ('    %s after %.2fs\n    --- stdout ---\n%s\n    --- stderr ---\n%s'
                % (describe_rc(self.rc), self.secs, tail(self.out, 8) or '    (none)',
                   tail(self.err, 8) or '    (none)'))


def child_env(lib, mode, check):
    env = base_env()
    # VAMALLOC_* options from the caller (e.g. VAMALLOC_COMMIT=strict under
    # `meson test --setup strict`) pass through, except the two set here.
    env.update({k: v for k, v in os.environ.items() if k.startswith('VAMALLOC_')
                and k not in ('VAMALLOC_STATS', 'VAMALLOC_ON_CORRUPTION')})
    for k in ('MALLOC_PERTURB_', 'MALLOC_CHECK_', 'GLIBC_TUNABLES', 'MISUSE_CONTRACT'):
        env.pop(k, None)
    if lib:
        env['LD_PRELOAD'] = lib
    if mode in ('warn', 'ignore'):   # abort is the default: left unset on purpose
        env['VAMALLOC_ON_CORRUPTION'] = mode
        env['VAMALLOC_STATS'] = 'json'
    if check:
        env['MISUSE_CONTRACT'] = '1'
    return env


def run_case(exe, case, env, timeout):
    t0 = time.monotonic()
    proc = subprocess.Popen([exe, case], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        rc = None
    return Result(rc, out.decode('utf-8', 'replace'), err.decode('utf-8', 'replace'),
                  time.monotonic() - t0)


def list_cases(exe):
    p = subprocess.run([exe, '--list'], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=base_env(), timeout=30)
    if p.returncode != 0:
        raise SystemExit('FAIL: %s --list exited %s: %s' % (exe, p.returncode, p.stderr[-300:]))
    return p.stdout.decode().split()


def stats_of(err):
    decoder = json.JSONDecoder()
    found = []
    for line in err.splitlines():
        pos = line.find(STATS_MARK)
        if pos >= 0:
            try:
                found.append(decoder.raw_decode(line, pos)[0])
            except ValueError:
                pass
    return found


# ---------------------------------------------------------------- check mode

def judge(case, exp, res, mode, secure):
    """None when the run is what the contract says, else why not."""
    if res.rc is None:
        return 'timed out'
    if 'SETUP ERROR' in res.out:
        return 'the case could not set up: ' + [l for l in res.out.splitlines()
                                                 if 'SETUP ERROR' in l][0]
    reports = res.reports()
    if exp.sigsegv:
        if res.rc != -signal.SIGSEGV:
            return '%s, want SIGSEGV (guard page / inaccessible malloc(0) block)%s' % (
                describe_rc(res.rc), ': the write went through' if 'NOT CAUGHT' in res.out else '')
        if reports:
            return 'a fault needs no report line, got %r' % reports[0]
        return None

    kinds = exp.kinds(secure)
    reported = None
    if mode in ('abort', 'warn'):
        if 'NOT CAUGHT' in res.out and not reports:
            return 'NOT CAUGHT: no report (%s)' % describe_rc(res.rc)
        if not reports:
            return 'no report line (%s)' % describe_rc(res.rc)
        if len(reports) != 1:
            return '%d report lines, want exactly 1: %r' % (len(reports), reports[:3])
        m = LINE_RE[mode].fullmatch(reports[0].strip())
        if not m:
            return 'report line not in the %s format: %r' % (mode, reports[0])
        kind, addr, op = m.groups()
        reported = kind
        if kind not in kinds:
            return 'reported %r, want %s' % (kind, ' or '.join(repr(k) for k in kinds))
        if exp.addr:
            am = ADDR_RE.search(res.out)
            if not am:
                return 'the case printed no misuse-addr line'
            if am.group(1) != addr:
                return 'report names 0x%s, the misused pointer is 0x%s' % (addr, am.group(1))
        if exp.ops and op not in exp.ops:
            return 'reported in %r, want %s' % (op, ' or '.join(exp.ops))
        if mode == 'abort' and res.rc != -signal.SIGABRT:
            return '%s after the report, want SIGABRT' % describe_rc(res.rc)
        if mode == 'abort':
            return None
    elif reports:
        return 'ignore mode printed a report line: %r' % reports[0]

    # warn and ignore: the call returned and nothing may be corrupted.
    failed = [l for l in res.out.splitlines() if l.startswith('CHECK FAILED')]
    if failed:
        return 'after the misuse: ' + '; '.join(failed[:3])
    if res.rc != 0:
        return '%s, want exit 0 (the misused call must return)' % describe_rc(res.rc)
    if 'CHECKS OK' not in res.out:
        return 'the case did not reach CHECKS OK'
    stats = stats_of(res.err)
    if not stats:
        return 'no VAMALLOC_STATS=json line on stderr (is vamalloc really serving this program?)'
    st = stats[-1]
    missing = [c for c in COUNTER.values() if not isinstance(st.get(c), int)]
    if missing:
        return 'stats line lacks the counters %s' % ', '.join(missing)
    counts = {COUNTER[k]: st[COUNTER[k]] for k in COUNTER}
    # warn: the reported kind's counter; ignore: one of the case's kinds.
    want = [reported] if reported else list(kinds)
    if not any(counts[COUNTER[k]] == 1 and sum(counts.values()) == 1 for k in want):
        return 'misuse counters %s, want %s == 1 and the others 0' % (
            ', '.join('%s=%d' % kv for kv in counts.items()),
            ' or '.join(COUNTER[k] for k in want))
    return None


def check(args):
    exe = os.path.abspath(args.exe)
    if args.lib and not os.path.isfile(args.lib):
        print('SKIP: %s does not exist (the library under test was not built)' % args.lib)
        return SKIP
    if not os.access(exe, os.X_OK):
        print('FAIL: case program %s is missing (build failure?)' % exe)
        return 1
    lib = os.path.abspath(args.lib) if args.lib else None
    names = list_cases(exe)
    api = 'heap-double-free' in names
    unknown = [n for n in names if n not in CASES]
    if unknown:
        print('FAIL: no expectation in run_misuse.py for case(s) %s' % ', '.join(unknown))
        return 1
    lost = [n for n, e in CASES.items() if n not in names and not e.api]
    if lost:
        print('FAIL: %s does not have case(s) %s' % (exe, ', '.join(lost)))
        return 1
    if args.case:
        bad = [c for c in args.case if c not in names]
        if bad:
            print('FAIL: no such case: %s' % ', '.join(bad))
            return 1
        names = [n for n in names if n in args.case]

    build = 'secure' if args.secure else 'default'
    print('misuse check: %s, %s build, VAMALLOC_ON_CORRUPTION=%s, %s'
          % (os.path.basename(exe), build, args.mode,
             'LD_PRELOAD=' + lib if lib else 'static vam_* API' if api else 'no preload'))
    env = child_env(lib, args.mode, True)
    todo = [n for n in names if args.secure or not CASES[n].secure]
    skipped = [n for n in names if n not in todo]
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        futs = {n: pool.submit(run_case, exe, n, env, args.timeout) for n in todo}
        results = {n: f.result() for n, f in futs.items()}
    npass = nfail = 0
    for n in names:
        if n in skipped:
            print('SKIP %-30s secure build only' % n)
            continue
        why = judge(n, CASES[n], results[n], args.mode, args.secure)
        if why is None:
            npass += 1
            print('PASS %-30s %s' % (n, describe_rc(results[n].rc)))
            if args.verbose:
                print(results[n].show())
        else:
            nfail += 1
            print('FAIL %-30s %s' % (n, why))
            print(results[n].show())
    print('misuse %s/%s/%s: %d pass, %d fail, %d skip'
          % (os.path.basename(exe), build, args.mode, npass, nfail, len(skipped)))
    return 1 if nfail else 0


# ---------------------------------------------------------------- table mode

def first_existing(patterns):
    for pat in patterns:
        hits = sorted(glob.glob(pat))
        if hits:
            return hits[-1]
    return None


LIBDIRS = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib',
           '/usr/local/lib']


def peers(build_dir):
    def lib(*names):
        return first_existing([os.path.join(d, n) for n in names for d in LIBDIRS])
    return [
        ('glibc', '', 'glibc %s (no preload)' % platform.libc_ver()[1]),
        ('jemalloc', lib('libjemalloc.so.2'), None),
        ('mimalloc', lib('libmimalloc.so.2', 'libmimalloc.so'), None),
        ('tcmalloc', lib('libtcmalloc.so.4', 'libtcmalloc_minimal.so.4'), None),
        ('scudo', first_existing([
            '/usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.scudo_standalone-x86_64.so',
            '/usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.scudo_standalone-aarch64.so',
            '/usr/lib/clang/*/lib/linux/libclang_rt.scudo_standalone-x86_64.so']), None),
        ('vamalloc', os.path.join(build_dir, 'libvamalloc.so'), None),
        ('vamalloc secure', os.path.join(build_dir, 'libvamalloc-secure.so'), None),
    ]


def classify(res):
    """The table's cell for one run."""
    if res.rc is None:
        return 'hang', False
    if res.reports():
        return 'caught', True
    if 'SETUP ERROR' in res.out or res.rc == 2:
        return 'error', False
    if 'NOT CAUGHT' in res.out:
        return ('- corrupt' if 'CHECK FAILED' in res.out else '-'), False
    if res.rc < 0 and res.rc != -signal.SIGABRT:
        return signal.Signals(-res.rc).name if -res.rc in signal.valid_signals() else 'signal', True
    if res.rc != 0:
        return 'caught', True
    return 'error', False


def table(args):
    build_dir = os.path.abspath(args.build_dir)
    exe = os.path.abspath(args.exe or os.path.join(build_dir, 'tests', 'misuse', 'misuse_cases'))
    if not os.access(exe, os.X_OK):
        print('FAIL: %s is missing (meson compile -C %s)' % (exe, args.build_dir))
        return 1
    names = [n for n in list_cases(exe) if n in CASES and not CASES[n].api]
    if args.case:
        names = [n for n in names if n in args.case]
    cols, notes = [], []
    for name, lib, desc in peers(build_dir):
        if lib is None or (lib and not os.path.isfile(lib)):
            notes.append('- %s: not found%s, column left out' % (name, ' (%s)' % lib if lib else ''))
            continue
        cols.append((name, lib))
        shown = os.path.relpath(lib, REPO) if lib.startswith(REPO + os.sep) else lib
        notes.append('- %s: %s' % (name, desc or shown))
    jobs = []
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        for name, lib in cols:
            env = child_env(lib or None, 'abort', False)
            for case in names:
                jobs.append(((name, case), pool.submit(run_case, exe, case, env, args.timeout)))
        cells = {key: classify(f.result()) for key, f in jobs}
    try:
        rev = subprocess.run(['git', '-C', REPO, 'describe', '--always', '--dirty'],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             timeout=10).stdout.decode().strip()
    except (OSError, subprocess.SubprocessError):
        rev = ''
    lines = ['# Heap misuse: who catches what',
             '',
             'Generated by `tests/misuse/run_misuse.py --table` on %s (%s%s).'
             % (time.strftime('%Y-%m-%d'), platform.machine(),
                ', vamalloc at ' + rev if rev else ''),
             'Each case runs in a fresh process with the allocator preloaded (glibc: none) and '
             'its default settings.',
             '`caught`: the allocator reported it or aborted (SIGABRT, or exit != 0); '
             '`SIGSEGV`: the process died of a fault before the case could tell it was not '
             'caught (the intended outcome for `guard-*` and `malloc0-*`; elsewhere usually '
             'a crash on a corrupted heap); `-`: not caught; `- corrupt`: not caught and the '
             'allocator then handed out a block twice, overlapping or steered memory; '
             '`hang`: timed out.  (secure) marks cases only the secure build is meant to catch.',
             '',
             'Allocators:', ''] + notes + ['']
    head = '| case | ' + ' | '.join(n for n, _ in cols) + ' |'
    lines += [head, '|---' * (len(cols) + 1) + '|']
    totals = {n: [0, 0] for n, _ in cols}
    for case in names:
        row = []
        for n, _ in cols:
            text, caught = cells[(n, case)]
            row.append(text)
            if caught:
                totals[n][0] += 1
                if text not in ('caught',):
                    totals[n][1] += 1
        label = case + (' (secure)' if CASES[case].secure else '')
        lines.append('| %s | %s |' % (label, ' | '.join(row)))
    lines.append('| **caught, of %d** | %s |' % (len(names), ' | '.join(
        '**%d**%s' % (t[0], ' (%d by signal)' % t[1] if t[1] else '')
        for t in (totals[n] for n, _ in cols))))
    text = '\n'.join(lines) + '\n'
    sys.stdout.write(text)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(text)
        print('written to %s' % args.out)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split('\n', 1)[1])
    ap.add_argument('--check', action='store_true', help='assert vamalloc\'s contract per case')
    ap.add_argument('--table', action='store_true', help='markdown table over the peers')
    ap.add_argument('--exe', help='the case program (table default: BUILD/tests/misuse/misuse_cases)')
    ap.add_argument('--lib', help='check: the vamalloc library to preload')
    ap.add_argument('--secure', action='store_true', help='check: the library is the secure build')
    ap.add_argument('--mode', choices=('abort', 'warn', 'ignore'), default='abort')
    ap.add_argument('--build-dir', default=os.path.join(REPO, 'build'),
                    help='table: where libvamalloc.so and libvamalloc-secure.so are')
    ap.add_argument('--out', help='table: also write the markdown here')
    ap.add_argument('--case', action='append', help='run only this case (repeatable)')
    ap.add_argument('--jobs', type=int, default=min(4, os.cpu_count() or 1))
    ap.add_argument('--timeout', type=int, default=20, help='seconds per case')
    ap.add_argument('-v', '--verbose', action='store_true', help='show every case\'s output')
    args = ap.parse_args()
    if args.check == args.table:
        ap.error('give exactly one of --check and --table')
    if args.check and not args.exe:
        ap.error('--check needs --exe')
    # Aborting cases must not write core files (slow, and litter).
    resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))
    return check(args) if args.check else table(args)


if __name__ == '__main__':
    sys.exit(main())
