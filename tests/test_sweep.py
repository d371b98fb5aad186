"""Sweeps: grid parsing, validation before any run, and a real LocalCluster sweep."""

from __future__ import annotations

import pytest
from conftest import tiny_overrides

import rnnlab
from rnnlab.errors import ConfigError
from rnnlab.sweep import grid_points, parse_grid, plan, sweep


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


@pytest.mark.slow
def test_sweep_on_a_local_cluster_writes_one_archive_per_point(tmp_path):
    paths = sweep(
        None,
        tiny_overrides(**{"train.epochs": 4}),
        ["model.g=0.5,1.5"],
        tmp_path / "sweep",
        n_workers=2,
        progress=False,
    )
    assert [p.name for p in paths] == ["default_g=0.5.nc", "default_g=1.5.nc"]
    ds = rnnlab.open_archive(tmp_path / "sweep")
    assert sorted(set(ds.g.values.tolist())) == [0.5, 1.5] and ds.sizes["seed"] == 4
