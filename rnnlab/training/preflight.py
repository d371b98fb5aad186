"""Every check a run makes before it loads anything heavy (torch, netCDF): the output path, the
memory it needs, the disk space its archive needs. The command line calls `preflight` first, so
a bad path or a run that cannot fit is refused in a fraction of a second."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rnnlab.config import Config, n_steps
from rnnlab.data.layout import Layout
from rnnlab.data.paths import check_disk_space, check_output_path, partial_path
from rnnlab.training.resources import check_resources


def preflight(cfg: Config, output: str | Path | None, overwrite: bool) -> Path:
    """The checked output path of a run of `cfg`; one-line errors for a bad path, too little
    memory or too little disk, before anything is created."""
    path = check_output_path(Path(output) if output is not None else default_output(cfg), overwrite)
    check_resources(cfg)
    check_space(cfg, path)
    return path


def default_output(cfg: Config) -> Path:
    """runs/<name>.nc"""
    return Path("runs") / f"{cfg.name}.nc"


def archive_layout(cfg: Config) -> tuple[Layout, bool]:
    """The archive's fixed layout, known from the config alone, and whether u, v are stored."""
    sizes = {
        "input_names": list(cfg.task.inputs),
        "output_names": list(cfg.task.outputs),
        "time": (np.arange(n_steps(cfg)) + 1) * cfg.model.dt,
    }
    return Layout.of(cfg, sizes), cfg.model.lowrank.m != 0.0


def check_space(cfg: Config, path: Path) -> None:
    """Refuse a run whose archive (and its compressed copy) cannot fit on the disk."""
    layout, imposed = archive_layout(cfg)
    needed = layout.nbytes(cfg, imposed)
    if cfg.record.compression == "zlib" or cfg.record.significant_digits:
        needed *= 2  # the .partial and the compressed copy exist side by side at the end
    sizes = layout.sizes
    params = sizes["seed"] * sizes["neuron"] * (sizes["neuron"] + sizes["input"] + sizes["output"])
    needed += 2 * 4 * params * 4  # checkpoint (parameters, Adam's two moments), old and new
    check_disk_space(partial_path(path), needed)
