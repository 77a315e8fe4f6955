#!/usr/bin/env python3
"""Run vamalloc's benchmarks against glibc and the peer allocators.

Every benchmark binary uses the standard malloc names and is never linked
with vamalloc; each allocator is injected with LD_PRELOAD (glibc: none).
Runs are interleaved -- round 1: A B C D E, round 2: A B C D E, ... -- so
slow drift on the machine (other jobs, thermal, frequency) spreads over all
allocators instead of landing on one.

Two kinds of benchmark:
  - workloads (bench/workloads/*.c and malloc_large): the harness times the
    whole process (wall clock) and reads its peak RSS (os.wait4 ru_maxrss).
    The report gives the median time and median peak RSS per allocator, the
    ratio of the subject (vamalloc) to every peer and to the best peer, and
    geometric means relative to mimalloc and glibc.
  - micro benchmarks (micro_pairs): the median ns/op each case reports.

  bench/run.py                 build if needed, 5 rounds, write bench/results/latest.{md,json,png}
  bench/run.py --quick         3 rounds at 1/5 of the operation counts (development)
  bench/run.py --smoke         every benchmark with --smoke, 1 round (bench/results/smoke.*)
  bench/run.py --workloads larson,xmalloc --allocators glibc,vamalloc
  bench/run.py --rounds 9
  bench/run.py --callgrind     also count instructions per malloc+free pair

The chart (latest.png) is drawn by bench/plot.py under /usr/bin/python3 when
that interpreter has matplotlib (Debian's python3-matplotlib); otherwise the
report says so.

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
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

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
    """One benchmark binary (a meson target) and the arguments to run it.

    kind "micro": the report uses the ns/op of each case.  kind "workload":
    the report uses the wall time and peak RSS of the whole process."""

    def __init__(self, name, target, path, args=(), quick_args=("--scale=0.2",),
                 floor_cases=(), kind="micro", src=None):
        self.name = name
        self.target = target            # meson target name, for `meson compile`
        self.path = path                # relative to the build directory
        self.args = list(args)
        self.quick_args = list(quick_args)
        self.floor_cases = set(floor_cases)   # cases that do not measure the allocator
        self.kind = kind
        self.src = src or path + ".c"   # relative to the source root (standalone builds)


# The workloads in bench/workloads/, in report order (see bench/README.md).
WORKLOADS = ["larson", "xmalloc", "cache_scratch", "cache_thrash", "glibc_thread",
             "alloc_test", "sh6bench", "sh8bench", "mstress", "rptest", "realloc_growth",
             "gc_sweep", "frag_rss"]

BENCHES = [
    Bench("micro_pairs", "micro_pairs", "bench/micro_pairs",
          floor_cases=["pairs_null"]),
] + [Bench(w, "wl_" + w, "bench/wl_" + w, kind="workload", src="bench/workloads/%s.c" % w)
     for w in WORKLOADS] + [
    # Large blocks re-fault every page under allocators that give memory back
    # (about 20 ms per operation with jemalloc and mimalloc here), so run.py
    # uses a quarter of the default counts; bench/large_figures.py runs it in full.
    Bench("malloc_large", "malloc_large", "bench/malloc_large",
          args=["--scale=0.25"], quick_args=["--scale=0.05"], kind="workload"),
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
    src = os.path.join(ROOT, bench.src)
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
PEAK_RE = re.compile(r"^PEAK\s+vmhwm_kib=(\d+)")
OBJ_RE = re.compile(r"^c?ob=\(\d+\) /")


def parse_results(stdout):
    """RESULT lines -> {case: {"ns_per_op": x, other key: value...}}."""
    out = {}
    for line in stdout.splitlines():
        m = RESULT_RE.match(line.strip())
        if not m:
            continue
        kv = dict(f.split("=", 1) for f in m.group(1).split() if "=" in f)
        if "name" in kv and "ns_per_op" in kv:
            name = kv.pop("name")
            rec = {}
            for k, v in kv.items():
                try:
                    rec[k] = float(v) if "." in v else int(v)
                except ValueError:
                    rec[k] = v
            out[name] = rec
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
    """Run one benchmark process.  Returns (results, wall seconds, peak RSS in
    KiB, error): the wall time covers the whole process.  The peak RSS is
    the child's ru_maxrss from wait4, unless the program printed its own
    high-water mark (`PEAK vmhwm_kib=N`, bench.h does at exit): Linux carries
    the parent's -- this Python's -- maxrss across fork+exec, so ru_maxrss
    never reads below about 17 MiB here, while VmHWM starts afresh at exec."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.monotonic()
        try:
            p = subprocess.Popen([binary] + args, env=alloc.env(), stdout=out, stderr=err,
                                 stdin=subprocess.DEVNULL)
        except OSError as e:
            return None, None, None, "cannot start: %s" % e
        timer = threading.Timer(timeout, p.kill)
        timer.start()
        try:
            _, status, ru = os.wait4(p.pid, 0)
        finally:
            timer.cancel()
        wall = time.monotonic() - t0
        p.returncode = os.waitstatus_to_exitcode(status)   # keep Popen from waiting again
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    if p.returncode == -9 and wall >= timeout:
        return None, None, None, "timed out after %ds" % timeout
    if p.returncode != 0:
        return None, None, None, "exit status %d:\n%s" % (p.returncode, tail(stderr + stdout, 10))
    res = parse_results(stdout)
    if not res:
        return None, None, None, "no RESULT lines:\n%s" % tail(stdout + stderr, 10)
    peak = ru.ru_maxrss
    for line in stdout.splitlines():
        m = PEAK_RE.match(line.strip())
        if m and int(m.group(1)) > 0:
            peak = int(m.group(1))
    for rec in res.values():
        rec["ru_maxrss_kib"] = ru.ru_maxrss
    return res, wall, peak, None


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


def geomean(xs):
    xs = [x for x in xs if x and x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


def summarize_workloads(wl, names, subject):
    """wl[workload][alloc] = [run records] -> per-workload medians and ratios,
    and geometric means over the workloads every allocator finished."""
    rows = []
    for w, per in wl.items():
        med_t = {a: statistics.median(r["wall"] for r in v) for a, v in per.items() if v}
        med_m = {a: statistics.median(r["rss_kib"] for r in v) for a, v in per.items() if v}
        spread = {a: (max(r["wall"] for r in v) - min(r["wall"] for r in v)) / med_t[a] * 100
                  for a, v in per.items() if v and med_t[a] > 0}
        row = {"workload": w, "time": med_t, "rss_kib": med_m, "spread": spread,
               "n": {a: len(v) for a, v in per.items()}}
        peers = [a for a in names if not a.startswith("vamalloc") and a in med_t]
        if subject in med_t and peers:
            row["ratio_time"] = {a: med_t[subject] / med_t[a] for a in peers if med_t[a] > 0}
            row["ratio_rss"] = {a: med_m[subject] / med_m[a] for a in peers if med_m[a] > 0}
            bt = min(peers, key=lambda a: med_t[a])
            bm = min(peers, key=lambda a: med_m[a])
            row["best_time"] = (bt, med_t[subject] / med_t[bt])
            row["best_rss"] = (bm, med_m[subject] / med_m[bm])
        # phase RSS of frag_rss-like workloads (rssN_kib fields), median per allocator
        phases = {}
        for a, v in per.items():
            keys = sorted({k for r in v for k in r.get("fields", {})
                           if re.match(r"^(rss\d|live\d)_kib$", k)})
            if keys:
                phases[a] = {k: statistics.median(r["fields"][k] for r in v if k in r["fields"])
                             for k in keys}
        if phases:
            row["phases"] = phases
        rows.append(row)
    common = [r for r in rows if all(a in r["time"] for a in names)]
    geo = {}
    for base in ("mimalloc", "glibc"):
        if base not in names:
            continue
        geo[base] = {}
        for a in names:
            geo[base][a] = {
                "time": geomean([r["time"][a] / r["time"][base] for r in common]),
                "rss": geomean([r["rss_kib"][a] / r["rss_kib"][base] for r in common]),
            }
    return rows, geo, [r["workload"] for r in common]


def render_workloads(out, rows, geo, common, names, subject):
    peers = [n for n in names if n != subject]
    out.append("## Workloads: median wall time in seconds (lower is better)\n")
    out.append("Whole-process wall time, median over the rounds; ± is half the (max - min) "
               "range in % of the median.  **Bold**: the fastest.\n")
    out.append("| workload | " + " | ".join(names) + " |")
    out.append("|---|" + "---:|" * len(names))
    for r in rows:
        best = min(r["time"].values()) if r["time"] else None
        cells = []
        for n in names:
            t = r["time"].get(n)
            if t is None:
                cells.append("-")
                continue
            c = "%.3f (±%.0f%%)" % (t, r["spread"].get(n, 0) / 2)
            cells.append("**%s**" % c if t == best else c)
        out.append("| %s | %s |" % (r["workload"], " | ".join(cells)))
    out.append("")
    out.append("## Workloads: median peak RSS in MiB (lower is better)\n")
    out.append("Peak resident set of the benchmark process: its VmHWM at exit (ru_maxrss from "
               "os.wait4 is in latest.json; it cannot read below the harness's own RSS, which "
               "the kernel carries across fork+exec).  **Bold**: the smallest.\n")
    out.append("| workload | " + " | ".join(names) + " |")
    out.append("|---|" + "---:|" * len(names))
    for r in rows:
        best = min(r["rss_kib"].values()) if r["rss_kib"] else None
        cells = []
        for n in names:
            m = r["rss_kib"].get(n)
            if m is None:
                cells.append("-")
            else:
                c = "%.1f" % (m / 1024)
                cells.append("**%s**" % c if m == best else c)
        out.append("| %s | %s |" % (r["workload"], " | ".join(cells)))
    out.append("")
    if subject not in names or not peers:
        out.append("%s did not run (or no peer did), so there are no ratios.\n" % subject)
        return
    for what, key, bkey in (("time", "ratio_time", "best_time"),
                            ("peak RSS", "ratio_rss", "best_rss")):
        out.append("## Ratio %s / peer, %s (below 1.00: %s is better)\n" % (subject, what, subject))
        out.append("| workload | " + " | ".join("/%s" % p for p in peers) + " | / best peer |")
        out.append("|---|" + "---:|" * (len(peers) + 1))
        for r in rows:
            if key not in r:
                out.append("| %s | %s | - |" % (r["workload"], " | ".join("-" for _ in peers)))
                continue
            bp, br = r[bkey]
            flag = " ⚠" if what == "time" and br > 1.25 else ""
            out.append("| %s | %s | %.2f (%s)%s |" % (
                r["workload"], " | ".join(fmt(r[key].get(p), 2) for p in peers), br, bp, flag))
        out.append("")
    out.append("⚠: more than 1.25x the best peer's time.\n")
    if geo:
        out.append("## Geometric means over %d workloads (lower is better)\n" % len(common))
        out.append("Each allocator's median time (peak RSS) divided by the baseline's, per "
                   "workload, then the geometric mean of those ratios.  Only workloads every "
                   "allocator finished count.\n")
        bases = list(geo)
        hdr = ["time / %s" % b for b in bases] + ["peak RSS / %s" % b for b in bases]
        out.append("| allocator | " + " | ".join(hdr) + " |")
        out.append("|---|" + "---:|" * len(hdr))
        for n in names:
            cells = [fmt(geo[b][n]["time"], 3) for b in bases] + \
                    [fmt(geo[b][n]["rss"], 3) for b in bases]
            out.append("| %s | %s |" % (n, " | ".join(cells)))
        out.append("")
        out.append("### Targets (issue 7) for %s\n" % subject)
        checks = []
        if "mimalloc" in geo:
            g = geo["mimalloc"][subject]
            checks.append(("geomean time <= 0.95x mimalloc", g["time"], 0.95))
            checks.append(("geomean peak RSS <= 1.00x mimalloc", g["rss"], 1.00))
        if "glibc" in geo:
            checks.append(("geomean time <= 0.80x glibc", geo["glibc"][subject]["time"], 0.80))
        worst = max((r["best_time"][1], r["workload"], r["best_time"][0])
                    for r in rows if "best_time" in r) if any("best_time" in r for r in rows) else None
        for label, v, lim in checks:
            out.append("- %s: %s -- %s" % (label, fmt(v, 3), "met" if v is not None and v <= lim
                                              else "MISSED"))
        if worst:
            slow = ["%s %.2fx (%s)" % (r["workload"], r["best_time"][1], r["best_time"][0])
                    for r in rows if "best_time" in r and r["best_time"][1] > 1.25]
            out.append("- no workload slower than 1.25x the best peer: worst %s %.2fx (%s) -- %s"
                       % (worst[1], worst[0], worst[2], "met" if not slow else
                          "MISSED: " + ", ".join(slow)))
        out.append("")
    phased = [r for r in rows if "phases" in r]
    for r in phased:
        out.append("## %s: RSS after each phase, MiB (median)\n" % r["workload"])
        keys = sorted({k for ph in r["phases"].values() for k in ph})
        out.append("| allocator | " + " | ".join(k.replace("_kib", "") for k in keys) + " |")
        out.append("|---|" + "---:|" * len(keys))
        for n in names:
            ph = r["phases"].get(n)
            if ph:
                out.append("| %s | %s |" % (n, " | ".join("%.1f" % (ph[k] / 1024) if k in ph
                                                          else "-" for k in keys)))
        out.append("")
        if r["workload"] == "frag_rss":
            out.append("rss1: after 200 MiB of 16 B..64 KiB; rss2: after freeing 90% at random; "
                       "rss3: after as much again in another size mix; rss4: after freeing all; "
                       "live1/live3: bytes the program holds after phases 1 and 3.\n")


def render(rows, allocs, subject, floor_cases, info, args, notes, cg, wrows=(), geo=None,
           common=(), chart=None):
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
    mode = "; --quick (1/5 of the operations)" if args.quick else ""
    mode += "; --smoke (tiny runs: the numbers mean nothing)" if args.smoke else ""
    out.append("- rounds: %d (interleaved: each round runs every allocator once)%s"
               % (args.rounds, mode))
    if info.get("wall_s"):
        out.append("- harness wall time: %.0f s" % info["wall_s"])
    out.append("- allocators:")
    for a in allocs:
        where = a.lib and os.path.realpath(a.lib) or "system malloc, no preload"
        out.append("  - %s: %s%s" % (a.name, where, (" -- SKIPPED: " + a.note) if a.note else ""))
    out.append("")
    if chart:
        out.append("![time and peak RSS relative to mimalloc](%s)\n" % chart)
    if wrows:
        render_workloads(out, wrows, geo, common, names, subject)
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


def draw_chart(json_path, png_path, notes):
    """bench/plot.py under /usr/bin/python3 (Debian's matplotlib), if it has it."""
    py = "/usr/bin/python3"
    try:
        ok = subprocess.run([py, "-c", "import matplotlib"], capture_output=True,
                            timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    if not ok:
        notes.append("no chart: `%s -c 'import matplotlib'` failed (install python3-matplotlib)"
                     % py)
        return None
    r = subprocess.run([py, os.path.join(ROOT, "bench", "plot.py"), json_path, png_path],
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0 or not os.path.exists(png_path):
        notes.append("bench/plot.py failed:\n%s" % tail(r.stdout + r.stderr, 10))
        return None
    return os.path.basename(png_path)


# ---- main ------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=None,
                    help="interleaved rounds (default 5; --quick 3; --smoke 1)")
    ap.add_argument("--quick", action="store_true", help="development mode: fewer rounds and operations")
    ap.add_argument("--smoke", action="store_true",
                    help="every benchmark with --smoke: proves they run and check their data")
    ap.add_argument("--callgrind", action="store_true", help="also count instructions per pair")
    ap.add_argument("--callgrind-only", action="store_true", help="only the callgrind counts")
    ap.add_argument("--cg-iters", type=int, default=None, help="N for callgrind (default 200000; quick 50000)")
    ap.add_argument("--build-dir", default="build")
    ap.add_argument("--no-build", action="store_true", help="do not run meson")
    ap.add_argument("--allocators", default=None,
                    help="comma list among glibc,jemalloc,mimalloc,tcmalloc,vamalloc")
    ap.add_argument("--subject", default="vamalloc", help="allocator the ratios are about")
    ap.add_argument("--extra", action="append", default=[], metavar="NAME=LIB",
                    help="one more allocator to preload (A/B runs: another vamalloc build)")
    ap.add_argument("--workloads", default=None,
                    help="comma list of benchmarks to run (%s)" % ",".join(b.name for b in BENCHES))
    ap.add_argument("--cases", default=None, help="comma list of cases (passed as --only=)")
    ap.add_argument("--threads", type=int, default=None, help="--threads=N for every workload")
    ap.add_argument("--timeout", type=int, default=300, help="seconds per benchmark run")
    ap.add_argument("--out", default=None,
                    help="report path (default bench/results/latest.md; --smoke: smoke.md)")
    args = ap.parse_args()
    if args.rounds is None:
        args.rounds = 1 if args.smoke else 3 if args.quick else 5
    if args.out is None:
        args.out = os.path.join("bench", "results", "smoke.md" if args.smoke else "latest.md")
    if args.callgrind_only:
        args.callgrind = True
    benches = BENCHES
    if args.workloads:
        want = args.workloads.split(",")
        unknown = [w for w in want if w not in [b.name for b in BENCHES]]
        if unknown:
            ap.error("unknown workload(s) %s; known: %s"
                     % (",".join(unknown), ",".join(b.name for b in BENCHES)))
        benches = [b for b in BENCHES if b.name in want]
    started = time.monotonic()

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
    secure = os.path.join(build_dir, "libvamalloc-secure.so")
    allocs.append(Allocator("vamalloc-secure", secure))
    for spec in args.extra:
        name, _, lib = spec.partition("=")
        allocs.append(Allocator(name, os.path.abspath(lib)))
    if args.allocators:
        keep = args.allocators.split(",")
        allocs = [a for a in allocs if a.name in keep]
    for a in allocs:
        if a.lib and not os.path.exists(a.lib):
            a.note = "%s not found" % a.lib
            notes.append("%s skipped: %s" % (a.name, a.note))
    live = [a for a in allocs if a.note is None]

    binaries = {}
    for b in benches:
        path = os.path.join(build_dir, b.path)
        if not os.path.exists(path):
            path = standalone_bench(b, build_dir, notes)
        if path:
            binaries[b.name] = path
        else:
            notes.append("%s: no binary, skipped" % b.name)

    info = machine_info()
    samples = {}          # micro case -> alloc -> [ns]
    wl = {}               # workload -> alloc -> [{"wall", "rss_kib", "fields"}]
    floor_cases = set()
    failed = set()        # (bench, alloc) that failed once: not rerun
    if not args.callgrind_only:
        for rnd in range(args.rounds):
            for b in benches:
                if b.name not in binaries:
                    continue
                floor_cases |= b.floor_cases
                if args.smoke:
                    bargs = ["--smoke"]
                else:
                    bargs = list(b.args) + (b.quick_args if args.quick else [])
                if args.threads and b.kind == "workload":
                    bargs.append("--threads=%d" % args.threads)
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
                    res, wall, rss, err = run_once(binaries[b.name], bargs, a, args.timeout)
                    if err:
                        failed.add((b.name, a.name))
                        notes.append("%s under %s FAILED (round %d): %s"
                                     % (b.name, a.name, rnd + 1, err))
                        print("  FAILED: " + err, file=sys.stderr)
                        continue
                    if b.kind == "workload":
                        fields = {}
                        for case, rec in res.items():
                            fields.update(rec)
                        wl.setdefault(b.name, {}).setdefault(a.name, []).append(
                            {"wall": wall, "rss_kib": rss, "fields": fields,
                             "ns_per_op": {c: rec["ns_per_op"] for c, rec in res.items()}})
                    else:
                        for case, rec in res.items():
                            samples.setdefault(case, {}).setdefault(a.name, []).append(
                                rec["ns_per_op"])

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

    names = [a.name for a in live]
    rows = summarize(samples, live, args.subject)
    wrows, geo, common = summarize_workloads(wl, names, args.subject)
    info["wall_s"] = time.monotonic() - started
    out = os.path.join(ROOT, args.out)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    json_path = os.path.splitext(out)[0] + ".json"
    png_path = os.path.splitext(out)[0] + ".png"
    summary = {"allocators": names, "subject": args.subject, "common": common,
               "geomean": geo, "workloads": wrows}

    def dump():
        with open(json_path, "w") as f:
            json.dump({"info": info, "rounds": args.rounds, "quick": args.quick,
                       "smoke": args.smoke, "samples": samples, "workload_runs": wl,
                       "summary": summary,
                       "callgrind": cg and {"floor": cg[0], "rows": cg[1], "n": cg[2]},
                       "notes": notes}, f, indent=1, sort_keys=True)

    chart = None
    if wrows:
        dump()
        chart = draw_chart(json_path, png_path, notes)
    md = render(rows, allocs, args.subject, floor_cases, info, args, notes, cg, wrows, geo,
                common, chart)
    with open(out, "w") as f:
        f.write(md)
    dump()
    print(md)
    print("\nwritten: %s" % os.path.relpath(out, ROOT), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
