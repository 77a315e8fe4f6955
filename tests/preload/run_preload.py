#!/usr/bin/env python3
"""Run one real program plainly and under LD_PRELOAD=libvamalloc.so, and compare.

Usage: run_preload.py [--so PATH] [--stats require|optional] [--exe PATH] PROGRAM
       run_preload.py --list

Each program is a list of steps (commands) run in a fresh temporary directory.
The whole list runs twice: once plainly, once with LD_PRELOAD=<so> and
VAMALLOC_STATS=json.  The test passes when
  (a) every step exits 0 in both runs,
  (b) the concatenated stdout of the preloaded run equals the plain run's, and
  (c) with --stats require (the default), every step's stderr holds at least
      one vamalloc stats JSON line with malloc_calls > 0, i.e. vamalloc really
      served the program (one line per process, so a step that spawns children
      may print several; one is enough).
bun links its own allocator, so its stats line is never required, only reported.

Exit status: 0 pass, 1 fail, 77 skip (meson's skip code).  A test skips only
when the program it needs is not installed.

Environment overrides, to point the suite at another allocator while vamalloc
is being built, e.g. PRELOAD_TEST_SO=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2
PRELOAD_TEST_STATS=optional meson test -C build --suite preload:
  PRELOAD_TEST_SO     replaces --so
  PRELOAD_TEST_STATS  replaces --stats
VAMALLOC_* options in the environment (other than VAMALLOC_STATS) are passed
to the preloaded run, to rerun the suite under other option values.
"""
import argparse
import difflib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))
from harness import STATS_MARK, Skip, Failure, find_bun  # noqa: E402
SKIP = 77


class Step:
    """One command of a program.  `before(workdir)` prepares files first."""

    def __init__(self, argv, stdin=None, before=None):
        self.argv = argv
        self.stdin = stdin
        self.before = before

    def label(self):
        return ' '.join(os.path.basename(a) if i == 0 else a for i, a in enumerate(self.argv))


class Program:
    def __init__(self, steps, env=None, require_stats=True):
        self.steps = steps
        self.env = env or {}
        self.require_stats = require_stats


def need(name, *alternatives):
    """Path of an installed program, or skip the test with a clear message."""
    for n in (name,) + alternatives:
        path = shutil.which(n)
        if path:
            return path
    raise Skip('%s is not installed (needed by this test; `tools/vamalloc deps --test` installs it)' % name)


# ---------------------------------------------------------------- programs

def prog_python(args):
    # The interpreter running this driver: always present, always a real ELF
    # (a `python3` found on PATH may be a pyenv shell shim).
    return Program([Step([sys.executable, os.path.join(HERE, 'workload.py')])],
                   env={'PYTHONMALLOC': 'malloc', 'PYTHONHASHSEED': '0'})


def prog_node_gc(args):
    node = need('node', 'nodejs')
    return Program([Step([node, os.path.join(HERE, 'workload_gc.js')])])


def prog_node_workers(args):
    node = need('node', 'nodejs')
    return Program([Step([node, os.path.join(HERE, 'workload_workers.js')])])


def prog_perl(args):
    perl = need('perl')
    return Program([Step([perl, os.path.join(HERE, 'workload.pl')])])


def prog_cxx(args):
    if not args.exe:
        raise Skip('no C++ compiler was found when meson configured the build, '
                   'so the containers program was not built')
    if not os.access(args.exe, os.X_OK):
        raise Failure('C++ test program %s is missing (build failure?)' % args.exe)
    return Program([Step([args.exe])])


def git_files_v1(root):
    # ~300 files in nested directories, some large enough to stress zlib buffers.
    for i in range(300):
        d = os.path.join(root, 'src', 'dir%02d' % (i % 12), 'sub%d' % (i % 3))
        os.makedirs(d, exist_ok=True)
        lines = ['line %d of file %d: %s' % (j, i, 'abcdefgh'[(i + j) % 8] * (j % 40))
                 for j in range(20 + (i % 7) * (400 if i % 50 == 0 else 10))]
        with open(os.path.join(d, 'file%03d.txt' % i), 'w') as f:
            f.write('\n'.join(lines) + '\n')


def git_files_v2(root):
    # Modify, delete and add files so the second commit has a real diff.
    for i in range(0, 300, 6):
        p = os.path.join(root, 'src', 'dir%02d' % (i % 12), 'sub%d' % (i % 3), 'file%03d.txt' % i)
        with open(p, 'a') as f:
            f.write('appended in v2 %d\n' % i * 3)
    for i in range(1, 300, 15):
        os.remove(os.path.join(root, 'src', 'dir%02d' % (i % 12), 'sub%d' % (i % 3), 'file%03d.txt' % i))
    os.makedirs(os.path.join(root, 'docs'), exist_ok=True)
    for i in range(30):
        with open(os.path.join(root, 'docs', 'note%02d.md' % i), 'w') as f:
            f.write('# note %d\n\n%s\n' % (i, 'text ' * (i * 20)))


def prog_git(args):
    git = need('git')
    g = lambda *a: [git] + list(a)
    steps = [
        Step(g('init', '-q', '-b', 'main'), before=git_files_v1),
        Step(g('config', 'user.name', 'Preload Test')),
        Step(g('config', 'user.email', 'preload@example.invalid')),
        Step(g('config', 'commit.gpgsign', 'false')),
        Step(g('add', '-A')),
        Step(g('commit', '-q', '-m', 'initial import')),
        Step(g('add', '-A'), before=git_files_v2),
        Step(g('commit', '-q', '-m', 'second commit')),
        Step(g('log', '--format=%T %H %s')),
        Step(g('cat-file', '-p', 'HEAD')),
        Step(g('cat-file', '-p', 'HEAD^{tree}')),
        Step(g('ls-tree', '-r', '-l', 'HEAD')),
        Step(g('diff', '--numstat', 'HEAD~1', 'HEAD')),
        # gc spawns repack/pack-objects/prune children: a multi-process step.
        Step(g('gc', '-q')),
        Step(g('fsck', '--strict', '--no-progress')),
        Step(g('cat-file', '--batch-all-objects', '--batch-check')),
    ]
    # Fixed identity and dates make commit ids deterministic; no system or
    # user config may leak in (HOME is the temp dir).
    env = {
        'GIT_CONFIG_NOSYSTEM': '1',
        'GIT_AUTHOR_DATE': '2024-01-01 00:00:00 +0000',
        'GIT_COMMITTER_DATE': '2024-01-01 00:00:00 +0000',
        'GIT_TERMINAL_PROMPT': '0',
    }
    return Program(steps, env=env)


def sqlite_script():
    """A few thousand single-row INSERTs (each one parsed and planned) plus queries."""
    out = [
        'CREATE TABLE grps(grp INTEGER PRIMARY KEY, label TEXT NOT NULL);',
        'CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT NOT NULL, grp INTEGER,'
        ' cents INTEGER, note TEXT);',
        'BEGIN;',
    ]
    for g in range(50):
        out.append("INSERT INTO grps VALUES(%d, 'group-%02d');" % (g, g))
    x = 7
    for i in range(1, 4001):
        x = (x * 1103515245 + 12345) % 2147483648
        note = ('lorem ipsum %d ' % i) * (1 + x % 13)
        out.append("INSERT INTO items(name, grp, cents, note) VALUES('item-%05d', %d, %d, '%s');"
                   % (x % 100000, x % 50, x % 100000, note))
    out += [
        'COMMIT;',
        'CREATE INDEX items_grp ON items(grp, cents);',
        'CREATE INDEX items_name ON items(name);',
        'SELECT count(*), sum(grp), sum(cents), sum(length(note)) FROM items;',
        "SELECT g.label, count(*), printf('%.2f', avg(i.cents) / 100.0), max(length(i.note))"
        ' FROM items i JOIN grps g USING(grp) GROUP BY grp ORDER BY grp;',
        "SELECT id, name FROM items WHERE name LIKE '%77%' ORDER BY name DESC, id LIMIT 25;",
        "UPDATE items SET note = note || '-updated' || upper(name) WHERE id % 7 = 0;",
        'DELETE FROM items WHERE id % 11 = 0;',
        "INSERT INTO items(name, grp, cents, note) SELECT name || '-copy', grp, cents * 2,"
        " replace(note, 'o', 'OOOO') FROM items WHERE id % 3 = 0;",
        'SELECT count(*), sum(length(note)), sum(cents) FROM items;',
        'WITH RECURSIVE cnt(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM cnt WHERE x < 5000)'
        ' SELECT count(*), sum(x) FROM cnt;',
        "SELECT group_concat(name, ',') FROM (SELECT name FROM items ORDER BY cents DESC, id LIMIT 60);",
        'SELECT grp, count(*) FROM items GROUP BY grp HAVING count(*) > 80 ORDER BY 2 DESC, 1;',
        'SELECT a.grp, count(*) FROM items a JOIN items b ON a.grp = b.grp AND a.id < b.id'
        ' WHERE a.grp < 5 GROUP BY a.grp ORDER BY a.grp;',
        'VACUUM;',
        'PRAGMA integrity_check;',
        'SELECT count(*), sum(cents) FROM items;',
    ]
    return ('\n'.join(out) + '\n').encode()


def prog_sqlite3(args):
    sqlite3 = need('sqlite3')
    return Program([Step([sqlite3, '-batch', '-bail', 'test.db'], stdin=sqlite_script())])


def prog_bun(args):
    bun = find_bun()
    # Same script as the node GC test.  bun's own allocator serves most of its
    # memory, so vamalloc's stats line is reported, not required.
    return Program([Step([bun, 'run', os.path.join(HERE, 'workload_gc.js')])],
                   env={'BUN_RUNTIME_TRANSPILER_CACHE_PATH': '0', 'DO_NOT_TRACK': '1'},
                   require_stats=False)


PROGRAMS = {
    'python': prog_python,
    'node-gc': prog_node_gc,
    'node-workers': prog_node_workers,
    'git': prog_git,
    'cxx': prog_cxx,
    'perl': prog_perl,
    'sqlite3': prog_sqlite3,
    'bun': prog_bun,
}


# ---------------------------------------------------------------- running

def parse_stats(stderr):
    """All vamalloc stats objects in stderr, and stderr without them.

    Searched anywhere in a line, since a child's stats line can land after
    another process's unterminated stderr output on the same pipe."""
    decoder = json.JSONDecoder()
    stats, rest = [], []
    for line in stderr.splitlines():
        pos = line.find(STATS_MARK)
        if pos < 0:
            rest.append(line)
            continue
        try:
            obj, end = decoder.raw_decode(line, pos)
        except ValueError as e:
            raise Failure('malformed vamalloc stats line (%s): %r' % (e, line[pos:pos + 300]))
        if not isinstance(obj.get('malloc_calls'), int):
            raise Failure('stats line without an integer malloc_calls: %r' % line[pos:pos + 300])
        stats.append(obj)
        leftover = (line[:pos] + line[end:]).strip()
        if leftover:
            rest.append(leftover)
    return stats, '\n'.join(rest)


def run_step(step, env, cwd, timeout, mode):
    # Own session so a hung program and all its children can be killed.
    proc = subprocess.Popen(step.argv, cwd=cwd, env=env, start_new_session=True,
                            stdin=subprocess.PIPE if step.stdin is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(step.stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise Failure('%s run: `%s` timed out after %ds' % (mode, step.label(), timeout))
    return proc.returncode, out, err.decode('utf-8', 'replace')


def vamalloc_options():
    return {k: v for k, v in os.environ.items()
            if k.startswith('VAMALLOC_') and k != 'VAMALLOC_STATS'}


def run_all(prog, mode, so, timeout):
    """Run every step once; returns (stdout bytes, [(step, stats)], seconds)."""
    # MALLOC_PERTURB_ (set by meson test) is glibc-only and differs per test;
    # dropping it keeps the two runs comparable.  VAMALLOC_* options are
    # passed to the preloaded run only, so the suite can be rerun with other
    # option values (e.g. VAMALLOC_FOO=x meson test --suite preload).
    env = {k: v for k, v in os.environ.items()
           if k not in ('LD_PRELOAD', 'MALLOC_PERTURB_') and not k.startswith('VAMALLOC_')}
    env.update({'LC_ALL': 'C.UTF-8', 'TZ': 'UTC'})
    env.update(prog.env)
    if mode == 'preload':
        env.update(vamalloc_options())
        env['LD_PRELOAD'] = so
        env['VAMALLOC_STATS'] = 'json'
    out_all, per_step = [], []
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix='vam-preload-%s-' % mode) as work:
        env['HOME'] = work   # no user config (~/.gitconfig, ~/.sqliterc) leaks in
        for step in prog.steps:
            if step.before:
                step.before(work)
            rc, out, err = run_step(step, env, work, timeout, mode)
            stats, rest = parse_stats(err)
            if rc != 0:
                tail = '\n'.join(rest.splitlines()[-40:])
                raise Failure('%s run: `%s` exited with %s\n--- stderr (last 40 lines) ---\n%s'
                              % (mode, step.label(), rc if rc >= 0 else 'signal %d' % -rc, tail))
            if mode == 'plain' and stats:
                raise Failure('plain run of `%s` printed a vamalloc stats line: '
                              'something preloads vamalloc globally' % step.label())
            out_all.append(b'$ ' + step.label().encode() + b'\n' + out)
            per_step.append((step, stats))
    return b''.join(out_all), per_step, time.monotonic() - t0


def show_diff(plain, preload):
    a = plain.decode('utf-8', 'replace').splitlines()
    b = preload.decode('utf-8', 'replace').splitlines()
    diff = list(difflib.unified_diff(a, b, 'plain', 'preload', lineterm='', n=2))
    print('\n'.join(diff[:80]))
    if len(diff) > 80:
        print('... (%d more diff lines)' % (len(diff) - 80))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('program', nargs='?', choices=sorted(PROGRAMS))
    ap.add_argument('--so', default=os.path.join(REPO, 'build', 'libvamalloc.so'),
                    help='shared object to preload (default: <repo>/build/libvamalloc.so)')
    ap.add_argument('--stats', choices=('require', 'optional'), default='require',
                    help='require a vamalloc stats line with malloc_calls > 0 per step')
    ap.add_argument('--exe', help='the C++ containers program (cxx test)')
    ap.add_argument('--timeout', type=int, default=60, help='seconds per step and run')
    ap.add_argument('--list', action='store_true', help='list the programs and exit')
    args = ap.parse_args()
    if args.list:
        print('\n'.join(sorted(PROGRAMS)))
        return 0
    if not args.program:
        ap.error('a program name is required')
    so = os.environ.get('PRELOAD_TEST_SO') or args.so
    stats_mode = os.environ.get('PRELOAD_TEST_STATS') or args.stats
    if stats_mode not in ('require', 'optional'):
        ap.error('PRELOAD_TEST_STATS must be require or optional')
    # The allocator under test is not optional: a missing .so fails, never skips.
    if not os.path.isfile(so):
        print('FAIL: %s does not exist (build it first: meson compile -C build)' % so)
        return 1
    so = os.path.abspath(so)
    if args.exe:
        # meson passes build targets relative to the build dir; steps run elsewhere.
        args.exe = os.path.abspath(args.exe)

    try:
        prog = PROGRAMS[args.program](args)
        opts = ' '.join('%s=%s' % kv for kv in sorted(vamalloc_options().items()))
        print('program %s: %d step(s); preloading %s%s; stats %s'
              % (args.program, len(prog.steps), so, ' with ' + opts if opts else '',
                 stats_mode if prog.require_stats else 'reported only'))
        plain, _, t_plain = run_all(prog, 'plain', so, args.timeout)
        preload, per_step, t_pre = run_all(prog, 'preload', so, args.timeout)
        print('plain run %.2fs, preloaded run %.2fs, stdout %d bytes sha256 %s'
              % (t_plain, t_pre, len(plain), hashlib.sha256(plain).hexdigest()[:16]))

        if plain != preload:
            show_diff(plain, preload)
            raise Failure('stdout of the preloaded run differs from the plain run')

        missing = []
        for step, stats in per_step:
            served = [s for s in stats if s['malloc_calls'] > 0]
            summary = ', '.join('pid %s malloc %d free %s health %s'
                                % (s.get('pid', '?'), s['malloc_calls'], s.get('free_calls', '?'),
                                   s.get('health', '?')) for s in stats[:4])
            more = ' (+%d more processes)' % (len(stats) - 4) if len(stats) > 4 else ''
            print('  %-45s %s%s' % (step.label()[:45], summary or 'no stats line', more))
            if not served:
                missing.append(step.label())
        if missing and prog.require_stats and stats_mode == 'require':
            raise Failure('no vamalloc stats line with malloc_calls > 0 from: %s\n'
                          '(is %s really a vamalloc build, and did the program use it?)'
                          % ('; '.join(missing), so))
        if not prog.require_stats:
            n = sum(len(stats) for _, stats in per_step)
            print('stats line appeared: %s' % ('yes (%d processes)' % n if n else 'no'))
    except Skip as e:
        print('SKIP: %s' % e)
        return SKIP
    except Failure as e:
        print('FAIL: %s' % e)
        return 1
    print('PASS: %s' % args.program)
    return 0


if __name__ == '__main__':
    sys.exit(main())
