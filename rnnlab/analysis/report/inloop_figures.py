"""Report figures of the analyses that put the network back in the loop, and the additions to the
existing figures they bring: readable ticks and fresh-trial MSE ± SE on the learning curve, a
random-matrix reference on the singular values, a seed selector on the spectrum and on the
cluster heatmaps, the task eigenvalue on the spectrum; new plots of the functional rank, the
outlier ladder and the fixed points.

Every function takes xarray objects and returns a HoloViews object styled for both backends
(rnnlab.analysis.report.style), like rnnlab.analysis.report.figures.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import holoviews as hv
import numpy as np
import xarray as xr

from rnnlab.analysis.report import figures as plots
from rnnlab.analysis.report.inloop_summary import zero_input
from rnnlab.analysis.report.style import (
    EPOCH,
    both,
    epoch_frame,
    frame,
    hline,
    points,
    seed_color,
    square_limits,
    style,
)
from rnnlab.analysis.report.widgets import Frames
from rnnlab.data.members import member_names

__all__ = [
    "INLOOP_SECTION",
    "MEMBER",
    "block_heatmaps",
    "extra_figures",
    "extra_makers",
    "learning_curve",
    "log_ticks",
    "quarter_circle_sv",
    "singular_values",
    "spectrum",
]

MEMBER = hv.Dimension("member", label="seed")
INLOOP_SECTION = (
    "The trained network in the loop",
    ["functional_rank", "ladder", "fixed_points", "fixed_point_counts"],
    "Top left: MSE of J0 + ΔJ_R on the same fresh trials for each R (ΔJ_R: best rank-R "
    "approximation; R = N is the trained J, R = 0 is J0 alone; diamonds: the functional rank). "
    "Top right: the outlier ladder: distance from the measured leading outlier to the nearest "
    "outlier of J0 + ΔJ_R (solid) and of ΔJ_R alone (mean field, dotted); below the outlier's "
    "finite-N spread (dashed) it is reproduced. "
    "Bottom: fixed points of the dynamics at zero input along u_1 of ΔJ (filled: stable, ×: "
    "unstable) and their numbers, against epoch.",
)
MANTISSAS = ((1, 2, 5), (1, 1.5, 2, 3, 5, 7), (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8))


def log_ticks(lo: float, hi: float, mark: float | None = None, max_ticks: int = 12) -> list:
    """Ticks (value, label) of a log axis from lo to hi: the densest mantissa set (1-2-5 up to
    1-1.2-1.5-...-8 per decade) with at most `max_ticks` ticks, plus `mark` (the optimum)."""
    if not (np.isfinite(lo) and np.isfinite(hi) and 0 < lo < hi):
        return []
    best: list[float] = []
    for mant in MANTISSAS:
        vals = [
            float(f"{m * 10.0**k:.12g}")
            for k in range(int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi))) + 1)
            for m in mant
        ]
        vals = [v for v in vals if lo <= v <= hi]
        if len(vals) <= max_ticks or not best:
            best = vals
    ticks = [(v, f"{v:g}") for v in best]
    if mark is not None and np.isfinite(mark) and lo <= mark <= hi:
        ticks = [t for t in ticks if abs(np.log(t[0] / mark)) > 0.09] + [(mark, f"{mark:.3g}")]
    return sorted(ticks)


def learning_curve(archive: xr.Dataset, results: xr.Dataset) -> hv.Overlay:
    """figures.learning_curve with readable log ticks (the optimum among them) and, when the
    analysis re-simulated the networks, each seed's fresh-trial MSE ± SE at the last snapshot."""
    extra = []
    lows, highs = [], []
    curve = archive["mse_curve"].values
    finite = curve[np.isfinite(curve) & (curve > 0)]
    if finite.size:
        lows.append(finite.min())
        highs.append(finite.max())
    opt = float(archive["mse_optimal"])
    if "mse" in results.variables and "eval_epoch" in results["mse"].dims:
        last = results.isel(eval_epoch=-1)
        x = float(results["eval_epoch"].values[-1])
        for i in range(results.sizes["seed"]):
            y, se = float(last["mse"].values[i]), float(last["mse_se"].values[i])
            if not np.isfinite(y):
                continue
            bar = hv.ErrorBars([(x, y, 2 * se)], EPOCH, ["mse", "yerr"])
            c = seed_color(i)
            bar = both(bar, {"color": c, "line_width": 2}, {"color": c, "linewidth": 1.5})
            label = "fresh-trial MSE ± 2 SE" if i == 0 else ""
            dot = hv.Scatter([(x, y)], EPOCH, "mse", label=label)
            extra += [bar, style(dot, color=seed_color(i), size=7, marker="diamond")]
            lows.append(y - 2 * se)
            highs.append(y + 2 * se)
    if np.isfinite(opt) and opt > 0:
        lows.append(opt)
    lo, hi = (min(lows), max(highs)) if lows and highs else (np.nan, np.nan)
    ticks = log_ticks(0.97 * lo, 1.03 * hi, mark=opt if opt > 0 else None)
    return plots.learning_curve(archive, extra=extra, yticks=ticks or None)


def quarter_circle_sv(n: int, frob: float, count: int) -> np.ndarray:
    """Expected leading `count` singular values of an n x n matrix of iid entries with
    Frobenius norm `frob`: quantiles (r - 1/2)/n from the top of the quarter-circle law of
    s sqrt(n) x, x in [0, 2], s = frob/n (its edge: 2 frob / sqrt(n))."""
    x = np.linspace(0.0, 2.0, 4001)
    cdf = (x * np.sqrt(np.clip(4 - x * x, 0, None)) / 2 + 2 * np.arcsin(x / 2)) / np.pi
    q = 1.0 - (np.arange(1, count + 1) - 0.5) / n
    return frob / np.sqrt(n) * np.interp(q, cdf, x)


def singular_values(results: xr.Dataset, n_show: int = 20) -> hv.Overlay:
    """figures.singular_values with the random-matrix reference: singular values of a random
    N x N matrix with ΔJ's Frobenius norm (mean over seeds) and its edge 2 ‖ΔJ‖_F / √N."""
    sv = results["sv"].isel(epoch=-1)
    n = sv.sizes["sv"]
    frob = float(np.nanmean(np.sqrt((sv.values**2).sum(axis=-1))))
    count = min(n_show, n)
    extra = []
    if np.isfinite(frob) and frob > 0:
        ref = quarter_circle_sv(n, frob, count)
        idx = np.arange(1, count + 1)
        extra.append(
            style(
                hv.Curve((idx, ref), "index", "sv", label="random matrix, same ‖ΔJ‖_F"),
                color="#777777",
                width=2,
                dash="dashed",
            )
        )
        edge = 2 * frob / np.sqrt(n)
        extra.append(hline(edge, 1, count, "its edge 2‖ΔJ‖_F/√N", "#777777", "dotted"))
    return plots.singular_values(results, n_show, extra=extra)


def spectrum(archive: xr.Dataset, results: xr.Dataset, *, max_frames: int = 12) -> hv.HoloMap:
    """The spectrum of J for every member (seed selector) and up to `max_frames` epochs (slider),
    with λ_task (a star) where theory gives it; one set of axis limits for all frames."""
    return spectrum_frames(archive, results, max_frames=max_frames).holomap()


def spectrum_frames(archive: xr.Dataset, results: xr.Dataset, *, max_frames: int = 12) -> Frames:
    """`spectrum` as widgets.Frames: each frame built when asked for, and its layers' data
    computed without building it (plots.spectrum_frame_data), as the page embeds them."""
    names = member_names(results)
    epochs = plots.frame_epochs(results["epoch"].values, max_frames)
    keys = ("outlier", "outlier_meanfield", "outlier_exact")
    pts = [archive["eigvals"].sel(epoch=epochs).values.ravel()]
    pts += [results[k].sel(epoch=epochs).values.ravel() for k in keys]
    lam = results["lambda_task"].values if "lambda_task" in results.variables else None
    if lam is not None and not np.isfinite(lam).any():
        lam = None  # no closed form for any member: no legend entry either
    if lam is not None:
        pts.append(np.asarray(lam, complex))
    edge = float(np.nanmax(results["bulk_radius"].values))
    lims = square_limits(np.concatenate(pts), edge)
    rank = int(results.sizes.get("rank", 0)) or None
    eigvals = archive["eigvals"].sel(epoch=epochs).transpose("seed", "epoch", ...).values
    values = [results[k].sel(epoch=epochs).transpose("seed", "epoch", ...).values for k in keys]
    radii = results["bulk_radius"].values
    where = {(name, int(e)): (i, j) for i, name in enumerate(names) for j, e in enumerate(epochs)}

    def args(key) -> tuple:
        i, j = where[key]
        task = []
        if lam is not None:
            task.append(complex(lam[i]) if np.isfinite(lam[i]) else complex(np.nan, np.nan))
        return (eigvals[i, j], *(v[i, j] for v in values), float(radii[i])), task

    def title(key) -> str:
        return f"Spectrum of J, {key[0]}, epoch {key[1]}"

    def frame(key) -> hv.Overlay:
        data, task = args(key)
        extra = [points([z], "λ_task (Kalman pole, linear theory)", "#2ca02c", 16, "diamond")
                 for z in task]  # fmt: skip
        return plots.spectrum_frame(*data, title=title(key), lims=lims, extra=extra, rank=rank)

    def data(key) -> list[dict]:
        data, task = args(key)
        return plots.spectrum_frame_data(*data, lims=lims, extra=[[z] for z in task])

    return Frames([MEMBER, EPOCH], list(where), [title(k) for k in where], frame, data)


def block_heatmaps(results: xr.Dataset, var: str = "block_J") -> hv.HoloMap:
    """figures.block_heatmap of every member (seed selector), on one colour scale."""
    lim = max(float(np.nanmax(np.abs(results[var].isel(epoch=-1).values), initial=0)), 1e-12)
    frames = {
        name: plots.block_heatmap(results.isel(seed=[i]), var, lim=lim, sizes_in_title=True)
        for i, name in enumerate(member_names(results))
    }
    return hv.HoloMap(frames, kdims=[MEMBER], sort=False)


def _rung_ticks(values) -> list:
    return [(i, str(int(r))) for i, r in enumerate(values)]


def functional_rank(results: xr.Dataset, mse_optimal: float) -> hv.Overlay:
    """Fresh-trial MSE of J0 + ΔJ_R against R, per seed, with the functional rank marked."""
    res = results.isel(eval_epoch=-1)
    ranks = results["trunc_rank"].values
    x = np.arange(len(ranks))
    layers = []
    for i, name in enumerate(member_names(results)):
        y, se = res["loss"].values[i], res["loss_se"].values[i]
        c = seed_color(i)
        layers.append(style(hv.Curve((x, y), "R", "loss", label=name), color=c, width=2))
        bars = hv.ErrorBars((x, y, 2 * se), "R", ["loss", "yerr"])
        layers.append(both(bars, {"color": c}, {"color": c}))
        if "loss_split" in res:
            split = hv.Curve((x, res["loss_split"].values[i]), "R", "loss")
            layers.append(style(split, color=c, width=1.5, dash="dashed", alpha=0.7))
        fr = float(res["functional_rank"].values[i])
        if np.isfinite(fr):
            k = int(np.flatnonzero(ranks == fr)[0])
            mark = hv.Scatter([(k, y[k])], "R", "loss", label="functional rank" if i == 0 else "")
            layers.append(style(mark, color=c, size=14, marker="diamond"))
    if np.isfinite(mse_optimal) and mse_optimal > 0:
        layers.append(hline(mse_optimal, 0, x[-1], "optimum MSE*", "#d62728"))
    epoch = int(results["eval_epoch"].values[-1])
    return frame(
        hv.Overlay(layers),
        title=f"Loss of J0 + ΔJ_R on fresh trials, epoch {epoch} (dashed: (1−κ)J0 + res_R)",
        xlabel="R (rank of ΔJ kept; last: all of ΔJ)",
        ylabel="MSE ± 2 SE (dimensionless)",
        logy=True,
        legend="right",
        size=(380, 280),
        xticks=_rung_ticks(ranks),
    )


def ladder(results: xr.Dataset) -> hv.Overlay:
    """Distance from the measured leading outlier to the nearest outlier of J0 + ΔJ_R (solid)
    and of ΔJ_R alone (mean field, dotted) against R, per seed, with the outlier's finite-N
    spread (thin dashed): below it the outlier is reproduced."""
    res = results.isel(eval_epoch=-1)
    ranks = results["ladder_rank"].values
    x = np.arange(len(ranks))
    layers = []
    for i, name in enumerate(member_names(results)):
        measured = res["ladder_measured"].values[i]
        re = np.real(measured)
        if not np.isfinite(re).any():
            continue
        k = int(np.nanargmax(np.where(np.isfinite(re), re, -np.inf)))
        c = seed_color(i)
        exact = np.abs(res["ladder_exact"].values[i][:, k] - measured[k])
        mf = np.abs(res["ladder_meanfield"].values[i][:, k] - measured[k])
        floor = 1e-6  # R = N reproduces it to the float32 precision of the stored eigenvalues
        exact, mf = np.maximum(exact, floor), np.maximum(mf, floor)
        layers.append(style(hv.Curve((x, exact), "R", "dist", label=name), color=c, width=2))
        layers.append(style(hv.Scatter((x, exact), "R", "dist"), color=c, size=6, marker="circle"))
        layers.append(style(hv.Curve((x, mf), "R", "dist"), color=c, width=1.5, dash="dotted"))
        tol = float(res["ladder_tol"].values[i][k])
        layers.append(hline(tol, 0, x[-1], "finite-N spread" if i == 0 else "", c, "dashed"))
    if not layers:  # say so rather than draw an empty frame
        layers.append(style(hv.Curve(([0, x[-1]], [1e-3, 1.0]), "R", "dist"), alpha=0))
        text = hv.Text(x[-1] / 2, 0.03, "no outlier outside the bulk edge", fontsize=12)
        layers.append(both(text, {"color": "#555555"}, {"color": "#555555"}))
    epoch = int(results["eval_epoch"].values[-1])
    return frame(
        hv.Overlay(layers),
        title=f"Outlier ladder: is the leading outlier in J0 + ΔJ_R? epoch {epoch}",
        xlabel="R (rank of ΔJ kept; last: all of ΔJ)",
        ylabel="|λ_R − λ_out| (dimensionless)",
        logy=True,
        legend="right",
        size=(380, 280),
        xticks=_rung_ticks(ranks),
    )


def fixed_points(results: xr.Dataset) -> hv.Overlay:
    """Fixed points at zero input along u_1 of ΔJ against epoch: filled stable, × unstable
    (drawn on top); seeds side by side around each epoch."""
    res = zero_input(results)
    x = res["epoch"].values.astype(float)
    n = res.sizes["seed"]
    step = 0.25 * float(np.min(np.diff(x))) if x.size > 1 else 1.0
    stable_layers, unstable_layers = [], []
    for i, name in enumerate(member_names(results)):
        pos = res["fp_u1"].values[i]
        stable = res["fp_stable"].values[i]
        c = seed_color(i)
        xi = x + (i - (n - 1) / 2) * step / max(n - 1, 1)
        for flag, marker, lab, into in ((1.0, "circle", name, stable_layers),
                                        (0.0, "x", "", unstable_layers)):  # fmt: skip
            sel = stable == flag
            xs, ys = np.broadcast_to(xi[:, None], pos.shape)[sel], pos[sel]
            pts = style(hv.Scatter((xs, ys), EPOCH, "u1", label=lab), color=c, marker=marker,
                        size=9 if flag else 13)  # fmt: skip
            into.append(both(pts, {"line_width": 1 if flag else 3}, {}))
    return epoch_frame(
        stable_layers + unstable_layers,
        title=f"Fixed points at input {float(res['u_const']):g} along u_1 (×: unstable)",
        ylabel="u_1ᵀ h* (dimensionless)",
    )


def fixed_point_counts(results: xr.Dataset) -> hv.Overlay:
    """Numbers of stable (solid) and unstable (dashed) fixed points at zero input vs epoch."""
    res = zero_input(results)
    x = res["epoch"].values
    layers = []
    for i, name in enumerate(member_names(results)):
        c = seed_color(i)
        stable = hv.Curve((x, res["n_stable"].values[i]), EPOCH, "count", label=name)
        layers.append(style(stable, color=c, width=2))
        unstable = hv.Curve((x, res["n_unstable"].values[i]), EPOCH, "count")
        layers.append(style(unstable, color=c, width=2, dash="dashed"))
    return epoch_frame(
        layers,
        title="Fixed points at zero input: stable (solid), unstable (dashed)",
        ylabel="number of fixed points",
    )


def extra_makers(archive: xr.Dataset, results: xr.Dataset) -> dict[str, Callable[[], object]]:
    """name -> function building it, for the new plots whose inputs the results hold (absent
    analyses: no plot)."""
    out: dict[str, Callable[[], object]] = {}
    have = set(results.variables)
    if {"loss", "loss_se", "functional_rank"} <= have:
        out["functional_rank"] = partial(functional_rank, results, float(archive["mse_optimal"]))
    if {"ladder_exact", "ladder_meanfield", "ladder_measured"} <= have:
        out["ladder"] = partial(ladder, results)
    if {"fp_u1", "fp_stable", "n_stable", "n_unstable"} <= have:
        out["fixed_points"] = partial(fixed_points, results)
        out["fixed_point_counts"] = partial(fixed_point_counts, results)
    return out


def extra_figures(archive: xr.Dataset, results: xr.Dataset) -> dict[str, object]:
    """The new plots whose inputs the results hold (absent analyses: no plot)."""
    return {name: make() for name, make in extra_makers(archive, results).items()}
