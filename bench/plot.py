#!/usr/bin/python3
"""Chart for bench/run.py: time and peak RSS of every allocator relative to
mimalloc (or the first allocator, when mimalloc did not run), per workload
and as the geometric mean.

    /usr/bin/python3 bench/plot.py bench/results/latest.json bench/results/latest.png

run.py calls it under Debian's /usr/bin/python3, which has matplotlib when
python3-matplotlib is installed; run.py itself stays standard-library only.
"""
import json
import math
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FixedLocator, FormatStrFormatter, NullFormatter  # noqa: E402

TICKS = [0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0]

COLORS = {"glibc": "#7f7f7f", "jemalloc": "#1f77b4", "mimalloc": "#2ca02c",
          "tcmalloc": "#ff7f0e", "vamalloc": "#d62728"}


def main(src, dst):
    with open(src) as f:
        data = json.load(f)
    s = data["summary"]
    names = s["allocators"]
    base = "mimalloc" if "mimalloc" in names else names[0]
    rows = [r for r in s["workloads"] if base in r["time"]]
    labels = [r["workload"] for r in rows] + ["geomean"]

    fig, axes = plt.subplots(2, 1, figsize=(max(10, 0.9 * len(labels) + 3), 9), sharex=True)
    width = 0.8 / len(names)
    for ax, key, title in ((axes[0], "time", "wall time"), (axes[1], "rss_kib", "peak RSS")):
        for i, n in enumerate(names):
            vals = []
            for r in rows:
                v, b = r[key].get(n), r[key].get(base)
                vals.append(v / b if v and b else float("nan"))
            logs = [math.log(v) for v in vals if v == v and v > 0]
            vals.append(math.exp(sum(logs) / len(logs)) if logs else float("nan"))
            xs = [j + (i - (len(names) - 1) / 2) * width for j in range(len(labels))]
            ax.bar(xs, vals, width, label=n, color=COLORS.get(n))
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(FixedLocator(TICKS))
        ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_ylabel("%s / %s (log)" % (title, base))
        ax.set_title("%s relative to %s (lower is better)" % (title, base))
        ax.grid(axis="y", which="both", alpha=0.3)
    axes[1].set_xticks(range(len(labels)))
    axes[1].set_xticklabels(labels, rotation=35, ha="right")
    axes[0].legend(ncol=len(names), loc="upper left", fontsize="small")
    info = data.get("info", {})
    fig.suptitle("vamalloc benchmarks, %d rounds, %s (%s CPUs), %s"
                 % (data.get("rounds", 0), info.get("host", "?"), info.get("cpus", "?"),
                    info.get("date", "")), fontsize=10)
    fig.tight_layout()
    fig.savefig(dst, dpi=100)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: plot.py RESULTS.json OUT.png")
    main(sys.argv[1], sys.argv[2])
