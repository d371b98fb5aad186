"""The compiled CPU kernels a run uses: are they in numba's disk cache, and compile them ahead.

The first run after installing compiles the BPTT step loops and the outlier tracker (10-20 s on 2
cores); later runs load them from the cache in rnnlab's __pycache__. A run compiles them before
its progress bar starts (so the bar's rate is the training's) and says so when they are not cached.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from rnnlab.config import Config


def _dispatchers() -> list[Any]:
    from rnnlab.bptt import compiled
    from rnnlab.spectra import tracker_kernel

    return [
        compiled.forward_steps,
        compiled.adjoint_steps,
        tracker_kernel.leading_eigvals,
        tracker_kernel.outlier_summary,
    ]


def kernels_cached() -> bool:
    """Whether every kernel has an entry in numba's on-disk cache (a cheap file check)."""
    try:
        return all(os.path.exists(d._cache._cache_file._index_path) for d in _dispatchers())
    except AttributeError:  # another numba's cache internals: assume cached, say nothing
        return True


def warm_up_kernels(cfg: Config) -> None:
    """Run a tiny forward/backward and tracker step with `cfg`'s nonlinearity, inputs and noise,
    through the trainer's own code path, so every kernel specialisation it needs is compiled."""
    import torch

    from rnnlab.bptt.dynamics import Workspace
    from rnnlab.training.monitor import OutlierRecorder
    from rnnlab.training.trainer import Network, forward

    n = max(4, cfg.record.track_k + 1)
    model, task = dataclasses.replace(cfg.model, N=n), cfg.task
    n_in, n_out = len(task.inputs), len(task.outputs)
    washout = round(task.washout / model.dt)
    steps = washout + 2
    gen = torch.Generator().manual_seed(0)
    J = (0.1 * torch.randn(1, n, n, generator=gen)).requires_grad_(True)
    net = Network(
        J=J,
        B=torch.randn(1, n, n_in, generator=gen),
        w=torch.zeros(1, n, n_out, requires_grad=True),
        J0=J.detach().clone(),
        trainable=["J", "w"],
    )
    inputs = torch.randn(1, 2, steps, n_in, generator=gen)
    targets = torch.zeros(1, 2, steps, n_out)
    noise = None
    if model.noise > 0:
        noise = torch.randn(steps, 2, n, generator=gen).unsqueeze(0).transpose(1, 2)
    workspace = Workspace() if cfg.train.fused else None
    out = forward(net, inputs, targets, model, cfg.train, washout, noise, workspace)
    out.loss.sum().backward()
    tiny = cfg.replace(seeds=(0,), model=model)
    OutlierRecorder(tiny, 1, torch.device("cpu")).update(J.detach())
