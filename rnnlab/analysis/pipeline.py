"""`analyze`: every analysis of an archive merged into one lazy Dataset."""

from __future__ import annotations

import xarray as xr

from rnnlab.analysis._common import COL, ROW, AnalysisError, delta_j
from rnnlab.analysis.alignment import alignment
from rnnlab.analysis.clusters import cluster_stats
from rnnlab.analysis.inloop_parts import inloop_parts, network_options, network_parts
from rnnlab.analysis.lowrank import imposed_strength, lowrank_fit, shrinkage
from rnnlab.analysis.outliers import outliers
from rnnlab.data.grid import flatten, grid_dims, unflatten_like
from rnnlab.data.schema import SEED_SETTINGS
from rnnlab.runtime import no_client_lookup

__all__ = ["analyze", "analyze_in_steps", "group_epochs", "join_results", "SCHEMA"]

SCHEMA = "rnnlab-analysis/1"
TASK_BYTES = 2.5 * 2**20


def group_epochs(ds: xr.Dataset, epochs_per_task: int | None = None) -> xr.Dataset:
    """Regroup dask chunks along `epoch` so one task holds several (seed, epoch) matrices.

    The archive stores one matrix per chunk; with small matrices the dask graph (about 50 tasks
    and ~100 kB of scheduler memory per chunk in `analyze`) then outweighs the data. None picks
    about 2.5 MB of stored matrix per task (float32: N=500 -> 2 epochs, N=100 -> 65).
    """
    if "epoch" not in ds.dims or all(v.chunks is None for v in ds.data_vars.values()):
        return ds  # (ds.chunks would raise for archives with mixed chunking)
    if epochs_per_task is None:
        n = ds.sizes.get(ROW, 1) * ds.sizes.get(COL, 1)
        item = max((v.dtype.itemsize for v in ds.data_vars.values() if v.ndim >= 4), default=4)
        epochs_per_task = max(1, int(TASK_BYTES // (n * item)))
    if isinstance(epochs_per_task, bool) or not isinstance(epochs_per_task, int):
        raise AnalysisError(f"epochs_per_task must be a positive integer, got {epochs_per_task!r}")
    if epochs_per_task < 1:
        raise AnalysisError(f"epochs_per_task must be a positive integer, got {epochs_per_task}")
    out = ds.copy()
    for name, var in ds.data_vars.items():
        if "epoch" in var.dims and var.chunks is not None:
            axis = var.get_axis_num("epoch")
            out[name] = var.copy(data=var.data.rechunk({axis: epochs_per_task}))
    return out


def analyze(
    ds: xr.Dataset,
    rank: int = 2,
    k: int = 2,
    *,
    epochs_per_task: int | None = None,
    network: bool | dict = False,
) -> xr.Dataset:
    """Low-rank fit, shrinkage, alignment, imposed strength, outliers and clusters of an archive.

    Parts whose inputs the archive lacks are left out (no J0: no shrinkage or clusters; no
    eigvals: no outliers; no imposed_u/v: no imposed_strength). Per-run settings (g, b, lr, ...,
    run) become coordinates along seed, for across_seeds(res, by="g"). A sweep's grid
    (rnnlab.data.grid: swept settings as dims beside `seed`) keeps its dims in the results;
    cells without an archive are NaN. Nothing is computed until
    `.compute()` (or rnnlab.analysis.compute) is called on the result. Dask inputs are regrouped
    to `epochs_per_task` matrices per task first (see group_epochs).

    Also the outlier ladder at the last epoch and `lambda_task` (NumPy, when the archive has a
    config). `network=True` (or a dict of `inloop_parts` options) adds the analyses that
    re-simulate the networks (torch): evaluate, functional_rank, shuffle_control (last epoch)
    and fixed_points (every epoch); see rnnlab.analysis.inloop_parts. It is `join_results` of
    the two steps of `analyze_in_steps`, which a caller can compute one after the other.
    """
    return join_results(
        *analyze_in_steps(ds, rank, k, epochs_per_task=epochs_per_task, network=network)
    )


def analyze_in_steps(
    ds: xr.Dataset,
    rank: int = 2,
    k: int = 2,
    *,
    epochs_per_task: int | None = None,
    network: bool | dict = False,
) -> tuple[xr.Dataset, xr.Dataset | None]:
    """`analyze(ds, ...)` as two lazy Datasets: everything but the network analyses, and those
    (None without `network`). They only read the archive, so nothing is computed twice, and the
    first can be used while the second computes (`rnnlab analyze` draws its figures meanwhile);
    `join_results` of the two, lazy or computed, is `analyze(ds, ...)`."""
    with no_client_lookup():  # (a rechunk would look for a client: rnnlab.runtime)
        base = _analyze(ds, rank, k, epochs_per_task, network, network_step=False)
        if network_options(network) is None:
            return base, None
        return base, _analyze(ds, rank, k, epochs_per_task, network, network_step=True)


def join_results(base: xr.Dataset, network: xr.Dataset | None) -> xr.Dataset:
    """The two Datasets of `analyze_in_steps` (lazy or computed) as one: the network variables
    after the others, the per-run settings coordinates last (where each step puts them)."""
    if network is None:
        return base
    out = xr.merge([base, network], compat="override", join="exact", combine_attrs="drop_conflicts")
    settings = [n for n in _settings(base) if n in out.coords and n not in out.indexes]
    out = out.reset_coords(settings).set_coords(settings)  # moved after the network's
    out.attrs = dict(base.attrs)
    return out


def _settings(ds: xr.Dataset) -> list[str]:
    return [n for n in (*SEED_SETTINGS, "run") if n in ds.variables]


def _analyze(
    ds: xr.Dataset, rank: int, k: int, epochs_per_task: int | None, network, *, network_step: bool
) -> xr.Dataset:
    """One step of `analyze_in_steps`: the network analyses (`network_step`) or all the others."""
    if not isinstance(ds, xr.Dataset):
        raise AnalysisError(f"analyze needs an xarray.Dataset, got {type(ds).__name__}")
    network_options(network)  # a bad option is refused before anything else
    dims = grid_dims(ds)
    if dims:  # a sweep's grid: analysed member by member (flat), returned on the same grid
        flat = flatten(ds)
        if flat.sizes["seed"] == 0:
            raise AnalysisError("the sweep's grid holds no archive yet: nothing to analyse")
        res = _analyze(flat, rank, k, epochs_per_task, network, network_step=network_step)
        res = res.assign_coords({d: flat[d].reset_coords(drop=True) for d in dims})
        return unflatten_like(res, ds)
    ds = group_epochs(ds, epochs_per_task)
    if network_step:
        parts = network_parts(ds, network)
    else:
        parts = _base_parts(ds, rank, k)
        parts += inloop_parts(ds, parts[-1] if "eigvals" in ds else None, network)
    # variable attrs (units, long_name, the `rnnlab_categorical` marker of cluster labels that
    # across_seeds relies on) must survive the merge: drop only attrs the parts disagree on
    out = xr.merge(parts, compat="override", join="exact", combine_attrs="drop_conflicts")
    settings = [n for n in _settings(ds) if n not in out.variables]
    out = out.assign_coords({n: ds[n].reset_coords(drop=True) for n in settings})
    out.attrs = {"rnnlab_schema": SCHEMA, "rank": rank, "clusters": k}
    for key in ("sources", "title"):
        if key in ds.attrs:
            out.attrs[key] = ds.attrs[key]
    return out


def _base_parts(ds: xr.Dataset, rank: int, k: int) -> list[xr.Dataset]:
    """The parts of `analyze` that do not re-simulate networks, the outliers (if any) last."""
    dj = delta_j(ds)
    fit = lowrank_fit(dj, rank)
    parts = [fit, alignment(fit, ds)]
    if "J0" in ds:
        parts.append(shrinkage(dj, ds["J0"], rank))
        parts.append(cluster_stats(ds, k, fit=fit, rank=rank))
    if {"imposed_u", "imposed_v"} <= set(ds.variables):
        strength = imposed_strength(u=ds["imposed_u"], v=ds["imposed_v"], dJ=dj)
        parts.append(strength.to_dataset())
    if "eigvals" in ds:
        parts.append(outliers(ds, fit=fit))
    return parts
