"""The command line end to end, in subprocesses, as a user runs it."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tomllib

import netCDF4
import numpy as np
import pytest
import xarray as xr
from conftest import tiny_overrides

from rnnlab.config import SECTIONS, dotted_keys, keys_of


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
    # the last snapshot re-simulated on fresh trials: MSE ± SE per seed, as evaluate gives it
    assert "on 400 fresh trials per seed (epoch 12, mean ± SE" in info.stdout
    import rnnlab as rl
    import rnnlab.analysis as ra

    ev = ra.compute(ra.evaluate(rl.open_archive(out), n_trials=400), progress=False)
    for i in range(2):
        mse, se = float(ev.mse[i, 0]), float(ev.mse_se[i, 0])
        assert f"seed    {i}: mse {mse:.4g} ± {se:.2g}" in info.stdout
    quick = rnnlab("info", str(out), "--no-eval")
    assert quick.returncode == 0 and "fresh trials" not in quick.stdout
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
    lines = res.stdout.splitlines()
    keys = [i for i, line in enumerate(lines) if line and line[0] not in "#["]
    assert len(keys) == len(dotted_keys())  # every key printed, each after its comment
    assert all(lines[i - 1].startswith("# ") for i in keys)
    docs = {f.metadata["doc"] for cls in SECTIONS.values() for f in keys_of(cls)}
    assert {lines[i - 1][2:] for i in keys} == docs
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
        (["--set", "model.g=inf"], "config key 'model.g' must be a finite number, got inf"),
        (["--set", "model.lowrank.m=nan"], "'model.lowrank.m' must be a finite number"),
        (["--set", "model.gg=1"], "unknown config key 'model.gg'; did you mean 'model.g'?"),
        (["--set", "model.N=100000000"], "of memory (model.N=100000000, 4 seeds)"),
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


def test_info_quiet_when_its_reader_goes_away(tiny_archive, tmp_path):
    """`rnnlab info ... | head -1`: no BrokenPipeError traceback, exit status 141 (SIGPIPE)."""
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(100):  # about 9 kB of listing: more than the one-page pipe below holds
        (folder / f"a{i:02d}.nc").symlink_to(tiny_archive)
    cmd = [sys.executable, "-m", "rnnlab.cli", "info"]
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)  # the listing cannot all fit: it waits
    listing = subprocess.Popen([*cmd, str(folder)], stdout=write_end, stderr=subprocess.PIPE)
    os.close(write_end)
    first = b""
    while not first.endswith(b"\n"):  # the first line only, byte by byte
        byte = os.read(read_end, 1)
        assert byte, f"no listing: {listing.communicate()[1].decode()}"
        first += byte
    assert first.decode() == f"{folder}: 100 archives\n"
    os.close(read_end)  # what `head -1` does after its first line
    assert listing.wait(timeout=300) == 141
    assert listing.stderr.read() == b""
    one = subprocess.Popen(
        [*cmd, str(tiny_archive)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    one.stdout.close()  # gone before the first line: `| head -0`
    assert one.wait(timeout=300) == 141
    assert one.stderr.read() == b""


def partial_copy(archive, path):
    """A copy of a finished archive marked unfinished, as a killed run leaves it."""
    shutil.copy(archive, path)
    with netCDF4.Dataset(path, "a") as nc:
        nc.setncattr("complete", np.int32(0))
    return path


def test_info_lists_a_directory_one_line_per_archive(tiny_archive, tmp_path):
    shutil.copy(tiny_archive, tmp_path / "a.nc")
    shutil.copy(tiny_archive, tmp_path / "b.nc")
    partial_copy(tiny_archive, tmp_path / "c.nc.partial")
    xr.Dataset({"x": ("a", [1.0])}).to_netcdf(tmp_path / "foreign.nc")
    (tmp_path / "notes.txt").write_text("not an archive, not listed")
    res = rnnlab("info", str(tmp_path))
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == f"{tmp_path}: 4 archives"
    assert lines[1].split() == [
        "archive", "status", "seeds", "N", "task", "epoch", "loss", "mse/opt", "size"
    ]  # fmt: skip
    rows = {line.split()[0]: line.split() for line in lines[2:-1]}
    assert list(rows) == ["a.nc", "b.nc", "c.nc.partial", "foreign.nc"]
    assert rows["a.nc"][1:6] == ["complete", "2", "24", "denoise", "12/12"]
    assert rows["a.nc"][1:] == rows["b.nc"][1:]
    assert rows["c.nc.partial"][1] == "INCOMPLETE"
    assert "not an rnnlab archive" in " ".join(rows["foreign.nc"])
    assert lines[-1].startswith("total: 4 archives (1 incomplete, 1 unreadable), 6 seeds, ")
    single = rnnlab("info", str(tmp_path / "a.nc"))
    assert single.returncode == 0 and "dims:" in single.stdout  # a file: the full description
    empty = tmp_path / "empty"
    empty.mkdir()
    res = rnnlab("info", str(empty))
    assert res.returncode == 2 and res.stdout == ""
    assert (
        res.stderr.strip()
        == f"rnnlab: error: no archives (*.nc or *.nc.partial) in directory {empty}"
    )


def test_the_cli_trial_default_is_the_analysis_default():
    """--trials of `info` and `analyze` defaults to inloop.DEFAULT_TRIALS (a literal in cli.py,
    which must not import the analysis to parse its arguments)."""
    from rnnlab.analysis.inloop import DEFAULT_TRIALS
    from rnnlab.cli import FRESH_TRIALS, build_parser

    assert FRESH_TRIALS == DEFAULT_TRIALS
    parser = build_parser()
    assert parser.parse_args(["info", "x.nc"]).trials == DEFAULT_TRIALS
    assert parser.parse_args(["analyze", "x.nc"]).trials == DEFAULT_TRIALS
