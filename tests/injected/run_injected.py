#!/usr/bin/env python3
"""Run a program with the fault-injection build of vamalloc preloaded and a
VAMALLOC_FAULTS spec, then check that it exited 0 and that vamalloc's JSON
statistics show the injected faults really happened (--expect KEY, repeatable:
the counter must be > 0) and that health/counters are sane.

usage: run_injected.py --so LIB --faults SPEC [--expect KEY]... [--env K=V]... -- CMD...
"""
import argparse, json, os, subprocess, sys

ap = argparse.ArgumentParser()
ap.add_argument("--so", required=True)
ap.add_argument("--faults", required=True)
ap.add_argument("--expect", action="append", default=[])
ap.add_argument("--env", action="append", default=[])
ap.add_argument("--compare-plain", action="store_true",
                help="stdout must equal a run without preload and faults")
ap.add_argument("cmd", nargs=argparse.REMAINDER)
a = ap.parse_args()
cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd

env = {k: v for k, v in os.environ.items() if not k.startswith("VAMALLOC_") and k != "LD_PRELOAD"}
plain = None
if a.compare_plain:
    plain = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
env.update({"LD_PRELOAD": a.so, "VAMALLOC_FAULTS": a.faults, "VAMALLOC_STATS": "json"})
for kv in a.env:
    k, v = kv.split("=", 1)
    env[k] = v
r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
stats = []
for line in r.stderr.splitlines():
    if line.startswith('{"vamalloc_version"'):
        stats.append(json.loads(line))
print(f"faults: {a.faults}\nexit: {r.returncode}, stats lines: {len(stats)}")
if r.returncode != 0:
    print("stderr tail:\n" + r.stderr[-3000:])
    sys.exit(f"FAIL: exit {r.returncode} under injected faults")
if plain is not None and r.stdout != plain.stdout:
    sys.exit("FAIL: stdout differs from a plain run")
if not stats:
    sys.exit("FAIL: no vamalloc statistics line (was the library preloaded?)")
total = {}
for s in stats:
    for k, v in s.items():
        if isinstance(v, int):
            total[k] = total.get(k, 0) + v
for key in a.expect:
    print(f"  {key} = {total.get(key, 0)}")
    if total.get(key, 0) <= 0:
        sys.exit(f"FAIL: {key} is 0: the injected fault never reached vamalloc")
for key in ("invalid_frees",):
    if total.get(key, 0):
        sys.exit(f"FAIL: {key} = {total[key]}")
print("  health:", ", ".join(sorted({s.get('health', '?') for s in stats})),
      "| madvise calls/eagain/retries/giveups:",
      total.get("madvise_calls"), total.get("madvise_eagain"), total.get("madvise_retries"),
      total.get("madvise_giveups"), "| mmap/munmap failures:", total.get("mmap_failures"),
      total.get("munmap_failures"), "| enomem_returns:", total.get("enomem_returns"))
print("PASS")
