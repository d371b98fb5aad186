"""Initial parameters of the rate RNN, one independent draw per seed, stacked as a batch.

J0 = g W - (b/N) 11^T (+ m u v^T), W_ij ~ N(0, 1/N); B_ij ~ N(0, input_scale^2); w zero or
w_i ~ N(0, 1/N). Each seed draws from its own streams, so seed s gets the same network whatever
other seeds share its batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from rnnlab.config import Model, Task
from rnnlab.network.rng import seed_generator


@dataclass
class InitialParams:
    """Stacked initial parameters; shapes (S, N, N), (S, N, n_in), (S, N, n_out), (S, N)."""

    J0: torch.Tensor
    B: torch.Tensor
    w: torch.Tensor
    imposed_u: torch.Tensor | None
    imposed_v: torch.Tensor | None


def random_unit_pair(
    n: int, overlap: float, orthogonal_to_ones: bool, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit vectors u, v with v.u = overlap (optionally both orthogonal to 1), float64."""
    basis = torch.randn(n, 2, generator=generator, dtype=torch.float64)
    if orthogonal_to_ones:
        ones = torch.full((n, 1), 1.0 / math.sqrt(n), dtype=torch.float64)
        basis = torch.cat([ones, basis], dim=1)
    q, _ = torch.linalg.qr(basis)
    u, perp = q[:, -2], q[:, -1]
    v = overlap * u + math.sqrt(max(0.0, 1.0 - overlap**2)) * perp
    return u, v


def init_seed(model: Model, n_in: int, n_out: int, seed: int) -> dict[str, torch.Tensor | None]:
    """Initial J0, B, w (and imposed u, v) of one seed, float64 on the CPU."""
    n = model.N
    weights = torch.randn(n, n, generator=seed_generator(seed, "W"), dtype=torch.float64)
    j0 = model.g * weights / math.sqrt(n) - model.b / n
    u = v = None
    lowrank = model.lowrank
    if lowrank.m != 0.0:
        u, v = random_unit_pair(
            n, lowrank.overlap, lowrank.orthogonal_to_ones, seed_generator(seed, "lowrank")
        )
        j0 = j0 + lowrank.m * torch.outer(u, v)
    b_in = model.input_scale * torch.randn(
        n, n_in, generator=seed_generator(seed, "B"), dtype=torch.float64
    )
    if model.w_init == "zero":
        w = torch.zeros(n, n_out, dtype=torch.float64)
    else:
        w = torch.randn(n, n_out, generator=seed_generator(seed, "w"), dtype=torch.float64)
        w = w / math.sqrt(n)
    return {"J0": j0, "B": b_in, "w": w, "u": u, "v": v}


def init_params(
    model: Model,
    task: Task,
    seeds: tuple[int, ...],
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> InitialParams:
    """Initial parameters of every seed, stacked along a leading seed dim (sizes of the inputs
    and readouts from the task)."""
    n_in, n_out = len(task.inputs), len(task.outputs)
    parts = [init_seed(model, n_in, n_out, seed) for seed in seeds]

    def stack(name: str) -> torch.Tensor:
        return torch.stack([p[name] for p in parts]).to(device=device, dtype=dtype)

    imposed = model.lowrank.m != 0.0
    return InitialParams(
        J0=stack("J0"),
        B=stack("B"),
        w=stack("w"),
        imposed_u=stack("u") if imposed else None,
        imposed_v=stack("v") if imposed else None,
    )
