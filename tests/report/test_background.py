"""report/background.py: a lazy result computed in a forked process is the result computed here;
its errors, its death and its progress reach the parent; it is not started where unsafe.

Each case runs in a fresh interpreter: a fork needs a process without threads, and this test
process keeps dask's thread pool once anything has computed on it."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from conftest import python_json

PRELUDE = """
import json, os, signal, sys, threading, time
import dask, dask.array as da, numpy as np, xarray as xr
from rnnlab.analysis import analyze, compute
from rnnlab.analysis._common import AnalysisError
from rnnlab.analysis.pipeline import analyze_in_steps
from rnnlab.analysis.report.background import Background
from rnnlab.errors import ReportError

def lazy(n=6):
    x = da.random.default_rng(3).standard_normal((n, 40, 40), chunks=(1, 40, 40))
    sv = da.map_blocks(lambda b: np.linalg.svd(b, compute_uv=False), x, drop_axis=2,
                       dtype=float)
    return xr.Dataset({"sv": (("k", "i"), sv), "total": ((), x.sum())})

def slow(x, seconds=30.0):
    time.sleep(seconds)
    return x

def lazy_calls(fn, n, chunks=1, **kw):
    # a lazy array whose n / chunks tasks call fn (meta given: dask would call fn to infer it)
    return xr.Dataset({"a": ("i", da.ones(n, chunks=chunks).map_blocks(
        fn, dtype=float, meta=np.array((), float), **kw))})

def outcome(job, **kw):
    try:
        job.result(**kw)
    except Exception as err:
        return f"{type(err).__name__}: {err}"
    return "ok"
"""


def _python(code: str) -> dict:
    return python_json(PRELUDE + textwrap.dedent(code), timeout=300)


def test_the_result_is_the_result_computed_here():
    out = _python("""
        job = Background.start(lazy(), "threads")
        got = job.result()
        print(json.dumps({"same": bool(got.identical(compute(lazy(), progress=False))),
                          "progress": job.progress()}))
    """)
    assert out["same"]
    done, total = out["progress"]
    assert done == total > 0  # every task counted


def test_network_analyses_in_the_background_are_those_computed_here(tiny_archive):
    """Forked with the archive open, as `rnnlab analyze` forks it: the same numbers."""
    out = _python(f"""
        import rnnlab
        ds = rnnlab.open_archive([{str(tiny_archive)!r}])
        opts = {{"n_trials": 20}}
        _, later = analyze_in_steps(ds, network=opts)
        job = Background.start(later, "threads")
        here = compute(analyze(ds, network=opts), progress=False)
        got = job.result()
        names = list(got.data_vars)
        same = all(got[n].variable.identical(here[n].variable) for n in names)
        print(json.dumps({{"names": names, "same": same}}))
    """)
    assert "n_fixed_points" in out["names"] and "mse" in out["names"]
    assert out["same"]


def test_forked_before_the_archive_opens_it_computes_what_is_computed_here(tiny_archive):
    """As `rnnlab analyze` forks it: before the archive is opened (it imports torch and the
    kernels meanwhile), then sent the network analyses' graph: the same numbers, and none of
    the network analyses' imports happen here."""
    out = _python(f"""
        import rnnlab
        from rnnlab.analysis.report.command import NETWORK_IMPORTS
        job = Background.fork("threads", NETWORK_IMPORTS)
        ds = rnnlab.open_archive([{str(tiny_archive)!r}])
        opts = {{"n_trials": 20}}
        _, later = analyze_in_steps(ds, network=opts)
        job.submit(later)
        got = job.result()
        imported_here = "torch" in sys.modules
        here = compute(analyze(ds, network=opts), progress=False)
        names = list(got.data_vars)
        same = all(got[n].variable.identical(here[n].variable) for n in names)
        print(json.dumps({{"names": names, "same": same, "torch here": imported_here}}))
    """)
    assert "n_fixed_points" in out["names"] and "mse" in out["names"]
    assert out["same"] and out["torch here"] is False


def test_an_import_that_fails_is_raised_once_the_work_arrives():
    out = _python("""
        job = Background.fork("sync", ("json", "no_such_module_here"))
        job.submit(xr.Dataset({"a": ("i", da.ones(4, chunks=2))}))
        print(json.dumps({"outcome": outcome(job)}))
    """)
    assert out["outcome"] == "ModuleNotFoundError: No module named 'no_such_module_here'"


def test_an_error_in_the_process_is_raised_here():
    out = _python("""
        def fail(x):
            raise AnalysisError("the network diverged at epoch 3")
        job = Background.start(lazy_calls(fail, 4, 2), "sync")
        print(json.dumps({"outcome": outcome(job)}))
    """)
    assert out["outcome"] == "AnalysisError: the network diverged at epoch 3"


def test_a_process_that_dies_is_one_clear_error():
    out = _python("""
        job = Background.start(lazy_calls(slow, 2), "sync")
        time.sleep(0.3)
        os.kill(job.pid, signal.SIGKILL)
        print(json.dumps({"outcome": outcome(job)}))
    """)
    assert out["outcome"] == (
        "ReportError: the process computing the network analyses ended unexpectedly"
    )


@pytest.mark.parametrize(
    "job",
    ['Background.start(lazy_calls(slow, 2), "sync")',  # busy
     'Background.fork("sync", ("json",))'],  # forked early and given no work
)  # fmt: skip
def test_leaving_early_kills_the_process(job):
    out = _python(f"""
        with {job} as job:
            pid = job.pid
        try:
            os.kill(pid, 0)
            alive = True
        except ProcessLookupError:
            alive = False
        print(json.dumps({{"alive": alive}}))
    """)
    assert out["alive"] is False  # killed and reaped


def test_progress_is_shown_while_waiting():
    code = PRELUDE + textwrap.dedent("""
        job = Background.start(lazy_calls(slow, 8, seconds=0.05), "sync")
        job.result(progress=True, interval=0.02)
    """)
    # bytes: text mode would read each \r as a new line
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=300)
    assert res.returncode == 0, res.stderr
    frames = res.stdout.decode().split("\r")
    assert len(frames) >= 3 and all(f.startswith("[") for f in frames[1:])
    assert "| 100% Completed | " in frames[-1] and frames[-1].endswith("\n")
    assert any("% Completed" in f and "100%" not in f for f in frames)  # shown as it goes


def test_not_started_where_a_fork_is_unsafe_or_pointless():
    out = _python("""
        x = lazy(2)
        answers = {"processes": Background.start(x, "processes") is None,
                   "cluster": Background.start(x, "tcp://127.0.0.1:8786") is None,
                   "fork, processes": Background.fork("processes") is None}
        stop = threading.Event()
        thread = threading.Thread(target=stop.wait)
        thread.start()
        answers["thread running"] = Background.start(x, "threads") is None
        stop.set()
        thread.join()
        job = Background.start(x, "sync")
        answers["no thread"] = job is not None and job.result() is not None
        print(json.dumps(answers))
    """)
    assert out == {"processes": True, "cluster": True, "fork, processes": True,
                   "thread running": True, "no thread": True}  # fmt: skip


@pytest.mark.slow
def test_analyze_computes_the_network_analyses_in_a_process_of_their_own(tiny_archive, tmp_path):
    """`analyze_archives` (parallel): the network step runs in a forked process, and the files
    are those of the in-process analysis."""
    out = _python(f"""
        import rnnlab.analysis.report.background as bg
        from rnnlab.analysis.report.command import analyze_archives
        started, sent = [], []
        fork, submit = bg.Background.fork, bg.Background.submit
        bg.Background.fork = classmethod(lambda cls, *a: started.append(1) or fork(*a))
        bg.Background.submit = lambda self, lazy: sent.append(1) or submit(self, lazy)
        analyze_archives([{str(tiny_archive)!r}], {str(tmp_path / "par")!r}, progress=False,
                         parallel=True, n_trials=20, png=False)
        print(json.dumps({{"started": len(started), "sent": len(sent)}}))
    """)
    assert out == {"started": 1, "sent": 1}
    one = _python(f"""
        from rnnlab.analysis.report.command import analyze_archives
        analyze_archives([{str(tiny_archive)!r}], {str(tmp_path / "one")!r}, progress=False,
                         parallel=False, n_trials=20, png=False)
        print(json.dumps({{}}))
    """)
    assert one == {}
    import xarray as xr

    with xr.open_dataset(tmp_path / "par" / "analysis.nc") as a:
        with xr.open_dataset(tmp_path / "one" / "analysis.nc") as b:
            assert a.identical(b) and "n_fixed_points" in a
