"""bokeh_draw: the page's figures drawn as bokeh models directly show what HoloViews draws of the
same figures (ranges, scales, title, axes, ticks, every layer's data and style, error bars,
legend, colour bar): every figure of a report, and random overlays (hypothesis)."""

from __future__ import annotations

import contextlib

import holoviews as hv
import numpy as np
import pytest
from conftest import benchmark_module
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_report import make_archive, make_results

from rnnlab.analysis.report import bokeh_draw, build, options, page, widgets
from rnnlab.analysis.report import style as plot_style
from rnnlab.analysis.report.inputs import report_inputs

content = benchmark_module("figure_content")
summary, assert_same = content.summary, content.assert_same


@pytest.fixture(scope="module")
def figures():
    ds = make_archive()
    res = make_results(ds)
    _, arch, res = report_inputs(ds, res)
    return {name: make() for name, make in build.figure_makers(arch, res).items()}


def test_every_drawable_figure_is_what_holoviews_draws(figures):
    drawn = 0
    for name, fig in figures.items():
        if isinstance(fig, hv.HoloMap):  # the page draws its first frame, ranged alone
            fig = fig[list(fig.keys())[0]]
        elif isinstance(fig, widgets.Frames):
            fig = fig.frame(fig.keys[0])
        assert bokeh_draw.drawable(fig), name
        assert_same(summary(hv.render(fig, backend="bokeh")), summary(bokeh_draw.draw(fig)[0]),
                    name)  # fmt: skip
        drawn += 1
    assert drawn == len(figures)


def test_the_spectrum_frames_are_the_plotted_frames(figures):
    """Each frame's data as the page embeds it for the slider and seed selector, computed
    without building the frame: what HoloViews' plot of the HoloMap shows when updated to that
    frame, and what bokeh_draw reads from the frame when built."""
    spectrum = figures["spectrum"]
    assert isinstance(spectrum, widgets.Frames)
    hmap = spectrum.holomap()
    keys = list(hmap.keys())
    assert keys == spectrum.keys
    for key in keys:
        built = [bokeh_draw.layer_data(el) for el in hmap[key].values()]
        light = spectrum.data(key)
        assert [sorted(d) for d in built] == [sorted(d) for d in light]
        for a, b in zip(built, light, strict=True):
            for column in a:
                np.testing.assert_array_equal(a[column], b[column], err_msg=f"{key} {column}")
    fig, sources, frames = widgets._direct_frames(spectrum)
    plot = hv.renderer("bokeh").get_plot(hmap)
    assert len(frames) == len(keys) > 1
    for i, key in enumerate(keys):
        plot.update(i)
        theirs = summary(plot.state)
        for source, data in zip(sources, frames[i], strict=True):
            source.data = data
        fig.title.text = str(hmap[key].opts.get().kwargs.get("title", ""))
        mine = summary(fig)
        for part in ("glyphs", "title", "legends"):
            assert_same(theirs[part], mine[part], f"{key}.{part}")


def test_the_page_draws_directly_and_anything_else_through_holoviews(figures, monkeypatch):
    rendered, plotted = [], []
    render, renderer = hv.render, hv.renderer
    monkeypatch.setattr(hv, "render", lambda obj, **kw: rendered.append(obj) or render(obj, **kw))
    monkeypatch.setattr(hv, "renderer", lambda b: plotted.append(b) or renderer(b))
    names = ["learning_curve", "spectrum", "outlier_re", "block_J"]
    roots = page.bokeh_roots({n: figures[n] for n in names})
    assert [r.name for r in roots] == names
    assert rendered == [] and plotted == []  # HoloViews draws none of them
    bars = hv.Bars([("a", 1.0), ("b", 2.0)])
    numeric = hv.HeatMap([(0, 0, 1.0), (1, 0, 2.0)])  # numeric axes: not the cluster blocks
    for other in (bars, numeric):
        assert not bokeh_draw.drawable(other) and page._draw(other) is not None
    assert rendered == [bars, numeric]


# random overlays: HoloViews is the reference for every combination of layers and options

finite = st.floats(-1e3, 1e3, allow_nan=False, width=32)
positive = st.floats(0.0625, 1e3, allow_nan=False, width=32)
COLORS = ["#1f77b4", "#d62728", "#111111"]


@st.composite
def layer(draw, log: bool):
    value = positive if log else finite
    n = draw(st.integers(1, 6))
    x = np.sort(np.array(draw(st.lists(finite, min_size=n, max_size=n)), float))
    y = np.array(draw(st.lists(value, min_size=n, max_size=n)), float)
    if n > 2 and draw(st.booleans()):
        y[draw(st.integers(0, n - 1))] = np.nan  # a gap
    kind = draw(st.sampled_from(["curve", "scatter", "points", "path", "errorbars"]))
    label = draw(st.sampled_from(["", "a", "b"]))
    color = draw(st.sampled_from(COLORS))
    dims = ["x", "y"]
    if kind == "curve":
        dash = draw(st.sampled_from(["solid", "dashed", "dotted"]))
        el = plot_style.style(hv.Curve((x, y), *dims, label=label), color=color,
                              width=draw(st.sampled_from([1, 2.5])), dash=dash)  # fmt: skip
    elif kind in ("scatter", "points"):
        cls = hv.Scatter if kind == "scatter" else hv.Points
        el = plot_style.style(cls((x, y), *([dims] if kind == "points" else dims), label=label),
                              color=color, size=draw(st.sampled_from([5, 9])),
                              marker=draw(st.sampled_from(["circle", "diamond", "x"])))  # fmt: skip
    elif kind == "path":
        paths = [np.column_stack([x, y]), np.column_stack([x[::-1], y])]
        el = plot_style.style(hv.Path(paths, kdims=dims), color=color, width=1,
                              dash=draw(st.sampled_from(["solid", "dashed"])))  # fmt: skip
    else:
        err = np.abs(y) * 0.1 if log else np.abs(np.array(draw(st.lists(finite, min_size=n,
                                                                        max_size=n))))  # fmt: skip
        el = plot_style.style(hv.ErrorBars((x, y, err), "x", ["y", "err"]), color=color, width=1)
    return el


@st.composite
def overlay(draw):
    log = draw(st.booleans())
    layers = draw(st.lists(layer(log), min_size=1, max_size=4))
    if draw(st.booleans()):  # a note in the frame (annotations take no part in the ranges)
        layers.append(hv.Text(draw(finite), draw(positive), "note", fontsize=10))
    lim = st.one_of(st.none(), st.tuples(finite, finite).map(sorted).map(tuple),
                    st.tuples(st.none(), finite))  # fmt: skip
    extra = {}
    if draw(st.booleans()):
        extra["ylim"] = draw(lim) if not log else None
        extra["xlim"] = draw(lim)
    legend = draw(st.sampled_from(["top_right", "right", "bottom_left", False]))
    size = draw(st.sampled_from([(420, 280), (380, 280), (300, 380)]))
    return plot_style.frame(hv.Overlay(layers), title="T", xlabel="a", ylabel="b", logy=log,
                            legend=legend, size=size,
                            **{k: v for k, v in extra.items() if v is not None})  # fmt: skip


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(overlay())
def test_random_overlays_are_what_holoviews_draws(fig):
    plot = hv.Store.lookup_options("bokeh", fig, "plot").kwargs
    if bokeh_draw.ranges(fig, plot) is None:  # nothing finite to range: the page asks HoloViews
        with pytest.raises(ValueError, match="no finite data"):
            bokeh_draw.draw(fig)
        return
    assert_same(summary(hv.render(fig, backend="bokeh")), summary(bokeh_draw.draw(fig)[0]))


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """report.html of the same inputs drawn directly, by HoloViews alone (bokeh_draw told it
    draws nothing) from figures built for HoloViews or, as the page's are, for direct drawing
    (options.py: given to HoloViews before it draws them), and drawn directly from results with
    moved outliers."""
    ds = make_archive()
    res = make_results(ds)
    out = tmp_path_factory.mktemp("pages")
    build.write_report(ds, res, out / "direct", png=False, quiet=True)
    moved = res.copy()
    moved["outlier"] = moved["outlier"] + 0.25
    build.write_report(ds, moved, out / "moved", png=False, quiet=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(bokeh_draw, "drawable", lambda obj: False)
        build.write_report(ds, res, out / "given", png=False, quiet=True)
        mp.setattr(options, "direct_drawing", contextlib.nullcontext)
        build.write_report(ds, res, out / "holoviews", png=False, quiet=True)
    return {k: (out / k / "report.html").read_text(encoding="utf-8") for k in
            ("direct", "holoviews", "given", "moved")}  # fmt: skip


def test_the_page_drawn_directly_shows_what_holoviews_draws(pages):
    """Every figure of the page, with every frame of the spectrum's and the heatmaps' widgets:
    the same content either way (benchmarks/figure_content.py), though not the same models."""
    assert pages["direct"] != pages["holoviews"]
    assert content.compare_pages(pages["holoviews"], pages["direct"]) == []


def test_holoviews_draws_the_page_alike_with_the_options_given_to_it(pages):
    assert content.compare_pages(pages["holoviews"], pages["given"]) == []


def test_a_different_figure_is_a_difference(pages):
    problems = content.compare_pages(pages["direct"], pages["moved"])
    named = {p.split(".")[0].split(":")[0].split(" ")[0] for p in problems}
    assert {"spectrum", "outlier_re", "outlier_paths"} <= named, problems
    assert "learning_curve" not in named and "singular_values" not in named
