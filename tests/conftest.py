"""Shared fixtures: tiny configs and archives that train in seconds on 2 cores."""

from __future__ import annotations

import os

import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))


def tiny_overrides(**extra: object) -> list[str]:
    """`--set` overrides of a network that trains in about a second."""
    base = {
        "seeds": "[0, 1]",
        "model.N": "24",
        "task.duration": "0.3",
        "task.washout": "0.05",
        "task.batch": "4",
        "train.epochs": "12",
        "record.every": "4",
        "record.trajectories_every": "6",
        "record.n_eval_trials": "2",
        "record.track_k": "3",
    }
    base.update({k: str(v) for k, v in extra.items()})
    return [f"{k}={v}" for k, v in base.items()]


@pytest.fixture
def tiny_cfg():
    from rnnlab.config import load_config

    return load_config(None, tiny_overrides())


@pytest.fixture(scope="session")
def tiny_archive(tmp_path_factory):
    """A real archive written by a real (tiny) run."""
    from rnnlab.config import load_config
    from rnnlab.training.run import run

    cfg = load_config(None, tiny_overrides(**{"model.lowrank.m": "0.0"}))
    return run(cfg, tmp_path_factory.mktemp("arch") / "tiny.nc", progress=False)


@pytest.fixture(scope="session")
def twin_runs(tmp_path_factory):
    """Two real tiny runs with the same name and the same seeds (0, 1), in one directory:
    a.nc, and b.nc with another learning rate (so their numbers differ)."""
    from rnnlab.config import load_config
    from rnnlab.training.run import run

    folder = tmp_path_factory.mktemp("twins")
    a = run(load_config(None, tiny_overrides()), folder / "a.nc", progress=False)
    b_cfg = load_config(None, tiny_overrides(**{"train.lr": "0.02"}))
    return a, run(b_cfg, folder / "b.nc", progress=False)


def run_cli(*args: str, timeout: float = 600, **kwargs):
    """`python -m rnnlab.cli ARGS` in a subprocess: (exit status, stdout, stderr)."""
    import subprocess
    import sys

    res = subprocess.run(
        [sys.executable, "-m", "rnnlab.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )
    return res.returncode, res.stdout, res.stderr


def sweep_toml(path, grid: list[str], **extra: object):
    """A tiny config file with a [sweep] section (its `grid` items as --grid would give)."""
    from rnnlab.config import load_config, to_toml

    path.write_text(to_toml(load_config(None, tiny_overrides(**extra), grid)))
    return path


@pytest.fixture(scope="session")
def phase_sweep(tmp_path_factory):
    """A real sweep, g x phi (2 x 2 points, seeds 0 and 1), run by the command line on its
    default LocalCluster of 2 worker processes. Tests must not change its directory."""
    from types import SimpleNamespace

    folder = tmp_path_factory.mktemp("phase")
    config = sweep_toml(folder / "sweep.toml", ["model.g=0.5,1.5", "model.phi=tanh,relu"])
    out = folder / "runs"
    status, stdout, stderr = run_cli("sweep", str(config), "-o", str(out), "--workers", "2")
    return SimpleNamespace(config=config, out=out, status=status, stdout=stdout, stderr=stderr)


def python_json(code: str, timeout: float = 600) -> dict:
    """Run `code` in a fresh interpreter (no threads yet, so rnnlab may fork there); the JSON
    object it prints on its last line."""
    import json
    import subprocess
    import sys

    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout
    )
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


def benchmark_module(name: str):
    """benchmarks/<name>.py as a module (the benchmarks are scripts, not a package)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
