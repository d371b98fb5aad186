"""Write and read analysis.nc: complex variables stored as float with a trailing `ri` dim."""

from __future__ import annotations

from pathlib import Path

import xarray as xr

from rnnlab.analysis._common import AnalysisError
from rnnlab.data.members import drop_repeated_seed_index
from rnnlab.data.ri import from_ri, to_ri

__all__ = ["to_ri", "from_ri", "save_analysis", "open_analysis"]

SCHEMA = "rnnlab-analysis/1"


def save_analysis(ds: xr.Dataset, path: str | Path, **kwargs) -> Path:
    """Write an analysis dataset (lazy or computed) to NetCDF-4 at `path`; returns the path."""
    if not isinstance(ds, xr.Dataset):
        raise AnalysisError(f"save_analysis needs an xarray.Dataset, got {type(ds).__name__}")
    path = Path(path)
    out = to_ri(ds)
    out.attrs = {**out.attrs, "rnnlab_schema": SCHEMA}
    out.to_netcdf(path, engine="netcdf4", **kwargs)
    return path


def open_analysis(path: str | Path, chunks: dict | None = None) -> xr.Dataset:
    """Open analysis.nc with complex variables restored (dask-backed when `chunks` is given).

    Repeated seed values (several runs) leave `seed` without an index, as open_archive does.
    """
    path = Path(path)
    if not path.exists():
        raise AnalysisError(f"no such analysis file: {path}")
    ds = xr.open_dataset(path, engine="netcdf4", chunks=chunks)
    return from_ri(drop_repeated_seed_index(ds))
