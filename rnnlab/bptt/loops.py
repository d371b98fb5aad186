"""The two time loops of the fused BPTT kernel: forward Euler steps and the adjoint recursion.

Each loop exists twice. `compiled_*` hands the whole loop to `rnnlab.bptt.compiled` (the CPU
default: one GEMM and one fused elementwise pass per step, seeds on parallel threads); `torch_*`
issues three torch ops per step (any device; the CPU fallback where the compiled loops are
unavailable, and `loop="torch"`). Both write into buffers the caller owns:

    states (T, S, Bt, N)   h_k at [k]
    rates  (S, T+1, Bt, N) r_{k-1} at [:, k] (r_{-1} = phi(h0))
    lam    (S, T, Bt, N)   lambda_k at [:, k]
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import Tensor

from rnnlab.bptt.workspace import Workspace, buffer

# Per-step blocks (S*Bt*N elements) up to this size run single-threaded in the torch loops: there
# an OpenMP fork/join (tanh splits from 2048 elements on) costs more than the work it shares.
SERIAL_STEP_NUMEL = 16384
LOOPS = ("auto", "numba", "torch")
# The compiled loops split seeds over threads only when each seed's step GEMM has at least this
# many multiply-adds (Bt * N^2): below it, handing work to a second thread (and competing with
# torch's still-spinning OpenMP threads) cost more than it saved. Measured in the trainer, 2
# cores: (S, N, Bt) = (4, 64, 16) 6.6 ms split vs 5.9 ms on one thread; (4, 128, 16) 14.2 vs
# 15.2; (8, 128, 32) 42.6 vs 54.2.
PARALLEL_MIN_STEP_MACS = 131072

ACT = {  # out <- phi(x) without allocating
    "tanh": torch.tanh,
    "relu": lambda x, out: torch.clamp(x, min=0.0, out=out),
    "linear": lambda x, out: out.copy_(x),
}


def dphi_from_rates(rates: Tensor, phi: str, out: Tensor, one: Tensor | None = None) -> None:
    """out <- phi'(h) computed from r = phi(h) (tanh: 1 - r^2 with `one` a 0-dim 1, relu: r > 0)."""
    if phi == "tanh":
        if one is None:
            one = torch.ones((), dtype=rates.dtype, device=rates.device)
        torch.addcmul(one, rates, rates, value=-1.0, out=out)
    elif phi == "relu":
        torch.gt(rates, 0, out=out)
    else:
        out.fill_(1.0)


def _numba_steps():
    """rnnlab.bptt.compiled, or None where numba or torch's exported GEMM is missing."""
    try:
        from rnnlab.bptt import compiled as numba_steps
    except ImportError:  # pragma: no cover (numba is a dependency; kept for odd platforms)
        return None
    return numba_steps if numba_steps.available() else None


def compiled_loops(loop: str, J: Tensor):
    """rnnlab.bptt.compiled when the step loops for J should run compiled, else None."""
    if loop == "torch":
        return None
    usable = J.device.type == "cpu" and J.dtype in (torch.float32, torch.float64)
    steps = _numba_steps() if usable else None
    if steps is None and loop == "numba":
        raise ValueError(
            "loop='numba' needs a float32/float64 CPU tensor, numba and a torch build that "
            f"exports sgemm_ (got {J.dtype} on {J.device})"
        )
    return steps


def _array(t: Tensor) -> np.ndarray:
    """A C-contiguous NumPy view of a CPU tensor (autograd bypassed on purpose). A strided
    tensor is copied first: the compiled loops vectorise only over unit-stride rows, and each
    memory layout would be another compilation."""
    return t.detach().contiguous().numpy()


def over_seed_threads(steps, kernel, args: tuple, n_seeds: int, step_macs: int) -> None:
    """kernel(*args) of rnnlab.bptt.compiled (`steps`) over groups of seeds on torch's threads.

    With several groups (seeds whose step GEMM has >= PARALLEL_MIN_STEP_MACS multiply-adds) each
    runs on its own thread and torch's BLAS (which the kernel calls) is set to one thread
    meanwhile, restored after; a single group keeps torch's threads for its GEMMs. The thread
    policy of the training loops (`_run_compiled`) and of evaluation (`rnnlab.bptt.forward`).
    """
    threads = torch.get_num_threads()
    workers = min(threads, n_seeds) if step_macs >= PARALLEL_MIN_STEP_MACS else 1
    if workers > 1:
        torch.set_num_threads(1)
    try:
        steps.over_seeds(kernel, args, n_seeds, workers)
    finally:
        if workers > 1:
            torch.set_num_threads(threads)


def _run_compiled(
    steps, kernel, args: tuple, n_seeds: int, step_macs: int, written: tuple[Tensor, ...]
) -> None:
    """kernel(*args) of rnnlab.bptt.compiled (`steps`) over groups of seeds on torch's threads
    (`over_seed_threads`). The kernel writes the `written` tensors through NumPy views, which
    autograd cannot see: their version counters are bumped so that a graph still holding them
    refuses to backpropagate.
    """
    over_seed_threads(steps, kernel, args, n_seeds, step_macs)
    torch.autograd.graph.increment_version(written)


def _coefficients(alpha: float, like) -> tuple:
    """(alpha, 1 - alpha) as NumPy scalars of like's dtype, float32 or float64 (`like` a tensor
    or an array; the compiled loops stay in that dtype)."""
    kind = np.float32 if like.dtype in (torch.float32, np.float32) else np.float64
    return kind(alpha), kind(1.0 - alpha)


def compiled_forward(steps, jt, drive_tm, u_tm, b_t, h0, alpha, phi, states, rates) -> None:
    """Forward loop compiled. drive_tm (S, T, Bt, N) or None, u_tm (S, T, Bt, n_in) and
    b_t = B^T (S, n_in, N) or None: the drive of step k is drive_tm[:, k] + u_tm[:, k] B^T."""
    s, bt, n = h0.shape
    if drive_tm is None:
        drive_tm = jt.new_empty((s, 0, bt, n))
    if u_tm is None:
        u_tm, b_t = jt.new_empty((s, 0, bt, 0)), jt.new_empty((s, 0, n))
    args = (
        _array(jt), _array(drive_tm), _array(u_tm), _array(b_t), _array(h0),
        *_coefficients(alpha, jt), steps.PHI_CODES[phi], _array(states), _array(rates),
    )  # fmt: skip
    _run_compiled(steps, steps.forward_steps, args, s, bt * n * n, (states, rates))


def compiled_adjoint(steps, J, grad_tm, rates, alpha, phi, lam) -> None:
    """Adjoint loop compiled; grad_tm = dL/dr as (S, T, Bt, N); phi' comes from the rates."""
    args = (
        _array(J), _array(grad_tm), _array(rates), *_coefficients(alpha, J),
        steps.PHI_CODES[phi], _array(lam),
    )  # fmt: skip
    s, _, bt, n = lam.shape
    _run_compiled(steps, steps.adjoint_steps, args, s, bt * n * n, (lam,))


@contextmanager
def _step_threads(step: Tensor) -> Iterator[None]:
    """Run a torch step loop on one CPU thread when its blocks are small."""
    old = torch.get_num_threads()
    if step.device.type != "cpu" or old == 1 or step.numel() > SERIAL_STEP_NUMEL:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def torch_forward(
    jt: Tensor, drive: Tensor, h0: Tensor, alpha: float, phi: str, ws: Workspace | None,
    grad_wanted: bool, states: Tensor, rates: Tensor,
) -> Tensor | None:  # fmt: skip
    """Forward loop as torch ops, 3 per step (drive (S, Bt, T, N)). Returns the lam buffer
    holding phi'(h) when it was written here (large blocks: r_k still in cache), else None."""
    t_steps = drive.shape[2]
    ACT[phi](h0, out=rates[:, 0])
    lerp, act = torch.lerp, ACT[phi]
    r_steps = rates.unbind(1)  # views made once: per-step indexing costs as much as an op
    lam = None
    if phi != "linear" and grad_wanted and h0.numel() > SERIAL_STEP_NUMEL:
        lam = buffer(ws, "lam", tuple(rates[:, 1:].shape), jt)
    d_steps = lam.unbind(1) if lam is not None else (None,) * t_steps
    one = torch.ones((), dtype=jt.dtype, device=jt.device)
    h_prev = h0
    with _step_threads(h0):
        for h_k, r_prev, r_k, d_k, dphi_k in zip(
            states.unbind(0), r_steps[:-1], r_steps[1:], drive.unbind(2), d_steps, strict=True
        ):
            lerp(h_prev, d_k, alpha, out=h_k)  # (1-a) h_{k-1} + a drive_k
            h_k.baddbmm_(r_prev, jt, alpha=alpha)  # + a r_{k-1} J^T
            act(h_k, out=r_k)
            if dphi_k is not None:
                dphi_from_rates(r_k, phi, dphi_k, one)
            h_prev = h_k
    return lam


def torch_adjoint(
    J: Tensor, grad_rates: Tensor, lam: Tensor, alpha: float, phi: str, ws: Workspace | None
) -> None:
    """Adjoint loop as torch ops, 3 per step (lam holds phi'(h) on entry, lambda on exit)."""
    s, _, bt, n = lam.shape
    c, linear = 1.0 - alpha, phi == "linear"
    tmp = buffer(ws, "tmp", (s, bt, n), J)
    g_steps, lam_steps = grad_rates.unbind(2), lam.unbind(1)
    if linear:  # lambda_{T-1} = phi'(h) g_{T-1}
        lam_steps[-1].copy_(g_steps[-1])
    else:
        lam_steps[-1].mul_(g_steps[-1])
    baddbmm, add = torch.baddbmm, torch.add
    with _step_threads(tmp):  # k = T-2 .. 0
        for g_k, lam_k, lam_next in zip(
            g_steps[-2::-1], lam_steps[-2::-1], lam_steps[:0:-1], strict=True
        ):
            baddbmm(g_k, lam_next, J, alpha=alpha, out=tmp)  # g_k + a lambda_{k+1} J
            if not linear:
                tmp.mul_(lam_k)  # * phi'(h_k)
            add(tmp, lam_next, alpha=c, out=lam_k)  # + (1-a) lambda_{k+1}
