"""A sweep's archives open as a grid: swept settings as dimensions beside `seed`, lazily, with NaN
cells where a point has no archive; anything that is not one sweep combines flat as before."""

from __future__ import annotations

import shutil

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr

import rnnlab
import rnnlab.analysis as ra
from rnnlab.config import toml_value
from rnnlab.data import grid
from rnnlab.errors import ArchiveError


def refuse(*args, **kwargs):
    raise AssertionError("a dask compute was triggered")


# -- names ---------------------------------------------------------------------------------------
def test_dim_names_take_the_last_part_unless_it_is_taken():
    names = grid.dim_names(["model.g", "model.phi", "train.lr", "task.kind", "model.N"])
    assert names == {
        "model.g": "g",  # the per-seed setting coordinate g is replaced by the dim
        "model.phi": "phi",
        "train.lr": "lr",
        "task.kind": "kind",
        "model.N": "N",
    }
    # `m` is an analysis result (the low-rank strengths): the last two parts instead
    assert grid.dim_names(["model.lowrank.m"]) == {"model.lowrank.m": "lowrank_m"}
    # a last part two swept keys share names neither; a reserved name is never taken
    assert grid.dim_names(["a.x.m2", "b.m2"]) == {"a.x.m2": "x_m2", "b.m2": "b_m2"}
    assert grid.dim_names(["x.seed", "x.epoch"]) == {"x.seed": "x_seed", "x.epoch": "x_epoch"}
    assert grid.dim_names(["x.b"]) == {"x.b": "x_b"}  # b is model.b's setting coordinate


# -- synthetic archives ----------------------------------------------------------------------------
def fake(point: dict, declared: dict, *, seeds=(0, 1), ident="id1", n=3) -> xr.Dataset:
    """An opened archive of one sweep point: what reader.open_one returns, in small."""
    value = float(point.get("model.g", 1.0))
    k = len(seeds)
    ds = xr.Dataset(
        {
            "J": (("seed", "epoch", "neuron"), da.full((k, 2, n), value, chunks=(1, 1, n))),
            "n_outliers": (("seed", "curve_epoch"), da.ones((k, 4), dtype="i4", chunks=(1, 4))),
            "mse_optimal": ((), value / 10),
        },
        coords={
            "seed": list(seeds),
            "epoch": [0, 5],
            "curve_epoch": np.arange(4),
            "run": ("seed", [f"p{sorted(point.items())}"] * k),
            "g": ("seed", [value] * k),
            "b": ("seed", [1.0] * k),
        },
    )
    text = "".join(f'"{key}" = {toml_value(v)}\n' for key, v in point.items())
    declared_text = "".join(f'"{key}" = {toml_value(v)}\n' for key, v in declared.items())
    ds.attrs = {"sweep_id": ident, "sweep_point": text, "sweep_grid": declared_text, "x": 1}
    return ds


GRID = {"model.g": [1.2, 0.5, 0.8], "model.phi": ["tanh", "relu"]}


def points(skip=()):
    return [
        fake({"model.g": g, "model.phi": phi}, GRID)
        for g in GRID["model.g"]
        for phi in GRID["model.phi"]
        if (g, phi) not in skip
    ]


def test_a_grid_orders_numbers_and_keeps_declared_order_of_words():
    parts = points()
    keys = grid.grid_keys(parts)
    assert keys == ["model.g", "model.phi"]
    with dask.config.set(scheduler=refuse):
        ds = grid.combine_grid(parts, keys)
    assert ds["J"].dims == ("g", "phi", "seed", "epoch", "neuron")
    assert ds["g"].values.tolist() == [0.5, 0.8, 1.2]
    assert ds["phi"].values.tolist() == ["tanh", "relu"]
    assert ds["seed"].values.tolist() == [0, 1] and "seed" in ds.indexes
    assert ds["n_outliers"].dtype == np.int32  # a complete grid keeps integer types
    assert ds["mse_optimal"].dims == ("g", "phi", "seed")  # one per point
    assert isinstance(ds["J"].data, da.Array) and ds["J"].data.chunksize[:4] == (1, 1, 1, 1)
    assert float(ds["J"].sel(g=0.8, phi="relu").isel(seed=1, epoch=0, neuron=0)) == 0.8
    assert ds.attrs["sweep_dims"] == "g phi" and ds.attrs["sweep_keys"] == "model.g model.phi"
    assert ds["g"].attrs["sweep_key"] == "model.g"
    assert ds["b"].dims == ("g", "phi", "seed")  # settings not swept: still there


def test_missing_points_are_nan_cells_even_a_whole_value():
    parts = points(skip={(0.8, "relu"), (1.2, "tanh"), (1.2, "relu")})
    with dask.config.set(scheduler=refuse):
        ds = grid.combine_grid(parts, grid.grid_keys(parts))
    assert ds["g"].values.tolist() == [0.5, 0.8, 1.2]  # 1.2 only declared: all NaN
    J = ds["J"].isel(epoch=0, neuron=0).values
    assert np.isnan(J[1, 1]).all() and np.isnan(J[2]).all() and J[0, 0, 0] == 0.5
    assert ds["run"].values[2, 0, 0] == "" and ds["run"].values[0, 0, 0] != ""
    assert ds["n_outliers"].dtype.kind == "f"  # NaN needs floats

    flat = grid.flatten(ds)  # the members with an archive, along seed
    assert flat.sizes["seed"] == 6 and "seed" not in flat.indexes  # seeds repeat
    assert flat["g"].values.tolist() == [0.5] * 4 + [0.8] * 2
    assert flat["phi"].values.tolist() == ["tanh", "tanh", "relu", "relu", "tanh", "tanh"]
    back = grid.unflatten_like(flat, ds)
    xr.testing.assert_identical(back["J"], ds["J"])
    assert back.attrs["sweep_dims"] == "g phi"


@pytest.mark.parametrize(
    "change",
    ["one part", "two ids", "no attrs", "other seeds", "same point twice", "seeds swept"],
)
def test_what_is_not_one_sweep_is_not_a_grid(change):
    parts = points()
    if change == "one part":
        parts = parts[:1]
    elif change == "two ids":
        parts[0].attrs["sweep_id"] = "id2"
    elif change == "no attrs":
        parts[0].attrs = {}
    elif change == "other seeds":
        parts[0] = fake({"model.g": 1.2, "model.phi": "tanh"}, GRID, seeds=(0, 2))
    elif change == "same point twice":
        parts.append(fake({"model.g": 1.2, "model.phi": "tanh"}, GRID))
    else:
        parts = [fake({"seeds": s, "model.g": 1.0}, {}) for s in ([0, 1], [2, 3])]
    assert grid.grid_keys(parts) is None


def test_list_values_are_labelled_with_plus():
    declared = {"model.train": [["J", "w"], ["J", "w", "B"]]}
    parts = [fake({"model.train": v}, declared) for v in declared["model.train"]]
    ds = grid.combine_grid(parts, grid.grid_keys(parts))
    assert ds["train"].values.tolist() == ["J+w", "J+w+B"]


# -- real sweeps ----------------------------------------------------------------------------------
@pytest.mark.slow
def test_open_a_sweep_as_a_lazy_grid(phase_sweep):
    with dask.config.set(scheduler=refuse):
        ds = rnnlab.open_archive(phase_sweep.out)
        assert isinstance(ds["J"].data, da.Array)
        res = ra.analyze(ds)  # lazy too
        with pytest.raises(AssertionError, match="compute was triggered"):
            ds["J"].values  # noqa: B018
    try:
        assert ds["J"].dims == ("g", "phi", "seed", "epoch", "neuron", "neuron_pre")
        assert ds["g"].values.tolist() == [0.5, 1.5]
        assert ds["phi"].values.tolist() == ["tanh", "relu"]
        one = ds["J"].sel(g=1.5, phi="relu")
        assert one.dims == ("seed", "epoch", "neuron", "neuron_pre")
        J = one.isel(epoch=-1).values
        runs = ds["run"].sel(g=1.5, phi="relu").values.tolist()
        assert res["m"].dims[:3] == ("g", "phi", "seed")
        assert ds["mse_optimal"].dims == ("g", "phi", "seed")
    finally:
        ds.close()
    path = phase_sweep.out / "default_g=1.5_phi=relu.nc"
    with rnnlab.open_archive(path) as single:  # one archive: a run, as before
        assert "g" not in single.dims and single["run"].values.tolist() == runs
        np.testing.assert_array_equal(single["J"].isel(epoch=-1).values, J)


@pytest.mark.slow
def test_an_incomplete_sweep_has_nan_cells(phase_sweep, tmp_path):
    for path in sorted(phase_sweep.out.iterdir())[:3]:
        shutil.copy(path, tmp_path)
    with rnnlab.open_archive(tmp_path) as ds:
        missing = ds["mse"].sel(g=1.5, phi="tanh").values
        present = ds["mse"].sel(g=1.5, phi="relu").values
        assert np.isnan(missing).all() and np.isfinite(present).all()
        assert ds["run"].sel(g=1.5, phi="tanh").values.tolist() == ["", ""]


@pytest.mark.slow
def test_other_archives_in_the_folder_combine_flat(phase_sweep, tiny_archive, tmp_path):
    for path in sorted(phase_sweep.out.iterdir())[:2]:
        shutil.copy(path, tmp_path)
    shutil.copy(tiny_archive, tmp_path / "other.nc")
    with rnnlab.open_archive(tmp_path) as ds:
        assert ds["J"].dims[0] == "seed" and ds.sizes["seed"] == 6
        assert "sweep_dims" not in ds.attrs


@pytest.mark.slow
def test_shape_changing_sweeps_say_why_they_cannot_combine(tmp_path):
    from conftest import tiny_overrides

    from rnnlab.training.sweep import sweep

    sweep(None, tiny_overrides(**{"train.epochs": 2}), ["model.N=8,9"], tmp_path, progress=False)
    with pytest.raises(ArchiveError, match=r"dimension 'neuron' differs .*swept keys model.N"):
        rnnlab.open_archive(tmp_path)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Mean of empty slice")  # crossing epochs never reached
def test_swept_dims_survive_compute_save_open_and_across_seeds(phase_sweep, tmp_path):
    with rnnlab.open_archive(phase_sweep.out) as ds:
        res = ra.compute(ra.analyze(ds), progress=False)
    assert res["crossing_epoch"].dims == ("g", "phi", "seed")
    path = ra.save_analysis(res, tmp_path / "analysis.nc")
    back = ra.open_analysis(path)
    assert back["m"].dims[:3] == ("g", "phi", "seed")
    assert back["phi"].values.tolist() == ["tanh", "relu"]
    np.testing.assert_allclose(back["m"].values, res["m"].values)
    np.testing.assert_allclose(back["outlier"].values, res["outlier"].values)
    summary = ra.across_seeds(back)
    assert summary["m"].dims == ("g", "phi", "epoch", "rank", "stat")
    mean = summary["crossing_epoch"].sel(stat="mean").values
    np.testing.assert_allclose(mean, np.nanmean(res["crossing_epoch"].values, axis=-1))
    xr.testing.assert_identical(ra.across_seeds(back, by="g"), summary)
    back.close()
