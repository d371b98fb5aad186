"""Lazy fixed-point analysis of the trained dynamics at zero and constant inputs.

One `xr.apply_ufunc(..., dask="parallelized")` over np_fixed_points.fixed_points (NumPy search,
starting states sampled on the network's own trajectories through the training dynamics).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from rnnlab.analysis import np_fixed_points
from rnnlab.analysis._common import AnalysisError
from rnnlab.analysis.inloop import CORE, EVAL, _finish, network_inputs, select_epochs

__all__ = ["fixed_points"]

TEXT = {
    "fp_u1": ("projection u_1^T h* of the fixed point on u_1 of dJ", "1"),
    "fp_rms": ("|h*| / sqrt(N)", "1"),
    "fp_q": ("q(h*) = |F(h*)|^2 / 2 at the fixed point", "1/tau^2"),
    "fp_max_re": ("largest real part of the Jacobian eigenvalues at the fixed point", "1/tau"),
    "fp_stable": ("1 if every Jacobian eigenvalue has a negative real part, else 0", "1"),
    "fp_eigvals": ("Jacobian eigenvalues at the fixed point, largest real part first", "1/tau"),
    "n_fixed_points": ("number of distinct fixed points found", "1"),
    "n_stable": ("number of stable fixed points", "1"),
    "n_unstable": ("number of unstable fixed points", "1"),
}


def fixed_points(
    ds: xr.Dataset,
    epoch: Any = "all",
    inputs: Sequence[float] = (0.0,),
    *,
    n_starts: int = 8,
    n_trials: int = 4,
    max_points: int = 8,
    n_eig: int = 6,
    device: str = "auto",
) -> xr.Dataset:
    """Fixed points of the trained dynamics −h + J φ(h) + B u = 0 at each constant input u of
    `inputs` (every input channel held at that value), for the snapshot epochs `epoch`.

    Returns, over (seed, eval_epoch, u_const): `n_fixed_points`, `n_stable`, `n_unstable`; over
    (seed, eval_epoch, u_const, fp), up to `max_points` fixed points (stable ones first, then
    ordered along u_1): `fp_u1`, `fp_rms`, `fp_q`, `fp_max_re`, `fp_stable` and `fp_eigvals`
    (…, fp, fp_eig), the `n_eig` Jacobian eigenvalues with the largest real part. Starts: the
    origin and ±`n_starts` states of `n_trials` trials of each seed's `fixed_points` stream.
    """
    for name, value in (("n_starts", n_starts), ("n_trials", n_trials),
                        ("max_points", max_points), ("n_eig", n_eig)):  # fmt: skip
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise AnalysisError(f"{name} must be a positive integer, got {value!r}")
    try:
        values = [float(u) for u in np.atleast_1d(np.asarray(inputs, dtype=float))]
    except (TypeError, ValueError):
        raise AnalysisError(f"inputs must be numbers, got {inputs!r}") from None
    if not values or not np.all(np.isfinite(values)):
        raise AnalysisError(f"inputs must be finite numbers, got {inputs!r}")
    epochs = select_epochs(ds, epoch)
    configs, args = network_inputs(ds, epochs)
    args = args[:3] + args[4:]  # no readout needed
    core = CORE[:3] + CORE[4:]
    kwargs = {
        "configs": configs,
        "inputs": tuple(values),
        "n_starts": n_starts,
        "n_trials": n_trials,
        "max_points": max_points,
        "n_eig": n_eig,
        "device": device,
    }
    slot = ["u_const", "fp"]
    out_core = [slot] * 5 + [[*slot, "fp_eig"]] + [["u_const"]] * 3
    outs = xr.apply_ufunc(
        np_fixed_points.fixed_points,
        *args,
        kwargs=kwargs,
        input_core_dims=core,
        output_core_dims=out_core,
        dask="parallelized",
        output_dtypes=[float] * 5 + [complex] + [float] * 3,
        dask_gufunc_kwargs={
            "output_sizes": {"u_const": len(values), "fp": max_points, "fp_eig": n_eig}
        },
    )
    out = xr.Dataset(
        {
            name: da.assign_attrs(long_name=TEXT[name][0], units=TEXT[name][1])
            for name, da in zip(TEXT, outs, strict=True)
        }
    ).assign_coords({EVAL: epochs, "u_const": values})
    out["u_const"].attrs = {"long_name": "constant input on every input channel", "units": "1"}
    return _finish(out, ds, {})
