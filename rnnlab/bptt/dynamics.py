"""Euler-discretised rate dynamics h <- (1-a) h + a (J phi(h) + drive), with a fused BPTT kernel.

`run_dynamics` unrolls T steps for S independent seeds at once (seeds are a batch dimension of
every matrix product; nothing mixes seeds). The drive of step k is `drive[:, :, k]` plus, when
given, `inputs[:, :, k] @ B^T` (formed inside the step loop, never as an (S, Bt, T, N) tensor).
`fused=False` is the plain per-step autograd loop (the reference). `fused=True` runs the forward
without building a graph and computes the gradient with the adjoint recursion, backwards in time,

    lambda_k = phi'(h_k) * (g_k + a lambda_{k+1} J) + (1-a) lambda_{k+1},    lambda_T = 0,

(g_k = dL/dr_k from the caller), then dJ = a sum_k lambda_k^T r_{k-1} as ONE batched GEMM over
all steps and trials, d(drive_k) = a lambda_k, dB = a sum_k lambda_k^T u_k (one GEMM) and
d(h0) = phi'(h0) (a lambda_0 J) + (1-a) lambda_0. The two time loops are in
`rnnlab.bptt.loops`: compiled with numba on the CPU (default), torch ops otherwise.
"""

from __future__ import annotations

import torch
from torch import Tensor

from rnnlab.bptt import loops as step_loops
from rnnlab.bptt.loops import LOOPS
from rnnlab.bptt.workspace import GRAD_RATES, Workspace, buffer
from rnnlab.config import PHIS
from rnnlab.network.phi import check_phi, dphi_torch, phi_torch

__all__ = ["LOOPS", "PHIS", "Workspace", "dphi_torch", "phi_torch", "readout", "run_dynamics"]
# (phi_torch, dphi_torch: rnnlab.network.phi, re-exported for the reference loop's users)


def _shape_of(name: str, t: Tensor | None, dims: int) -> tuple[int, ...] | None:
    if t is not None and t.dim() != dims:
        raise ValueError(f"{name} must have {dims} dimensions, got shape {tuple(t.shape)}")
    return None if t is None else tuple(t.shape)


def _validate(J, drive, h0, alpha, phi, inputs, B) -> None:
    """Check shapes, dtypes and devices (one line naming the argument)."""
    check_phi(phi)
    if not (0.0 < float(alpha) <= 1.0):
        raise ValueError(f"alpha = dt/tau must lie in (0, 1], got {alpha}")
    if J.dim() != 3 or J.shape[1] != J.shape[2]:
        raise ValueError(f"J must have shape (S, N, N), got {tuple(J.shape)}")
    if not J.dtype.is_floating_point:
        raise ValueError(f"J must be a floating-point tensor, got {J.dtype}")
    s, n = J.shape[0], J.shape[1]
    d_shape, u_shape = _shape_of("drive", drive, 4), _shape_of("inputs", inputs, 4)
    if (inputs is None) != (B is None):
        raise ValueError("inputs and B go together: pass both or neither")
    if drive is None and inputs is None:
        raise ValueError("give a drive, inputs and B, or both")
    if d_shape is not None and (d_shape[0] != s or d_shape[3] != n):
        raise ValueError(f"drive must have shape (S={s}, Bt, T, N={n}), got {d_shape}")
    bt, t = (d_shape or u_shape)[1:3]
    if u_shape is not None:
        if u_shape[:3] != (s, bt, t):
            raise ValueError(
                f"inputs must have shape (S, Bt, T, n_in) = ({s}, {bt}, {t}, n_in), got {u_shape}"
            )
        if tuple(B.shape) != (s, n, u_shape[3]):
            raise ValueError(
                f"B must have shape (S, N, n_in) = {(s, n, u_shape[3])}, got {tuple(B.shape)}"
            )
    if tuple(h0.shape) != (s, bt, n):
        raise ValueError(f"h0 must have shape (S, Bt, N) = {(s, bt, n)}, got {tuple(h0.shape)}")
    if t < 1:
        raise ValueError("drive must have at least one time step (T >= 1)")
    for name, x in (("drive", drive), ("h0", h0), ("inputs", inputs), ("B", B)):
        if x is not None and (x.dtype != J.dtype or x.device != J.device):
            raise ValueError(
                f"{name} is {x.dtype} on {x.device} but J is {J.dtype} on {J.device}; "
                "they must match"
            )


def _full_drive(drive: Tensor | None, u_tm: Tensor | None, B: Tensor | None) -> Tensor:
    """drive + u B^T as an (S, Bt, T, N) view of a time-major tensor (differentiable), for the
    inputs given time-major, u_tm (S, T, Bt, n_in)."""
    if u_tm is None:
        return drive
    s, t, bt, n_in = u_tm.shape
    full = torch.bmm(u_tm.reshape(s, t * bt, n_in), B.transpose(1, 2)).view(s, t, bt, -1)
    if drive is not None:
        full = full + drive.transpose(1, 2)
    return full.transpose(1, 2)


def _plain(J, drive, h0, alpha, phi, inputs, B) -> tuple[Tensor, Tensor]:
    """Reference: one autograd node per op per step."""
    drive = _full_drive(drive, None if inputs is None else inputs.transpose(1, 2), B)
    jt = J.transpose(1, 2)
    h, r = h0, phi_torch(h0, phi)
    rates, states = [], []
    for k in range(drive.shape[2]):
        h = (1.0 - alpha) * h + alpha * (torch.bmm(r, jt) + drive[:, :, k])
        r = phi_torch(h, phi)
        states.append(h.detach())
        rates.append(r)
    return torch.stack(rates, dim=2), torch.stack(states, dim=2)


class _FusedDynamics(torch.autograd.Function):
    """Forward without a graph (rates saved), backward by the adjoint recursion."""

    @staticmethod
    def forward(ctx, J, drive, h0, inputs, B, alpha, phi, ws, grad_wanted, loop):
        s, bt, n = h0.shape
        t_steps = (drive if drive is not None else inputs).shape[2]
        steps = step_loops.compiled_loops(loop, J)
        # h_all[k] (T, S, Bt, N) is contiguous, so each step's GEMM accumulates in place.
        # r_all (S, T+1, Bt, N) holds r_{k-1} at [:, k] (r_{-1} = phi(h0)): time-major inside a
        # seed, so (S, T*Bt, N) is a view for the single dJ GEMM of the backward.
        if ws is not None:  # a new call invalidates the previous call's graph: end its loans
            ws.give_back(GRAD_RATES)
        h_all = buffer(ws, "h", (t_steps, s, bt, n), J)
        r_all = buffer(ws, "r", (s, t_steps + 1, bt, n), J)
        # J^T stored transposed once: the per-step GEMM then reads a plain row-major operand.
        jt = J.transpose(1, 2).contiguous()
        u_tm = None if inputs is None else inputs.transpose(1, 2).contiguous()  # (S, T, Bt, n_in)
        lam = None
        if steps is not None:
            drive_tm = None if drive is None else drive.transpose(1, 2)
            b_t = None if B is None else B.transpose(1, 2)
            step_loops.compiled_forward(
                steps, jt, drive_tm, u_tm, b_t, h0, alpha, phi, h_all, r_all
            )
        else:
            full = _full_drive(drive, u_tm, B)
            lam = step_loops.torch_forward(jt, full, h0, alpha, phi, ws, grad_wanted, h_all, r_all)
        ctx.lam_holds_dphi, ctx.lam = lam is not None, lam
        ctx.save_for_backward(J, h0, r_all, u_tm, B)
        ctx.alpha, ctx.phi, ctx.ws, ctx.steps = alpha, phi, ws, steps
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
        J, h0, r_all, u_tm, B = ctx.saved_tensors
        none = (None,) * 10
        if grad_rates is None:  # the loss does not depend on the rates
            return none
        alpha, phi, ws, steps = ctx.alpha, ctx.phi, ctx.ws, ctx.steps
        need_j, need_drive, need_h0, need_inputs, need_b = ctx.needs_input_grad[:5]
        s, t1, bt, n = r_all.shape
        t_steps, c, linear = t1 - 1, 1.0 - alpha, phi == "linear"
        # The torch loop reads phi'(h_k) from lam[:, k] and overwrites it with lambda_k (a
        # second backward through the same graph recomputes phi' from the saved rates); the
        # compiled loop forms phi' from the rates itself.
        lam = ctx.lam if ctx.lam is not None else buffer(ws, "lam", (s, t_steps, bt, n), J)
        if steps is not None:
            step_loops.compiled_adjoint(
                steps, J, grad_rates.transpose(1, 2), r_all, alpha, phi, lam
            )
        else:
            if not linear and not ctx.lam_holds_dphi:
                step_loops.dphi_from_rates(r_all[:, 1:], phi, lam)
            step_loops.torch_adjoint(J, grad_rates, lam, alpha, phi, ws)
        ctx.lam_holds_dphi = False
        if ws is not None:  # the gradient w.r.t. the rates (if it is the lent buffer) is consumed
            ws.give_back(GRAD_RATES, grad_rates)
        lam_rows = lam.view(s, t_steps * bt, n)
        grad_h0 = grad_j = grad_inputs = grad_b = grad_drive = None
        if need_h0:
            grad_h0 = torch.bmm(lam[:, 0], J).mul_(alpha)
            if not linear:
                grad_h0.mul_(dphi_torch(h0, phi))
            grad_h0.add_(lam[:, 0], alpha=c)
        if need_j:  # one GEMM over all steps and trials: a sum_k lambda_k^T r_{k-1}
            r_rows = r_all[:, :t_steps].reshape(s, t_steps * bt, n)
            grad_j = torch.bmm(lam_rows.transpose(1, 2), r_rows).mul_(alpha)
        if need_b:  # a sum_k lambda_k^T u_k, one GEMM
            u_rows = u_tm.view(s, t_steps * bt, -1)
            grad_b = torch.bmm(lam_rows.transpose(1, 2), u_rows).mul_(alpha)
        if need_inputs:  # a lambda_k B, (S, Bt, T, n_in)
            grad_inputs = torch.bmm(lam_rows, B).mul_(alpha).view(s, t_steps, bt, -1)
            grad_inputs = grad_inputs.transpose(1, 2)
        if need_drive:  # a lambda, as a (S, Bt, T, N) view; fresh memory if lam is reused
            grad_drive = (lam.mul_(alpha) if ws is None else lam * alpha).transpose(1, 2)
        return grad_j, grad_drive, grad_h0, grad_inputs, grad_b, *none[:5]


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
                grad_rows = ctx.ws.lend(GRAD_RATES, shape, rows)
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
        raise ValueError(f"workspace must be a rnnlab.bptt.Workspace, got {type(workspace)}")
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
    drive: Tensor | None,
    h0: Tensor,
    alpha: float,
    phi: str,
    *,
    inputs: Tensor | None = None,
    B: Tensor | None = None,
    fused: bool = True,
    workspace: Workspace | None = None,
    loop: str = "auto",
) -> tuple[Tensor, Tensor]:
    """Unroll T Euler steps; return (rates, states), both (S, Bt, T, N).

    J (S, N, N) (row = post-synaptic), h0 (S, Bt, N); the drive of step k is
    drive[:, :, k] (S, Bt, T, N) plus inputs[:, :, k] @ B^T for inputs (S, Bt, T, n_in) and
    B (S, N, n_in) (either part may be omitted: drive=None, or no inputs/B). Step k:
    h = (1-alpha) h + alpha (phi(h) J^T + drive_k); states[:, :, k] = h, rates = phi(h).
    `states` carries no gradient. With `fused=True` both outputs are views of time-major
    buffers (`readout` uses them without a copy); pass the same `workspace` every epoch to reuse
    those buffers (each call then overwrites the previous call's outputs). `loop` picks how the
    fused kernel runs its two time loops: "numba" compiled (CPU, float32/64), "torch" as torch
    ops, "auto" (default) compiled where possible.
    """
    _validate(J, drive, h0, alpha, phi, inputs, B)
    alpha = float(alpha)
    if workspace is not None and not isinstance(workspace, Workspace):
        raise ValueError(f"workspace must be a rnnlab.bptt.Workspace, got {type(workspace)}")
    if loop not in LOOPS:
        raise ValueError(f"loop must be one of {LOOPS}, got {loop!r}")
    if not fused:
        return _plain(J, drive, h0, alpha, phi, inputs, B)
    leaves = (J, drive, h0, inputs, B)
    grad_wanted = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in leaves)
    return _FusedDynamics.apply(*leaves, alpha, phi, workspace, grad_wanted, loop)
