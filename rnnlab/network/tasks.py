"""Ornstein-Uhlenbeck tasks (track, denoise, switch), generated on the fly from per-seed streams.

OU signals use the exact AR(1) update x' = a x + sigma sqrt(1 - a^2) xi, a = exp(-dt/tau_ou),
started from the stationary law, so their statistics are exact at any dt. The denoise task knows
its optimum: the steady-state Kalman filter's error variance.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch

from rnnlab.config import Task
from rnnlab.network.rng import standard_normal


def ou_paths(
    n_trials: int,
    steps: int,
    n_signals: int,
    *,
    dt: float,
    tau_ou: float,
    sigma: float,
    mean: float = 0.0,
    correlation: float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Stationary OU signals (n_trials, steps, n_signals) in float64, exact AR(1) discretisation."""
    a = math.exp(-dt / tau_ou)
    xi = standard_normal((n_trials, steps, n_signals), generator)
    if n_signals == 2:
        mix = torch.tensor(
            [[1.0, 0.0], [correlation, math.sqrt(1.0 - correlation**2)]], dtype=torch.float64
        )
        xi = xi @ mix.T
    kicks = sigma * math.sqrt(1.0 - a * a) * xi
    kicks[:, 0] = sigma * xi[:, 0]  # stationary start
    x = ar1(kicks.numpy(), a)
    return torch.from_numpy(x) + mean


@numba.njit(cache=True, nogil=True)
def ar1(kicks, a):  # pragma: no cover (jit)
    """x_k = kick_k + a x_{k-1} along axis 1 of (trials, steps, signals), x_0 = kick_0. In numba:
    scipy.signal.lfilter (bitwise the same numbers) cost 0.75 s of import on every run."""
    x = np.empty_like(kicks)
    n, steps, m = kicks.shape
    for i in range(n):
        for j in range(m):
            prev = kicks[i, 0, j]
            x[i, 0, j] = prev
            for k in range(1, steps):
                prev = kicks[i, k, j] + a * prev
                x[i, k, j] = prev
    return x


def make_trials(
    task: Task, dt: float, n_trials: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs (n_trials, T, n_in) and targets (n_trials, T, n_out) of one seed, float64."""
    steps = round(task.duration / dt)
    x = ou_paths(
        n_trials,
        steps,
        task.n_stimuli,
        dt=dt,
        tau_ou=task.tau_ou,
        sigma=task.sigma_ou,
        mean=task.mean_ou,
        correlation=task.correlation,
        generator=generator,
    )
    n_out = task.n_outputs
    if task.kind == "track":
        return x, x[..., :n_out].clone()
    if task.kind == "denoise":
        noise = standard_normal(tuple(x.shape), generator)
        return x + task.obs_noise * noise, x[..., :n_out].clone()
    cue = context_cue(n_trials, steps, task.switch_rate * dt, generator)
    target = torch.where(cue > 0, x[..., 0], x[..., 1]).unsqueeze(-1)
    return torch.cat([x, cue.unsqueeze(-1)], dim=-1), target


def context_cue(
    n_trials: int, steps: int, flip_prob_rate: float, generator: torch.Generator
) -> torch.Tensor:
    """A +-1 cue that starts at random and flips as a Poisson process (rate*dt per step)."""
    p_flip = 1.0 - math.exp(-flip_prob_rate)
    start = torch.where(
        torch.rand(n_trials, 1, generator=generator, dtype=torch.float64) < 0.5, -1.0, 1.0
    )
    flips = torch.rand(n_trials, steps, generator=generator, dtype=torch.float64) < p_flip
    flips[:, 0] = False
    sign = 1.0 - 2.0 * (torch.cumsum(flips.to(torch.int64), dim=1) % 2).to(torch.float64)
    return start * sign


def batch_for_seeds(
    task: Task, dt: float, generators: list[torch.Generator], n_trials: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack each seed's own trials: inputs (S, n, T, n_in), targets (S, n, T, n_out)."""
    pairs = [make_trials(task, dt, n_trials, gen) for gen in generators]
    return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])


def shuffle_targets(targets: torch.Tensor, generators: list[torch.Generator]) -> torch.Tensor:
    """Targets (S, n, T, o) with each seed's trials permuted by its own generator: a control in
    which the inputs carry no information about the targets."""
    perms = [torch.randperm(targets.shape[1], generator=g) for g in generators]
    return torch.stack([t[p] for t, p in zip(targets, perms, strict=True)])


def kalman_optimal_mse(task: Task, dt: float) -> float:
    """Minimum achievable MSE of the task per readout; NaN where no closed form is known.

    For `denoise` this is the steady-state Kalman filter's error variance (filtering estimate using
    observations up to and including the current step) of OU + white observation noise, averaged
    over the targets; `track` can reach 0; `switch` has no closed form here.
    """
    if task.shuffle_targets:  # nothing to infer: the best output is the mean, MSE the variance
        return task.sigma_ou**2
    if task.kind == "track":
        return 0.0
    if task.kind == "switch":
        return float("nan")
    n = task.n_stimuli
    a = math.exp(-dt / tau_safe(task.tau_ou))
    corr = np.array([[1.0, task.correlation], [task.correlation, 1.0]])[:n, :n]
    q = task.sigma_ou**2 * (1 - a * a) * corr
    r = task.obs_noise**2 * np.eye(n)
    posterior = steady_state_kalman(a, q, r, task.sigma_ou**2 * corr)
    return float(np.mean(np.diag(posterior)[: task.n_outputs]))


def tau_safe(tau: float) -> float:
    """Guard against a zero correlation time."""
    return max(tau, 1e-12)


def steady_state_kalman(
    a: float, q: np.ndarray, r: np.ndarray, prior: np.ndarray, iters: int = 100_000
) -> np.ndarray:
    """Steady-state posterior covariance of x_k = a x_{k-1} + noise(q), y_k = x_k + noise(r)."""
    p = prior.copy()
    eye = np.eye(len(p))
    post = p
    for _ in range(iters):
        gain = p @ np.linalg.inv(p + r)
        post = (eye - gain) @ p
        new = a * a * post + q
        if np.allclose(new, p, rtol=1e-14, atol=1e-16):
            break
        p = new
    return post
