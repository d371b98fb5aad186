"""The rate nonlinearities phi (tanh, relu, linear) and their derivatives, on torch tensors."""

from __future__ import annotations

import torch
from torch import Tensor

from rnnlab.config import PHIS

__all__ = ["PHIS", "check_phi", "dphi_torch", "phi_torch"]


def check_phi(phi: str) -> None:
    """ValueError naming the choices unless phi is one of PHIS."""
    if phi not in PHIS:
        raise ValueError(f"unknown nonlinearity phi={phi!r}; expected one of {PHIS}")


def phi_torch(x: Tensor, phi: str) -> Tensor:
    """The rate nonlinearity phi(x) for phi in PHIS."""
    check_phi(phi)
    if phi == "tanh":
        return torch.tanh(x)
    if phi == "relu":
        return torch.relu(x)
    return x


def dphi_torch(x: Tensor, phi: str) -> Tensor:
    """The derivative phi'(x); relu'(0) := 0 (torch's convention)."""
    check_phi(phi)
    if phi == "tanh":
        return 1.0 - torch.tanh(x) ** 2
    if phi == "relu":
        return (x > 0).to(x.dtype)
    return torch.ones_like(x)
