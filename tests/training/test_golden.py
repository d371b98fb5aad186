"""Every number a run produces stays the same across refactors: two configs (between them tanh
and ReLU, denoise and switch, noise, an imposed m u v^T, trained B, SGD and Adam, regularisers,
a diverging seed) are run and compared with archives written before (tests/data/golden_*.nc,
made by the code of commit ac8b5b5 on this machine: torch 2.13.0+cpu, numba 0.68.1)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from rnnlab.config import load_config
from rnnlab.training.run import run

DATA = Path(__file__).resolve().parents[1] / "data"
COMMON = [
    "model.N=16",
    "task.duration=0.3",
    "task.washout=0.05",
    "task.batch=4",
    "train.epochs=9",
    "record.every=4",
    "record.trajectories_every=5",
    "record.n_eval_trials=2",
    "record.track_k=3",
]
GOLDEN = {
    "tanh_denoise": [
        "seeds=[0, 3]",
        "model.noise=0.1",
        "model.lowrank.m=1.5",
        "model.w_init=random",
        "model.train=['J', 'w', 'B']",
        "train.lambda_w=1e-3",
    ],
    "relu_switch": [
        "seeds=[0, 1, 2]",
        "model.phi=relu",
        "model.g=2.0",
        "task.kind=switch",
        "task.n_stimuli=2",
        "train.optimizer=sgd",
        "train.lr=0.05",
        "train.clip=0",
        "train.lambda_bal=0.1",
        "record.store=J",
    ],
}


def golden_config(name: str):
    return load_config(None, [*COMMON, *GOLDEN[name]])


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_a_run_reproduces_its_golden_archive(tmp_path, name):
    path = run(golden_config(name), tmp_path / "now.nc", progress=False)
    with xr.open_dataset(DATA / f"golden_{name}.nc") as old, xr.open_dataset(path) as new:
        assert sorted(old.variables) == sorted(new.variables)
        # keys added since keep the old keys' values (and their defaults change nothing)
        old_cfg, new_cfg = tomllib.loads(old.attrs["config"]), tomllib.loads(new.attrs["config"])
        for section, keys in old_cfg.items():
            if isinstance(keys, dict):
                for key, value in keys.items():
                    assert new_cfg[section][key] == value, (section, key)
            else:
                assert new_cfg[section] == keys, section
        for var in old.variables:
            if var == "run":  # name:run_id, unique per run by design
                continue
            a, b = old[var].values, new[var].values
            assert a.dtype == b.dtype and a.shape == b.shape, var
            if a.dtype.kind in "fc":
                # bitwise here; float32 rounding allowed where MKL picks another kernel
                np.testing.assert_allclose(a, b, rtol=2e-6, atol=1e-7, err_msg=var)
            else:
                np.testing.assert_array_equal(a, b, err_msg=var)
