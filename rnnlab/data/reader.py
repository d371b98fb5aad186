"""Open one or many rnnlab archives as one lazy, dask-backed xarray Dataset.

Complex values (stored as float with a trailing `ri` dim) come back complex; big matrices are
chunked one (seed, epoch) matrix per chunk; several runs are concatenated along `seed`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import xarray as xr

from rnnlab.data import grid
from rnnlab.data.files import archive_paths, check_archive
from rnnlab.data.members import concat_members, unique_run_labels
from rnnlab.data.paths import PARTIAL_SUFFIX, final_path, lock_holder
from rnnlab.data.ri import from_ri
from rnnlab.data.schema import SEED_SETTINGS
from rnnlab.errors import ArchiveError

MATRIX_DIMS = {"neuron", "neuron_pre", "eig", "trial"}


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
    attrs, ds = _open_checked(path, allow_incomplete)
    close = ds.close  # the rebuilt dataset below closes the file too (`with` and .close())
    committed = attrs["committed"]
    if any(committed[d] < ds.sizes[d] for d in committed):  # an unfinished run: its prefix
        ds = ds.isel({d: slice(0, n) for d, n in committed.items()})
    settings = [name for name in ("run", *SEED_SETTINGS) if name in ds.data_vars]
    ds = _chunk(ds.set_coords(settings))
    ds = from_ri(ds)
    ds.encoding["source"] = str(path)
    ds.set_close(close)
    return ds


# A .partial whose run is finishing: the writer marks it complete and closes it (HDF5 rewrites
# its header), and an open in that instant fails with "NetCDF: HDF error" (seen in about 1 of 20
# runs of the readers-during-a-write test). Such opens are retried while the run holds its lock.
LIVE_RETRIES, LIVE_WAIT_S = 10, 0.05


def _open_checked(path: Path, allow_incomplete: bool) -> tuple[dict, xr.Dataset]:
    """check_archive, then the lazy xarray open; retried a few times for a .partial that a live
    run is writing (see LIVE_RETRIES), raised at once otherwise."""
    for _ in range(LIVE_RETRIES):
        try:
            return _open_once(path, allow_incomplete)
        except FileNotFoundError:  # renamed into place, or never there
            raise
        except (OSError, ArchiveError):
            live = path.name.endswith(PARTIAL_SUFFIX) and lock_holder(final_path(path)) is not None
            if not live:
                raise
            time.sleep(LIVE_WAIT_S)
    return _open_once(path, allow_incomplete)


def _open_once(path: Path, allow_incomplete: bool) -> tuple[dict, xr.Dataset]:
    attrs = check_archive(path, allow_incomplete)
    return attrs, xr.open_dataset(path, engine="netcdf4", chunks=None, cache=False)


def _run_attrs(part: xr.Dataset) -> dict:
    """Attributes of the per-seed `run` label (kept when open_archive relabels runs)."""
    return dict(part["run"].attrs) if "run" in part.variables else {"long_name": "run"}


def open_archive(
    paths: str | Path | Iterable[str | Path], *, allow_incomplete: bool = False
) -> xr.Dataset:
    """Open archive(s) lazily (dask); several runs are concatenated along `seed`, and the
    points of one sweep form a grid: one dimension per swept key beside `seed` (data.grid).

    Runs combine when their shapes and schedules agree (N, snapshot epochs, time grid);
    settings that may differ (g, b, lr, ...) are coordinates along `seed`, and `run` names each
    seed's run. Every (run, seed) is its own member of `seed`, even when runs share seeds and
    names: a `run` label that several files carry becomes `label:<file stem>` (then
    `label:<stem>:<k>`, see members.unique_run_labels), and when seed values repeat `seed` is a
    coordinate without an index (select with isel or a mask; docs/archive.md). A file named twice
    (or through a link) is opened once.
    """
    files, seen = [], set()
    for path in archive_paths(paths):
        stat = path.stat()
        if (stat.st_dev, stat.st_ino) not in seen:  # opening a file twice can crash netCDF-C
            seen.add((stat.st_dev, stat.st_ino))
            files.append(path)
    parts = [open_one(p, allow_incomplete) for p in files]
    if len(parts) == 1:
        return parts[0]
    keys = grid.grid_keys(parts)
    # a sweep over a key that changes the shapes (model.N, train.epochs, ...) cannot be one array
    hint = f" (swept keys {', '.join(keys)}: open points of equal shapes together)" if keys else ""
    first = parts[0]
    for path, part in zip(files[1:], parts[1:], strict=True):
        for dim in ("neuron", "input", "output", "trial", "time", "track"):
            if part.sizes.get(dim) != first.sizes.get(dim):
                raise ArchiveError(
                    f"cannot combine {files[0]} and {path}: dimension '{dim}' differs "
                    f"({first.sizes.get(dim)} vs {part.sizes.get(dim)}){hint}"
                )
        for coord in ("epoch", "traj_epoch", "curve_epoch"):
            if not first[coord].equals(part[coord]):
                raise ArchiveError(
                    f"cannot combine {files[0]} and {path}: their '{coord}' schedules differ{hint}"
                )
    stems = [path.stem for path in files]
    labels = [
        [str(r) for r in part["run"].values] if "run" in part.variables else [stem] * len(part.seed)
        for stem, part in zip(stems, parts, strict=True)
    ]
    parts = [
        part.assign_coords(run=("seed", np.array(labs, dtype=object), _run_attrs(part)))
        for part, labs in zip(parts, unique_run_labels(labels, stems), strict=True)
    ]
    # Each run's config by its member label (runs with different configs lose the shared
    # `config` attribute when combined); the analyses that re-simulate networks read it.
    run_configs = json.dumps(
        {
            str(part["run"].values[0]): str(part.attrs["config"])
            for part in parts
            if "config" in part.attrs and part.sizes.get("seed", 0)
        }
    )
    # the points of one sweep: its swept settings become dimensions
    combined = grid.combine_grid(parts, keys) if keys else concat_members(parts)
    combined.attrs["sources"] = "\n".join(str(p) for p in files)
    combined.attrs["run_configs"] = run_configs
    combined.set_close(lambda: [part.close() for part in parts])
    return combined
