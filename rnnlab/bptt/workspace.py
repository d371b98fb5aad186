"""Reusable buffers for the fused BPTT kernel (`rnnlab.bptt.dynamics.run_dynamics(workspace=)`)."""

from __future__ import annotations

import torch
from torch import Tensor

GRAD_RATES = "grad_rates"  # the buffer that readout's backward lends to the kernel


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


def buffer(ws: Workspace | None, name: str, shape: tuple[int, ...], like: Tensor) -> Tensor:
    """`ws.get(...)`, or a fresh tensor without a workspace."""
    if ws is None:
        return torch.empty(shape, dtype=like.dtype, device=like.device)
    return ws.get(name, shape, like)
