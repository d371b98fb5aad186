"""`rnnlab analyze` end to end on real archives, as a user runs it."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr


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
    again = rnnlab("analyze", str(tiny_archive), "-o", str(out), "--quiet")
    assert again.returncode == 2 and "--overwrite" in again.stderr
    before = (out / "summary.md").read_bytes()
    assert (out / "summary.md").read_bytes() == before


def test_analyze_refuses_a_missing_archive_before_touching_output(tmp_path):
    res = rnnlab("analyze", str(tmp_path / "none.nc"), "-o", str(tmp_path / "r"))
    assert res.returncode == 2 and "no such archive" in res.stderr
    assert not (tmp_path / "r").exists()
