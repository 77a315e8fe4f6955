#!/usr/bin/env python3
"""Large-allocation figures: vamalloc against glibc and the peers, side by side.

One run prints (and writes to bench/results/large-latest.md, raw numbers in
large-latest.json) a Markdown table with, per allocator:

  1. mmap+munmap calls per 1,000 large allocations after warm-up
     (bench/large_syscalls churn): each workload runs twice, with N and 2N
     operations after the same warm-up, under
     `perf stat -e syscalls:sys_exit_{mmap,munmap,madvise,mremap}` (or
     `strace -f -c` when perf cannot read those tracepoints); the difference
     cancels start-up, warm-up and exit.  Target for vamalloc: <= 10.
  2. madvise calls per GiB freed (large_syscalls purge): rounds of "malloc
     blocks of 512 KiB..16 MiB, touch, free all, sleep longer than the purge
     delay, one 1 MiB malloc+free (a slow path)", R and 2R rounds, differenced.
     For vamalloc also per GiB actually purged (its purged_bytes statistic),
     and once more with vam_collect(false) after each gap.
  3. RSS 2 s after freeing 1 GiB (large_syscalls rss), i.e. twice vamalloc's
     default purge delay of 1000 ms, after one 1 MiB malloc+free; the same
     wall-clock point for every allocator.  Target for vamalloc: <= 5% above
     RSS before the allocation.
  4. Wall time of bench/malloc_large (malloc_large and large_mixed, at half
     their default counts; --quick: a fifth): median ns/op over >= 5
     interleaved rounds.  Target for vamalloc: at least as fast as the
     fastest peer.

vamalloc runs twice where it matters: as is, and with VAMALLOC_BACKGROUND=1
(the purge thread).

  bench/large_figures.py             full run (about 8 minutes on 2 cores:
                                     jemalloc and mimalloc re-fault every block)
  bench/large_figures.py --quick     smaller counts, same number of rounds
  bench/large_figures.py --allocators glibc,vamalloc --skip wall

Standard library only.  Build: meson targets malloc_large and
large_syscalls in build/ (or --build-dir); without meson they are compiled
standalone into build-bench/.
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
GIB = 1 << 30
MIB = 1 << 20
SYSCALLS = ["mmap", "munmap", "madvise", "mremap"]
PURGE_DELAY_MS = 1000          # vamalloc's default VAMALLOC_PURGE_DELAY_MS


class Allocator:
    def __init__(self, name, lib, extra_env=None):
        self.name = name
        self.lib = lib
        self.extra_env = dict(extra_env or {})
        self.note = None

    def env(self, stats=False):
        env = dict(os.environ)
        for k in list(env):
            if k == "LD_PRELOAD" or k.startswith("VAMALLOC_"):
                del env[k]
        env.update(self.extra_env)
        if self.lib:
            env["LD_PRELOAD"] = self.lib
        if stats and self.is_vamalloc():
            env["VAMALLOC_STATS"] = "json"
        return env

    def is_vamalloc(self):
        return bool(self.lib) and "vamalloc" in os.path.basename(self.lib)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def tail(text, n=15):
    return "\n".join((text or "").strip().splitlines()[-n:])


# ---- building -----------------------------------------------------------------------

TARGETS = ["malloc_large", "large_syscalls"]


def build(build_dir, notes, no_build):
    """Return {target: path}; meson first, standalone cc as the fallback."""
    if not no_build and shutil.which("meson"):
        if not os.path.exists(os.path.join(build_dir, "build.ninja")):
            r = subprocess.run(["meson", "setup", build_dir], cwd=ROOT, capture_output=True,
                               text=True)
            if r.returncode != 0:
                notes.append("`meson setup` failed:\n" + tail(r.stdout + r.stderr))
        for t in TARGETS + ["vamalloc:shared_library"]:
            r = subprocess.run(["meson", "compile", "-C", build_dir, t], cwd=ROOT,
                               capture_output=True, text=True)
            if r.returncode != 0:
                notes.append("meson target %s did not build:\n%s" % (t, tail(r.stdout + r.stderr, 8)))
    out = {}
    for t in TARGETS:
        path = os.path.join(build_dir, "bench", t)
        if not os.path.exists(path):
            path = os.path.join(ROOT, "build-bench", t)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            r = subprocess.run(["cc", "-std=gnu11", "-O2", "-D_GNU_SOURCE", "-fno-builtin-malloc",
                                "-fno-builtin-free", "-fno-builtin-calloc",
                                "-fno-builtin-realloc", "-pthread",
                                os.path.join(ROOT, "bench", t + ".c"), "-o", path, "-ldl"],
                               cwd=ROOT, capture_output=True, text=True)
            if r.returncode != 0:
                notes.append("standalone build of %s failed:\n%s" % (t, tail(r.stderr)))
                continue
            notes.append("%s: built standalone (%s)" % (t, os.path.relpath(path, ROOT)))
        out[t] = path
    return out


# ---- counting system calls ------------------------------------------------------------


def perf_works():
    if not shutil.which("perf"):
        return False
    r = subprocess.run(["perf", "stat", "-x,", "-e", "syscalls:sys_exit_mmap", "true"],
                       capture_output=True, text=True)
    return r.returncode == 0 and re.search(r"^\d+,", r.stderr, re.M) is not None


class Counter:
    def __init__(self):
        self.tool = "perf" if perf_works() else ("strace" if shutil.which("strace") else None)

    def describe(self):
        if self.tool == "perf":
            return "`perf stat -e syscalls:sys_exit_{%s}`" % ",".join(SYSCALLS)
        if self.tool == "strace":
            return "`strace -f -c -e trace=%s`" % ",".join(SYSCALLS)
        return "nothing (neither perf nor strace works)"

    def run(self, alloc, argv, timeout):
        """Run argv under alloc; returns (counts, stdout, vamalloc stats dict or None)."""
        env = alloc.env(stats=True)
        with tempfile.TemporaryDirectory() as td:
            out = os.path.join(td, "count.txt")
            cmd = list(argv)
            if alloc.lib:
                # perf/strace must not run preloaded themselves: `env` sets it for the child.
                cmd = ["env", "LD_PRELOAD=" + alloc.lib] + cmd
                env.pop("LD_PRELOAD")
            if self.tool == "perf":
                cmd = ["perf", "stat", "-x,", "-o", out,
                       "-e", ",".join("syscalls:sys_exit_" + s for s in SYSCALLS), "--"] + cmd
            elif self.tool == "strace":
                cmd = ["strace", "-f", "-c", "-o", out, "-e", "trace=" + ",".join(SYSCALLS)] + cmd
            r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
            if r.returncode != 0:
                raise RuntimeError("%s under %s: exit %d\n%s" % (" ".join(argv), alloc.name,
                                                                 r.returncode, tail(r.stderr)))
            counts = dict.fromkeys(SYSCALLS, 0)
            if self.tool:
                text = open(out).read()
                for s in SYSCALLS:
                    if self.tool == "perf":
                        m = re.search(r"^(\d+),[^,]*,syscalls:sys_exit_%s," % s, text, re.M)
                    else:   # strace -c: % time, seconds, usecs/call, calls, [errors,] syscall
                        m = re.search(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?%s\s*$" % s,
                                      text, re.M)
                    if m:
                        counts[s] = int(m.group(1))
            return counts, r.stdout, parse_stats(r.stderr)


def parse_stats(stderr):
    for line in reversed((stderr or "").splitlines()):
        line = line.strip()
        if line.startswith('{"vamalloc_version"'):
            try:
                return json.loads(line)
            except ValueError:
                return None
    return None


def diff(a, b):
    return {k: b[k] - a[k] for k in a}


# ---- the four measurements -------------------------------------------------------------


def measure_churn(counter, bins, allocs, sets, timeout):
    """set -> alloc -> {calls per 1000 ops by syscall}"""
    res = {}
    for name, warm, n in sets:
        for a in allocs:
            log("churn %s: %s (warm-up %d, N=%d and 2N)" % (name, a.name, warm, n))
            try:
                c1, _, _ = counter.run(a, [bins["large_syscalls"], "churn", name, str(warm), str(n)],
                                       timeout)
                c2, _, _ = counter.run(a, [bins["large_syscalls"], "churn", name, str(warm),
                                           str(2 * n)], timeout)
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                res.setdefault(name, {})[a.name] = {"error": str(e)}
                continue
            d = diff(c1, c2)
            res.setdefault(name, {})[a.name] = {k: v * 1000.0 / n for k, v in d.items()}
            res[name][a.name]["raw"] = [c1, c2]
    return res


def measure_purge(counter, bins, allocs, rounds, mib, gap_ms, timeout):
    """alloc -> {madvise_per_gib, munmap_per_gib, [purged ...]}"""
    res = {}
    runs = [(a, False) for a in allocs]
    runs += [(a, True) for a in allocs if a.is_vamalloc() and not a.extra_env]
    for a, collect in runs:
        key = a.name + (" + vam_collect" if collect else "")
        log("purge: %s (%d and %d rounds of %d MiB, gaps of %d ms)"
            % (key, rounds, 2 * rounds, mib, gap_ms))
        argv = [bins["large_syscalls"], "purge"]
        tailargs = [str(mib), str(gap_ms)] + (["collect"] if collect else [])
        try:
            c1, o1, s1 = counter.run(a, argv + [str(rounds)] + tailargs, timeout)
            c2, o2, s2 = counter.run(a, argv + [str(2 * rounds)] + tailargs, timeout)
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            res[key] = {"error": str(e)}
            continue
        f1 = int(re.search(r"freed_bytes=(\d+)", o1).group(1))
        f2 = int(re.search(r"freed_bytes=(\d+)", o2).group(1))
        if collect and "collect=vam_collect" not in o2:
            res[key] = {"error": "vam_collect not exported by this build"}
            continue
        gib = (f2 - f1) / GIB
        d = diff(c1, c2)
        row = {"gib_freed": gib, "madvise_per_gib": d["madvise"] / gib,
               "munmap_per_gib": d["munmap"] / gib, "mmap_per_gib": d["mmap"] / gib,
               "raw": [c1, c2]}
        if s1 and s2 and "purged_bytes" in s2:
            pg = (s2["purged_bytes"] - s1["purged_bytes"]) / GIB
            row["gib_purged"] = pg
            row["madvise_per_gib_purged"] = d["madvise"] / pg if pg > 0 else None
        res[key] = row
    return res


def measure_rss(bins, allocs, mib, sleep_ms, timeout):
    res = {}
    for a in allocs:
        log("rss: %s (%d MiB, sleep %d ms)" % (a.name, mib, sleep_ms))
        r = subprocess.run([bins["large_syscalls"], "rss", str(mib), str(sleep_ms)],
                           env=a.env(), capture_output=True, text=True, timeout=timeout)
        m = re.search(r"^RSS (.*)$", r.stdout, re.M)
        if r.returncode != 0 or not m:
            res[a.name] = {"error": "exit %d: %s" % (r.returncode, tail(r.stderr + r.stdout, 5))}
            continue
        kv = {k: int(v) for k, v in (f.split("=") for f in m.group(1).split())}
        kv["pct_above_before"] = (kv["after_kib"] - kv["before_kib"]) * 100.0 / kv["before_kib"]
        res[a.name] = kv
    return res


def measure_wall(bins, allocs, rounds, scale, timeout):
    """case -> alloc -> [ns/op per round], interleaved rounds."""
    samples, errors = {}, {}
    for rnd in range(rounds):
        for a in allocs:
            if a.name in errors:
                continue
            log("wall round %d/%d: %s" % (rnd + 1, rounds, a.name))
            try:
                r = subprocess.run([bins["malloc_large"], "--scale=%g" % scale], env=a.env(),
                                   capture_output=True, text=True, timeout=timeout)
            except subprocess.TimeoutExpired:
                errors[a.name] = "timed out after %ds" % timeout
                continue
            if r.returncode != 0:
                errors[a.name] = "exit %d: %s" % (r.returncode, tail(r.stderr, 5))
                continue
            for line in r.stdout.splitlines():
                m = re.match(r"RESULT name=(\S+) ns_per_op=([\d.]+)", line)
                if m:
                    samples.setdefault(m.group(1), {}).setdefault(a.name, []).append(
                        float(m.group(2)))
    return samples, errors


# ---- report -----------------------------------------------------------------------------


def machine_info():
    info = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
            "host": platform.node(), "kernel": platform.release(), "cpus": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
        info["loadavg_start"] = open("/proc/loadavg").read().split()[:3]
        info["thp"] = open("/sys/kernel/mm/transparent_hugepage/enabled").read().strip()
    except OSError:
        pass
    r = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                       text=True)
    info["git"] = r.stdout.strip() if r.returncode == 0 else "(no commit)"
    r = subprocess.run(["git", "status", "--porcelain", "--", "src", "include"], cwd=ROOT,
                       capture_output=True, text=True)
    if r.returncode == 0 and r.stdout.strip():
        info["git"] += " + uncommitted changes in src/"
    return info


def f1(x, digits=1):
    return "-" if x is None else "%.*f" % (digits, x)


def cell(d, key, digits=1):
    if d is None:
        return "-"
    if "error" in d:
        return "error"
    v = d.get(key)
    return f1(v, digits) if isinstance(v, (int, float)) or v is None else str(v)


def render(info, args, allocs, counter, churn, purge, rss, wall, wall_err, notes):
    names = [a.name for a in allocs]
    out = ["# vamalloc: large-allocation figures\n"]
    out.append("- date: %s; host: %s (%s, %s CPUs, kernel %s, THP %s)"
               % (info.get("date"), info.get("host"), info.get("cpu", "?"), info.get("cpus"),
                  info.get("kernel"), info.get("thp", "?")))
    out.append("- load average at start: %s" % " ".join(info.get("loadavg_start", ["?"])))
    out.append("- git: %s" % info.get("git"))
    out.append("- system calls counted with %s" % counter.describe())
    out.append("- mode: %s" % ("--quick" if args.quick else "full"))
    out.append("- allocators: " + "; ".join(
        "%s = %s%s" % (a.name, os.path.realpath(a.lib) if a.lib else "system malloc",
                       "".join(" %s=%s" % kv for kv in a.extra_env.items())) for a in allocs))
    out.append("")
    out.append("| figure | " + " | ".join(names) + " |")
    out.append("|---|" + "---:|" * len(names))

    def row(label, per, key, digits=1):
        out.append("| %s | %s |" % (label, " | ".join(cell(per.get(n), key, digits)
                                                      for n in names)))

    for name, warm, n in args.churn_sets:
        per = churn.get(name, {})
        label = {"huge": "5–25 MiB", "mixed": "256 KiB–32 MiB", "span": "256 KiB–2 MiB"}[name]
        out.append("| **mmap+munmap per 1,000 allocs**, %s (target ≤ 10) | %s |" % (
            label, " | ".join("-" if n_ not in per else "error" if "error" in per[n_]
                              else f1(per[n_]["mmap"] + per[n_]["munmap"])
                              for n_ in names)))
        row("&nbsp;&nbsp;madvise per 1,000 allocs, %s" % label, per, "madvise")
        row("&nbsp;&nbsp;mremap per 1,000 allocs, %s" % label, per, "mremap")
    if purge:
        out.append("| **madvise per GiB freed** (gaps of %d ms) | %s |" % (
            args.gap_ms, " | ".join(cell(purge.get(n), "madvise_per_gib") for n in names)))
        row("&nbsp;&nbsp;munmap per GiB freed", purge, "munmap_per_gib")
        row("&nbsp;&nbsp;madvise per GiB purged (vamalloc purged_bytes)", purge,
            "madvise_per_gib_purged")
        row("&nbsp;&nbsp;GiB purged per GiB freed (vamalloc)",
            {k: (dict(v, ratio=v["gib_purged"] / v["gib_freed"]) if "gib_purged" in v else v)
             for k, v in purge.items()}, "ratio", 2)
    if rss:
        out.append("| **RSS %d s after freeing %d MiB**, MiB (before → after) | %s |" % (
            args.rss_sleep_ms // 1000, args.rss_mib, " | ".join(
                "-" if n not in rss else "error" if "error" in rss[n] else
                "%.1f → %.1f" % (rss[n]["before_kib"] / 1024, rss[n]["after_kib"] / 1024)
                for n in names)))
        row("&nbsp;&nbsp;% above RSS before (target ≤ 5%)", rss, "pct_above_before")
        out.append("| &nbsp;&nbsp;KiB above RSS before | %s |" % " | ".join(
            "-" if n not in rss or "error" in rss[n] else
            "%+d" % (rss[n]["after_kib"] - rss[n]["before_kib"]) for n in names))
        out.append("| &nbsp;&nbsp;RSS peak / right after free, MiB | %s |" % " | ".join(
            "-" if n not in rss or "error" in rss[n] else
            "%.0f / %.0f" % (rss[n]["peak_kib"] / 1024, rss[n]["freed_kib"] / 1024)
            for n in names))
    for case, per in wall.items():
        cells = []
        for n in names:
            v = per.get(n)
            if not v:
                cells.append("error" if n in wall_err else "-")
                continue
            med = statistics.median(v)
            cells.append("%.0f (±%.0f%%)" % (med / 1000, (max(v) - min(v)) / med * 50))
        out.append("| **%s µs/op** (median of %d rounds; target ≤ fastest peer) | %s |"
                   % (case, max(len(x) for x in per.values()), " | ".join(cells)))
    out.append("")
    out.append("± is half the (max − min) range over the rounds, in % of the median.  "
               "Per-1,000 figures are (count(2N) − count(N)) / N × 1000 after the same "
               "warm-up; per-GiB figures likewise over the extra rounds.  A negative "
               "figure means the shorter run made more calls than the longer one: that "
               "allocator's own timers, not the workload, decide when it calls (noise).\n")
    out += verdicts(allocs, args, churn, purge, rss, wall)
    if wall_err or notes:
        out.append("## Notes\n")
        for n, e in wall_err.items():
            out.append("- malloc_large under %s failed: %s" % (n, e.splitlines()[0]))
        for n in notes:
            out.append("- " + n.replace("\n", "\n  "))
        out.append("")
    out.append("Command: `bench/large_figures.py%s`" % (" --quick" if args.quick else ""))
    return "\n".join(out) + "\n"


def verdicts(allocs, args, churn, purge, rss, wall):
    subj = [a.name for a in allocs if a.is_vamalloc()]
    peers = [a.name for a in allocs if not a.is_vamalloc()]
    if not subj:
        return []
    out = ["## Targets (vamalloc)\n"]
    for s in subj:
        for name, _, _ in args.churn_sets:
            d = churn.get(name, {}).get(s)
            if d and "error" not in d:
                v = d["mmap"] + d["munmap"]
                out.append("- %s, %s: %.1f mmap+munmap per 1,000 allocs: %s (≤ 10)"
                           % (s, name, v, "MEETS" if v <= 10 else "MISSES"))
        d = rss.get(s)
        if d and "error" not in d:
            out.append("- %s: RSS %d s after free %.1f%% above before: %s (≤ 5%%)"
                       % (s, args.rss_sleep_ms // 1000, d["pct_above_before"],
                          "MEETS" if d["pct_above_before"] <= 5 else "MISSES"))
        for case, per in wall.items():
            if not per.get(s):
                continue
            me = statistics.median(per[s])
            best = [(statistics.median(per[p]), p) for p in peers if per.get(p)]
            if best:
                b, p = min(best)
                out.append("- %s, %s: %.0f µs/op vs fastest peer %s %.0f µs/op (ratio %.2f): %s"
                           % (s, case, me / 1000, p, b / 1000, me / b,
                              "MEETS" if me <= b else "MISSES"))
    out.append("")
    return out


# ---- main ---------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller counts (development)")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved wall-time rounds (>= 5)")
    ap.add_argument("--build-dir", default="build")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--allocators", default=None,
                    help="comma list among glibc,jemalloc,mimalloc,tcmalloc,vamalloc,vamalloc-bg")
    ap.add_argument("--skip", default="", help="comma list among churn,purge,rss,wall")
    ap.add_argument("--timeout", type=int, default=600, help="seconds per program run")
    ap.add_argument("--out", default=os.path.join("bench", "results", "large-latest.md"))
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    build_dir = os.path.join(ROOT, args.build_dir)

    # (set, warm-up, N): N and 2N operations are counted.
    if args.quick:
        args.churn_sets = [("huge", 40, 100), ("mixed", 64, 200), ("span", 64, 300)]
        purge_rounds, purge_mib = 1, 256
        args.wall_scale = 0.2
    else:
        args.churn_sets = [("huge", 100, 300), ("mixed", 128, 600), ("span", 128, 1000)]
        purge_rounds, purge_mib = 2, 512
        args.wall_scale = 0.5
    args.gap_ms = PURGE_DELAY_MS + 200
    args.rss_mib, args.rss_sleep_ms = 1024, 2 * PURGE_DELAY_MS

    notes = []
    bins = build(build_dir, notes, args.no_build)
    vlib = os.path.join(build_dir, "libvamalloc.so")
    allocs = [
        Allocator("glibc", None),
        Allocator("jemalloc", os.path.join(LIBDIR, "libjemalloc.so.2")),
        Allocator("mimalloc", os.path.join(LIBDIR, "libmimalloc.so.2")),
        Allocator("tcmalloc", os.path.join(LIBDIR, "libtcmalloc_minimal.so.4")),
        Allocator("vamalloc", vlib),
        Allocator("vamalloc-bg", vlib, {"VAMALLOC_BACKGROUND": "1"}),
    ]
    if args.allocators:
        keep = args.allocators.split(",")
        allocs = [a for a in allocs if a.name in keep]
    live = []
    for a in allocs:
        if a.lib and not os.path.exists(a.lib):
            notes.append("%s skipped: %s not found" % (a.name, a.lib))
        else:
            live.append(a)
    if "large_syscalls" not in bins:
        skip |= {"churn", "purge", "rss"}
    if "malloc_large" not in bins:
        skip.add("wall")

    info = machine_info()
    counter = Counter()
    if counter.tool is None:
        notes.append("neither perf nor strace works: system-call rows are empty")
        skip |= {"churn", "purge"}
    churn = {} if "churn" in skip else measure_churn(counter, bins, live, args.churn_sets,
                                                     args.timeout)
    if "churn" in skip:
        args.churn_sets = []
    purge = {} if "purge" in skip else measure_purge(counter, bins, live, purge_rounds, purge_mib,
                                                     args.gap_ms, args.timeout)
    for k, v in purge.items():
        if k.endswith(" + vam_collect"):
            if "error" in v:
                notes.append("%s: %s" % (k, v["error"]))
            else:
                notes.append("%s (vam_collect(false) after each gap): %.1f madvise per GiB "
                             "freed, %s per GiB purged" % (
                                 k, v["madvise_per_gib"], f1(v.get("madvise_per_gib_purged"))))
    rss = {} if "rss" in skip else measure_rss(bins, live, args.rss_mib, args.rss_sleep_ms,
                                               args.timeout)
    wall, wall_err = ({}, {}) if "wall" in skip else measure_wall(
        bins, live, max(args.rounds, 1), args.wall_scale, args.timeout)
    for section, per in (("churn", churn), ("purge", purge), ("rss", rss)):
        for k, v in per.items():
            if isinstance(v, dict) and "error" in v:
                notes.append("%s under %s failed: %s" % (section, k, v["error"]))
            elif isinstance(v, dict):
                for kk, vv in v.items():
                    if isinstance(vv, dict) and "error" in vv:
                        notes.append("%s %s under %s failed: %s" % (section, k, kk, vv["error"]))

    md = render(info, args, live, counter, churn, purge, rss, wall, wall_err, notes)
    out = os.path.join(ROOT, args.out)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        f.write(md)
    with open(os.path.splitext(out)[0] + ".json", "w") as f:
        json.dump({"info": info, "quick": args.quick, "counter": counter.tool, "churn": churn,
                   "purge": purge, "rss": rss, "wall": wall, "wall_errors": wall_err,
                   "notes": notes}, f, indent=1, sort_keys=True)
    print(md)
    log("written: %s" % os.path.relpath(out, ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
