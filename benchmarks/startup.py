"""Small jobs, end to end: wall time of rnnlab commands as ratios to `python -c "import torch"`.

Each command is a fresh process (what a user pays); the commands are run in interleaved rounds
(one of each per round) so that load on a shared machine hits all alike, and the median of the
rounds is reported next to its ratio to the torch import measured in the same rounds. Goals
(issue "small jobs fast"): bad input refused in < 0.5x, a 2-epoch run in <= 2x, `analyze` of the
default archive in <= 4x.

    python benchmarks/startup.py                 # 5 rounds
    python benchmarks/startup.py --rounds 9 --markdown
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PY = sys.executable


def commands(work: Path) -> dict[str, tuple[list[str], float | None]]:
    """name -> (argv, goal as a ratio to the torch import, None: no goal)."""
    rnnlab = [PY, "-m", "rnnlab.cli"]
    archive = work / "default.nc"
    return {
        "import torch": ([PY, "-c", "import torch"], None),
        "rnnlab run --help": ([*rnnlab, "run", "--help"], 0.5),
        "run: bad key": ([*rnnlab, "run", "--set", "model.gg=1"], 0.5),
        "run: bad value": ([*rnnlab, "run", "--set", "model.g=inf"], 0.5),
        "run: bad output path": ([*rnnlab, "run", "-o", "/proc/nope/x.nc"], 0.5),
        "analyze: missing file": ([*rnnlab, "analyze", str(work / "missing.nc")], 0.5),
        "info: missing file": ([*rnnlab, "info", str(work / "missing.nc")], 0.5),
        "run --set train.epochs=2": (
            [*rnnlab, "run", "--set", "train.epochs=2", "-o", str(work / "two.nc"),
             "--overwrite", "--quiet"],
            2.0,
        ),  # fmt: skip
        "info default.nc": ([*rnnlab, "info", str(archive)], None),
        "analyze default.nc": (
            [*rnnlab, "analyze", str(archive), "-o", str(work / "report"), "--overwrite",
             "--quiet"],
            4.0,
        ),  # fmt: skip
    }


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--markdown", action="store_true", help="a markdown table")
    parser.add_argument("--only", nargs="*", help="names of the commands to time (and torch)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rnnlab-startup-"))
    try:
        prepare = [PY, "-m", "rnnlab.cli", "run", "-o", str(work / "default.nc"), "--quiet"]
        subprocess.run(prepare, check=True)  # the default archive (and warm kernel caches)
        table = commands(work)
        if args.only:
            table = {k: v for k, v in table.items() if k in args.only or k == "import torch"}
        times: dict[str, list[float]] = {name: [] for name in table}
        for _ in range(args.rounds):
            for name, (argv, _) in table.items():
                times[name].append(timed(argv))
        torch_s = statistics.median(times["import torch"])
        rows = []
        for name, (_, goal) in table.items():
            med = statistics.median(times[name])
            ratio = med / torch_s
            verdict = "" if goal is None else ("ok" if ratio <= goal else "OVER")
            goal_text = "" if goal is None else f"<= {goal:g}x"
            rows.append((name, med, ratio, goal_text, verdict))
        print(f"median of {args.rounds} interleaved rounds; python {sys.version.split()[0]}, "
              f"{os.cpu_count()} cores")  # fmt: skip
        if args.markdown:
            print("| command | median s | ratio to import torch | goal | |")
            print("|---|---|---|---|---|")
            for name, med, ratio, goal, verdict in rows:
                print(f"| `{name}` | {med:.2f} | {ratio:.2f}x | {goal} | {verdict} |")
        else:
            for name, med, ratio, goal, verdict in rows:
                print(f"{name:28s} {med:7.2f} s  {ratio:6.2f}x  {goal:8s} {verdict}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
