"""Sweeps: grid parsing, validation before any run, and a real LocalCluster sweep."""

from __future__ import annotations

import subprocess
import sys

import pytest
import xarray as xr
from conftest import tiny_overrides

import rnnlab
from rnnlab.errors import ConfigError
from rnnlab.training.sweep import grid_points, parse_grid, plan, sweep


def test_grid_is_a_cartesian_product():
    grid = parse_grid(["model.g=0.5,1.5", "task.kind=track,denoise,switch"])
    points = grid_points(grid)
    assert len(points) == 6
    assert ["model.g=0.5", "task.kind=switch"] in points
    assert parse_grid(["seeds=[0,1];[2]"]) == [("seeds", ["[0,1]", "[2]"])]


def test_every_point_is_validated_before_any_run(tmp_path):
    with pytest.raises(ConfigError, match="model.N"):
        plan(None, tiny_overrides(), ["model.N=8,0"], tmp_path)
    with pytest.raises(ConfigError, match="--grid"):
        plan(None, [], ["model.g"], tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """A real sweep over g on a LocalCluster: 2 runs, each with seeds 0 and 1."""
    paths = sweep(
        None,
        tiny_overrides(**{"train.epochs": 4}),
        ["model.g=0.5,1.5"],
        tmp_path_factory.mktemp("sweep") / "sweep",
        n_workers=2,
        progress=False,
    )
    return paths


@pytest.mark.slow
def test_sweep_on_a_local_cluster_writes_one_archive_per_point(swept):
    assert [p.name for p in swept] == ["default_g=0.5.nc", "default_g=1.5.nc"]
    ds = rnnlab.open_archive(swept[0].parent)
    assert sorted(set(ds.g.values.tolist())) == [0.5, 1.5] and ds.sizes["seed"] == 4


@pytest.mark.slow
def test_analyze_a_sweep_directory(swept, tmp_path):
    """`rnnlab analyze runs/sweep` as in the README: every run has seeds 0, 1."""
    out = tmp_path / "report"
    res = subprocess.run(
        [sys.executable, "-m", "rnnlab.cli", "analyze", str(swept[0].parent), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr
    for name in ("report.html", "summary.md", "analysis.nc", "figures/spectrum.png"):
        assert (out / name).stat().st_size > 0, name
    with xr.open_dataset(out / "analysis.nc") as results:
        assert results.seed.values.tolist() == [0, 1, 0, 1]
        assert sorted(set(results.g.values.tolist())) == [0.5, 1.5]
    summary = (out / "summary.md").read_text()
    assert "Seeds: 4 from 2 runs." in summary
