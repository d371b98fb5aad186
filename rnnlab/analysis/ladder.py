"""Which part of ΔJ makes the outlier: the spectrum of J0 + ΔJ_R over a ladder of ranks R
(`outlier_ladder`), and the task's own eigenvalue from theory (`lambda_task`).

`outlier_ladder` is one `xr.apply_ufunc(..., dask="parallelized")` over np_ladder (NumPy only).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from rnnlab.analysis import np_ladder
from rnnlab.analysis._common import COL, ROW, AnalysisError, as_float, delta_j, require_vars, whole
from rnnlab.analysis.inloop import EVAL, _at, _finish, _ranks, member_configs, select_epochs
from rnnlab.config import Config
from rnnlab.spectra import theory

__all__ = ["LADDER_RANKS", "LADDER_SLOTS", "lambda_task", "outlier_ladder", "task_eigenvalue"]

LADDER_RANKS = (0, 1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 50)  # and N, always added
LADDER_SLOTS = 8
RUNG = "ladder_rank"  # the dim of the ladder: R of each rung


def outlier_ladder(
    ds: xr.Dataset,
    ranks: Sequence[int] = LADDER_RANKS,
    *,
    epoch: Any = -1,
    measured: xr.DataArray | None = None,
    slots: int = LADDER_SLOTS,
) -> xr.Dataset:
    """Eigenvalues of J0 + ΔJ_R for each R of `ranks` (completed with 0 and N) and, per measured
    outlier of J, the smallest R that reproduces it.

    `measured` (seed, eval_epoch, outlier) complex, e.g. `outliers(ds)["outlier"]` at the same
    epochs renamed to eval_epoch; by default the outliers of the archive's `eigvals` (|λ| above
    the bulk edge g (1 + 2/√N)) by descending real part in `slots` places. Returns
    `ladder_eigvals` (seed, eval_epoch, ladder_rank, eig), `ladder_exact` and `ladder_meanfield`
    (seed, eval_epoch, ladder_rank, outlier): the eigenvalue of J0 + ΔJ_R, and of ΔJ_R alone
    (mean field), matched to each measured outlier; `ladder_from_rank`,
    `ladder_from_rank_meanfield` (seed, eval_epoch, outlier): the smallest R from which the
    prediction stays within `ladder_tol` (the finite-N spread of the outlier) at every larger R
    of the ladder; `ladder_measured`, the measured outliers.
    """
    require_vars(ds, ["J0"], "dataset (outlier_ladder)")
    epochs = select_epochs(ds, epoch)
    n = ds.sizes[ROW]
    rank_values = _ranks(ranks, n)
    g = ds["g"] if "g" in ds.variables else xr.DataArray(np.nan)
    g = as_float(g.reset_coords(drop=True))
    if measured is None:
        require_vars(ds, ["eigvals"], "dataset (outlier_ladder needs eigvals or measured=)")
        edge = xr.apply_ufunc(
            lambda gg, j0: np_ladder.edge(gg, j0)[1],
            g,
            whole(as_float(ds["J0"]), [ROW, COL]).reset_coords(drop=True),
            input_core_dims=[[], [ROW, COL]],
            dask="parallelized",
            output_dtypes=[float],
        )
        measured = xr.apply_ufunc(
            np_ladder.measured_batch,
            _at(ds, ds["eigvals"], epochs, ["eig"]),
            edge,
            kwargs={"slots": slots},
            input_core_dims=[["eig"], []],
            output_core_dims=[["outlier"]],
            dask="parallelized",
            output_dtypes=[complex],
            dask_gufunc_kwargs={"output_sizes": {"outlier": slots}},
        )
    elif EVAL not in measured.dims or "outlier" not in measured.dims:
        raise AnalysisError("measured needs dims (seed, eval_epoch, outlier)")
    measured = whole(measured.reset_coords(drop=True), ["outlier"])
    outs = xr.apply_ufunc(
        np_ladder.ladder,
        _at(ds, as_float(ds["J0"]), epochs, [ROW, COL]),
        _at(ds, as_float(delta_j(ds)), epochs, [ROW, COL]),
        g,
        measured,
        kwargs={"ranks": rank_values},
        input_core_dims=[[ROW, COL], [ROW, COL], [], ["outlier"]],
        output_core_dims=[[RUNG, "eig"], [RUNG, "outlier"], [RUNG, "outlier"]] + [["outlier"]] * 3,
        dask="parallelized",
        output_dtypes=[complex] * 3 + [float] * 3,
        dask_gufunc_kwargs={"output_sizes": {RUNG: len(rank_values), "eig": n}},
    )
    text = {
        "ladder_eigvals": "eigenvalues of J0 + dJ_R (descending real part)",
        "ladder_exact": "eigenvalue of J0 + dJ_R matched to the measured outlier",
        "ladder_meanfield": "eigenvalue of dJ_R alone (mean field) matched to the measured outlier",
        "ladder_from_rank": "smallest R from which J0 + dJ_R reproduces the outlier",
        "ladder_from_rank_meanfield": "smallest R from which dJ_R alone (mean field) reproduces it",
        "ladder_tol": "tolerance: finite-N spread of the outlier (outlier_spread, kappa = 1)",
    }
    out = xr.Dataset(
        {k: v.assign_attrs(long_name=text[k], units="1") for k, v in zip(text, outs, strict=True)}
    )
    out["ladder_measured"] = measured.assign_attrs(
        long_name="measured outliers of J the ladder is compared with", units="1"
    )
    out = out.assign_coords({RUNG: rank_values, EVAL: epochs})
    out[RUNG].attrs = {"long_name": "rank R of the truncation of dJ (N: all of dJ)", "units": "1"}
    return _finish(out, ds, {})


def task_eigenvalue(cfg: Config) -> float:
    """The eigenvalue of J that the optimal linear network needs (`theory.kalman_pole`), or NaN
    where no closed form applies: only for phi = linear on `denoise` (or `track`, obs_noise = 0)
    with one stimulus or uncorrelated stimuli (then every stimulus has the same pole)."""
    task, model = cfg.task, cfg.model
    if model.phi != "linear" or task.kind not in ("denoise", "track"):
        return float("nan")
    if task.n_stimuli > 1 and task.correlation != 0:
        return float("nan")
    noise = task.obs_noise if task.kind == "denoise" else 0.0
    return float(theory.kalman_pole(model.tau, model.dt, task.tau_ou, task.sigma_ou, noise))


def lambda_task(ds: xr.Dataset) -> xr.DataArray:
    """`task_eigenvalue` of every member's config, (seed,); NumPy only, computed now."""
    configs, index = member_configs(ds)
    values = np.array([task_eigenvalue(c) for c in configs])[index.values]
    return xr.DataArray(
        values,
        dims="seed",
        name="lambda_task",
        attrs={
            "long_name": "eigenvalue of J at which the linear network's Euler map has the "
            "steady-state Kalman pole (NaN: no closed form)",
            "units": "1",
        },
    )
