"""Shared styling of the report figures for both HoloViews backends.

`style` and `frame` translate one neutral description (colour, line width and dash, marker,
title, labels, frame size) into bokeh options (report.html; the PNGs are drawn from the same
options by png.py) and, for a notebook, matplotlib options.

Options go to HoloViews for the backends that are loaded: bokeh always (loaded by the first
figure styled), matplotlib once `use_matplotlib()` has loaded HoloViews' matplotlib backend
(matplotlib.pyplot and all, 0.4-0.8 s), for `hv.save(fig, backend="matplotlib")` in a notebook;
the report does not load it. A figure built before that carries no matplotlib options. The
report's own figures are built inside `options.direct_drawing()`: their bokeh options are kept
in options.py, without HoloViews' bokeh backend, and `bokeh_options` reads them either way.
"""

from __future__ import annotations

from typing import TypeVar

import holoviews as hv
import numpy as np
import xarray as xr

from rnnlab.analysis.report import options

V = TypeVar("V", bound=hv.core.Dimensioned)

SEED_COLORS = [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
]
KIND_COLORS = {"measured": "#111111", "mean-field": "#1f77b4", "exact": "#d62728"}
MAX_CURVE_POINTS = 1000

EPOCH = hv.Dimension("epoch", label="epoch", unit="optimizer steps")
RE = hv.Dimension("re", label="Re λ")
IM = hv.Dimension("im", label="Im λ")

MPL_MARKERS = {
    "circle": "o",
    "x": "X",
    "triangle": "^",
    "diamond": "D",
    "square": "s",
    "cross": "P",
    "inverted_triangle": "v",
}
MPL_DASH = {"solid": "-", "dashed": "--", "dotted": ":", "dashdot": "-."}
# bokeh's named dash patterns spelt out, for a Path: a multi_line draws the names wrongly (bokeh
# 3.9: "dashed" comes out dotted); HoloViews gives a curve's name this same pattern
BOKEH_DASH = {"solid": "solid", "dashed": "6", "dotted": "2 4", "dashdot": "6 4 2 4"}
PX_PER_INCH = 90  # matplotlib figure sizes from the bokeh frame sizes in pixels
PT_PER_PX = 0.75  # matplotlib line widths and marker sizes (points) from bokeh's (pixels)


def use_matplotlib() -> None:
    """Load HoloViews' matplotlib backend: figures built from now on are styled for it too."""
    import holoviews.plotting.mpl  # noqa: F401  (registers the matplotlib options)


def has_matplotlib() -> bool:
    """Whether HoloViews' matplotlib backend is loaded (figures then get its options)."""
    return "matplotlib" in hv.Store.renderers


def bokeh_options(el: hv.core.Dimensioned, group: str) -> dict:
    """The bokeh options of `group` ("style" or "plot") that `el` carries, as the page
    (bokeh_draw.py) and the PNGs (png.py) are drawn from them: HoloViews' or options.py's."""
    kept = options.lookup(el, group)
    return kept if kept is not None else hv.Store.lookup_options("bokeh", el, group).kwargs


def figure_inches(frame_width: int, frame_height: int, legend_outside: bool) -> tuple:
    """A matplotlib figure size (inches) around a frame of that many pixels, with room for the
    axis labels and, at the right, a legend outside the frame."""
    extra = 220 if legend_outside else 120
    return (frame_width + extra) / PX_PER_INCH, (frame_height + 90) / PX_PER_INCH


# Custom-options id of an element styled before, by what its options depend on: its type, group,
# label and dimensions and the options given (see `both`).
_STYLED: dict[str, int] = {}


def _opts(el: V, bokeh: dict, matplotlib: dict | None) -> V:
    el = el.opts(backend="bokeh", **bokeh)
    if matplotlib is not None:
        el = el.opts(backend="matplotlib", **matplotlib)
    return el


def both(el: V, bokeh: dict, matplotlib: dict) -> V:
    """`el` with the `bokeh` options and, when that backend is loaded, the `matplotlib` ones.

    A fresh element (no options yet) styled like an earlier one takes that one's options tree
    (HoloViews looks options up by `el.id`; its `.opts` never changes a tree in place but gives
    the element a new one). Each `.opts` costs ~0.7 ms per backend, and the report styles ~500
    elements, most of them alike (the spectrum's 44 frames). Measured on the default run (2 busy
    cores, interleaved, medians of 3): figures() 1.6 -> 1.07 s; analyze 15.6 -> 15.1 s,
    --no-network 10.8 -> 10.3 s; report.html, summary.md and the PNGs byte for byte the same
    (benchmarks/compare_reports.py).

    Options given to a fresh Overlay apply to the Overlay alone, yet HoloViews copies the
    options tree of every layer before finding that out (~3 ms per plot, 60 plots): an empty
    Overlay is styled instead and `el` takes its options tree (figures() 0.75 -> 0.6 s).

    Inside `options.direct_drawing()`, the bokeh options are kept by options.py instead."""
    if options.drawing_directly():
        return options.record(el, bokeh)
    options.load_bokeh()  # HoloViews takes options only for a loaded backend
    mpl = matplotlib if has_matplotlib() else None
    if type(el) is hv.Overlay and el.id is None:
        blank = _opts(hv.Overlay([], group=el.group, label=el.label), bokeh, mpl)
        if blank.id is not None:
            el.id = blank.id
            return el
    key = None
    if isinstance(el, hv.Element) and el.id is None:
        key = repr((type(el), el.group, el.label, [d.spec for d in el.dimensions()],
                    sorted(bokeh.items()), mpl and sorted(mpl.items())))  # fmt: skip
        opts_id = _STYLED.get(key)
        backends = ("bokeh", "matplotlib") if mpl is not None else ("bokeh",)
        if opts_id is not None and all(
            opts_id in hv.Store.custom_options(backend=b) for b in backends
        ):
            el.id = opts_id
            return el
    el = _opts(el, bokeh, mpl)
    if key is not None:
        _STYLED[key] = el.id
    return el


def style(
    el: V,
    *,
    color: str | None = None,
    alpha: float = 1.0,
    width: float | None = None,
    dash: str | None = None,
    size: float | None = None,
    marker: str | None = None,
    padding: float | tuple | None = None,
) -> V:
    """Apply one neutral style (colour, line width/dash, marker size/shape; `padding` of the
    data ranges, as HoloViews takes it) to both backends."""
    bk, mpl = {"alpha": alpha}, {"alpha": alpha}
    if padding is not None:
        bk["padding"] = mpl["padding"] = padding
    if color is not None:
        bk["color"] = mpl["color"] = color
    if width is not None:
        bk["line_width"], mpl["linewidth"] = width, width * PT_PER_PX
    if dash is not None:
        bk["line_dash"] = BOKEH_DASH[dash] if isinstance(el, hv.Path) else dash
        mpl["linestyle"] = MPL_DASH[dash]
    if size is not None:  # a marker glyph: matplotlib draws unfilled markers with edgecolors
        bk["size"], mpl["s"] = size, (PT_PER_PX * size) ** 2
        if color is not None:
            mpl["edgecolors"] = color
    if marker is not None:
        bk["marker"], mpl["marker"] = marker, MPL_MARKERS[marker]
    return both(el, bk, mpl)


def frame(
    obj: V,
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    logy: bool = False,
    legend: str | bool = "top_right",
    size: tuple[int, int] = (420, 280),
    equal: bool = False,
    **extra,
) -> V:
    """Apply title, axis labels, log scale, legend and plot-area size to both backends.

    `size` is the (width, height) of the data frame in pixels, so legends and colour bars
    placed outside do not shrink it; `equal` makes a square frame of side size[1].
    """
    # legend_limit: HoloViews hides a legend once an overlay has more than 25 glyphs (the
    # stability panel draws one curve per seed and outlier slot)
    common = dict(
        title=title, xlabel=xlabel, ylabel=ylabel, logy=logy, show_grid=True, legend_limit=1000
    )
    common.update(extra)
    if legend:
        common["legend_position"] = legend
    else:
        common["show_legend"] = False
    fw, fh = (size[1], size[1]) if equal else size
    bk = dict(frame_width=fw, frame_height=fh, toolbar="right", fontsize={"title": "11pt"})
    mpl = dict(fig_inches=figure_inches(fw, fh, bool(legend)), fontsize={"title": 11})
    if equal:  # the caller passes xlim/ylim of equal span (see square_limits)
        mpl["aspect"] = "equal"
    return both(obj, {**common, **bk}, {**common, **mpl})


def epoch_frame(
    layers: list,
    *,
    title: str,
    ylabel: str,
    legend: str | bool = "right",
    size: tuple[int, int] = (380, 280),
    **extra,
) -> hv.Overlay:
    """`frame` of the overlaid `layers` of a quantity against epoch (x label: EPOCH's)."""
    return frame(
        hv.Overlay(layers),
        title=title,
        xlabel=EPOCH.pprint_label,
        ylabel=ylabel,
        legend=legend,
        size=size,
        **extra,
    )


def square_limits(
    z, radius: float = 0.0, xmax: float = 1.0, pad: float = 0.08
) -> tuple[tuple[float, float], tuple[float, float]]:
    """x/y limits of equal span holding the points z, the disc |λ| <= radius and Re λ = xmax."""
    z = np.asarray(z).ravel()
    z = z[np.isfinite(z)]
    x0 = min(-radius, float(np.min(z.real, initial=0)))
    x1 = max(radius, xmax, float(np.max(z.real, initial=0)))
    h = max(radius, float(np.max(np.abs(z.imag), initial=0)))
    span = (1 + 2 * pad) * max(x1 - x0, 2 * h, 1e-9)
    xc = 0.5 * (x0 + x1)
    return (xc - span / 2, xc + span / 2), (-span / 2, span / 2)


def decimate(da: xr.DataArray, dim: str, max_points: int = MAX_CURVE_POINTS) -> xr.DataArray:
    """Every k-th point along `dim` (always keeping the last) so long curves stay light."""
    n = da.sizes[dim]
    if n <= max_points:
        return da
    idx = np.unique(np.r_[np.arange(0, n, int(np.ceil(n / max_points))), n - 1])
    return da.isel({dim: idx})


def lines(curves: list[tuple[np.ndarray, np.ndarray]], kdims: list, label: str = "", **how) -> list:
    """Curves (x, y) styled alike (`style` arguments in `how`) as at most two layers: the first
    curve (labelled `label`, the legend entry) and the others as one Path. HoloViews draws each
    layer of an overlay as its own bokeh renderer with its own ranges and models (~10 ms a layer
    to draw, more to serialise); one Path is one multi_line. Each line is still stroked on its
    own (alpha and dashes as for separate curves), with a curve's padding (none along x); NaN
    breaks a line, as in a curve."""
    if not curves:
        return []
    (x, y), rest = curves[0], curves[1:]
    layers = [style(hv.Curve((x, y), *kdims, label=label), **how)]
    if rest:
        data = [np.column_stack([np.asarray(x, float), np.asarray(y, float)]) for x, y in rest]
        layers.append(style(hv.Path(data, kdims=kdims), **how, padding=(0, 0.1)))
    return layers


def path_arrays(el: hv.Path) -> list[np.ndarray]:
    """The (n, 2) x-y arrays of a Path's lines: as `lines` stores them, else through `split`
    (HoloViews' split builds a Dataset per line: ~5 ms for two)."""
    data = el.data
    if isinstance(data, list) and all(isinstance(p, np.ndarray) and p.ndim == 2 for p in data):
        return [np.asarray(p[:, :2], float) for p in data]
    return [np.column_stack([p.dimension_values(0), p.dimension_values(1)]).astype(float)
            for p in el.split()]  # fmt: skip


def hline(y: float, x0: float, x1: float, label: str, color: str, dash: str = "dashed") -> hv.Curve:
    """A horizontal reference line drawn as a labelled curve (so it appears in the legend)."""
    return style(hv.Curve(([x0, x1], [y, y]), label=label), color=color, width=1.5, dash=dash)


def circle_xy(radius: float) -> tuple[np.ndarray, np.ndarray]:
    """x and y of the circle |λ| = radius (`circle`)."""
    t = np.linspace(0, 2 * np.pi, 181)
    return radius * np.cos(t), radius * np.sin(t)


def circle(radius: float, label: str = "bulk edge g(1 + 2/√N)") -> hv.Curve:
    """The circle |λ| = radius in the complex plane (dashed grey); drawn at the bulk edge of the
    outlier rule, g (1 + 2/sqrt(N)) (the analysis' `bulk_radius`)."""
    path = hv.Curve(circle_xy(radius), RE, IM, label=label)
    return style(path, color="#888888", width=1.5, dash="dashed")


def complex_xy(z) -> tuple[np.ndarray, np.ndarray]:
    """Re and Im of the finite values of z (`points`); one NaN point when there is none."""
    z = np.asarray(z, dtype=complex).ravel()
    z = z[np.isfinite(z)]
    if z.size == 0:
        z = np.array([complex(np.nan, np.nan)])
    return z.real, z.imag


def points(
    z: np.ndarray, label: str, color: str, size: float, marker: str, alpha: float = 1.0
) -> hv.Points:
    """Complex values as points; an empty set keeps one NaN point so its legend icon is drawn."""
    return style(
        hv.Points(complex_xy(z), [RE, IM], label=label),
        color=color,
        size=size,
        marker=marker,
        alpha=alpha,
    )


def seed_color(i: int) -> str:
    return SEED_COLORS[i % len(SEED_COLORS)]


def units(da: xr.DataArray, default: str = "dimensionless") -> str:
    u = str(da.attrs.get("units", "1"))
    return default if u in ("1", "") else u
