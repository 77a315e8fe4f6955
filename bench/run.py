#!/usr/bin/env python3
"""Run vamalloc's benchmarks against glibc and the peer allocators.

Every benchmark binary uses the standard malloc names and is never linked
with vamalloc; each allocator is injected with LD_PRELOAD (glibc: none).
Runs are interleaved -- round 1: A B C D E, round 2: A B C D E, ... -- so
slow drift on the machine (other jobs, thermal, frequency) spreads over all
allocators instead of landing on one.  The report gives the median ns/op of
each allocator and the ratio of the subject (vamalloc) to every peer.

  bench/run.py                 build if needed, 5 rounds, write bench/results/latest.md
  bench/run.py --quick         3 rounds at 1/5 of the operation counts (development)
  bench/run.py --rounds 9
  bench/run.py --callgrind     also count instructions per malloc+free pair

Instructions per pair (--callgrind): the pairs case runs under
`valgrind --tool=callgrind` once with N and once with 2N iterations (same
fixed warm-up); (Ir(2N) - Ir(N)) / N cancels start-up, warm-up and exit
costs exactly.  The pairs_null case gives the floor of the loop itself
(its checks and two calls), reported separately and subtracted in 'net'.

Adding a benchmark: append a Bench(...) to BENCHES.  A binary prints lines
`RESULT name=<case> ns_per_op=<x> ...` (see bench/bench.h); everything else
on stdout is ignored.

Standard library only.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIBDIR = "/usr/lib/x86_64-linux-gnu"


class Allocator:
    def __init__(self, name, lib):
        self.name = name
        self.lib = lib          # path to preload, or None for the system malloc
        self.note = None        # why it was skipped, if it was

    def env(self):
        env = dict(os.environ)
        env.pop("LD_PRELOAD", None)
        if self.lib:
            env["LD_PRELOAD"] = self.lib
        return env


class Bench:
    """One benchmark binary (a meson target) and the arguments to run it."""

    def __init__(self, name, target, path, args=(), quick_args=("--scale=0.2",),
                 floor_cases=()):
        self.name = name
        self.target = target            # meson target name, for `meson compile`
        self.path = path                # relative to the build directory
        self.args = list(args)
        self.quick_args = list(quick_args)
        self.floor_cases = set(floor_cases)   # cases that do not measure the allocator


BENCHES = [
    Bench("micro_pairs", "micro_pairs", "bench/micro_pairs",
          floor_cases=["pairs_null"]),
    # Large blocks re-fault every page under allocators that give memory back
    # (about 20 ms per operation with jemalloc and mimalloc here), so run.py
    # uses a quarter of the default counts; bench/large_figures.py runs it in full.
    Bench("malloc_large", "malloc_large", "bench/malloc_large",
          args=["--scale=0.25"], quick_args=["--scale=0.05"]),
]

# ---- building --------------------------------------------------------------------


def sh(cmd, **kw):
    print("+ " + " ".join(cmd), file=sys.stderr, flush=True)
    return subprocess.run(cmd, cwd=ROOT, **kw)


def tail(text, n=25):
    lines = (text or "").strip().splitlines()
    return "\n".join(lines[-n:])


def build(build_dir, notes):
    """meson setup / compile; keep going with whatever targets did build."""
    if not shutil.which("meson"):
        notes.append("meson not found: using existing binaries only")
        return
    if not os.path.exists(os.path.join(build_dir, "build.ninja")):
        r = sh(["meson", "setup", build_dir], capture_output=True, text=True)
        if r.returncode != 0:
            notes.append("`meson setup %s` failed:\n%s" % (build_dir, tail(r.stdout + r.stderr)))
            return
    r = sh(["meson", "compile", "-C", build_dir], capture_output=True, text=True)
    if r.returncode == 0:
        return
    notes.append("`meson compile -C %s` failed (building what can be built):\n%s"
                 % (build_dir, tail(r.stdout + r.stderr, 15)))
    for target in [b.target for b in BENCHES] + ["vamalloc:shared_library"]:
        r = sh(["meson", "compile", "-C", build_dir, target], capture_output=True, text=True)
        if r.returncode != 0:
            notes.append("target %s did not build" % target)


def standalone_bench(bench, build_dir, notes):
    """The meson build is broken (src/ mid-edit): compile the benchmark alone."""
    out = os.path.join(ROOT, "build-bench", os.path.basename(bench.path))
    src = os.path.join(ROOT, bench.path + ".c")
    if not os.path.exists(src) or not shutil.which("cc"):
        return None
    os.makedirs(os.path.dirname(out), exist_ok=True)
    r = sh(["cc", "-std=gnu11", "-O3", "-D_GNU_SOURCE", "-fno-builtin-malloc",
            "-fno-builtin-free", "-fno-builtin-calloc", "-fno-builtin-realloc",
            "-pthread", src, "-o", out], capture_output=True, text=True)
    if r.returncode != 0:
        notes.append("standalone build of %s failed:\n%s" % (bench.name, tail(r.stderr)))
        return None
    notes.append("%s: meson build unavailable, used a standalone build (%s)"
                 % (bench.name, os.path.relpath(out, ROOT)))
    return out


# ---- running ----------------------------------------------------------------------

RESULT_RE = re.compile(r"^RESULT\s+(.*)$")
OBJ_RE = re.compile(r"^c?ob=\(\d+\) /")


def parse_results(stdout):
    out = {}
    for line in stdout.splitlines():
        m = RESULT_RE.match(line.strip())
        if not m:
            continue
        kv = dict(f.split("=", 1) for f in m.group(1).split() if "=" in f)
        if "name" in kv and "ns_per_op" in kv:
            out[kv["name"]] = float(kv["ns_per_op"])
    return out


def list_cases(binary):
    """The case names a benchmark binary offers (`--list`), or None."""
    try:
        r = subprocess.run([binary, "--list"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if r.returncode != 0:
        return None
    return [line.split()[0] for line in r.stdout.splitlines() if line.strip()]


def run_once(binary, args, alloc, timeout):
    try:
        r = subprocess.run([binary] + args, env=alloc.env(), capture_output=True,
                           text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, "timed out after %ds" % timeout
    if r.returncode != 0:
        return None, "exit status %d:\n%s" % (r.returncode, tail(r.stderr + r.stdout, 10))
    res = parse_results(r.stdout)
    if not res:
        return None, "no RESULT lines:\n%s" % tail(r.stdout + r.stderr, 10)
    return res, None


# ---- callgrind -------------------------------------------------------------------


def callgrind_ir(binary, args, alloc, tmpdir):
    """Total Ir of one run under callgrind; also whether alloc.lib was loaded."""
    out = os.path.join(tmpdir, "cg.%s.%d.out" % (alloc.name, os.getpid()))
    cmd = ["valgrind", "--tool=callgrind", "--trace-children=no",
           "--callgrind-out-file=" + out, binary] + args
    r = subprocess.run(cmd, env=alloc.env(), capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise RuntimeError("callgrind run failed (%d):\n%s" % (r.returncode, tail(r.stderr)))
    total, loaded = None, alloc.lib is None
    # Object names appear once, in full, on an ob= / cob= line.
    stem = os.path.basename(alloc.lib).split(".so")[0] + ".so" if alloc.lib else None
    with open(out, errors="replace") as f:
        for line in f:
            if line.startswith("summary:") or (total is None and line.startswith("totals:")):
                total = int(line.split()[1])
            elif stem and not loaded and OBJ_RE.match(line) and stem in line:
                loaded = True
    os.unlink(out)
    if total is None:
        raise RuntimeError("no summary line in callgrind output")
    return total, loaded


def run_callgrind(binary, allocs, n, warmup):
    """Instructions per malloc+free pair, per allocator, plus the loop floor."""
    rows = {}
    with tempfile.TemporaryDirectory() as tmpdir:
        def per_pair(case, alloc):
            base = ["--only=" + case, "--warmup=%d" % warmup]
            ir1, ok1 = callgrind_ir(binary, base + ["--iters=%d" % n], alloc, tmpdir)
            ir2, ok2 = callgrind_ir(binary, base + ["--iters=%d" % (2 * n)], alloc, tmpdir)
            return (ir2 - ir1) / n, ok1 and ok2

        floor, _ = per_pair("pairs_null", Allocator("glibc", None))
        for a in allocs:
            print("callgrind: %s" % a.name, file=sys.stderr, flush=True)
            try:
                ir, loaded = per_pair("pairs_16_256", a)
                rows[a.name] = {"ir_per_pair": ir, "preload_seen": loaded}
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                rows[a.name] = {"error": str(e)}
    return floor, rows


# ---- reporting -------------------------------------------------------------------


def fmt(x, digits=1):
    return "-" if x is None else ("%.*f" % (digits, x))


def machine_info():
    info = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
            "host": platform.node(), "kernel": platform.release(),
            "cpus": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        info["loadavg_start"] = open("/proc/loadavg").read().split()[:3]
    except OSError:
        pass
    r = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                       capture_output=True, text=True)
    info["git"] = r.stdout.strip() if r.returncode == 0 else "(no commit)"
    r = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True)
    if r.returncode == 0 and r.stdout.strip():
        info["git"] += " + uncommitted changes"
    return info


def summarize(samples, allocs, subject):
    """samples[case][alloc] = [ns...] -> rows of medians, spreads and ratios."""
    rows = []
    for case, per in samples.items():
        med = {a: statistics.median(v) for a, v in per.items() if v}
        spread = {a: (max(v) - min(v)) / statistics.median(v) * 100
                  for a, v in per.items() if v and statistics.median(v) > 0}
        ratio = {}
        if subject in med:
            for a in allocs:
                if a.name != subject and a.name in med and med[a.name] > 0:
                    ratio[a.name] = med[subject] / med[a.name]
        rows.append({"case": case, "median": med, "spread": spread, "ratio": ratio,
                     "n": {a: len(v) for a, v in per.items()}})
    return rows


def render_timing(out, rows, names, peers, subject, floor_cases):
    out.append("## Median ns per operation (lower is better)\n")
    out.append("± is half the (max - min) range over the rounds, in % of the median.\n")
    out.append("| case | " + " | ".join(names) + " |")
    out.append("|---|" + "---:|" * len(names))
    for r in rows:
        cells = []
        for n in names:
            m = r["median"].get(n)
            cells.append("-" if m is None else "%s (±%.0f%%)" % (fmt(m), r["spread"].get(n, 0) / 2))
        label = r["case"] + (" (harness floor)" if r["case"] in floor_cases else "")
        out.append("| %s | %s |" % (label, " | ".join(cells)))
    out.append("")
    out.append("## Ratio %s / peer (below 1.00: %s is faster)\n" % (subject, subject))
    if subject not in names:
        out.append("%s did not run, so there are no ratios.\n" % subject)
    else:
        out.append("| case | " + " | ".join("%s/%s" % (subject, p) for p in peers) + " |")
        out.append("|---|" + "---:|" * len(peers))
        for r in rows:
            if r["case"] in floor_cases:
                continue
            out.append("| %s | %s |" % (r["case"], " | ".join(fmt(r["ratio"].get(p), 2)
                                                              for p in peers)))
        out.append("")


def render(rows, allocs, subject, floor_cases, info, args, notes, cg):
    names = [a.name for a in allocs if a.note is None]
    peers = [n for n in names if n != subject]
    out = []
    out.append("# vamalloc benchmarks: latest run\n")
    out.append("- date: %s; host: %s (%s, %s CPUs, kernel %s)"
               % (info.get("date"), info.get("host"), info.get("cpu", "?"), info.get("cpus"),
                  info.get("kernel")))
    out.append("- load average at start: %s  (the numbers are only as quiet as the machine)"
               % " ".join(info.get("loadavg_start", ["?"])))
    out.append("- git: %s" % info.get("git"))
    out.append("- rounds: %d (interleaved: each round runs every allocator once)%s"
               % (args.rounds, "; --quick (1/5 of the operations)" if args.quick else ""))
    out.append("- allocators:")
    for a in allocs:
        where = a.lib and os.path.realpath(a.lib) or "system malloc, no preload"
        out.append("  - %s: %s%s" % (a.name, where, (" -- SKIPPED: " + a.note) if a.note else ""))
    out.append("")
    if rows:
        render_timing(out, rows, names, peers, subject, floor_cases)
    if cg:
        floor, cgrows, n = cg
        out.append("## Instructions per malloc+free pair (callgrind)\n")
        out.append("pairs_16_256 under `valgrind --tool=callgrind`: (Ir(2N) - Ir(N)) / N with "
                   "N = %d. 'raw' includes the benchmark loop; its floor (pairs_null: the same "
                   "loop over a trivial LIFO, including two calls) is %.1f Ir/pair; "
                   "'net' = raw - floor.\n" % (n, floor))
        out.append("| allocator | raw Ir/pair | net Ir/pair | preload seen |")
        out.append("|---|---:|---:|---|")
        for a in allocs:
            if a.note is not None:
                continue
            row = cgrows.get(a.name, {})
            if "error" in row:
                out.append("| %s | error | | %s |" % (a.name, row["error"].splitlines()[0]))
            elif row:
                out.append("| %s | %.1f | %.1f | %s |" % (a.name, row["ir_per_pair"],
                                                          row["ir_per_pair"] - floor,
                                                          "yes" if row["preload_seen"] else "NO"))
        out.append("")
    if notes:
        out.append("## Notes\n")
        for n in notes:
            first, _, rest = n.partition("\n")
            out.append("- " + first)
            if rest:
                out.append("\n```\n" + rest + "\n```\n")
        out.append("")
    out.append("Command: `%s`\n" % " ".join(["bench/run.py"] + sys.argv[1:]))
    return "\n".join(out)


# ---- main ------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 5; --quick 3)")
    ap.add_argument("--quick", action="store_true", help="development mode: fewer rounds and operations")
    ap.add_argument("--callgrind", action="store_true", help="also count instructions per pair")
    ap.add_argument("--callgrind-only", action="store_true", help="only the callgrind counts")
    ap.add_argument("--cg-iters", type=int, default=None, help="N for callgrind (default 200000; quick 50000)")
    ap.add_argument("--build-dir", default="build")
    ap.add_argument("--no-build", action="store_true", help="do not run meson")
    ap.add_argument("--allocators", default=None,
                    help="comma list among glibc,jemalloc,mimalloc,tcmalloc,vamalloc")
    ap.add_argument("--subject", default="vamalloc", help="allocator the ratios are about")
    ap.add_argument("--cases", default=None, help="comma list of cases (passed as --only=)")
    ap.add_argument("--timeout", type=int, default=300, help="seconds per benchmark run")
    ap.add_argument("--out", default=os.path.join("bench", "results", "latest.md"))
    args = ap.parse_args()
    if args.rounds is None:
        args.rounds = 3 if args.quick else 5
    if args.callgrind_only:
        args.callgrind = True

    build_dir = os.path.join(ROOT, args.build_dir)
    notes = []
    if not args.no_build:
        build(args.build_dir, notes)

    allocs = [
        Allocator("glibc", None),
        Allocator("jemalloc", os.path.join(LIBDIR, "libjemalloc.so.2")),
        Allocator("mimalloc", os.path.join(LIBDIR, "libmimalloc.so.2")),
        Allocator("tcmalloc", os.path.join(LIBDIR, "libtcmalloc_minimal.so.4")),
        Allocator("vamalloc", os.path.join(build_dir, "libvamalloc.so")),
    ]
    if args.allocators:
        keep = args.allocators.split(",")
        allocs = [a for a in allocs if a.name in keep]
    for a in allocs:
        if a.lib and not os.path.exists(a.lib):
            a.note = "%s not found" % a.lib
            notes.append("%s skipped: %s" % (a.name, a.note))
    live = [a for a in allocs if a.note is None]

    binaries = {}
    for b in BENCHES:
        path = os.path.join(build_dir, b.path)
        if not os.path.exists(path):
            path = standalone_bench(b, build_dir, notes)
        if path:
            binaries[b.name] = path
        else:
            notes.append("%s: no binary, skipped" % b.name)

    info = machine_info()
    samples = {}          # case -> alloc -> [ns]
    floor_cases = set()
    failed = set()        # (bench, alloc) that failed once: not rerun
    if not args.callgrind_only:
        for rnd in range(args.rounds):
            for b in BENCHES:
                if b.name not in binaries:
                    continue
                floor_cases |= b.floor_cases
                bargs = list(b.args) + (b.quick_args if args.quick else [])
                if args.cases:
                    # only the cases this binary has: --only= with none of them fails
                    offered = list_cases(binaries[b.name])
                    wanted = args.cases.split(",")
                    mine = [c for c in wanted if offered is None or c in offered]
                    if not mine:
                        continue
                    bargs.append("--only=" + ",".join(mine))
                for a in live:
                    if (b.name, a.name) in failed:
                        continue
                    print("round %d/%d: %s under %s" % (rnd + 1, args.rounds, b.name, a.name),
                          file=sys.stderr, flush=True)
                    res, err = run_once(binaries[b.name], bargs, a, args.timeout)
                    if err:
                        failed.add((b.name, a.name))
                        notes.append("%s under %s FAILED (round %d): %s"
                                     % (b.name, a.name, rnd + 1, err))
                        print("  FAILED: " + err, file=sys.stderr)
                        continue
                    for case, ns in res.items():
                        samples.setdefault(case, {}).setdefault(a.name, []).append(ns)

    cg = None
    if args.callgrind:
        if not shutil.which("valgrind"):
            notes.append("--callgrind: valgrind not found")
        elif "micro_pairs" not in binaries:
            notes.append("--callgrind: micro_pairs not built")
        else:
            n = args.cg_iters or (50000 if args.quick else 200000)
            floor, cgrows = run_callgrind(binaries["micro_pairs"], live, n, warmup=10000)
            cg = (floor, cgrows, n)

    rows = summarize(samples, live, args.subject)
    md = render(rows, allocs, args.subject, floor_cases, info, args, notes, cg)
    out = os.path.join(ROOT, args.out)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        f.write(md)
    with open(os.path.splitext(out)[0] + ".json", "w") as f:
        json.dump({"info": info, "rounds": args.rounds, "quick": args.quick,
                   "samples": samples, "callgrind": cg and {"floor": cg[0], "rows": cg[1],
                                                             "n": cg[2]},
                   "notes": notes}, f, indent=1, sort_keys=True)
    print(md)
    print("\nwritten: %s" % os.path.relpath(out, ROOT), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
