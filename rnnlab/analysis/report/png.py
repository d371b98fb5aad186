"""figures/*.png drawn with matplotlib directly, from the report's HoloViews figures.

HoloViews' matplotlib backend is a second pass over every figure: importing it (with pyplot) and
styling every element for it as well as for bokeh, then its own plotting classes. The report's
PNG figures use a handful of element types, styled by style.py, so their bokeh options say how
each layer looks; this module draws those layers on a matplotlib Figure (Agg canvas, no pyplot):
Curve, Path, Points, Scatter, ErrorBars and Text, with the frame's title, labels, log axis,
limits, ticks, legend and size. Any other element is refused (ReportError): a new figure type must
be taught here before it can be a PNG (tests draw every PNG figure of a run and of a sweep).
"""

from __future__ import annotations

from pathlib import Path

import holoviews as hv
import numpy as np

from rnnlab.analysis.report.style import (
    BOKEH_DASH,
    MPL_DASH,
    MPL_MARKERS,
    PT_PER_PX,
    SEED_COLORS,
    bokeh_options,
    figure_inches,
    path_arrays,
)
from rnnlab.errors import ReportError

__all__ = ["save_png", "save_pngs"]

# bokeh dash patterns (style.BOKEH_DASH, for a Path) as the names they stand for
_PATTERNS = {pattern: name for name, pattern in BOKEH_DASH.items()}
_COLOR = SEED_COLORS[0]  # a layer without a colour option
# bokeh legend positions: matplotlib's loc inside the frame, or outside it on the right
_INSIDE = {
    "top_right": "upper right",
    "top_left": "upper left",
    "bottom_right": "lower right",
    "bottom_left": "lower left",
    "top": "upper center",
    "bottom": "lower center",
    "left": "center left",
}


def _dash(name: object) -> str:
    name = str(name or "solid")
    return MPL_DASH[_PATTERNS.get(name, name)]


def _line(opts: dict) -> dict:
    kw = {"color": opts.get("color", _COLOR), "alpha": opts.get("alpha", 1.0)}
    kw["linewidth"] = PT_PER_PX * float(opts.get("line_width", 2))
    kw["linestyle"] = _dash(opts.get("line_dash"))
    return kw


def _curve(ax, el: hv.Curve) -> None:
    ax.plot(el.dimension_values(0), el.dimension_values(1), label=el.label or None,
            **_line(bokeh_options(el, "style")))  # fmt: skip


def _path(ax, el: hv.Path) -> None:
    from matplotlib.collections import LineCollection

    style = _line(bokeh_options(el, "style"))  # a Line2D's kwargs, which a LineCollection takes
    ax.add_collection(LineCollection(path_arrays(el), **style))
    ax.autoscale_view()


def _points(ax, el: hv.Points | hv.Scatter) -> None:
    opts = bokeh_options(el, "style")
    color = opts.get("color", _COLOR)
    if isinstance(color, str) and color in [d.name for d in el.dimensions()]:
        raise ReportError(f"png: points coloured by {color!r} are not drawn here")
    marker = MPL_MARKERS.get(str(opts.get("marker", "circle")), "o")
    size = (PT_PER_PX * float(opts.get("size", 6))) ** 2
    ax.scatter(el.dimension_values(0), el.dimension_values(1), s=size, marker=marker,
               color=color, edgecolors=color, alpha=opts.get("alpha", 1.0),
               label=el.label or None, zorder=3)  # fmt: skip


def _errorbars(ax, el: hv.ErrorBars) -> None:
    opts = bokeh_options(el, "style")
    color = opts.get("color", _COLOR)
    ax.errorbar(el.dimension_values(0), el.dimension_values(1), yerr=el.dimension_values(2),
                fmt="none", ecolor=color, elinewidth=PT_PER_PX * float(opts.get("line_width", 1)),
                capsize=3, alpha=opts.get("alpha", 1.0))  # fmt: skip


def _text(ax, el: hv.Text) -> None:
    opts = bokeh_options(el, "style")
    ax.text(el.x, el.y, el.text, color=opts.get("text_color", opts.get("color", "black")),
            ha="center", va="center", fontsize=el.fontsize or 12)  # fmt: skip


_DRAW = {hv.Curve: _curve, hv.Path: _path, hv.Points: _points, hv.Scatter: _points,
         hv.ErrorBars: _errorbars, hv.Text: _text}  # fmt: skip


def _ticks(spec) -> tuple[list, list | None]:
    """Tick positions and labels (None: matplotlib's) of a HoloViews ticks option."""
    spec = list(spec)
    if spec and isinstance(spec[0], tuple):
        return [float(t[0]) for t in spec], [str(t[1]) for t in spec]
    return [float(t) for t in spec], None


def draw(obj: hv.core.Dimensioned):
    """A matplotlib Figure of `obj` (an Overlay of the elements above, or one of them)."""
    from matplotlib.figure import Figure

    layers = list(obj) if isinstance(obj, hv.Overlay) else [obj]
    for layer in layers:
        if type(layer) not in _DRAW:
            raise ReportError(f"png: cannot draw a {type(layer).__name__} layer")
    plot = bokeh_options(obj, "plot")
    legend = plot.get("legend_position", "top_right") if plot.get("show_legend", True) else None
    fw, fh = plot.get("frame_width", 420), plot.get("frame_height", 280)
    fig = Figure(figsize=figure_inches(fw, fh, legend == "right"))
    ax = fig.add_subplot()
    ax.set_box_aspect(fh / fw)
    for layer in layers:
        _DRAW[type(layer)](ax, layer)
    if plot.get("logy"):
        ax.set_yscale("log")
    pad = plot.get("padding")  # HoloViews' default for these plots: none along x
    pad = (0.0, 0.05) if pad is None else (pad, pad) if np.isscalar(pad) else pad
    ax.margins(x=pad[0], y=pad[1])
    for axis, set_lim, set_ticks in (("x", ax.set_xlim, ax.set_xticks),
                                     ("y", ax.set_ylim, ax.set_yticks)):  # fmt: skip
        lim = plot.get(f"{axis}lim")
        if lim is not None and all(v is not None and np.isfinite(v) for v in lim):
            set_lim(*lim)
        if plot.get(f"{axis}ticks") is not None:
            positions, labels = _ticks(plot[f"{axis}ticks"])
            set_ticks(positions, labels=labels)
    if plot.get("invert_yaxis"):
        ax.invert_yaxis()
    ax.set_title(plot.get("title", ""), fontsize=11)
    ax.set_xlabel(plot.get("xlabel", ""))
    ax.set_ylabel(plot.get("ylabel", ""))
    if plot.get("show_grid"):
        ax.grid(True, alpha=0.3)
    if legend and ax.get_legend_handles_labels()[1]:
        if legend == "right":
            ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False)
        else:
            ax.legend(loc=_INSIDE.get(legend, "best"), fontsize=8)
    return fig


def save_png(obj: hv.core.Dimensioned, path: str | Path, dpi: int) -> None:
    """`obj` as a PNG at `path` (`draw`), through the Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = draw(obj)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=dpi, bbox_inches="tight", pad_inches=0.1)  # legends outside the frame


def save_pngs(figs: dict[str, hv.core.Dimensioned], figdir: Path, dpi: int) -> dict[str, Path]:
    """figdir/<name>.png of every figure (`save_png`), keyed `figures/<name>.png`."""
    figdir.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, obj in figs.items():
        path = figdir / f"{name}.png"
        save_png(obj, path, dpi)
        out[f"figures/{name}.png"] = path
    return out
