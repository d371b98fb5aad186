"""`rnnlab info`: a human summary of one archive (dims, variables, config, final losses), or a
one-line-per-archive listing of a directory of archives."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import netCDF4
import numpy as np

from rnnlab.config import config_from_toml, toml_value
from rnnlab.data.files import check_archive
from rnnlab.data.grid import read_point
from rnnlab.data.paths import human_bytes
from rnnlab.errors import ArchiveError

PARTIAL = ".partial"  # an unfinished run's archive: runs/x.nc.partial


def describe(path: Path, fresh: dict | None = None) -> str:
    """Dims, variables, a config summary and final losses of an archive (complete or not).

    `fresh`: the last snapshot re-simulated on fresh trials (rnnlab.analysis.inloop.
    evaluate_file: epoch, n_trials, seconds, per-seed mse, mse_se, mse_optimal), shown as
    MSE ± SE before the few fixed evaluation trials' numbers."""
    attrs = check_archive(path, allow_incomplete=True)
    cfg = config_from_toml(str(attrs["config"]), str(path))
    import xarray as xr  # only now that it is an archive: a bad path costs no import

    with xr.open_dataset(path, engine="netcdf4") as ds:
        committed = attrs["committed"]
        ds = ds.isel({d: slice(0, n) for d, n in committed.items()})  # what is committed
        lines = [f"{path}  ({attrs['rnnlab_schema']}, {_status(path, attrs, cfg)})"]
        lines.append(f"created {attrs.get('created')} by: {attrs.get('command')}")
        lines.append(
            "versions: "
            + ", ".join(
                f"{k.removesuffix('_version')} {attrs[k]}" for k in attrs if k.endswith("_version")
            )
        )
        lines.append("dims: " + ", ".join(f"{d}={n}" for d, n in ds.sizes.items()))
        lines.append("variables:")
        for name, var in ds.data_vars.items():
            lines.append(f"  {name:14s} ({', '.join(var.dims)})  {var.attrs.get('long_name', '')}")
        m, t, tr = cfg.model, cfg.task, cfg.train
        lines.append(
            f"config: name={cfg.name} seeds={list(cfg.seeds)} N={m.N} phi={m.phi} g={m.g} "
            f"b={m.b} m={m.lowrank.m} task={t.kind} epochs={tr.epochs} "
            f"optimizer={tr.optimizer} lr={tr.lr}"
        )
        point = read_point(attrs)
        if point is not None:
            values = " ".join(f"{k}={toml_value(v)}" for k, v in point.items())
            lines.append(f"sweep point: {values} (sweep {attrs['sweep_id']})")
        if ds.sizes.get("epoch", 0):
            last = int(ds["epoch"].values[-1])
            optimum = float(ds["mse_optimal"].values)
            lines.append(f"final (epoch {last}); optimal mse = {optimum:.4g}")
            if fresh is not None:
                lines += _fresh_lines(ds["seed"].values, fresh)
            n_eval = ds.sizes.get("trial", 0)
            lines.append(
                f"  on the {n_eval} fixed evaluation trials"
                + (" (few: their MSE scatters by tens of %)" if n_eval < 100 else "")
                + ":"
            )
            first_loss = ds["loss"].isel(epoch=0).values
            for i, seed in enumerate(ds["seed"].values):
                loss = ds["loss"].isel(epoch=-1).values[i]
                mse = ds["mse"].isel(epoch=-1).values[i]
                lines.append(
                    f"  seed {int(seed):4d}: loss {loss:.4g} (start {first_loss[i]:.4g}),"
                    f" mse {mse:.4g}"
                )
            if "diverged_epoch" in ds:
                div = ds["diverged_epoch"].values
                bad = [
                    f"seed {int(s)} at epoch {int(e)}"
                    for s, e in zip(ds["seed"].values, div, strict=True)
                    if np.isfinite(e)
                ]
                lines.append("diverged (frozen): " + ", ".join(bad) if bad else "no seed diverged")
            if "crossing_epoch" in ds:
                crossing = ds["crossing_epoch"].values
                shown = ", ".join("never" if np.isnan(c) else f"{c:.1f}" for c in crossing)
                lines.append(f"crossing epoch (Jacobian at origin) of max Re lambda: {shown}")
        else:
            lines.append("no snapshot written yet")
    return "\n".join(lines)


def _fresh_lines(seeds, fresh: dict) -> list[str]:
    """Per-seed MSE ± SE on fresh trials and its excess over the optimum (in % of it)."""
    out = [
        f"  on {fresh['n_trials']} fresh trials per seed (epoch {fresh['epoch']}, mean ± SE, "
        f"excess over the optimum; simulated in {fresh['seconds']:.1f} s):"
    ]
    for i, seed in enumerate(seeds):
        mse, se, opt = fresh["mse"][i], fresh["mse_se"][i], fresh["mse_optimal"][i]
        line = f"  seed {int(seed):4d}: mse {mse:.4g} ± {se:.2g}"
        if np.isfinite(opt) and opt > 0:
            z = (mse - opt) / se if se > 0 else np.nan
            line += f"  ({100 * (mse - opt) / opt:+.1f}% ± {100 * se / opt:.1f}%"
            line += ", below the optimum by more than 2 SE)" if z < -2 else ")"
        out.append(line)
    return out


def _status(path: Path, attrs: dict, cfg: dict) -> str:
    """complete, running (pid), or stopped/killed with what is committed and how to go on."""
    if int(attrs.get("complete", 0)):
        return "complete"
    from rnnlab.data.paths import final_path, lock_holder

    snaps = attrs["committed"].get("epoch", 0)
    curve = attrs["committed"].get("curve_epoch", 0)
    done = f"{snaps} snapshots and {curve} of {cfg.train.epochs} epochs committed"
    holder = lock_holder(final_path(path))
    if holder is not None:
        who = f" (pid {holder})" if holder > 0 else ""
        return f"INCOMPLETE: running{who}; {done}"
    return f"INCOMPLETE: stopped or killed; {done}; continue with: rnnlab run --resume {path}"


@dataclass
class Summary:
    """One archive of a directory listing: a line of `rnnlab info DIR`."""

    path: Path
    size: int
    error: str = ""
    complete: bool = False
    seeds: int = 0
    n: int = 0
    task: str = ""
    epoch: int | None = None  # epoch of the last committed snapshot
    epochs: int = 0  # train.epochs of the run
    loss: float = float("nan")  # mean over seeds at that snapshot
    mse_ratio: float = float("nan")  # mean mse over the task's optimum


def archives_in(directory: Path) -> list[Path]:
    """The archives of a directory, sorted: *.nc and unfinished runs' *.nc.partial."""
    found = sorted([*directory.glob("*.nc"), *directory.glob(f"*.nc{PARTIAL}")])
    found = [p for p in found if p.is_file()]
    if not found:
        raise ArchiveError(f"no archives (*.nc or *.nc.partial) in directory {directory}")
    return found


def summarize(path: Path) -> Summary:
    """The facts of one listing line (an unreadable or foreign file gets its reason)."""
    summary = Summary(path=path, size=path.stat().st_size)
    try:
        attrs = check_archive(path, allow_incomplete=True)
        cfg = config_from_toml(str(attrs["config"]), str(path))
        with netCDF4.Dataset(path, "r") as nc:
            _last_snapshot(nc, summary)
    except ArchiveError as exc:
        summary.error = str(exc).removeprefix(f"{path} ")
        return summary
    except (OSError, KeyError, ValueError, tomllib.TOMLDecodeError) as exc:
        summary.error = f"unreadable: {exc}"
        return summary
    summary.complete = bool(int(attrs.get("complete", 0)))
    summary.seeds = len(cfg.seeds)
    summary.n = cfg.model.N
    summary.task = cfg.task.kind
    summary.epochs = cfg.train.epochs
    return summary


def _last_snapshot(nc: netCDF4.Dataset, summary: Summary) -> None:
    """Fill epoch, loss and mse ratio from the last committed snapshot (epoch marker >= 0)."""
    epochs = np.asarray(nc.variables["epoch"][:], dtype=np.int64)
    committed = np.flatnonzero(epochs >= 0)
    if not committed.size:
        return
    last = int(committed[-1])
    summary.epoch = int(epochs[last])
    summary.loss = float(np.nanmean(np.asarray(nc.variables["loss"][:, last], dtype=float)))
    mse = float(np.nanmean(np.asarray(nc.variables["mse"][:, last], dtype=float)))
    optimum = float(np.asarray(nc.variables["mse_optimal"][...]))
    summary.mse_ratio = mse / optimum if optimum > 0 else float("nan")


def _row(s: Summary, width: int) -> str:
    name = f"{s.path.name:{width}s}"
    if s.error:
        return f"{name}  {s.error}"
    status = "complete" if s.complete else "INCOMPLETE"
    epoch = "-" if s.epoch is None else str(s.epoch)
    return (
        f"{name}  {status:10s} {s.seeds:5d} {s.n:6d}  {s.task:8s}{f'{epoch}/{s.epochs}':>11s}"
        f" {s.loss:10.4g} {s.mse_ratio:8.3g} {human_bytes(s.size):>10s}"
    )


def describe_dir(directory: Path) -> Iterator[str]:
    """`rnnlab info DIR`: a header, one line per archive (status, seeds, N, task, last snapshot
    epoch of train.epochs, mean loss and mse/optimum there, file size) and a totals line.
    Lines come as each archive is read; an empty directory raises ArchiveError first."""
    paths = archives_in(directory)
    width = max(len("archive"), *(len(p.name) for p in paths))
    yield f"{directory}: {len(paths)} archive{'s' if len(paths) != 1 else ''}"
    yield (
        f"{'archive':{width}s}  {'status':10s} {'seeds':>5s} {'N':>6s}  {'task':8s}"
        f"{'epoch':>11s} {'loss':>10s} {'mse/opt':>8s} {'size':>10s}"
    )  # loss, mse/opt: on the archive's fixed evaluation trials (the totals line says so)
    summaries = []
    for path in paths:
        summaries.append(summarize(path))
        yield _row(summaries[-1], width)
    yield _totals(summaries)


def _totals(summaries: list[Summary]) -> str:
    readable = [s for s in summaries if not s.error]
    notes = [
        f"{n} {label}"
        for n, label in (
            (sum(not s.complete for s in readable), "incomplete"),
            (len(summaries) - len(readable), "unreadable"),
        )
        if n
    ]
    size = human_bytes(sum(s.size for s in summaries))
    return (
        f"total: {len(summaries)} archive{'s' if len(summaries) != 1 else ''}"
        f"{' (' + ', '.join(notes) + ')' if notes else ''}, "
        f"{sum(s.seeds for s in readable)} seeds, {size}; loss and mse/opt on the fixed "
        "evaluation trials (few: `rnnlab info FILE` re-simulates on fresh trials)"
    )
