"""OU statistics and the denoise optimum, checked against closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rnnlab.config import load_config
from rnnlab.network.rng import seed_generator, standard_normal
from rnnlab.network.tasks import batch_for_seeds, kalman_optimal_mse, make_trials, ou_paths

DT, TAU, SIGMA = 0.01, 0.2, 1.5


@pytest.fixture(scope="module")
def paths():
    gen = seed_generator(11, "task")
    return ou_paths(
        6000, 120, 2, dt=DT, tau_ou=TAU, sigma=SIGMA, mean=0.7, correlation=0.6, generator=gen
    ).numpy()


def test_ou_stationary_mean_and_variance(paths):
    n = paths.shape[0]
    for k in (0, 60, 119):  # stationary from the first step on
        x = paths[:, k, 0]
        assert abs(x.mean() - 0.7) < 4 * SIGMA / math.sqrt(n)
        assert abs(x.var() / SIGMA**2 - 1) < 4 * math.sqrt(2 / n)


@pytest.mark.parametrize("lag", [1, 10, 40])
def test_ou_autocorrelation_is_exponential(paths, lag):
    x0, x1 = paths[:, 30, 0], paths[:, 30 + lag, 0]
    rho = np.corrcoef(x0, x1)[0, 1]
    expected = math.exp(-lag * DT / TAU)
    assert abs(rho - expected) < 4 * (1 - expected**2) / math.sqrt(len(x0)) + 1e-3


def test_two_stimuli_have_the_requested_correlation(paths):
    rho = np.corrcoef(paths[:, 50, 0], paths[:, 50, 1])[0, 1]
    assert abs(rho - 0.6) < 4 * (1 - 0.36) / math.sqrt(paths.shape[0])


def scalar_kalman_posterior(a: float, q2: float, r2: float) -> float:
    """Closed form of the scalar steady-state Riccati equation."""
    c = r2 * (1 - a * a) - q2
    prior = (-c + math.sqrt(c * c + 4 * q2 * r2)) / 2
    return prior * r2 / (prior + r2)


def test_kalman_optimum_matches_closed_form():
    cfg = load_config(None, ["task.kind=denoise", "task.obs_noise=0.8", "task.sigma_ou=1.3"])
    a = math.exp(-cfg.model.dt / cfg.task.tau_ou)
    q2 = 1.3**2 * (1 - a * a)
    expected = scalar_kalman_posterior(a, q2, 0.8**2)
    assert kalman_optimal_mse(cfg.task, cfg.model.dt) == pytest.approx(expected, rel=1e-9)
    assert 0 < expected < 1.3**2  # better than the prior, worse than perfect
    track = load_config(None, ["task.kind=track"])
    assert kalman_optimal_mse(track.task, track.model.dt) == 0.0
    switch = load_config(None, ["task.kind=switch", "task.n_stimuli=2"])
    assert math.isnan(kalman_optimal_mse(switch.task, switch.model.dt))


def test_kalman_filter_run_on_task_data_reaches_the_optimum():
    cfg = load_config(None, ["task.kind=denoise", "task.obs_noise=0.6", "task.duration=2.0"])
    inputs, targets = make_trials(cfg.task, cfg.model.dt, 3000, seed_generator(5, "task"))
    y, x = inputs[..., 0].numpy(), targets[..., 0].numpy()
    a = math.exp(-cfg.model.dt / cfg.task.tau_ou)
    q2, r2 = (1 - a * a), 0.36
    est, post = np.zeros(y.shape[0]), 0.0
    errors = []
    for k in range(y.shape[1]):
        pred, prior_var = (a * est, a * a * post + q2) if k else (est, 1.0)  # stationary prior
        gain = prior_var / (prior_var + r2)
        est = pred + gain * (y[:, k] - pred)
        post = (1 - gain) * prior_var
        errors.append(np.mean((est - x[:, k]) ** 2))
    late = np.mean(errors[100:])
    optimum = kalman_optimal_mse(cfg.task, cfg.model.dt)
    assert late == pytest.approx(optimum, rel=0.05)


def test_switch_cue_selects_the_target():
    cfg = load_config(None, ["task.kind=switch", "task.n_stimuli=2", "task.switch_rate=5"])
    inputs, targets = make_trials(cfg.task, cfg.model.dt, 50, seed_generator(1, "task"))
    cue = inputs[..., 2]
    assert set(torch.unique(cue).tolist()) == {-1.0, 1.0}
    expected = torch.where(cue > 0, inputs[..., 0], inputs[..., 1])
    assert torch.equal(targets[..., 0], expected)
    flips = (cue[:, 1:] != cue[:, :-1]).float().mean().item()
    assert flips == pytest.approx(1 - math.exp(-5 * cfg.model.dt), rel=0.25)


def test_streams_are_independent_per_seed_and_stream():
    a = torch.randn(5, generator=seed_generator(3, "task"))
    b = torch.randn(5, generator=seed_generator(3, "task"))
    c = torch.randn(5, generator=seed_generator(3, "eval"))
    d = torch.randn(5, generator=seed_generator(4, "task"))
    assert torch.equal(a, b) and not torch.equal(a, c) and not torch.equal(a, d)


def test_batch_for_seeds_stacks_each_seeds_own_trials():
    cfg = load_config(None, ["task.duration=0.2", "task.kind=denoise"])
    gens = [seed_generator(s, "task") for s in (0, 1)]
    inputs, targets = batch_for_seeds(cfg.task, cfg.model.dt, gens, 3)
    assert inputs.shape == (2, 3, 20, 1) and targets.shape == (2, 3, 20, 1)
    alone, _ = make_trials(cfg.task, cfg.model.dt, 3, seed_generator(1, "task"))
    assert torch.equal(inputs[1], alone)  # a seed's trials do not depend on its batch
    assert inputs.dtype == torch.float64


def test_standard_normal_is_float64_drawn_in_float32():
    x = standard_normal((4, 5), seed_generator(0, "W"))
    y = torch.randn((4, 5), generator=seed_generator(0, "W"), dtype=torch.float32)
    assert x.dtype == torch.float64 and torch.equal(x, y.double())


@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 50, 2), (2, 200, 1)])
def test_ar1_recursion_equals_scipy_lfilter_bitwise(shape):
    """The numba OU recursion (which replaced scipy.signal.lfilter to save its import) gives the
    same numbers to the bit as the IIR filter x_k = kick_k + a x_{k-1}."""
    from scipy.signal import lfilter

    from rnnlab.network.tasks import ar1

    kicks = np.random.default_rng(sum(shape)).standard_normal(shape)
    a = 0.93
    expected = lfilter([1.0], [1.0, -a], kicks, axis=1)
    np.testing.assert_array_equal(ar1(kicks, a), expected)
