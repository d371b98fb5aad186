"""Offline widgets for HoloMaps in report.html: an epoch slider and a member (seed) selector.

HoloViews' bokeh plot of the HoloMap is updated to every frame and each frame's data sources
and title are captured; a bokeh `Slider` (for a kdim named `epoch`) and a `Select` (any other
kdim, e.g. the seed) swap them with one small `CustomJS` callback. No server, no request.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import holoviews as hv
import numpy as np
from bokeh.layouts import column, row
from bokeh.models import Column, ColumnDataSource, CustomJS, CustomJSTickFormatter, Select, Slider

from rnnlab.analysis.report import bokeh_draw, options
from rnnlab.analysis.report.style import bokeh_options

__all__ = ["Frames", "embed_holomap"]

CODE = """
    let i = 0;
    for (let d = 0; d < widgets.length; d++) {
        const w = widgets[d];
        const k = w.options !== undefined ? w.options.indexOf(w.value) : Math.round(w.value);
        i = i * sizes[d] + k;
    }
    const f = index[i];
    if (f < 0) { return; }
    for (let k = 0; k < sources.length; k++) { sources[k].data = frames[f][k]; }
    fig.title.text = titles[f];
"""


@dataclass
class Frames:
    """The frames of a figure that widgets pick (`kdims`: an epoch slider, a member selector),
    without each frame built as HoloViews objects: `frame(key)` builds one, `data(key)` gives
    its layers' data as report/bokeh_draw draws them. A HoloMap's own (`of_holomap`), or a
    figure's that can compute its frames' data directly (the spectrum: up to 50 frames of 7
    layers cost ~0.5 s to build, and the page draws one of them). `holomap()` builds them all."""

    kdims: list
    keys: list  # as a HoloMap holds them: tuples for several kdims
    titles: list[str]
    frame: Callable[[object], object]
    data: Callable[[object], list[dict]]

    @classmethod
    def of_holomap(cls, hmap: hv.HoloMap) -> Frames:
        keys = list(hmap.keys())
        titles = [str(bokeh_options(hmap[k], "plot").get("title", "")) for k in keys]

        def frame_data(key) -> list[dict]:
            return [bokeh_draw.layer_data(el) for el in bokeh_draw.layers_of(hmap[key])]

        return cls(list(hmap.kdims), keys, titles, hmap.__getitem__, frame_data)

    def holomap(self) -> hv.HoloMap:
        return hv.HoloMap({k: self.frame(k) for k in self.keys}, kdims=self.kdims, sort=False)


def _tidy(fig) -> None:
    """Hide the toolbar until hover and drop its logo (cleaner for slides)."""
    fig.toolbar.logo = None
    fig.toolbar.autohide = True


def _frame_data(subplot, el, columns: list[str]) -> dict[str, np.ndarray] | None:
    """The source columns of `subplot` for element `el`: its dimension values where every column
    is a dimension, else what the subplot's own `get_data` makes of `el` (a HeatMap's
    `zvalues`, its cells in the plot's order); None if a column is missing."""
    if all(el.get_dimension(c) is not None for c in columns):
        return {c: np.asarray(el.dimension_values(c)) for c in columns}
    data = subplot.get_data(el, subplot.current_ranges, subplot.style[subplot.cyclic_index])[0]
    if any(c not in data for c in columns):
        return None
    return {c: np.asarray(data[c]) for c in columns}


def _fast_frames(hmap: hv.HoloMap, keys: list, plot) -> list | None:
    """Each frame's source data read straight from its elements (`_frame_data`) when every
    frame has the same layers as the plotted one; None otherwise. Plotting every frame through
    HoloViews instead recomputes the ranges over all frames at each one (minutes for 50
    frames; the block heatmaps' 4 seeds: 0.4 s against 0.1 s)."""
    subplots = list(getattr(plot, "subplots", {}).values()) or [plot]
    first = hmap[keys[0]]
    layers = list(first.values()) if isinstance(first, hv.Overlay) else [first]
    if len(subplots) != len(layers):
        return None
    sources, columns = [], []
    for sp in subplots:
        src = sp.handles.get("source")
        if src is None:
            return None
        sources.append(src)
        columns.append(list(src.data))
    frames = []
    for key in keys:
        obj = hmap[key]
        els = list(obj.values()) if isinstance(obj, hv.Overlay) else [obj]
        if len(els) != len(layers) or any(
            type(a) is not type(b) for a, b in zip(els, layers, strict=True)
        ):
            return None
        frame = [
            _frame_data(sp, el, cols) for sp, el, cols in zip(subplots, els, columns, strict=True)
        ]
        if any(data is None for data in frame):
            return None
        frames.append(frame)
    return sources, frames


def _alike(hmap: hv.HoloMap) -> bool:
    """Whether bokeh_draw draws every frame of `hmap` and they all have the same layers."""
    kinds = {tuple(type(el) for el in bokeh_draw.layers_of(f)) for f in hmap.values()}
    return len(kinds) == 1 and bokeh_draw.drawable(hmap)


def _direct_frames(frames: Frames) -> tuple | None:
    """The first frame drawn as bokeh models directly (report/bokeh_draw.py, its ranges those
    of that frame, as HoloViews' plot of it has them) and every frame's data, when every frame
    has the same layers and bokeh_draw draws them; None otherwise."""
    first = frames.frame(frames.keys[0])
    if not bokeh_draw.drawable(first):
        return None
    try:
        fig, sources = bokeh_draw.draw(first)
    except ValueError:  # nothing finite to range the plot: HoloViews decides
        return None
    data = [frames.data(k) for k in frames.keys]
    columns = [sorted(d) for d in data[0]]
    if any([sorted(d) for d in frame] != columns for frame in data):
        return None
    return fig, sources, data


def _plotted_frames(hmap: hv.HoloMap) -> tuple:
    """The slow way: HoloViews' plot of the whole HoloMap, updated to every frame; the plot, its
    data sources and each frame's data and title."""
    plot = hv.renderer("bokeh").get_plot(hmap)
    fig = plot.state
    # in creation order (ids count up): `select` walks a set, so the page would differ from run
    # to run in the order of these sources and their frames
    sources = sorted(fig.select({"type": ColumnDataSource}), key=lambda m: (len(m.id), m.id))
    frames, titles = [], []
    for i in range(len(hmap)):
        plot.update(i)
        frames.append([{k: np.array(v) for k, v in s.data.items()} for s in sources])
        titles.append(fig.title.text)
    return plot, sources, frames, titles


def embed_holomap(obj: hv.HoloMap | Frames, name: str) -> Column:
    """Bokeh figure with one widget per kdim of `obj` (epoch: slider at the last value; other
    kdims: a select at the first value); every frame's data is captured and embedded."""
    frames_of = obj if isinstance(obj, Frames) else Frames.of_holomap(obj)
    raw_keys, kdims, titles = frames_of.keys, frames_of.kdims, frames_of.titles
    keys = [tuple(k) if isinstance(k, tuple) else (k,) for k in raw_keys]
    values = [list(dict.fromkeys(k[d] for k in keys)) for d in range(len(kdims))]
    sizes = [len(v) for v in values]
    position = {k: i for i, k in enumerate(keys)}
    direct = _direct_frames(frames_of) if not isinstance(obj, hv.HoloMap) or _alike(obj) else None
    if direct is not None:
        fig, sources, frames = direct
    else:
        # plot one frame through HoloViews (it carries the HoloMap's options) and read every
        # frame's data; or, where the frames differ in their layers, plot every frame
        hmap = options.to_holoviews(obj if isinstance(obj, hv.HoloMap) else obj.holomap())
        plot = hv.renderer("bokeh").get_plot(hmap.clone({raw_keys[0]: hmap[raw_keys[0]]}))
        fast = _fast_frames(hmap, raw_keys, plot)
        if fast is not None:
            sources, frames = fast
        else:
            plot, sources, frames, titles = _plotted_frames(hmap)
        fig = plot.state
    fig.output_backend = "canvas"
    _tidy(fig)
    # frame of every combination of widget values (-1: that combination has no frame)
    index = [position.get(combo, -1) for combo in itertools.product(*values)]
    widgets = []
    for d, kdim in enumerate(kdims):
        vals = values[d]
        if kdim.name == "epoch":
            last = len(vals) - 1
            fmt = CustomJSTickFormatter(
                args={"epochs": [int(v) for v in vals]}, code="return epochs[Math.round(tick)]"
            )
            widgets.append(
                Slider(
                    start=0,
                    end=max(last, 1),
                    value=last,
                    step=1,
                    title="epoch",
                    format=fmt,
                    width=fig.width,
                    disabled=last == 0,
                )  # fmt: skip
            )
        else:
            opts = [str(v) for v in vals]
            widgets.append(Select(title=kdim.label, value=opts[0], options=opts, width=180))
    # show the frame the widgets start at (last epoch, first member)
    start = 0
    for d, w in enumerate(widgets):
        k = w.options.index(w.value) if isinstance(w, Select) else int(w.value)
        start = start * sizes[d] + k
    if index[start] >= 0:
        for s, data in zip(sources, frames[index[start]], strict=True):
            s.data = data
        fig.title.text = titles[index[start]]
    args = {"sources": sources, "frames": frames, "titles": titles, "fig": fig,
            "widgets": widgets, "sizes": sizes, "index": index}  # fmt: skip
    callback = CustomJS(args=args, code=CODE)
    for w in widgets:
        w.js_on_change("value", callback)
    selects = [w for w in widgets if isinstance(w, Select)]
    sliders = [w for w in widgets if not isinstance(w, Select)]
    parts = ([row(*selects)] if selects else []) + [fig] + sliders
    return column(*parts, name=name)
