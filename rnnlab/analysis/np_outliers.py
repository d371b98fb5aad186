"""NumPy kernel: measured outliers of J tracked over epochs, and their low-rank predictions.

Works on one network at a time (all epochs), looping over leading (seed) axes. The spectral
conventions (bulk edge, outlier test, track matching, crossing) come from
rnnlab.spectra.conventions and the predictions from rnnlab.spectra.theory.
"""

from __future__ import annotations

import numpy as np

from rnnlab.spectra import conventions as spectra
from rnnlab.spectra import theory

__all__ = ["measured_tracks", "predictions", "place", "outliers"]


def measured_tracks(eigs: np.ndarray, edge: float, slots: int) -> tuple[np.ndarray, np.ndarray]:
    """Outliers of eigs (E, n) outside |lambda| > edge, tracked over epochs -> ((E, slots), (E,)).

    Returns the tracks (NaN where a slot is empty) and the number of outliers per epoch. When
    more than `slots` tracks exist, those with the largest real part ever reached are kept.
    """
    mask = spectra.outlier_mask(eigs, 0.0, edge)
    tracks = spectra.outlier_tracks(eigs, mask)
    if tracks.shape[1] > slots:
        with np.errstate(invalid="ignore"):
            peak = np.nanmax(np.where(np.isnan(tracks), -np.inf, tracks.real), axis=0)
        tracks = tracks[:, np.sort(np.argsort(-peak, kind="stable")[:slots])]
    out = np.full((eigs.shape[0], slots), np.nan + 0j)
    out[:, : tracks.shape[1]] = tracks
    return out, mask.sum(axis=1)


def predictions(
    m: np.ndarray, u: np.ndarray, v: np.ndarray, j0: np.ndarray, edge: float, exact: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Mean-field and exact outliers of J0 + sum_r m_r u_r v_r^T (one epoch) outside the edge.

    m (R,), u, v (R, N); components with m_r = 0 or NaN vectors (below the numerical rank) are
    left out. Mean field: eigenvalues of M_rs = m_r v_r^T u_s; exact: determinant-lemma roots on J0.
    """
    keep = (m > 0) & np.isfinite(u).all(axis=1) & np.isfinite(v).all(axis=1)
    if not keep.any():
        return np.empty(0, complex), np.empty(0, complex)
    mm, uu, vv = m[keep], u[keep].T, v[keep].T
    mf = theory.meanfield_outliers(mm, uu, vv)
    mf = mf[np.abs(mf) > edge]
    ex = theory.exact_outliers(j0, mm, uu, vv, radius=edge) if exact else np.empty(0, complex)
    return mf, np.asarray(ex, dtype=complex)


def place(measured: np.ndarray, predicted: np.ndarray, tol: float) -> np.ndarray:
    """Put predictions into the slots of the measured outliers they match (within tol).

    measured (slots,) with NaN for empty slots; unmatched predictions fill empty slots in order;
    what does not fit is dropped. Returns (slots,) complex, NaN where nothing is predicted.
    """
    out = np.full(measured.shape, np.nan + 0j)
    if predicted.size == 0:
        return out
    idx = spectra.match_tracks(measured, predicted)
    used = np.zeros(predicted.size, dtype=bool)
    for slot, j in enumerate(idx):
        if j >= 0 and abs(measured[slot] - predicted[j]) <= tol:
            out[slot] = predicted[j]
            used[j] = True
    free = [s for s in range(measured.size) if np.isnan(measured[s]) and np.isnan(out[s])]
    for slot, value in zip(free, predicted[~used], strict=False):
        out[slot] = value
    return out


def _one(eigs, jac, m, u, v, j0, g, epochs, slots, exact):
    """All outputs for one network: eigs (E, n), jac (E, n) or None, m (E, R), u, v (E, R, N)."""
    n = j0.shape[-1]
    j0 = np.asarray(j0, dtype=np.float64)
    if not np.isfinite(g):
        g = float(np.std(j0) * np.sqrt(n))  # bulk radius estimated from J0
    edge = float(spectra.bulk_edge(g, n))
    tracks, count = measured_tracks(eigs, edge, slots)
    mf = np.full_like(tracks, np.nan)
    ex = np.full_like(tracks, np.nan)
    for e in range(eigs.shape[0]):
        p_mf, p_ex = predictions(m[e], u[e], v[e], j0, edge, exact)
        mf[e] = place(tracks[e], p_mf, tol=edge)
        ex[e] = place(tracks[e], p_ex, tol=edge)
    if jac is None:
        max_re = np.full(eigs.shape[0], np.nan)
    else:
        with np.errstate(invalid="ignore"):
            max_re = np.nanmax(np.where(np.isnan(jac), -np.inf, jac.real), axis=-1)
        max_re[~np.isfinite(max_re)] = np.nan
    cross = spectra.crossing_epoch(epochs, max_re)
    return tracks, mf, ex, count, max_re, cross, edge


def outliers(m, u, v, j0, g, eigs, jac=None, *, epochs, slots: int = 4, exact: bool = True):
    """Batched kernel: m (..., E, R), u, v (..., E, R, N), j0 (..., N, N), g (...), eigs and
    optional jac (..., E, n) -> outlier, outlier_meanfield, outlier_exact (..., E, slots),
    n_outliers, max_re_jac (..., E), crossing_epoch, bulk_radius (...)."""
    lead = np.broadcast_shapes(eigs.shape[:-2], m.shape[:-2], j0.shape[:-2], np.shape(g))
    n_ep = eigs.shape[-2]
    outs = [np.full(lead + (n_ep, slots), np.nan + 0j) for _ in range(3)]
    outs += [np.zeros(lead + (n_ep,), np.int64), np.full(lead + (n_ep,), np.nan)]
    outs += [np.full(lead, np.nan), np.full(lead, np.nan)]
    for idx in np.ndindex(*lead):
        pick = [
            np.broadcast_to(a, lead + a.shape[-k:])[idx]
            for a, k in ((eigs, 2), (m, 2), (u, 3), (v, 3), (j0, 2))
        ]
        jj = None if jac is None else np.broadcast_to(jac, lead + jac.shape[-2:])[idx]
        gg = float(np.broadcast_to(g, lead)[idx])
        res = _one(pick[0], jj, *pick[1:], gg, epochs, slots, exact)
        for out, r in zip(outs, res, strict=True):
            out[idx] = r
    return tuple(outs)
