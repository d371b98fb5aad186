"""NumPy kernel: fixed points of the trained rate dynamics and the Jacobian spectrum at each.

tau dh/dt = F(h) = -h + J phi(h) + c, with c = B u for a constant input u. As FixedPointFinder
(Golub & Sussillo 2018) does, q(h) = 1/2 |F(h)|^2 is minimised from many starting states taken
on the network's own trajectories, and the minima with q = 0 are the fixed points (stable or
not: every zero of F is a global minimum of q). The minimiser here is Newton's method on F with
a backtracking line search on q (batched over starts; a singular Jacobian falls back to least
squares); starts that stall at q > 0 are slow points and are dropped. Fixed points closer than
`dedupe` (rms distance per neuron) are one. The Jacobian at a fixed point is
-I + J diag(phi'(h*)) (rnnlab.spectra.conventions.jacobian), in units of 1/tau; a fixed point is
stable when all its eigenvalues have a negative real part.
"""

from __future__ import annotations

import numpy as np

from rnnlab.spectra import conventions as spectra

__all__ = ["Q_TOL", "DEDUPE", "newton_fixed_points", "fixed_points_of"]

Q_TOL = 1e-16  # per neuron: a fixed point has q(h)/N <= Q_TOL (rms |F| below 1.5e-8)
DEDUPE = 1e-4  # rms distance per neuron below which two fixed points are the same
MAX_ITER = 100


def _phi(h: np.ndarray, phi: str) -> np.ndarray:
    if phi == "tanh":
        return np.tanh(h)
    if phi == "relu":
        return np.maximum(h, 0.0)
    return h


def residual(J: np.ndarray, c: np.ndarray, h: np.ndarray, phi: str) -> np.ndarray:
    """F(h) = -h + J phi(h) + c for states h (K, N)."""
    return -h + _phi(h, phi) @ J.T + c


def _solve(jac: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.solve(jac, rhs[..., None])[..., 0]
    except np.linalg.LinAlgError:
        return np.stack(
            [np.linalg.lstsq(a, b, rcond=None)[0] for a, b in zip(jac, rhs, strict=True)]
        )


def newton_fixed_points(
    J: np.ndarray, c: np.ndarray, phi: str, starts: np.ndarray, max_iter: int = MAX_ITER
) -> tuple[np.ndarray, np.ndarray]:
    """Minimise q(h) = |F(h)|^2 / 2 from each start (K, N): damped Newton steps on F, each
    accepted at the largest step 2^-k (k <= 30) that lowers q. Returns the end states (K, N) and
    their q (K,)."""
    h = np.array(starts, dtype=np.float64)
    n = h.shape[-1]
    eye = np.eye(n)
    f = residual(J, c, h, phi)
    q = 0.5 * np.sum(f * f, axis=-1)
    active = np.isfinite(q)
    for _ in range(max_iter):
        active &= q > 1e-6 * Q_TOL * n
        if not active.any():
            break
        idx = np.flatnonzero(active)
        hk, fk, qk = h[idx], f[idx], q[idx]
        jac = J[None] * spectra.dphi_numpy(hk, phi)[:, None, :] - eye
        step = _solve(jac, -fk)
        done = np.zeros(idx.size, dtype=bool)
        t = 1.0
        for _ in range(31):
            trial = hk + t * step
            ft = residual(J, c, trial, phi)
            qt = 0.5 * np.sum(ft * ft, axis=-1)
            better = ~done & np.isfinite(qt) & (qt < qk)
            hk[better], fk[better], qk[better] = trial[better], ft[better], qt[better]
            done |= better
            if done.all():
                break
            t *= 0.5
        h[idx], f[idx], q[idx] = hk, fk, qk
        active[idx[~done]] = False  # no step lowers q: a minimum (fixed or slow point)
    return h, q


def dedupe(points: np.ndarray, q: np.ndarray, tol: float = DEDUPE) -> np.ndarray:
    """Indices of distinct points (rms distance per neuron > tol), lowest q first."""
    keep: list[int] = []
    n = points.shape[-1]
    for i in np.argsort(q, kind="stable"):
        if all(np.linalg.norm(points[i] - points[j]) / np.sqrt(n) > tol for j in keep):
            keep.append(int(i))
    return np.array(keep, dtype=np.int64)


def fixed_points_of(
    J: np.ndarray,
    c: np.ndarray,
    phi: str,
    starts: np.ndarray,
    u1: np.ndarray,
    *,
    max_points: int,
    n_eig: int,
) -> dict[str, np.ndarray]:
    """Fixed points of one network at one constant drive c (N,), from `starts` (K, N).

    Returns (slots of `max_points`, NaN where empty, ordered by the projection on u1): `u1`
    (u1^T h*), `rms` (|h*| / sqrt(N)), `q`, `max_re` and `eigvals` (the `n_eig` Jacobian
    eigenvalues with the largest real part), `stable` (1.0 / 0.0); and the counts `n`,
    `n_stable`, `n_unstable` of all distinct fixed points found (also those beyond the slots).
    """
    n = J.shape[-1]
    out = {
        "u1": np.full(max_points, np.nan),
        "rms": np.full(max_points, np.nan),
        "q": np.full(max_points, np.nan),
        "max_re": np.full(max_points, np.nan),
        "stable": np.full(max_points, np.nan),
        "eigvals": np.full((max_points, n_eig), np.nan + 0j),
        "n": np.nan,
        "n_stable": np.nan,
        "n_unstable": np.nan,
    }
    if not (np.isfinite(J).all() and np.isfinite(c).all()):
        return out
    h, q = newton_fixed_points(J, c, phi, starts)
    ok = np.isfinite(q) & (q <= Q_TOL * n)
    pts, qs = h[ok], q[ok]
    pts, qs = pts[dedupe(pts, qs)], qs[dedupe(pts, qs)]
    eig = [spectra.sorted_eigvals(spectra.jacobian(J, spectra.dphi_numpy(p, phi))) for p in pts]
    max_re = np.array([e[0].real for e in eig])
    stable = max_re < 0
    out["n"], out["n_stable"] = float(len(pts)), float(stable.sum())
    out["n_unstable"] = float(len(pts) - stable.sum())
    if not len(pts):
        return out
    # keep the stable ones first, then the best converged; order the kept ones along u1
    pick = np.lexsort((qs, ~stable))[:max_points]
    proj = pts[pick] @ u1 if np.isfinite(u1).all() else np.full(pick.size, np.nan)
    order = pick[np.argsort(proj, kind="stable")] if np.isfinite(proj).all() else pick
    k = order.size
    out["u1"][:k] = pts[order] @ u1 if np.isfinite(u1).all() else np.nan
    out["rms"][:k] = np.linalg.norm(pts[order], axis=-1) / np.sqrt(n)
    out["q"][:k] = qs[order]
    out["max_re"][:k] = max_re[order]
    out["stable"][:k] = stable[order].astype(float)
    m = min(n_eig, n)
    out["eigvals"][:k, :m] = np.stack([eig[i][:m] for i in order])
    return out


FIELDS = ("u1", "rms", "q", "max_re", "stable", "eigvals", "n", "n_stable", "n_unstable")


def fixed_points(
    j0,
    dj,
    b,
    seed,
    cfg_index,
    *,
    configs,
    inputs,
    n_starts: int = 8,
    n_trials: int = 4,
    max_points: int = 8,
    n_eig: int = 6,
    device: str = "auto",
):
    """Batched kernel: fixed points of J = J0 + dJ (..., N, N) with input weights b (..., N,
    n_in) at each constant input of `inputs` (every input channel at that value).

    Starts: the origin, `n_starts` states drawn from the network's trajectories on `n_trials`
    trials of its seed's `fixed_points` stream (np_simulate.sample_states), and their negatives.
    u1 is the leading left singular vector of dJ (sign rule of np_lowrank). Returns the fields of
    `fixed_points_of` in FIELDS order, with a new (n_inputs,) axis before the slot axes.
    """
    from rnnlab.analysis import np_lowrank, np_simulate

    j0, dj, b = np.asarray(j0), np.asarray(dj), np.asarray(b)
    lead = np.broadcast_shapes(j0.shape[:-2], dj.shape[:-2], b.shape[:-2], np.shape(seed),
                               np.shape(cfg_index))  # fmt: skip
    n_u = len(inputs)
    shapes = {"eigvals": (max_points, n_eig), "n": (), "n_stable": (), "n_unstable": ()}
    outs = {
        k: np.full(
            lead + (n_u,) + shapes.get(k, (max_points,)), np.nan + (0j if k == "eigvals" else 0)
        )
        for k in FIELDS
    }
    arrays = [(j0, 2), (dj, 2), (b, 2), (np.asarray(seed), 0), (np.asarray(cfg_index), 0)]
    for idx, (mj0, mdj, mb, ms, mc) in np_simulate._members(lead, *arrays):
        mj0, mdj, mb = (np.asarray(x, dtype=np.float64) for x in (mj0, mdj, mb))
        ms, cfg = int(ms), configs[int(mc)]
        J = mj0 + mdj
        if not (np.isfinite(J).all() and np.isfinite(mb).all()):
            continue
        states = np_simulate.sample_states(J, mb, ms, cfg, n_trials, n_starts, device=device)
        starts = np.concatenate([np.zeros((1, J.shape[0])), states, -states])
        _, u, _, _, _, _ = np_lowrank.lowrank(mdj, 1)
        for k, value in enumerate(inputs):
            c = mb @ np.full(mb.shape[-1], float(value))
            res = fixed_points_of(J, c, cfg.model.phi, starts, u[0], max_points=max_points,
                                  n_eig=n_eig)  # fmt: skip
            for name in FIELDS:
                outs[name][idx + (k,)] = res[name]
    return tuple(outs[k] for k in FIELDS)
