"""The study, end to end: train every config in configs/, analyse each, and write docs/study.md.

    python study/run.py                       # the documented sizes (CPU: about half an hour)
    python study/run.py --tiny --out /tmp/s --doc /tmp/s/study.md   # the pipeline at toy sizes

Everything goes through rnnlab's own commands (`rnnlab run`, `rnnlab sweep`, `rnnlab analyze`),
as a user would type them; a rerun skips what is finished (complete archives, reports) and
resumes what was interrupted. The numbers in docs/study.md come from the analyses (study/
study_numbers.py), the text around them from study/study_render.py.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from rnnlab.data.paths import partial_path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

# Toy sizes for --tiny (a test of the pipeline, not of the science).
TINY = [
    "seeds=2",
    "model.N=16",
    "task.duration=0.3",
    "task.washout=0.05",
    "task.batch=4",
    "train.epochs=16",
    "record.every=4",
    "record.trajectories_every=8",
    "record.n_eval_trials=2",
    "record.track_k=3",
]


@dataclass(frozen=True)
class Entry:
    """One config of the study: its name, whether it is a sweep, and how --tiny shrinks it."""

    name: str
    sweep: bool = False
    tiny_grid: tuple[str, ...] = ()  # --grid items replacing the sweep's values when tiny
    per_point: bool = False  # analyse each point alone (sweeps whose shapes differ: model.N)


STUDY = [
    Entry("denoise"),
    Entry("track"),
    Entry("denoise_2d"),
    Entry("switch"),
    Entry("linear_denoise"),
    Entry("sgd"),
    Entry("control_regularisers"),
    Entry("control_shuffled"),
    Entry("phase_phi_g", sweep=True, tiny_grid=("model.phi=tanh,linear", "model.g=0.5,1.2")),
    Entry("balance", sweep=True),
    Entry("size", sweep=True, tiny_grid=("model.N=12,16",), per_point=True),
]


def rnnlab(*args: str) -> None:
    """Run an rnnlab command as a user would; stop the study with its message if it fails."""
    cmd = [sys.executable, "-m", "rnnlab.cli", *args]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"study: `rnnlab {' '.join(args)}` failed:\n{result.stderr.strip()}")


def train(entry: Entry, runs: Path, tiny: bool) -> Path:
    """The archive (or sweep directory) of one config; skipped when finished, resumed when not."""
    config = ROOT / "configs" / f"{entry.name}.toml"
    sets = sum((["--set", s] for s in TINY), []) if tiny else []
    if entry.sweep:
        out = runs / entry.name
        grid = sum((["--grid", g] for g in entry.tiny_grid), []) if tiny else []
        if tiny:  # a swept key cannot also be --set: drop those
            swept = {g.split("=")[0] for g in entry.tiny_grid} | swept_keys(config)
            sets = sum((["--set", s] for s in TINY if s.split("=")[0] not in swept), [])
        rnnlab("sweep", str(config), "-o", str(out), "--quiet", *sets, *grid)
        return out
    out = runs / f"{entry.name}.nc"
    if out.exists():
        return out
    partial = partial_path(out)
    if partial.exists():
        rnnlab("run", "--resume", str(partial), "--quiet")
    else:
        rnnlab("run", str(config), "-o", str(out), "--quiet", *sets)
    return out


def swept_keys(config: Path) -> set[str]:
    import tomllib

    return set(tomllib.loads(config.read_text()).get("sweep", {}))


def analyze(entry: Entry, source: Path, reports: Path, tiny: bool) -> list[Path]:
    """The report directories of one config (one per point for `per_point` sweeps)."""
    extra = ["--trials", "64", "--no-png"] if tiny else ["--trials", "400"]
    targets = sorted(source.glob("*.nc")) if entry.per_point else [source]
    out = []
    for target in targets:
        name = entry.name if not entry.per_point else f"{entry.name}/{target.stem}"
        report = reports / name
        if not (report / "analysis.nc").exists():
            rnnlab("analyze", str(target), "-o", str(report), "--quiet", "--overwrite", *extra)
        out.append(report)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="toy sizes: tests the pipeline")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "study", help="runs, reports")
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "study.md")
    parser.add_argument("--only", nargs="*", help="names of configs to (re)do (others: reuse)")
    args = parser.parse_args()
    runs, reports = args.out / "runs", args.out / "reports"
    runs.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    done: dict[str, tuple[Path, list[Path]]] = {}
    for i, entry in enumerate(STUDY, 1):
        if args.only and entry.name not in args.only and (reports / entry.name).exists():
            source = runs / (entry.name if entry.sweep else f"{entry.name}.nc")
            done[entry.name] = (source, analyze(entry, source, reports, args.tiny))
            continue
        t0 = time.perf_counter()
        print(f"[{i}/{len(STUDY)}] {entry.name}: training ...", flush=True)
        source = train(entry, runs, args.tiny)
        print(f"[{i}/{len(STUDY)}] {entry.name}: analysing ...", flush=True)
        done[entry.name] = (source, analyze(entry, source, reports, args.tiny))
        print(
            f"[{i}/{len(STUDY)}] {entry.name}: {time.perf_counter() - t0:.0f} s -> "
            f"{source}, {', '.join(str(r) for r in done[entry.name][1])}",
            flush=True,
        )
    import study_numbers
    import study_render

    print("numbers ...", flush=True)
    facts = study_numbers.collect(done)
    figures = args.doc.parent / "study"
    if figures.exists():
        shutil.rmtree(figures)
    study_render.write(facts, done, args.doc, figures, tiny=args.tiny)
    print(f"wrote {args.doc} and {figures}/ in {time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
