"""NumPy kernel of the outlier ladder: the spectrum of J0 + ΔJ_R for a ladder of ranks R, and the
smallest R that reproduces each measured outlier of J.

ΔJ_R is the best rank-R approximation (truncated SVD) of ΔJ = J − J0. At each R two predictions
of the outliers: "exact", the eigenvalues of J0 + ΔJ_R outside the bulk edge (the determinant
lemma of rnnlab.spectra.theory.exact_outliers solves the same problem without the N x N
eigendecomposition), and "mean field", the non-zero eigenvalues of ΔJ_R alone (those of the
R x R overlap matrix M_rs = m_r v_r^T u_s, rnnlab.spectra.theory.meanfield_outliers). A measured
outlier is reproduced at R when a prediction outside the bulk edge matches it (Hungarian,
rnnlab.spectra.conventions.match_tracks) within its finite-N spread
(rnnlab.spectra.theory.outlier_spread with kappa = 1, floored at SPREAD_FLOOR).
"""

from __future__ import annotations

import numpy as np

from rnnlab.spectra import conventions as spectra
from rnnlab.spectra import theory

__all__ = [
    "SPREAD_FLOOR",
    "edge",
    "ladder",
    "measured_batch",
    "measured_outliers",
    "reproduced_from",
]

SPREAD_FLOOR = 1e-3  # below this the archive's float32 eigenvalues (errors ~1e-5) still match


def measured_outliers(eigs: np.ndarray, edge: float, slots: int) -> np.ndarray:
    """The eigenvalues outside |lambda| > edge, by descending real part, in `slots` places
    (NaN where empty; those with the smallest real part dropped when there are more)."""
    eigs = np.asarray(eigs, dtype=complex)
    out = np.full(slots, np.nan + 0j)
    found = eigs[spectra.outlier_mask(eigs, 0.0, edge)]
    found = spectra.sort_eigvals(found)[:slots]
    out[: found.size] = found
    return out


def measured_batch(eigs: np.ndarray, edge: np.ndarray, *, slots: int) -> np.ndarray:
    """`measured_outliers` of eigs (..., n) with edges (...) -> (..., slots)."""
    eigs = np.asarray(eigs, dtype=complex)
    lead = np.broadcast_shapes(eigs.shape[:-1], np.shape(edge))
    out = np.full(lead + (slots,), np.nan + 0j)
    for idx in np.ndindex(*lead):
        e = np.broadcast_to(eigs, lead + eigs.shape[-1:])[idx]
        out[idx] = measured_outliers(e, float(np.broadcast_to(edge, lead)[idx]), slots)
    return out


def _matched(measured: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """For each measured value the candidate assigned to it (Hungarian), NaN when none."""
    out = np.full(measured.shape, np.nan + 0j)
    if candidates.size == 0:
        return out
    idx = spectra.match_tracks(measured, candidates)
    hit = idx >= 0
    out[hit] = candidates[idx[hit]]
    return out


def reproduced_from(ok: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """Per slot, the smallest R of `ranks` from which `ok` (n_ranks, slots) holds at every larger
    R of the ladder; NaN when it fails at the largest R."""
    ok = np.asarray(ok, dtype=bool)
    tail = np.flip(np.logical_and.accumulate(np.flip(ok, axis=0), axis=0), axis=0)
    first = np.argmax(tail, axis=0)
    return np.where(tail.any(axis=0), np.asarray(ranks, dtype=float)[first], np.nan)


def edge(g, j0) -> tuple[np.ndarray, np.ndarray]:
    """(g, bulk edge g (1 + 2/sqrt(N))) per member: g (...) where finite, else sqrt(N) std(J0)
    of j0 (..., N, N)."""
    n = j0.shape[-1]
    with np.errstate(invalid="ignore"):
        est = np.std(j0, axis=(-2, -1)) * np.sqrt(n)
    g = np.where(np.isfinite(g), g, est)
    return g, np.asarray(spectra.bulk_edge(g, n), dtype=float)


def _one(j0, dj, g, measured, ranks):
    j0 = np.asarray(j0, dtype=np.float64)
    dj = np.asarray(dj, dtype=np.float64)
    n = j0.shape[-1]
    g, bulk = (float(x) for x in edge(g, j0))
    slots = measured.shape[-1]
    n_r = len(ranks)
    eig = np.full((n_r, n), np.nan + 0j)
    exact = np.full((n_r, slots), np.nan + 0j)
    meanfield = np.full((n_r, slots), np.nan + 0j)
    with np.errstate(invalid="ignore"):
        tol = np.maximum(theory.outlier_spread(np.abs(measured), g, n), SPREAD_FLOOR)
    tol = np.where(np.isfinite(measured), tol, np.nan)
    if not (np.isfinite(j0).all() and np.isfinite(dj).all()):
        nan = np.full(slots, np.nan)
        return eig, exact, meanfield, nan, nan, tol
    u, s, vt = np.linalg.svd(dj)
    for i, r in enumerate(ranks):
        eig[i] = spectra.sorted_eigvals(j0 + (u[:, :r] * s[:r]) @ vt[:r])
        outside = eig[i][spectra.outlier_mask(eig[i], 0.0, bulk)]
        exact[i] = _matched(measured, outside)
        mf = np.linalg.eigvals(s[:r, None] * (vt[:r] @ u[:, :r])) if r else np.empty(0)
        mf = mf[spectra.outlier_mask(mf, 0.0, bulk)]
        meanfield[i] = _matched(measured, mf)
    with np.errstate(invalid="ignore"):
        rank = reproduced_from(np.abs(exact - measured) <= tol, ranks)
        rank_mf = reproduced_from(np.abs(meanfield - measured) <= tol, ranks)
    empty = ~np.isfinite(measured)
    rank[empty], rank_mf[empty] = np.nan, np.nan
    return eig, exact, meanfield, rank, rank_mf, tol


def ladder(j0, dj, g, measured, *, ranks):
    """Batched kernel: j0, dj (..., N, N), g (...) (NaN: sqrt(N) std(J0)), measured outliers
    (..., slots) complex (NaN: empty slot), `ranks` ascending (0 .. N).

    Returns eigvals (..., n_ranks, N) of J0 + dJ_R (sorted), the exact and mean-field predictions
    matched to each measured outlier (..., n_ranks, slots), the smallest R from which each is
    reproduced by exact and by mean field (..., slots), and the tolerance used (..., slots).
    """
    ranks = np.asarray(ranks, dtype=np.int64)
    j0, dj, measured = np.asarray(j0), np.asarray(dj), np.asarray(measured, dtype=complex)
    lead = np.broadcast_shapes(j0.shape[:-2], dj.shape[:-2], np.shape(g), measured.shape[:-1])
    n, slots, n_r = j0.shape[-1], measured.shape[-1], len(ranks)
    outs = [
        np.full(lead + (n_r, n), np.nan + 0j),
        np.full(lead + (n_r, slots), np.nan + 0j),
        np.full(lead + (n_r, slots), np.nan + 0j),
        np.full(lead + (slots,), np.nan),
        np.full(lead + (slots,), np.nan),
        np.full(lead + (slots,), np.nan),
    ]
    for idx in np.ndindex(*lead):
        res = _one(
            np.broadcast_to(j0, lead + j0.shape[-2:])[idx],
            np.broadcast_to(dj, lead + dj.shape[-2:])[idx],
            float(np.broadcast_to(g, lead)[idx]),
            np.broadcast_to(measured, lead + (slots,))[idx],
            ranks,
        )
        for out, r in zip(outs, res, strict=True):
            out[idx] = r
    return tuple(outs)
