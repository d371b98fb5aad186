"""Lazy outlier analysis: measured outliers of J over epochs next to low-rank predictions."""

from __future__ import annotations

import numpy as np
import xarray as xr

from rnnlab.analysis import np_outliers
from rnnlab.analysis._common import (
    COL,
    ROW,
    AnalysisError,
    as_float,
    delta_j,
    require_vars,
    whole,
)
from rnnlab.analysis.lowrank import lowrank_fit

__all__ = ["outliers"]

ATTRS = {
    "outlier": ("outliers of J outside the bulk edge, tracked over epochs", "1"),
    "outlier_meanfield": (
        "mean-field outliers of the rank-R fit of dJ (eig of m_r v_r^T u_s)",
        "1",
    ),
    "outlier_exact": ("exact outliers of J0 + rank-R fit of dJ (determinant lemma)", "1"),
    "n_outliers": ("number of eigenvalues of J outside the bulk edge", "1"),
    "max_re_jac": ("largest real part of the Jacobian eigenvalues", "1/tau"),
    "crossing_epoch": ("epoch at which max_re_jac crosses 0 upward (interpolated)", "epoch"),
    "bulk_radius": ("bulk edge g (1 + 2/sqrt(N)) used to call outliers of J", "1"),
}


def outliers(
    ds: xr.Dataset,
    fit: xr.Dataset | None = None,
    *,
    rank: int = 2,
    slots: int | None = None,
    exact: bool = True,
) -> xr.Dataset:
    """Outliers of J (`eigvals`) tracked across epochs and predicted from the low-rank fit of dJ.

    `outlier`, `outlier_meanfield`, `outlier_exact` (seed, epoch, outlier) share slots: a
    prediction sits in the slot of the measured outlier it matches (within the bulk edge),
    otherwise in an empty slot. slots defaults to 2 rank + 4: each learned rank can give a
    complex pair, plus -b, the imposed outlier and room for the matching to keep its curves.
    Also n_outliers, max_re_jac (seed, epoch), crossing_epoch, bulk_radius (seed). g comes from
    the `g` variable or coordinate, else sqrt(N) std(J0). exact=False skips the exact roots.
    """
    require_vars(ds, ["eigvals", "J0"], "dataset (outliers)")
    if "epoch" not in ds["eigvals"].dims:
        raise AnalysisError("outliers needs an 'epoch' dimension to track outliers")
    fit = lowrank_fit(delta_j(ds), rank) if fit is None else fit
    require_vars(fit, ["m", "u", "v"], "fit (from lowrank_fit)")
    slots = 2 * fit.sizes["rank"] + 4 if slots is None else slots
    if isinstance(slots, bool) or not isinstance(slots, int) or slots < 1:
        raise AnalysisError(f"slots must be a positive integer, got {slots!r}")
    has_jac = "eigvals_jac" in ds
    g = ds["g"] if "g" in ds.variables else xr.DataArray(np.nan)  # coordinate or variable
    args = [
        whole(as_float(fit["m"]), ["epoch", "rank"]),
        whole(as_float(fit["u"]), ["epoch", "rank", ROW]),
        whole(as_float(fit["v"]), ["epoch", "rank", COL]),
        whole(as_float(ds["J0"]), [ROW, COL]),
        as_float(g.reset_coords(drop=True)),
        whole(ds["eigvals"], ["epoch", "eig"]),
    ]
    core = [["epoch", "rank"], ["epoch", "rank", ROW], ["epoch", "rank", COL], [ROW, COL], []]
    core.append(["epoch", "eig"])
    if has_jac:
        args.append(whole(ds["eigvals_jac"], ["epoch", "eig"]))
        core.append(["epoch", "eig"])
    outs = xr.apply_ufunc(
        np_outliers.outliers,
        *args,
        kwargs={"epochs": ds["epoch"].values, "slots": slots, "exact": exact},
        input_core_dims=core,
        output_core_dims=[["epoch", "outlier"]] * 3 + [["epoch"]] * 2 + [[]] * 2,
        dask="parallelized",
        output_dtypes=[complex] * 3 + [np.int64, float, float, float],
        dask_gufunc_kwargs={"output_sizes": {"outlier": slots}},
    )
    out = xr.Dataset(dict(zip(ATTRS, outs, strict=True)))
    for name, (long_name, units) in ATTRS.items():
        out[name].attrs = {"long_name": long_name, "units": units}
    return out.assign_coords(epoch=ds["epoch"])
