"""What the figures of a report page show, as plain values, to compare two pages by content:
`benchmarks/compare_reports.py --content` and the tests of the page drawn directly
(report/bokeh_draw.py) against HoloViews' drawing of the same figures.

`summary(fig)`: ranges, scales, size, title, tools, axes and ticks, every layer's glyph, data and
style, error bars, legend entries and colour bars. `page_figures(html)`: each figure of a
report.html by name, with the frames its widgets swap in. `compare_pages(a, b)`: the differences.
"""

from __future__ import annotations

import json
import re

import numpy as np
from bokeh.models import ColorBar, GlyphRenderer, Legend, Whisker

# HoloViews computes plot ranges in the data's type, bokeh_draw in float64: float32 data (the
# archive's trajectories) give ranges ~1e-7 apart
RTOL = 1e-6
DASHES = {"solid": [], "dashed": [6], "dotted": [2, 4], "dotdash": [2, 4, 6, 4],
          "dashdot": [6, 4, 2, 4]}  # fmt: skip


def _value(v):
    """A property's plain value (bokeh wraps some in Value/Field)."""
    if hasattr(v, "value") and not isinstance(v, np.ndarray):
        return v.value
    if isinstance(v, dict) and "value" in v:
        return v["value"]
    return v


def _dash(v):
    v = _value(v)
    if isinstance(v, str):
        return DASHES[v] if v in DASHES else [int(x) for x in v.split()]
    return list(v or [])


def _column(source, spec):
    field = getattr(spec, "field", spec if isinstance(spec, str) else None)
    data = source.data[field]
    if isinstance(data, list) and data and not np.isscalar(data[0]):  # multi_line
        return [np.asarray(p, float) for p in data]
    values = np.asarray(data)
    if values.dtype.kind in "OUS":  # categories, text
        return [str(v) for v in values]
    return values.astype(float)


STYLE = ("line_color", "line_alpha", "line_width", "fill_color", "fill_alpha", "size", "marker",
         "text_color", "text_font_size", "text_align", "text_baseline", "width",
         "height")  # fmt: skip


def _glyph(r: GlyphRenderer, index: dict) -> dict:
    g = r.glyph
    kind = type(g).__name__
    coords = ("xs", "ys") if kind == "MultiLine" else ("x", "y")
    out = {"kind": kind, "data": [_column(r.data_source, getattr(g, c)) for c in coords]}
    for name in STYLE:
        if hasattr(g, name):
            v = _value(getattr(g, name))
            out[name] = "mapped" if hasattr(v, "transform") or isinstance(v, dict) else v
    if hasattr(g, "line_dash"):
        out["line_dash"] = _dash(g.line_dash)
    if kind == "Text":
        out["data"].append(_column(r.data_source, g.text))
    out["muted_alpha"] = _value(getattr(r.muted_glyph, "line_alpha", None))
    index[id(r)] = len(index)
    return out


def _range(r) -> tuple:
    """A numeric range's ends, or a categorical range's factors in order."""
    factors = getattr(r, "factors", None)
    return tuple(map(str, factors)) if factors is not None else (r.start, r.end)


def summary(fig) -> dict:
    """The figure as comparable values."""
    index: dict[int, int] = {}
    out = {
        "x_range": _range(fig.x_range),
        "y_range": _range(fig.y_range),
        "scales": (type(fig.x_scale).__name__, type(fig.y_scale).__name__),
        "size": (fig.frame_width, fig.frame_height, fig.width, fig.height),
        "title": (fig.title.text, fig.title.text_font_size),
        "toolbar": fig.toolbar_location,
        "tools": sorted(type(t).__name__ for t in fig.toolbar.tools),
        "glyphs": [_glyph(r, index) for r in fig.renderers if isinstance(r, GlyphRenderer)],
        "grid": [g.grid_line_color for g in fig.center if type(g).__name__ == "Grid"],
    }
    axes = []
    for side in ("below", "left"):
        for ax in getattr(fig, side):
            ticks = getattr(ax.ticker, "ticks", None)
            axes.append((side, type(ax).__name__, ax.axis_label, type(ax.ticker).__name__,
                         list(ticks) if ticks is not None else None,
                         {float(k): v for k, v in ax.major_label_overrides.items()}))  # fmt: skip
    out["axes"] = axes
    whiskers, legends, bars = [], [], []
    for side in ("center", "right", "left", "above", "below"):
        for m in getattr(fig, side):
            if isinstance(m, Whisker):
                whiskers.append({
                    "data": [_column(m.source, getattr(m, c)) for c in ("base", "lower", "upper")],
                    "color": _value(m.line_color), "alpha": _value(m.line_alpha),
                    "width": _value(m.line_width),
                    "heads": [(type(h).__name__, _value(h.size), _value(h.line_color),
                               _value(h.line_width)) for h in (m.lower_head, m.upper_head)],
                })  # fmt: skip
            elif isinstance(m, Legend) and m.items:  # (HoloViews leaves an empty one)
                legends.append({
                    "side": side, "location": m.location, "click": m.click_policy,
                    "items": [(_value(i.label), [index.get(id(r)) for r in i.renderers])
                              for i in m.items],
                })  # fmt: skip
            elif isinstance(m, ColorBar):
                cm = m.color_mapper
                bars.append((side, m.title, cm.low, cm.high, list(cm.palette), cm.nan_color))
    out.update(whiskers=whiskers, legends=legends, colorbars=bars)
    return out


def assert_same(a: dict, b: dict, path: str = "") -> None:
    """Equal summaries: numbers to RTOL, NaN equal to NaN."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and sorted(a) == sorted(b), f"{path}: keys {a.keys()} {b.keys()}"
        for k in a:
            assert_same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list | tuple) and not isinstance(a, np.ndarray):
        assert isinstance(b, list | tuple) and len(a) == len(b), f"{path}: {a!r} != {b!r}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a, float), np.asarray(b, float)
        assert a.shape == b.shape, f"{path}: shapes {a.shape} {b.shape}"
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=1e-12, err_msg=path)
    elif isinstance(a, float | int) and isinstance(b, float | int) and not isinstance(a, bool):
        assert a == b or np.isclose(a, b, rtol=RTOL, atol=1e-12) or (a != a and b != b), (
            f"{path}: {a} != {b}"
        )
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


DOCS = re.compile(r'<script type="application/json" id="[^"]+">\s*(.*?)\s*</script>', re.S)


def page_figures(html: str) -> dict[str, tuple]:
    """name -> (figure, its widgets' callback arguments or None, the widgets) of a report.html."""
    from bokeh.document import Document
    from bokeh.models import Column, Select, Slider
    from bokeh.plotting import figure

    out = {}
    for doc in json.loads(DOCS.findall(html)[0]).values():
        for root in Document.from_json(doc).roots:
            if not isinstance(root, Column):
                out[root.name] = (root, None, [])
                continue
            fig = next(iter(root.select({"type": figure})))
            widgets = [*root.select({"type": Select}), *root.select({"type": Slider})]
            callbacks = [cb for w in widgets for cb in w.js_property_callbacks["change:value"]]
            out[root.name] = (fig, callbacks[0].args, widgets)
    return out


def _frame_values(frame: list[dict]) -> list[np.ndarray]:
    """Each source's numbers, sorted (the two drawings name their columns differently)."""
    out = []
    for data in frame:
        cols = [np.ravel(np.asarray(v, float)) for k, v in sorted(data.items()) if k != "text"]
        out.append(np.sort(np.concatenate(cols)) if cols else np.array([]))
    return out


def _widget(w) -> tuple:
    return type(w).__name__, w.title, w.value, w.width, getattr(w, "options", None)


def compare_pages(old_html: str, new_html: str) -> list[str]:
    """The figures that show something different (a line each): names, every figure's summary,
    and for figures with widgets the widgets, titles and every frame's numbers."""
    old, new = page_figures(old_html), page_figures(new_html)
    if list(old) != list(new):
        return [f"figures differ: {list(old)} != {list(new)}"]
    problems = []
    for name, (fa, args_a, wa) in old.items():
        fb, args_b, wb = new[name]
        try:
            assert_same(summary(fa), summary(fb), name)
            assert (args_a is None) == (args_b is None), f"{name}: widgets on one page only"
            if args_a is not None:
                for key in ("titles", "index", "sizes"):
                    assert args_a[key] == args_b[key], f"{name}: widget {key} differ"
                assert len(args_a["frames"]) == len(args_b["frames"]), f"{name}: frame count"
                for i, (x, y) in enumerate(zip(args_a["frames"], args_b["frames"], strict=True)):
                    assert_same(_frame_values(x), _frame_values(y), f"{name} frame {i}")
                assert [_widget(w) for w in wa] == [_widget(w) for w in wb], f"{name}: widgets"
        except AssertionError as err:
            problems.append(str(err).splitlines()[0][:300])
    return problems
