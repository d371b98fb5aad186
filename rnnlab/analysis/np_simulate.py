"""Kernels that put trained networks back in the loop: simulate them on fresh trials.

Plain arrays in, new arrays out, like the other np_* kernels; the simulation itself is the
training's own dynamics (`rnnlab.bptt.dynamics.run_dynamics`, fused, under `torch.no_grad`, then
`readout`), imported inside the functions so that importing `rnnlab.analysis` stays torch-free.

Trials. Each member's fresh trials come from its own seeded stream `seed_generator(seed, "fresh")`
(`rnnlab.network.rng.STREAMS`): trial k of seed s is the same whatever else is simulated, never a
training or evaluation trial, and every network built from one seed (its epochs, the truncations
of ΔJ, the shuffled J0) meets the same trials, so differences between them are paired. Like the
archive's fixed evaluation trials they start at h = 0 and carry no process noise; the MSE is taken
after the washout, as in training.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnlab.analysis import np_lowrank

__all__ = [
    "MEMORY_BUDGET",
    "mean_se",
    "network_losses",
    "optimal_mse",
    "resolve_device",
    "trial_mse",
]

# Bytes of state and rate buffers per run_dynamics call (the fused kernel keeps all T steps):
# networks x trials per call are chosen to fit, then as many trials as fit per network.
MEMORY_BUDGET = 64 * 2**20


def resolve_device(device: str = "auto") -> Any:
    """torch.device: "auto" is CUDA when there is one, else the CPU."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def fresh_trials(cfg: Any, seed: int, n_trials: int, stream: str = "fresh"):
    """Inputs (n, T, n_in) and targets (n, T, n_out), float64, of one seed's stream."""
    from rnnlab.network.rng import seed_generator
    from rnnlab.network.tasks import make_trials

    u, y = make_trials(cfg.task, cfg.model.dt, n_trials, seed_generator(int(seed), stream))
    return u.numpy(), y.numpy()


def _plan(n_net: int, n_trials: int, steps: int, n: int, itemsize: int, budget: int):
    """(networks, trials) per call so that the two (T+1) x N buffers per trial fit `budget`."""
    per_trial = 2 * (steps + 1) * n * itemsize
    cap = max(1, budget // per_trial)
    trials = min(n_trials, max(1, cap // max(1, n_net)), 256)
    trials = max(trials, min(n_trials, 32, cap))  # GEMMs of at least 32 rows when it fits
    return max(1, min(n_net, cap // trials)), trials


def trial_mse(
    J: np.ndarray,
    B: np.ndarray,
    w: np.ndarray,
    seeds: np.ndarray,
    cfg: Any,
    n_trials: int,
    *,
    device: str = "auto",
    dtype: str = "float32",
    stream: str = "fresh",
    budget: int = MEMORY_BUDGET,
    kernel: str = "auto",
) -> np.ndarray:
    """MSE of each network on each of its seed's fresh trials, (L, n_trials) float64.

    J (L, N, N), B (L, N, n_in), w (L, N, n_out) and seeds (L,): L networks of one config `cfg`
    (phi, alpha, task). A network with a non-finite entry gets NaN. `kernel`: "auto" runs the
    forward-only compiled loop (rnnlab.bptt.forward) on the CPU where it is available, else, and
    with "fused", the fused kernel `run_dynamics` + `readout` in blocks of `budget` bytes.
    """
    import torch

    from rnnlab.bptt.dynamics import Workspace, readout, run_dynamics
    from rnnlab.config import washout_steps

    J, B, w = (np.asarray(x) for x in (J, B, w))
    seeds = np.asarray(seeds).astype(np.int64).reshape(-1)
    n_net = J.shape[0]
    out = np.full((n_net, n_trials), np.nan)
    ok = np.flatnonzero(
        np.isfinite(J).all(axis=(1, 2)) & np.isfinite(B).all(axis=(1, 2))
        & np.isfinite(w).all(axis=(1, 2))
    )  # fmt: skip
    if ok.size == 0 or n_trials < 1:
        return out
    dev = resolve_device(device)
    tdtype = {"float32": torch.float32, "float64": torch.float64}[dtype]
    trials = {int(s): fresh_trials(cfg, int(s), n_trials, stream) for s in np.unique(seeds[ok])}
    steps = next(iter(trials.values()))[0].shape[1]
    wash = washout_steps(cfg)
    n = J.shape[-1]
    alpha, phi = cfg.model.alpha, cfg.model.phi
    if kernel not in ("auto", "fused"):
        raise ValueError(f"kernel must be 'auto' or 'fused', got {kernel!r}")
    if kernel == "auto" and dev.type == "cpu":
        from rnnlab.bptt.forward import trial_errors

        sets = np.unique(seeds[ok])
        errors = trial_errors(
            J[ok], B[ok], w[ok],
            np.stack([trials[int(s)][0] for s in sets]),
            np.stack([trials[int(s)][1] for s in sets]),
            np.searchsorted(sets, seeds[ok]), alpha, phi, wash,
            dtype={"float32": np.float32, "float64": np.float64}[dtype],
        )  # fmt: skip
        if errors is not None:
            out[ok] = errors
            return out
    per_call, per_trials = _plan(ok.size, n_trials, steps, n, tdtype.itemsize, budget)
    ws = Workspace()

    def tensor(x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(x), dtype=tdtype, device=dev)

    with torch.no_grad():
        for start in range(0, ok.size, per_call):
            nets = ok[start : start + per_call]
            jt, bt, wt = tensor(J[nets]), tensor(B[nets]), tensor(w[nets])
            for t0 in range(0, n_trials, per_trials):
                t1 = min(n_trials, t0 + per_trials)
                u = tensor(np.stack([trials[int(seeds[i])][0][t0:t1] for i in nets]))
                target = np.stack([trials[int(seeds[i])][1][t0:t1] for i in nets])
                h0 = torch.zeros(len(nets), t1 - t0, n, dtype=tdtype, device=dev)
                rates, _ = run_dynamics(jt, None, h0, alpha, phi, inputs=u, B=bt, workspace=ws)
                y = readout(rates, wt)[:, :, wash:].to(torch.float64).cpu().numpy()
                err = (y - target[:, :, wash:]) ** 2
                out[nets, t0:t1] = err.mean(axis=(2, 3))
    return out


def mean_se(x: np.ndarray, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """Mean and its standard error std(ddof=1)/sqrt(n) along `axis` (NaN for n < 2)."""
    n = x.shape[axis]
    mean = x.mean(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        se = x.std(axis=axis, ddof=1) / np.sqrt(n) if n > 1 else np.full(mean.shape, np.nan)
    return mean, se


def optimal_mse(cfg: Any) -> float:
    """The task's optimum MSE (rnnlab.network.tasks.kalman_optimal_mse) for a member's config."""
    from rnnlab.network.tasks import kalman_optimal_mse

    return float(kalman_optimal_mse(cfg.task, cfg.model.dt))


# -- the analyses ----------------------------------------------------------------------------
def _members(lead: tuple[int, ...], *arrays: np.ndarray):
    """(index, per-member arrays) over the leading dims, each array broadcast to `lead`."""
    for idx in np.ndindex(*lead):
        yield idx, [np.broadcast_to(a, lead + a.shape[a.ndim - k :])[idx] for a, k in arrays]


def truncated(j0: np.ndarray, dj: np.ndarray, ranks: np.ndarray, split: bool) -> np.ndarray:
    """Networks J0 + dJ_R for each R of `ranks` (R x N x N), dJ_R the best rank-R approximation
    (truncated SVD) of dJ; with `split`, (1 - kappa) J0 + res_R instead, res = dJ + kappa J0 and
    kappa = -<dJ, J0>/||J0||_F^2 (`np_lowrank.kappa`, the shrinkage of rnnlab.analysis.shrinkage;
    0 where J0 = 0). R = N is the trained J itself in both, J0 + dJ exactly (not its SVD
    reconstruction), and R = 0 the base exactly, so they are the very networks of the evaluation
    and the shuffle control."""
    j0 = np.asarray(j0, dtype=np.float64)
    dj = np.asarray(dj, dtype=np.float64)
    trained = j0 + dj
    base, res = j0, dj
    if split:
        kappa = float(np_lowrank.kappa(dj, j0, 0.0))
        base, res = (1.0 - kappa) * j0, dj + kappa * j0
    inner = [int(r) for r in ranks if 0 < int(r) < min(j0.shape)]
    u, s, vt = np.linalg.svd(res) if inner else (None, None, None)
    out = np.empty((len(ranks),) + j0.shape)
    for i, r in enumerate(ranks):
        if r >= min(j0.shape):
            out[i] = trained
        elif r <= 0:
            out[i] = base
        else:
            out[i] = base + (u[:, :r] * s[:r]) @ vt[:r]
    return out


def _truncation_stats(per_trial: np.ndarray) -> tuple[np.ndarray, ...]:
    """mean, its SE and the SE of the paired difference to the last row (R = N), over trials,
    of per-trial losses (n_ranks, n_trials)."""
    mean, se = mean_se(per_trial)
    _, diff_se = mean_se(per_trial - per_trial[-1:])
    return mean, se, diff_se


def functional_rank(loss: np.ndarray, ranks: np.ndarray, frac: float = 0.05) -> np.ndarray:
    """Smallest R of `ranks` whose excess loss over the trained network, loss(R) - loss(N), is at
    most `frac` of that of R = 0 (Schuessler et al. 2020). loss (..., n_ranks) over `ranks`
    (ascending, 0 first, N last). 0 when R = 0 is already as good; NaN where a loss is NaN."""
    loss = np.asarray(loss, dtype=float)
    ranks = np.asarray(ranks)
    excess = loss - loss[..., -1:]
    ok = excess <= frac * np.maximum(excess[..., :1], 0.0)
    first = np.argmax(ok, axis=-1)
    out = ranks[first].astype(float)
    return np.where(np.isfinite(loss).all(axis=-1), out, np.nan)


def shuffled_nets(j0: np.ndarray, dj: np.ndarray, seed: int, n_shuffles: int) -> list[np.ndarray]:
    """P(J0) + dJ for `n_shuffles` permutations P of J0's N^2 entries from the seed's "shuffle"
    stream (`torch.randperm`), float64."""
    import torch

    from rnnlab.network.rng import seed_generator

    gen = seed_generator(int(seed), "shuffle")
    flat = np.asarray(j0, dtype=np.float64).reshape(-1)
    return [
        flat[torch.randperm(flat.size, generator=gen).numpy()].reshape(np.shape(j0)) + dj
        for _ in range(n_shuffles)
    ]


def _shuffle_stats(trained: np.ndarray, shuffled: np.ndarray, alone: np.ndarray) -> tuple:
    """loss, loss_se (3,) of (trained, shuffled J0, J0 only) from per-trial losses (the shuffled
    ones (n_shuffles, n_trials) averaged per trial) and the fraction of the gain lost."""
    per_trial = np.stack([trained, shuffled.mean(axis=0), alone])
    loss, se = mean_se(per_trial)
    gain = loss[2] - loss[0]
    lost = (loss[1] - loss[0]) / gain if gain > 0 else np.nan
    return loss, se, lost


def network_losses(
    j0, dj, b, w, seed, cfg_index, *, configs, n_trials, ranks=(), split: bool = True,
    n_shuffles: int = 1, truncation: bool = True, shuffle: bool = True, **sim,
):  # fmt: skip
    """Fresh-trial losses of a member's networks, each distinct network simulated once on the
    member's same trials, every member of a config in one `trial_mse` call: the trained J =
    J0 + dJ (the evaluation) and, with `truncation`, J0 + dJ_R and, with `split`, (1 - kappa) J0
    + res_R for the R < N of `ranks` (which must hold 0 and N; see `truncated`) and, with
    `shuffle`, J0 alone (R = 0 of the truncation when there is one) and P(J0) + dJ for
    `n_shuffles` permutations P of J0's entries (`shuffled_nets`). j0 (..., N, N), dj (..., N,
    N), b (..., N, n_in), w (..., N, n_out), seed, cfg_index (...) (broadcast); a member with a
    non-finite J0 or dJ gets NaN.

    Returns, in this order: mse, mse_se, mse_optimal (...) of the trained J; with `truncation`,
    loss, loss_se, loss_diff_se (..., n_ranks) and, with split, loss_split, loss_split_se,
    loss_split_diff_se (*_diff_se: the standard error of the paired difference loss(R) -
    loss(N) over the trials); with `shuffle`, loss, loss_se (..., 3) of (trained, shuffled J0
    with per-trial losses averaged over the permutations, J0 only) and lost (...) =
    (L_shuffled - L_trained) / (L_J0 - L_trained), the fraction of what learning gained that is
    lost when dJ meets a J0 of the same entries but not its own. A network's losses do not
    depend on what else is simulated with it.
    """
    ranks = np.asarray(ranks, dtype=np.int64)
    lead = np.broadcast_shapes(np.shape(j0)[:-2], np.shape(dj)[:-2], np.shape(b)[:-2],
                               np.shape(w)[:-2], np.shape(seed), np.shape(cfg_index))  # fmt: skip
    n_rank, parts = len(ranks), (2 if split else 1) if truncation else 0
    mse, mse_se = np.full(lead, np.nan), np.full(lead, np.nan)
    trunc = [np.full(lead + (n_rank,), np.nan) for _ in range(3 * parts)]
    sh_loss, sh_se = np.full(lead + (3,), np.nan), np.full(lead + (3,), np.nan)
    sh_lost = np.full(lead, np.nan)
    arrays = [(np.asarray(x), k) for x, k in ((j0, 2), (dj, 2), (b, 2), (w, 2))]
    arrays += [(np.asarray(seed), 0), (np.asarray(cfg_index), 0)]
    members, stacks = [], []  # (index, B, w, seed, config) and each member's networks
    for idx, (mj0, mdj, mb, mw, ms, mc) in _members(lead, *arrays):
        mj0 = np.asarray(mj0, dtype=np.float64)
        mdj = np.asarray(mdj, dtype=np.float64)
        if not (np.isfinite(mj0).all() and np.isfinite(mdj).all()):
            continue
        nets = [(mj0 + mdj)[None]]  # trained: R = N of both truncations
        nets += [truncated(mj0, mdj, ranks[:-1], part == 1) for part in range(parts)]
        if shuffle:
            if not parts:
                nets.append(mj0[None])  # J0 alone, else R = 0 of the plain truncation
            nets.append(np.stack(shuffled_nets(mj0, mdj, int(ms), n_shuffles)))
        members.append((idx, mb, mw, int(ms), int(mc)))
        stacks.append(np.concatenate(nets))
    for k in sorted({m[4] for m in members}):  # one simulation per config
        mine = [i for i, m in enumerate(members) if m[4] == k]
        count = [len(stacks[i]) for i in mine]
        J = np.concatenate([stacks[i] for i in mine])
        B = np.concatenate([np.broadcast_to(members[i][1], (c,) + members[i][1].shape)
                            for i, c in zip(mine, count, strict=True)])  # fmt: skip
        W = np.concatenate([np.broadcast_to(members[i][2], (c,) + members[i][2].shape)
                            for i, c in zip(mine, count, strict=True)])  # fmt: skip
        seeds = np.repeat([members[i][3] for i in mine], count)
        losses = np.split(trial_mse(J, B, W, seeds, configs[k], n_trials, **sim),
                          np.cumsum(count)[:-1])  # fmt: skip
        for i, per_trial in zip(mine, losses, strict=True):
            idx = members[i][0]
            trained, rest = per_trial[0], per_trial[1:]
            mse[idx], mse_se[idx] = mean_se(trained)
            for part in range(parts):
                rows = np.concatenate([rest[part * (n_rank - 1) : (part + 1) * (n_rank - 1)],
                                       trained[None]])  # fmt: skip
                for j, values in enumerate(_truncation_stats(rows)):
                    trunc[3 * part + j][idx] = values
            if shuffle:
                alone = rest[0]  # J0 itself (R = 0 of the plain truncation when there is one)
                shuffled = rest[parts * (n_rank - 1) + (0 if parts else 1) :]
                sh_loss[idx], sh_se[idx], sh_lost[idx] = _shuffle_stats(trained, shuffled, alone)
    index = np.broadcast_to(np.asarray(cfg_index), lead).astype(np.int64)
    optimum = np.array([optimal_mse(c) for c in configs])[index]
    return (mse, mse_se, optimum, *trunc, *((sh_loss, sh_se, sh_lost) if shuffle else ()))


def sample_states(
    J: np.ndarray,
    B: np.ndarray,
    seed: int,
    cfg: Any,
    n_trials: int,
    n_states: int,
    *,
    stream: str = "fixed_points",
    device: str = "auto",
) -> np.ndarray:
    """`n_states` states h (n_states, N) of one network J (N, N), B (N, n_in), drawn uniformly
    from its trajectories (after the washout) on `n_trials` trials of the seed's `stream`; the
    draw uses NumPy's generator seeded with (seed, that stream's number)."""
    import torch

    from rnnlab.bptt.dynamics import run_dynamics
    from rnnlab.config import washout_steps
    from rnnlab.network.rng import STREAMS

    dev = resolve_device(device)
    u, _ = fresh_trials(cfg, seed, n_trials, stream)
    with torch.no_grad():
        jt = torch.as_tensor(np.array(J, dtype=np.float64)[None], device=dev)
        bt = torch.as_tensor(np.array(B, dtype=np.float64)[None], device=dev)
        ut = torch.as_tensor(u[None], device=dev)
        h0 = torch.zeros(1, n_trials, jt.shape[-1], dtype=torch.float64, device=dev)
        _, states = run_dynamics(jt, None, h0, cfg.model.alpha, cfg.model.phi, inputs=ut, B=bt)
        states = states[0, :, washout_steps(cfg) :].cpu().numpy()
    flat = states.reshape(-1, states.shape[-1])
    rng = np.random.default_rng([int(seed), STREAMS[stream]])
    return flat[rng.choice(flat.shape[0], size=min(n_states, flat.shape[0]), replace=False)]
