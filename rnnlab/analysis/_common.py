"""Shared checks and helpers for the xarray wrappers (no numerics here)."""

from __future__ import annotations

from collections.abc import Iterable

import xarray as xr

from rnnlab.errors import AnalysisError

ROW, COL = "neuron", "neuron_pre"


def require_dims(da: xr.DataArray, dims: Iterable[str], what: str) -> None:
    """Raise AnalysisError unless `da` has every dim in `dims`."""
    missing = [d for d in dims if d not in da.dims]
    if missing:
        raise AnalysisError(f"{what} lacks dimension(s) {missing}; it has {list(da.dims)}")


def require_vars(ds: xr.Dataset, names: Iterable[str], what: str = "dataset") -> None:
    """Raise AnalysisError unless `ds` has every variable in `names`."""
    missing = [n for n in names if n not in ds.variables]
    if missing:
        raise AnalysisError(f"{what} lacks variable(s) {missing}")


def check_rank(rank: int, n: int) -> int:
    """Validate a fit rank against the matrix size."""
    if isinstance(rank, bool) or not isinstance(rank, int) or not 1 <= rank <= n:
        raise AnalysisError(f"rank must be an integer between 1 and {n}, got {rank!r}")
    return rank


def whole(da: xr.DataArray, dims: Iterable[str]) -> xr.DataArray:
    """Rechunk a dask-backed array so that each of `dims` is one chunk (no-op for NumPy)."""
    if da.chunks is None:
        return da
    # rechunk the data only: DataArray.chunk would also turn coordinates into dask arrays
    return da.copy(data=da.data.rechunk({da.get_axis_num(d): -1 for d in dims}))


def as_float(da: xr.DataArray) -> xr.DataArray:
    """Integer or boolean arrays as float64; float and complex arrays unchanged."""
    return da if da.dtype.kind in "fc" else da.astype("float64")


def delta_j(ds: xr.Dataset) -> xr.DataArray:
    """dJ from the archive: the stored `dJ`, else J - J0 (lazy)."""
    if "dJ" in ds:
        return ds["dJ"]
    require_vars(ds, ["J", "J0"], "dataset (needs dJ, or J and J0)")
    return (ds["J"] - ds["J0"]).rename("dJ")


def gufunc_kwargs(**sizes: int) -> dict:
    """dask_gufunc_kwargs for apply_ufunc: sizes of new output core dims."""
    return {"output_sizes": sizes} if sizes else {}


def result_vars(ds: xr.Dataset) -> dict[str, xr.DataArray]:
    """Data variables plus results that xarray keeps as coordinates because they share a
    dimension's name (`sv`, `outlier`, `cluster`): every non-index coordinate named like a dim
    that is more than that dim's labels (`seed` without an index, for repeated seeds, is a label
    along its own dim only)."""
    out = dict(ds.data_vars.items())
    for name in ds.coords:
        if name in ds.dims and name not in ds.indexes and ds[name].dims != (name,):
            out[name] = ds[name]
    return out
