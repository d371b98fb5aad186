"""Write and read analysis.nc: complex variables stored as float with a trailing `ri` dim."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from rnnlab.analysis._common import AnalysisError

__all__ = ["to_ri", "from_ri", "save_analysis", "open_analysis"]

RI = "ri"
SCHEMA = "rnnlab-analysis/1"


def _rebuild(ds: xr.Dataset, fn) -> xr.Dataset:
    """A copy of ds with every variable (data or coordinate, not index) passed through fn."""
    data = {k: fn(ds.variables[k]) for k in ds.data_vars}
    coords = {k: fn(v) if k not in ds.indexes else v for k, v in ds.coords.variables.items()}
    return xr.Dataset(data, coords=coords, attrs=ds.attrs)


def _split(var: xr.Variable) -> xr.Variable:
    if var.dtype.kind != "c":
        return var
    data = np.stack([var.data.real, var.data.imag], axis=-1)  # dask stays lazy (NEP 18)
    attrs = {**var.attrs, "complex_as": "real, imaginary on the trailing ri dim"}
    return xr.Variable(var.dims + (RI,), data, attrs)


def _join(var: xr.Variable) -> xr.Variable:
    if not var.dims or var.dims[-1] != RI or var.sizes[RI] != 2:
        return var
    data = var.data[..., 0] + 1j * var.data[..., 1]
    attrs = {k: v for k, v in var.attrs.items() if k != "complex_as"}
    return xr.Variable(var.dims[:-1], data, attrs)


def to_ri(ds: xr.Dataset) -> xr.Dataset:
    """Complex variables -> float variables with a trailing `ri` dim (real, imaginary); lazy."""
    return _rebuild(ds, _split)


def from_ri(ds: xr.Dataset) -> xr.Dataset:
    """Float variables with a trailing `ri` dim -> complex variables (inverse of to_ri); lazy."""
    return _rebuild(ds, _join)


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
    """Open analysis.nc with complex variables restored (dask-backed when `chunks` is given)."""
    path = Path(path)
    if not path.exists():
        raise AnalysisError(f"no such analysis file: {path}")
    return from_ri(xr.open_dataset(path, engine="netcdf4", chunks=chunks))
