"""`rnnlab analyze` renders its report in two plotting processes (report/workers.py): the files
must be those of the in-process path, the parent must never import the plotting libraries, and
a plotting process that dies must end the command with one clear error and no stray process."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import xarray as xr
from conftest import benchmark_module, python_json

from rnnlab.analysis import analyze, compute
from rnnlab.analysis.pipeline import analyze_in_steps, join_results

ROOT = Path(__file__).resolve().parents[2]


# defined first in every `_python` run: whether this process still has a child (not reaped)
CHILDREN_LEFT = """
import os as _os


def children_left() -> bool:
    try:
        _os.waitpid(-1, _os.WNOHANG)
        return True
    except ChildProcessError:
        return False
"""


def _python(code: str, timeout: float = 600) -> dict:
    """`python_json` of `code` after CHILDREN_LEFT (the plotting processes may fork there)."""
    return python_json(CHILDREN_LEFT + textwrap.dedent(code), timeout)


@pytest.mark.slow
def test_parallel_report_is_the_in_process_report(phase_sweep, tmp_path):
    """A sweep (phase plots and PNGs in the first group, network analyses drawn late): the
    plotting processes write the same page, summary, analyses and PNGs as one process does,
    and the parent imports none of HoloViews, bokeh or matplotlib."""
    out = _python(f"""
        import json, sys
        from rnnlab.analysis.report.command import analyze_archives
        analyze_archives([{str(phase_sweep.out)!r}], {str(tmp_path / "par")!r}, progress=False,
                         parallel=True, n_trials=50)
        plotting = sorted(m for m in ("holoviews", "bokeh", "matplotlib") if m in sys.modules)
        analyze_archives([{str(phase_sweep.out)!r}], {str(tmp_path / "one")!r}, progress=False,
                         parallel=False, n_trials=50)
        print(json.dumps({{"plotting": plotting}}))
    """)
    assert out["plotting"] == []
    compare = benchmark_module("compare_reports").compare
    problems = compare(tmp_path / "one", tmp_path / "par", png_tol=0.0)
    assert problems == []
    pngs = sorted(p.name for p in (tmp_path / "par" / "figures").glob("*.png"))
    assert "spectrum.png" in pngs and any(p.startswith("phase_") for p in pngs)


def test_a_plotting_process_that_dies_is_one_clear_error(tiny_archive, tmp_path):
    out = _python(f"""
        import json, os, signal
        import rnnlab
        from rnnlab.analysis import analyze, compute
        from rnnlab.analysis.report.workers import RenderWorkers
        from rnnlab.errors import ReportError
        workers = RenderWorkers.start(png=False)
        ds = rnnlab.open_archive([{str(tiny_archive)!r}])
        results = compute(analyze(ds), progress=False)
        os.kill(workers.pid, signal.SIGKILL)
        try:
            workers.write(ds, results, {str(tmp_path / "r")!r}, png=False)
            error = None
        except ReportError as exc:
            error = str(exc)
        workers.close()
        print(json.dumps({{"error": error, "children_left": children_left()}}))
    """)
    assert out["error"] == "a plotting process of the report ended unexpectedly"
    assert out["children_left"] is False


@pytest.mark.parametrize("figure", ["outlier_re", "outlier_paths", "learning_curve"])
def test_a_figure_that_fails_to_draw_is_its_error(tiny_archive, tmp_path, figure):
    """A figure that raises in either plotting process (outlier_re: the first, early;
    outlier_paths: the second; learning_curve: the first, late) ends `analyze` with that error,
    not a hang (the parent sends the final inputs to a process that has stopped reading), and
    leaves no output and no process."""
    big = tmp_path / "big.nc"  # final inputs far larger than a pipe's buffer
    with xr.open_dataset(tiny_archive) as ds:
        ds.load().assign_attrs(notes="x" * 4_000_000).to_netcdf(big)
    out = _python(
        f"""
        import json
        from rnnlab.analysis.report import build
        from rnnlab.analysis.report.command import analyze_archives

        def broken(*args, **kwargs):
            raise ValueError("this figure cannot be drawn")

        makers = build.figure_makers
        build.figure_makers = lambda *a: {{**makers(*a), {figure!r}: broken}}
        try:
            analyze_archives([{str(big)!r}], {str(tmp_path / "r")!r}, progress=False,
                             parallel=True, n_trials=20)
            error = None
        except RuntimeError as exc:
            error = str(exc)
        print(json.dumps({{"error": error, "children_left": children_left()}}))
    """,
        timeout=120,
    )
    assert "this figure cannot be drawn" in out["error"]
    assert out["children_left"] is False
    assert not (tmp_path / "r").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["big.nc"]  # no staging directory either


def test_no_plotting_processes_where_a_fork_is_unsafe(tiny_archive, tmp_path):
    """Threads running (as in this test process, after dask's thread pool ran): in-process."""
    import threading

    from rnnlab.analysis.report.command import analyze_archives
    from rnnlab.analysis.report.workers import RenderWorkers
    from rnnlab.errors import RnnlabError

    compute(analyze(xr.open_dataset(tiny_archive, chunks={})), progress=False)
    if threading.active_count() == 1:
        pytest.skip("no thread left running here")
    assert RenderWorkers.start() is None
    with pytest.raises(RnnlabError, match="no plotting processes here"):
        analyze_archives([str(tiny_archive)], tmp_path / "r", parallel=True, progress=False)
    assert not (tmp_path / "r").exists()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_the_plotting_processes_yield_to_the_analyses():
    """Both plotting processes run at NICENESS above the parent's niceness (the second inherits
    it from the first), so the analyses they wait for get the CPU first; dask.array, which
    xarray imports in each process, is imported before they are forked."""
    out = _python("""
        import json, os, sys, time
        from pathlib import Path
        from rnnlab.analysis.report.workers import NICENESS, RenderWorkers

        def group(pgid):
            pids = []
            for stat in Path("/proc").glob("[0-9]*/stat"):
                try:
                    fields = stat.read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[2]) == pgid:
                    pids.append(int(stat.parent.name))
            return pids

        workers = RenderWorkers.start(png=True)
        inherited = "dask.array" in sys.modules
        deadline = time.monotonic() + 120
        while len(group(workers.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        pids = group(workers.pid)
        nice = [os.getpriority(os.PRIO_PROCESS, p) for p in pids]
        workers.close()
        print(json.dumps({"mine": os.nice(0), "nice": nice, "step": NICENESS,
                          "inherited": inherited}))
    """)
    assert len(out["nice"]) == 2
    assert out["step"] > 0
    assert out["nice"] == [min(19, out["mine"] + out["step"])] * 2
    assert out["inherited"]  # imported once, before the fork (xarray's arrays need it in each)


def test_analysis_in_two_steps_is_the_analysis(tiny_archive):
    """`analyze_in_steps` + `join_results` give `analyze` exactly: values, attributes, the order
    of variables (analysis.nc is written in that order)."""
    ds = xr.open_dataset(tiny_archive, chunks={})
    opts = {"n_trials": 50}
    whole = compute(analyze(ds, network=opts), progress=False)
    base, later = analyze_in_steps(ds, network=opts)
    assert not set(base.data_vars) & set(later.data_vars)
    joined = join_results(compute(base, progress=False), compute(later, progress=False))
    xr.testing.assert_identical(joined, whole)
    assert list(joined.variables) == list(whole.variables)
    assert all(joined[v].attrs == whole[v].attrs for v in whole.variables)
    alone, none = analyze_in_steps(ds)
    assert none is None and join_results(alone, None) is alone


def test_analyze_runs_with_fewer_garbage_collections(tiny_archive, tmp_path, monkeypatch):
    """`analyze_archives` computes (and forks its plotting processes) with the garbage collector's
    GC_THRESHOLDS, and gives the caller its own thresholds back, also after an error."""
    import gc

    import rnnlab.analysis
    from rnnlab.analysis.report.command import analyze_archives
    from rnnlab.runtime import GC_THRESHOLDS, fewer_collections

    seen = []
    real = rnnlab.analysis.compute

    def spy(*args, **kwargs):
        seen.append(gc.get_threshold())
        return real(*args, **kwargs)

    monkeypatch.setattr(rnnlab.analysis, "compute", spy)
    before = gc.get_threshold()
    assert before != GC_THRESHOLDS
    analyze_archives([str(tiny_archive)], tmp_path / "r", parallel=False, progress=False,
                     network=False, png=False)  # fmt: skip
    assert seen and set(seen) == {GC_THRESHOLDS}
    assert gc.get_threshold() == before
    with pytest.raises(ZeroDivisionError), fewer_collections():
        assert gc.get_threshold() == GC_THRESHOLDS
        _ = 1 / 0
    assert gc.get_threshold() == before


def test_report_inputs_do_not_import_distributed(tiny_archive):
    """Loading the report's inputs from a lazily opened archive computes on dask's threads
    without importing `distributed` (0.1 s) to look for a client that cannot exist; a
    scheduler set in dask's config is left alone."""
    out = _python(f"""
        import json, sys
        import rnnlab
        from rnnlab.analysis import analyze, compute
        from rnnlab.analysis.report.inputs import report_inputs

        ds = rnnlab.open_archive([{str(tiny_archive)!r}])
        results = compute(analyze(ds), progress=False)
        before = "distributed" in sys.modules
        grid, arch, res = report_inputs(ds, results)
        import dask
        from rnnlab.runtime import no_client_lookup

        with dask.config.set(scheduler="synchronous"), no_client_lookup():
            kept = dask.config.get("scheduler")  # a scheduler the user set is theirs
        print(json.dumps({{"before": before, "after": "distributed" in sys.modules,
                          "loaded": all(v.chunks is None for v in arch.data_vars.values()),
                          "kept": kept}}))
    """)
    assert out == {"before": False, "after": False, "loaded": True, "kept": "synchronous"}


def test_plotting_processes_draw_where_priority_cannot_change(tiny_archive, tmp_path):
    """Where lowering the priority is refused (os.nice raises), the plotting processes still
    draw the report, at the parent's priority."""
    out = _python(f"""
        import json, os

        def refuse(increment):
            raise PermissionError("no")

        os.nice = refuse
        from rnnlab.analysis.report.command import analyze_archives
        written = analyze_archives([{str(tiny_archive)!r}], {str(tmp_path / "r")!r},
                                   progress=False, parallel=True, network=False, png=False)
        print(json.dumps({{"files": sorted(written), "left": children_left()}}))
    """)
    assert {"report.html", "summary.md", "analysis"} <= set(out["files"])
    assert not out["left"]
