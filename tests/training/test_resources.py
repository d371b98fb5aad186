"""Memory and archive-size estimates, and the refusal of runs that cannot fit in memory."""

from __future__ import annotations

import subprocess
import sys

import netCDF4
import pytest
from conftest import tiny_overrides

from rnnlab.config import load_config
from rnnlab.errors import ConfigError
from rnnlab.training import resources
from rnnlab.training.resources import (
    check_resources,
    estimate_archive_bytes,
    estimate_memory,
    n_records,
)

GB = 10**9


def test_memory_estimate_scales_with_the_matrices_and_the_bptt_workspace():
    small = estimate_memory(load_config())
    assert 10**6 < small < GB  # the default run: well under a gigabyte
    n2 = estimate_memory(load_config(None, ["model.N=2048"]))
    n4 = estimate_memory(load_config(None, ["model.N=4096"]))
    assert 3.5 < (n4 - small) / (n2 - small) < 4.5  # S*N*N terms dominate
    long = estimate_memory(load_config(None, ["task.duration=100"]))
    longer = estimate_memory(load_config(None, ["task.duration=200"]))
    assert 1.9 < (longer - small) / (long - small) < 2.1  # S*batch*T*N terms dominate
    sgd = estimate_memory(load_config(None, ["model.N=4096", "train.optimizer=sgd"]))
    assert sgd < n4  # no Adam moments
    big = load_config(None, ["model.N=4096"])
    assert estimate_memory(big, "cuda") < estimate_memory(big)  # parameters live on the GPU


def test_memory_refusal_is_one_line_naming_the_sizes(monkeypatch):
    monkeypatch.setattr(resources, "available_memory", lambda: 20 * GB)
    cfg = load_config(None, ["model.N=100000000", "device=cpu"])
    with pytest.raises(ConfigError) as info:
        check_resources(cfg)
    message = str(info.value)
    assert message.startswith("this run needs about ")
    assert "of memory (model.N=100000000, 4 seeds); 20.0 GB is available" in message
    assert "\n" not in message
    check_resources(load_config(None, ["device=cpu"]))  # the default run fits


def test_memory_refusal_names_what_dominates(monkeypatch):
    monkeypatch.setattr(resources, "available_memory", lambda: GB)
    cfg = load_config(None, ["task.duration=2000", "device=cpu"])
    with pytest.raises(ConfigError, match=r"task\.batch=16, 200000 steps per trial\)"):
        check_resources(cfg)


def test_only_a_clear_excess_is_refused(monkeypatch):
    cfg = load_config(None, ["model.N=4096", "device=cpu"])
    need = estimate_memory(cfg)
    check_resources(cfg, available=need)  # fits
    check_resources(cfg, available=int(need / 1.2))  # a little over: the estimate is rough
    with pytest.raises(ConfigError, match="needs about"):
        check_resources(cfg, available=need // 3)
    monkeypatch.setattr(resources, "available_memory", lambda: None)
    check_resources(load_config(None, ["model.N=100000000"]))  # unknown: no refusal


def test_available_memory_reads_meminfo_and_falls_back_to_sysconf(tmp_path, monkeypatch):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       32000000 kB\nMemAvailable:   20000000 kB\n")
    monkeypatch.setattr(resources, "MEMINFO", meminfo)
    monkeypatch.setattr(resources, "_cgroup_available", lambda: None)
    monkeypatch.setattr(resources, "_sysconf_available", lambda: 7)
    assert resources.available_memory() == 20000000 * 1024
    monkeypatch.setattr(resources, "_cgroup_available", lambda: 5 * GB)  # a container's limit
    assert resources.available_memory() == 5 * GB
    monkeypatch.setattr(resources, "_cgroup_available", lambda: None)
    meminfo.write_text("MemTotal:       32000000 kB\n")  # an old kernel: no MemAvailable
    assert resources.available_memory() == 7
    monkeypatch.setattr(resources, "MEMINFO", tmp_path / "missing")
    assert resources.available_memory() == 7
    assert resources.available_memory() is not None  # and on this machine, something


def test_resources_import_no_torch():
    code = "import sys, rnnlab.training.resources; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("epochs", [1, 7, 12, 20, 21])
@pytest.mark.parametrize("every", [1, 4, 5, 20, 50])
def test_record_count_matches_the_trainers_schedule(epochs, every):
    assert n_records(epochs, every) == len(sorted(set(range(0, epochs + 1, every)) | {epochs}))


def test_archive_estimate_matches_a_real_archive(tiny_archive):
    cfg = load_config(None, tiny_overrides(**{"model.lowrank.m": "0.0"}))
    with netCDF4.Dataset(tiny_archive) as nc:
        stored = sum(v.size * v.dtype.itemsize for v in nc.variables.values())
    estimate = estimate_archive_bytes(cfg)
    assert 0.8 < estimate / stored < 1.25
    one = estimate_archive_bytes(load_config(None, [*tiny_overrides(), "record.store=J"]))
    dj = len(cfg.seeds) * n_records(12, 4) * cfg.model.N**2 * 4  # float32
    assert estimate_archive_bytes(load_config(None, tiny_overrides())) - one == dj
