"""Training: exact gradients, independent seeds in a batch, learning that respects theory."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import tiny_overrides

from rnnlab.config import load_config, washout_steps
from rnnlab.network.rng import seed_generator
from rnnlab.network.tasks import batch_for_seeds, kalman_optimal_mse
from rnnlab.training.trainer import (
    Network,
    Trainer,
    build_network,
    clip_per_seed,
    finite_per_seed,
    forward,
)


@pytest.mark.parametrize("phi", ["tanh", "relu", "linear"])
def test_loss_gradient_matches_finite_differences(phi):
    cfg = load_config(
        None,
        tiny_overrides(
            **{
                "model.N": 6,
                "task.duration": 0.1,
                "model.phi": phi,
                "model.train": "['J','w','B']",
                "model.w_init": "random",
                "train.lambda_w": 0.01,
                "train.lambda_bal": 0.3,
                "task.kind": "denoise",
                "model.b": 0.5,
            }
        ),
    )
    net = build_network(cfg, torch.device("cpu"), dtype=torch.float64)
    gens = [seed_generator(s, "task") for s in cfg.seeds]
    inputs, targets = batch_for_seeds(cfg.task, cfg.model.dt, gens, 2)
    washout = washout_steps(cfg)

    def total_loss(J, w, B):
        trial = Network(J=J, B=B, w=w, J0=net.J0)
        return forward(trial, inputs, targets, cfg.model, cfg.train, washout).loss.sum()

    params = tuple(t.detach().clone().requires_grad_(True) for t in (net.J, net.w, net.B))
    if phi == "relu":  # keep away from the kink: finite differences need a smooth loss there
        params[0].data += 0.3 * torch.eye(6, dtype=torch.float64)
    assert torch.autograd.gradcheck(total_loss, params, eps=1e-6, atol=1e-6, rtol=1e-5)


def trained_J(seeds: list[int], epochs: int = 5) -> dict[int, torch.Tensor]:
    cfg = load_config(
        None,
        tiny_overrides(
            **{"seeds": str(seeds), "train.epochs": epochs, "model.noise": 0.2, "train.clip": 0.05}
        ),
    )
    trainer = Trainer(cfg, progress=False)
    trainer.run()
    return {s: trainer.net.J[i].detach().clone() for i, s in enumerate(seeds)}


def test_seed_trained_in_a_batch_equals_seed_trained_alone():
    alone = trained_J([3])[3]
    batched = trained_J([1, 3])
    torch.testing.assert_close(batched[3], alone, rtol=1e-6, atol=1e-7)
    assert not torch.allclose(batched[1], alone)


def test_gradient_clipping_is_per_seed():
    g = torch.zeros(2, 3, 3)
    g[0] = 100.0
    g[1] = 0.01
    p = torch.zeros(2, 3, 3, requires_grad=True)
    p.grad = g.clone()
    norms = clip_per_seed([p], 1.0)
    assert norms[0] == pytest.approx(300.0)
    assert p.grad[0].norm().item() == pytest.approx(1.0, rel=1e-5)
    torch.testing.assert_close(p.grad[1], g[1])  # the small seed is untouched


@pytest.mark.slow
def test_finite_per_seed_flags_each_seed_with_a_nan_or_inf():
    J = torch.zeros(4, 3, 3)
    J[1, 2, 0] = float("nan")
    J[3, 0, 1] = -float("inf")
    assert finite_per_seed(J).tolist() == [True, False, True, False]
    assert finite_per_seed(J[:1]).dtype == bool


def test_default_config_learns():
    cfg = load_config()
    trainer = Trainer(cfg, progress=False)
    first = trainer.evaluate().loss.numpy()
    final = trainer.run()["loss"]
    assert np.all(final < 0.5 * first), (first, final)


@pytest.mark.slow
def test_denoise_network_never_beats_the_kalman_optimum():
    cfg = load_config(
        None,
        [
            "seeds=[0, 1]",
            "model.N=64",
            "task.kind=denoise",
            "task.obs_noise=0.7",
            "train.epochs=150",
            "model.train=['J','w','B']",
            "train.lr=0.005",
            "task.duration=0.6",
        ],
    )
    trainer = Trainer(cfg, progress=False)
    trainer.run()
    gens = [seed_generator(100 + s, "eval") for s in cfg.seeds]
    inputs, targets = batch_for_seeds(cfg.task, cfg.model.dt, gens, 400)
    with torch.no_grad():
        out = forward(
            trainer.net, inputs.float(), targets.float(), cfg.model, cfg.train, washout_steps(cfg)
        )
    optimum = kalman_optimal_mse(cfg.task, cfg.model.dt)
    # per-seed MSE over 400 trials x ~100 correlated steps: a few % statistical error
    assert np.all(out.mse.numpy() > optimum * (1 - 0.05)), (out.mse, optimum)
    assert np.all(out.mse.numpy() < cfg.task.sigma_ou**2)  # it did learn something
    assert math.isfinite(optimum)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_trainer_graphs_its_step_and_tracks_the_cpu_trainer():
    # On CUDA the whole step (torch-op loops, inputs through B in the kernel, per-seed clip,
    # capturable Adam) replays from one graph; it must train as the CPU trainer (compiled
    # loops) does, up to float32 rounding. B is trained too, so dB is checked as well.
    overrides = [
        "seeds=2", "model.N=32", "task.batch=4", "task.duration=0.3", "train.epochs=6",
        "model.train=['J','w','B']", "model.noise=0.0",
    ]  # fmt: skip
    losses = {}
    for device in ("cpu", "cuda"):
        cfg = load_config(None, [*overrides, f"device={device}"])
        trainer = Trainer(cfg, progress=False)
        losses[device] = torch.stack([trainer.step()[0].cpu() for _ in range(6)]).numpy()
        if device == "cuda":
            assert trainer._graphed is not None and trainer._graphed.graphed
    np.testing.assert_allclose(losses["cuda"], losses["cpu"], rtol=2e-3, atol=1e-5)
