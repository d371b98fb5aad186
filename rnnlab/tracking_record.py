"""Per-epoch outlier tracking for the trainer: leading eigenvalues of J, outlier count, max Re.

Cheap by design (a warm-started iteration on the training device, no full eigendecomposition), so
it can run every epoch; full spectra are computed at snapshots by the background writer.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from rnnlab.spectra import bulk_edge, crossing_epoch, dphi_at_origin, outlier_mask
from rnnlab.tracking import LeadingEigTracker


class OutlierRecorder:
    """Tracks the k leading eigenvalues of J every epoch and the Jacobian's max Re at the origin.

    The Jacobian at the origin is -I + phi'(0) J, so its eigenvalues are phi'(0) lambda(J) - 1 and
    the max real part over the tracked eigenvalues (largest |lambda + g|: the rightmost ones)
    is recorded each epoch. It is
    exact whenever the eigenvalue of largest real part is an outlier (the case that matters for the
    stability crossing); inside the bulk it is a lower bound.
    """

    def __init__(self, cfg: dict[str, Any], n_seeds: int, device: torch.device) -> None:
        model = cfg["model"]
        self.tracker = LeadingEigTracker(
            n_seeds,
            model["N"],
            k=cfg["record"]["track_k"],
            device=device,
            dtype=torch.float32,
            shift=model["g"],  # favour the rightmost eigenvalues over the mean term's -b
            iters=1,  # J moves little per epoch: one warm-started product keeps up
        )
        self.edge = float(bulk_edge(model["g"], model["N"]))
        self.slope0 = float(dphi_at_origin(model["phi"]))
        self.max_re: list[np.ndarray] = []

    @classmethod
    def for_trainer(cls, trainer: Any) -> OutlierRecorder:
        return cls(trainer.cfg, len(trainer.cfg["seeds"]), trainer.device)

    def update(self, J: torch.Tensor) -> dict[str, np.ndarray]:
        """Values for this epoch's learning-curve row."""
        lam = self.tracker.update(J).detach().cpu().numpy().astype(np.complex128)
        n_out = outlier_mask(lam, 0.0, self.edge).sum(axis=-1).astype(np.int32)
        max_re = self.slope0 * lam.real.max(axis=-1) - 1.0
        self.max_re.append(max_re)
        return {"tracked": lam, "n_outliers": n_out, "max_re_jac0": max_re}

    def crossing_epochs(self) -> np.ndarray:
        """Per seed, the epoch where max Re of the Jacobian at the origin first crosses 0."""
        series = np.stack(self.max_re, axis=1)  # (S, epochs), one column per epoch from 0
        return np.asarray(crossing_epoch(np.arange(series.shape[1]), series), dtype=float)
