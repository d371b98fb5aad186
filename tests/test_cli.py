"""The command line end to end, in subprocesses, as a user runs it."""

from __future__ import annotations

import subprocess
import sys
import tomllib

import pytest
import xarray as xr
from conftest import tiny_overrides


def rnnlab(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rnnlab.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def sets(**extra: object) -> list[str]:
    return sum((["--set", o] for o in tiny_overrides(**extra)), [])


def test_run_info_and_plain_xarray(tmp_path):
    out = tmp_path / "runs" / "g12.nc"
    res = rnnlab("run", *sets(), "--set", "model.g=1.2", "-o", str(out))
    assert res.returncode == 0, res.stderr
    assert "train" in res.stderr and "epoch" in res.stderr  # the progress bar
    with xr.open_dataset(out) as ds:
        assert tomllib.loads(ds.attrs["config"])["model"]["g"] == 1.2
        assert "--set model.g=1.2" in ds.attrs["command"]
    info = rnnlab("info", str(out))
    assert info.returncode == 0, info.stderr
    for needle in ("dims:", "seed=2", "eigvals", "g=1.2", "seed    0: loss", "complete"):
        assert needle in info.stdout
    again = rnnlab("run", *sets(), "-o", str(out))
    assert again.returncode == 2 and "--overwrite" in again.stderr
    quiet = rnnlab("run", *sets(), "-o", str(out), "--overwrite", "--quiet")
    assert quiet.returncode == 0 and quiet.stderr == "" and quiet.stdout == ""


def test_print_config_is_complete_commented_toml(tmp_path):
    res = rnnlab("run", "--print-config", "--set", "model.N=77")
    assert res.returncode == 0
    cfg = tomllib.loads(res.stdout)
    assert cfg["model"]["N"] == 77 and "lowrank" in cfg["model"]
    assert "# number of neurons" in res.stdout
    path = tmp_path / "c.toml"
    path.write_text(res.stdout)
    again = rnnlab("run", str(path), "--print-config")
    assert tomllib.loads(again.stdout) == cfg


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--set", "model.N=0"], "model.N"),
        (["--set", "model.dt=0.5"], "model.dt"),
        (["--set", "model.phi=softplus"], "model.phi"),
        (["--set", "task.kind=juggle"], "task.kind"),
        (["--set", "seeds=[]"], "seeds"),
        (["--set", "train.nope=1"], "train.nope"),
        (["missing.toml"], "missing.toml"),
        (["-o", "/proc/forbidden/x.nc"], "not a writable directory"),
        (["-o", "notes.txt/x.nc"], "not a writable directory"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_touches_nothing(tmp_path, args, needle):
    if "notes.txt/x.nc" in args:
        (tmp_path / "notes.txt").write_text("a file, not a directory")
    before = sorted(tmp_path.iterdir())
    res = rnnlab("run", *args, cwd=tmp_path)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rnnlab: error:") and needle in lines[0]
    assert sorted(tmp_path.iterdir()) == before  # no runs/ dir, no partial file


def test_info_and_analyze_refuse_foreign_files(tmp_path):
    foreign = tmp_path / "f.nc"
    xr.Dataset({"x": ("a", [1.0])}).to_netcdf(foreign)
    for cmd in (["info", str(foreign)], ["analyze", str(foreign), "-o", str(tmp_path / "r")]):
        res = rnnlab(*cmd)
        assert res.returncode == 2 and "not an rnnlab archive" in res.stderr
        assert len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_diverging_run_fails_in_one_line_and_keeps_the_partial_archive(tmp_path):
    out = tmp_path / "nan.nc"
    bad = {"model.phi": "linear", "model.g": 60, "train.clip": 0, "train.optimizer": "sgd"}
    res = rnnlab("run", *sets(**bad), "-o", str(out), "--quiet")
    assert res.returncode != 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "not finite" in lines[0] and "seeds [0, 1]" in lines[0]
    assert not out.exists() and (tmp_path / "nan.nc.partial").exists()
