"""Crash-safe archive writer (netCDF4-python): it encodes and writes what it is given, and
computes nothing.

Layout (docs/reliability.md). Every dimension is fixed when the file is created, from the run's
schedule, and every record variable is written in full (NaN, or -1 for integers) before the first
record, so the file's HDF5 metadata never changes afterwards: writing a record only overwrites raw
bytes at a fixed place. A record becomes visible through its coordinate (`epoch`, `curve_epoch`,
`traj_epoch`), written only after the record's data is flushed and fsync'ed: that value is the
commit marker, and -1 marks a record not (yet) committed. Measured here (benchmarks/
kill_campaign.py): with unlimited dims, whose chunk indexes and sizes change at every append, a
SIGKILL left an unreadable variable in 2 of 40 runs; with this layout in none.

The file is PATH.partial until the run completes, then renamed to PATH (after a compressed copy
when `record.compression`/`significant_digits` ask for one: compressed chunks change size when
rewritten, so the .partial itself is never compressed).
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import netCDF4
import numpy as np

from rnnlab.config import Config, Record, get_dotted, to_toml
from rnnlab.data.layout import Layout
from rnnlab.data.paths import (
    disk_full_message,
    is_disk_full,
    partial_path,
)
from rnnlab.data.ri import pairs
from rnnlab.data.schema import (
    COMPLEX_DIM,
    COORDS,
    RECORD_DIMS,
    SCHEMA_VERSION,
    SEED_SETTINGS,
    UNCOMMITTED,
)
from rnnlab.errors import ArchiveError

FINALS = ("crossing_epoch", "diverged_epoch")  # per-seed results, NaN until known


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

    import rnnlab

    return {
        "rnnlab_version": rnnlab.__version__,
        "torch_version": version("torch"),
        "numpy_version": np.__version__,
        "xarray_version": version("xarray"),
        "netcdf4_version": netCDF4.__version__,
    }


def fsync_path(path: Path) -> None:
    """Flush a file's pages to the disk (any descriptor of the file will do)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ArchiveWriter:
    """Creates (or reopens) PATH.partial, writes records at their fixed places, commits them,
    and finally renames the archive into place."""

    def __init__(
        self,
        path: str | Path,
        cfg: Config,
        *,
        command: str | None = None,
        run_id: str = "",
        attrs: dict[str, str] | None = None,
    ) -> None:
        self.path = Path(path)
        self.partial = partial_path(self.path)
        self.cfg = cfg
        self.command = command if command is not None else " ".join(sys.argv)
        self.run_id = run_id
        self.attrs = dict(attrs or {})  # more global attributes (a sweep point's, data.grid)
        self.ds: netCDF4.Dataset | None = None
        self.layout: Layout | None = None
        self._markers: list[tuple[str, int, int]] = []  # (coord, index, epoch) awaiting commit

    # -- creation -------------------------------------------------------------------------------
    def create(self, static: dict[str, Any]) -> None:
        """Create PATH.partial: dims, attributes, static variables, every record pre-written.

        A full disk here (space taken since the check) removes the new file and raises one line.
        """
        self.layout = Layout.of(self.cfg, static)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # built under a temporary name and renamed once whole: a kill during creation must not
        # leave a .partial whose records hold whatever the allocator had (seen: heap addresses)
        creating = self.partial.with_name(f".{self.partial.name}.creating")
        try:
            self._create(creating, static)
            self.ds.close()
            fsync_path(creating)
            os.replace(creating, self.partial)
            self.ds = netCDF4.Dataset(self.partial, "a")
        except (OSError, RuntimeError) as exc:
            self.close()
            creating.unlink(missing_ok=True)
            if is_disk_full(exc):
                imposed = static.get("imposed_u") is not None
                needed = self.layout.nbytes(self.cfg, imposed)
                raise ArchiveError(disk_full_message(self.partial, needed)) from None
            raise

    def _create(self, target: Path, static: dict[str, Any]) -> None:
        cfg, layout = self.cfg, self.layout
        ds = netCDF4.Dataset(target, "w", format="NETCDF4")
        self.ds = ds
        for dim, size in layout.sizes.items():
            ds.createDimension(dim, size)
        ds.setncatts(
            {
                "title": f"rnnlab run '{cfg.name}'",
                "rnnlab_schema": SCHEMA_VERSION,
                "config": to_toml(cfg, comments=False),
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "command": self.command,
                "run_id": self.run_id,
                "complete": np.int32(0),
                "phi": cfg.model.phi,
                "Conventions": "CF-1.10",
                **versions(),
                **self.attrs,
            }
        )
        n = cfg.model.N
        self._coord("seed", np.asarray(cfg.seeds, dtype="i8"))
        for name in ("neuron", "neuron_pre", "eig"):
            self._coord(name, np.arange(n, dtype="i4"))
        self._coord("track", np.arange(layout.sizes["track"], dtype="i4"))
        self._coord("trial", np.arange(layout.sizes["trial"], dtype="i4"))
        self._coord("time", np.asarray(static["time"], dtype="f8"))
        for name in RECORD_DIMS:
            var = self._coord(name, None)
            var.comment = f"{UNCOMMITTED}: record not (yet) committed (an unfinished run)"
        self._labels("input", "input", static["input_names"], "input channel")
        self._labels("output", "output", static["output_names"], "output channel")
        label = f"{cfg.name}:{self.run_id[:8]}" if self.run_id else cfg.name
        self._labels("run", "seed", [label] * len(cfg.seeds), "run (name:id)")
        for coord, (section, key) in SEED_SETTINGS.items():
            var = ds.createVariable(coord, "f8", ("seed",))
            var.long_name = f"config {section}.{key}"
            var.units = "1"
            value = float(get_dotted(cfg, f"{section}.{key}"))
            put_block(var, (0,), np.full(len(cfg.seeds), value))
        ds.setncattr("coordinates", " ".join(["run", *SEED_SETTINGS]))
        imposed = static.get("imposed_u") is not None
        for name, spec in layout.kept(cfg, imposed).items():
            # contiguous and without a fill: every byte is written right below
            var = ds.createVariable(name, spec.dtype, spec.dims, contiguous=True, fill_value=False)
            var.long_name, var.units = spec.long_name, spec.units
            if name.startswith("eigvals") or name == "tracked":
                var.comment = "complex values: trailing dim 'ri' holds (real, imaginary)"
        self._prefill()
        self.put_static("J0", static["J0"])
        self.put_static("mse_optimal", np.float64(static["mse_optimal"]))
        self.put_static("eval_input", static["eval_input"])
        self.put_static("eval_target", static["eval_target"])
        if imposed:
            self.put_static("imposed_u", static["imposed_u"])
            self.put_static("imposed_v", static["imposed_v"])

    def _prefill(self) -> None:
        """Write every record variable and record coordinate in full (NaN or -1), one record
        at a time: the file reaches its final size now, so a run never extends it."""
        for name, var in self.ds.variables.items():
            if name in RECORD_DIMS:
                put_block(var, (0,), np.full(var.shape, UNCOMMITTED, var.dtype))
                continue
            dims = var.dimensions
            if name in FINALS or not dims or dims[0] != "seed" or len(dims) < 2:
                continue
            if dims[1] not in RECORD_DIMS:
                continue
            fill = np.full((var.shape[0], 1, *var.shape[2:]), _missing(var.dtype), var.dtype)
            for i in range(var.shape[1]):
                put_block(var, (0, i) + (0,) * (var.ndim - 2), fill)
        for name in FINALS:
            put_block(self.ds.variables[name], (0,), np.full(self.layout.sizes["seed"], np.nan))

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

    def _coord(self, name: str, values: np.ndarray | None) -> netCDF4.Variable:
        spec = COORDS[name]
        kwargs = {"contiguous": True, "fill_value": False} if name in RECORD_DIMS else {}
        var = self.ds.createVariable(name, spec.dtype, spec.dims, **kwargs)
        var.long_name, var.units = spec.long_name, spec.units
        if values is not None:
            put_block(var, (0,), values)
        return var

    # -- reopening (resume) ---------------------------------------------------------------------
    def reopen(self, static: dict[str, Any]) -> dict[str, int]:
        """Open an existing PATH.partial for more records; return its committed counts.

        Refuses a file whose fixed layout is not this run's (another config or an old schema).
        """
        self.layout = Layout.of(self.cfg, static)
        try:
            self.ds = netCDF4.Dataset(self.partial, "a")
        except OSError as exc:
            raise ArchiveError(f"cannot reopen {self.partial}: {exc}") from None
        ds = self.ds
        if ds.getncattr("rnnlab_schema") != SCHEMA_VERSION:
            self.close()
            raise ArchiveError(
                f"{self.partial} was written by another archive schema "
                f"({ds.getncattr('rnnlab_schema')}); it cannot be resumed"
            )
        for dim, size in self.layout.sizes.items():
            if dim not in ds.dimensions or ds.dimensions[dim].size != size:
                self.close()
                raise ArchiveError(f"{self.partial} does not match its run's config (dim {dim})")
        return self.committed()

    def committed(self) -> dict[str, int]:
        """Number of committed records per record dim (the markers form a prefix)."""
        return {name: committed_count(self.ds.variables[name][:]) for name in RECORD_DIMS}

    def uncommit_from(self, counts: dict[str, int]) -> None:
        """Mark records from counts[dim] on as uncommitted (they will be written again)."""
        for name, start in counts.items():
            var = self.ds.variables[name]
            if start < var.shape[0]:
                put_block(var, (start,), np.full(var.shape[0] - start, UNCOMMITTED, var.dtype))
        self.ds.sync()
        fsync_path(self.partial)

    def read(self, name: str) -> np.ndarray:
        """A variable's stored values (complex when stored as (real, imaginary) pairs)."""
        var = self.ds.variables[name]
        values = np.asarray(var[...])
        if var.dimensions and var.dimensions[-1] == COMPLEX_DIM:
            values = values[..., 0] + 1j * values[..., 1]
        return values

    # -- records --------------------------------------------------------------------------------
    def put_static(self, name: str, values: Any) -> None:
        """Write a whole fixed-size variable (if this run stores it)."""
        if name in self.ds.variables:
            var = self.ds.variables[name]
            block = _encode(var, values)
            put_block(var, (0,) * var.ndim, np.broadcast_to(block, var.shape))

    def put_record(self, dim: str, index: int, epoch: int, values: dict[str, Any]) -> None:
        """Write one record (each value shaped (seed, ...)) at `index` of `dim`; it is visible
        once `commit` has run. Variables this run does not store are skipped."""
        self.put_records(dim, index, [epoch], {k: np.expand_dims(v, 1) for k, v in values.items()})

    def put_records(self, dim: str, start: int, epochs: list[int], values: dict[str, Any]) -> None:
        """Write len(epochs) consecutive records (values shaped (seed, k, ...)) from `start`."""
        size = self.ds.dimensions[dim].size
        if start < 0 or start + len(epochs) > size:
            raise ValueError(f"{dim}: records {start}..{start + len(epochs) - 1} of {size}")
        for name, value in values.items():
            if name not in self.ds.variables:
                continue
            var = self.ds.variables[name]
            if var.dimensions[:2] != ("seed", dim):
                raise ValueError(f"{name} is not a ({dim}) record variable: {var.dimensions}")
            block = _encode(var, value)
            put_block(var, (0, start) + (0,) * (var.ndim - 2), block)
        self._markers.extend((dim, start + k, e) for k, e in enumerate(epochs))

    def commit(self) -> None:
        """Make the records written so far visible: flush and fsync their data, then write
        their markers (and flush them: a kill after this keeps them)."""
        self.ds.sync()
        fsync_path(self.partial)
        if not self._markers:
            return
        for dim, index, epoch in self._markers:
            put_block(self.ds.variables[dim], (index,), np.asarray([epoch]))
        self._markers = []
        self.ds.sync()

    def finish(self) -> Path:
        """Commit, mark the archive complete and move it into place (via a compressed copy
        when the config asks for compression; the .partial stays incomplete until that copy is
        whole, so a failure there leaves a resumable run). Returns the archive's path."""
        self.commit()
        missing = {d: c for d, c in self.committed().items() if c != self.ds.dimensions[d].size}
        if missing:
            raise ArchiveError(f"{self.partial}: records missing at finish: {missing}")
        record = self.cfg.record
        compress = record.compression == "zlib" or bool(record.significant_digits)
        if not compress:
            self.ds.setncattr("complete", np.int32(1))
            self.ds.sync()
        self.ds.close()
        self.ds = None
        fsync_path(self.partial)
        if not compress:
            os.replace(self.partial, self.path)
            return self.path
        compressed = self.path.with_name(f".{self.path.name}.compressing")
        try:
            compressed_copy(self.partial, compressed, record)
        except (OSError, RuntimeError) as exc:
            compressed.unlink(missing_ok=True)
            if is_disk_full(exc):
                size = self.partial.stat().st_size
                raise ArchiveError(disk_full_message(self.path, size)) from None
            raise
        os.replace(compressed, self.path)
        self.partial.unlink()
        return self.path

    def close(self) -> None:
        """Close without finishing (after a failure or an interrupt); committed records stay."""
        if self.ds is not None:
            try:
                self.ds.close()
            except RuntimeError:
                pass
            finally:
                self.ds = None


def committed_count(markers: np.ndarray) -> int:
    """Length of the committed prefix of a record coordinate (values >= 0)."""
    markers = np.asarray(markers)
    bad = np.flatnonzero(markers < 0)
    return int(bad[0]) if bad.size else len(markers)


def _missing(dtype: np.dtype) -> Any:
    return np.nan if np.dtype(dtype).kind == "f" else UNCOMMITTED


def _encode(var: netCDF4.Variable, values: Any) -> np.ndarray:
    """Complex values as (real, imaginary) pairs where the variable has the `ri` dim."""
    values = np.asarray(values)
    return pairs(values) if np.iscomplexobj(values) else values


def _chunk_length(dim: str, size: int, ndim: int) -> int:
    """Chunks of the compressed copy: one seed; one record of a matrix-like variable; curves in
    runs of 1024 epochs (tiny chunks cost more metadata than they hold)."""
    if dim == "seed":
        return 1
    if dim == "curve_epoch":
        return min(size, 1024)
    if dim in RECORD_DIMS and ndim >= 3:
        return 1
    return size


def compressed_copy(source: Path, target: Path, record: Record) -> None:
    """Copy a finished archive into a zlib-compressed (optionally quantised) one: chunks of one
    (seed, record) matrix, as reading one matrix at a time wants."""
    digits = record.significant_digits or None
    zlib = record.compression == "zlib"
    with netCDF4.Dataset(source) as src, netCDF4.Dataset(target, "w", format="NETCDF4") as dst:
        src.set_auto_maskandscale(False)
        dst.setncatts({k: src.getncattr(k) for k in src.ncattrs()} | {"complete": np.int32(1)})
        for name, dim in src.dimensions.items():
            dst.createDimension(name, dim.size)
        for name, var in src.variables.items():
            kwargs: dict[str, Any] = {}
            if var.dtype.kind == "f" and var.ndim >= 2:
                chunks = [
                    _chunk_length(d, n, var.ndim)
                    for d, n in zip(var.dimensions, var.shape, strict=True)
                ]
                kwargs.update(chunksizes=chunks)
                if zlib:
                    kwargs.update(zlib=True, complevel=4, shuffle=True)
                if digits and name not in ("loss_curve", "mse_curve", "loss", "mse"):
                    kwargs["significant_digits"] = digits
            out = dst.createVariable(name, var.dtype, var.dimensions, fill_value=False, **kwargs)
            out.setncatts({k: var.getncattr(k) for k in var.ncattrs()})
            if var.dtype == np.dtype("S1"):
                out.set_auto_chartostring(False)
                var.set_auto_chartostring(False)
            if var.ndim >= 2 and var.dimensions[1] in RECORD_DIMS:
                for i in range(var.shape[1]):
                    out[:, i] = var[:, i]
            else:
                out[...] = var[...]
    fsync_path(target)
