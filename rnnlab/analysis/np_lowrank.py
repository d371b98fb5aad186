"""NumPy kernels for low-rank fits of connectivity changes, on the last two axes.

Every function takes plain arrays of shape (..., N, P) and returns new arrays (copies, never
views of the SVD work arrays, so a dask worker frees each chunk as soon as it is reduced).

Sign rule: (u_r, v_r) are flipped together so that the entry of u_r with the largest absolute
value (the first such entry on ties) is positive. Components below the numerical rank
(s_r <= max(N, P) * eps * s_max, and every component of an all-zero matrix) get m_r = 0 and NaN
vectors; matrices with a non-finite entry give NaN everywhere.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "FLOAT",
    "kappa",
    "lowrank",
    "shrinkage",
    "imposed_shift",
    "imposed_strength",
    "ones_alignment",
]


# Results are float64 whatever the input: OpenBLAS's float32 SVD was measured 1-20x slower than
# float64 here, and the results are small next to the matrices.
FLOAT = np.dtype(np.float64)


def lowrank(
    x: np.ndarray, rank: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rank-`rank` SVD fit of x (..., N, P).

    Returns m (..., R), u (..., R, N), v (..., R, P), explained (..., R) = m_r^2 / ||x||_F^2,
    explained_cum (..., R) and sv (..., min(N, P)) (all singular values, descending).
    """
    x = np.asarray(x)
    n, p = x.shape[-2:]
    if not 1 <= rank <= min(n, p):
        raise ValueError(f"rank must be between 1 and {min(n, p)}, got {rank}")
    dtype = FLOAT
    finite = np.isfinite(x).all(axis=(-2, -1))
    if finite.all():
        work = x.astype(dtype, copy=False)
    else:
        work = np.where(finite[..., None, None], x, 0).astype(dtype, copy=False)
    uu, s, vh = np.linalg.svd(work, full_matrices=False)

    m = s[..., :rank].copy()
    u = np.swapaxes(uu[..., :, :rank], -1, -2).copy()
    v = vh[..., :rank, :].copy()
    del uu, vh

    # sign rule: the largest-|.| entry of each u_r is positive; v_r flips with it
    top = np.take_along_axis(u, np.abs(u).argmax(axis=-1)[..., None], axis=-1)
    sign = np.where(top < 0, -1, 1).astype(dtype)
    u *= sign
    v *= sign

    tol = max(n, p) * np.finfo(dtype).eps * s[..., :1]
    null = m <= tol
    m[null] = 0
    u[null] = np.nan
    v[null] = np.nan

    total = np.sum(s.astype(np.float64) ** 2, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        explained = np.where(total > 0, m.astype(np.float64) ** 2 / total, np.nan).astype(dtype)
    explained_cum = np.cumsum(explained, axis=-1)

    out = [m, u, v, explained, explained_cum, s.copy()]
    for a in out:
        a[~finite] = np.nan
    return tuple(out)


def ones_alignment(vec: np.ndarray) -> np.ndarray:
    """|cos| between each vector (..., N) and the uniform vector 1/sqrt(N)."""
    vec = np.asarray(vec)
    n = vec.shape[-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.abs(vec.sum(axis=-1)) / (np.sqrt(n) * np.linalg.norm(vec, axis=-1))


def shrinkage(dj: np.ndarray, j0: np.ndarray, rank: int) -> tuple[np.ndarray, ...]:
    """Shrinkage of dJ toward -J0 and the low-rank fit of what remains.

    kappa = -<dJ, J0>_F / ||J0||_F^2 is the least-squares coefficient of dJ on -J0 (weight decay
    alone gives dJ = -kappa J0). Returns kappa (...), the `lowrank` outputs of dJ + kappa J0,
    then ones_align_u, ones_align_v (..., R) of that fit. J0 broadcasts against dJ.
    """
    dj = np.asarray(dj)
    j0 = np.asarray(j0)
    dtype = FLOAT
    k = kappa(dj, j0).astype(dtype)
    corr = (dj + k[..., None, None].astype(dtype) * j0).astype(dtype, copy=False)
    m, u, v, expl, cum, sv = lowrank(corr, rank)
    del corr
    return k, m, u, v, expl, cum, sv, ones_alignment(u), ones_alignment(v)


def kappa(dj: np.ndarray, j0: np.ndarray, empty: float = np.nan) -> np.ndarray:
    """kappa = -<dJ, J0>_F / ||J0||_F^2 over the last two axes (the least-squares coefficient of
    dJ on -J0), float64 sums; J0 broadcasts against dJ; `empty` where ||J0||_F = 0."""
    dj = np.asarray(dj)
    j0 = np.asarray(j0)
    num = np.sum(dj * j0, axis=(-2, -1), dtype=np.float64)
    den = np.sum(j0 * j0, axis=(-2, -1), dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, -num / den, empty)


def imposed_shift(dj: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """v^T dJ u / v^T u: the first-order shift of the outlier of an imposed m u v^T.

    For dJ = dm u v^T this is dm (v^T u), the move of the outlier at m (v^T u).
    dj: (..., N, N); u, v: (..., N), broadcasting.
    """
    dj, u, v = np.asarray(dj), np.asarray(u), np.asarray(v)
    num = np.einsum("...i,...ij,...j->...", v, dj, u)
    den = np.sum(v * u, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den != 0, num / den, np.nan).astype(FLOAT)


def imposed_strength(j: np.ndarray, j0: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """imposed_shift of J - J0."""
    return imposed_shift(np.asarray(j) - np.asarray(j0), u, v)
