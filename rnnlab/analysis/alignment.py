"""Lazy alignment of the low-rank vectors u_r, v_r with the task geometry (B, w, 1, J0B, J0^Tw)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from rnnlab.analysis import np_alignment
from rnnlab.analysis._common import COL, ROW, AnalysisError, as_float, require_vars, whole

__all__ = ["alignment"]


def _labels(da: xr.DataArray, dim: str) -> list[str]:
    """Channel names of `dim` (its coordinate, else 0, 1, ...)."""
    if dim in da.coords:
        return [str(x) for x in da[dim].values]
    return [str(i) for i in range(da.sizes[dim])]


def _kernel(u, v, *rest, has_b: bool, has_w: bool, has_j0: bool):
    """Task vectors from B (..., N, I), w (..., N, O), J0, then |cos| with u_r, v_r."""
    rest = list(rest)
    n = u.shape[-1]
    b = rest.pop(0) if has_b else np.zeros(u.shape[:-2] + (n, 0), u.dtype)
    w = rest.pop(0) if has_w else np.zeros(u.shape[:-2] + (n, 0), u.dtype)
    j0 = rest.pop(0) if has_j0 else None
    shape = np.broadcast_shapes(b.shape[:-2], w.shape[:-2])
    cols = np.concatenate(
        [np.broadcast_to(b, shape + b.shape[-2:]), np.broadcast_to(w, shape + w.shape[-2:])],
        axis=-1,
    )
    return np_alignment.alignment(u, v, np_alignment.task_vectors(cols, b.shape[-1], j0))


def alignment(fit: xr.Dataset, ds: xr.Dataset) -> xr.Dataset:
    """|cos| of each u_r and v_r of `fit` with the task vectors of `ds` -> align_u, align_v.

    Dims (..., rank, vector); `vector` labels: `B:<input>`, `w:<output>`, `ones`,
    `J0B:<input>` (J0 B_i: where J0 sends the input), `J0Tw:<output>` (J0^T w_o: what J0 feeds
    the readout). B and w are taken at the same epoch as the fit; missing B, w or J0 just drop
    their vectors.
    """
    require_vars(fit, ["u", "v"], "fit (from lowrank_fit)")
    u = whole(as_float(fit["u"]), ["rank", ROW])
    v = whole(as_float(fit["v"]), ["rank", COL]).rename({COL: ROW})
    b_names = _labels(ds["B"], "input") if "B" in ds else []
    w_names = _labels(ds["w"], "output") if "w" in ds else []
    labels = [f"B:{x}" for x in b_names] + [f"w:{x}" for x in w_names] + ["ones"]
    args, core = [u, v], [["rank", ROW], ["rank", ROW]]
    for name, dim in (("B", "input"), ("w", "output")):
        if name in ds:
            args.append(whole(as_float(ds[name]), [ROW, dim]).drop_vars(dim, errors="ignore"))
            core.append([ROW, dim])
    if "J0" in ds:
        args.append(whole(as_float(ds["J0"]), [ROW, COL]))
        core.append([ROW, COL])
        labels += [f"J0B:{x}" for x in b_names] + [f"J0Tw:{x}" for x in w_names]
    if any(a.sizes.get(ROW, u.sizes[ROW]) != u.sizes[ROW] for a in args):
        raise AnalysisError("fit and dataset disagree on the number of neurons")
    dtype = np.result_type(*(a.dtype for a in args))
    align_u, align_v = xr.apply_ufunc(
        _kernel,
        *args,
        kwargs={"has_b": "B" in ds, "has_w": "w" in ds, "has_j0": "J0" in ds},
        input_core_dims=core,
        output_core_dims=[["rank", "vector"], ["rank", "vector"]],
        dask="parallelized",
        output_dtypes=[dtype, dtype],
        dask_gufunc_kwargs={"output_sizes": {"vector": len(labels)}},
    )
    out = xr.Dataset({"align_u": align_u, "align_v": align_v}).assign_coords(vector=labels)
    out["align_u"].attrs = {"long_name": "|cos(u_r, vector)|", "units": "1"}
    out["align_v"].attrs = {"long_name": "|cos(v_r, vector)|", "units": "1"}
    return out
