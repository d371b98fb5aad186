"""Forward-only simulation for evaluation: the per-trial task MSE of many networks.

The training's Euler step (`rnnlab.bptt.compiled.forward_steps`: one MKL GEMM and one fused
elementwise pass per step, the same rational tanh) run by `compiled.forward_errors` without
keeping the trajectory: the readout y_k = r_k w (one more GEMM) and the squared error against
the target are taken step by step, so a thread holds three (Bt, N) blocks whatever T is. The
fused BPTT kernel (`run_dynamics`) keeps all T steps for its backward, which limited evaluation
to about 40 trials per GEMM at N = 128 (64 MiB of buffers) and added a readout pass over all
of them: 64 networks x 400 trials of the default run took 4.2 s that way, 1.3 s here (1 core).

Used by `rnnlab.analysis.np_simulate` on the CPU; `trial_errors` returns None where the
compiled loops are unavailable, and the caller then simulates with `run_dynamics` + `readout`
(the same numbers to float32 rounding, tested).
"""

from __future__ import annotations

import numpy as np

from rnnlab.bptt.loops import _coefficients, _numba_steps, over_seed_threads

__all__ = ["TRIAL_BLOCK", "trial_errors"]

# Elements of one (Bt, N) block: trials per kernel call = TRIAL_BLOCK // N, at least 32 (N = 128:
# 1024 trials; 200 or 400 trials per call ran at the same speed there). The split depends on
# N and the number of trials only, so a network's numbers do not depend on what else is run.
TRIAL_BLOCK = 2**17


def trial_errors(
    J: np.ndarray,
    B: np.ndarray,
    w: np.ndarray,
    inputs: np.ndarray,
    targets: np.ndarray,
    trial_set: np.ndarray,
    alpha: float,
    phi: str,
    washout: int,
    *,
    dtype: type = np.float32,
) -> np.ndarray | None:
    """Per-trial MSE of L networks, (L, n) float64, or None without the compiled loops.

    J (L, N, N), B (L, N, n_in), w (L, N, n_out): the networks (simulated in `dtype`, from h = 0,
    no process noise); inputs (G, n, T, n_in) and targets (G, n, T, n_out): G sets of n trials;
    network l meets set trial_set[l]. The MSE of a trial is the mean over the steps from
    `washout` on and over the outputs, as in training.
    """
    steps = _numba_steps()
    if steps is None:
        return None
    dtype = np.dtype(dtype)
    n_net, n = J.shape[0], J.shape[-1]
    n_trials = inputs.shape[1]
    out = np.empty((n_net, n_trials))
    if n_net == 0 or n_trials == 0:
        return out
    jt = np.ascontiguousarray(np.swapaxes(J, 1, 2), dtype=dtype)
    b_t = np.ascontiguousarray(np.swapaxes(B, 1, 2), dtype=dtype)
    w = np.ascontiguousarray(w, dtype=dtype)
    trial_set = np.ascontiguousarray(trial_set, dtype=np.int64)
    u_tm = np.swapaxes(np.asarray(inputs), 1, 2)  # (G, T, n, n_in) views
    y_tm = np.swapaxes(np.asarray(targets), 1, 2)
    coef = _coefficients(alpha, jt)
    block = max(32, TRIAL_BLOCK // n)
    for t0 in range(0, n_trials, block):
        t1 = min(n_trials, t0 + block)
        bt = t1 - t0
        u = np.ascontiguousarray(u_tm[:, :, t0:t1], dtype=dtype)
        target = np.ascontiguousarray(y_tm[:, :, t0:t1], dtype=np.float64)
        err = np.empty((n_net, bt))
        args = (jt, u, b_t, w, target, trial_set, *coef, steps.PHI_CODES[phi], int(washout), err)
        over_seed_threads(steps, steps.forward_errors, args, n_net, bt * n * n)
        out[:, t0:t1] = err
    return out
