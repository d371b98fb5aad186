"""The archive on disk: plain-xarray readable, self-describing, lazily reopened, safe to kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import tomllib

import dask.array as da
import netCDF4
import numpy as np
import pytest
import xarray as xr
from conftest import tiny_overrides

import rnnlab
from rnnlab.config import load_config
from rnnlab.errors import ArchiveError
from rnnlab.training.run import run


def test_plain_xarray_reads_dims_names_and_attrs(tiny_archive):
    with xr.open_dataset(tiny_archive) as ds:
        assert ds.sizes["seed"] == 2 and ds.sizes["neuron"] == 24 and ds.sizes["ri"] == 2
        assert list(ds.epoch.values) == [0, 4, 8, 12]
        assert list(ds.curve_epoch.values) == list(range(12))
        assert list(ds.traj_epoch.values) == [0, 6, 12]
        assert ds.J.dims == ("seed", "epoch", "neuron", "neuron_pre")
        for name in (
            "J0",
            "J",
            "dJ",
            "B",
            "w",
            "loss",
            "mse",
            "loss_curve",
            "eigvals",
            "eigvals_jac",
            "eigvals_jac0",
            "row_mean",
            "col_mean",
            "traj_rate",
            "traj_output",
            "eval_input",
            "eval_target",
            "tracked",
            "mse_optimal",
        ):
            assert name in ds, name
        for name, var in ds.variables.items():
            if name not in ("input", "output", "run"):
                assert var.attrs.get("long_name") and var.attrs.get("units"), name
        cfg = tomllib.loads(ds.attrs["config"])
        assert cfg["model"]["N"] == 24 and cfg["seeds"] == [0, 1]
        for key in (
            "rnnlab_version",
            "torch_version",
            "numpy_version",
            "xarray_version",
            "created",
            "command",
        ):
            assert ds.attrs[key]
        assert ds.attrs["complete"] == 1
        assert ds.time.attrs["units"] == "s"
        np.testing.assert_allclose(ds.dJ, ds.J - ds.J0, atol=1e-6)
        assert float(abs(ds.dJ.isel(epoch=0)).max()) == 0.0
        assert float(abs(ds.dJ.isel(epoch=-1)).max()) > 0.0
        np.testing.assert_allclose(ds.row_mean, ds.J.mean("neuron_pre"), rtol=1e-5, atol=1e-6)


def test_stored_eigenvalues_are_those_of_the_stored_J(tiny_archive):
    ds = rnnlab.open_archive(tiny_archive)
    assert np.iscomplexobj(ds.eigvals) and ds.eigvals.dims == ("seed", "epoch", "eig")
    J = ds.J.isel(seed=1, epoch=-1).values.astype(float)
    expected = np.sort_complex(np.linalg.eigvals(J))
    np.testing.assert_allclose(
        np.sort_complex(ds.eigvals.isel(seed=1, epoch=-1).values), expected, atol=1e-4
    )
    re = ds.eigvals.real.values
    assert np.all(np.diff(re, axis=-1) <= 1e-6)  # descending real part
    # tanh: the Jacobian at the origin is J - I
    np.testing.assert_allclose(ds.eigvals_jac0.values, ds.eigvals.values - 1, atol=1e-4)


def test_stored_jacobian_spectra_match_the_stored_J_and_mean_state(tiny_archive):
    # the last snapshot's two spectra are computed on two threads (after training), the others
    # one after the other: both must be those of -I + J diag(1 - tanh(h_mean)^2)
    ds = rnnlab.open_archive(tiny_archive)
    for epoch in (0, -1):
        for seed in range(ds.sizes["seed"]):
            snap = ds.isel(seed=seed, epoch=epoch)
            J = snap.J.values.astype(float)
            slope = 1 - np.tanh(snap.h_mean.values.astype(float)) ** 2
            expected = np.linalg.eigvals(J * slope[None, :] - np.eye(J.shape[0]))
            np.testing.assert_allclose(
                np.sort_complex(snap.eigvals_jac.values), np.sort_complex(expected), atol=1e-4
            )


def test_plain_netcdf4_reads_complex_pairs_as_floats(tiny_archive):
    with netCDF4.Dataset(tiny_archive) as nc:
        pairs = nc["eigvals"][:]
        assert pairs.shape[-1] == 2 and pairs.dtype == np.float32
        assert "real, imaginary" in nc["eigvals"].comment


def test_open_archive_is_lazy_and_combines_runs(tiny_archive, tmp_path):
    other = run(
        load_config(None, tiny_overrides(seeds="[5]", name="other")),
        tmp_path / "other.nc",
        progress=False,
    )
    ds = rnnlab.open_archive([tiny_archive, other])
    assert isinstance(ds.dJ.data, da.Array) and isinstance(ds.eigvals.data, da.Array)
    assert ds.dJ.data.chunksize[:2] == (1, 1)
    assert list(ds.seed.values) == [0, 1, 5]
    assert [r.split(":")[0] for r in ds.run.values] == ["default", "default", "other"]
    assert "seed" in ds.indexes  # unique seeds keep their index: .sel(seed=...) works
    single = rnnlab.open_archive(other)
    np.testing.assert_array_equal(ds.J.sel(seed=5).values, single.J.sel(seed=5).values)
    by_dir = rnnlab.open_archive(tmp_path)
    assert list(by_dir.seed.values) == [5]


def test_a_missing_archive_is_also_a_file_not_found_error(tmp_path):
    """A live run's .partial renamed into place between two reads: callers catch it as the
    FileNotFoundError it is (the readers-during-a-write test does)."""
    with pytest.raises(FileNotFoundError, match="no such archive"):
        rnnlab.open_archive(tmp_path / "gone.nc.partial", allow_incomplete=True)


def test_an_unreadable_partial_is_retried_only_while_its_run_holds_the_lock(tmp_path, monkeypatch):
    """A live run may be closing its .partial (HDF5 rewrites the header): the open is retried
    then, and only then; the error still comes once the retries are spent."""
    from rnnlab.data import reader
    from rnnlab.data.paths import OutputLock

    waits = []
    monkeypatch.setattr(reader.time, "sleep", waits.append)
    bad = tmp_path / "x.nc.partial"
    bad.write_bytes(b"not netcdf")
    with pytest.raises(ArchiveError, match="not a readable NetCDF file"):
        rnnlab.open_archive(bad, allow_incomplete=True)
    assert waits == []  # no run holds the lock: at once
    with OutputLock(tmp_path / "x.nc"), pytest.raises(ArchiveError, match="not a readable"):
        rnnlab.open_archive(bad, allow_incomplete=True)
    assert len(waits) == reader.LIVE_RETRIES


def test_open_archive_refuses_bad_inputs(tiny_archive, tmp_path):
    with pytest.raises(ArchiveError, match="no such archive"):
        rnnlab.open_archive(tmp_path / "nope.nc")
    foreign = tmp_path / "foreign.nc"
    xr.Dataset({"x": ("a", [1.0, 2.0])}).to_netcdf(foreign)
    with pytest.raises(ArchiveError, match="not an rnnlab archive"):
        rnnlab.open_archive(foreign)
    text = tmp_path / "text.nc"
    text.write_text("hello")
    with pytest.raises(ArchiveError, match="not a readable NetCDF"):
        rnnlab.open_archive(text)
    longer = run(
        load_config(None, tiny_overrides(**{"train.epochs": 8})), tmp_path / "l.nc", progress=False
    )
    with pytest.raises(ArchiveError, match="schedules differ"):
        rnnlab.open_archive([tiny_archive, longer])


def test_open_archive_runs_with_the_same_seeds_and_name(twin_runs, tmp_path):
    """Every (run, seed) is its own member of `seed`; repeated seeds leave `seed` unindexed."""
    a, b = twin_runs
    ds = rnnlab.open_archive(a.parent)  # both runs: name 'default', seeds 0, 1
    assert ds.sizes["seed"] == 4 and list(ds.seed.values) == [0, 1, 0, 1]
    assert "seed" not in ds.indexes and {"seed", "run"} <= set(ds.coords)
    runs = ds.run.values
    assert runs[0] == runs[1] != runs[2] == runs[3]  # one label per run, distinct runs
    np.testing.assert_allclose(ds.lr.values, [0.005, 0.005, 0.02, 0.02])  # b is the second run
    one = ds.isel(seed=(ds.run == runs[2]).values)  # how a user picks one run's seeds
    assert list(one.seed.values) == [0, 1] and np.allclose(one.lr, 0.02)
    assert not np.allclose(one.loss.values, ds.loss.values[:2])  # other lr: other numbers
    assert isinstance(ds.dJ.data, da.Array) and ds.dJ.data.chunksize[:2] == (1, 1)
    # a copy of a run carries the same run label (and run id): relabelled by its file name
    copy = tmp_path / "copy.nc"
    copy.write_bytes(a.read_bytes())
    both = rnnlab.open_archive([a, copy])
    labels = list(both.run.values)
    assert labels[0] != labels[2] and labels[2].endswith(":copy") and labels[0].endswith(":a")
    # the same file named twice (or through a link) is opened once
    link = tmp_path / "link.nc"
    link.symlink_to(b)
    twice = rnnlab.open_archive([b, b, link])
    assert twice.sizes["seed"] == 2 and "seed" in twice.indexes


def test_run_labels_made_unique_across_files():
    from rnnlab.data.members import unique_run_labels

    got = unique_run_labels([["x", "x"], ["x"], ["y"]], ["a", "b", "c"])
    assert got == [["x:a", "x:a"], ["x:b"], ["y"]]  # only shared labels change
    # same label and same file name (two folders): the file's position is appended
    assert unique_run_labels([["x"], ["x"]], ["a", "a"]) == [["x:a:0"], ["x:a:1"]]


def test_store_and_compression_options(tmp_path):
    base = tiny_overrides(**{"model.N": 48})
    plain = run(load_config(None, base), tmp_path / "plain.nc", progress=False)
    small = run(
        load_config(
            None,
            [*base, "record.store=dJ", "record.compression=zlib", "record.significant_digits=3"],
        ),
        tmp_path / "small.nc",
        progress=False,
    )
    # (the plain archive is contiguous, no chunk indexes: 300 kB here, against 208 kB)
    assert os.path.getsize(small) < 0.75 * os.path.getsize(plain)
    with netCDF4.Dataset(small) as nc:
        assert nc["dJ"].filters()["zlib"] and nc["dJ"].chunking() == [1, 1, 48, 48]
        assert nc.getncattr("complete") == 1
    with xr.open_dataset(small) as s, xr.open_dataset(plain) as p:
        assert "J" not in s and "dJ" in s
        np.testing.assert_allclose(s.dJ, p.dJ, rtol=2e-3, atol=2e-3 * float(abs(p.dJ).max()))


@pytest.mark.slow
def test_killed_run_keeps_finished_records_and_existing_archive(tmp_path, monkeypatch):
    monkeypatch.setenv("HDF5_USE_FILE_LOCKING", "FALSE")  # peek while the writer holds the file
    target = tmp_path / "run.nc"
    target.write_bytes(b"previous archive")
    cmd = [
        sys.executable,
        "-m",
        "rnnlab.cli",
        "run",
        "-o",
        str(target),
        "--overwrite",
        "--quiet",
        *sum(
            (
                ["--set", o]
                for o in tiny_overrides(
                    **{"train.epochs": 100000, "record.every": 5, "model.N": 32}
                )
            ),
            [],
        ),
    ]
    proc = subprocess.Popen(cmd)
    partial = tmp_path / "run.nc.partial"
    deadline = time.time() + 120
    while time.time() < deadline:
        time.sleep(0.5)
        if partial.exists():
            try:
                with netCDF4.Dataset(partial) as nc:
                    if (np.asarray(nc["epoch"][:]) >= 0).sum() >= 3:  # committed snapshots
                        break
            except (OSError, IndexError):
                pass
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert target.read_bytes() == b"previous archive"
    with pytest.raises(ArchiveError, match="incomplete"):
        rnnlab.open_archive(partial)
    ds = rnnlab.open_archive(partial, allow_incomplete=True)
    n = ds.sizes["epoch"]
    assert n >= 3
    assert list(ds.epoch.values[:3]) == [0, 5, 10]
    assert np.all(np.isfinite(ds.J.isel(epoch=slice(0, n - 1)).values))


def test_open_archive_computes_nothing(tiny_archive):
    import dask

    def refuse(*args, **kwargs):
        raise AssertionError("open_archive triggered a dask compute")

    with dask.config.set(scheduler=refuse):
        ds = rnnlab.open_archive([tiny_archive, tiny_archive])
        assert isinstance(ds.eigvals.data, da.Array)
        with pytest.raises(AssertionError, match="triggered a dask compute"):
            ds.eigvals.values  # noqa: B018  (the scheduler is live: computing does fail)


def first_upward_crossing(x: np.ndarray, y: np.ndarray) -> float:
    """Reference: linear interpolation of the first step from below 0 to at or above 0."""
    for k in range(len(x) - 1):
        if y[k] < 0 <= y[k + 1]:
            return float(x[k] + (0 - y[k]) / (y[k + 1] - y[k]) * (x[k + 1] - x[k]))
    return float("nan")


@pytest.mark.slow
def test_crossing_epoch_comes_from_the_exact_snapshot_spectra(tmp_path):
    # g below 1 with an imposed outlier just under the stability line: learning pushes it across
    overrides = tiny_overrides(
        **{
            "model.g": 0.5,
            "model.lowrank.m": 0.95,
            "model.lowrank.overlap": 1.0,
            "train.epochs": 40,
            "record.every": 2,
            "train.lr": 0.02,
        }
    )
    path = run(load_config(None, overrides), tmp_path / "cross.nc", progress=False)
    with xr.open_dataset(path) as ds:
        epochs = ds.epoch.values
        for s in range(ds.sizes["seed"]):
            J = ds.J.isel(seed=s).values.astype(float)
            max_re = np.array([np.linalg.eigvals(m).real.max() - 1.0 for m in J])
            expected = first_upward_crossing(epochs, max_re)
            np.testing.assert_allclose(ds.crossing_epoch.values[s], expected, rtol=1e-4)


class _NoCPut:
    """A netCDF4 variable seen without its C-level `_put` (as in a netCDF4 that lacks it)."""

    def __init__(self, var):
        self.var, self.dtype, self.name = var, var.dtype, var.name

    def __setitem__(self, key, value):
        self.var[key] = value


class _OtherCPut(_NoCPut):
    """... or whose private `_put` takes other arguments."""

    def _put(self, data, start, count, stride, extra):
        raise AssertionError("never reached: the call itself fails")


def test_put_block_writes_what_setitem_writes(tmp_path):
    from rnnlab.data.writer import put_block

    rng = np.random.default_rng(3)
    blocks = [rng.standard_normal((3, 1, 4, 2)) for _ in range(3)]  # float64 into f4: cast
    modes = ("setitem", "put", "fallback", "other")
    paths = {mode: tmp_path / f"{mode}.nc" for mode in modes}
    wrap = {"put": lambda v: v, "fallback": _NoCPut, "other": _OtherCPut}
    for mode, path in paths.items():
        with netCDF4.Dataset(path, "w") as nc:
            for dim, size in (("seed", 3), ("epoch", None), ("n", 4), ("ri", 2)):
                nc.createDimension(dim, size)
            var = nc.createVariable("x", "f4", ("seed", "epoch", "n", "ri"), fill_value=np.nan)
            epoch = nc.createVariable("epoch", "i8", ("epoch",))
            scalar = nc.createVariable("s", "f8", ())
            for i, block in enumerate(blocks):
                if mode == "setitem":
                    var[:, i] = block[:, 0]
                    epoch[i] = 10 * i
                else:
                    put_block(wrap[mode](var), (0, i, 0, 0), block)
                    put_block(wrap[mode](epoch), (i,), [10 * i])
            if mode == "setitem":
                scalar[...] = 2.5
            else:
                put_block(wrap[mode](scalar), (), np.float64(2.5))
    with netCDF4.Dataset(paths["setitem"]) as ref:
        expected = {k: ref[k][...] for k in ("x", "epoch", "s")}
    np.testing.assert_array_equal(expected["x"], np.concatenate(blocks, axis=1).astype("f4"))
    for mode in modes[1:]:
        with netCDF4.Dataset(paths[mode]) as nc:
            assert nc.dimensions["epoch"].size == 3
            for name, want in expected.items():
                np.testing.assert_array_equal(nc[name][...], want)
    with netCDF4.Dataset(paths["put"], "a") as nc, pytest.raises(ValueError, match="shape"):
        put_block(nc["x"], (0, 3), blocks[0])  # a block must name every axis's start


def test_archive_that_cannot_be_created_stops_the_run_within_an_epoch(tmp_path, monkeypatch):
    # the archive is created on the writer thread while training starts; its failure (here
    # after a while, as a slow disk would) must still stop training at once, not at the next
    # snapshot or after the run, and leave no archive behind
    from rnnlab.data.writer import ArchiveWriter
    from rnnlab.training.trainer import Trainer

    steps, failed_at = [], []

    def no_space(self, static):
        time.sleep(0.2)
        failed_at.append(len(steps))
        raise OSError("No space left on device")

    plain_step = Trainer.step

    def counted(self, epoch=None):
        steps.append(1)
        return plain_step(self, epoch)

    monkeypatch.setattr(ArchiveWriter, "create", no_space)
    monkeypatch.setattr(Trainer, "step", counted)
    cfg = load_config(None, tiny_overrides(**{"train.epochs": 3000, "record.every": 1500}))
    with pytest.raises(ArchiveError, match="not enough disk space"):  # one line, not ENOSPC's
        run(cfg, tmp_path / "run.nc", progress=False)
    assert len(steps) - failed_at[0] <= 2 and len(steps) < 1500
    assert not (tmp_path / "run.nc").exists()
