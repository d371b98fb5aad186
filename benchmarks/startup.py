"""Small jobs, end to end: wall time of rnnlab commands as ratios to `python -c "import torch"`.

Each command is a fresh process (what a user pays); the commands are run in interleaved rounds
(one of each per round) so that load on a shared machine hits all alike, and the median of the
rounds is reported next to its ratio to the torch import measured in the same rounds. Goals
(issue "small jobs fast"): bad input refused in < 0.5x, a 2-epoch run in <= 2x, `analyze` of the
default archive in <= 4x.

    python benchmarks/startup.py                 # 5 rounds
    python benchmarks/startup.py --rounds 9 --markdown
    python benchmarks/startup.py --before ../old-checkout   # that tree's rnnlab too, interleaved

With `--before DIR` every command also runs with DIR first on PYTHONPATH (a checkout of an older
rnnlab, e.g. `git worktree add --detach ../old COMMIT`), in the same rounds, so the table shows
both trees under the same load; each tree analyses its own default archive.
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
    analyze = [*rnnlab, "analyze", str(archive), "-o"]
    quiet = ["--overwrite", "--quiet"]
    return {
        "import torch": ([PY, "-c", "import torch"], None),
        "rnnlab run --help": ([*rnnlab, "run", "--help"], 0.5),
        "run: bad key": ([*rnnlab, "run", "--set", "model.gg=1"], 0.5),
        "run: bad value": ([*rnnlab, "run", "--set", "model.g=inf"], 0.5),
        "run: bad output path": ([*rnnlab, "run", "-o", "/proc/nope/x.nc"], 0.5),
        "analyze: missing file": ([*rnnlab, "analyze", str(work / "missing.nc")], 0.5),
        "info: missing file": ([*rnnlab, "info", str(work / "missing.nc")], 0.5),
        "run --set train.epochs=2": (
            [*rnnlab, "run", "--set", "train.epochs=2", "-o", str(work / "two.nc"), *quiet],
            2.0,
        ),
        "info default.nc": ([*rnnlab, "info", str(archive)], None),
        "analyze default.nc": ([*analyze, str(work / "report"), *quiet], 4.0),
        # the same without the analyses that re-simulate the networks (torch, fresh trials,
        # fixed points): what `analyze` did when the goals were set; no goal of its own
        "analyze --no-network": ([*analyze, str(work / "report-nn"), *quiet, "--no-network"], None),
    }


def timed(argv: list[str], env: dict[str, str] | None, cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, env=env,
                   cwd=cwd)  # fmt: skip
    return time.perf_counter() - start


def tree_env(tree: Path | None) -> dict[str, str] | None:
    """The environment that imports rnnlab from `tree` (None: this interpreter's own rnnlab)."""
    if tree is None:
        return None
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tree), env.get("PYTHONPATH", "")]))
    return env


def measure(
    trees: dict[str, Path | None], rounds: int, only: list[str] | None, root: Path
) -> dict[str, dict[str, list[float]]]:
    """tree label -> command name -> wall times, the trees and commands interleaved per round."""
    tables = {}
    for label, tree in trees.items():
        work = root / label
        work.mkdir()
        prepare = [PY, "-m", "rnnlab.cli", "run", "-o", str(work / "default.nc"), "--quiet"]
        # the archive and warm kernel caches; run outside any checkout (`python -m` puts the
        # working directory first on sys.path, which would shadow PYTHONPATH's tree)
        subprocess.run(prepare, check=True, env=tree_env(tree), cwd=root)
        table = commands(work)
        if only:
            table = {k: v for k, v in table.items() if k in only or k == "import torch"}
        tables[label] = table
    times = {label: {name: [] for name in table} for label, table in tables.items()}
    for _ in range(rounds):
        for name in tables[next(iter(tables))]:
            for label, table in tables.items():
                argv = table[name][0]
                times[label][name].append(timed(argv, tree_env(trees[label]), root))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--markdown", action="store_true", help="a markdown table")
    parser.add_argument("--only", nargs="*", help="names of the commands to time (and torch)")
    parser.add_argument("--before", type=Path, help="an older rnnlab checkout to time alongside")
    args = parser.parse_args()
    trees: dict[str, Path | None] = {"now": None}
    if args.before is not None:
        if not (args.before / "rnnlab" / "__init__.py").is_file():
            parser.error(f"--before: no rnnlab package in {args.before}")
        trees = {"before": args.before.resolve(), "now": None}
    root = Path(tempfile.mkdtemp(prefix="rnnlab-startup-"))
    try:
        times = measure(trees, args.rounds, args.only, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    goals = {name: goal for name, (_, goal) in commands(root).items()}
    medians = {t: {n: statistics.median(v) for n, v in ts.items()} for t, ts in times.items()}
    torch_s = {t: m["import torch"] for t, m in medians.items()}
    print(f"median of {args.rounds} interleaved rounds; python {sys.version.split()[0]}, "
          f"{os.cpu_count()} cores")  # fmt: skip
    labels = list(trees)
    head = " | ".join(f"{t} s | {t} ratio" for t in labels)
    if args.markdown:
        print(f"| command | {head} | goal | |")
        print("|---|" + "---|---|" * len(labels) + "---|---|")
    else:
        print(f"{'':28s} " + "  ".join(f"{t:>17s}" for t in labels))
    for name in medians["now"]:
        goal = goals[name]
        ratio = medians["now"][name] / torch_s["now"]
        verdict = "" if goal is None else ("ok" if ratio <= goal else "OVER")
        goal_text = "" if goal is None else f"<= {goal:g}x"
        cells = [(medians[t][name], medians[t][name] / torch_s[t]) for t in labels]
        if args.markdown:
            body = " | ".join(f"{m:.2f} | {r:.2f}x" for m, r in cells)
            print(f"| `{name}` | {body} | {goal_text} | {verdict} |")
        else:
            body = "  ".join(f"{m:7.2f} s {r:6.2f}x" for m, r in cells)
            print(f"{name:28s} {body}  {goal_text:8s} {verdict}")


if __name__ == "__main__":
    main()
