"""Every check a run makes before it loads anything heavy (torch, netCDF): the output path, the
memory it needs, the disk space its archive needs. The command line calls `preflight` first, so
a bad path or a run that cannot fit is refused in a fraction of a second."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rnnlab.config import Config, config_from_toml, n_steps, sweep_points
from rnnlab.data.layout import Layout
from rnnlab.data.paths import (
    check_disk_space,
    check_output_path,
    final_path,
    lock_holder,
    partial_path,
)
from rnnlab.errors import ArchiveError, ConfigError, NotResumable
from rnnlab.training.resources import check_resources


def preflight(
    cfg: Config, output: str | Path | None, overwrite: bool, source: str | Path | None = None
) -> Path:
    """The checked output path of a run of `cfg`; one-line errors for a [sweep] config, a bad
    path, too little memory or too little disk, before anything is created. `source`: the
    config file, named in the message about a [sweep] section."""
    if cfg.sweep:
        name = "the config" if source is None else str(source)
        raise ConfigError(
            f"{name} has a [sweep] section ({len(sweep_points(cfg))} points): run it with "
            f"`rnnlab sweep {source or 'CONFIG'} -o DIR`, or remove the section to run its base "
            "config"
        )
    path = check_output_path(Path(output) if output is not None else default_output(cfg), overwrite)
    check_resources(cfg)
    check_space(cfg, path)
    return path


def preflight_resume(path: str | Path) -> tuple[Path, Path, dict[str, Any], Config]:
    """(final path, .partial, its attributes, its config) of an unfinished run that can be
    resumed now; one-line errors otherwise (complete, missing, being written, unreadable)."""
    final = final_path(path)
    partial = partial_path(final)
    if not partial.exists():
        if final.exists():
            raise NotResumable(f"{final} is complete; there is nothing to resume")
        raise ArchiveError(f"no unfinished run to resume at {path} (no {partial})")
    holder = lock_holder(final)
    if holder is not None:
        who = f" (pid {holder})" if holder > 0 else ""
        raise ArchiveError(f"another rnnlab run{who} is writing {final}; it cannot be resumed now")
    attrs = _partial_attrs(partial)
    cfg = config_from_toml(str(attrs["config"]), str(partial))
    check_resources(cfg)
    return final, partial, attrs, cfg


def _partial_attrs(partial: Path) -> dict[str, Any]:
    """Global attributes of an unfinished archive, checked to be resumable."""
    import netCDF4

    from rnnlab.data.schema import SCHEMA_VERSION

    try:
        with netCDF4.Dataset(partial) as nc:
            attrs = {k: nc.getncattr(k) for k in nc.ncattrs()}
    except OSError as exc:
        raise NotResumable(
            f"cannot resume: {partial} is unreadable ({exc.strerror or exc}); "
            "start over with --overwrite"
        ) from None
    if attrs.get("rnnlab_schema") != SCHEMA_VERSION or "config" not in attrs:
        raise NotResumable(
            f"cannot resume {partial}: written by another rnnlab archive schema "
            f"({attrs.get('rnnlab_schema')}); start over with --overwrite"
        )
    return attrs


def default_output(cfg: Config) -> Path:
    """runs/<name>.nc"""
    return Path("runs") / f"{cfg.name}.nc"


def trial_times(cfg: Config) -> np.ndarray:
    """Times (s) of the evaluation steps: step k ends at (k + 1) * dt."""
    return (np.arange(n_steps(cfg)) + 1) * cfg.model.dt


def archive_layout(cfg: Config) -> tuple[Layout, bool]:
    """The archive's fixed layout, known from the config alone, and whether u, v are stored."""
    sizes = {
        "input_names": list(cfg.task.inputs),
        "output_names": list(cfg.task.outputs),
        "time": trial_times(cfg),
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
