"""Euler-discretised rate dynamics h <- (1-a) h + a (J phi(h) + drive), with a fused BPTT kernel.

`run_dynamics` unrolls T steps for S independent seeds at once (seeds are a batch dimension of
every matrix product; nothing mixes seeds). `fused=False` is the plain per-step autograd loop (the
reference). `fused=True` runs the forward without building a graph and computes the gradient with
the adjoint recursion, running backwards in time,

    lambda_k = phi'(h_k) * (g_k + a lambda_{k+1} J) + (1-a) lambda_{k+1},    lambda_T = 0,

(g_k = dL/dr_k from the caller), then dJ = a sum_k lambda_k^T r_{k-1} as ONE batched GEMM over
all steps and trials, d(drive_k) = a lambda_k and d(h0) = phi'(h0) (a lambda_0 J) + (1-a) lambda_0.
Per step it issues three ops forward and three backward, into preallocated buffers.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor

from rnnlab.config import PHIS

# Per-step blocks (S*Bt*N elements) up to this size run single-threaded on the CPU: there an
# OpenMP fork/join (tanh splits from 2048 elements on) costs more than the work it shares.
SERIAL_STEP_NUMEL = 16384
_GRAD_RATES = "grad_rates"  # workspace buffer that readout's backward lends to the kernel


def _check_phi(phi: str) -> None:
    if phi not in PHIS:
        raise ValueError(f"unknown nonlinearity phi={phi!r}; expected one of {PHIS}")


def phi_torch(x: Tensor, phi: str) -> Tensor:
    """The rate nonlinearity phi(x) for phi in PHIS."""
    _check_phi(phi)
    if phi == "tanh":
        return torch.tanh(x)
    if phi == "relu":
        return torch.relu(x)
    return x


def dphi_torch(x: Tensor, phi: str) -> Tensor:
    """The derivative phi'(x); relu'(0) := 0 (torch's convention)."""
    _check_phi(phi)
    if phi == "tanh":
        return 1.0 - torch.tanh(x) ** 2
    if phi == "relu":
        return (x > 0).to(x.dtype)
    return torch.ones_like(x)


_ACT = {  # out <- phi(x) without allocating
    "tanh": torch.tanh,
    "relu": lambda x, out: torch.clamp(x, min=0.0, out=out),
    "linear": lambda x, out: out.copy_(x),
}


def _dphi_from_rates(rates: Tensor, phi: str, out: Tensor, one: Tensor | None = None) -> None:
    """out <- phi'(h) computed from r = phi(h) (tanh: 1 - r^2 with `one` a 0-dim 1, relu: r > 0)."""
    if phi == "tanh":
        if one is None:
            one = torch.ones((), dtype=rates.dtype, device=rates.device)
        torch.addcmul(one, rates, rates, value=-1.0, out=out)
    elif phi == "relu":
        torch.gt(rates, 0, out=out)
    else:
        out.fill_(1.0)


def _validate(J: Tensor, drive: Tensor, h0: Tensor, alpha: float, phi: str) -> None:
    _check_phi(phi)
    if not (0.0 < float(alpha) <= 1.0):
        raise ValueError(f"alpha = dt/tau must lie in (0, 1], got {alpha}")
    if J.dim() != 3 or J.shape[1] != J.shape[2]:
        raise ValueError(f"J must have shape (S, N, N), got {tuple(J.shape)}")
    s, n = J.shape[0], J.shape[1]
    if drive.dim() != 4 or drive.shape[0] != s or drive.shape[3] != n:
        raise ValueError(f"drive must have shape (S={s}, Bt, T, N={n}), got {tuple(drive.shape)}")
    bt = drive.shape[1]
    if tuple(h0.shape) != (s, bt, n):
        raise ValueError(f"h0 must have shape (S, Bt, N) = {(s, bt, n)}, got {tuple(h0.shape)}")
    if drive.shape[2] < 1:
        raise ValueError("drive must have at least one time step (T >= 1)")
    for name, t in (("drive", drive), ("h0", h0)):
        if t.dtype != J.dtype or t.device != J.device:
            raise ValueError(
                f"{name} is {t.dtype} on {t.device} but J is {J.dtype} on {J.device}; "
                "they must match"
            )
    if not J.dtype.is_floating_point:
        raise ValueError(f"J must be a floating-point tensor, got {J.dtype}")


def _plain(J: Tensor, drive: Tensor, h0: Tensor, alpha: float, phi: str) -> tuple[Tensor, Tensor]:
    """Reference: one autograd node per op per step."""
    jt = J.transpose(1, 2)
    h, r = h0, phi_torch(h0, phi)
    rates, states = [], []
    for k in range(drive.shape[2]):
        h = (1.0 - alpha) * h + alpha * (torch.bmm(r, jt) + drive[:, :, k])
        r = phi_torch(h, phi)
        states.append(h.detach())
        rates.append(r)
    return torch.stack(rates, dim=2), torch.stack(states, dim=2)


class Workspace:
    """Buffers that successive fused calls of one shape reuse instead of reallocating.

    Large fresh CPU allocations are page-faulted in on every call (about as costly as a pass over
    the memory); a training loop that passes the same workspace every epoch skips that. The
    (rates, states) a call returns live in the workspace and are overwritten by the next call;
    using an overwritten call's outputs in autograd raises an in-place modification error.
    `readout(..., workspace=ws)` also writes the gradient w.r.t. the rates into a reused buffer.
    """

    def __init__(self) -> None:
        self._buffers: dict[str, Tensor] = {}
        self._lent: set[str] = set()

    def get(self, name: str, shape: tuple[int, ...], like: Tensor) -> Tensor:
        """A buffer `name` of `shape` with the dtype and device of `like` (reused if it fits)."""
        buf = self._buffers.get(name)
        if (
            buf is None
            or buf.shape != shape
            or buf.dtype != like.dtype
            or buf.device != like.device
        ):
            buf = torch.empty(shape, dtype=like.dtype, device=like.device)
            self._buffers[name] = buf
        return buf

    def lend(self, name: str, shape: tuple[int, ...], like: Tensor) -> Tensor:
        """Like `get`, but while `name` is lent out (not given back) a fresh tensor is returned."""
        if name in self._lent:
            return torch.empty(shape, dtype=like.dtype, device=like.device)
        self._lent.add(name)
        return self.get(name, shape, like)

    def give_back(self, name: str, tensor: Tensor | None = None) -> None:
        """End the loan of `name` (only if `tensor`, when given, is that buffer)."""
        buf = self._buffers.get(name)
        if tensor is None or (buf is not None and tensor.data_ptr() == buf.data_ptr()):
            self._lent.discard(name)


def _buffer(ws: Workspace | None, name: str, shape: tuple[int, ...], like: Tensor) -> Tensor:
    if ws is None:
        return torch.empty(shape, dtype=like.dtype, device=like.device)
    return ws.get(name, shape, like)


@contextmanager
def _step_threads(step: Tensor) -> Iterator[None]:
    """Run the per-step loop on one CPU thread when its blocks are small."""
    old = torch.get_num_threads()
    if step.device.type != "cpu" or old == 1 or step.numel() > SERIAL_STEP_NUMEL:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


class _FusedDynamics(torch.autograd.Function):
    """Forward without a graph (rates saved), backward by the adjoint recursion."""

    @staticmethod
    def forward(ctx, J, drive, h0, alpha, phi, ws, grad_wanted):
        s, bt, t_steps, n = drive.shape
        # h_all[k] (T, S, Bt, N) is contiguous, so each step's GEMM accumulates in place.
        # r_all (S, T+1, Bt, N) holds r_{k-1} at [:, k] (r_{-1} = phi(h0)): time-major inside a
        # seed, so (S, T*Bt, N) is a view for the single dJ GEMM of the backward.
        if ws is not None:  # a new call invalidates the previous call's graph: end its loans
            ws.give_back(_GRAD_RATES)
        h_all = _buffer(ws, "h", (t_steps, s, bt, n), J)
        r_all = _buffer(ws, "r", (s, t_steps + 1, bt, n), J)
        _ACT[phi](h0, out=r_all[:, 0])
        # J^T stored transposed once: the per-step GEMM then reads a plain row-major operand.
        jt, lerp, act = J.transpose(1, 2).contiguous(), torch.lerp, _ACT[phi]
        r_steps = r_all.unbind(1)  # views made once: per-step indexing costs as much as an op
        # With large step blocks, phi'(h_k) is written while r_k is still in cache (one pass over
        # memory less than computing it in the backward); lam then receives lambda in place.
        lam = None
        if phi != "linear" and grad_wanted and h0.numel() > SERIAL_STEP_NUMEL:
            lam = _buffer(ws, "lam", (s, t_steps, bt, n), J)
        d_steps = lam.unbind(1) if lam is not None else (None,) * t_steps
        one = torch.ones((), dtype=J.dtype, device=J.device)
        h_prev = h0
        with _step_threads(h0):
            for h_k, r_prev, r_k, d_k, dphi_k in zip(
                h_all.unbind(0), r_steps[:-1], r_steps[1:], drive.unbind(2), d_steps, strict=True
            ):
                lerp(h_prev, d_k, alpha, out=h_k)  # (1-a) h_{k-1} + a drive_k
                h_k.baddbmm_(r_prev, jt, alpha=alpha)  # + a r_{k-1} J^T
                act(h_k, out=r_k)
                if dphi_k is not None:
                    _dphi_from_rates(r_k, phi, dphi_k, one)
                h_prev = h_k
        ctx.lam_holds_dphi, ctx.lam = lam is not None, lam
        ctx.save_for_backward(J, h0, r_all)
        ctx.alpha, ctx.phi, ctx.ws = alpha, phi, ws
        ctx.set_materialize_grads(False)
        rates = r_all[:, 1:].transpose(1, 2)
        states = h_all.permute(1, 2, 0, 3)
        if phi == "linear":  # rates and states hold equal values but must not share memory
            states = states.clone()
        ctx.mark_non_differentiable(states)
        return rates, states

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_rates, _grad_states):
        J, h0, r_all = ctx.saved_tensors
        if grad_rates is None:  # the loss does not depend on the rates
            return None, None, None, None, None, None, None
        alpha, phi, ws = ctx.alpha, ctx.phi, ctx.ws
        need_j, need_drive, need_h0 = ctx.needs_input_grad[:3]
        s, t1, bt, n = r_all.shape
        t_steps, c, linear = t1 - 1, 1.0 - alpha, phi == "linear"
        # lam[:, k] first holds phi'(h_k) and is overwritten by lambda_k right after it is read
        # (a second backward through the same graph recomputes phi' from the saved rates).
        lam = ctx.lam if ctx.lam is not None else _buffer(ws, "lam", (s, t_steps, bt, n), J)
        if not linear and not ctx.lam_holds_dphi:
            _dphi_from_rates(r_all[:, 1:], phi, lam)
        ctx.lam_holds_dphi = False
        tmp = _buffer(ws, "tmp", (s, bt, n), J)
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
        grad_h0 = None
        if need_h0:
            grad_h0 = torch.bmm(lam[:, 0], J).mul_(alpha)
            if not linear:
                grad_h0.mul_(dphi_torch(h0, phi))
            grad_h0.add_(lam[:, 0], alpha=c)
        grad_j = None
        if need_j:  # one GEMM over all steps and trials: a sum_k lambda_k^T r_{k-1}
            lam_rows = lam.view(s, t_steps * bt, n)
            r_rows = r_all[:, :t_steps].reshape(s, t_steps * bt, n)
            grad_j = torch.bmm(lam_rows.transpose(1, 2), r_rows).mul_(alpha)
        if ws is not None:  # the gradient w.r.t. the rates (if it is the lent buffer) is consumed
            ws.give_back(_GRAD_RATES, grad_rates)
        grad_drive = None
        if need_drive:  # a lambda, as a (S, Bt, T, N) view; fresh memory if lam is reused
            grad_drive = (lam.mul_(alpha) if ws is None else lam * alpha).transpose(1, 2)
        return grad_j, grad_drive, grad_h0, None, None, None, None


class _Readout(torch.autograd.Function):
    """y = rows @ w per seed; backward forms both gradients with MKL-friendly operand order."""

    @staticmethod
    def forward(ctx, rows, w, ws):
        ctx.save_for_backward(rows, w)
        ctx.ws = ws
        return torch.bmm(rows, w)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_y):
        rows, w = ctx.saved_tensors
        grad_rows = None
        if ctx.needs_input_grad[0]:
            shape = tuple(rows.shape)
            if ctx.ws is None:
                grad_rows = torch.empty(shape, dtype=rows.dtype, device=rows.device)
            else:
                grad_rows = ctx.ws.lend(_GRAD_RATES, shape, rows)
            torch.bmm(grad_y, w.transpose(1, 2), out=grad_rows)
        grad_w = None
        if ctx.needs_input_grad[1]:  # (grad_y^T rows)^T: the skinny operand on the left is faster
            grad_w = torch.bmm(grad_y.transpose(1, 2), rows).transpose(1, 2)
        return grad_rows, grad_w, None


def readout(rates: Tensor, w: Tensor, *, workspace: Workspace | None = None) -> Tensor:
    """y = rates @ w per seed: (S, Bt, T, N), (S, N, O) -> (S, Bt, T, O), with no copy of rates.

    One bmm over whichever (trial, time) order is a view of `rates` (the fused kernel's outputs
    are time-major), so the gradient flows back in the layout the kernel reads step by step.
    With the `workspace` of the `run_dynamics` call that made `rates`, that gradient is written
    into a reused buffer (lent until the kernel's backward has consumed it; do not keep it).
    """
    if rates.dim() != 4 or w.dim() != 3 or w.shape[:2] != (rates.shape[0], rates.shape[3]):
        raise ValueError(
            f"readout needs rates (S, Bt, T, N) and w (S, N, O), got {tuple(rates.shape)} "
            f"and {tuple(w.shape)}"
        )
    if workspace is not None and not isinstance(workspace, Workspace):
        raise ValueError(f"workspace must be a rnnlab.dynamics.Workspace, got {type(workspace)}")
    s, n = rates.shape[0], rates.shape[3]
    for perm in ((0, 1, 2, 3), (0, 2, 1, 3)):
        x = rates.permute(perm)
        try:
            rows = x.view(s, -1, n)
        except RuntimeError:
            continue
        return _Readout.apply(rows, w, workspace).view(*x.shape[:3], w.shape[2]).permute(perm)
    rows = rates.reshape(s, -1, n)
    return _Readout.apply(rows, w, workspace).view(*rates.shape[:3], w.shape[2])


def run_dynamics(
    J: Tensor,
    drive: Tensor,
    h0: Tensor,
    alpha: float,
    phi: str,
    *,
    fused: bool = True,
    workspace: Workspace | None = None,
) -> tuple[Tensor, Tensor]:
    """Unroll T Euler steps; return (rates, states), both (S, Bt, T, N).

    J (S, N, N) (row = post-synaptic), drive (S, Bt, T, N) (B u + noise), h0 (S, Bt, N). Step k:
    h = (1-alpha) h + alpha (phi(h) J^T + drive[:, :, k]); states[:, :, k] = h, rates = phi(h).
    `states` carries no gradient. With `fused=True` both outputs are views of time-major
    buffers (`readout` uses them without a copy); pass the same `workspace` every epoch to reuse
    those buffers (each call then overwrites the previous call's outputs).
    """
    _validate(J, drive, h0, alpha, phi)
    alpha = float(alpha)
    if workspace is not None and not isinstance(workspace, Workspace):
        raise ValueError(f"workspace must be a rnnlab.dynamics.Workspace, got {type(workspace)}")
    if not fused:
        return _plain(J, drive, h0, alpha, phi)
    grad_wanted = torch.is_grad_enabled() and any(t.requires_grad for t in (J, drive, h0))
    return _FusedDynamics.apply(J, drive, h0, alpha, phi, workspace, grad_wanted)
