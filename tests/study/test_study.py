"""The study's one command, end to end at toy sizes: every config trained and analysed through
rnnlab's commands, and docs/study.md written from the analyses' numbers."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rnnlab.analysis as ra

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_study_regenerates_its_page_from_its_runs(tmp_path):
    out, doc = tmp_path / "study", tmp_path / "docs" / "study.md"
    cmd = [sys.executable, str(ROOT / "study" / "run.py"), "--tiny", "--out", str(out),
           "--doc", str(doc)]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=1500)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "[11/11] size" in result.stdout and f"wrote {doc}" in result.stdout  # progress, paths
    text = doc.read_text(encoding="utf-8")
    for heading in ("## The answer in short", "## All runs at a glance", "## Per run",
                    "## The linear network and the task-optimal pole", "## SGD against Adam",
                    "## Size: N = 12, 16", "## Phase diagram: φ against g", "## Controls",
                    "## Against Schuessler et al., NeurIPS 2020",
                    "## Where theory and measurement disagree, and why"):  # fmt: skip
        assert heading in text, heading
    # a number of the page against the analysis it comes from: the reference run's row
    res = ra.open_analysis(out / "reports" / "denoise" / "analysis.nc")
    rank = np.nanmedian(res["functional_rank"].isel(eval_epoch=-1).values)
    row = next(ln for ln in text.splitlines() if ln.startswith("| denoise |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert float(cells[3].split(" ")[0]) == pytest.approx(rank, abs=1e-9)
    n_seeds = res.sizes["seed"]
    assert cells[1] == str(n_seeds)
    # every config's archive and report exist; the figures the page links to exist
    for name in ("denoise", "track", "denoise_2d", "switch", "linear_denoise", "sgd",
                 "control_regularisers", "control_shuffled"):  # fmt: skip
        assert (out / "runs" / f"{name}.nc").exists() and (out / "reports" / name).is_dir()
    for link in re.findall(r"\]\(([^)]+\.png)\)", text):
        assert (doc.parent / link).exists(), link
    # a rerun reuses every finished run and report: fast, and the page is the same but its date
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert doc.read_text(encoding="utf-8") == text
