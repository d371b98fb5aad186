"""Write the analysis report of a run: report.html (offline), figures/*.png and summary.md.

`write_report` checks and loads only what the report shows, builds the figures (plots.py, one
HoloViews object per plot, styled for bokeh and matplotlib), the headline numbers (summary.py)
and the page (page.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

import holoviews as hv
import numpy as np
import xarray as xr

from rnnlab.analysis.report import figures as plots
from rnnlab.analysis.report import headline as summary
from rnnlab.analysis.report import inloop_figures, phase, verdict
from rnnlab.analysis.report import style as plot_style
from rnnlab.analysis.report.page import render_html
from rnnlab.data.ri import from_ri
from rnnlab.errors import ReportError

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
PNG_FIGURES = ("learning_curve", "spectrum", "outlier_re")
PNG_DPI = 150
MAX_FRAMES = 12


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


def figures(archive: xr.Dataset, results: xr.Dataset) -> dict[str, object]:
    """All report figures by name (the spectrum is a HoloMap over epoch)."""
    n = archive.sizes["eig"]
    figs = {
        "learning_curve": inloop_figures.learning_curve(archive, results),
        "trajectories": plots.trajectories(archive),
        "spectrum": inloop_figures.spectrum(archive, results, max_frames=MAX_FRAMES),
        "outlier_paths": plots.outlier_paths(results),
        "outlier_re": plots.outlier_re(results),
        "jacobian_re": plots.jacobian_re(results),
        "singular_values": inloop_figures.singular_values(results),
        "explained": plots.explained(results),
        "align_u": plots.alignment(results, "u", n_neuron=n, legend=False),
        "align_v": plots.alignment(results, "v", n_neuron=n),
        "block_J": inloop_figures.block_heatmaps(results, "block_J"),
        "block_dJ": inloop_figures.block_heatmaps(results, "block_dJ"),
    }
    figs.update(inloop_figures.extra_figures(archive, results))
    return figs


def png_object(obj: object) -> object:
    """What a PNG shows of a figure: a HoloMap's frame of the first member (if a kdim) at the
    last epoch, else the figure itself."""
    if isinstance(obj, hv.HoloMap):
        key = obj.keys()[0][:-1] + obj.keys()[-1][-1:] if obj.ndims > 1 else obj.keys()[-1]
        obj = obj[key]
    return obj


def write_pngs(figs: dict[str, object], figdir: Path) -> dict[str, Path]:
    """figures/*.png of the main plots through the matplotlib backend (spectrum: last epoch)."""
    shown = {name: png_object(figs[name]) for name in PNG_FIGURES}
    return plot_style.save_pngs(shown, figdir, PNG_DPI)


def write_report(
    archive: xr.Dataset,
    results: xr.Dataset,
    outdir: str | Path,
    *,
    png: bool = True,
    quiet: bool = False,
) -> dict[str, Path]:
    """Write report.html, summary.md and (if `png`) figures/*.png into `outdir`.

    Returns the written paths keyed by their path relative to `outdir`. A sweep's grid (swept
    settings as dims) adds the phase-diagram section (phase.py) and is otherwise shown flat.
    """
    grid = phase.phase_data(archive, results) if phase.is_grid(results) else None
    archive, results = phase.flat_inputs(archive, results)
    arch, res = prepare(archive, results)
    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise ReportError(f"output directory {outdir} exists and is not a directory")
    outdir.mkdir(parents=True, exist_ok=True)
    title = str(archive.attrs.get("title", "rnnlab run"))
    if png:  # before any figure is built: they are then styled for the PNGs too
        plot_style.use_matplotlib()
    head = summary.headline(arch, res)
    blocks = verdict.verdict(head, res)
    figs = figures(arch, res)
    phase_figs = phase.figures(grid) if grid is not None else {}
    extra = [phase.section(grid, phase_figs)] if grid is not None else []
    written = {}
    path = outdir / "summary.md"
    before = phase.markdown(grid) if grid is not None else ""
    text = summary.markdown(head, title, verdict.markdown(blocks), before)
    path.write_text(text, encoding="utf-8")
    written["summary.md"] = path
    path = outdir / "report.html"
    html = render_html(
        {**phase_figs, **figs}, head, dict(archive.attrs), title, verdict.html_block(blocks), extra
    )
    path.write_text(html, encoding="utf-8")
    written["report.html"] = path
    if png:
        written.update(write_pngs(figs, outdir / "figures"))
        written.update(plot_style.save_pngs(phase_figs, outdir / "figures", PNG_DPI))
    if not quiet:
        print(f"report: wrote {', '.join(written)} in {outdir}", file=sys.stderr)
    return written
