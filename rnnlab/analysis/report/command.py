"""`rnnlab analyze`: open archives lazily, compute every analysis once, write the report files.

All inputs are checked before the output directory is touched; results are written into a
temporary directory beside it and moved into place file by file, so an interrupted analysis never
leaves a half-written report over a previous one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import rnnlab
from rnnlab.analysis.inloop import DEFAULT_TRIALS
from rnnlab.data.paths import check_report_dir
from rnnlab.errors import RnnlabError


def analyze_archives(
    archives: list[str],
    outdir: str | Path,
    *,
    rank: int = 2,
    clusters: int = 2,
    scheduler: str = "threads",
    png: bool = True,
    overwrite: bool = False,
    progress: bool = True,
    allow_incomplete: bool = False,
    network: bool = True,
    n_trials: int = DEFAULT_TRIALS,
) -> dict[str, Path]:
    """Analyse archives (files or directories) and write report.html, summary.md, analysis.nc.

    `allow_incomplete` also reads unfinished archives (up to their committed records);
    `network` adds the analyses that re-simulate the networks on `n_trials` fresh trials."""
    from rnnlab.analysis import analyze, compute, save_analysis
    from rnnlab.analysis.report.build import write_report

    if rank < 1:
        raise RnnlabError(f"--rank must be >= 1, got {rank}")
    if clusters < 1:
        raise RnnlabError(f"--clusters must be >= 1, got {clusters}")
    if n_trials < 2:
        raise RnnlabError(f"--trials must be >= 2, got {n_trials}")
    outdir = Path(outdir)
    ds = rnnlab.open_archive(archives, allow_incomplete=allow_incomplete)
    if rank > ds.sizes["neuron"]:
        raise RnnlabError(f"--rank {rank} exceeds the number of neurons {ds.sizes['neuron']}")
    check_report_dir(outdir, overwrite)
    opts = {"n_trials": n_trials} if network else False
    results = compute(
        analyze(ds, rank=rank, k=clusters, network=opts), scheduler=scheduler, progress=progress
    )
    outdir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.", dir=outdir.parent))
    try:
        written = write_report(ds, results, staging, png=png, quiet=True)  # we name final paths
        save_analysis(results, staging / "analysis.nc")
        written["analysis"] = staging / "analysis.nc"
        outdir.mkdir(exist_ok=True)
        final: dict[str, Path] = {}
        for key, path in written.items():
            target = outdir / path.relative_to(staging)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
            final[key] = target
        return final
    finally:
        shutil.rmtree(staging, ignore_errors=True)
