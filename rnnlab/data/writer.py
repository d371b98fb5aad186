"""Incremental, crash-safe archive writer (netCDF4-python, unlimited epoch dims, sync per snapshot).

Measured facts this builds on: xarray's `to_netcdf(mode="a")` cannot append along a dimension;
netCDF4 with an unlimited `epoch` and `sync()` after each snapshot survived `kill -9` with every
record intact (h5netcdf did not). The file is written as PATH.partial and renamed to PATH when the
run completes, so an existing archive is never half-overwritten.
"""

from __future__ import annotations

import os
import queue
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import netCDF4
import numpy as np

from rnnlab.blas import set_blas_threads
from rnnlab.config import to_toml
from rnnlab.data.ri import pairs
from rnnlab.data.schema import COMPLEX_DIM, COORDS, SCHEMA_VERSION, SEED_SETTINGS, VARIABLES
from rnnlab.errors import ArchiveError
from rnnlab.spectra import crossing_epoch, dphi_at_origin, dphi_numpy, jacobian, sorted_eigvals

PARTIAL_SUFFIX = ".partial"


def check_output_path(path: str | Path, overwrite: bool) -> Path:
    """Refuse an existing archive (without overwrite) or an unwritable place, touching nothing."""
    path = Path(path)
    if path.is_dir():
        raise ArchiveError(f"output path {path} is a directory; give a file name like runs/x.nc")
    if path.exists() and not overwrite:
        raise ArchiveError(f"archive {path} already exists; pass --overwrite to replace it")
    blocked = unwritable_ancestor(path.parent)
    if blocked is not None:
        raise ArchiveError(f"cannot write archive {path}: {blocked} is not a writable directory")
    if path.exists() and not os.access(path, os.W_OK):
        raise ArchiveError(f"cannot replace archive {path}: it is not writable")
    return path


def unwritable_ancestor(directory: Path) -> Path | None:
    """The nearest existing ancestor of `directory` (itself included) if files cannot be created
    there, else None: what would stop `mkdir -p directory` and a file in it."""
    ancestor = directory.resolve()
    while not ancestor.exists():
        ancestor = ancestor.parent
    return None if ancestor.is_dir() and can_create_in(ancestor) else ancestor


def can_create_in(directory: Path) -> bool:
    """Probe by creating (and at once removing) a file: os.access lies for root and for /proc."""
    try:
        with tempfile.TemporaryFile(dir=directory):
            return True
    except OSError:
        return False


def put_block(var: netCDF4.Variable, start: tuple[int, ...], block: Any) -> None:
    """var[start : start + block.shape] = block, through the C-level put that netCDF4's
    __setitem__ ends in (Variable._put). __setitem__'s Python-side indexing cost 100-600 us per
    call here, nearly all of it holding the GIL that the training thread needs; _put cost 10-80
    us. _put is private: where a netCDF4 version lacks it or calls it differently (TypeError,
    raised before anything is written), __setitem__ does the same write."""
    data = np.asarray(block, dtype=var.dtype, order="C")
    if data.ndim != len(start):
        raise ValueError(f"{var.name}: block of shape {data.shape} for start {start}")
    put = getattr(var, "_put", None)
    if put is not None:
        try:
            put(data, list(start), list(data.shape), [1] * data.ndim)
            return
        except TypeError:
            pass
    var[tuple(slice(a, a + n) for a, n in zip(start, data.shape, strict=True))] = data


def versions() -> dict[str, str]:
    """Versions of the packages that produced an archive (read from metadata: importing xarray
    here would add half a second to every run)."""
    from importlib.metadata import version

    import torch

    import rnnlab

    return {
        "rnnlab_version": rnnlab.__version__,
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "xarray_version": version("xarray"),
        "netcdf4_version": netCDF4.__version__,
    }


class ArchiveWriter:
    """Creates the archive and appends snapshots, curve rows and trajectories as they come."""

    def __init__(
        self,
        path: str | Path,
        cfg: dict[str, Any],
        *,
        overwrite: bool = False,
        command: str | None = None,
    ) -> None:
        self.path = check_output_path(path, overwrite)
        self.partial = self.path.with_name(self.path.name + PARTIAL_SUFFIX)
        self.cfg = cfg
        self.command = command if command is not None else " ".join(sys.argv)
        self.ds: netCDF4.Dataset | None = None
        self.n_epoch = self.n_curve = self.n_traj = 0
        self.J0: np.ndarray | None = None
        self.snapshot_epochs: list[int] = []  # for crossing_epoch, from the exact spectra
        self.snapshot_max_re: list[np.ndarray] = []
        self.phi = cfg["model"]["phi"]
        # Set once training has ended (BackgroundWriter.close): the last snapshot's two spectra
        # then run on it side by side, since no trainer needs the cores any more.
        self.spectra_pool: ThreadPoolExecutor | None = None

    # -- creation -------------------------------------------------------------------------------
    def open(self, static: dict[str, Any]) -> None:
        """Create PATH.partial with dims, coordinates, attributes and the static variables."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        cfg = self.cfg
        ds = netCDF4.Dataset(self.partial, "w", format="NETCDF4")
        self.ds = ds
        n, seeds = cfg["model"]["N"], cfg["seeds"]
        sizes = {
            "seed": len(seeds),
            "epoch": None,
            "curve_epoch": None,
            "traj_epoch": None,
            "neuron": n,
            "neuron_pre": n,
            "eig": n,
            "track": cfg["record"]["track_k"],
            "input": len(static["input_names"]),
            "output": len(static["output_names"]),
            "trial": cfg["record"]["n_eval_trials"],
            "time": len(static["time"]),
            COMPLEX_DIM: 2,
        }
        for dim, size in sizes.items():
            ds.createDimension(dim, size)
        ds.setncatts(
            {
                "title": f"rnnlab run '{cfg['name']}'",
                "rnnlab_schema": SCHEMA_VERSION,
                "config": to_toml(cfg, comments=False),
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "command": self.command,
                "complete": np.int32(0),
                "phi": self.phi,
                "Conventions": "CF-1.10",
                **versions(),
            }
        )
        self._coord("seed", np.asarray(seeds, dtype="i8"))
        for name in ("neuron", "neuron_pre", "eig"):
            self._coord(name, np.arange(n, dtype="i4"))
        self._coord("track", np.arange(sizes["track"], dtype="i4"))
        self._coord("trial", np.arange(sizes["trial"], dtype="i4"))
        self._coord("time", np.asarray(static["time"], dtype="f8"))
        for name in ("epoch", "curve_epoch", "traj_epoch"):
            self._coord(name, None)
        self._labels("input", "input", static["input_names"], "input channel")
        self._labels("output", "output", static["output_names"], "output channel")
        self._labels("run", "seed", [cfg["name"]] * len(seeds), "run name")
        for coord, (section, key) in SEED_SETTINGS.items():
            node = cfg
            for part in section.split("."):
                node = node[part]
            var = ds.createVariable(coord, "f8", ("seed",))
            var.long_name = f"config {section}.{key}"
            var.units = "1"
            put_block(var, (0,), np.full(len(seeds), float(node[key])))
        ds.setncattr("coordinates", " ".join(["run", *SEED_SETTINGS]))
        self._create_variables(static)
        self.J0 = np.asarray(static["J0"], dtype=np.float32)
        self._put("J0", self.J0)
        self._put("mse_optimal", np.float64(static["mse_optimal"]))
        self._put("eval_input", static["eval_input"])
        self._put("eval_target", static["eval_target"])
        if static.get("imposed_u") is not None:
            self._put("imposed_u", static["imposed_u"])
            self._put("imposed_v", static["imposed_v"])
        ds.variables["crossing_epoch"][:] = np.full(len(seeds), np.nan)
        ds.sync()

    def _labels(self, name: str, dim: str, labels: list[str], long_name: str) -> None:
        """Strings as a UTF-8 char array: variable-length strings make a second open of the
        same file crash netCDF/HDF5 (netcdf4-python#1444); xarray decodes these to str."""
        encoded = [label.encode("utf-8") for label in labels]
        width = max(1, *(len(e) for e in encoded))
        strlen = f"{name}_strlen"
        self.ds.createDimension(strlen, width)
        var = self.ds.createVariable(name, "S1", (dim, strlen))
        var.long_name = long_name
        var._Encoding = "utf-8"
        var.set_auto_chartostring(False)
        var[:] = netCDF4.stringtochar(np.array(encoded, dtype=f"S{width}"))

    def _coord(self, name: str, values: np.ndarray | None) -> None:
        spec = COORDS[name]
        var = self.ds.createVariable(name, spec.dtype, spec.dims)
        var.long_name, var.units = spec.long_name, spec.units
        if values is not None:
            put_block(var, (0,), values)

    def _create_variables(self, static: dict[str, Any]) -> None:
        record = self.cfg["record"]
        store = record["store"]
        skip = {"J"} if store == "dJ" else {"dJ"} if store == "J" else set()
        if static.get("imposed_u") is None:
            skip |= {"imposed_u", "imposed_v"}
        zlib = record["compression"] == "zlib"
        digits = record["significant_digits"] or None
        for name, spec in VARIABLES.items():
            if name in skip:
                continue
            kwargs: dict[str, Any] = {"chunksizes": self._chunks(spec.dims)} if spec.dims else {}
            if spec.dtype.startswith("f") and spec.dims:
                # no _FillValue on (real, imaginary) pairs: netCDF4's auto_complex reads a
                # scalar fill there as complex and corrupts the heap
                kwargs["fill_value"] = False if spec.dims[-1] == COMPLEX_DIM else np.nan
                if zlib:
                    kwargs.update(zlib=True, complevel=4, shuffle=True)
                if digits and name not in ("loss_curve", "mse_curve", "loss", "mse"):
                    kwargs["significant_digits"] = digits
            var = self.ds.createVariable(name, spec.dtype, spec.dims, **kwargs)
            var.long_name, var.units = spec.long_name, spec.units
            if name.startswith("eigvals") or name == "tracked":
                var.comment = "complex values: trailing dim 'ri' holds (real, imaginary)"

    def _chunks(self, dims: tuple[str, ...]) -> list[int]:
        out = []
        for dim in dims:
            size = self.ds.dimensions[dim].size
            if dim in ("seed", "epoch", "traj_epoch"):
                out.append(1)
            elif dim == "curve_epoch":
                out.append(1024)
            else:
                out.append(max(1, size))
        return out

    def _put(self, name: str, values: Any) -> None:
        """Write a whole fixed-size variable (if the schema kept it)."""
        if name in self.ds.variables:
            var = self.ds.variables[name]
            put_block(var, (0,) * var.ndim, np.broadcast_to(values, var.shape))

    # -- records --------------------------------------------------------------------------------
    def _append(self, name: str, index: int, values: Any, count: int = 1) -> None:
        """Write `values` (seed, count, ...) at position `index` of a (seed, epoch-like, ...)
        variable, or (count,) values into a 1-d epoch-like coordinate."""
        var = self.ds.variables[name]
        block = np.asarray(values)
        if var.ndim == 1:
            put_block(var, (index,), block.reshape(count))
            return
        if count == 1:
            block = block[:, None]
        put_block(var, (0, index) + (0,) * (var.ndim - 2), block)

    def write_snapshot(self, epoch: int, values: dict[str, np.ndarray]) -> None:
        """Append one snapshot: J, dJ, B, w, losses, row/column means and spectra."""
        i = self.n_epoch
        v = self.ds.variables
        J = values["J"].astype(np.float32)
        slope = dphi_numpy(values["h_mean"].astype(np.float64), self.phi)
        jac = jacobian(J, slope, dtype=np.float32)  # float32 like J and its spectrum
        spectra = self._spectra(J, jac)
        self._append("epoch", i, epoch)
        for name in ("J", "dJ"):
            if name in v:
                self._append(name, i, J if name == "J" else J - self.J0)
        for name in ("B", "w", "loss", "mse", "h_mean"):
            self._append(name, i, values[name])
        self._append("row_mean", i, J.mean(axis=2))
        self._append("col_mean", i, J.mean(axis=1))
        eigs, jac_eigs = (spectrum() for spectrum in spectra)
        self._append("eigvals", i, pairs(eigs))
        # at the origin every slope is phi'(0): the Jacobian's eigenvalues are phi'(0) lambda - 1
        # (same order: a positive scale and a shift keep the descending real part)
        jac0 = dphi_at_origin(self.phi) * eigs - 1.0
        self._append("eigvals_jac0", i, pairs(jac0))
        self.snapshot_epochs.append(epoch)
        self.snapshot_max_re.append(jac0.real.max(axis=-1))
        self._append("eigvals_jac", i, pairs(jac_eigs))
        self.n_epoch += 1
        self.ds.sync()

    def _spectra(self, *matrices: np.ndarray) -> list:
        """A callable per batch of matrices giving its sorted float32 eigenvalues. During training
        they are computed when called, on this thread; once training has ended (spectra_pool set)
        they start at once on the pool, overlapping each other and the writes meanwhile."""
        pool = self.spectra_pool
        if pool is None:
            return [partial(sorted_eigvals, m, single=True) for m in matrices]
        return [pool.submit(sorted_eigvals, m, single=True).result for m in matrices]

    def write_curve(self, epochs: list[int], rows: list[dict[str, np.ndarray]]) -> None:
        """Append learning-curve rows (and tracked eigenvalues) for several epochs at once."""
        if not rows:
            return
        i, k = self.n_curve, len(rows)
        self._append("curve_epoch", i, epochs, count=k)
        for name in rows[0]:
            stacked = np.stack([r[name] for r in rows], axis=1)
            if np.iscomplexobj(stacked):
                stacked = pairs(stacked)
            self._append(name, i, stacked, count=k)
        self.n_curve += k

    def write_trajectories(self, epoch: int, values: dict[str, np.ndarray]) -> None:
        """Append the evaluation trajectories of one epoch."""
        i = self.n_traj
        self._append("traj_epoch", i, epoch)
        for name, value in values.items():
            self._append(name, i, value)
        self.n_traj += 1
        self.ds.sync()

    def finish(self, extra: dict[str, np.ndarray] | None = None) -> Path:
        """Write the final per-seed results, mark the archive complete and move it into place.

        crossing_epoch comes from the exact snapshot spectra of the Jacobian at the origin,
        interpolated between snapshots (the per-epoch tracked values are only a lower bound
        near the bulk edge, where the crossing happens)."""
        if len(self.snapshot_epochs) >= 2:
            series = np.stack(self.snapshot_max_re, axis=1)
            self._put("crossing_epoch", crossing_epoch(self.snapshot_epochs, series))
        for name, value in (extra or {}).items():
            self._put(name, value)
        self.ds.setncattr("complete", np.int32(1))
        self.ds.close()
        self.ds = None
        os.replace(self.partial, self.path)
        return self.path

    def abort(self) -> None:
        """Close after a failure, keeping the readable PATH.partial for inspection."""
        if self.ds is not None:
            try:
                self.ds.sync()
                self.ds.close()
            finally:
                self.ds = None


class BackgroundWriter:
    """Runs an ArchiveWriter on a worker thread so training never waits on disk or eigvals.

    `open` creates the file on the worker too (the trainer's first epochs overlap it). The trainer
    calls curve/snapshot/trajectories; they enqueue copies and return. Curve rows are buffered and
    flushed with each snapshot. An error on the worker is raised on the next call (curve is called
    every epoch, so within an epoch).
    """

    def __init__(self, writer: ArchiveWriter, max_pending: int = 4) -> None:
        self.writer = writer
        self.queue: queue.Queue = queue.Queue(maxsize=max_pending)
        self.error: BaseException | None = None
        self.curve_epochs: list[int] = []
        self.curve_rows: list[dict[str, np.ndarray]] = []
        self._busy = False
        self.thread = threading.Thread(target=self._work, name="rnnlab-writer", daemon=True)
        self.thread.start()

    def _work(self) -> None:
        set_blas_threads(1)  # one core for the writer; the trainer yields it one (see busy)
        while True:
            item = self.queue.get()
            if item is None:
                return
            self._busy = True
            try:
                if self.error is None:
                    method, args = item
                    getattr(self.writer, method)(*args)
            except BaseException as exc:  # reported to the training thread
                self.error = exc
            finally:
                self._busy = self.queue.qsize() > 0

    def busy(self) -> bool:
        """True while snapshots are pending: the trainer then leaves one CPU core to the writer
        (two spinning OpenMP threads plus the writer on two cores stall every parallel region)."""
        return self._busy

    def _raise_worker_error(self) -> None:
        if self.error is not None:
            raise self.error

    def _submit(self, method: str, *args: Any) -> None:
        self._raise_worker_error()
        self._busy = True
        self.queue.put((method, args))

    def open(self, static: dict[str, Any]) -> None:
        """ArchiveWriter.open on the worker (the path was checked when the writer was made)."""
        self._submit("open", static)

    def curve(self, epoch: int, values: dict[str, np.ndarray]) -> None:
        self._raise_worker_error()
        self.curve_epochs.append(epoch)
        self.curve_rows.append(values)

    def _flush_curve(self) -> None:
        if self.curve_rows:
            self._submit("write_curve", self.curve_epochs, self.curve_rows)
            self.curve_epochs, self.curve_rows = [], []

    def snapshot(self, epoch: int, values: dict[str, np.ndarray]) -> None:
        self._flush_curve()
        self._submit("write_snapshot", epoch, values)

    def trajectories(self, epoch: int, values: dict[str, np.ndarray]) -> None:
        self._submit("write_trajectories", epoch, values)

    def close(self, extra: dict[str, np.ndarray] | None = None) -> Path:
        """Drain the queue, then finish the archive (raising any worker error)."""
        self._flush_curve()
        with ThreadPoolExecutor(2, thread_name_prefix="rnnlab-spectra") as pool:
            self.writer.spectra_pool = pool  # training is over: the last snapshot may use 2 cores
            try:
                self.queue.put(None)
                self.thread.join()
            finally:
                self.writer.spectra_pool = None
        self._raise_worker_error()
        return self.writer.finish(extra)

    def abort(self) -> None:
        """Stop the worker after a failure; keep what was written (curve rows included)."""
        if self.error is None:
            self._flush_curve()
        self.queue.put(None)
        self.thread.join()
        self.writer.abort()
