"""`rnnlab analyze` end to end on real archives, as a user runs it."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr
from test_cli import partial_copy


def rnnlab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rnnlab.cli", *args], capture_output=True, text=True, timeout=600
    )


@pytest.mark.slow
def test_analyze_writes_report_summary_and_results(tiny_archive, tmp_path):
    out = tmp_path / "report"
    res = rnnlab("analyze", str(tiny_archive), "-o", str(out), "--quiet")
    assert res.returncode == 0, res.stderr
    html = (out / "report.html").read_text()
    assert "<html" in html.lower()
    tag_url = r"""<(script|link|img|iframe)\b[^>]*\b(src|href)\s*=\s*["']?https?://"""
    assert re.search(tag_url, html) is None  # no tag loads anything from the network
    summary = (out / "summary.md").read_text()
    assert "seed" in summary and "|" in summary
    with xr.open_dataset(out / "analysis.nc") as results:
        assert {"m", "explained", "u", "v"} <= set(results.data_vars)
        assert results.sizes["seed"] == 2
        frac = results["explained_cum"].isel(rank=-1).values
        assert np.all(np.isnan(frac[:, 0]))  # dJ = 0 at epoch 0: nothing to explain
        assert np.all((frac[:, 1:] > 0) & (frac[:, 1:] <= 1 + 1e-6))
    with xr.open_dataset(out / "analysis.nc") as results:  # the in-loop analyses, by default
        assert {"mse", "functional_rank", "shuffle_lost", "ladder_from_rank"} <= set(results)
        assert {"n_fixed_points", "lambda_task"} <= set(results)
        assert results["mse"].attrs["n_trials"] == 400
    assert "## Verdict (n = 2 seeds)" in summary
    again = rnnlab("analyze", str(tiny_archive), "-o", str(out), "--quiet")
    assert again.returncode == 2 and "--overwrite" in again.stderr
    before = (out / "summary.md").read_bytes()
    assert (out / "summary.md").read_bytes() == before


def test_analyze_refuses_a_missing_archive_before_touching_output(tmp_path):
    res = rnnlab("analyze", str(tmp_path / "none.nc"), "-o", str(tmp_path / "r"))
    assert res.returncode == 2 and "no such archive" in res.stderr
    assert not (tmp_path / "r").exists()


def test_analyze_of_an_incomplete_archive_names_the_cli_flag(tiny_archive, tmp_path):
    partial = partial_copy(tiny_archive, tmp_path / "x.nc.partial")
    res = rnnlab("analyze", str(partial), "-o", str(tmp_path / "r"))
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rnnlab: error:")
    assert "pass --allow-incomplete (Python: allow_incomplete=True)" in lines[0]
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_analyze_allow_incomplete_reads_an_unfinished_archive(tiny_archive, tmp_path):
    partial = partial_copy(tiny_archive, tmp_path / "x.nc.partial")
    out = tmp_path / "r"
    res = rnnlab(
        "analyze", "--allow-incomplete", str(partial), "-o", str(out), "--no-png", "--no-network"
    )
    assert res.returncode == 0, res.stderr
    with xr.open_dataset(out / "analysis.nc") as results:  # --no-network: no re-simulation
        assert "mse" not in results and "n_fixed_points" not in results
        assert "ladder_from_rank" in results  # NumPy only: always there
    assert f"wrote {out / 'summary.md'}" in res.stdout
    with xr.open_dataset(out / "analysis.nc") as results:
        assert results.sizes["seed"] == 2


@pytest.mark.slow
def test_analyze_a_directory_of_runs_sharing_seeds(twin_runs, tmp_path):
    """Two runs with the same name and seeds, as a directory, and one file named twice."""
    a, _ = twin_runs
    out = tmp_path / "both"
    res = rnnlab("analyze", str(a.parent), "-o", str(out), "--quiet", "--no-png")
    assert res.returncode == 0, res.stderr
    with xr.open_dataset(out / "analysis.nc") as results:
        assert results.sizes["seed"] == 4 and len(set(results.run.values.tolist())) == 2
    summary = (out / "summary.md").read_text()
    assert "Seeds: 4 from 2 runs." in summary and "| run | seed |" in summary
    twice = rnnlab("analyze", str(a), str(a), "-o", str(tmp_path / "twice"), "--quiet", "--no-png")
    assert twice.returncode == 0, twice.stderr  # the same file named twice is analysed once
    with xr.open_dataset(tmp_path / "twice" / "analysis.nc") as results:
        assert results.sizes["seed"] == 2
