"""Wall time of an 8-point sweep on a LocalCluster of 1 and 2 workers against the same points run
one after another in one process, side by side with their ratios (docs/scaling.md).

Every mode runs in a fresh process (after one warm-up run that fills numba's kernel cache), on
the same 8 configs (`model.g` over 8 values; DEFAULT_SET, or --set) and writes real archives into
a temporary directory. Timed: from the first run (or the sweep call, so a cluster's start and
shutdown count) to the last archive closed; imports are not timed. The modes are interleaved
and repeated (--repeats), so drifting load on a shared machine hits all of them; the table shows
the median and the minimum over repeats, and the ratio of medians to `serial`.

    python benchmarks/sweep_scaling.py [--points 8] [--repeats 3] [--set KEY=VALUE ...]
                                       [--modes ...] [--json]

Modes: `serial` (one process, torch's default threads), `serial-1t` (one process, one torch
thread: the work of one worker), `workers-1`, `workers-2` (rnnlab.training.sweep.sweep on a
LocalCluster of that many one-thread worker processes).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODES = ("serial", "serial-1t", "workers-1", "workers-2")
DEFAULT_SET = [
    "seeds=2",
    "model.N=64",
    "train.epochs=400",
    "record.every=50",
    "record.trajectories_every=300",
]


def grid(points: int) -> list[str]:
    values = [round(0.5 + 0.1 * k, 2) for k in range(points)]
    return [f"model.g={','.join(str(v) for v in values)}"]


def one(mode: str, overrides: list[str], points: int, out: Path) -> float:
    """Run one mode in this process; its wall time in seconds."""
    import torch

    from rnnlab.training.sweep import plan, run_point, sweep

    if mode.startswith("workers-"):
        start = time.perf_counter()
        sweep(None, overrides, grid(points), out, n_workers=int(mode[8:]), progress=False)
        return time.perf_counter() - start
    if mode == "serial-1t":
        torch.set_num_threads(1)
    planned = plan(None, overrides, grid(points), out)
    threads = torch.get_num_threads()
    start = time.perf_counter()
    for p in planned:
        run_point(p.cfg, str(p.path), p.attrs, False, "benchmark")
        torch.set_num_threads(threads)  # (run_point sets one thread, as on a worker)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--set", dest="overrides", action="append", default=None)
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--json", action="store_true", help="print the timings as JSON too")
    parser.add_argument("--one", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    overrides = DEFAULT_SET if args.overrides is None else args.overrides
    if args.one:  # a child: one mode, its time on stdout
        print(one(args.one, overrides, args.points, Path(args.out)))
        return
    base = [sys.executable, __file__, "--points", str(args.points)]
    base += [a for o in overrides for a in ("--set", o)]
    times: dict[str, list[float]] = {mode: [] for mode in args.modes}
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        warm = [*base[:2], "--points", "1", *base[4:], "--one", "serial", "--out", f"{tmp}/warm"]
        subprocess.run(warm, check=True, capture_output=True)  # kernels compiled and cached
        for rep in range(args.repeats):
            for mode in args.modes:
                res = subprocess.run(
                    [*base, "--one", mode, "--out", f"{tmp}/{mode}-{rep}"],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                times[mode].append(float(res.stdout.strip().splitlines()[-1]))
                print(f"{mode}: {times[mode][-1]:.1f} s", file=sys.stderr, flush=True)
                load.append(os.getloadavg()[0])
    median = {mode: statistics.median(t) for mode, t in times.items()}
    ref = median.get("serial", next(iter(median.values())))
    print(f"{args.points} points, --set {' '.join(overrides)}; {os.cpu_count()} CPUs, "
          f"1-min load {min(load):.1f}-{max(load):.1f}; {args.repeats} repeats")  # fmt: skip
    print(f"{'mode':12s}{'median s':>10s}{'min s':>8s}{'s/point':>9s}{'vs serial':>11s}")
    for mode, t in times.items():
        m = median[mode]
        print(f"{mode:12s}{m:10.1f}{min(t):8.1f}{m / args.points:9.2f}{m / ref:10.2f}x")
    if args.json:
        print(json.dumps(times))


if __name__ == "__main__":
    main()
