"""Cheap per-epoch tracking of the leading eigenvalues of J, batched over seeds (NumPy).

Outliers outside the circular bulk are the largest-magnitude eigenvalues of J, so block subspace
iteration finds them: the basis Q (S, N, p), p = k + oversample, is kept from one epoch to the
next, and since J changes little per optimizer step a couple of products J @ Q per epoch keep it
converged. A Rayleigh-Ritz step on the p x p matrix Q^T J Q gives the eigenvalues. The error of an
outlier theta shrinks by about |bulk edge / theta| per product, so a warm-up of more products is
spent on the first call. No full eigendecomposition: per epoch `iters` (S, N, N) x (S, N, p)
products, a thin QR and a p x p eigenproblem. All of it is one compiled call
(`rnnlab.spectra.tracker_kernel`, MKL's GEMM) where torch's MKL is there, NumPy otherwise; on a
GPU the trainer runs the same iteration in torch ops (rnnlab.training.monitor).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from rnnlab.bptt.mkl import available
from rnnlab.spectra.tracker_kernel import leading_eigvals

__all__ = ["LeadingEigTracker"]


class LeadingEigTracker:
    """Tracks the k largest-magnitude eigenvalues of J (S, N, N) by warm-started subspace iteration.

    shift = sigma tracks the eigenvalues of largest |lambda + sigma| instead; sigma of about the
    bulk radius favours the rightmost eigenvalues (max Re lambda) over e.g. the mean term's -b.
    Values returned are always eigenvalues of J itself. `basis` (S, N, p) sets the start (the
    trainer draws it from its own stream); by default it is a random orthonormal one.
    """

    def __init__(
        self,
        S: int,
        N: int,
        k: int = 4,
        iters: int = 2,
        dtype: str | np.dtype = "float32",
        *,
        oversample: int = 4,
        warmup_iters: int = 30,
        shift: float = 0.0,
        seed: int = 0,
        basis: ArrayLike | None = None,
    ) -> None:
        if min(S, N, k, iters, warmup_iters) < 1 or oversample < 0:
            raise ValueError(
                f"need S, N, k, iters, warmup_iters >= 1 and oversample >= 0, got S={S}, N={N}, "
                f"k={k}, iters={iters}, warmup_iters={warmup_iters}, oversample={oversample}"
            )
        if k > N:
            raise ValueError(f"k={k} eigenvalues asked of N={N} neurons")
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {dtype}")
        self.S, self.N, self.k, self.iters = S, N, k, iters
        self.warmup_iters, self.shift = warmup_iters, float(shift)
        self.p = min(N, k + oversample)
        if basis is None:
            start = np.random.default_rng(seed).standard_normal((S, N, self.p))
            basis = np.linalg.qr(start)[0]
        basis = np.asarray(basis, dtype=self.dtype)
        if basis.shape != (S, N, self.p):
            raise ValueError(f"basis must be (S, N, p) = {(S, N, self.p)}, got {basis.shape}")
        # basis vectors as rows (S, p, N): the compiled kernel orthonormalises contiguous rows
        self.basis = np.ascontiguousarray(basis.transpose(0, 2, 1))
        self.compiled = available()
        self.updates = 0

    def state_dict(self) -> dict:
        """The warm-start basis (a copy, rows) and update count, for checkpoints."""
        return {"basis": self.basis.copy(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        """Continue from `state_dict()`: the same basis gives the same eigenvalues next epoch."""
        self.basis = np.ascontiguousarray(np.asarray(state["basis"]), self.dtype)
        self.updates = int(state["updates"])

    def update(self, J: ArrayLike) -> np.ndarray:
        """k leading eigenvalues of J (S, N, N), complex128 (S, k), by descending
        |lambda + shift|; conjugate pairs +imag first. Advances the stored basis: the first call
        runs `warmup_iters` products, later calls `iters`."""
        mat = np.ascontiguousarray(np.asarray(J), dtype=self.dtype)
        if mat.shape != (self.S, self.N, self.N):
            raise ValueError(
                f"J must be (S, N, N) = {(self.S, self.N, self.N)}, got {tuple(mat.shape)}"
            )
        n_products = self.warmup_iters if self.updates == 0 else self.iters
        if self.compiled:
            vals = np.empty((self.S, self.k), np.complex128)
            finite = leading_eigvals(mat, self.basis, self.shift, n_products, vals)
        else:
            ritz = self._iterate(mat, n_products)
            finite = bool(np.all(np.isfinite(ritz)))
            vals = ritz_values(ritz, self.k, self.shift) if finite else None
        self.updates += 1
        if not finite:
            raise ValueError("J contains non-finite values: cannot track its eigenvalues")
        return vals

    eigenvalues = update  # the name the trainer's monitor calls

    def _iterate(self, mat: np.ndarray, n_products: int) -> np.ndarray:
        """n_products steps Q <- qr((J + shift) Q) in NumPy; returns Q^T (J + shift) Q."""
        q = self.basis.transpose(0, 2, 1)
        for i in range(n_products):
            z = mat @ q
            if self.shift:
                z = z + self.shift * q
            if i == n_products - 1:
                rayleigh = q.transpose(0, 2, 1) @ z  # Q^T (J + shift) Q, Q orthonormal
            q = np.linalg.qr(z)[0]
        self.basis = np.ascontiguousarray(q.transpose(0, 2, 1))
        return rayleigh.astype(np.float64)


def ritz_values(ritz: np.ndarray, k: int, shift: float) -> np.ndarray:
    """The k eigenvalues of the Rayleigh quotients (S, p, p) of largest modulus (ties: +imag
    first), shifted back to eigenvalues of J."""
    vals = np.linalg.eigvals(ritz)
    order = np.lexsort((-vals.imag, -np.abs(vals)), axis=-1)[..., :k]
    return np.take_along_axis(vals, order, axis=-1) - shift
