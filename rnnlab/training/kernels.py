"""The compiled CPU kernels a run uses: are they in numba's disk cache, and compile them ahead.

The first run after installing compiles the OU recursion, the BPTT step loops, the outlier
tracker and the forward-only loop that evaluates networks (rnnlab.bptt.forward, about 2 s of it);
later runs load them from the cache in rnnlab's __pycache__ (or NUMBA_CACHE_DIR).
`prepare` does that before anything else of a run (so the progress bar's rate is the training's)
and says so when they are not cached (measured here: 8.6-10.6 s on 2 cores, 5.4 s of it the
tracker). Tried and dropped: compiling the tracker in a second process meanwhile (9.2 -> 10.6 s
and 10.6 -> 18.9 s with the machine's other core busy: no gain). Ahead-of-time compilation
(numba.pycc) is deprecated and cannot link the MKL symbols these kernels find in torch's library
at load time, so it is not used.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from typing import Any

from rnnlab.config import Config, washout_steps


def _dispatchers() -> list[Any]:
    from rnnlab.bptt import compiled
    from rnnlab.network import tasks
    from rnnlab.spectra import tracker_kernel

    return [
        tasks.ar1,
        compiled.forward_steps,
        compiled.adjoint_steps,
        compiled.forward_errors,
        tracker_kernel.leading_eigvals,
        tracker_kernel.outlier_summary,
    ]


def kernels_cached() -> bool:
    """Whether every kernel has an entry in numba's on-disk cache (a cheap file check)."""
    try:
        return all(os.path.exists(d._cache._cache_file._index_path) for d in _dispatchers())
    except AttributeError:  # another numba's cache internals: assume cached, say nothing
        return True


def prepare(cfg: Config, announce: bool = True) -> None:
    """Compile or load every kernel `cfg` needs, saying so first when the cache is cold."""
    cold = not kernels_cached()
    if cold and announce:
        print("compiling kernels (once, about 10 s) ...", file=sys.stderr, flush=True)
    start = time.perf_counter()
    warm_up_kernels(cfg)
    if cold and announce:
        print(f"compiled in {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)


def warm_up_kernels(cfg: Config) -> None:
    """Run a tiny forward/backward and tracker step with `cfg`'s nonlinearity, inputs and noise,
    through the trainer's own code path, so every kernel specialisation it needs is compiled."""
    import numpy as np
    import torch

    from rnnlab.bptt.dynamics import Workspace
    from rnnlab.network.tasks import ar1
    from rnnlab.training.trainer import Network, forward

    n = max(4, cfg.record.track_k + 1)
    model, task = dataclasses.replace(cfg.model, N=n), cfg.task
    n_in, n_out = len(task.inputs), len(task.outputs)
    washout = washout_steps(cfg)  # dt is cfg's own
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
    ar1(np.zeros((1, 2, 1)), 0.5)
    warm_up_tracker(cfg)
    warm_up_evaluation(n, n_in, n_out, steps, model.phi)


def warm_up_evaluation(n: int, n_in: int, n_out: int, steps: int, phi: str) -> None:
    """Compile or load the forward-only loop that `rnnlab analyze` and `rnnlab info` evaluate
    networks with (rnnlab.bptt.forward, float32), so their first use runs warm."""
    import numpy as np

    from rnnlab.bptt.forward import trial_errors

    trial_errors(
        np.zeros((1, n, n)), np.zeros((1, n, n_in)), np.zeros((1, n, n_out)),
        np.zeros((1, 2, steps, n_in)), np.zeros((1, 2, steps, n_out)), np.zeros(1, np.int64),
        0.5, phi, 1,
    )  # fmt: skip


def warm_up_tracker(cfg: Config) -> None:
    """Compile or load the per-epoch tracker's kernels (they depend on no config value)."""
    import torch

    from rnnlab.training.monitor import OutlierRecorder

    n = max(4, cfg.record.track_k + 1)
    tiny = cfg.replace(seeds=(0,), model=dataclasses.replace(cfg.model, N=n))
    OutlierRecorder(tiny, 1, torch.device("cpu")).update(torch.zeros(1, n, n))
