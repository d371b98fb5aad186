"""Open one or many rnnlab archives as one lazy, dask-backed xarray Dataset.

Complex values (stored as float with a trailing `ri` dim) come back complex; big matrices are
chunked one (seed, epoch) matrix per chunk; several runs are concatenated along `seed`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import netCDF4
import xarray as xr

from rnnlab.data.ri import from_ri
from rnnlab.data.schema import SCHEMA_VERSION, SEED_SETTINGS
from rnnlab.errors import ArchiveError

SMALL_CHUNK_CACHE_BYTES = 4 * 2**20
MATRIX_DIMS = {"neuron", "neuron_pre", "eig", "trial"}


def set_small_chunk_cache(size: int = SMALL_CHUNK_CACHE_BYTES) -> None:
    """Shrink netCDF-C's per-variable chunk cache (64 MiB default), which dominated memory."""
    netCDF4.set_chunk_cache(size=size, nelems=61)


def archive_paths(paths: str | Path | Iterable[str | Path]) -> list[Path]:
    """Expand files and directories (all *.nc inside, sorted) into a list of archive paths."""
    items = [paths] if isinstance(paths, str | Path) else list(paths)
    out: list[Path] = []
    for item in items:
        item = Path(item)
        if item.is_dir():
            found = sorted(item.glob("*.nc"))
            if not found:
                raise ArchiveError(f"no *.nc archives in directory {item}")
            out.extend(found)
        elif item.exists():
            out.append(item)
        else:
            raise ArchiveError(f"no such archive: {item}")
    if not out:
        raise ArchiveError("no archives given")
    return out


def check_archive(path: Path, allow_incomplete: bool = False) -> dict[str, object]:
    """Raise ArchiveError unless `path` is a readable (complete) rnnlab archive; return attrs."""
    try:
        with netCDF4.Dataset(path, "r") as nc:
            attrs = {k: nc.getncattr(k) for k in nc.ncattrs()}
            n_epoch = nc.dimensions["epoch"].size if "epoch" in nc.dimensions else 0
    except OSError as exc:
        raise ArchiveError(
            f"{path} is not a readable NetCDF file ({exc.strerror or exc})"
        ) from None
    schema = attrs.get("rnnlab_schema")
    if schema is None:
        raise ArchiveError(f"{path} is not an rnnlab archive (no 'rnnlab_schema' attribute)")
    if schema != SCHEMA_VERSION:
        raise ArchiveError(
            f"{path} has archive schema {schema!r}; this rnnlab reads {SCHEMA_VERSION}"
        )
    if not int(attrs.get("complete", 0)) and not allow_incomplete:
        raise ArchiveError(
            f"{path} is incomplete (run killed or still running; {n_epoch} snapshots written); "
            "pass allow_incomplete=True to read it anyway"
        )
    return attrs


def _chunk(ds: xr.Dataset) -> xr.Dataset:
    """Matrices one (seed, epoch) per chunk; everything else one chunk per seed."""
    out = ds.copy()
    for name, var in ds.data_vars.items():
        if not var.dims:
            continue
        big = bool(MATRIX_DIMS & set(var.dims))
        chunks = {d: (1 if d in ("seed", "epoch", "traj_epoch") and big else -1) for d in var.dims}
        if "seed" in var.dims:
            chunks["seed"] = 1
        out[name] = var.chunk(chunks)
    return out


def open_one(path: str | Path, allow_incomplete: bool = False) -> xr.Dataset:
    """One archive as a lazy dataset with complex eigenvalues."""
    path = Path(path)
    check_archive(path, allow_incomplete)
    set_small_chunk_cache()
    ds = xr.open_dataset(path, engine="netcdf4", chunks=None, cache=False)
    settings = [name for name in ("run", *SEED_SETTINGS) if name in ds.data_vars]
    ds = _chunk(ds.set_coords(settings))
    ds = from_ri(ds)
    ds.encoding["source"] = str(path)
    return ds


def open_archive(
    paths: str | Path | Iterable[str | Path], *, allow_incomplete: bool = False
) -> xr.Dataset:
    """Open archive(s) lazily (dask); several runs are concatenated along `seed`.

    Runs combine when their shapes and schedules agree (N, snapshot epochs, time grid);
    settings that may differ (g, b, lr, ...) are coordinates along `seed`, and `run` names each
    seed's run.
    """
    files = archive_paths(paths)
    parts = [open_one(p, allow_incomplete) for p in files]
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    for path, part in zip(files[1:], parts[1:], strict=True):
        for dim in ("neuron", "input", "output", "trial", "time", "track"):
            if part.sizes.get(dim) != first.sizes.get(dim):
                raise ArchiveError(
                    f"cannot combine {files[0]} and {path}: dimension '{dim}' differs "
                    f"({first.sizes.get(dim)} vs {part.sizes.get(dim)})"
                )
        for coord in ("epoch", "traj_epoch", "curve_epoch"):
            if not first[coord].equals(part[coord]):
                raise ArchiveError(
                    f"cannot combine {files[0]} and {path}: their '{coord}' schedules differ"
                )
    combined = xr.concat(
        parts,
        dim="seed",
        data_vars="minimal",
        coords="minimal",
        compat="override",
        join="override",
        combine_attrs="drop_conflicts",
    )
    combined.attrs["sources"] = "\n".join(str(p) for p in files)
    return combined
