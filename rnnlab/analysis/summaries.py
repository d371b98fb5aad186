"""Lazy summaries across seeds: mean, sd, 5/50/95 % quantiles on a new `stat` dim."""

from __future__ import annotations

import numpy as np
import xarray as xr

from rnnlab.analysis import np_summaries
from rnnlab.analysis._common import AnalysisError, result_vars, whole

__all__ = ["across_seeds"]


def _stat_dtype(dtype: np.dtype) -> np.dtype:
    if dtype.kind in "fc":
        return dtype
    return np.dtype(np.float64)


def _reduce(da: xr.DataArray) -> xr.DataArray:
    """One apply_ufunc over `seed` (rechunked to a single chunk) for one variable."""
    dtype = _stat_dtype(da.dtype)
    da = whole(da, ["seed"])
    out = xr.apply_ufunc(
        np_summaries.seed_stats,
        da,
        input_core_dims=[["seed"]],
        output_core_dims=[["stat"]],
        dask="parallelized",
        output_dtypes=[dtype],
        dask_gufunc_kwargs={"output_sizes": {"stat": len(np_summaries.STATS)}},
        keep_attrs=True,
    )
    return out.drop_vars([c for c in out.coords if "seed" in out[c].dims])


def _skip(da: xr.DataArray) -> bool:
    """Variables not summarised: no seed dim, categorical labels, strings."""
    return (
        "seed" not in da.dims or bool(da.attrs.get("rnnlab_categorical")) or da.dtype.kind in "OSUb"
    )


def across_seeds(obj: xr.Dataset | xr.DataArray, by: str | None = None):
    """Reduce every variable with a `seed` dim to mean, sd (ddof=1), q05, q50, q95 over seeds.

    NaN are ignored; complex values are summarised part by part. Variables without `seed` pass
    through; categorical ones (cluster labels) are dropped. `by` (a seed coordinate such as `g`)
    summarises each group of seeds separately, along a new dim named `by`; on a sweep's grid
    a swept dim is already one (`by="g"` there is the plain summary, per g).
    """
    if not isinstance(obj, xr.Dataset | xr.DataArray):
        raise AnalysisError(f"across_seeds needs an xarray object, got {type(obj).__name__}")
    if "seed" not in obj.dims:
        raise AnalysisError(f"across_seeds needs a 'seed' dimension; dims are {list(obj.dims)}")
    if by is not None and by in obj.dims and by != "seed":  # a swept dim of a grid
        return across_seeds(obj)
    if by is not None:
        if by not in obj.variables or obj[by].dims != ("seed",):
            raise AnalysisError(f"by={by!r} must be a coordinate or variable along 'seed'")
        key = obj[by].compute()  # group labels must be in memory (small: one per seed)
        return obj.groupby(key).map(across_seeds)
    if isinstance(obj, xr.DataArray):
        if _skip(obj):
            raise AnalysisError(f"{obj.name!r} is categorical or not numeric: nothing to summarise")
        return _reduce(obj).assign_coords(stat=list(np_summaries.STATS))
    out = {}
    for name, da in result_vars(obj).items():
        if "seed" not in da.dims:
            out[name] = da
        elif not _skip(da):
            out[name] = _reduce(da)
    keep = {c: v for c, v in obj.coords.items() if "seed" not in v.dims and c not in out}
    res = xr.Dataset(out, coords=keep, attrs=obj.attrs)
    return res.assign_coords(stat=list(np_summaries.STATS))
