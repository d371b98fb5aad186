"""`rnnlab analyze`: open archives lazily, compute every analysis once, write the report files.

All inputs are checked before the output directory is touched; results are written into a
temporary directory beside it and moved into place file by file, so an interrupted analysis never
leaves a half-written report over a previous one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

import rnnlab
from rnnlab.analysis.inloop import DEFAULT_TRIALS
from rnnlab.analysis.report.background import Background
from rnnlab.analysis.report.workers import RenderWorkers
from rnnlab.data.paths import check_report_dir
from rnnlab.errors import RnnlabError
from rnnlab.runtime import fewer_collections

# What the network analyses import that the others do not (torch, numba and the compiled
# kernels): their process imports these while the archives open (netCDF4 for reopening them).
NETWORK_IMPORTS = ("netCDF4", "torch", "rnnlab.network.tasks", "rnnlab.bptt.forward",
                   "rnnlab.bptt.dynamics", "rnnlab.bptt.loops")  # fmt: skip


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
    parallel: bool | None = None,
) -> dict[str, Path]:
    """Analyse archives (files or directories) and write report.html, summary.md, analysis.nc.

    `allow_incomplete` also reads unfinished archives (up to their committed records);
    `network` adds the analyses that re-simulate the networks on `n_trials` fresh trials.
    `parallel`: render the report in two plotting processes that import the plotting libraries
    while the analyses compute (report/workers.py), and compute the network analyses in a third
    (report/background.py, with a local in-process scheduler); None: where that is safe and
    there are two cores; False: in this process. The files are the same either way."""
    from rnnlab.analysis import analyze, compute, save_analysis
    from rnnlab.analysis.pipeline import analyze_in_steps, join_results

    if rank < 1:
        raise RnnlabError(f"--rank must be >= 1, got {rank}")
    if clusters < 1:
        raise RnnlabError(f"--clusters must be >= 1, got {clusters}")
    if n_trials < 2:
        raise RnnlabError(f"--trials must be >= 2, got {n_trials}")
    outdir = Path(outdir)
    with contextlib.ExitStack() as stack:
        # fewer garbage collections (rnnlab.runtime), here and in the plotting processes, which
        # are forked inside the block and keep its thresholds
        stack.enter_context(fewer_collections())
        workers = RenderWorkers.start(png) if parallel is not False else None
        if parallel and workers is None:
            raise RnnlabError(
                "parallel=True: no plotting processes here (no fork, threads or 1 core)"
            )
        if workers is not None:
            stack.enter_context(workers)
        # the network analyses' process, forked now: it imports torch and the compiled kernels
        # while this one opens the archives and builds the graph (report/background.py)
        network_job = None
        if workers is not None and network:
            network_job = Background.fork(scheduler, NETWORK_IMPORTS)
            if network_job is not None:
                stack.enter_context(network_job)
        ds = rnnlab.open_archive(archives, allow_incomplete=allow_incomplete)
        if rank > ds.sizes["neuron"]:
            raise RnnlabError(f"--rank {rank} exceeds the number of neurons {ds.sizes['neuron']}")
        check_report_dir(outdir, overwrite)
        opts = {"n_trials": n_trials} if network else False
        if workers is None:
            lazy = analyze(ds, rank=rank, k=clusters, network=opts)
            results = compute(lazy, scheduler=scheduler, progress=progress)
        else:  # the figures without the network analyses are drawn while those compute
            base, later = analyze_in_steps(ds, rank=rank, k=clusters, network=opts)
            # ... in a process of their own, where the scheduler is this process's: then they
            # and the others no longer share one core
            if network_job is not None and later is not None:
                network_job.submit(later)
            elif network_job is not None:
                network_job.close()
                network_job = None
            results = compute(base, scheduler=scheduler, progress=progress)
        outdir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.", dir=outdir.parent))
        try:
            if workers is None:
                from rnnlab.analysis.report.build import write_report

                written = write_report(ds, results, staging, png=png, quiet=True)  # paths: below
            else:
                workers.early(ds, results, staging, png=png)
                if later is not None:
                    if progress:
                        print(f"re-simulating the networks on {n_trials} fresh trials",
                              file=sys.stderr)  # fmt: skip
                    if network_job is not None:
                        later = network_job.result(progress=progress)
                    else:
                        later = compute(later, scheduler=scheduler, progress=progress)
                results = join_results(results, later)
                workers.submit(ds, results, staging, png=png)
            save_analysis(results, staging / "analysis.nc")  # meanwhile, with the processes
            if workers is not None:
                written = workers.collect()
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
