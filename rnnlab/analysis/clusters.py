"""Lazy cluster statistics: k-means of neurons on last-epoch features, block means of J and dJ."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from rnnlab.analysis import np_clusters
from rnnlab.analysis._common import (
    COL,
    ROW,
    AnalysisError,
    as_float,
    delta_j,
    require_dims,
    require_vars,
    whole,
)
from rnnlab.analysis.lowrank import lowrank_fit

__all__ = ["neuron_features", "kmeans_labels", "cluster_stats"]

FEATURES = ("u", "v", "B", "w")


def _last(da: xr.DataArray) -> xr.DataArray:
    return da.isel(epoch=-1, drop=True) if "epoch" in da.dims else da


def neuron_features(
    ds: xr.Dataset, fit: xr.Dataset | None = None, rank: int = 2, features: Sequence[str] = FEATURES
) -> tuple[xr.DataArray, np.ndarray]:
    """Per-neuron features at the last epoch -> (X (..., neuron, feature), block id per feature).

    `u`: m_r u_r loadings (row profile of the rank-R dJ), `v`: m_r v_r (column profile), `B`,
    `w`: input and readout weights. The fit of dJ at the last epoch is computed when not given.
    """
    unknown = set(features) - set(FEATURES)
    if unknown or not features:
        raise AnalysisError(f"features must be a non-empty subset of {FEATURES}, got {features}")
    if {"u", "v"} & set(features):
        fit = lowrank_fit(_last(delta_j(ds)), rank) if fit is None else fit
        require_vars(fit, ["m", "u", "v"], "fit (from lowrank_fit)")
    blocks, parts = [], []
    for i, name in enumerate(features):
        if name in ("u", "v"):
            vec = (_last(fit[name]) * _last(fit["m"])).rename({COL: ROW} if name == "v" else {})
            part = vec.rename({"rank": "feature"})
        else:
            require_vars(ds, [name], f"dataset (feature {name!r})")
            part = _last(ds[name]).rename({"input" if name == "B" else "output": "feature"})
        part = as_float(part.drop_vars("feature", errors="ignore"))
        parts.append(part.transpose(..., ROW, "feature"))
        blocks += [i] * part.sizes["feature"]
    return xr.concat(parts, dim="feature"), np.array(blocks)


def kmeans_labels(
    x: xr.DataArray, blocks: np.ndarray, k: int, seed: int = 0, n_init: int = 10
) -> xr.DataArray:
    """k-means labels (..., neuron) of the rows of x (..., neuron, feature); see np_clusters."""
    require_dims(x, [ROW, "feature"], "features")
    if not 1 <= k <= x.sizes[ROW]:
        raise AnalysisError(f"k must be between 1 and the number of neurons, got {k}")
    out = xr.apply_ufunc(
        np_clusters.kmeans_labels,
        whole(x, [ROW, "feature"]),
        kwargs={"blocks": blocks, "k": k, "seed": seed, "n_init": n_init},
        input_core_dims=[[ROW, "feature"]],
        output_core_dims=[[ROW]],
        dask="parallelized",
        output_dtypes=[np.int64],
    )
    return out.rename("cluster").assign_attrs(
        long_name="k-means cluster of each neuron", units="1", rnnlab_categorical=1
    )


def _user_labels(labels, k: int, n: int) -> xr.DataArray:
    """User labels as a DataArray with dim neuron, checked when they are in memory."""
    if not isinstance(labels, xr.DataArray):
        arr = np.asarray(labels)
        if arr.ndim != 1:
            raise AnalysisError(
                f"labels must be 1-D (neuron,) or a DataArray, got shape {arr.shape}"
            )
        labels = xr.DataArray(arr, dims=[ROW])
    require_dims(labels, [ROW], "labels")
    if labels.sizes[ROW] != n:
        raise AnalysisError(f"labels has {labels.sizes[ROW]} neurons, the network has {n}")
    if labels.dtype.kind not in "iu":
        raise AnalysisError(f"labels must be integers, got dtype {labels.dtype}")
    if labels.chunks is None and (labels.min() < 0 or labels.max() >= k):
        raise AnalysisError(f"labels must lie in 0..{k - 1} for k={k}")
    return labels.rename("cluster").assign_attrs(
        long_name="cluster of each neuron (given)", units="1", rnnlab_categorical=1
    )


def cluster_stats(
    ds: xr.Dataset,
    k: int = 2,
    labels=None,
    *,
    fit: xr.Dataset | None = None,
    rank: int = 2,
    features: Sequence[str] = FEATURES,
    seed: int = 0,
) -> xr.Dataset:
    """Cluster neurons (k-means on last-epoch features, or user `labels`) and block-average J, dJ.

    Returns `cluster` (seed, neuron), `block_J`, `block_dJ` (seed, epoch, cluster, cluster_pre),
    plus `row_mean` / `col_mean` from `ds` when present.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise AnalysisError(f"k must be a positive integer, got {k!r}")
    require_vars(ds, ["J0"], "dataset")
    n = ds.sizes[ROW]
    if labels is None:
        x, blocks = neuron_features(ds, fit=fit, rank=rank, features=features)
        lab = kmeans_labels(x, blocks, k, seed=seed)
    else:
        lab = _user_labels(labels, k, n)
    stored = "dJ" if "dJ" in ds else "J"
    require_vars(ds, [stored], "dataset (needs dJ or J)")
    block_j, block_dj = xr.apply_ufunc(
        np_clusters.block_stats,
        whole(as_float(ds[stored]), [ROW, COL]),
        whole(as_float(ds["J0"]), [ROW, COL]),
        whole(lab, [ROW]),
        kwargs={"k": k, "stored_is_dj": stored == "dJ"},
        input_core_dims=[[ROW, COL], [ROW, COL], [ROW]],
        output_core_dims=[["cluster", "cluster_pre"]] * 2,
        dask="parallelized",
        output_dtypes=[np.float64, np.float64],
        dask_gufunc_kwargs={"output_sizes": {"cluster": k, "cluster_pre": k}},
    )
    out = xr.Dataset(
        {
            "cluster": lab,
            "block_J": block_j.assign_attrs(long_name="block mean of J", units="1"),
            "block_dJ": block_dj.assign_attrs(long_name="block mean of dJ", units="1"),
        }
    )
    for name in ("row_mean", "col_mean"):
        if name in ds:
            out[name] = ds[name]
    return out
