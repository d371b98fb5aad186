"""NumPy kernel: summary statistics over the last axis (seeds), NaN-aware."""

from __future__ import annotations

import warnings

import numpy as np

__all__ = ["STATS", "seed_stats"]

STATS = ("mean", "sd", "q05", "q50", "q95")


def _real_stats(x: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(x, axis=-1)
        sd = np.nanstd(x, axis=-1, ddof=1)
        q = np.nanquantile(x, [0.05, 0.5, 0.95], axis=-1)
    return np.stack([mean, sd, q[0], q[1], q[2]], axis=-1).astype(x.dtype, copy=False)


def seed_stats(x: np.ndarray) -> np.ndarray:
    """mean, sd (ddof=1), 5/50/95 % quantiles over the last axis -> (..., 5), ignoring NaN.

    Complex values are summarised part by part: stat(z) = stat(Re z) + i stat(Im z).
    """
    x = np.asarray(x)
    if np.iscomplexobj(x):
        return _real_stats(x.real) + 1j * _real_stats(x.imag)
    dtype = x.dtype if x.dtype.kind == "f" else np.float64
    return _real_stats(x.astype(dtype, copy=False))
