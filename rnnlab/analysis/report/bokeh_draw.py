"""The page's figures drawn as bokeh models directly, from the report's HoloViews figures.

HoloViews' bokeh plotting classes cost ~10 ms a layer and ~40 ms a plot in its options, ranges
and property machinery: most of what `rnnlab analyze` spent drawing. The report's figures use a
handful of element types, styled by style.py, so their bokeh options say how each layer looks
(as png.py reads them for the PNGs); this module makes the same bokeh models from them: Curve,
Path, Points and Scatter (one colour, or coloured by a dimension with a colour bar), ErrorBars
and Text, with the frame's title, labels, log axis, limits, ticks, grid, legend and size, and
the plot ranges HoloViews computes (its padding rules, below). `drawable` says whether an object
is made only of those; the page draws anything else through HoloViews (report/page.py).
tests/report/test_bokeh_draw.py compares every figure of a report with what HoloViews draws.
"""

from __future__ import annotations

import holoviews as hv
import numpy as np
from bokeh.models import (
    BasicTicker,
    BoxZoomTool,
    ColorBar,
    ColumnDataSource,
    FactorRange,
    FixedTicker,
    GlyphRenderer,
    Legend,
    LegendItem,
    Line,
    LinearColorMapper,
    MultiLine,
    NoOverlap,
    PanTool,
    Range1d,
    Rect,
    ResetTool,
    SaveTool,
    Scatter,
    TeeHead,
    Text,
    WheelZoomTool,
    Whisker,
)
from bokeh.plotting import figure as bokeh_figure

from rnnlab.analysis.report.options import palette
from rnnlab.analysis.report.style import bokeh_options, path_arrays

__all__ = ["draw", "drawable", "layer_data", "layers_of"]

MUTED_ALPHA = 0.2  # HoloViews' muted_alpha: a layer muted from the legend
DEFAULT_SPAN = 1.0  # half of HoloViews' default_span: the range of a single value
# HoloViews' default padding of the plot of each element type (fraction of the data range)
PADDING = {hv.Curve: (0, 0.1), hv.ErrorBars: 0.1, hv.Path: 0.1, hv.Points: 0.1,
           hv.Scatter: 0.1, hv.Text: 0.1}  # fmt: skip
# bokeh's named dash patterns as the lists HoloViews gives a line
DASHES = {"solid": [], "dashed": [6], "dotted": [2, 4], "dotdash": [2, 4, 6, 4],
          "dashdot": [6, 4, 2, 4]}  # fmt: skip
# elements whose HoloViews plots are LegendPlots (a lone one keeps its legend entry)
LEGEND_PLOTS = (hv.Points, hv.Scatter, hv.Path)
# legend positions outside the frame: the side of the figure HoloViews puts them on
OUTSIDE = {"right": "right", "left": "left", "top": "above", "bottom": "below"}


def layers_of(obj) -> list:
    """The layers of an Overlay (or the one element)."""
    return list(obj.values()) if isinstance(obj, hv.Overlay) else [obj]


def drawable(obj) -> bool:
    """Whether `draw` makes `obj` (an Overlay of the element types above, or one of them, or a
    HoloMap of such frames)."""
    frames = list(obj.values()) if isinstance(obj, hv.HoloMap) else [obj]
    for frame in frames:
        if isinstance(frame, hv.Overlay) and frame.kdims:
            return False
        layers = layers_of(frame)
        if any(isinstance(el, hv.HeatMap | hv.Labels) for el in layers):
            if not _is_heatmap(layers):
                return False
            continue
        for el in layers:
            if type(el) not in PADDING:
                return False
            if isinstance(el, hv.Points | hv.Scatter) and _color_dim(el) is None:
                color = bokeh_options(el, "style").get("color")
                if isinstance(color, str) and not color.startswith("#") and el.get_dimension(color):
                    return False
    return True


def _is_heatmap(layers: list) -> bool:
    """A HeatMap of categories with Labels over it (the cluster blocks)."""
    return (
        type(layers[0]) is hv.HeatMap
        and all(type(el) is hv.Labels for el in layers[1:])
        and all(
            v.size == 0 or v.dtype.kind in "OUS"
            for el in layers
            for v in (el.dimension_values(0), el.dimension_values(1))
        )
    )


def _color_dim(el) -> str | None:
    """The dimension a Points/Scatter layer is coloured by (its `color` option names one)."""
    color = bokeh_options(el, "style").get("color")
    if isinstance(color, str) and len(el.dimensions()) > 2 and el.get_dimension(color) is not None:
        return el.get_dimension(color).name
    return None


def _values(el, dim) -> np.ndarray:
    """A dimension's values in their own numeric type (float32 data stay float32 on the page,
    as HoloViews sends them), else as floats."""
    values = np.asarray(el.dimension_values(dim))
    return values if values.dtype.kind in "fiu" else values.astype(float)


def _xy(el) -> tuple[np.ndarray, np.ndarray]:
    return _values(el, 0), _values(el, 1)


def layer_data(el) -> dict[str, np.ndarray | list]:
    """The data source columns of one layer, as `draw` makes them (a HoloMap's frames swap
    these in)."""
    if isinstance(el, hv.Path):
        paths = path_arrays(el)
        return {"xs": [p[:, 0] for p in paths], "ys": [p[:, 1] for p in paths]}
    if isinstance(el, hv.ErrorBars):
        x, y = _xy(el)
        neg = _values(el, 2)
        pos = _values(el, 3) if len(el.vdims) > 2 else neg
        return {"base": x, "lower": y - neg, "upper": y + pos}
    if isinstance(el, hv.Text):
        return {"x": np.array([el.x]), "y": np.array([el.y]), "text": [el.text]}
    if isinstance(el, hv.HeatMap):  # its cells on HoloViews' grid of the categories
        grid = _gridded(el)
        return {"x": list(map(str, grid.dimension_values(0))),
                "y": list(map(str, grid.dimension_values(1))),
                "z": np.asarray(grid.dimension_values(2), float)}  # fmt: skip
    if isinstance(el, hv.Labels):
        return {k: list(map(str, el.dimension_values(d))) for k, d in (("x", 0), ("y", 1),
                                                                       ("text", 2))}  # fmt: skip
    x, y = _xy(el)
    data = {"x": x, "y": y}
    if isinstance(el, hv.Points | hv.Scatter) and (dim := _color_dim(el)) is not None:
        data["color"] = _values(el, dim)
    return data


def _gridded(el: hv.HeatMap) -> hv.HeatMap:
    """A HeatMap's cells on its grid of categories: its `gridded`, without the `.apply` that
    operation goes through (which imports panel, ~0.3 s: see options.py)."""
    from holoviews.operation.element import categorical_aggregate2d

    return categorical_aggregate2d.instance().process_element(el, None)


def _extent(el, data: dict, log: bool) -> tuple[list[float], list[float]]:
    """The least and greatest finite values of a layer (its `layer_data`) along x and y
    (positive ones along a log y axis); annotations and categories have none."""
    if isinstance(el, hv.Text | hv.HeatMap | hv.Labels):
        return [], []
    if isinstance(el, hv.Path):
        xs, ys = np.concatenate([[], *data["xs"]]), np.concatenate([[], *data["ys"]])
    elif isinstance(el, hv.ErrorBars):
        xs, ys = data["base"], np.concatenate([data["lower"], data["upper"]])
    else:
        xs, ys = data["x"], data["y"]
    # in float64: HoloViews computes in the data's type, ~1e-7 apart for float32 data
    xs, ys = np.asarray(xs, float), np.asarray(ys, float)
    xs, ys = xs[np.isfinite(xs)], ys[np.isfinite(ys)]
    if log:
        ys = ys[ys > 0]
    return [float(xs.min()), float(xs.max())] if xs.size else [], (
        [float(ys.min()), float(ys.max())] if ys.size else []
    )


def _pad(lo: float, hi: float, pad, log: bool) -> tuple[float, float]:
    """HoloViews' range_pad: widen [lo, hi] by a fraction of its span (in log space on a log
    axis); `pad` one fraction or (lower, upper)."""
    lpad, upad = pad if isinstance(pad, tuple) else (pad, pad)
    if log and lo > 0 and hi > 0:
        a, b = np.log(lo) / np.log(10), np.log(hi) / np.log(10)
        lspan, uspan = (b - a) * (1 + lpad * 2), (b - a) * (1 + upad * 2)
        center = (a + b) / 2.0
        return float(np.power(10, center - lspan / 2.0)), float(np.power(10, center + uspan / 2.0))
    span = hi - lo
    return lo - span * lpad, hi + span * upad


def _limit(lo: float, hi: float, lim) -> tuple[float, float]:
    if lim is None:
        return lo, hi
    lim_lo, lim_hi = lim
    finite = [v is not None and np.isfinite(v) for v in (lim_lo, lim_hi)]
    if all(finite):
        return float(lim_lo), float(lim_hi)
    return (float(lim_lo) if finite[0] else lo), (float(lim_hi) if finite[1] else hi)


def _padding(first, plot: dict):
    """The padding HoloViews applies: the frame's option, else the first layer's (its plot
    class default when it has none)."""
    if plot.get("padding") is not None:
        return plot["padding"]
    own = bokeh_options(first, "plot").get("padding")
    return own if own is not None else PADDING[type(first)]


def ranges(
    obj, plot: dict, data: list[dict] | None = None
) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """The x and y ranges of the plot of `obj` (its layers' `layer_data`: `data`, when already
    made), as HoloViews computes them: the data range of every layer, a span of 2 around a
    single value, the padding (x padding divided by the frame's aspect ratio when it is wider
    than high, y padding times it otherwise), then `xlim`/`ylim`. None when a range has no
    finite value."""
    logy = bool(plot.get("logy"))
    layers = layers_of(obj)
    data = data if data is not None else [layer_data(el) for el in layers]
    xs, ys = [], []
    for el, columns in zip(layers, data, strict=True):
        x, y = _extent(el, columns, logy)
        xs += x
        ys += y
    lims = (plot.get("xlim"), plot.get("ylim"))
    if not xs or not ys:
        if all(lim is not None and all(v is not None for v in lim) for lim in lims):
            return tuple(map(float, lims[0])), tuple(map(float, lims[1]))
        return None
    (x0, x1), (y0, y1) = (min(xs), max(xs)), (min(ys), max(ys))
    if x0 == x1:
        x0, x1 = x0 - DEFAULT_SPAN, x1 + DEFAULT_SPAN
    if y0 == y1:
        y0, y1 = y0 - DEFAULT_SPAN, y1 + DEFAULT_SPAN
    pad = _padding(layers[0], plot)
    xpad, ypad = pad if isinstance(pad, tuple) else (pad, pad)
    aspect = plot.get("frame_width", 420) / plot.get("frame_height", 280)
    if aspect > 1:
        xpad = tuple(p / aspect for p in xpad) if isinstance(xpad, tuple) else xpad / aspect
    else:
        ypad = tuple(p * aspect for p in ypad) if isinstance(ypad, tuple) else ypad * aspect
    x0, x1 = _settle(*_limit(*_pad(x0, x1, xpad, False), lims[0]), False)
    y0, y1 = _settle(*_limit(*_pad(y0, y1, ypad, logy), lims[1]), logy)
    return (x0, x1), (y0, y1)


def _settle(lo: float, hi: float, log: bool) -> tuple[float, float]:
    """HoloViews' last word on a range: an empty one widened by 10% of its value (0.5 at 0),
    and on a log axis a lower end of 0.01 (or two decades below the upper end) instead of a
    value <= 0."""
    if lo == hi:
        offset = abs(lo * 0.1 if lo else 0.5)
        lo, hi = lo - offset, hi + offset
    if log and lo <= 0:
        lo = 0.01 if hi > 0.01 else float(10 ** (np.log10(hi) - 2))
    return lo, hi


def _dash(value) -> list | str:
    if isinstance(value, str) and value in DASHES:
        return DASHES[value]
    return value if value is not None else []


def _line_props(style: dict) -> dict:
    props = {"line_color": style.get("color", "#30a2da"), "line_alpha": style.get("alpha", 1.0),
             "line_width": style.get("line_width", 2)}  # fmt: skip
    dash = _dash(style.get("line_dash"))
    if dash:
        props["line_dash"] = dash
    return props


def _renderer(source, glyph, muted) -> GlyphRenderer:
    return GlyphRenderer(data_source=source, glyph=glyph, muted_glyph=muted)


def _curve(fig, el, source, style) -> GlyphRenderer:
    props = _line_props(style)
    muted = Line(x="x", y="y", **{**props, "line_alpha": MUTED_ALPHA})
    return _renderer(source, Line(x="x", y="y", **props), muted)


def _path(fig, el, source, style) -> GlyphRenderer:
    props = _line_props(style)
    muted = MultiLine(xs="xs", ys="ys", **{**props, "line_alpha": MUTED_ALPHA})
    return _renderer(source, MultiLine(xs="xs", ys="ys", **props), muted)


def _points(fig, el, source, style) -> GlyphRenderer:
    alpha = style.get("alpha", 1.0)
    color = style.get("color", "#30a2da")
    if "color" in source.data:
        low, high = np.nanmin(source.data["color"]), np.nanmax(source.data["color"])
        mapper = LinearColorMapper(palette=palette(style.get("cmap", "viridis")), low=low,
                                   high=high)  # fmt: skip
        color = {"field": "color", "transform": mapper}
        _colorbar(fig, mapper, el.get_dimension(_color_dim(el)).pprint_label)
    props = {"marker": style.get("marker", "circle"), "size": style.get("size", 6),
             "line_color": color, "fill_color": color, "line_alpha": alpha,
             "fill_alpha": alpha}  # fmt: skip
    if "line_width" in style:
        props["line_width"] = style["line_width"]
    muted = Scatter(x="x", y="y", **{**props, "line_alpha": MUTED_ALPHA,
                                     "fill_alpha": MUTED_ALPHA})  # fmt: skip
    return _renderer(source, Scatter(x="x", y="y", **props), muted)


def _colorbar(fig, mapper: LinearColorMapper, title: str) -> None:
    fig.add_layout(ColorBar(color_mapper=mapper, location=(0, 0), title=title,
                            ticker=BasicTicker(), label_standoff=8, major_tick_line_color="black",
                            bar_line_color="black", major_label_policy=NoOverlap()),
                   "right")  # fmt: skip


def _heatmap(fig, el, source, style) -> GlyphRenderer:
    """Cells as rectangles coloured on the `clim` scale (else the data's), NaN white."""
    plot = bokeh_options(el, "plot")
    z = np.asarray(source.data["z"], float)
    low, high = plot.get("clim") or (np.nanmin(z), np.nanmax(z))
    mapper = LinearColorMapper(palette=palette(style.get("cmap", "viridis")), low=low,
                               high=high, nan_color="white")  # fmt: skip
    if plot.get("colorbar"):
        _colorbar(fig, mapper, el.vdims[0].pprint_label)
    # no outline (HoloViews' colour at alpha 0)
    props = {"width": 1, "height": 1, "line_color": "#1f77b4", "line_alpha": 0,
             "fill_color": {"field": "z", "transform": mapper}}  # fmt: skip
    muted = Rect(x="x", y="y", **{**props, "fill_alpha": MUTED_ALPHA})
    return _renderer(source, Rect(x="x", y="y", **props), muted)


def _labels(fig, el, source, style) -> GlyphRenderer:
    props = {"text_color": style.get("text_color", "black"), "text_align": "center",
             "text_baseline": "middle"}  # fmt: skip
    muted = Text(x="x", y="y", text="text", **props, text_alpha=MUTED_ALPHA)
    return _renderer(source, Text(x="x", y="y", text="text", **props), muted)


def _errorbars(fig, el, source, style) -> None:
    props = {"line_color": style.get("color", "#30a2da"), "line_alpha": style.get("alpha", 1.0),
             "line_width": style.get("line_width", 1)}  # fmt: skip
    # the caps as HoloViews draws them: 10 px, bokeh's default line (black, 1 px)
    heads = {"lower_head": TeeHead(size=10), "upper_head": TeeHead(size=10)}
    fig.add_layout(Whisker(source=source, base="base", lower="lower", upper="upper", **props,
                           **heads))  # fmt: skip


def _text(fig, el, source, style) -> GlyphRenderer:
    props = {"text_color": style.get("text_color", style.get("color", "black")),
             "text_align": "center", "text_baseline": "middle",
             "text_font_size": f"{el.fontsize or 12}Pt"}  # fmt: skip
    return _renderer(source, Text(x="x", y="y", text="text", **props), None)


_DRAW = {hv.Curve: _curve, hv.Path: _path, hv.Points: _points, hv.Scatter: _points,
         hv.ErrorBars: _errorbars, hv.Text: _text, hv.HeatMap: _heatmap,
         hv.Labels: _labels}  # fmt: skip


def _ticks(fig_axis, spec) -> None:
    spec = list(spec)
    if spec and isinstance(spec[0], tuple):
        positions = [t[0] for t in spec]
        fig_axis.ticker = FixedTicker(ticks=positions)
        fig_axis.major_label_overrides = {t[0]: str(t[1]) for t in spec}
    else:
        fig_axis.ticker = FixedTicker(ticks=spec)


def _tools() -> tuple[list, PanTool, WheelZoomTool]:
    pan, wheel = PanTool(), WheelZoomTool(zoom_together="none")
    return [wheel, SaveTool(), pan, BoxZoomTool(), ResetTool()], pan, wheel


def draw(obj) -> tuple[object, list[ColumnDataSource]]:
    """A bokeh figure of `obj` (an Overlay or element that `drawable` accepts) and the data
    source of each layer."""
    plot = bokeh_options(obj, "plot")
    layers = layers_of(obj)
    data = [layer_data(el) for el in layers]
    if isinstance(layers[0], hv.HeatMap):  # categories along both axes, in the grid's order
        x_range = FactorRange(factors=list(dict.fromkeys(data[0]["x"])))
        y_factors = list(dict.fromkeys(data[0]["y"]))
        y_range = FactorRange(factors=y_factors[::-1] if plot.get("invert_yaxis") else y_factors)
    else:
        span = ranges(obj, plot, data)
        if span is None:
            raise ValueError("no finite data to range the plot")
        (x0, x1), (y0, y1) = span
        if plot.get("invert_yaxis"):
            y0, y1 = y1, y0
        x_range = Range1d(x0, x1, reset_start=x0, reset_end=x1)
        y_range = Range1d(y0, y1, reset_start=y0, reset_end=y1)
    tools, pan, wheel = _tools()
    fig = bokeh_figure(
        width=None,  # sized by its frame (bokeh's default 600 would size the widgets under it)
        height=None,
        frame_width=plot.get("frame_width", 420),
        frame_height=plot.get("frame_height", 280),
        x_range=x_range,
        y_range=y_range,
        y_axis_type="log" if plot.get("logy") else "auto",
        x_axis_label=plot.get("xlabel", ""),
        y_axis_label=plot.get("ylabel", ""),
        title=plot.get("title", ""),
        tools=tools,
        active_drag=pan,
        active_scroll=wheel,
        toolbar_location=plot.get("toolbar", "right"),
        min_border=10,
    )
    fig.title.text_font_size = (plot.get("fontsize") or {}).get("title", "12pt")
    if not plot.get("show_grid", False):
        fig.xgrid.grid_line_color = fig.ygrid.grid_line_color = None
    for name in ("xticks", "yticks"):
        if plot.get(name) is not None:
            _ticks(fig.xaxis[0] if name == "xticks" else fig.yaxis[0], plot[name])
    sources, items = [], {}
    for el, columns in zip(layers, data, strict=True):
        source = ColumnDataSource(columns)
        sources.append(source)
        renderer = _DRAW[type(el)](fig, el, source, bokeh_options(el, "style"))
        if renderer is None:
            continue
        fig.renderers.append(renderer)
        if el.label and not isinstance(el, hv.Text | hv.Labels | hv.HeatMap):
            items.setdefault(el.label, []).append(renderer)
    _legend(fig, plot, items, layers)
    return fig, sources


def _legend(fig, plot: dict, items: dict[str, list], layers: list) -> None:
    """The legend HoloViews gives an overlay: one entry per label (its layers mute together);
    none with show_legend off, nor for a lone Curve or ErrorBars (beside Text at most), whose
    plot classes, unlike those of points and paths, keep no legend of one entry."""
    drawn = [el for el in layers if not isinstance(el, hv.Text)]
    lone = len(drawn) <= 1 and not any(isinstance(el, LEGEND_PLOTS) for el in drawn)
    if not items or not plot.get("show_legend", True) or lone:
        return
    legend = Legend(items=[LegendItem(label=k, renderers=v) for k, v in items.items()],
                    click_policy="mute")  # fmt: skip
    position = plot.get("legend_position", "top_right")
    if position in OUTSIDE:
        legend.location = (0, 0)
        if position in ("top", "bottom"):
            legend.orientation = "horizontal"
        fig.add_layout(legend, OUTSIDE[position])
    else:
        legend.location = position
        fig.add_layout(legend, "center")
