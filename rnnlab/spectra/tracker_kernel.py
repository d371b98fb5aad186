"""The CPU kernel of `rnnlab.spectra.tracker.LeadingEigTracker`: subspace iteration + Rayleigh-Ritz.

One compiled call per epoch for all seeds: `n_products` steps Q <- orth((J + shift) Q) (MKL GEMM,
modified Gram-Schmidt twice), the p x p Rayleigh quotient Q^T (J + shift) Q, its eigenvalues by
LAPACK dgeev, and the k of largest |mu| (mu = lambda + shift; ties: +imag first). In NumPy the
same steps were ~15 calls whose per-call overhead dominated (0.4 ms per epoch inside training).
The basis vectors are stored as rows, (S, p, N), so that Gram-Schmidt runs on contiguous rows.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from rnnlab.bptt.mkl import eigvals_real, gemm_scratch, matmul

__all__ = ["leading_eigvals", "outlier_summary"]

_JIT = {"nogil": True, "cache": True, "error_model": "numpy"}


@numba.njit(error_model="numpy", fastmath={"contract", "reassoc"})
def _orthonormal_rows(z):  # pragma: no cover (jit)
    """Rows of z (p, N) made orthonormal in place: modified Gram-Schmidt, applied twice."""
    p, n = z.shape
    for _ in range(2):
        for j in range(p):
            zj = z[j]
            for i in range(j):
                zi = z[i]
                dot = zi.dtype.type(0)
                for r in range(n):
                    dot += zi[r] * zj[r]
                for r in range(n):
                    zj[r] -= dot * zi[r]
            norm = zj.dtype.type(0)
            for r in range(n):
                norm += zj[r] * zj[r]
            scale = 1 / math.sqrt(norm) if norm > 0 else 0 * norm
            for r in range(n):
                zj[r] *= scale


@numba.njit(error_model="numpy", fastmath={"contract", "reassoc"})
def _rayleigh(qt, zt, out):  # pragma: no cover (jit)
    """out[a, b] = q_a . z_b (float64) for rows q_a of qt and z_b of zt."""
    p, n = qt.shape
    for a in range(p):
        for b in range(p):
            acc = 0.0
            for r in range(n):
                acc += qt[a, r] * zt[b, r]
            out[a, b] = acc


@numba.njit(**_JIT)
def leading_eigvals(J, basis_rows, shift, n_products, out):  # pragma: no cover (jit)
    """Advance basis_rows (S, p, N) in place; write the k = out.shape[1] eigenvalues of largest
    |lambda + shift| of each seed's Rayleigh-Ritz matrix to out (S, k) complex128, ordered by
    descending |lambda + shift| then descending imag. Returns False if a matrix was not finite
    or LAPACK failed (out is then NaN for that seed)."""
    s_count, p, n = basis_rows.shape
    k = out.shape[1]
    zt = np.empty((p, n), dtype=basis_rows.dtype)
    scratch = gemm_scratch(zt, p, n, n)
    ray = np.empty((p, p), np.float64)
    wr, wi, work = np.empty(p), np.empty(p), np.empty(8 * p + 8)
    info_ints = np.empty(4, np.int32)
    taken = np.empty(p, np.bool_)
    ok = True
    sh = basis_rows.dtype.type(shift)
    for s in range(s_count):
        qt = basis_rows[s]
        for it in range(n_products):
            matmul(qt, J[s], zt, scratch, True)  # rows: ((J + shift) q_a)^T
            for a in range(p):
                for r in range(n):
                    zt[a, r] += sh * qt[a, r]
            if it == n_products - 1:
                _rayleigh(qt, zt, ray)
            _orthonormal_rows(zt)
            qt[:, :] = zt
        finite = np.all(np.isfinite(ray))
        if not finite or eigvals_real(ray, wr, wi, work, info_ints) != 0:
            ok = False
            out[s, :] = np.nan
            continue
        taken[:] = False
        for j in range(k):  # selection of the k largest |mu|, ties by larger imag
            best = -1
            for c in range(p):
                if taken[c]:
                    continue
                if best < 0:
                    best = c
                    continue
                mag_c, mag_b = math.hypot(wr[c], wi[c]), math.hypot(wr[best], wi[best])
                if mag_c > mag_b or (mag_c == mag_b and wi[c] > wi[best]):
                    best = c
            taken[best] = True
            out[s, j] = complex(wr[best] - shift, wi[best])
    return ok


@numba.njit(**_JIT)
def outlier_summary(vals, edge, slope0, n_out, max_re):  # pragma: no cover (jit)
    """Per seed s of vals (S, k) complex: n_out[s] = how many |lambda| > edge (outside the bulk
    disc), max_re[s] = slope0 * max Re lambda - 1 (the Jacobian at the origin). NaN rows give
    n_out 0 and max_re NaN. One call instead of five NumPy ones: each cost ~10 us cold in the
    training loop, where this runs every epoch."""
    for s in range(vals.shape[0]):
        count = 0
        best = -np.inf
        for j in range(vals.shape[1]):
            lam = vals[s, j]
            if abs(lam) > edge:
                count += 1
            if best == best and (lam.real > best or lam.real != lam.real):
                best = lam.real  # a NaN stays, as in NumPy's max
        n_out[s] = count
        max_re[s] = slope0 * best - 1.0
