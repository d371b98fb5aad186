"""Sweeps: one run per point of a grid of config overrides, spread over a dask.distributed cluster.

Every grid point is validated and its archive path checked before any run starts; each run then
trains on a worker (a LocalCluster by default, any scheduler address, or SLURM through
dask-jobqueue) and writes its own archive, so `rnnlab analyze OUTDIR` reads the whole sweep.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

from rnnlab.config import Config, load_config
from rnnlab.data.paths import check_output_path
from rnnlab.errors import ConfigError, RnnlabError


def parse_grid(items: list[str]) -> list[tuple[str, list[str]]]:
    """`section.key=v1,v2` -> [(key, [v1, v2])]; list values separated by `;`: `[1,2];[3]`."""
    grid = []
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not key.strip() or not values.strip():
            raise ConfigError(f"--grid expects section.key=v1,v2,..., got '{item}'")
        split = values.split(";") if values.strip().startswith("[") else values.split(",")
        grid.append((key.strip(), [v.strip() for v in split if v.strip()]))
    return grid


def grid_points(grid: list[tuple[str, list[str]]]) -> list[list[str]]:
    """Cartesian product of the grid as lists of `key=value` overrides."""
    keys = [key for key, _ in grid]
    return [
        [f"{k}={v}" for k, v in zip(keys, combo, strict=True)]
        for combo in itertools.product(*(values for _, values in grid))
    ]


def point_name(base: str, overrides: list[str]) -> str:
    """A file-safe run name for one grid point, e.g. default_model.g=1.2."""
    parts = [
        f"{key.split('.')[-1]}={value}" for key, _, value in (o.partition("=") for o in overrides)
    ]
    text = "_".join([base, *parts])
    return re.sub(r"[^A-Za-z0-9_.=+-]", "", text.replace(" ", ""))


def plan(
    config: str | Path | None,
    overrides: list[str],
    grid: list[str],
    outdir: str | Path,
    overwrite: bool = False,
) -> list[tuple[dict[str, Any], Path]]:
    """Validated (config, archive path) pairs for every grid point; raises before any run."""
    points = grid_points(parse_grid(grid)) if grid else [[]]
    base = load_config(config, overrides)
    planned = []
    for point in points:
        name = point_name(base.name, point)
        cfg = load_config(config, [*overrides, *point, f'name="{name}"'])
        planned.append((cfg, check_output_path(Path(outdir) / f"{name}.nc", overwrite)))
    names = [p for _, p in planned]
    if len(set(names)) != len(names):
        raise ConfigError("two grid points map to the same archive name; use distinct values")
    return planned


def _run_point(cfg: Config, path: str, overwrite: bool, command: str) -> str:
    """Worker side: one run with a single torch thread (workers share the machine's cores)."""
    import torch

    from rnnlab.training.run import run

    torch.set_num_threads(1)
    return str(run(cfg, path, overwrite=overwrite, progress=False, command=command))


def sweep(
    config: str | Path | None,
    overrides: list[str],
    grid: list[str],
    outdir: str | Path,
    *,
    scheduler: str | None = "local",
    n_workers: int = 2,
    overwrite: bool = False,
    progress: bool = True,
    command: str = "",
) -> list[Path]:
    """Run every grid point on a dask.distributed cluster; return the archive paths."""
    from distributed import as_completed
    from tqdm.auto import tqdm

    from rnnlab.runtime import make_client

    planned = plan(config, overrides, grid, outdir, overwrite)
    client = make_client(None if scheduler == "local" else scheduler, n_workers=n_workers)
    try:
        futures = [
            client.submit(_run_point, cfg, str(path), overwrite, command, pure=False)
            for cfg, path in planned
        ]
        bar = tqdm(total=len(futures), disable=not progress, desc="sweep", unit="run")
        done, failed = [], []
        point = {f.key: path for f, (_, path) in zip(futures, planned, strict=True)}
        for future in as_completed(futures):  # a failing point never stops the others
            try:
                done.append(Path(future.result()))
            except Exception as exc:  # noqa: BLE001 (reported with its point)
                failed.append(f"{point[future.key].name}: {type(exc).__name__}: {exc}")
            bar.update(1)
        bar.close()
        if failed:
            raise RnnlabError(
                f"{len(failed)} of {len(futures)} sweep points failed (the others finished): "
                + "; ".join(failed)
            )
        return sorted(done)
    finally:
        cluster = getattr(client, "cluster", None)
        client.close()
        if cluster is not None:
            cluster.close()
