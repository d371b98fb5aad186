"""Initial connectivity against random-matrix facts, and per-seed independence of the draws."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rnnlab.config import load_config
from rnnlab.network.params import init_params, init_seed


def test_bulk_radius_and_mean_eigenvalue():
    n = 600
    cfg = load_config(None, [f"model.N={n}", "model.g=0.7", "model.b=2.0", "seeds=[4]"])
    J0 = init_seed(cfg.model, 1, 1, 4)["J0"].numpy()
    eig = np.linalg.eigvals(J0)
    outlier = eig[np.argmin(eig.real)]
    assert abs(outlier - (-2.0)) < 4 / math.sqrt(n)
    bulk = np.delete(eig, np.argmin(eig.real))
    assert abs(np.abs(bulk).max() - 0.7) < 0.05 * 0.7
    W = (J0 + 2.0 / n) / 0.7
    assert W.std() * math.sqrt(n) == pytest.approx(1.0, rel=0.02)


def test_imposed_rank_one_vectors_and_outlier():
    n, m, rho = 500, 3.0, 0.6
    cfg = load_config(
        None,
        [
            f"model.N={n}",
            "model.g=0.8",
            "model.b=0.0",
            f"model.lowrank.m={m}",
            f"model.lowrank.overlap={rho}",
        ],
    )
    p = init_seed(cfg.model, 1, 1, 0)
    u, v = p["u"].numpy(), p["v"].numpy()
    assert np.linalg.norm(u) == pytest.approx(1) and np.linalg.norm(v) == pytest.approx(1)
    assert u @ v == pytest.approx(rho, abs=1e-12)
    assert abs(u.sum()) < 1e-10 and abs(v.sum()) < 1e-10  # orthogonal to 1
    eig = np.linalg.eigvals(p["J0"].numpy())
    assert abs(eig[np.argmax(eig.real)] - m * rho) < 5 / math.sqrt(n)


def test_input_and_readout_scales():
    cfg = load_config(None, ["model.N=400", "model.input_scale=2.0", "model.w_init=random"])
    p = init_seed(cfg.model, 1, 1, 1)
    assert p["B"].std().item() == pytest.approx(2.0, rel=0.1)
    assert p["w"].std().item() * math.sqrt(400) == pytest.approx(1.0, rel=0.15)
    zero = init_seed(load_config().model, 1, 1, 1)["w"]
    assert torch.count_nonzero(zero) == 0


def test_a_seed_draws_the_same_network_in_any_batch():
    cfg = load_config(None, ["model.N=32", "model.w_init=random"])
    one = init_params(cfg.model, cfg.task, (3,))
    two = init_params(cfg.model, cfg.task, (1, 3))
    assert torch.equal(one.J0[0], two.J0[1]) and torch.equal(one.B[0], two.B[1])
    assert torch.equal(one.w[0], two.w[1]) and not torch.equal(two.J0[0], two.J0[1])


def test_init_params_sizes_from_the_task_dtype_and_device():
    cfg = load_config(
        None, ["model.N=16", "task.kind=switch", "task.n_stimuli=2", "model.lowrank.m=1.5"]
    )
    p = init_params(cfg.model, cfg.task, (0, 5), device="cpu", dtype=torch.float64)
    assert p.J0.shape == (2, 16, 16) and p.B.shape == (2, 16, 3) and p.w.shape == (2, 16, 1)
    assert p.J0.dtype == torch.float64 and p.imposed_u.shape == (2, 16)
    alone = init_seed(cfg.model, 3, 1, 5)
    assert torch.equal(p.J0[1], alone["J0"]) and torch.equal(p.imposed_v[1], alone["v"])
    assert init_params(cfg.model, cfg.task, (0,)).J0.dtype == torch.float32
    plain = load_config(None, ["model.N=16"])
    assert init_params(plain.model, plain.task, (0,)).imposed_u is None
