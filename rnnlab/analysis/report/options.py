"""The bokeh options of the report's figures, kept without HoloViews' bokeh backend.

HoloViews keeps an element's options only for a loaded backend, and loading the bokeh one
imports its plotting classes and panel: ~0.55 s of the ~1.4 s a plotting process of
`rnnlab analyze` spent importing, though the page (bokeh_draw.py) and the PNGs (png.py) only
read the options. Figures built inside `direct_drawing()` (build.py builds the page's figures so)
carry their bokeh options here instead, by element id as HoloViews keeps them (a clone keeps its
id; a new option gives the element a new id in place, over the options it had), and `lookup`
gives what HoloViews' lookup gives: its defaults for the element type (`BOKEH_DEFAULTS`), then
the options set, split into plot and style options (`PLOT_OPTIONS`) as HoloViews splits them.
A figure that HoloViews draws after all gets them as HoloViews options first (`to_holoviews`).
tests/report/test_options.py compares every figure's options with HoloViews' own.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from typing import TypeVar

import holoviews as hv
import numpy as np

__all__ = [
    "BOKEH_DEFAULTS",
    "PLOT_OPTIONS",
    "bokeh_loaded",
    "direct_drawing",
    "drawing_directly",
    "load_bokeh",
    "lookup",
    "palette",
    "record",
    "to_holoviews",
]

V = TypeVar("V", bound=hv.core.Dimensioned)

_POINTS = {"cmap": "kbc_r", "color": hv.Cycle(), "muted_alpha": 0.2, "size": np.sqrt(6)}
# HoloViews' bokeh defaults of the element types the report draws, by group
# (holoviews/plotting/bokeh/__init__.py; tests/report/test_options.py checks them)
BOKEH_DEFAULTS: dict[str, dict[str, dict]] = {
    "Curve": {"style": {"color": hv.Cycle(), "line_width": 2, "muted_alpha": 0.2}},
    "Path": {"style": {"cmap": "kbc_r", "color": hv.Cycle(), "muted_alpha": 0.2}},
    "Points": {"style": {**_POINTS, "radius_dimension": "min"}, "plot": {"show_frame": True}},
    "Scatter": {"style": _POINTS},
    "ErrorBars": {"style": {"color": "black"}},
    "HeatMap": {"style": {"annular_line_alpha": 0, "cmap": "kbc_r",
                          "xmarks_line_color": "#FFFFFF", "xmarks_line_width": 3,
                          "ymarks_line_color": "#FFFFFF", "ymarks_line_width": 3}},
    "Labels": {"style": {"text_align": "center", "text_baseline": "middle",
                         "text_color": hv.Cycle()}},
    "Overlay": {"style": {"click_policy": "mute"}},
}  # fmt: skip
# The plot options (of HoloViews' plot classes, as against style options of the glyphs) that the
# report's figures set; another option is taken for a style option.
PLOT_OPTIONS = frozenset({
    "clim", "colorbar", "fontsize", "frame_height", "frame_width", "invert_yaxis",
    "legend_limit", "legend_position", "logx", "logy", "padding", "show_grid", "show_legend",
    "title", "toolbar", "xlabel", "xlim", "xticks", "ylabel", "ylim", "yticks",
})  # fmt: skip

_OPTIONS: dict[int, dict] = {}
_IDS = itertools.count(1 << 40)  # far above the ids HoloViews gives (counted up from 0)
_depth = 0


def bokeh_loaded() -> bool:
    """Whether HoloViews' bokeh backend is loaded."""
    return "bokeh" in hv.Store.renderers


def load_bokeh() -> None:
    """Load HoloViews' bokeh backend (its plotting classes and panel: ~0.55 s, once)."""
    import holoviews.plotting.bokeh  # noqa: F401  (registers the bokeh options)


@contextlib.contextmanager
def direct_drawing() -> Iterator[None]:
    """Figures styled inside keep their bokeh options here, for bokeh_draw.py and png.py, until
    the outermost such block ends (draw them inside it)."""
    global _depth
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0:
            _OPTIONS.clear()


def drawing_directly() -> bool:
    """Whether figures are being styled for direct drawing (`direct_drawing`)."""
    return _depth > 0


def record(el: V, bokeh: dict) -> V:
    """`el` with the `bokeh` options over those it has: in place, under a new id, as HoloViews'
    `.opts` gives an element a new options tree."""
    own = _OPTIONS.get(el.id, {}) if el.id is not None else {}
    el.id = next(_IDS)
    _OPTIONS[el.id] = {**own, **bokeh}
    return el


def lookup(el: hv.core.Dimensioned, group: str) -> dict | None:
    """The bokeh options of `group` ("style" or "plot") that HoloViews would give `el`, if they
    are kept here (also: none are set and the bokeh backend is not loaded); else None."""
    own = _OPTIONS.get(el.id) if el.id is not None else None
    if own is None:
        if bokeh_loaded():
            return None
        own = {}
    plot = group == "plot"
    chosen = {k: v for k, v in own.items() if (k in PLOT_OPTIONS) == plot}
    return {**BOKEH_DEFAULTS.get(type(el).__name__, {}).get(group, {}), **chosen}


def to_holoviews(obj: V) -> V:
    """`obj` with the options kept here given to HoloViews, in place (the bokeh backend loaded),
    for HoloViews to draw it: the layers before the overlays and HoloMaps holding them."""
    load_bokeh()
    for part in reversed(obj.traverse(lambda x: x)):
        own = _OPTIONS.get(part.id) if part.id is not None else None
        if own is not None:
            part.id = None
            part.opts(backend="bokeh", **own)
    return obj


def palette(cmap: str, n: int = 256) -> list[str]:
    """HoloViews' `process_cmap(cmap, n)`: for a matplotlib colormap, the colours it takes from
    matplotlib, made here (its module imports HoloViews' plotting classes and panel); other
    names through it."""
    from matplotlib import colormaps
    from matplotlib.colors import ListedColormap

    colormap = colormaps.get(cmap, colormaps.get(cmap.lower()))
    if colormap is None or (isinstance(colormap, ListedColormap) and colormap.N > n):
        from holoviews.plotting.util import process_cmap

        return process_cmap(cmap, n)
    return [_hex(c) for c in colormap(np.linspace(0, 1, n))]


def _hex(rgba) -> str:
    return "#{:02x}{:02x}{:02x}".format(*(int(v * 255) for v in rgba[:3]))
