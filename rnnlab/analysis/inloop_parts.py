"""The in-the-loop parts of `analyze`: outlier ladder and lambda_task (NumPy, always, when their
inputs exist) and, on request, the analyses that re-simulate the networks (torch).

Kept apart from pipeline.py so that `analyze` stays a short merge of parts.
"""

from __future__ import annotations

from typing import Any

import xarray as xr

from rnnlab.analysis._common import AnalysisError
from rnnlab.analysis.fixed_points import fixed_points
from rnnlab.analysis.inloop import (
    DEFAULT_RANKS,
    DEFAULT_TRIALS,
    EVAL,
    network_analyses,
    select_epochs,
)
from rnnlab.analysis.ladder import LADDER_RANKS, lambda_task, outlier_ladder

__all__ = ["NETWORK_DEFAULTS", "inloop_parts", "network_options", "network_parts"]

NETWORK_DEFAULTS: dict[str, Any] = {
    "epoch": -1,  # snapshot epochs of evaluate, functional_rank, shuffle_control, the ladder
    "n_trials": DEFAULT_TRIALS,  # fresh trials per member (evaluate, functional_rank, shuffle)
    "ranks": DEFAULT_RANKS,  # functional_rank (0 and N added)
    "ladder_ranks": LADDER_RANKS,  # outlier_ladder (0 and N added)
    "functional_rank": True,
    "shuffle": True,
    "fixed_points": True,  # at every snapshot epoch
    "fp_inputs": (0.0,),  # constant inputs of the fixed-point search
    "device": "auto",
}


def network_options(network: bool | dict) -> dict[str, Any] | None:
    """The options of the network analyses (None: off): defaults updated from a dict."""
    if network is False or network is None:
        return None
    opts = dict(NETWORK_DEFAULTS)
    if isinstance(network, dict):
        unknown = set(network) - set(NETWORK_DEFAULTS)
        if unknown:
            raise AnalysisError(
                f"unknown network option(s) {sorted(unknown)}; known: {sorted(NETWORK_DEFAULTS)}"
            )
        opts.update(network)
    elif network is not True:
        raise AnalysisError(f"network must be True, False or a dict of options, got {network!r}")
    return opts


def _has_config(ds: xr.Dataset) -> bool:
    return "config" in ds.attrs or "run_configs" in ds.attrs


def inloop_parts(
    ds: xr.Dataset, found: xr.Dataset | None, network: bool | dict = False
) -> list[xr.Dataset]:
    """lambda_task (with a config) and the outlier ladder (with eigvals and the `outliers` result
    `found`; at `network`'s epoch and ladder ranks); `network_parts` are the others."""
    opts = network_options(network)
    epoch = (opts or NETWORK_DEFAULTS)["epoch"]
    parts = []
    if _has_config(ds):
        parts.append(lambda_task(ds).to_dataset())
    if found is not None and "J0" in ds:
        epochs = select_epochs(ds, epoch)
        measured = found["outlier"].sel(epoch=epochs).rename(epoch=EVAL)
        ranks = (opts or NETWORK_DEFAULTS)["ladder_ranks"]
        parts.append(outlier_ladder(ds, ranks, epoch=epochs, measured=measured))
    return parts


def network_parts(ds: xr.Dataset, network: bool | dict) -> list[xr.Dataset]:
    """With `network`: evaluate, functional_rank, shuffle_control and fixed_points (they read
    only the archive); else nothing."""
    opts = network_options(network)
    if opts is None:
        return []
    epoch = opts["epoch"]
    if not _has_config(ds) or not {"B", "w", "J0"} <= set(ds.variables):
        raise AnalysisError("network analyses need an archive with its config, J0, B and w")
    n_trials, device = opts["n_trials"], opts["device"]
    parts = network_analyses(  # one simulation of the distinct networks
        ds, epoch, n_trials, ranks=opts["ranks"], truncation=bool(opts["functional_rank"]),
        shuffle=bool(opts["shuffle"]), device=device,
    )  # fmt: skip
    if opts["fixed_points"]:
        fp = fixed_points(ds, "all", opts["fp_inputs"], device=device)
        parts.append(fp.rename({EVAL: "epoch"}))  # every snapshot epoch: the analysis' epoch
    return parts
