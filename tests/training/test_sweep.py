"""Sweeps: the grid and its validation, what a rerun does with each point, and real sweeps on a
LocalCluster: clean runs, a failing point, an interrupted sweep continued by a rerun.

(Sweeps through a scheduler address, with a killed worker: test_sweep_cluster.py.)
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run_cli, sweep_toml, tiny_overrides

import rnnlab
from rnnlab.config import load_config
from rnnlab.data.paths import partial_path
from rnnlab.data.reader import check_archive
from rnnlab.errors import ArchiveError, ConfigError
from rnnlab.training.sweep import (
    RESTART,
    RESUME,
    RUN,
    SKIP,
    grid_points,
    parse_grid,
    plan,
    point_name,
)

NANNY_WARNING = "still alive after"


def test_grid_is_a_cartesian_product():
    grid = parse_grid(["model.g=0.5,1.5", "task.kind=track,denoise,switch"])
    points = grid_points(grid)
    assert len(points) == 6
    assert ["model.g=0.5", "task.kind=switch"] in points
    assert parse_grid(["seeds=[0,1];[2]"]) == [("seeds", ["[0,1]", "[2]"])]


def test_every_point_is_validated_before_any_run(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match="model.N"):
        plan(None, tiny_overrides(), ["model.N=8,0"], out)
    with pytest.raises(ConfigError, match="--grid"):
        plan(None, [], ["model.g"], out)
    # a cross-key rule broken by one point only: the message names that point
    with pytest.raises(ConfigError, match=r"sweep point model.dt=0.06: .*smaller than model.tau"):
        plan(None, tiny_overrides(), ["model.dt=0.01,0.06"], out)
    bad = tmp_path / "bad.toml"
    bad.write_text('[sweep]\n"model.gg" = [0.5, 1.0]\n')
    with pytest.raises(ConfigError, match="did you mean 'model.g'"):
        plan(bad, [], [], out)
    bad.write_text('[sweep]\n"model.phi" = ["tanh", "sigmoid"]\n')
    with pytest.raises(ConfigError, match="'model.phi' has unknown value 'sigmoid'"):
        plan(bad, [], [], out)
    assert not out.exists()


def test_the_grid_comes_from_the_config_file_and_grid_adds_or_replaces(tmp_path):
    config = sweep_toml(tmp_path / "s.toml", ["model.g=0.5,0.8,1.2", "model.phi=tanh,relu"])
    points = plan(config, [], [], tmp_path / "out")
    assert len(points) == 6 and {p.action for p in points} == {RUN}
    assert points[1].path.name == "default_g=0.5_phi=relu.nc"
    assert points[1].cfg.model.phi == "relu" and points[1].cfg.sweep == ()
    assert points[1].cfg.name == "default_g=0.5_phi=relu"
    assert points[1].path.is_absolute()  # workers may run elsewhere
    points = plan(config, [], ["model.g=2", "train.lr=0.01,0.02"], tmp_path / "out")
    assert [p.label for p in points[:2]] == [
        'model.g=2.0 model.phi="tanh" train.lr=0.01',
        'model.g=2.0 model.phi="tanh" train.lr=0.02',
    ]
    assert len(points) == 4 and len({p.attrs["sweep_id"] for p in points}) == 1
    assert points[0].attrs["sweep_point"] == (
        '"model.g" = 2.0\n"model.phi" = "tanh"\n"train.lr" = 0.01\n'
    )


def test_point_names_are_file_safe_and_bounded():
    assert point_name("default", (("model.g", 0.5),)) == "default_g=0.5"
    assert point_name("x", (("model.train", ("J", "w")),)) == "x_train=J+w"
    assert point_name("x", (("model.lowrank.m", 2.0),)) == "x_lowrank_m=2.0"
    long = point_name("x" * 150, (("model.g", 0.5), ("task.kind", "track" * 20)))
    assert len(long) <= 200 and long.startswith("x" * 100)


def test_a_rerun_skips_complete_archives_resumes_partials_and_refuses_other_configs(
    phase_sweep, tmp_path
):
    """plan() on a copy of a finished sweep: what each point's files make it do."""
    out = tmp_path / "runs"
    shutil.copytree(phase_sweep.out, out)
    config = phase_sweep.config
    points = plan(config, [], [], out)
    assert [p.action for p in points] == [SKIP] * 4
    a, b, c = points[0].path, points[1].path, points[2].path
    a.rename(partial_path(a))  # a .partial (here: whole) of the same config: resumed
    b.unlink()  # nothing there: run
    partial_path(c).write_bytes(b"not netcdf")  # an unreadable .partial: started over
    c.unlink()
    assert [p.action for p in plan(config, [], [], out)] == [RESUME, RUN, RESTART, SKIP]
    assert [p.action for p in plan(config, [], [], out, overwrite=True)] == [RUN] * 4
    # another config over the same directory: one line naming the differing key, nothing done
    with pytest.raises(ArchiveError, match=r"holds another config \(train.epochs = 12, "):
        plan(config, ["train.epochs=13"], [], out)


def test_run_of_a_sweep_file_points_to_sweep(tmp_path):
    config = sweep_toml(tmp_path / "s.toml", ["model.g=0.5,1.5"])
    status, _, stderr = run_cli("run", str(config), "-o", str(tmp_path / "x.nc"))
    assert status == 2 and stderr.count("\n") == 1
    assert "has a [sweep] section (2 points): run it with `rnnlab sweep" in stderr
    assert list(tmp_path.iterdir()) == [config]
    with pytest.raises(ConfigError, match=r"\[sweep\] section"):
        rnnlab.run(load_config(config), tmp_path / "x.nc", progress=False)
    status, stdout, _ = run_cli("sweep", str(config), "--print-config", "--grid", "task.batch=2,3")
    assert status == 0
    assert stdout.endswith('"model.g" = [0.5, 1.5]\n"task.batch" = [2, 3]\n')


def test_bad_sweep_options_are_one_line(tmp_path):
    for args, needle in [
        (["--resources", "GPU"], "--resources expects NAME=AMOUNT"),
        (["--slurm", "cores=1"], "--slurm options need --scheduler slurm"),
        (["--workers", "0"], "--workers must be >= 1"),
        (["--grid", "model.N=8,-1"], "config key 'model.N' must be >= 1"),
    ]:
        status, _, stderr = run_cli("sweep", "-o", str(tmp_path / "o"), *args)
        assert status == 2 and stderr.startswith("rnnlab: error: ") and needle in stderr, args
        assert stderr.count("\n") == 1
    assert not (tmp_path / "o").exists()


# -- real sweeps on a LocalCluster ---------------------------------------------------------------
@pytest.mark.slow
def test_sweep_on_a_local_cluster_writes_one_archive_per_point(phase_sweep):
    assert phase_sweep.status == 0, phase_sweep.stderr
    assert NANNY_WARNING not in phase_sweep.stderr  # closed cleanly
    assert phase_sweep.stdout == f"wrote 4 archives to {phase_sweep.out}\n"
    names = sorted(p.name for p in phase_sweep.out.iterdir())
    assert names == [f"default_g={g}_phi={phi}.nc" for g in (0.5, 1.5) for phi in ("relu", "tanh")]
    attrs = check_archive(phase_sweep.out / "default_g=1.5_phi=relu.nc")
    assert attrs["sweep_point"] == '"model.g" = 1.5\n"model.phi" = "relu"\n'
    assert attrs["sweep_grid"] == '"model.g" = [0.5, 1.5]\n"model.phi" = ["tanh", "relu"]\n'
    assert len(attrs["sweep_id"]) == 16
    status, stdout, _ = run_cli("info", str(phase_sweep.out / "default_g=1.5_phi=relu.nc"))
    line = f'sweep point: model.g=1.5 model.phi="relu" (sweep {attrs["sweep_id"]})'
    assert status == 0 and line in stdout.splitlines()


@pytest.mark.slow
def test_rerunning_a_finished_sweep_skips_every_point(phase_sweep):
    before = {p.name: p.stat().st_mtime_ns for p in phase_sweep.out.iterdir()}
    t0 = time.monotonic()
    status, stdout, stderr = run_cli("sweep", str(phase_sweep.config), "-o", str(phase_sweep.out))
    assert status == 0, stderr
    assert "sweep: 4 points: 4 complete (skipped), 0 to resume, 0 to run" in stderr
    assert {p.name: p.stat().st_mtime_ns for p in phase_sweep.out.iterdir()} == before
    assert time.monotonic() - t0 < 60  # no cluster is started


@pytest.mark.slow
def test_a_failing_point_is_reported_and_the_others_finish(tmp_path):
    """lr = 1e30 makes every seed of its points diverge, which fails that run; a retry (from
    its checkpoint) fails again; the other points finish, the exit status is 1."""
    config = sweep_toml(tmp_path / "s.toml", ["train.lr=0.005,1e30", "model.phi=tanh,relu"])
    out = tmp_path / "runs"
    status, stdout, stderr = run_cli("sweep", str(config), "-o", str(out), "--quiet")
    assert status == 1, stderr
    lines = stderr.strip().splitlines()
    failed = [line for line in lines if "failed after 2 attempts" in line]
    assert len(failed) == 2 and all("train.lr=1e+30" in line for line in failed)
    assert 'sweep point 3/4 failed after 2 attempts (train.lr=1e+30 model.phi="tanh"): ' in stderr
    assert all(": AllSeedsDiverged: training diverged" in line for line in failed)
    assert lines[-1] == (
        f"rnnlab: error: 2 of 4 sweep points failed (listed above); 2 finished in {out}; "
        "rerun the same command to retry the failed ones"
    )
    assert NANNY_WARNING not in stderr and "Traceback" not in stderr
    for phi in ("tanh", "relu"):
        check_archive(out / f"default_lr=0.005_phi={phi}.nc")  # complete
        assert partial_path(out / f"default_lr=1e+30_phi={phi}.nc").exists()


def committed(partial) -> int:
    """Snapshots committed so far in a growing .partial (0 when it cannot be read yet)."""
    try:
        return check_archive(partial, allow_incomplete=True)["committed"]["epoch"]
    except ArchiveError:
        return 0


# `python -m rnnlab.cli` with Ctrl-C handled as in a terminal's foreground job, also where
# SIGINT is ignored and the ignoring is inherited (pytest run as a background job of a script)
CLI_WITH_CTRL_C = [
    sys.executable,
    "-c",
    "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "runpy.run_module('rnnlab.cli', run_name='__main__', alter_sys=True)",
]


def signal_state(pid: int) -> list[str]:
    """The blocked, ignored and caught signal masks of process `pid` (Linux; else nothing)."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return []
    return [line for line in lines if line.startswith(("SigBlk", "SigIgn", "SigCgt"))]


@pytest.mark.slow
def test_an_interrupted_sweep_is_continued_by_a_rerun(tmp_path):
    """Ctrl-C (SIGINT to the process group, as a terminal sends it) while points train: the
    runs commit and checkpoint, the sweep says how to continue; the same command then resumes
    them (same run ids) and runs the rest."""
    config = sweep_toml(
        tmp_path / "s.toml",
        ["model.g=0.5,0.9,1.3"],
        **{"train.epochs": 1500, "record.every": 25, "record.trajectories_every": 500},
    )
    out = tmp_path / "runs"
    args = [*CLI_WITH_CTRL_C, "sweep", str(config), "-o", str(out), "--quiet"]
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            partials = list(out.glob("*.partial")) if out.exists() else []
            if len(partials) == 2 and all(committed(p) >= 2 for p in partials):
                break
            assert proc.poll() is None, proc.communicate()[1]
            time.sleep(0.2)
        # what the sweep's process was doing when interrupted (said if the interrupt is lost)
        at_signal = [f"{p.name}: {committed(p)} snapshots" for p in partials]
        at_signal += signal_state(proc.pid)
        os.killpg(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, f"{stderr}\nat the interrupt: {at_signal}"
    assert "sweep interrupted with 0 of 3 runs finished; rerun the same command" in stderr
    assert NANNY_WARNING not in stderr
    stopped = sorted(out.glob("*.partial"))
    assert len(stopped) == 2
    ids = {p: check_archive(p, allow_incomplete=True)["run_id"] for p in stopped}
    for p in stopped:
        assert p.with_name(p.name.replace(".partial", ".ckpt")).exists()  # stopped cleanly
    status, _, stderr = run_cli("sweep", str(config), "-o", str(out))
    assert status == 0, stderr
    assert "sweep: 3 points: 0 complete (skipped), 2 to resume, 1 to run" in stderr
    assert sorted(p.name for p in out.iterdir()) == [f"default_g={g}.nc" for g in (0.5, 0.9, 1.3)]
    for p, run_id in ids.items():
        final = p.with_name(p.name.removesuffix(".partial"))
        assert check_archive(final)["run_id"] == run_id  # resumed, not started over


@pytest.mark.slow
def test_local_workers_offer_resources_and_each_sees_one_gpu():
    """The GPU plumbing without a GPU: workers of a local cluster offer the resources the
    points ask for, and each is pinned to one of the GPUs (CUDA_VISIBLE_DEVICES)."""
    from rnnlab.runtime import make_client
    from rnnlab.training.sweep import _close

    client = make_client(None, n_workers=2, resources={"GPU": 1}, gpus=["3", "5"])
    try:
        seen = client.run(lambda: os.environ.get("CUDA_VISIBLE_DEVICES"))
        assert sorted(seen.values()) == ["3", "5"]
        workers = client.scheduler_info()["workers"].values()
        assert [w["resources"] for w in workers] == [{"GPU": 1}, {"GPU": 1}]
        future = client.submit(os.getpid, resources={"GPU": 1}, pure=False)
        assert future.result(timeout=60) > 0
    finally:
        _close(client)
