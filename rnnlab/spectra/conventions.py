"""Spectra of J and of the linearised dynamics, outlier detection and outlier tracks (NumPy only:
the recording's float32 snapshot spectra call torch's LAPACK in rnnlab.training.recording and are
ordered here by `sort_eigvals`).

Conventions (docs/spectra.md): eigenvalues are sorted by descending real part, ties by descending
imaginary part; the Jacobian of tau dh/dt = -h + J phi(h) at h is -I + J diag(phi'(h)); an
eigenvalue is an outlier when it lies outside the disc of the bulk edge
`bulk_edge(g, N, dphi)` about its centre (0 for J, -1 for the Jacobian).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from rnnlab.config import PHIS
from rnnlab.spectra.theory import EDGE_MARGIN, bulk_radius

__all__ = [
    "PHIS",
    "bulk_edge",
    "crossing_epoch",
    "dphi_at_origin",
    "dphi_numpy",
    "jacobian",
    "match_tracks",
    "outlier_mask",
    "outlier_tracks",
    "sort_eigvals",
    "sorted_eigvals",
]


def _check_phi(phi: str) -> None:
    if phi not in PHIS:
        raise ValueError(f"unknown nonlinearity {phi!r}; expected one of {', '.join(PHIS)}")


def _check_square(A: NDArray, name: str) -> None:
    if A.ndim < 2 or A.shape[-1] != A.shape[-2]:
        raise ValueError(f"{name} must be (..., N, N), got shape {A.shape}")


def sort_eigvals(vals: ArrayLike) -> NDArray[np.complex128]:
    """Eigenvalues (..., N) in the convention's order: descending real part, then imaginary part.

    NumPy orders complex numbers by real then imaginary part, so sorting -lambda ascending gives
    this order; LAPACK returns conjugate pairs with identical real parts, so +imag comes first.
    """
    return -np.sort(-np.asarray(vals).astype(complex), axis=-1)


def sorted_eigvals(A: ArrayLike, *, single: bool = False) -> NDArray[np.complex128]:
    """Eigenvalues of (..., N, N) matrices, complex, in `sort_eigvals` order.

    `single=True` computes them in float32 (LAPACK sgeev; errors ~1e-5 for the bulk scale 1).
    """
    a = np.asarray(A)
    _check_square(a, "A")
    if not np.all(np.isfinite(a)):
        raise ValueError("A contains non-finite values")
    vals = np.linalg.eigvals(np.asarray(a, dtype=np.float32) if single else a)
    return sort_eigvals(vals)


def dphi_numpy(h: ArrayLike, phi: str) -> NDArray[np.float64]:
    """phi'(h) elementwise. ReLU uses the right derivative at 0 (phi'(0) = 1, as dphi_at_origin)."""
    _check_phi(phi)
    x = np.asarray(h, dtype=float)
    if phi == "tanh":
        return 1.0 - np.tanh(x) ** 2
    if phi == "relu":
        return (x >= 0).astype(float)
    return np.ones_like(x)


def dphi_at_origin(phi: str) -> float:
    """phi'(0): 1 for tanh and linear; 1 for ReLU by the right-derivative convention.

    At h = 0 the ReLU Jacobian is then J - I, the network's linearisation for small positive h.
    """
    return float(dphi_numpy(0.0, phi))


def jacobian(J: ArrayLike, dphi: ArrayLike, dtype: DTypeLike = np.float64) -> NDArray:
    """-I + J diag(dphi) for J (..., N, N) and dphi (..., N) or a scalar, batched, in `dtype`
    (the archive writer builds it in float32, the precision of its J and of its spectrum)."""
    j = np.asarray(J, dtype=dtype)
    _check_square(j, "J")
    d = np.asarray(dphi, dtype=dtype)
    if d.ndim and d.shape[-1] != j.shape[-1]:
        raise ValueError(f"dphi must have N={j.shape[-1]} entries on its last axis, got {d.shape}")
    cols = d[..., None, :] if d.ndim else d
    return j * cols - np.eye(j.shape[-1], dtype=dtype)


def bulk_edge(
    g: ArrayLike, N: int, dphi: ArrayLike | None = None, margin: float = EDGE_MARGIN
) -> NDArray[np.float64] | float:
    """Bulk edge r (1 + margin / sqrt(N_eff)) with r = bulk_radius(g, dphi).

    The finite-N spectral radius of an iid matrix exceeds r by about 0.6 r / sqrt(N) with a
    Gumbel tail, so margin = 2 keeps pure-bulk eigenvalues inside in > 99% of draws. With slopes
    dphi (..., N), N_eff = N <phi'^2>^2 / <phi'^4> counts the columns that carry weight (ReLU: the
    f N active ones); a scalar dphi is one slope for all neurons (N_eff = N).
    """
    if N < 1 or margin < 0:
        raise ValueError(f"need N >= 1 and margin >= 0, got N={N}, margin={margin}")
    radius = bulk_radius(g, dphi)
    n_eff: float | NDArray[np.float64] = float(N)
    if dphi is not None and np.ndim(dphi):
        d = np.asarray(dphi, dtype=float)
        if d.shape[-1] != N:
            raise ValueError(f"dphi must have N={N} entries on its last axis, got {d.shape}")
        m2, m4 = np.mean(d**2, axis=-1), np.mean(d**4, axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            n_eff = np.where(m4 > 0, N * m2**2 / np.where(m4 > 0, m4, 1.0), 1.0)
    out = radius * (1.0 + margin / np.sqrt(n_eff))
    return out if np.ndim(out) else float(out)


def outlier_mask(eigs: ArrayLike, center: ArrayLike, radius: ArrayLike) -> NDArray[np.bool_]:
    """True for eigenvalues strictly outside the disc |lambda - center| <= radius.

    center is 0 for J and -1 for the Jacobian; center and radius broadcast against eigs[..., :1].
    NaN eigenvalues (absent) are never outliers.
    """
    e = np.asarray(eigs)
    c = np.asarray(center)
    r = np.asarray(radius, dtype=float)
    if np.any(r < 0):
        raise ValueError(f"radius must be >= 0, got {radius}")
    if c.ndim:
        c = c[..., None]
    if r.ndim:
        r = r[..., None]
    with np.errstate(invalid="ignore"):
        return np.abs(e - c) > r


def _assign(cost: NDArray[np.float64]) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Minimum-cost matching; infinite costs (absent entries) are never matched."""
    from scipy.optimize import linear_sum_assignment  # only the analysis matches tracks

    finite = np.isfinite(cost)
    if not finite.any():
        return np.empty(0, np.intp), np.empty(0, np.intp)
    big = 1.0 + 2.0 * cost.shape[0] * cost.shape[1] * float(np.max(cost[finite], initial=1.0))
    rows, cols = linear_sum_assignment(np.where(finite, cost, big))
    keep = finite[rows, cols]
    return rows[keep], cols[keep]


def match_tracks(prev: ArrayLike, curr: ArrayLike) -> NDArray[np.intp]:
    """Index into `curr` for each entry of `prev` (-1 if unmatched), minimising sum |prev - curr|.

    Hungarian assignment (scipy linear_sum_assignment); NaN entries of either side are absent and
    never matched. With equal sizes and no NaN, curr[match_tracks(prev, curr)] follows prev.
    """
    p = np.asarray(prev, dtype=complex).reshape(-1)
    c = np.asarray(curr, dtype=complex).reshape(-1)
    with np.errstate(invalid="ignore"):
        cost = np.abs(p[:, None] - c[None, :])
    cost[~np.isfinite(cost)] = np.inf
    out = np.full(p.shape[0], -1, dtype=np.intp)
    rows, cols = _assign(cost)
    out[rows] = cols
    return out


def outlier_tracks(eigs_by_epoch: ArrayLike, masks: ArrayLike) -> NDArray[np.complex128]:
    """(epoch, slot) curves of the outliers, NaN where a slot is empty.

    eigs_by_epoch (E, n) and masks (E, n) (True = outlier). Slots number the most outliers seen at
    once. Each epoch's outliers are first matched (Hungarian) to the slots occupied at the previous
    epoch; the rest take free slots, preferring the slot whose last value is nearest (never-used
    slots last), so an outlier that dips into the bulk and comes back keeps its slot.
    """
    eigs = np.asarray(eigs_by_epoch, dtype=complex)
    mask = np.asarray(masks, dtype=bool)
    if eigs.ndim != 2 or mask.shape != eigs.shape:
        raise ValueError(
            f"need eigs and masks of one (epoch, n) shape, got {eigs.shape}, {mask.shape}"
        )
    n_slots = int(mask.sum(axis=1).max(initial=0))
    tracks = np.full((eigs.shape[0], n_slots), np.nan + 0j, dtype=complex)
    last = np.full(n_slots, np.nan + 0j, dtype=complex)
    active = np.zeros(n_slots, dtype=bool)
    for e in range(eigs.shape[0]):
        current = eigs[e][mask[e]]
        taken = np.zeros(current.shape[0], dtype=bool)
        now = np.zeros(n_slots, dtype=bool)
        for slots in (np.flatnonzero(active), np.flatnonzero(~active)):
            todo = np.flatnonzero(~taken)
            if not todo.size or not slots.size:
                continue
            cost = np.abs(last[slots][:, None] - current[todo][None, :])
            # Slots never used (no last value) are taken last, at a cost above any real distance.
            unused = ~np.isfinite(cost)
            cost[unused] = 1.0 + 2.0 * float(np.max(cost[~unused], initial=0.0))
            rows, cols = _assign(cost)
            tracks[e, slots[rows]] = current[todo[cols]]
            taken[todo[cols]] = True
            now[slots[rows]] = True
        last = np.where(now, tracks[e], last)
        active = now
    return tracks


def crossing_epoch(epochs: ArrayLike, max_re: ArrayLike, level: float = 0.0) -> NDArray | float:
    """First upward crossing of `level` by max_re (..., E) over `epochs` (E,), interpolated.

    A crossing is a step from below (< level) to at or above (>= level); a series that starts above
    the level crosses only after dipping below. NaN where there is none (NaN values break steps).
    """
    x = np.asarray(epochs, dtype=float)
    y = np.asarray(max_re, dtype=float)
    if x.ndim != 1 or y.shape[-1:] != x.shape:
        raise ValueError(f"max_re must end with the epoch axis of length {x.shape}, got {y.shape}")
    if x.size > 1 and np.any(np.diff(x) <= 0):
        raise ValueError("epochs must be strictly increasing")
    if x.size < 2:
        out = np.full(y.shape[:-1], np.nan)
        return out if out.ndim else float(out)
    y0, y1 = y[..., :-1], y[..., 1:]
    with np.errstate(invalid="ignore"):
        up = (y0 < level) & (y1 >= level)
    first = np.argmax(up, axis=-1)
    a = np.take_along_axis(y0, first[..., None], -1)[..., 0]
    b = np.take_along_axis(y1, first[..., None], -1)[..., 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = (level - a) / (b - a)
    out = np.where(up.any(axis=-1), x[first] + frac * (x[first + 1] - x[first]), np.nan)
    return out if out.ndim else float(out)
