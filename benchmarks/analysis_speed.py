"""Lazy analysis speed and memory: dask lowrank_fit over an archive vs the same SVDs in NumPy.

Builds (or reuses) a seeds x epochs x N x N float32 archive with planted rank-2 dJ (default
20 x 100 x 500^2, ~2 GB of dJ; writing it is set-up, not timed), then runs in fresh processes:

  lazy  : rnnlab.open_archive -> lowrank_fit(dJ, rank=2) -> rnnlab.analysis.compute(scheduler)
  eager : read all of dJ into memory, then np.linalg.svd of each matrix (float64) in a loop,
          OpenBLAS with its default thread count (all cores)
  eager1: the same with OPENBLAS_NUM_THREADS=1 (one core; on a busy machine multi-threaded
          OpenBLAS can be several times slower than this)

and prints wall time and peak RSS of each and the lazy/eager ratios. Each mode runs in its own
process so its peak RSS (VmHWM) is its own.

    python benchmarks/analysis_speed.py                        # 20 x 100 x 500, threads
    python benchmarks/analysis_speed.py --seeds 4 --epochs 20  # quick look
    python benchmarks/analysis_speed.py --scheduler processes --epochs-per-task 2 --json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

RANK = 2


def peak_rss_mb() -> float:
    """Peak RSS of this process in MiB: VmHWM on Linux (ru_maxrss would include the parent's RSS
    at fork, which Linux carries across exec), else getrusage."""
    try:
        with open("/proc/self/status") as fh:
            return int(next(x.split()[1] for x in fh if x.startswith("VmHWM"))) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build(path: Path, seeds: int, epochs: int, n: int) -> None:
    """Write the planted archive unless a file with these dims already exists (not timed)."""
    import xarray as xr

    if path.exists():
        with xr.open_dataset(path) as ds:
            want = {"seed": seeds, "epoch": epochs, "neuron": n}
            if all(ds.sizes.get(k) == v for k, v in want.items()):
                return
    from rnnlab.analysis.synthetic import Planted, planted, write_archive

    path.parent.mkdir(parents=True, exist_ok=True)
    p = Planted(n=n, m=(3.0, 2.0), noise=0.5, kappa=0.1, n_input=3, n_output=2)
    t0 = time.perf_counter()
    tmp = path.with_suffix(".partial")
    write_archive(planted(p, n_seed=seeds, epochs=tuple(range(epochs)), spectra=False), tmp)
    os.replace(tmp, path)
    print(
        f"# wrote {path} ({path.stat().st_size / 2**30:.2f} GiB) in "
        f"{time.perf_counter() - t0:.0f} s (set-up, not timed)",
        file=sys.stderr,
    )


def run_lazy(path: Path, scheduler: str, epochs_per_task: int) -> dict:
    import rnnlab
    import rnnlab.analysis as ra
    from rnnlab.analysis.pipeline import group_epochs

    t0 = time.perf_counter()
    ds = group_epochs(rnnlab.open_archive(path), epochs_per_task)
    fit = ra.compute(ra.lowrank_fit(ds["dJ"], rank=RANK), scheduler=scheduler, progress=False)
    wall = time.perf_counter() - t0
    return {
        "wall_s": wall,
        "peak_mb": peak_rss_mb(),
        "m_last": fit.m.isel(epoch=-1).values.tolist(),
    }


def run_eager(path: Path) -> dict:
    import netCDF4
    import numpy as np

    t0 = time.perf_counter()
    with netCDF4.Dataset(path) as nc:
        dj = nc["dJ"][:]  # everything in memory
    dj = np.asarray(dj)
    s, e = dj.shape[:2]
    m = np.empty((s, e, RANK))
    for i in range(s):
        for j in range(e):
            u, sv, vh = np.linalg.svd(dj[i, j].astype(np.float64), full_matrices=False)
            m[i, j] = sv[:RANK]
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "peak_mb": peak_rss_mb(), "m_last": m[:, -1].tolist()}


def child(mode: str, args: argparse.Namespace) -> dict:
    """Run one mode in a fresh interpreter and return its JSON result."""
    cmd = [
        sys.executable,
        __file__,
        "--child",
        mode,
        "--path",
        str(args.path),
        "--scheduler",
        args.scheduler,
        "--epochs-per-task",
        str(args.epochs_per_task),
    ]
    env = dict(os.environ)
    if mode == "eager1":
        env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--path", type=Path, default=None, help="archive to build or reuse")
    ap.add_argument("--scheduler", default="threads", help="threads, processes, distributed")
    ap.add_argument("--epochs-per-task", type=int, default=1, help="matrices per dask task")
    ap.add_argument("--modes", default="lazy,eager,eager1", help="comma list; lazy comes first")
    ap.add_argument("--json", action="store_true", help="print one JSON line")
    ap.add_argument("--child", choices=["lazy", "eager", "eager1"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.path is None:
        args.path = Path("runs/bench") / f"analysis_{args.seeds}x{args.epochs}x{args.n}.nc"
    if args.child:
        res = (
            run_lazy(args.path, args.scheduler, args.epochs_per_task)
            if args.child == "lazy"
            else run_eager(args.path)
        )
        print(json.dumps(res))
        return
    build(args.path, args.seeds, args.epochs, args.n)
    modes = ["lazy"] + [m for m in args.modes.split(",") if m in ("eager", "eager1")]
    runs = {}
    for mode in modes:
        runs[mode] = child(mode, args)
        print(
            f"# {mode}: {runs[mode]['wall_s']:.1f} s, {runs[mode]['peak_mb']:.0f} MB",
            file=sys.stderr,
        )
    size_gb = args.path.stat().st_size / 2**30
    res = {
        "shape": [args.seeds, args.epochs, args.n],
        "archive_gib": round(size_gb, 2),
        "scheduler": args.scheduler,
        "epochs_per_task": args.epochs_per_task,
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
    }
    for mode, r in runs.items():
        res[f"{mode}_wall_s"] = round(r["wall_s"], 1)
        res[f"{mode}_peak_mb"] = round(r["peak_mb"])
    for mode in modes[1:]:
        res[f"wall_lazy_over_{mode}"] = round(runs["lazy"]["wall_s"] / runs[mode]["wall_s"], 2)
        res[f"peak_lazy_over_{mode}"] = round(runs["lazy"]["peak_mb"] / runs[mode]["peak_mb"], 3)
    res["same_m"] = all(
        abs(a - b) < 1e-6
        for mode in modes[1:]
        for a, b in zip(runs["lazy"]["m_last"][0], runs[mode]["m_last"][0], strict=True)
    )
    if args.json:
        print(json.dumps(res))
        return
    print(
        f"archive {args.seeds} seeds x {args.epochs} epochs x N={args.n} "
        f"({size_gb:.2f} GiB), {os.cpu_count()} CPUs, scheduler={args.scheduler}, "
        f"{args.epochs_per_task} matrix/task"
    )
    print(f"{'':8}{'wall (s)':>10}{'peak RSS (MB)':>16}{'lazy/this wall':>16}{'lazy/this RSS':>15}")
    for mode in runs:
        ratio_w = res.get(f"wall_lazy_over_{mode}", 1.0)
        ratio_m = res.get(f"peak_lazy_over_{mode}", 1.0)
        print(
            f"{mode:8}{res[f'{mode}_wall_s']:>10}{res[f'{mode}_peak_mb']:>16}"
            f"{ratio_w:>16}{ratio_m:>15}"
        )
    print(f"same singular values (seed 0, last epoch): {res['same_m']}")


if __name__ == "__main__":
    main()
