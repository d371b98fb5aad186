"""The compiled CPU kernels a run uses: are they in numba's disk cache, and compile them ahead.

The first run after installing compiles the BPTT step loops and the outlier tracker (10-20 s on 2
cores); later runs load them from the cache in rnnlab's __pycache__. A run compiles them before
its progress bar starts (so the bar's rate is the training's) and says so when they are not cached.
"""

from __future__ import annotations

import os
from typing import Any


def _dispatchers() -> list[Any]:
    from rnnlab import numba_steps, numba_tracking

    return [
        numba_steps.forward_steps,
        numba_steps.adjoint_steps,
        numba_tracking.leading_eigvals,
        numba_tracking.outlier_summary,
    ]


def kernels_cached() -> bool:
    """Whether every kernel has an entry in numba's on-disk cache (a cheap file check)."""
    try:
        return all(os.path.exists(d._cache._cache_file._index_path) for d in _dispatchers())
    except AttributeError:  # another numba's cache internals: assume cached, say nothing
        return True


def warm_up_kernels(cfg: dict[str, Any]) -> None:
    """Run a tiny forward/backward and tracker step with `cfg`'s nonlinearity, inputs and noise,
    through the trainer's own code path, so every kernel specialisation it needs is compiled."""
    import torch

    from rnnlab.dynamics import Workspace
    from rnnlab.tracking_record import OutlierRecorder
    from rnnlab.train import Network, forward

    n = max(4, cfg["record"]["track_k"] + 1)
    tiny = {**cfg, "seeds": [0], "model": {**cfg["model"], "N": n}}
    task = cfg["task"]
    n_in = task["n_stimuli"] + (1 if task["kind"] == "switch" else 0)
    steps = max(2, round(task["washout"] / cfg["model"]["dt"]) + 2)
    gen = torch.Generator().manual_seed(0)
    J = (0.1 * torch.randn(1, n, n, generator=gen)).requires_grad_(True)
    net = Network(
        J=J,
        B=torch.randn(1, n, n_in, generator=gen),
        w=torch.zeros(1, n, task["n_outputs"], requires_grad=True),
        J0=J.detach().clone(),
        trainable=["J", "w"],
    )
    inputs = torch.randn(1, 2, steps, n_in, generator=gen)
    targets = torch.zeros(1, 2, steps, task["n_outputs"])
    noise = None
    if cfg["model"]["noise"] > 0:
        noise = torch.randn(steps, 2, n, generator=gen).unsqueeze(0).transpose(1, 2)
    tiny_cfg = {**tiny, "task": {**task, "duration": steps * cfg["model"]["dt"]}}
    workspace = Workspace() if cfg["train"]["fused"] else None
    out = forward(net, inputs, targets, tiny_cfg, noise, workspace)
    out.loss.sum().backward()
    OutlierRecorder(tiny_cfg, 1, torch.device("cpu")).update(J.detach())
