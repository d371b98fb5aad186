"""Sweeps: one run per point of a grid of config values, spread over a dask.distributed cluster.

The grid is the config's [sweep] section (`"model.g" = [0.5, 0.8]`), with `--grid key=v1,v2`
adding keys or replacing their values. `plan` validates every point and decides what each needs
before anything is created: a complete archive of the same config is skipped (checked with
`check_archive`, not just seen), an unfinished `.partial` of the same config is resumed from its
last checkpoint, anything else runs; a file of another config stops the sweep in one line.

Each point then trains on a worker (a LocalCluster of one-thread processes by default, any
scheduler address, or SLURM through dask-jobqueue) and writes its own archive, so only configs
and paths go through the scheduler. A failing point is retried once, then reported with its
values and its error line while the others go on; `SweepFailed` says how many failed. A worker
that dies has its point rescheduled by dask, and the new attempt resumes the `.partial` it left
(a killed process holds no lock). Every archive records its point (rnnlab.data.grid), so
`rnnlab.open_archive(OUTDIR)` gives the swept settings as dimensions.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import signal
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnnlab.config import (
    Config,
    Point,
    config_from_toml,
    get_dotted,
    load_config,
    point_config,
    split_grid,
    sweep_points,
    toml_value,
)
from rnnlab.data.paths import check_output_path, partial_path
from rnnlab.errors import ArchiveError, ConfigError, NotResumable, RnnlabError, SweepFailed

RUN, SKIP, RESUME, RESTART = "run", "skip", "resume", "restart"
MAX_NAME = 200  # file names stay well below NAME_MAX (255 bytes)
STOP_WAIT_S = 60.0  # how long an interrupted sweep waits for its runs to commit and stop


def parse_grid(items: list[str]) -> list[tuple[str, list[str]]]:
    """`section.key=v1,v2` -> [(key, [v1, v2])]; list values separated by `;`: `[1,2];[3]`."""
    return [split_grid(item) for item in items]


def grid_points(grid: list[tuple[str, list[str]]]) -> list[list[str]]:
    """Cartesian product of a parsed --grid as lists of `key=value` overrides."""
    import itertools

    keys = [key for key, _ in grid]
    return [
        [f"{k}={v}" for k, v in zip(keys, combo, strict=True)]
        for combo in itertools.product(*(values for _, values in grid))
    ]


def point_name(base: str, point: Point, names: dict[str, str] | None = None) -> str:
    """A file-safe run name for one grid point, e.g. `default_g=1.2_phi=relu`."""
    from rnnlab.data.grid import dim_names, file_label

    names = names or dim_names([key for key, _ in point])
    parts = [f"{names[key]}={file_label(value)}" for key, value in point]
    text = re.sub(r"[^A-Za-z0-9_.=+-]", "", "_".join([base, *parts]).replace(" ", ""))
    if len(text) > MAX_NAME:  # many keys: a readable prefix and a hash of the whole
        digest = hashlib.sha256(text.encode()).hexdigest()[:12]
        text = f"{text[: MAX_NAME - 13]}_{digest}"
    return text


def describe(point: Point) -> str:
    """`model.g=0.8 model.phi="relu"`: the point's values as overrides."""
    return " ".join(f"{key}={toml_value(value)}" for key, value in point) or "(base config)"


@dataclass(frozen=True)
class PlannedPoint:
    """One grid point: its values, run config, archive path, global attributes, and what the
    sweep does with it (RUN, SKIP a complete archive, RESUME a .partial, RESTART an unreadable
    .partial)."""

    index: int
    point: Point
    cfg: Config
    path: Path
    action: str
    attrs: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return describe(self.point)


def plan(
    config: str | Path | None,
    overrides: list[str],
    grid: list[str],
    outdir: str | Path,
    overwrite: bool = False,
) -> list[PlannedPoint]:
    """Every grid point validated, with its archive path and action; raises before any run."""
    from rnnlab.data.grid import dim_names, point_attrs, sweep_id

    base = load_config(config, overrides, grid)
    keys = [key for key, _ in base.sweep]
    names = dim_names(keys)
    ident = sweep_id(base, keys)
    outdir = Path(outdir).resolve()  # workers may start elsewhere: absolute paths only
    planned = []
    for index, point in enumerate(sweep_points(base)):
        name = point_name(base.name, point, names) if point else base.name
        cfg = point_config(base, point, name)
        path = outdir / f"{name}.nc"
        attrs = point_attrs(ident, point, base) if point else {}
        planned.append(PlannedPoint(index, point, cfg, path, _action(cfg, path, overwrite), attrs))
    paths = [p.path for p in planned]
    if len(set(paths)) != len(paths):
        raise ConfigError("two grid points map to the same archive name; use distinct values")
    return planned


def _action(cfg: Config, path: Path, overwrite: bool) -> str:
    """What a point needs, from what its output path holds; raises for a file of another
    config, a corrupt archive, or a path another run writes now."""
    from rnnlab.data.files import check_archive

    check_output_path(path, overwrite=True)  # writable, not a directory, no live writer
    if overwrite:
        return RUN
    if path.exists():
        attrs = check_archive(path)  # a readable, complete rnnlab archive
        _same_config(cfg, attrs, path)
        return SKIP
    partial = partial_path(path)
    if partial.exists():
        try:
            attrs = check_archive(partial, allow_incomplete=True)
        except ArchiveError:
            return RESTART  # unreadable: nothing in it to keep
        _same_config(cfg, attrs, partial)
        return RESUME
    return RUN


def _same_config(cfg: Config, attrs: dict[str, Any], path: Path) -> None:
    try:
        stored = config_from_toml(str(attrs.get("config", "")), str(path))
    except ConfigError:
        stored = None
    if stored != cfg:
        diff = _first_difference(cfg, stored)
        raise ArchiveError(
            f"{path} holds another config ({diff}); pass --overwrite to replace it, "
            "or choose another -o"
        )


def _first_difference(cfg: Config, other: Config | None) -> str:
    if other is None:
        return "no readable config"
    from rnnlab.config import dotted_keys

    for key in dotted_keys():
        a, b = get_dotted(cfg, key), get_dotted(other, key)
        if a != b:
            return f"{key} = {toml_value(b)}, the sweep has {toml_value(a)}"
    return "another schema"


# -- the worker side -----------------------------------------------------------------------------
_STOPPED: set[str] = set()  # sweeps (by token) this worker process was asked to stop


def run_point(
    cfg: Config, path: str, attrs: dict[str, str], overwrite: bool, command: str, token: str = ""
) -> tuple[str, str]:
    """Worker side: one point with a single torch thread (workers share the machine's cores).

    Resumes the point's `.partial` when there is one (left by a killed attempt or an earlier
    sweep), starts over when that cannot be resumed, and does nothing when the archive is
    already complete (an earlier attempt finished it). Returns (archive path, what was done):
    "ran", "resumed", "complete", or "stopped" when the sweep was interrupted (the run committed
    and checkpointed; not an error, so dask does not retry it).
    """
    import torch

    from rnnlab.errors import RunStopped
    from rnnlab.training.run import resume, run

    if token in _STOPPED:
        return path, "stopped"
    torch.set_num_threads(1)
    final = Path(path)
    try:
        if not overwrite and final.exists():
            return str(final), "complete"
        if not overwrite and partial_path(final).exists():
            try:
                return str(resume(final, progress=False)), "resumed"
            except NotResumable:  # unreadable or of another schema (a held lock still raises)
                overwrite = True  # start over
        out = run(cfg, final, overwrite=overwrite, progress=False, command=command, attrs=attrs)
        return str(out), "ran"
    except RunStopped:
        return path, "stopped"


def stop_runs(token: str) -> int:
    """Worker side: points of sweep `token` not started yet are skipped, and the runs of this
    worker commit, checkpoint and stop after their current epoch; returns how many were running."""
    from rnnlab.training.run import request_stop

    _STOPPED.add(token)
    return request_stop(signal.SIGTERM)


# -- the sweep -----------------------------------------------------------------------------------
def error_line(exc: BaseException) -> str:
    """`Type: first line of the message` (a KilledWorker or a traceback text stays one line)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def sweep(
    config: str | Path | None,
    overrides: list[str],
    grid: list[str],
    outdir: str | Path,
    *,
    scheduler: str | None = "local",
    n_workers: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    command: str = "",
    resources: dict[str, float] | None = None,
    cluster_options: dict[str, Any] | None = None,
    retries: int = 1,
    log: Callable[[str], None] | None = None,
) -> list[Path]:
    """Run every grid point on a dask.distributed cluster; return the archive paths (those
    skipped as complete included), sorted.

    `scheduler`: "local" (a LocalCluster of `n_workers` one-thread processes; None: 2, or one
    per share of the visible GPUs when `resources` has "GPU": runtime.make_client), "slurm"
    (dask-jobqueue, `cluster_options` passed to SLURMCluster) or an address. `resources`
    ({"GPU": 1}): what each point needs of a worker (local workers offer the same). A failing
    point is retried `retries` times, then reported through `log` (default: stderr) with its
    values and error line; SweepFailed is raised at the end when any point failed.
    """
    say = log or (lambda line: print(line, file=sys.stderr, flush=True))
    planned = plan(config, overrides, grid, outdir, overwrite)
    todo = [p for p in planned if p.action != SKIP]
    counts = {a: sum(p.action == a for p in planned) for a in (SKIP, RESUME, RESTART, RUN)}
    n = len(planned)
    if progress or counts[SKIP] or counts[RESUME] or counts[RESTART]:
        say(
            f"sweep: {n} point{'s' * (n != 1)}: {counts[SKIP]} complete (skipped), "
            f"{counts[RESUME]} to resume, {counts[RUN] + counts[RESTART]} to run"
        )
    done = [p.path for p in planned if p.action == SKIP]
    if not todo:
        return sorted(done)
    failed: list[str] = []
    client = _client(scheduler, n_workers, resources, cluster_options or {})
    try:
        _check_resources(client, scheduler, resources)
        done += _submit_all(client, todo, n, overwrite, command, resources, retries, progress,
                            say, failed)  # fmt: skip
    finally:
        _close(client)
    if failed:
        raise SweepFailed(
            f"{len(failed)} of {n} sweep points failed (listed above); {n - len(failed)} "
            f"finished in {Path(outdir)}; rerun the same command to retry the failed ones"
        )
    return sorted(done)


def _client(scheduler: str | None, n_workers: int | None, resources, options: dict[str, Any]):
    from rnnlab.runtime import make_client

    address = None if scheduler in (None, "local") else scheduler
    try:
        return make_client(
            address, n_workers=n_workers, resources=resources, quiet_failures=True, **options
        )
    except OSError as exc:  # an address nobody answers: one line
        raise RnnlabError(f"cannot reach the dask scheduler {scheduler}: {exc}") from None
    except (TypeError, ValueError) as exc:  # SLURMCluster's own checks (memory, a bad option)
        if scheduler != "slurm":
            raise
        line = error_line(exc).replace("``", "'")
        raise RnnlabError(f"cannot start the SLURM cluster ({line}); see --slurm") from None


def _check_resources(client: Any, scheduler: str | None, resources: dict[str, float] | None):
    """Refuse a sweep no worker could run: tasks that need resources no worker offers would
    wait forever. (SLURM workers start later; a cluster without workers yet is not checked.)"""
    if not resources or scheduler == "slurm":
        return
    workers = client.scheduler_info().get("workers", {})
    offered = [w.get("resources", {}) for w in workers.values()]
    if offered and not any(all(r.get(k, 0) >= v for k, v in resources.items()) for r in offered):
        want = ",".join(f"{k}={v:g}" for k, v in resources.items())
        raise RnnlabError(
            f"no worker of the cluster offers the resources {want}; start workers with "
            f"`dask worker --resources {want}` (or drop --resources)"
        )


def _submit_all(client, todo, n, overwrite, command, resources, retries, progress, say, failed):
    """Submit every point, collect them as they finish; on an interrupt, let the runs commit."""
    from distributed import as_completed
    from tqdm.auto import tqdm

    token = uuid.uuid4().hex  # names this sweep to its workers (stop_runs)
    futures = {}
    for p in todo:
        future = client.submit(
            run_point,
            p.cfg,
            str(p.path),
            p.attrs,
            overwrite or p.action == RESTART,
            command,
            token,
            key=f"rnnlab-point-{p.index}-{p.path.stem}-{time.time_ns()}",
            retries=retries,
            resources=resources,
        )
        futures[future.key] = (future, p)
    bar = tqdm(total=len(todo), disable=not progress, desc="sweep", unit="run", file=sys.stderr)
    done: list[Path] = []
    try:
        for future in as_completed([f for f, _ in futures.values()]):
            p = futures[future.key][1]
            try:
                done.append(Path(future.result()[0]))
            except Exception as exc:  # noqa: BLE001 (reported with its point; others go on)
                failed.append(p.label)
                tries = f" after {retries + 1} attempts" if retries else ""
                line = f"rnnlab: sweep point {p.index + 1}/{n} failed{tries} ({p.label}): "
                (bar.write if progress else say)(line + error_line(exc))
            bar.update(1)
    except BaseException:  # Ctrl-C, SIGTERM: the runs commit, checkpoint and stop
        bar.close()
        _stop(client, [f for f, _ in futures.values()], token)
        finished = len(done)
        say(
            f"rnnlab: sweep interrupted with {finished} of {len(todo)} runs finished; rerun "
            "the same command to continue (complete archives are skipped, the rest resumed)"
        )
        raise
    bar.close()
    return done


def _stop(client: Any, futures: list, token: str) -> None:
    """Ask every worker to stop this sweep's runs after their epoch (points not started are
    skipped) and wait a while until they have; a second interrupt stops the waiting."""
    deadline = time.monotonic() + STOP_WAIT_S
    try:
        while time.monotonic() < deadline and not all(f.done() for f in futures):
            client.run(stop_runs, token)  # again: a point may have started since
            time.sleep(0.5)
    except Exception:  # noqa: BLE001 (best effort: closing the cluster kills what is left)
        pass


def _close(client: Any) -> None:
    """Close the client, then its cluster (workers exit quickly: runtime's exit plugin). A
    cluster that was running before (an address) keeps running, without the sweep's plugin."""
    cluster = getattr(client, "cluster", None)
    if cluster is None:
        with contextlib.suppress(Exception):  # best effort: the scheduler may be gone
            client.unregister_worker_plugin("rnnlab-worker-setup")
    client.close()
    if cluster is not None:
        cluster.close()
