"""The study's controls: the regularisers alone (task loss off) and shuffled targets."""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr
from conftest import tiny_overrides

from rnnlab.config import load_config
from rnnlab.network.rng import seed_generator
from rnnlab.network.tasks import batch_for_seeds, kalman_optimal_mse
from rnnlab.training.run import run
from rnnlab.training.trainer import Trainer


def test_regularisers_alone_shrink_J0_by_the_closed_form(tmp_path):
    """MSE weight 0, lambda_w only, SGD: J_t = (1 - 2 lr lambda_w)^t J0 exactly (in float32)."""
    lam, lr, epochs = 0.5, 0.1, 8
    extra = {
        "train.task_weight": 0.0, "train.lambda_w": lam, "train.optimizer": "sgd",
        "train.lr": lr, "train.clip": 0, "train.epochs": epochs, "model.N": 10,
    }  # fmt: skip
    path = run(load_config(None, tiny_overrides(**extra)), tmp_path / "reg.nc", progress=False)
    with xr.open_dataset(path) as ds:
        for i, epoch in enumerate(ds.epoch.values):
            expected = (1 - 2 * lr * lam) ** int(epoch) * ds.J0.values
            np.testing.assert_allclose(ds.J.isel(epoch=i).values, expected, rtol=1e-5, atol=1e-7)
        reg = lam * (ds.J.isel(epoch=-1) ** 2).sum(("neuron", "neuron_pre")).values
        np.testing.assert_allclose(ds.loss.isel(epoch=-1).values, reg, rtol=1e-5)


def test_shuffled_targets_are_each_batch_permuted_and_the_optimum_is_the_variance():
    extra = {"record.n_eval_trials": 6}
    cfg = load_config(None, tiny_overrides(**extra, **{"task.shuffle_targets": "true"}))
    plain = load_config(None, tiny_overrides(**extra))
    assert kalman_optimal_mse(cfg.task, cfg.model.dt) == cfg.task.sigma_ou**2
    trainer = Trainer(cfg, progress=False)
    gens = [seed_generator(s, "eval") for s in cfg.seeds]
    _, targets = batch_for_seeds(plain.task, plain.model.dt, gens, cfg.record.n_eval_trials)
    got = trainer.eval_targets.double()
    for s in range(len(cfg.seeds)):  # the same trials' targets, in another order
        rows = {tuple(np.round(t.numpy().ravel(), 5)) for t in targets[s].float().double()}
        assert {tuple(np.round(t.numpy().ravel(), 5)) for t in got[s]} == rows
    inputs, shuffled, _ = trainer.batch()
    assert not torch.equal(trainer.eval_targets, Trainer(plain, progress=False).eval_targets)
    assert shuffled.shape[:2] == inputs.shape[:2]
