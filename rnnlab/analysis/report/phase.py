"""The phase-diagram section of a sweep's report: headline numbers against each swept setting.

A sweep opened with `rnnlab.open_archive` is a grid (rnnlab.data.grid: swept settings as dims
beside `seed`), and `rnnlab.analysis.analyze` keeps that grid. For every swept dim X this module
plots, against X, the final MSE over the task optimum, the rank R that holds 90% of ‖ΔJ‖², the
largest Re λ of the outliers of J, the number of outliers and the Jacobian's crossing epoch, one
line per value of a second swept setting, mean ± sd over seeds (and over any further swept
settings); and it tabulates every grid point (summary.md and the page). The metrics per grid
point are computed without the plotting libraries (`inputs.phase_data`); the rest of the report
works on the flat layout (`inputs.flat_inputs`): one member per (point, seed), as for any runs.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from functools import partial

import holoviews as hv
import numpy as np
import xarray as xr

from rnnlab.analysis.report import headline
from rnnlab.analysis.report.style import both, frame, seed_color, style

# (variable, title)
METRICS = [
    ("mse_ratio", "final MSE / optimum"),
    ("rank90", "R for 90% of ‖ΔJ‖²"),
    ("re_out", "Re λ_out (measured)"),
    ("n_outliers", "outliers of J"),
    ("crossing_epoch", "crossing epoch"),
]
MISSING = headline.MISSING
DODGE = 0.015  # horizontal offset between lines, as a fraction of the x span


def _title(var: str, data: xr.Dataset) -> str:
    title = dict(METRICS)[var]
    return title if data.attrs["ratio"] or var != "mse_ratio" else "final MSE"


def _key(data: xr.Dataset, dim: str) -> str:
    """`g (model.g)`: the swept dim and its config key."""
    key = data.attrs["keys"].get(dim)
    return f"{dim} ({key})" if key and key != dim else dim


def _mean_sd(da: xr.DataArray, keep: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample sd over every dim but `keep` (NaN ignored; sd NaN for one value)."""
    rest = [d for d in da.dims if d not in keep]
    values = da.transpose(*keep, *rest).values.reshape(*[da.sizes[d] for d in keep], -1)
    n = np.isfinite(values).sum(-1)
    with warnings.catch_warnings():  # all-NaN cells (points without archives) give NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(values, -1)
        sd = np.where(n > 1, np.nanstd(values, -1, ddof=1), np.nan)
    return mean, sd


def _positions(labels: np.ndarray) -> tuple[np.ndarray, list | None]:
    """x positions of swept values: numbers as they are, anything else 0, 1, ... with ticks."""
    if labels.dtype.kind in "iuf":
        return labels.astype(float), None
    return np.arange(len(labels), dtype=float), [(i, str(v)) for i, v in enumerate(labels)]


def phase_plot(data: xr.Dataset, var: str, dim: str) -> hv.Overlay:
    """`var` against swept `dim`: one line per value of the next swept setting, mean ± sd over
    seeds (and the remaining swept settings)."""
    dims = data.attrs["dims"]
    others = [d for d in dims if d != dim]
    by = others[0] if others else None
    x, ticks = _positions(data[dim].values)
    da = data[var]
    groups = [(None, da)] if by is None else [(v, da.sel({by: v})) for v in data[by].values]
    span = float(np.ptp(x)) if x.size > 1 else 1.0
    layers = []
    for i, (value, sub) in enumerate(groups):
        mean, sd = _mean_sd(sub, [dim])
        label = f"{by} = {value}" if by is not None else "mean ± sd over seeds"
        color = seed_color(i)
        kdim = hv.Dimension("x", label=dim)
        xi = x + DODGE * span * (i - (len(groups) - 1) / 2)  # bars of two lines side by side
        layers.append(style(hv.Curve((xi, mean), kdim, var, label=label), color=color, width=2))
        layers.append(style(hv.Scatter((xi, mean), kdim, var), color=color, size=7))
        ok = np.isfinite(mean) & np.isfinite(sd)
        bars = hv.ErrorBars((xi[ok], mean[ok], sd[ok]), kdim, [var, "sd"])
        mpl = {"edgecolor": color, "linewidth": 1.2, "capsize": 3}
        layers.append(both(bars, {"color": color, "line_width": 1.5}, mpl))
    pooled = [d for d in others if d != by]
    over = "seeds" + "".join(f", {d}" for d in pooled)
    extra: dict = {"padding": 0.1, **({"xticks": ticks} if ticks else {})}
    if ticks:
        extra["xlim"] = (-0.5, len(ticks) - 0.5)
    return frame(
        hv.Overlay(layers),
        title=f"{_title(var, data)} vs {dim} (mean ± sd over {over})",
        xlabel=_key(data, dim),
        ylabel=_title(var, data),
        legend="right" if by is not None else False,
        size=(360, 240),
        **extra,
    )


def plot_makers(data: xr.Dataset) -> dict[str, Callable[[], hv.Overlay]]:
    """name -> function drawing it, for every phase plot, `phase_<metric>_<dim>`, swept dims in
    [sweep] order."""
    return {
        f"phase_{var}_{dim}": partial(phase_plot, data, var, dim)
        for dim in data.attrs["dims"]
        for var, _ in METRICS
    }


def figures(data: xr.Dataset) -> dict[str, hv.Overlay]:
    """Every phase plot by name (`plot_makers`)."""
    return {name: make() for name, make in plot_makers(data).items()}


def table(data: xr.Dataset) -> tuple[list[str], list[list[str]]]:
    """One row per grid point: its swept values, the seeds it has, each metric mean ± sd."""
    dims = data.attrs["dims"]
    header = [*dims, "seeds"] + [_title(v, data) for v, _ in METRICS]
    stacked = data.stack(point=dims)
    body = []
    for i in range(stacked.sizes["point"]):
        row = stacked.isel(point=i)
        n = int(np.isfinite(row["mse_ratio"].values).sum())
        cells = [str(row[d].values.item()) for d in dims] + [str(n)]
        cells += [headline.fmt_across(row[var].values) if n else MISSING for var, _ in METRICS]
        body.append(cells)
    return header, body


def markdown(data: xr.Dataset) -> str:
    """The per-point table of summary.md, with a sentence on what it holds."""
    header, body = table(data)
    ratio = "final MSE over the task optimum MSE*" if data.attrs["ratio"] else "final MSE"
    keys = ", ".join(_key(data, d) for d in data.attrs["dims"])
    return "\n\n".join(
        [
            "## Phase diagram: headline numbers per grid point",
            f"Swept: {keys}. Each row: {ratio}, R for 90% of ‖ΔJ‖², the largest Re λ among the "
            "outliers of J, the number of outliers (all at the last epoch) and the crossing "
            f"epoch, mean ± sd over the point's seeds; {MISSING} where the point has no archive.",
            headline._md_table(header, body),
        ]
    )


def section(data: xr.Dataset, plots: Iterable[str]) -> dict[str, object]:
    """The page section: title, note, plot names and the per-point table (HTML). `plots`: the
    names of the phase plots drawn (the page's parts hold them)."""
    note = (
        "Headline numbers at the last epoch against each swept setting (lines: values of the "
        "next swept setting; error bars: sd over seeds). Below: every grid point."
    )
    return {
        "title": "Phase diagram",
        "note": note,
        "plots": list(plots),
        "html": headline.html_table(*table(data)),
    }
