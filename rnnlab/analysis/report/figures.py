"""Report figures: one small function per plot, taking xarray objects, returning HoloViews objects.

Every figure is styled through style.py with bokeh options, from which the page (report/
bokeh_draw.py) and the PNGs (report/png.py) are drawn, so the same object serves both outputs (and
a notebook, through HoloViews).
"""

from __future__ import annotations

import holoviews as hv
import numpy as np
import xarray as xr

from rnnlab.analysis.report.style import (
    EPOCH,
    IM,
    KIND_COLORS,
    RE,
    SEED_COLORS,
    both,
    circle,
    circle_xy,
    complex_xy,
    decimate,
    epoch_frame,
    frame,
    hline,
    lines,
    points,
    seed_color,
    square_limits,
    style,
    units,
)
from rnnlab.data.members import member_names, member_position


def learning_curve(archive: xr.Dataset, extra=(), yticks=None) -> hv.Overlay:
    """Training MSE per seed (thin), its mean (bold), the mean loss and the task optimum (and
    `extra` layers; `yticks` as HoloViews takes them)."""
    mse = decimate(archive["mse_curve"], "curve_epoch")
    loss = decimate(archive["loss_curve"], "curve_epoch")
    x = mse["curve_epoch"].values
    layers = [
        style(
            hv.Curve((x, mse.isel(seed=i).values), EPOCH, "mse"),
            color=seed_color(i),
            width=1,
            alpha=0.45,
        )
        for i in range(mse.sizes["seed"])
    ]
    layers.append(
        style(
            hv.Curve((x, loss.mean("seed").values), EPOCH, "mse", label="loss (mean)"),
            color="#555555",
            width=2,
            dash="dotted",
        )
    )
    layers.append(
        style(
            hv.Curve((x, mse.mean("seed").values), EPOCH, "mse", label="MSE (mean)"),
            color="#111111",
            width=3,
        )
    )
    opt = float(archive["mse_optimal"])
    if np.isfinite(opt) and opt > 0:
        layers.append(hline(opt, x[0], x[-1], f"optimum MSE* = {opt:.3g}", "#d62728"))
    unit = units(archive["mse_curve"])
    return frame(
        hv.Overlay(layers + list(extra)),
        title="Learning curve (thin: seeds)",
        xlabel="epoch (optimizer steps)",
        ylabel=f"training MSE ({unit})",
        logy=True,
        **({"yticks": yticks} if yticks is not None else {}),
    )


def spectrum_frame(
    eig, outlier, meanfield, exact, radius: float, *, title: str, lims=None, extra=(), rank=None
) -> hv.Overlay:
    """Eigenvalues of J with the bulk circle (radius: the bulk edge), measured outliers,
    predictions (of the rank-`rank` fit, when given) and the line Re = 1, then `extra` layers.

    `lims` = (xlim, ylim) of equal span (default: `square_limits` of this frame's points).
    """
    fit = f" (rank-{rank} fit)" if rank else ""
    eig = np.asarray(eig)
    pts = np.concatenate([np.ravel(a) for a in (eig, outlier, meanfield, exact)])
    xlim, ylim = lims if lims is not None else square_limits(pts, radius)
    layers = [
        circle(radius),
        style(
            hv.Curve(([1, 1], list(ylim)), RE, IM, label="stability edge Re λ = 1"),
            color="#d62728",
            width=1.5,
            dash="dotted",
        ),
        points(eig, "eigenvalues of J", "#777777", 5, "circle", alpha=0.6),
        points(outlier, "measured outlier", KIND_COLORS["measured"], 11, "circle"),
        points(meanfield, f"mean-field prediction{fit}", KIND_COLORS["mean-field"], 14, "x"),
        points(exact, f"exact prediction{fit}", KIND_COLORS["exact"], 12, "triangle", alpha=0.8),
        *extra,
    ]
    return frame(
        hv.Overlay(layers),
        title=title,
        xlabel="Re λ(J) (dimensionless)",
        ylabel="Im λ(J) (dimensionless)",
        legend="right",
        size=(380, 380),
        equal=True,
        xlim=xlim,
        ylim=ylim,
    )


def spectrum_frame_data(
    eig, outlier, meanfield, exact, radius: float, *, lims=None, extra=()
) -> list[dict[str, np.ndarray]]:
    """The data of each layer of `spectrum_frame` (x and y, as report/bokeh_draw reads them
    from its elements) without building the elements: the page's spectrum embeds up to 50
    frames, which took ~0.5 s to build. `extra`: the complex values of extra point layers."""
    pts = np.concatenate([np.ravel(a) for a in (eig, outlier, meanfield, exact)])
    _, ylim = lims if lims is not None else square_limits(pts, radius)
    xy = [circle_xy(radius), ([1, 1], list(ylim))]
    xy += [complex_xy(z) for z in (eig, outlier, meanfield, exact, *extra)]
    return [{"x": np.asarray(x, float), "y": np.asarray(y, float)} for x, y in xy]


def frame_epochs(epochs, max_frames: int = 12) -> np.ndarray:
    """At most `max_frames` epochs spread evenly over `epochs`, first and last always included."""
    epochs = np.asarray(epochs)
    idx = np.unique(np.round(np.linspace(0, len(epochs) - 1, min(max_frames, len(epochs)))))
    return epochs[idx.astype(int)]


def spectrum(
    archive: xr.Dataset, results: xr.Dataset, *, seed=None, max_frames: int = 12
) -> hv.HoloMap:
    """HoloMap over epoch of `spectrum_frame` for one seed (default: the first member).

    `archive` and `results` hold the same members in the same order (as `report.prepare` returns
    them); the member is taken by position, since seed values can repeat across runs.
    """
    i = member_position(results, seed)
    name = member_names(results)[i]
    radius = float(results["bulk_radius"].isel(seed=i))  # the edge g (1 + 2/sqrt(N))
    eig = archive["eigvals"].isel(seed=i)
    res = results.isel(seed=i)
    epochs = frame_epochs(res["epoch"].values, max_frames)
    pts = [eig.sel(epoch=epochs).values]
    pts += [
        res[k].sel(epoch=epochs).values for k in ("outlier", "outlier_meanfield", "outlier_exact")
    ]
    lims = square_limits(np.concatenate([p.ravel() for p in pts]), radius)
    frames = {}
    for e in epochs:
        frames[int(e)] = spectrum_frame(
            eig.sel(epoch=e).values,
            res["outlier"].sel(epoch=e).values,
            res["outlier_meanfield"].sel(epoch=e).values,
            res["outlier_exact"].sel(epoch=e).values,
            radius,
            title=f"Spectrum of J, {name}, epoch {int(e)}",
            lims=lims,
        )
    return hv.HoloMap(frames, kdims=[EPOCH])


def outlier_paths(results: xr.Dataset) -> hv.Overlay:
    """Measured outliers of every seed in the complex plane, coloured by epoch."""
    out = results["outlier"]
    layers = [circle(float(r), label="") for r in np.unique(results["bulk_radius"].values)]
    pts, paths = [], []
    for s in range(out.sizes["seed"]):
        for k in range(out.sizes["outlier"]):
            z = out.isel(seed=s, outlier=k).values
            ok = np.isfinite(z)
            if ok.sum() > 1:
                paths.append((z.real[ok], z.imag[ok]))
            pts += [(z.real[i], z.imag[i], float(out["epoch"][i])) for i in np.nonzero(ok)[0]]
    layers += lines(paths, [RE, IM], color="#bbbbbb", width=1)
    data = np.array(pts, dtype=float).reshape(-1, 3)
    radius = float(np.max(results["bulk_radius"].values))
    xlim, ylim = square_limits(data[:, 0] + 1j * data[:, 1], radius)
    line = hv.Curve(([1, 1], list(ylim)), RE, IM)
    layers.append(style(line, color="#d62728", width=1.5, dash="dotted"))
    p = hv.Points(data, [RE, IM], [EPOCH])
    p = style(p, size=9, marker="circle")
    by_epoch = {"color": "epoch", "cmap": "viridis", "colorbar": True}
    p = both(p, by_epoch, by_epoch)
    layers.append(p)
    return frame(
        hv.Overlay(layers),
        title="Outlier trajectories, all seeds (dotted: Re λ = 1)",
        xlabel="Re λ(J) (dimensionless)",
        ylabel="Im λ(J) (dimensionless)",
        legend=False,
        size=(380, 380),
        equal=True,
        xlim=xlim,
        ylim=ylim,
    )


def _per_seed_slots(da: xr.DataArray, kind: str, dash: str, marker: bool, label: str = ""):
    """Re(outlier) vs epoch of every (seed, slot) with a finite value, as one set of lines
    (`style.lines`: one legend entry, `label`, default: the kind) and, with `marker`, their
    points; no layers when there is none."""
    x = da["epoch"].values
    ys = [da.isel(seed=s, outlier=k).values.real for s in range(da.sizes["seed"])
          for k in range(da.sizes["outlier"])]  # fmt: skip
    ys = [y for y in ys if np.isfinite(y).any()]
    if not ys:
        return []
    color = KIND_COLORS[kind]
    curves = [(x, y) for y in ys]
    layers = lines(curves, [EPOCH, "re"], label or kind, color=color, width=2, dash=dash,
                   alpha=0.8)  # fmt: skip
    if marker:
        pts = hv.Scatter((np.tile(x, len(ys)), np.concatenate(ys)), EPOCH, "re")
        layers.append(style(pts, color=color, size=6, marker="circle"))
    return layers


def outlier_re(results: xr.Dataset) -> hv.Overlay:
    """Re of measured and predicted outliers of J vs epoch, with the stability line Re λ = 1."""
    x = results["epoch"].values
    fit = f" (rank-{results.sizes['rank']} fit)" if "rank" in results.dims else ""
    layers = _per_seed_slots(results["outlier"], "measured", "solid", True)
    mf = results["outlier_meanfield"]
    layers += _per_seed_slots(mf, "mean-field", "dashed", False, f"mean-field{fit}")
    layers += _per_seed_slots(results["outlier_exact"], "exact", "dotted", False, f"exact{fit}")
    layers.append(hline(1.0, x[0], x[-1], "stability edge Re λ = 1", "#d62728", "dashdot"))
    return epoch_frame(
        layers,
        title="Outliers of J vs epoch (one line per seed and outlier)",
        ylabel="Re λ_out(J) (dimensionless)",
    )


def jacobian_re(results: xr.Dataset) -> hv.Overlay:
    """Max Re λ of the Jacobian per seed, the stability line Re = 0 and the crossing epochs."""
    da = results["max_re_jac"]
    x = da["epoch"].values
    layers = [
        style(
            hv.Curve((x, da.isel(seed=i).values), EPOCH, "re", label=name),
            color=seed_color(i),
            width=2,
        )
        for i, name in enumerate(member_names(da))
    ]
    layers.append(hline(0.0, x[0], x[-1], "stability edge Re λ = 0", "#d62728", "dashdot"))
    cross = results["crossing_epoch"].values
    cross = cross[np.isfinite(cross)]
    if cross.size:
        pts = hv.Scatter(
            (cross, np.zeros_like(cross)), EPOCH, "re", label="crossing epoch (at mean state)"
        )
        layers.append(style(pts, color="#d62728", size=12, marker="diamond"))
    return epoch_frame(
        layers,
        title="Leading eigenvalue of the Jacobian at the mean state",
        ylabel="max Re λ(Jacobian) (1/τ)",
    )


def singular_values(results: xr.Dataset, n_show: int = 20, extra=()) -> hv.Overlay:
    """Leading singular values of ΔJ at the last epoch, per seed (a scree plot, log scale), then
    `extra` layers (a random-matrix reference)."""
    sv = results["sv"].isel(epoch=-1)
    n = min(n_show, sv.sizes["sv"])
    idx = np.arange(1, n + 1)
    layers = []
    for i, lab in enumerate(member_names(sv)):
        y = sv.isel(seed=i).values[:n]
        layers.append(
            style(hv.Curve((idx, y), "index", "sv", label=lab), color=seed_color(i), width=1.5)
        )
        layers.append(style(hv.Scatter((idx, y), "index", "sv"), color=seed_color(i), size=6))
    epoch = int(results["epoch"][-1])
    logy = bool(np.all(sv.values[..., :n] > 0))
    return frame(
        hv.Overlay(layers + list(extra)),
        title=f"Singular values of ΔJ at epoch {epoch}",
        xlabel="index r (rank)",
        ylabel="σ_r(ΔJ) (dimensionless)",
        logy=logy,
    )


def explained(results: xr.Dataset) -> hv.Overlay:
    """Fraction of ||ΔJ||_F^2 captured by the best rank-1 and rank-2 fits vs epoch."""
    cum = results["explained_cum"]
    x = cum["epoch"].values
    layers = []
    colors = ["#1f77b4", "#ff7f0e", "#2ca02c"]
    for r in range(min(3, cum.sizes["rank"])):
        da = cum.isel(rank=r)
        seeds = [(x, da.isel(seed=i).values) for i in range(da.sizes["seed"])]
        layers += lines(seeds, [EPOCH, "frac"], color=colors[r], width=1, alpha=0.4)
        mean = hv.Curve((x, da.mean("seed").values), EPOCH, "frac", label=f"R = {r + 1} (mean)")
        layers.append(style(mean, color=colors[r], width=3))
    return frame(
        hv.Overlay(layers),
        title="Variance of ΔJ explained by rank R (thin: seeds)",
        xlabel="epoch (optimizer steps)",
        ylabel="fraction of ||ΔJ||²_F (dimensionless)",
        legend="bottom_right",
        ylim=(0, 1.05),
    )


def alignment(
    results: xr.Dataset, which: str = "u", rank: int = 0, *, n_neuron: int = 0, legend: bool = True
) -> hv.Overlay:
    """Mean over seeds of |cos| between u_r (or v_r) and each task vector, vs epoch.

    With `n_neuron` = N, the chance level E|cos| = sqrt(2/(pi N)) of random vectors is drawn.
    """
    da = results[f"align_{which}"].isel(rank=rank).mean("seed")
    x = da["epoch"].values
    layers = []
    for j, vec in enumerate(da["vector"].values):
        dash = ["solid", "dashed", "dotted"][(j // len(SEED_COLORS)) % 3]
        curve = hv.Curve((x, da.isel(vector=j).values), EPOCH, "cos", label=str(vec))
        layers.append(style(curve, color=seed_color(j), width=2, dash=dash))
    if n_neuron:
        chance = np.sqrt(2 / (np.pi * n_neuron))
        layers.append(hline(chance, x[0], x[-1], "chance √(2/πN)", "#999999", "dotted"))
    name = f"{which}_{rank + 1}"
    return frame(
        hv.Overlay(layers),
        title=f"Alignment of {name} with task vectors (mean of seeds)",
        xlabel="epoch (optimizer steps)",
        ylabel=f"|cos({name}, vector)| (dimensionless)",
        legend="right" if legend else False,
        ylim=(0, 1.05),
        size=(380, 280),
    )


def block_heatmap(
    results: xr.Dataset, var: str = "block_J", seed=None, *, lim=None, sizes_in_title=False
) -> hv.Overlay:
    """Cluster block means of J or ΔJ at the last epoch for one seed (default: the first member),
    with the values printed. `lim`: the colour scale's half range (default: this seed's);
    `sizes_in_title`: cluster sizes in the title rather than the tick labels (ticks then are
    the same for every seed, as the seed selector needs)."""
    i = member_position(results, seed)
    da = results[var].isel(seed=i, epoch=-1)
    k = da.shape[0]
    names, note = [str(c) for c in range(k)], ""
    if "cluster" in results.variables:  # the cluster sizes on the ticks or in the title
        sizes = np.bincount(results["cluster"].isel(seed=i).values.astype(int), minlength=k)
        if sizes_in_title:
            note = f" (sizes {', '.join(str(n) for n in sizes)})"
        else:
            names = [f"{c} (n={sizes[c]})" for c in range(k)]
    rows = [(names[j], names[i], float(da.values[i, j])) for i in range(k) for j in range(k)]
    if lim is None:
        lim = max(float(np.nanmax(np.abs(da.values), initial=0)), 1e-12)
    kd, vd = ["cluster_pre", "cluster"], ["mean"]
    scale = {"cmap": "RdBu_r", "clim": (-lim, lim), "colorbar": True}
    heat = both(hv.HeatMap(rows, kd, vd), scale, scale)
    layers = [heat]
    for dark in (False, True):  # white text on saturated cells, black elsewhere
        sel = [(a, b, f"{v:.3g}") for a, b, v in rows if (abs(v) > 0.6 * lim) == dark]
        color = "white" if dark else "black"
        lab = hv.Labels(sel, kd, "text")
        layers.append(both(lab, {"text_color": color}, {"color": color}))
    name = "J" if var == "block_J" else "ΔJ"
    epoch = int(results["epoch"][-1])
    return frame(
        hv.Overlay(layers),
        title=f"Block means of {name}, {member_names(results)[i]}, epoch {epoch}{note}",
        xlabel="presynaptic cluster",
        ylabel="postsynaptic cluster",
        legend=False,
        size=(230, 230),
        invert_yaxis=True,
    )


def trajectories(archive: xr.Dataset, *, seed=None, trial: int = 0) -> hv.Overlay:
    """Target vs network output on one evaluation trial at the last stored trajectory epoch, for
    one seed (default: the first member)."""
    i = member_position(archive, seed)
    out = archive["traj_output"].isel(seed=i, traj_epoch=-1, trial=trial)
    tgt = archive["eval_target"].isel(seed=i, trial=trial)
    t = out["time"].values
    layers = []
    for j, name in enumerate(out["output"].values):
        c = seed_color(j)
        layers.append(
            style(
                hv.Curve((t, tgt.isel(output=j).values), "time", "y", label=f"target {name}"),
                color=c,
                width=2,
                dash="dashed",
            )
        )
        layers.append(
            style(
                hv.Curve((t, out.isel(output=j).values), "time", "y", label=f"output {name}"),
                color=c,
                width=2,
            )
        )
    epoch = int(archive["traj_output"]["traj_epoch"][-1])
    tunit = str(archive["time"].attrs.get("units", "s"))
    return frame(
        hv.Overlay(layers),
        title=f"Example trial: {member_names(archive)[i]}, trial {trial}, epoch {epoch}",
        xlabel=f"time ({tunit})",
        ylabel=f"y(t) ({units(archive['traj_output'], 'a.u.')})",
        legend="right",
        size=(460, 280),
    )
