"""The Euler step loops of the fused BPTT kernel, compiled with numba for the CPU.

From Python every time step costs a handful of dispatched torch ops (1.5-5 us each), which is
most of an epoch for small networks. Here the whole time loop of a seed is one compiled function:
per step one GEMM into a scratch block and one fused elementwise pass (leak + drive +
nonlinearity forward; phi' + adjoint update backward). Seeds are independent, so `over_seeds`
runs groups of them on parallel threads (the kernels release the GIL).

The GEMM is MKL's, as torch exports it (`rnnlab.bptt.mkl`); `available()` is False where it
does not, and the caller then keeps its torch-op loops.

Layouts are those of `rnnlab.bptt.dynamics`: states (T, S, Bt, N), rates (S, T+1, Bt, N) with
r_{-1} in slot 0, drive and dL/dr as (S, T, Bt, N) views, lambda (S, T, Bt, N).

float32 tanh is a rational function x P(x^2) / Q(x^2) evaluated in float64 (it vectorises;
libm's tanh does not and cost 8 ns per element), within one float32 ulp of tanh (tested);
float64 uses libm's tanh. `error_model="numpy"` matters: Python's division semantics (a zero
check per division) would stop the loops from vectorising. No fast-math beyond contraction,
so NaN and inf propagate as in torch.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import torch
from numba.core import types
from numba.extending import overload

from rnnlab.bptt.mkl import available, gemm_scratch, matmul

__all__ = [
    "PHI_CODES",
    "adjoint_steps",
    "available",
    "forward_errors",
    "forward_steps",
    "over_seeds",
]

PHI_CODES = {"tanh": 0, "relu": 1, "linear": 2}
TANH_CLIP = 9.0  # |x| >= 9: tanh(x) is +-1 to within 3e-8
# tanh(x) ~ x P(x^2) / Q(x^2) on [0, 9]: weighted least squares with Lawson reweighting
# (fitted for this module), max relative error 1.3e-8 in float64.
P0, P1, P2, P3, P4, P5, P6 = (
    9.99999988e-01, -1.58873559e-01, 3.14222567e-02, 7.95122712e-03,
    2.25809354e-04, 1.33855449e-06, 8.47156148e-10,
)  # fmt: skip
Q0, Q1, Q2, Q3, Q4, Q5, Q6 = (
    1.0, 1.74459609e-01, -4.37574823e-02, 2.40719751e-02,
    1.63016931e-03, 2.13938716e-05, 5.00328744e-08,
)  # fmt: skip
_JIT = {"nogil": True, "cache": True, "fastmath": {"contract"}, "error_model": "numpy"}


@numba.njit(error_model="numpy")
def rational_tanh(x):  # pragma: no cover (jit)
    """tanh(x) to 1.3e-8 relative, in float64 (x clipped to [-9, 9]; NaN stays NaN)."""
    x = np.float64(x)
    if x > TANH_CLIP:
        x = TANH_CLIP
    if x < -TANH_CLIP:
        x = -TANH_CLIP
    z = x * x
    num = x * ((((((P6 * z + P5) * z + P4) * z + P3) * z + P2) * z + P1) * z + P0)
    den = (((((Q6 * z + Q5) * z + Q4) * z + Q3) * z + Q2) * z + Q1) * z + Q0
    return num / den


def _tanh(x):  # pragma: no cover (typed by the overload below)
    raise NotImplementedError


@overload(_tanh)
def _tanh_overload(x):
    if isinstance(x, types.Float) and x.bitwidth == 32:
        return lambda x: np.float32(rational_tanh(x))
    return lambda x: math.tanh(x)


@numba.njit(error_model="numpy")
def _act(v, phi):  # pragma: no cover (jit)
    if phi == 0:
        return _tanh(v)
    if phi == 1:
        return v if not v < 0 else 0.0  # relu (NaN passes, as in torch)
    return v


@numba.njit(error_model="numpy")
def _dphi_from_rate(r, phi):  # pragma: no cover (jit)
    if phi == 0:
        return 1 - r * r
    if phi == 1:
        return (r > 0) * (r - r + 1)
    return r - r + 1


@numba.njit(error_model="numpy")
def _add_inputs(tmp, u_k, b_t):  # pragma: no cover (jit)
    """tmp += u_k B^T for u_k (Bt, n_in) and b_t = B^T (n_in, N): n_in rank-1 updates per row."""
    for i in range(tmp.shape[0]):
        for c in range(u_k.shape[1]):
            uc = u_k[i, c]
            for j in range(tmp.shape[1]):
                tmp[i, j] += uc * b_t[c, j]


@numba.njit(**_JIT)
def forward_steps(
    jt, drive, u, b_t, h0, alpha, keep, phi, states, rates, s0, s1
):  # pragma: no cover (jit)
    """Seeds s0..s1-1: h_k = keep h_{k-1} + alpha (r_{k-1} J^T + u_k B^T + d_k), r_k = phi(h_k).

    `drive` (S, T, Bt, N) may have T = 0 (no extra drive) and `u` (S, T, Bt, n_in) n_in = 0.
    """
    _, t_steps, bt, n = states.shape[1], states.shape[0], states.shape[2], states.shape[3]
    with_drive, with_inputs = drive.shape[1] > 0, u.shape[3] > 0
    tmp = np.empty((bt, n), dtype=states.dtype)
    scratch = gemm_scratch(tmp, bt, n, n)
    for s in range(s0, s1):
        r0, hs = rates[s, 0], h0[s]
        for i in range(bt):
            for j in range(n):
                r0[i, j] = _act(hs[i, j], phi)
        h_prev = hs
        for k in range(t_steps):
            matmul(rates[s, k], jt[s], tmp, scratch, False)
            if with_inputs:
                _add_inputs(tmp, u[s, k], b_t[s])
            h_k, r_k = states[k, s], rates[s, k + 1]
            if with_drive:
                d_k = drive[s, k]
                for i in range(bt):
                    for j in range(n):
                        v = keep * h_prev[i, j] + alpha * (d_k[i, j] + tmp[i, j])
                        h_k[i, j] = v
                        r_k[i, j] = _act(v, phi)
            else:
                for i in range(bt):
                    for j in range(n):
                        v = keep * h_prev[i, j] + alpha * tmp[i, j]
                        h_k[i, j] = v
                        r_k[i, j] = _act(v, phi)
            h_prev = h_k


@numba.njit(**_JIT)
def adjoint_steps(J, grad, rates, alpha, keep, phi, lam, s0, s1):  # pragma: no cover
    """Seeds s0..s1-1: lambda_k = phi'(h_k) (g_k + alpha lambda_{k+1} J) + keep lambda_{k+1}."""
    _, t_steps, bt, n = grad.shape
    tmp = np.empty((bt, n), dtype=lam.dtype)
    scratch = gemm_scratch(tmp, bt, n, n)
    last = t_steps - 1
    for s in range(s0, s1):
        l_last, r_last, g_last = lam[s, last], rates[s, last + 1], grad[s, last]
        for i in range(bt):
            for j in range(n):
                l_last[i, j] = _dphi_from_rate(r_last[i, j], phi) * g_last[i, j]
        for k in range(last - 1, -1, -1):
            l_next = lam[s, k + 1]
            matmul(l_next, J[s], tmp, scratch, False)
            l_k, r_k, g_k = lam[s, k], rates[s, k + 1], grad[s, k]
            for i in range(bt):
                for j in range(n):
                    d = _dphi_from_rate(r_k[i, j], phi)
                    l_k[i, j] = d * (g_k[i, j] + alpha * tmp[i, j]) + keep * l_next[i, j]


@numba.njit(**_JIT)
def forward_errors(
    jt, u, b_t, w, target, trial_set, alpha, keep, phi, wash, err, s0, s1
):  # pragma: no cover (jit)
    """Networks s0..s1-1, forward only from h = 0: the same step as `forward_steps`,
    h_k = keep h_{k-1} + alpha (r_{k-1} J^T + u_k B^T), r_k = phi(h_k), then y_k = r_k w (one
    GEMM) and err[s, i] = mean over k >= wash and outputs of (y_k - target_k)^2 (float64).

    Nothing of the trajectory is kept: three (Bt, N) blocks per thread. Network s meets the
    trials of set `trial_set[s]`: u (G, T, Bt, n_in), target (G, T, Bt, n_out) float64.
    """
    t_steps, bt, n_in = u.shape[1], u.shape[2], u.shape[3]
    n, n_out = jt.shape[1], w.shape[2]
    h = np.empty((bt, n), dtype=jt.dtype)
    r = np.empty((bt, n), dtype=jt.dtype)
    tmp = np.empty((bt, n), dtype=jt.dtype)
    y = np.empty((bt, n_out), dtype=jt.dtype)
    scratch = gemm_scratch(tmp, bt, n, n)
    scratch_y = gemm_scratch(y, bt, n, n_out)
    scale = 1.0 / max(1, (t_steps - wash) * n_out)
    for s in range(s0, s1):
        g = trial_set[s]
        for i in range(bt):
            err[s, i] = 0.0
            for j in range(n):
                h[i, j] = 0.0
                r[i, j] = _act(h[i, j], phi)
        for k in range(t_steps):
            matmul(r, jt[s], tmp, scratch, False)  # r_{k-1} J^T, read before r is overwritten
            if n_in > 0:
                _add_inputs(tmp, u[g, k], b_t[s])
            for i in range(bt):
                for j in range(n):
                    v = keep * h[i, j] + alpha * tmp[i, j]
                    h[i, j] = v
                    r[i, j] = _act(v, phi)
            if k >= wash:
                matmul(r, w[s], y, scratch_y, False)
                tg = target[g, k]
                for i in range(bt):
                    acc = 0.0
                    for o in range(n_out):
                        d = np.float64(y[i, o]) - tg[i, o]
                        acc += d * d
                    err[s, i] += acc
        for i in range(bt):
            err[s, i] *= scale


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _forget_pool() -> None:
    """In a forked child the pool's threads do not exist: start a fresh pool there."""
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_pool)


def _executor(workers: int) -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None or _pool._max_workers < workers:
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rnnlab-steps")
        return _pool


def seed_groups(n_seeds: int, workers: int) -> list[tuple[int, int]]:
    """Split seeds 0..n_seeds-1 into at most `workers` contiguous (start, stop) groups."""
    workers = max(1, min(workers, n_seeds))
    bounds = np.linspace(0, n_seeds, workers + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]


def _sequential(kernel: Callable, *args) -> None:
    """kernel(*args) on a pool thread, whose own OpenMP/MKL thread count is first set to 1."""
    torch.set_num_threads(1)
    kernel(*args)


def over_seeds(kernel: Callable, args: tuple, n_seeds: int, workers: int) -> None:
    """Run kernel(*args, s0, s1) for groups of seeds on up to `workers` threads (this one too)."""
    groups = seed_groups(n_seeds, workers)
    if len(groups) == 1:
        kernel(*args, *groups[0])
        return
    pool = _executor(len(groups) - 1)
    futures = [pool.submit(_sequential, kernel, *args, *g) for g in groups[1:]]
    kernel(*args, *groups[0])
    for f in futures:
        f.result()
