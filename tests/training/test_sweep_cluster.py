"""Sweeps through a running cluster: a real `dask scheduler` and two `dask worker` processes
started here on 127.0.0.1 (each offering GPU=1, in its own working directory), reached through
`rnnlab sweep --scheduler tcp://...`; and a worker killed in the middle of a sweep."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run_cli, sweep_toml

from rnnlab.data.paths import lock_path, partial_path
from rnnlab.data.reader import check_archive
from rnnlab.errors import ArchiveError

pytestmark = pytest.mark.slow


def _start(kind: str, *args: str, cwd: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", f"distributed.cli.dask_{kind}", *args]
    with open(cwd / f"{kind}.log", "ab") as log:  # the child keeps its own copy
        return subprocess.Popen(cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """tcp://127.0.0.1:PORT of a scheduler with two one-thread workers offering GPU=1."""
    from distributed import Client

    home = tmp_path_factory.mktemp("cluster")
    info = home / "scheduler.json"
    procs = [
        _start("scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
               "--scheduler-file", str(info), cwd=home)
    ]  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not info.exists() or not info.read_text().strip():
            assert time.monotonic() < deadline, (home / "scheduler.log").read_text()
            time.sleep(0.2)
        address = json.loads(info.read_text())["address"]
        for k in range(2):
            cwd = home / f"worker{k}"  # not the test's directory: paths must be absolute
            cwd.mkdir()
            procs.append(
                _start("worker", address, "--nthreads", "1", "--nworkers", "1",
                       "--no-dashboard", "--resources", "GPU=1", "--name", f"w{k}", cwd=cwd)
            )  # fmt: skip
        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
        yield address
    finally:
        for proc in reversed(procs):
            _stop(proc)


def test_sweep_through_a_scheduler_address(cluster, tmp_path):
    config = sweep_toml(tmp_path / "s.toml", ["model.g=0.5,1.5", "task.kind=track,denoise"])
    out = tmp_path / "runs"
    status, stdout, stderr = run_cli(
        "sweep", str(config), "-o", str(out), "--scheduler", cluster, "--resources", "GPU=1"
    )
    assert status == 0, stderr
    assert stdout == f"wrote 4 archives to {out}\n"
    for path in sorted(out.iterdir()):
        check_archive(path)  # complete, written by the workers straight into `out`
    import rnnlab

    ds = rnnlab.open_archive(out)
    assert ds["mse"].dims[:3] == ("g", "kind", "seed")
    assert ds["kind"].values.tolist() == ["track", "denoise"]
    ds.close()


def test_resources_no_worker_offers_are_refused(cluster, tmp_path):
    config = sweep_toml(tmp_path / "s.toml", ["model.g=0.5,1.5"])
    status, _, stderr = run_cli(
        "sweep", str(config), "-o", str(tmp_path / "runs"), "--scheduler", cluster,
        "--resources", "TPU=1",
    )  # fmt: skip
    last = stderr.strip().splitlines()[-1]  # after the plan's "sweep: 2 points: ..."
    assert status == 2 and stderr.count("rnnlab: error") == 1
    assert last.startswith("rnnlab: error: no worker of the cluster offers the resources TPU=1")
    assert not (tmp_path / "runs").exists()


def test_unreachable_scheduler_is_one_line():
    import dask

    from rnnlab.errors import RnnlabError
    from rnnlab.training.sweep import _client

    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        with pytest.raises(RnnlabError, match="cannot reach the dask scheduler tcp://127.0.0.1:9"):
            _client("tcp://127.0.0.1:9", 2, None, {})


def _writer(out: Path) -> tuple[Path, int] | None:
    """A .partial being written with at least 2 committed snapshots, and its writer's pid."""
    for partial in out.glob("*.partial") if out.exists() else []:
        final = partial.with_name(partial.name.removesuffix(".partial"))
        try:
            pid = int(lock_path(final).read_text().strip() or 0)
            committed = check_archive(partial, allow_incomplete=True)["committed"]["epoch"]
        except (OSError, ValueError, ArchiveError):
            continue
        if pid and committed >= 2:
            return partial, pid
    return None


def test_a_killed_worker_does_not_lose_its_point(cluster, tmp_path):
    """SIGKILL the worker process writing a point: dask gives the point to a worker again, the
    new attempt resumes the .partial it left (same run id), and every archive completes."""
    config = sweep_toml(
        tmp_path / "s.toml",
        ["model.g=0.5,0.9,1.3"],
        **{"train.epochs": 1500, "record.every": 25, "record.trajectories_every": 500},
    )
    out = tmp_path / "runs"
    args = [sys.executable, "-m", "rnnlab.cli", "sweep", str(config), "-o", str(out), "--quiet",
            "--scheduler", cluster]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        found = None
        while found is None:
            assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
            found = _writer(out)
            time.sleep(0.1)
        partial, pid = found
        run_id = check_archive(partial, allow_incomplete=True)["run_id"]
        os.kill(pid, signal.SIGKILL)
        _, stderr = proc.communicate(timeout=400)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert sorted(p.name for p in out.iterdir()) == [f"default_g={g}.nc" for g in (0.5, 0.9, 1.3)]
    final = partial.with_name(partial.name.removesuffix(".partial"))
    attrs = check_archive(final)
    assert attrs["run_id"] == run_id  # resumed from its checkpoint, not started over
    assert not partial_path(final).exists()


FAKE_SBATCH = """#!/bin/sh
# sbatch: run the job script here, in its own process group (the job id), and say so like SLURM
job="$FAKE_SLURM_DIR/job$$"
cp "$1" "$job.sh"
setsid sh "$job.sh" > "$job.log" 2>&1 < /dev/null &
echo "Submitted batch job $!"
"""
FAKE_SCANCEL = """#!/bin/sh
kill -TERM -- "-$1" 2>/dev/null
exit 0
"""


def test_sweep_on_slurm_through_dask_jobqueue(tmp_path):
    """`--scheduler slurm` with `sbatch`/`scancel` stand-ins that start the job scripts on this
    machine: dask-jobqueue submits one job per worker (with the points' resources), the sweep
    runs on them and cancels them at the end."""
    pytest.importorskip("dask_jobqueue")
    fake = tmp_path / "bin"
    fake.mkdir()
    for name, text in (("sbatch", FAKE_SBATCH), ("scancel", FAKE_SCANCEL)):
        (fake / name).write_text(text)
        (fake / name).chmod(0o755)
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}", "FAKE_SLURM_DIR": str(jobs)}
    config = sweep_toml(tmp_path / "s.toml", ["model.g=0.5,1.5"])
    out = tmp_path / "runs"
    status, stdout, stderr = run_cli(
        "sweep", str(config), "-o", str(out), "--scheduler", "slurm", "--workers", "2",
        "--resources", "GPU=1", "--slurm", "cores=1", "--slurm", "memory=2GB",
        "--slurm", "walltime=00:10:00", "--slurm", f"local_directory={tmp_path}",
        env=env,
    )  # fmt: skip
    assert status == 0, stderr
    assert stdout == f"wrote 2 archives to {out}\n"
    for path in sorted(out.iterdir()):
        check_archive(path)
    scripts = sorted(jobs.glob("*.sh"))
    assert len(scripts) == 2
    text = scripts[0].read_text()
    assert "#SBATCH -t 00:10:00" in text and "--resources GPU=1" in text
    assert "distributed.cli.dask_worker" in text


def test_slurm_cluster_options_are_checked_in_one_line(tmp_path):
    pytest.importorskip("dask_jobqueue")
    config = sweep_toml(tmp_path / "s.toml", ["model.g=0.5,1.5"])
    for extra, needle in [
        ([], "You must specify how much cores and memory"),
        (["--slurm", "cores=1", "--slurm", "memory=1GB", "--slurm", "bogus=3"], "'bogus'"),
    ]:
        status, _, stderr = run_cli(
            "sweep", str(config), "-o", str(tmp_path / "runs"), "--scheduler", "slurm", *extra
        )
        last = stderr.strip().splitlines()[-1]
        assert status == 2 and last.startswith("rnnlab: error: cannot start the SLURM cluster")
        assert needle in last
    assert not (tmp_path / "runs").exists()
