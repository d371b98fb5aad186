"""Complex values on disk: float variables with a trailing length-2 `ri` dim (real, imaginary).

CF has no complex convention, so archives and analysis.nc both store complex numbers this way;
these helpers are the one place that converts, for NumPy arrays and for (lazy) xarray objects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # xarray is imported by the functions that need it: the writer needs none
    import xarray as xr

RI = "ri"
NOTE_KEYS = ("comment", "complex_as")  # attrs that only describe the (real, imaginary) pair


def pairs(values: np.ndarray) -> np.ndarray:
    """Complex array -> float array with a trailing (real, imaginary) axis."""
    values = np.asarray(values)
    return np.stack([values.real, values.imag], axis=-1)


def _rebuild(ds: xr.Dataset, fn) -> xr.Dataset:
    """A copy of ds with every variable (data or coordinate, not index) passed through fn."""
    import xarray as xr

    data = {k: fn(ds.variables[k]) for k in ds.data_vars}
    coords = {k: fn(v) if k not in ds.indexes else v for k, v in ds.coords.variables.items()}
    out = xr.Dataset(data, coords=coords, attrs=ds.attrs)
    # a dimension coordinate ds keeps without an index (repeated seeds) must not gain one
    return out.drop_indexes([k for k in out.indexes if k not in ds.indexes])


def _split(var: xr.Variable) -> xr.Variable:
    import xarray as xr

    if var.dtype.kind != "c":
        return var
    data = np.stack([var.data.real, var.data.imag], axis=-1)  # dask stays lazy (NEP 18)
    attrs = {**var.attrs, "complex_as": "real, imaginary on the trailing ri dim"}
    return xr.Variable(var.dims + (RI,), data, attrs)


def _join(var: xr.Variable) -> xr.Variable:
    import xarray as xr

    if not var.dims or var.dims[-1] != RI or var.sizes[RI] != 2:
        return var
    data = var.data[..., 0] + 1j * var.data[..., 1]
    attrs = {k: v for k, v in var.attrs.items() if k not in NOTE_KEYS}
    return xr.Variable(var.dims[:-1], data, attrs)


def to_ri(ds: xr.Dataset) -> xr.Dataset:
    """Complex variables -> float variables with a trailing `ri` dim (real, imaginary); lazy."""
    return _rebuild(ds, _split)


def from_ri(ds: xr.Dataset) -> xr.Dataset:
    """Float variables with a trailing `ri` dim -> complex variables (inverse of to_ri); lazy."""
    out = _rebuild(ds, _join)
    out.encoding = dict(ds.encoding)
    return out
