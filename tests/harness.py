"""Helpers shared by the Python test runners (preload, shim, clients,
gcsweep): how a run is skipped or failed, the clean environment a child
starts from, and how its end and output are described.  Standard library
only; each runner puts tests/ on sys.path to import it."""
import os
import shutil
import signal
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STATS_MARK = '{"vamalloc_version"'


class Skip(Exception):
    """The test cannot run here (exit 77)."""


class Failure(Exception):
    """The test ran and found something wrong."""


def log(msg):
    print(msg, flush=True)


def base_env(**extra):
    """The caller's environment without vamalloc settings or a preload."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith('VAMALLOC_') and k != 'LD_PRELOAD'}
    env.setdefault('LC_ALL', 'C')
    env.update(extra)
    return env


def describe_rc(rc):
    if rc is None:
        return 'timed out'
    if rc < 0:
        try:
            return 'killed by %s' % signal.Signals(-rc).name
        except ValueError:
            return 'killed by signal %d' % -rc
    if rc > 128:
        try:
            return 'exit %d (%s?)' % (rc, signal.Signals(rc - 128).name)
        except ValueError:
            pass
    return 'exit %d' % rc


def tail(text, n=12, width=300):
    """The last n lines of a child's output, stats lines left out."""
    lines = [l for l in text.splitlines() if not l.startswith(STATS_MARK)]
    return '\n'.join('    ' + (l[:width] if width else l) for l in lines[-n:])


def find_bun(explicit=None):
    local = os.path.join(REPO, '.deps', 'node_modules', '.bin', 'bun')
    for cand in (explicit, local, shutil.which('bun')):
        if cand and os.access(cand, os.X_OK):
            try:
                subprocess.run([cand, '--version'], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, timeout=30, check=True)
                return cand
            except (OSError, subprocess.SubprocessError):
                pass
    raise Skip('bun is not installed (looked for %s and bun on PATH; '
               '`tools/vamalloc deps --test` installs it)' % local)


def verdict(test):
    """Run test(); print PASS, SKIP or FAIL and return the exit code meson
    reads (77 is a skip)."""
    try:
        test()
    except Skip as e:
        log('SKIP: %s' % e)
        return 77
    except Failure as e:
        log('FAIL: %s' % e)
        return 1
    log('PASS')
    return 0


def require_exports(so, wanted, why=''):
    """so's defined dynamic symbols must include malloc and every name in
    wanted: an nm that cannot run, fails or prints nothing is a Failure,
    never a reason to skip what depends on the exports."""
    try:
        nm = subprocess.run(['nm', '-D', '--defined-only', so], capture_output=True,
                            text=True, timeout=30)
    except OSError as e:
        raise Failure('cannot run nm on %s: %s' % (so, e))
    names = {l.split()[-1] for l in nm.stdout.splitlines() if l.strip()}
    if nm.returncode != 0 or 'malloc' not in names:
        raise Failure('nm -D %s: status %d, %d symbols, no malloc: cannot read the exports\n%s'
                      % (so, nm.returncode, len(names), tail(nm.stderr)))
    missing = [n for n in wanted if n not in names]
    if missing:
        raise Failure('%s does not export %s%s' % (so, ', '.join(missing), why))
