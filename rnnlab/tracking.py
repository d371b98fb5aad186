"""Cheap per-epoch tracking of the leading eigenvalues of J, batched over seeds (torch).

Outliers outside the circular bulk are the largest-magnitude eigenvalues of J, so block subspace
iteration finds them: the basis Q (S, N, p), p = k + oversample, is kept from one epoch to the
next, and since J changes little per optimizer step a couple of products J @ Q per epoch keep it
converged. A Rayleigh-Ritz step on the p x p matrix Q^T J Q gives the eigenvalues. The error of an
outlier theta shrinks by about |bulk edge / theta| per product, so a warm-up of more products is
spent on the first call. No full eigendecomposition: per epoch `iters` (S, N, N) x (S, N, p)
products, a thin QR and a p x p eigenproblem. On the CPU all of it is one compiled call
(`rnnlab.numba_tracking`); on other devices torch ops, with the p x p problem in NumPy.
"""

from __future__ import annotations

import numpy as np
import torch

from rnnlab.numba_blas import available
from rnnlab.numba_tracking import leading_eigvals

__all__ = ["LeadingEigTracker"]


class LeadingEigTracker:
    """Tracks the k largest-magnitude eigenvalues of J (S, N, N) by warm-started subspace iteration.

    shift = sigma tracks the eigenvalues of largest |lambda + sigma| instead; sigma of about the
    bulk radius favours the rightmost eigenvalues (max Re lambda) over e.g. the mean term's -b.
    Values returned are always eigenvalues of J itself.
    """

    def __init__(
        self,
        S: int,
        N: int,
        k: int = 4,
        iters: int = 2,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
        *,
        oversample: int = 4,
        warmup_iters: int = 30,
        shift: float = 0.0,
        seed: int = 0,
    ) -> None:
        if min(S, N, k, iters, warmup_iters) < 1 or oversample < 0:
            raise ValueError(
                f"need S, N, k, iters, warmup_iters >= 1 and oversample >= 0, got S={S}, N={N}, "
                f"k={k}, iters={iters}, warmup_iters={warmup_iters}, oversample={oversample}"
            )
        if k > N:
            raise ValueError(f"k={k} eigenvalues asked of N={N} neurons")
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        self.S, self.N, self.k, self.iters = S, N, k, iters
        self.warmup_iters, self.shift = warmup_iters, float(shift)
        self.p = min(N, k + oversample)
        self.device = torch.device("cpu") if device is None else torch.device(device)
        self.dtype = dtype
        gen = torch.Generator().manual_seed(seed)
        start = torch.randn(S, N, self.p, generator=gen, dtype=torch.float64)
        self.basis = torch.linalg.qr(start.to(self.device, dtype)).Q
        # On the CPU one compiled call per epoch (rnnlab.numba_tracking), basis vectors as rows.
        self.compiled = self.device.type == "cpu" and available()
        if self.compiled:
            self.basis = np.ascontiguousarray(self.basis.numpy().transpose(0, 2, 1))
        self.updates = 0

    def state_dict(self) -> dict:
        """The warm-start basis and update count (a copy), for checkpoints."""
        if isinstance(self.basis, np.ndarray):
            return {"basis": torch.from_numpy(self.basis.copy()), "updates": self.updates}
        return {"basis": self.basis.cpu().clone(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        """Continue from `state_dict()`: the same basis gives the same eigenvalues next epoch."""
        basis = state["basis"]
        if isinstance(self.basis, np.ndarray):
            self.basis = np.ascontiguousarray(torch.as_tensor(basis).numpy(), self.basis.dtype)
        else:
            self.basis = torch.as_tensor(basis).to(self.device, self.dtype)
        self.updates = int(state["updates"])

    def update(self, J: torch.Tensor) -> torch.Tensor:
        """k leading eigenvalues of J (S, N, N), complex (S, k), by descending |lambda + shift|.

        Conjugate pairs come +imag first. Advances the stored basis; the first call runs
        `warmup_iters` products, later calls `iters`.
        """
        vals = self.eigenvalues(J)
        complex_dtype = torch.complex64 if self.dtype == torch.float32 else torch.complex128
        return torch.from_numpy(vals).to(self.device, complex_dtype)

    @torch.no_grad()
    def eigenvalues(self, J: torch.Tensor) -> np.ndarray:
        """As `update`, returned as a NumPy complex128 array (S, k)."""
        if J.shape != (self.S, self.N, self.N):
            raise ValueError(
                f"J must be (S, N, N) = {(self.S, self.N, self.N)}, got {tuple(J.shape)}"
            )
        n_products = self.warmup_iters if self.updates == 0 else self.iters
        if self.compiled:
            vals = np.empty((self.S, self.k), np.complex128)
            mat = np.ascontiguousarray(J.detach().to("cpu", self.dtype).numpy())
            finite = leading_eigvals(mat, self.basis, self.shift, n_products, vals)
        else:
            ritz = self._iterate_torch(J.detach().to(self.device, self.dtype), n_products)
            finite = bool(np.all(np.isfinite(ritz)))
            if finite:
                vals = np.linalg.eigvals(ritz)
                order = np.lexsort((-vals.imag, -np.abs(vals)), axis=-1)[..., : self.k]
                vals = np.take_along_axis(vals, order, axis=-1) - self.shift
        self.updates += 1
        if not finite:
            raise ValueError("J contains non-finite values: cannot track its eigenvalues")
        return vals

    def _iterate_torch(self, mat: torch.Tensor, n_products: int) -> np.ndarray:
        """n_products steps Q <- qr((J + shift) Q) in torch ops; returns Q^T (J + shift) Q."""
        q = self.basis
        for i in range(n_products):
            z = mat @ q
            if self.shift:
                z = z + self.shift * q
            if i == n_products - 1:
                rayleigh = q.transpose(-1, -2) @ z  # Q^T (J + shift) Q, Q orthonormal
            q = torch.linalg.qr(z).Q
        self.basis = q
        return rayleigh.cpu().double().numpy()
