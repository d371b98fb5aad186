"""The trained network back in the loop: evaluate, functional_rank, shuffle_control, the outlier
ladder, fixed points and lambda_task, each against an independent computation on networks whose
answer is known (planted by hand here) and lazy (dask) against eager."""

from __future__ import annotations

import dask
import numpy as np
import pytest
import xarray as xr

import rnnlab
import rnnlab.analysis as ra
from rnnlab.analysis import np_simulate
from rnnlab.analysis._common import AnalysisError
from rnnlab.config import load_config, to_toml
from rnnlab.spectra import theory


def run(obj):
    return ra.compute(obj, progress=False)


def _raise(dsk, keys, **kwargs):
    raise RuntimeError("the analysis computed something before .compute()")


def hand_archive(J0, dJ, B, w, cfg, epochs=None, seeds=None) -> xr.Dataset:
    """An archive-shaped Dataset of given arrays: J0 (S, N, N), dJ (S, E, N, N), B (S, E, N, I),
    w (S, E, N, O), the config stored as TOML, eigenvalues of J = J0 + dJ by numpy."""
    S, E = dJ.shape[:2]
    ev = np.linalg.eigvals(J0[:, None] + dJ)
    ev = np.take_along_axis(ev, np.lexsort((-ev.imag, -ev.real), axis=-1), axis=-1)
    return xr.Dataset(
        {
            "J0": (("seed", "neuron", "neuron_pre"), J0),
            "dJ": (("seed", "epoch", "neuron", "neuron_pre"), dJ),
            "B": (("seed", "epoch", "neuron", "input"), B),
            "w": (("seed", "epoch", "neuron", "output"), w),
            "eigvals": (("seed", "epoch", "eig"), ev),
        },
        coords={
            "seed": list(range(S)) if seeds is None else seeds,
            "epoch": list(range(E)) if epochs is None else epochs,
            "input": list(cfg.task.inputs),
            "output": list(cfg.task.outputs),
            "g": ("seed", np.full(S, cfg.model.g)),
        },
        attrs={"config": to_toml(cfg)},
    )


def numpy_mse(ds: xr.Dataset, n_trials: int) -> tuple[np.ndarray, np.ndarray]:
    """Independent float64 NumPy Euler simulation of the last epoch on the fresh trials:
    per-member mean MSE and its standard error."""
    from rnnlab.config import config_from_toml, washout_steps
    from rnnlab.network.rng import seed_generator
    from rnnlab.network.tasks import make_trials

    cfg = config_from_toml(ds.attrs["config"], "test")
    a, wash = cfg.model.alpha, washout_steps(cfg)
    phi = {"tanh": np.tanh, "linear": lambda x: x, "relu": lambda x: np.maximum(x, 0)}
    f = phi[cfg.model.phi]
    last = ds.isel(epoch=-1).load()
    means, ses = [], []
    for i, seed in enumerate(last.seed.values):
        J = (last.J0[i] + last.dJ[i]).values.astype(np.float64)
        B, w = last.B[i].values.astype(np.float64), last.w[i].values.astype(np.float64)
        u, y = (x.numpy() for x in make_trials(cfg.task, cfg.model.dt, n_trials,
                                                seed_generator(int(seed), "fresh")))  # fmt: skip
        h = np.zeros((n_trials, J.shape[0]))
        err = []
        for k in range(u.shape[1]):
            h = (1 - a) * h + a * (f(h) @ J.T + u[:, k] @ B.T)
            err.append(((f(h) @ w - y[:, k]) ** 2).mean(axis=-1))
        per_trial = np.stack(err, axis=1)[:, wash:].mean(axis=1)
        means.append(per_trial.mean())
        ses.append(per_trial.std(ddof=1) / np.sqrt(n_trials))
    return np.array(means), np.array(ses)


# --- evaluate --------------------------------------------------------------------------------


def test_evaluate_matches_an_independent_numpy_simulation(tiny_archive):
    ds = rnnlab.open_archive(tiny_archive)
    ev = run(ra.evaluate(ds, n_trials=200))
    mean, se = numpy_mse(ds, 200)
    assert ev["eval_epoch"].values.tolist() == [int(ds.epoch[-1])]
    np.testing.assert_allclose(ev.mse.isel(eval_epoch=0), mean, rtol=2e-5)
    np.testing.assert_allclose(ev.mse_se.isel(eval_epoch=0), se, rtol=1e-3)
    np.testing.assert_allclose(ev.excess, ev.mse - float(ds.mse_optimal), rtol=1e-12)
    np.testing.assert_allclose(ev.mse_optimal, float(ds.mse_optimal), rtol=1e-12)


@pytest.mark.parametrize("phi", ["tanh", "relu", "linear"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_forward_only_loop_matches_the_fused_kernel(phi, dtype):
    """trial_mse on the CPU runs rnnlab.bptt.forward (no trajectory kept, readout step by step);
    the fused kernel (run_dynamics + readout, what the GPU runs) gives the same per-trial MSE
    to float rounding, with two inputs and two outputs, on networks of three seeds, and a
    network's numbers do not depend on what is simulated with it."""
    cfg = load_config(None, [f"model.phi={phi}", "model.N=24", "task.n_stimuli=2",
                             "task.n_outputs=2", "task.duration=0.4"])  # fmt: skip
    rng = np.random.default_rng(0)
    J = 1.2 * rng.normal(size=(5, 24, 24)) / np.sqrt(24)
    B, w = rng.normal(size=(5, 24, 2)), rng.normal(size=(5, 24, 2)) / 5
    seeds = np.array([0, 1, 1, 2, 0])
    fast = np_simulate.trial_mse(J, B, w, seeds, cfg, 70, dtype=dtype)
    fused = np_simulate.trial_mse(J, B, w, seeds, cfg, 70, dtype=dtype, kernel="fused")
    assert fast.shape == (5, 70) and np.isfinite(fast).all()
    np.testing.assert_allclose(fast, fused, rtol=2e-6 if dtype == "float32" else 1e-12)
    alone = np_simulate.trial_mse(J[2:4], B[2:4], w[2:4], seeds[2:4], cfg, 70, dtype=dtype)
    np.testing.assert_array_equal(alone, fast[2:4])
    J[1, 0, 0] = np.nan  # a non-finite network: NaN, the others unchanged
    bad = np_simulate.trial_mse(J, B, w, seeds, cfg, 70, dtype=dtype)
    assert np.isnan(bad[1]).all()
    np.testing.assert_array_equal(np.delete(bad, 1, axis=0), np.delete(fast, 1, axis=0))


def test_evaluate_is_lazy_and_equals_eager(tiny_archive):
    ds = rnnlab.open_archive(tiny_archive)
    with dask.config.set(scheduler=_raise):
        lazy = ra.evaluate(ds, epoch=[0, -1], n_trials=50)
        assert all(v.chunks is not None for v in lazy.data_vars.values())
    eager = ra.evaluate(ds.load(), epoch=[0, -1], n_trials=50)
    assert all(v.chunks is None for v in eager.data_vars.values())
    xr.testing.assert_allclose(run(lazy), eager)
    # epoch 0 is the untrained network: its fresh-trial MSE is larger
    assert (eager.mse.isel(eval_epoch=0) > eager.mse.isel(eval_epoch=1)).all()


def test_optimal_linear_network_reaches_the_kalman_optimum():
    """One linear neuron with J = lambda_task, B = 1, w = K/alpha is the steady-state Kalman
    filter: its fresh-trial MSE sits at the task optimum within its standard error, and
    lambda_task (kalman_pole) is what makes it so (a shifted eigenvalue does worse)."""
    cfg = load_config(
        None, ["model.N=1", "model.phi=linear", "seeds=[0, 1]", "model.b=0", "record.track_k=1"]
    )
    m, t = cfg.model, cfg.task
    lam = theory.kalman_pole(m.tau, m.dt, t.tau_ou, t.sigma_ou, t.obs_noise)
    pole = complex(theory.euler_map_eigenvalues(lam, m.alpha)).real
    gain = 1 - pole / np.exp(-m.dt / t.tau_ou)  # p = a (1 - K)
    ones = np.ones((2, 2, 1, 1))
    dJ = np.stack([lam * ones[:, 0], (lam + 0.5) * ones[:, 1]], axis=1)
    ds = hand_archive(np.zeros((2, 1, 1)), dJ, ones, ones * gain / m.alpha, cfg)
    ev = run(ra.evaluate(ds, epoch="all", n_trials=2000))
    best, shifted = ev.isel(eval_epoch=0), ev.isel(eval_epoch=1)
    assert np.all(np.abs(best.excess) < 3 * best.mse_se), (best.excess.values, best.mse_se.values)
    assert np.all(shifted.excess > 10 * shifted.mse_se)
    # the optimum is the steady-state posterior variance K r (scalar Kalman filter)
    np.testing.assert_allclose(ev.mse_optimal, gain * t.obs_noise**2, rtol=1e-6)


# --- functional rank -------------------------------------------------------------------------


def planted_linear(noise: float = 0.15, J0_kind: str = "random", g: float = 0.5):
    """Linear networks (2 seeds, N = 40) on denoise whose ΔJ = lambda_task u u^T + noise works
    through B = u, w = (K/alpha) u: the rank-1 part is what the task needs; the noise (most of
    ||ΔJ||_F) is not. J0 = g W; J0_kind "cancel": ΔJ also carries -J0 (the trained J is then
    free of J0, and a J0 other than its own is left uncancelled)."""
    n = 40
    cfg = load_config(None, [f"model.N={n}", "model.phi=linear", "seeds=[0, 1]",
                             "task.obs_noise=0.5", f"model.g={g}", "model.b=0"])  # fmt: skip
    m, t = cfg.model, cfg.task
    lam = theory.kalman_pole(m.tau, m.dt, t.tau_ou, t.sigma_ou, t.obs_noise)
    gain = 1 - (1 - m.alpha + m.alpha * lam) / np.exp(-m.dt / t.tau_ou)
    rng = np.random.default_rng(0)
    J0 = g * rng.normal(size=(2, n, n)) / np.sqrt(n)
    u = rng.normal(size=(2, n))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    dJ = lam * np.einsum("si,sj->sij", u, u) + noise * rng.normal(size=(2, n, n)) / np.sqrt(n)
    if J0_kind == "cancel":
        dJ = dJ - J0
    B = u[:, None, :, None]
    return hand_archive(J0, dJ[:, None], B, B * gain / m.alpha, cfg, epochs=[30])


def test_functional_rank_of_a_planted_rank_one_change_is_one():
    ds = planted_linear()
    fr = run(ra.functional_rank(ds, ranks=[1, 2, 5], n_trials=300))
    assert fr.trunc_rank.values.tolist() == [0, 1, 2, 5, 40]
    assert np.all(fr.functional_rank == 1) and np.all(fr.functional_rank_split == 1)
    # the SVD rank is not the functional rank: one component holds < 90% of ||ΔJ||²
    fit = run(ra.lowrank_fit(ds.dJ, rank=1))
    assert np.all(fit.explained_cum.isel(epoch=-1, rank=0) < 0.9)
    loss = fr.loss.isel(eval_epoch=0)
    gap = loss.isel(trunc_rank=0) - loss.isel(trunc_rank=-1)
    assert np.all(gap > 20 * fr.loss_diff_se.isel(eval_epoch=0, trunc_rank=0))
    # R = N is the trained network on the same trials as evaluate: the same numbers
    ev = run(ra.evaluate(ds, n_trials=300))
    np.testing.assert_allclose(loss.isel(trunc_rank=-1), ev.mse.isel(eval_epoch=0), rtol=1e-6)
    assert np.all(fr.loss_diff_se.isel(trunc_rank=-1) == 0)  # paired with itself


def test_functional_rank_criterion_closed_form():
    ranks = np.array([0, 1, 2, 3, 40])
    loss = np.array([[1.0, 0.5, 0.2, 0.11, 0.1], [0.1, 0.3, 0.2, 0.1, 0.15]])
    # excess 0.9, 0.4, 0.1, 0.01, 0: 5% of 0.9 = 0.045 -> R = 3 (50%: 0.45 -> R = 1);
    # R = 0 already as good -> 0
    assert np_simulate.functional_rank(loss, ranks).tolist() == [3.0, 0.0]
    assert np_simulate.functional_rank(loss, ranks, frac=0.5).tolist() == [1.0, 0.0]
    assert np.isnan(np_simulate.functional_rank(np.array([np.nan, 1, 1, 1, 1]), ranks))


def test_truncations_are_the_best_rank_r_approximations():
    rng = np.random.default_rng(3)
    j0, dj = rng.normal(size=(2, 12, 12))
    nets = np_simulate.truncated(j0, dj, np.array([0, 2, 12]), split=False)
    u, s, vt = np.linalg.svd(dj)
    np.testing.assert_allclose(nets[0], j0)
    np.testing.assert_allclose(
        nets[1], j0 + s[0] * np.outer(u[:, 0], vt[0]) + s[1] * np.outer(u[:, 1], vt[1])
    )
    np.testing.assert_array_equal(nets[0], j0)  # R = 0 and R = N: exactly J0 and J0 + dJ
    np.testing.assert_array_equal(nets[2], j0 + dj)
    kappa = -np.sum(dj * j0) / np.sum(j0 * j0)
    split = np_simulate.truncated(j0, dj, np.array([0, 12]), split=True)
    np.testing.assert_allclose(split[0], (1 - kappa) * j0)
    np.testing.assert_array_equal(split[1], j0 + dj)


def test_one_simulation_pass_gives_what_the_three_analyses_give(tiny_archive):
    """network_analyses (what analyze runs) simulates each distinct network once; its
    evaluate, functional_rank and shuffle_control are the three functions' own, bit for bit,
    and R = N and R = 0 are the trained and J0-only networks of the other two."""
    ds = rnnlab.open_archive(tiny_archive)
    kw = {"n_trials": 60}
    parts = ra.compute(
        xr.merge(
            ra.inloop.network_analyses(ds, [0, -1], ranks=(1, 3), n_shuffles=2, **kw),
            compat="override", join="exact", combine_attrs="drop_conflicts",
        ), progress=False,
    )  # fmt: skip
    separate = [
        run(ra.evaluate(ds, [0, -1], **kw)),
        run(ra.functional_rank(ds, (1, 3), epoch=[0, -1], **kw)),
        run(ra.shuffle_control(ds, [0, -1], n_shuffles=2, **kw)),
    ]
    for one in separate:
        for name, da in one.data_vars.items():
            np.testing.assert_array_equal(parts[name].values, da.values, err_msg=name)
            assert parts[name].attrs == da.attrs and parts[name].dims == da.dims
    ev, fr, sh = separate
    np.testing.assert_array_equal(fr.loss.isel(trunc_rank=-1), ev.mse)
    np.testing.assert_array_equal(fr.loss_split.isel(trunc_rank=-1), ev.mse)
    np.testing.assert_array_equal(sh.shuffle_loss.sel(control="trained"), ev.mse)
    alone = sh.shuffle_loss.sel(control="J0 only")
    np.testing.assert_array_equal(alone, fr.loss.isel(trunc_rank=0))


# --- shuffle control -------------------------------------------------------------------------


def test_shuffle_control_separates_structure_that_needs_its_own_J0():
    own = run(ra.shuffle_control(planted_linear(J0_kind="random"), n_trials=300))
    ds = planted_linear(J0_kind="cancel", g=1.5)
    cancel = run(ra.shuffle_control(ds, n_trials=300))
    assert own.control.values.tolist() == ["trained", "shuffled J0", "J0 only"]
    # ΔJ along u works on any J0 of these statistics (a few % of the gain lost at most); ΔJ
    # that cancels its J0 (g = 1.5: J0 alone is unstable) leaves a shuffled one in place:
    # P(J0) - J0 has radius 1.5 sqrt(2), the network explodes faster than with J0 alone
    assert np.all(np.abs(own.shuffle_lost) < 0.1), own.shuffle_lost.values
    assert np.all(cancel.shuffle_lost > 1), cancel.shuffle_lost.values
    # same trials as evaluate and functional_rank: trained = R = N, J0 only = R = 0
    fr = run(ra.functional_rank(ds, ranks=[], n_trials=300, split=False)).isel(eval_epoch=0)
    sh = cancel.isel(eval_epoch=0)
    np.testing.assert_allclose(
        sh.shuffle_loss.sel(control="trained"), fr.loss.isel(trunc_rank=-1), rtol=1e-6
    )
    np.testing.assert_allclose(
        sh.shuffle_loss.sel(control="J0 only"), fr.loss.isel(trunc_rank=0), rtol=1e-6
    )


def test_shuffled_network_is_the_documented_permutation():
    """The shuffled J0 is J0's entries permuted by torch.randperm on the seed's `shuffle` stream:
    rebuilt here and simulated through evaluate, on the same fresh trials."""
    import torch

    from rnnlab.network.rng import seed_generator

    ds = planted_linear()
    sh = run(ra.shuffle_control(ds, n_trials=100)).isel(eval_epoch=0)
    perm = [torch.randperm(40 * 40, generator=seed_generator(s, "shuffle")).numpy() for s in (0, 1)]
    shuffled = np.stack([ds.J0.values[s].ravel()[perm[s]].reshape(40, 40) for s in (0, 1)])
    other = ds.assign(J0=(ds.J0.dims, shuffled))
    ev = run(ra.evaluate(other, n_trials=100)).isel(eval_epoch=0)
    np.testing.assert_allclose(sh.shuffle_loss.sel(control="shuffled J0"), ev.mse, rtol=1e-6)


def test_shuffle_of_a_constant_J0_changes_nothing():
    ds = planted_linear()
    ds["J0"] = xr.full_like(ds.J0, -0.02)  # every entry equal: any permutation is J0 itself
    sh = run(ra.shuffle_control(ds, n_trials=100)).isel(eval_epoch=0)
    np.testing.assert_array_equal(
        sh.shuffle_loss.sel(control="trained"), sh.shuffle_loss.sel(control="shuffled J0")
    )
    assert np.all(sh.shuffle_lost == 0)


# --- outlier ladder --------------------------------------------------------------------------


def cyclic(n: int = 300, g: float = 0.6, m=(3.0, 2.5, 2.0), seeds: int = 2):
    """J0 = g W with ΔJ = m1 u2 u1^T + m2 u3 u2^T + m3 u1 u3^T (orthonormal u): a 3-cycle whose
    outliers (the cube roots of m1 m2 m3) need all three components; any truncation to R < 3
    is a nilpotent chain, with no outlier."""
    cfg = load_config(None, [f"model.N={n}", f"model.g={g}", "model.b=0", "model.phi=linear"])
    rng = np.random.default_rng(7)
    J0 = g * rng.normal(size=(seeds, n, n)) / np.sqrt(n)
    dJ = np.empty((seeds, 1, n, n))
    for s in range(seeds):
        q, _ = np.linalg.qr(rng.normal(size=(n, 3)))
        dJ[s, 0] = sum(m[r] * np.outer(q[:, (r + 1) % 3], q[:, r]) for r in range(3))
    B = np.ones((seeds, 1, n, 1)) / np.sqrt(n)
    return hand_archive(J0, dJ, B, B, cfg, epochs=[5])


def test_ladder_needs_exactly_the_planted_components():
    ds = cyclic()
    la = run(ra.outlier_ladder(ds, ranks=[1, 2, 3, 4])).isel(eval_epoch=0)
    assert la.ladder_rank.values.tolist() == [0, 1, 2, 3, 4, 300]
    lam = np.prod((3.0, 2.5, 2.0)) ** (1 / 3) * np.exp(2j * np.pi * np.arange(3) / 3)
    for s in range(2):
        measured = la.ladder_measured.isel(seed=s).values
        found = measured[np.isfinite(measured)]
        assert found.size == 3  # the three outliers, near the mean-field cube roots
        assert np.all(np.min(np.abs(found[:, None] - lam[None]), axis=1) < 0.15)
        assert la.ladder_from_rank.isel(seed=s).values[:3].tolist() == [3.0] * 3
        assert la.ladder_from_rank_meanfield.isel(seed=s).values[:3].tolist() == [3.0] * 3
        np.testing.assert_allclose(la.ladder_tol.isel(seed=s).values[:3],
                                   theory.outlier_spread(np.abs(found), 0.6, 300))  # fmt: skip
        # each rung's spectrum is that of J0 + ΔJ_R, truncated independently here
        j0, dj = ds.J0.values[s], ds.dJ.values[s, 0]
        u, sv, vt = np.linalg.svd(dj)
        for i, r in enumerate(la.ladder_rank.values):
            want = np.linalg.eigvals(j0 + (u[:, :r] * sv[:r]) @ vt[:r])
            got = la.ladder_eigvals.isel(seed=s, ladder_rank=i).values
            np.testing.assert_allclose(np.sort_complex(got), np.sort_complex(want), atol=1e-8)
        # below R = 3 no prediction sits on a measured outlier; from R = 3 on the exact one does
        exact = la.ladder_exact.isel(seed=s).values[:, :3]
        assert np.all(~(np.abs(exact[:3] - found) <= la.ladder_tol.isel(seed=s).values[:3]))
        np.testing.assert_allclose(exact[-1], found, atol=1e-8)


def test_ladder_is_lazy_and_equals_eager():
    ds = cyclic(n=80, seeds=2).chunk({"seed": 1})
    with dask.config.set(scheduler=_raise):
        lazy = ra.outlier_ladder(ds, ranks=[1, 3])
    xr.testing.assert_allclose(run(lazy), ra.outlier_ladder(ds.load(), ranks=[1, 3]))


# --- fixed points ----------------------------------------------------------------------------


def test_fixed_points_of_a_rank_one_pitchfork():
    """J = m u u^T with u_i = ±1/sqrt(N), tanh, m = 2: h = kappa u is a fixed point when
    x = kappa/sqrt(N) solves x = m tanh(x): the unstable origin and a stable pair at ±x*."""
    n, m = 30, 2.0
    cfg = load_config(None, [f"model.N={n}", "model.g=0", "model.b=0", "seeds=[0]"])
    rng = np.random.default_rng(1)
    u = rng.choice([-1.0, 1.0], size=n) / np.sqrt(n)
    x = 2.0
    for _ in range(200):
        x = m * np.tanh(x)
    dJ = (m * np.outer(u, u))[None, None]
    B = u[None, None, :, None]
    ds = hand_archive(np.zeros((1, n, n)), dJ, B, B, cfg, epochs=[9])
    fp = run(ra.fixed_points(ds, inputs=[0.0])).isel(seed=0, eval_epoch=0, u_const=0)
    assert int(fp.n_fixed_points) == 3 and int(fp.n_stable) == 2 and int(fp.n_unstable) == 1
    np.testing.assert_allclose(
        fp.fp_u1.values[:3], np.sort([-x * np.sqrt(n), 0, x * np.sqrt(n)]), atol=1e-7
    )
    slope = 1 - np.tanh(x) ** 2
    np.testing.assert_allclose(
        fp.fp_max_re.values[:3], [-1 + m * slope, m - 1, -1 + m * slope], atol=1e-7
    )
    assert fp.fp_stable.values[:3].tolist() == [1.0, 0.0, 1.0]


def test_fixed_points_start_from_each_seeds_own_trials(tiny_archive, monkeypatch):
    """Every (seed, epoch) starts from the origin and ± states of its own network on its seed's
    `fixed_points` trials (np_simulate.sample_states, as documented), whatever else is in the
    chunk (the trials are made once per seed): the starts the kernel searches from are those."""
    from rnnlab.analysis import np_fixed_points
    from rnnlab.config import config_from_toml

    searched = []
    search = np_fixed_points.fixed_points_of

    def recording(J, c, phi, starts, u1, **kwargs):
        searched.append((J.copy(), starts.copy()))
        return search(J, c, phi, starts, u1, **kwargs)

    monkeypatch.setattr(np_fixed_points, "fixed_points_of", recording)
    ds = xr.open_dataset(tiny_archive).load()
    cfg = config_from_toml(ds.attrs["config"], "test")
    fp = run(ra.fixed_points(ds, inputs=[0.0]))
    members = [(s, e) for s in range(ds.sizes["seed"]) for e in fp["eval_epoch"].values]
    assert len(searched) == len(members) > 2
    for (s, epoch), (J, starts) in zip(members, searched, strict=True):
        snap = ds.isel(seed=s).sel(epoch=epoch)
        np.testing.assert_array_equal(J, snap.J0.values.astype(float) + snap.dJ.values)
        seed = int(ds["seed"].values[s])
        states = np_simulate.sample_states(J, snap.B.values, seed, cfg, 4, 8)
        np.testing.assert_array_equal(starts, np.concatenate([0 * states[:1], states, -states]))


def test_fixed_point_of_a_linear_network_is_the_linear_solve():
    ds = planted_linear()
    fp = run(ra.fixed_points(ds, inputs=[0.0, 0.7])).isel(eval_epoch=0)
    for s in range(2):
        J = ds.J0.values[s] + ds.dJ.values[s, 0]
        B = ds.B.values[s, 0]
        stable = np.linalg.eigvals(J - np.eye(40)).real.max() < 0
        for k, c in enumerate([0.0, 0.7]):
            one = fp.isel(seed=s, u_const=k)
            h = np.linalg.solve(np.eye(40) - J, B[:, 0] * c)
            u1 = np.linalg.svd(ds.dJ.values[s, 0])[0][:, 0]
            u1 *= np.sign(u1[np.argmax(np.abs(u1))])
            assert int(one.n_fixed_points) == 1 and int(one.n_stable) == int(stable)
            np.testing.assert_allclose(float(one.fp_u1[0]), u1 @ h, atol=1e-8)
            np.testing.assert_allclose(
                float(one.fp_rms[0]), np.linalg.norm(h) / np.sqrt(40), atol=1e-8
            )


# --- lambda_task -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["model.phi=linear"], "pole"),
        (["model.phi=linear", "task.kind=track"], "track"),
        (["model.phi=tanh"], "nan"),
        (["model.phi=linear", "task.n_stimuli=2", "task.correlation=0.5"], "nan"),
        (["model.phi=linear", "task.n_stimuli=2"], "pole"),
    ],
)
def test_lambda_task_where_a_closed_form_applies(overrides, expected):
    cfg = load_config(None, ["model.N=4", "record.track_k=1", *overrides])
    n_in = len(cfg.task.inputs)
    zeros = np.zeros((1, 1, 4, 4))
    ds = hand_archive(zeros[0], zeros, zeros[..., :n_in], zeros[..., :1], cfg)
    got = float(ra.lambda_task(ds)[0])
    m, t = cfg.model, cfg.task
    if expected == "nan":
        assert np.isnan(got)
    elif expected == "track":
        assert got == pytest.approx(1 - 1 / m.alpha)
    else:
        assert got == pytest.approx(
            theory.kalman_pole(m.tau, m.dt, t.tau_ou, t.sigma_ou, t.obs_noise)
        )


# --- the pipeline, combined runs, bad input --------------------------------------------------


def test_analyze_with_network_parts(tiny_archive):
    ds = rnnlab.open_archive(tiny_archive)
    plain = ra.analyze(ds)
    assert {"ladder_from_rank", "lambda_task"} <= set(plain.data_vars)
    assert "mse" not in plain and "n_fixed_points" not in plain
    opts = {"n_trials": 40, "ranks": (1,), "ladder_ranks": (1, 2)}
    res = run(ra.analyze(ds, network=opts))
    assert res.eval_epoch.values.tolist() == [int(ds.epoch[-1])]
    assert res.trunc_rank.values.tolist() == [0, 1, 24]
    assert res.n_fixed_points.dims == ("seed", "epoch", "u_const")
    ev = run(ra.evaluate(ds, n_trials=40))
    xr.testing.assert_allclose(res.mse, ev.mse)
    with pytest.raises(AnalysisError, match="unknown network option"):
        ra.analyze(ds, network={"trials": 3})


def test_runs_with_different_configs_simulate_with_their_own(twin_runs):
    a, b = twin_runs
    both = rnnlab.open_archive(a.parent)
    assert "config" not in both.attrs and "run_configs" in both.attrs  # the lr differs
    ev = run(ra.evaluate(both, n_trials=30))
    for path, sel in ((a, slice(0, 2)), (b, slice(2, 4))):
        one = run(ra.evaluate(rnnlab.open_archive(path), n_trials=30))
        np.testing.assert_allclose(ev.mse.isel(seed=sel), one.mse, rtol=1e-12)


def test_bad_inputs(tiny_archive):
    ds = rnnlab.open_archive(tiny_archive)
    with pytest.raises(AnalysisError, match="n_trials"):
        ra.evaluate(ds, n_trials=1)
    with pytest.raises(AnalysisError, match="not a snapshot epoch"):
        ra.evaluate(ds, epoch=5)
    with pytest.raises(AnalysisError, match="no run config"):
        ra.functional_rank(ds.drop_attrs())
    with pytest.raises(AnalysisError, match="inputs"):
        ra.fixed_points(ds, inputs=[np.nan])
