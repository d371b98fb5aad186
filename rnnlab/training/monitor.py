"""Per-epoch outlier tracking for the trainer: leading eigenvalues of J, outlier count, max Re.

Cheap by design (a warm-started iteration on the training device, no full eigendecomposition), so
it can run every epoch; full spectra are computed at snapshots by the background writer.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from rnnlab.config import Config
from rnnlab.spectra.conventions import bulk_edge, dphi_at_origin
from rnnlab.spectra.tracker import LeadingEigTracker, ritz_values
from rnnlab.spectra.tracker_kernel import outlier_summary


class OutlierRecorder:
    """Tracks the k leading eigenvalues of J every epoch and the Jacobian's max Re at the origin.

    The Jacobian at the origin is -I + phi'(0) J, so its eigenvalues are phi'(0) lambda(J) - 1;
    the max real part over the tracked eigenvalues (largest |lambda + g|: the rightmost ones) is
    recorded each epoch as a cheap running estimate. It converges slowly for eigenvalues near the
    bulk edge, which is where an outlier crosses: on the default run it was off by up to 0.17 early
    in training (against a full eig every epoch), so the archive's crossing_epoch comes from the
    exact snapshot spectra instead (ArchiveWriter.finish).
    """

    def __init__(self, cfg: Config, n_seeds: int, device: torch.device) -> None:
        model = cfg.model
        n, k = model.N, cfg.record.track_k
        # the start basis as it always was drawn (torch's stream, QR in float32): same numbers
        gen = torch.Generator().manual_seed(0)
        p = min(n, k + 4)
        start = torch.randn(n_seeds, n, p, generator=gen, dtype=torch.float64)
        basis = torch.linalg.qr(start.to(device, torch.float32)).Q
        shift = model.g  # favour the rightmost eigenvalues over the mean term's -b
        if device.type == "cpu":
            self.tracker = LeadingEigTracker(n_seeds, n, k=k, shift=shift, basis=basis.numpy())
        else:
            self.tracker = TorchEigTracker(basis, k=k, shift=shift)
        self.edge = float(bulk_edge(model.g, model.N))
        self.slope0 = float(dphi_at_origin(model.phi))

    @classmethod
    def for_trainer(cls, trainer: Any) -> OutlierRecorder:
        return cls(trainer.cfg, len(trainer.cfg.seeds), trainer.device)

    def state_dict(self) -> dict[str, Any]:
        """The tracker's state with tensors only (checkpoints load with weights_only=True)."""
        state = self.tracker.state_dict()
        return {**state, "basis": torch.as_tensor(state["basis"])}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        basis = state["basis"]
        if isinstance(self.tracker, LeadingEigTracker):
            basis = basis.numpy()
        self.tracker.load_state_dict({**state, "basis": basis})

    def update(self, J: torch.Tensor) -> dict[str, np.ndarray]:
        """Values for this epoch's learning-curve row (few NumPy calls: this runs every epoch)."""
        lam = self.tracker.eigenvalues(J if J.device.type != "cpu" else J.numpy())
        n_out = np.empty(len(lam), np.int32)  # how many lie outside the bulk disc
        max_re = np.empty(len(lam))
        outlier_summary(lam, self.edge, self.slope0, n_out, max_re)
        return {"tracked": lam, "n_outliers": n_out, "max_re_jac0": max_re}


class TorchEigTracker:
    """The tracker's subspace iteration in torch ops, for J on a GPU (the p x p eigenproblem in
    NumPy): as rnnlab.spectra.tracker.LeadingEigTracker, with its basis on the device."""

    def __init__(
        self,
        basis: torch.Tensor,
        k: int,
        shift: float = 0.0,
        iters: int = 2,
        warmup_iters: int = 30,
    ) -> None:
        self.basis, self.k, self.shift = basis, k, float(shift)
        self.p = basis.shape[-1]
        self.iters, self.warmup_iters, self.updates = iters, warmup_iters, 0

    def state_dict(self) -> dict[str, Any]:
        return {"basis": self.basis.cpu().clone(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.basis = torch.as_tensor(state["basis"]).to(self.basis.device, self.basis.dtype)
        self.updates = int(state["updates"])

    @torch.no_grad()
    def eigenvalues(self, J: torch.Tensor) -> np.ndarray:
        """k leading eigenvalues of J (S, N, N) as complex128 (S, k)."""
        n_products = self.warmup_iters if self.updates == 0 else self.iters
        mat, q = J.detach().to(self.basis.dtype), self.basis
        for i in range(n_products):
            z = mat @ q
            if self.shift:
                z = z + self.shift * q
            if i == n_products - 1:
                rayleigh = q.transpose(-1, -2) @ z  # Q^T (J + shift) Q, Q orthonormal
            q = torch.linalg.qr(z).Q
        self.basis = q
        self.updates += 1
        ritz = rayleigh.cpu().double().numpy()
        if not np.all(np.isfinite(ritz)):
            raise ValueError("J contains non-finite values: cannot track its eigenvalues")
        return ritz_values(ritz, self.k, self.shift)

    def update(self, J: Any) -> np.ndarray:
        """`eigenvalues` of a tensor or array (on the basis' device)."""
        return self.eigenvalues(torch.as_tensor(J, device=self.basis.device))
