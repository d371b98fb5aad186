"""Lazy low-rank fits of dJ, shrinkage toward -J0 and the strength of an imposed m u v^T.

Each function is one `xr.apply_ufunc(..., dask="parallelized")` over a kernel in np_lowrank, so
a dask-backed input stays lazy and each (seed, epoch) matrix is reduced independently.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from rnnlab.analysis import np_lowrank
from rnnlab.analysis._common import (
    COL,
    ROW,
    AnalysisError,
    as_float,
    check_rank,
    gufunc_kwargs,
    require_dims,
    whole,
)

__all__ = ["lowrank_fit", "shrinkage", "imposed_strength"]

FIT_VARS = ("m", "u", "v", "explained", "explained_cum", "sv")
LONG_NAMES = {
    "m": "singular value m_r of the rank-R fit",
    "u": "left singular vector u_r (unit norm, sign rule: largest |entry| positive)",
    "v": "right singular vector v_r (unit norm, flipped with u_r)",
    "explained": "fraction of ||.||_F^2 explained by component r",
    "explained_cum": "fraction of ||.||_F^2 explained by components 1..r",
    "sv": "all singular values, descending",
}


def _fit_dataset(outs: tuple[xr.DataArray, ...], rank: int, prefix: str = "") -> xr.Dataset:
    """Name the lowrank outputs, add the 1-based `rank` coordinate and long_name attributes."""
    ds = xr.Dataset({prefix + k: a for k, a in zip(FIT_VARS, outs, strict=True)})
    for k in FIT_VARS:
        ds[prefix + k].attrs = {"long_name": LONG_NAMES[k], "units": "1"}
    return ds.assign_coords(rank=np.arange(1, rank + 1))


FIT_CORE = [["rank"], ["rank", ROW], ["rank", COL], ["rank"], ["rank"], ["sv"]]


def _matrix(dj: xr.DataArray, what: str) -> xr.DataArray:
    if not isinstance(dj, xr.DataArray):
        raise AnalysisError(f"{what} must be an xarray.DataArray, got {type(dj).__name__}")
    require_dims(dj, [ROW, COL], what)
    return whole(as_float(dj), [ROW, COL])


def lowrank_fit(dJ: xr.DataArray, rank: int = 2) -> xr.Dataset:
    """Rank-R SVD fit dJ ~ sum_r m_r u_r v_r^T of every (..., neuron, neuron_pre) matrix.

    Returns m, explained, explained_cum (..., rank); u (..., rank, neuron); v (..., rank,
    neuron_pre); sv (..., sv). Lazy for dask input. See np_lowrank for the sign rule.
    """
    dj = _matrix(dJ, "dJ")
    n, p = dj.sizes[ROW], dj.sizes[COL]
    check_rank(rank, min(n, p))
    dtype = np_lowrank.FLOAT
    outs = xr.apply_ufunc(
        np_lowrank.lowrank,
        dj,
        kwargs={"rank": rank},
        input_core_dims=[[ROW, COL]],
        output_core_dims=FIT_CORE,
        dask="parallelized",
        output_dtypes=[dtype] * 6,
        dask_gufunc_kwargs=gufunc_kwargs(rank=rank, sv=min(n, p)),
    )
    return _fit_dataset(outs, rank)


def shrinkage(dJ: xr.DataArray, J0: xr.DataArray, rank: int = 2) -> xr.Dataset:
    """kappa = -<dJ, J0>/||J0||_F^2 and the rank-R fit of dJ + kappa J0 (variables `corr_*`).

    Also ones_align_u / ones_align_v (..., rank): |cos| of corr_u_r / corr_v_r with 1/sqrt(N),
    which flags the rank-one change along 1 made by the balance regulariser.
    """
    dj = _matrix(dJ, "dJ")
    j0 = _matrix(J0, "J0")
    if (j0.sizes[ROW], j0.sizes[COL]) != (dj.sizes[ROW], dj.sizes[COL]):
        raise AnalysisError(
            f"J0 is {j0.sizes[ROW]}x{j0.sizes[COL]} but dJ is {dj.sizes[ROW]}x{dj.sizes[COL]}"
        )
    n, p = dj.sizes[ROW], dj.sizes[COL]
    check_rank(rank, min(n, p))
    dtype = np_lowrank.FLOAT
    outs = xr.apply_ufunc(
        np_lowrank.shrinkage,
        dj,
        j0,
        kwargs={"rank": rank},
        input_core_dims=[[ROW, COL], [ROW, COL]],
        output_core_dims=[[], *FIT_CORE, ["rank"], ["rank"]],
        dask="parallelized",
        output_dtypes=[dtype] * 9,
        dask_gufunc_kwargs=gufunc_kwargs(rank=rank, sv=min(n, p)),
    )
    ds = _fit_dataset(outs[1:7], rank, prefix="corr_")
    ds["kappa"] = outs[0].assign_attrs(
        long_name="shrinkage of dJ toward -J0: -<dJ, J0>/||J0||_F^2", units="1"
    )
    ds["ones_align_u"] = outs[7].assign_attrs(long_name="|cos(corr_u_r, 1)|", units="1")
    ds["ones_align_v"] = outs[8].assign_attrs(long_name="|cos(corr_v_r, 1)|", units="1")
    return ds


def _vector(vec: xr.DataArray, name: str, dim: str) -> xr.DataArray:
    """A neuron vector with dim `neuron` or `neuron_pre`, renamed to `dim`, one chunk along it."""
    if not isinstance(vec, xr.DataArray):
        raise AnalysisError(f"{name} must be an xarray.DataArray, got {type(vec).__name__}")
    have = [d for d in (ROW, COL) if d in vec.dims]
    if len(have) != 1:
        raise AnalysisError(f"{name} needs exactly one of dims {ROW!r}, {COL!r}; has {vec.dims}")
    return whole(as_float(vec), have).rename({have[0]: dim} if have[0] != dim else {})


def imposed_strength(
    J: xr.DataArray | None = None,
    J0: xr.DataArray | None = None,
    u: xr.DataArray | None = None,
    v: xr.DataArray | None = None,
    *,
    dJ: xr.DataArray | None = None,
) -> xr.DataArray:
    """v^T (J - J0) u / v^T u for an imposed m u v^T: the learned shift of its outlier.

    u and v are the imposed vectors (archive `imposed_u`, `imposed_v`), dim neuron or neuron_pre.
    Pass dJ= instead of J and J0 when the archive stores dJ (exact, no J0 + dJ - J0 rounding).
    """
    if u is None or v is None:
        raise AnalysisError("imposed_strength needs the imposed vectors u and v")
    uu = _vector(u, "u", COL)  # u multiplies the columns of J - J0
    vv = _vector(v, "v", ROW)  # v the rows
    if dJ is not None:
        mats, kernel = [_matrix(dJ, "dJ")], np_lowrank.imposed_shift
    elif J is not None and J0 is not None:
        mats, kernel = [_matrix(J, "J"), _matrix(J0, "J0")], np_lowrank.imposed_strength
    else:
        raise AnalysisError("imposed_strength needs J and J0, or dJ=")
    out = xr.apply_ufunc(
        kernel,
        *mats,
        uu,
        vv,
        input_core_dims=[[ROW, COL]] * len(mats) + [[COL], [ROW]],
        dask="parallelized",
        output_dtypes=[np.float64],
    )
    return out.rename("imposed_strength").assign_attrs(
        long_name="v^T (J - J0) u / v^T u (shift of the imposed outlier)", units="1"
    )
