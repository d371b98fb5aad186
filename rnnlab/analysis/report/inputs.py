"""What the report reads, checked and loaded without the plotting libraries.

`report_inputs` turns an archive and its analysis results (lazy or loaded, flat or a sweep's
grid) into the small loaded datasets every figure and table is made from. The plotting stack
(HoloViews, bokeh, matplotlib) is not imported here, so `rnnlab analyze` can check and load its
inputs while the report's plotting processes are still importing it (report/workers.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from rnnlab.analysis.report import headline
from rnnlab.data.grid import GRID_KEYS, flatten, grid_dims
from rnnlab.data.ri import from_ri
from rnnlab.errors import ReportError
from rnnlab.runtime import no_client_lookup

REQUIRED_ARCHIVE = tuple(
    "loss mse loss_curve mse_curve mse_optimal eigvals eval_target traj_output".split()
)
REQUIRED_RESULTS = tuple(
    "m explained_cum sv align_u align_v outlier outlier_meanfield outlier_exact n_outliers "
    "max_re_jac crossing_epoch bulk_radius block_J block_dJ".split()
)
OPTIONAL_RESULTS = ("kappa", "cluster")
# the analyses that put the network back in the loop (rnnlab.analysis.inloop_parts)
INLOOP_RESULTS = tuple(
    "mse mse_se excess mse_optimal loss loss_se loss_diff_se loss_split functional_rank "
    "functional_rank_split shuffle_loss shuffle_loss_se shuffle_lost lambda_task ladder_exact "
    "ladder_meanfield ladder_from_rank ladder_from_rank_meanfield ladder_tol ladder_measured "
    "n_fixed_points n_stable n_unstable fp_u1 fp_stable".split()
)


def is_grid(results: xr.Dataset) -> bool:
    """Whether `results` (or an archive) is a sweep's grid."""
    return bool(grid_dims(results))


def flat_inputs(archive: xr.Dataset, results: xr.Dataset) -> tuple[xr.Dataset, xr.Dataset]:
    """The archive and results in the flat layout the per-seed report reads: one member per
    (point, seed) that has an archive; the task optimum one number (NaN when points differ)."""
    archive, results = flatten(archive), flatten(results)
    if "mse_optimal" in archive and archive["mse_optimal"].dims:
        values = np.unique(np.asarray(archive["mse_optimal"].values, float))
        values = values[np.isfinite(values)]
        archive = archive.assign(mse_optimal=float(values[0]) if values.size == 1 else np.nan)
    return archive, results


def phase_data(archive: xr.Dataset, results: xr.Dataset) -> xr.Dataset:
    """The phase metrics on the grid (swept dims, then seed), loaded."""
    dims = grid_dims(results)
    last = from_ri(results[["sv", "n_outliers", "outlier", "crossing_epoch"]]).isel(epoch=-1)
    mse = archive["mse"].isel(epoch=-1, drop=True).load()
    optimum = archive["mse_optimal"].load()
    present = np.isfinite(mse.values)  # cells with an archive
    known = bool(np.all(optimum.broadcast_like(mse).values[present] > 0))  # (NaN: False)
    out = xr.Dataset(
        {
            "mse_ratio": mse / optimum if known else mse,
            "rank90": headline.rank_needed(last["sv"].load()),
            "re_out": headline._leading_re(last["outlier"].load()),
            "n_outliers": last["n_outliers"].load().astype(float),
            "crossing_epoch": results["crossing_epoch"].load(),
        }
    ).reset_coords(drop=True)
    out = xr.merge(xr.broadcast(*out.data_vars.values()))  # every metric on the whole grid
    out = out.assign_coords({d: results[d].values for d in dims}).transpose(*dims, "seed", ...)
    out.attrs.update(
        dims=dims,
        ratio=known,
        keys=dict(zip(dims, str(results.attrs.get(GRID_KEYS, "")).split(), strict=False)),
    )
    return out


def _check(ds: xr.Dataset, names, what: str) -> None:
    if not isinstance(ds, xr.Dataset):
        raise ReportError(f"{what} must be an xarray.Dataset, got {type(ds).__name__}")
    missing = [n for n in names if n not in ds.variables]
    if missing:
        raise ReportError(f"{what} lacks variable(s) {', '.join(missing)}")


def _member_keys(ds: xr.Dataset, with_run: bool) -> list[tuple]:
    seeds = ds["seed"].values.tolist()
    if not with_run:
        return [(s,) for s in seeds]
    return list(zip(ds["run"].values.tolist(), seeds, strict=True))


def member_positions(archive: xr.Dataset, results: xr.Dataset) -> np.ndarray:
    """Position in `archive` of each member of `results`, matched by (run, seed) when both carry
    `run` labels, else by seed; positional because seed values repeat across runs."""
    with_run = all("run" in ds.coords and ds["run"].dims == ("seed",) for ds in (archive, results))
    have, want = _member_keys(archive, with_run), _member_keys(results, with_run)
    if have == want:
        return np.arange(len(want))
    where: dict[tuple, list[int]] = {}
    for i, key in enumerate(have):
        where.setdefault(key, []).append(i)

    def name(key: tuple) -> str:
        return f"{key[0]} seed {key[1]}" if with_run else f"seed {key[0]}"

    unknown = [name(k) for k in want if k not in where]
    if unknown:
        raise ReportError(f"results has {', '.join(unknown)} that the archive lacks")
    repeated = [name(k) for k in want if len(where[k]) > 1]
    if repeated:
        raise ReportError(
            f"archive has {repeated[0]} more than once; pass the results computed from it"
        )
    return np.array([where[k][0] for k in want])


def prepare(archive: xr.Dataset, results: xr.Dataset) -> tuple[xr.Dataset, xr.Dataset]:
    """Check inputs, keep only what the report uses, make complex values complex and load them."""
    _check(archive, REQUIRED_ARCHIVE, "archive")
    _check(results, REQUIRED_RESULTS, "results")
    if results.sizes.get("epoch", 0) == 0 or results.sizes.get("seed", 0) == 0:
        raise ReportError("results has no seed or no epoch entries")
    pos = member_positions(archive, results)
    epochs = np.setdiff1d(results["epoch"].values, archive["epoch"].values)
    if epochs.size:
        raise ReportError(f"results has epoch(s) {epochs.tolist()} that the archive lacks")
    if archive.sizes.get("traj_epoch", 0) == 0:
        raise ReportError("archive has no stored trajectories (traj_epoch is empty)")
    optional = [n for n in ("diverged_epoch",) if n in archive.variables]
    arch = archive[[*REQUIRED_ARCHIVE, *optional]].isel(seed=pos)
    arch = arch.isel(traj_epoch=[-1])
    optional = OPTIONAL_RESULTS + INLOOP_RESULTS
    keep = [n for n in REQUIRED_RESULTS + optional if n in results.variables]
    res = results[keep]
    arch, res = from_ri(arch).load(), from_ri(res).load()
    # g (the bulk radius of theory) for every seed: the archive's g, else the analysis' bulk edge
    g = archive["g"].isel(seed=pos) if "g" in archive.variables else res["bulk_radius"]
    g = ("seed", np.asarray(g.values, dtype=float))
    arch, res = arch.assign_coords(g=g), res.assign_coords(g=g)
    arch["eigvals"] = arch["eigvals"].astype(complex)
    return arch, res


def report_inputs(
    archive: xr.Dataset, results: xr.Dataset
) -> tuple[xr.Dataset | None, xr.Dataset, xr.Dataset]:
    """(phase data of a sweep's grid or None, archive, results) as the report reads them: the
    grid's phase metrics (`phase_data`), then the flat members (`flat_inputs`), checked and
    loaded (`prepare`)."""
    with no_client_lookup():  # loads small slices of the archive (dask, when opened lazily)
        grid = phase_data(archive, results) if is_grid(results) else None
        archive, results = flat_inputs(archive, results)
        return (grid, *prepare(archive, results))


def prepare_outdir(outdir: str | Path) -> Path:
    """`outdir` as a Path, created (with parents) unless it is something other than a directory:
    ReportError then."""
    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise ReportError(f"output directory {outdir} exists and is not a directory")
    outdir.mkdir(parents=True, exist_ok=True)
    return outdir
