"""style.both: elements styled alike share one options tree, and nothing leaks between them."""

from __future__ import annotations

import holoviews as hv

from rnnlab.analysis.report import style as plot_style


def _bokeh(el, group: str) -> dict:
    return hv.Store.lookup_options("bokeh", el, group).kwargs


def test_alike_elements_share_their_options():
    a = plot_style.style(hv.Curve([1, 2], label="x"), color="#123456", width=2, dash="dotted")
    b = plot_style.style(hv.Curve([3, 4], label="x"), color="#123456", width=2, dash="dotted")
    assert b.id == a.id and _bokeh(b, "style")["line_dash"] == "dotted"
    assert list(b.data["y"]) == [3, 4]  # the data stay the element's own


def test_unlike_elements_get_their_own_options():
    a = plot_style.style(hv.Curve([1, 2], label="x"), color="#654321", width=2)
    other_label = plot_style.style(hv.Curve([1, 2], label="y"), color="#654321", width=2)
    other_color = plot_style.style(hv.Curve([1, 2], label="x"), color="#111112", width=2)
    assert len({a.id, other_label.id, other_color.id}) == 3
    assert _bokeh(other_color, "style")["color"] == "#111112"


def test_later_opts_on_one_leave_the_others_alone():
    a = plot_style.style(hv.Scatter([1, 2], label="s"), color="#0a0b0c", size=6, marker="circle")
    b = plot_style.style(hv.Scatter([1, 2], label="s"), color="#0a0b0c", size=6, marker="circle")
    a.opts(line_width=5, backend="bokeh")  # in place, as figures do (fixed points)
    c = plot_style.style(hv.Scatter([5, 6], label="s"), color="#0a0b0c", size=6, marker="circle")
    assert _bokeh(a, "style")["line_width"] == 5
    for el in (b, c):
        assert "line_width" not in _bokeh(el, "style") and _bokeh(el, "style")["size"] == 6


def test_options_already_given_are_kept():
    base = hv.Points([(0, 0, 1.0)], vdims=["epoch"]).opts(alpha=0.3, backend="bokeh")
    el = plot_style.both(base, {"color": "epoch"}, {"color": "epoch"})
    assert _bokeh(el, "style")["alpha"] == 0.3 and _bokeh(el, "style")["color"] == "epoch"


def test_frame_options_reach_the_overlay_and_spare_its_layers():
    curve = plot_style.style(hv.Curve([1, 2], label="c"), color="#0d0e0f", width=3)
    framed = plot_style.frame(hv.Overlay([curve]), title="T", xlabel="x", ylabel="y")
    plot_opts = hv.Store.lookup_options("bokeh", framed, "plot").kwargs
    assert plot_opts["title"] == "T" and plot_opts["frame_width"] == 420
    layer = framed.values()[0]
    assert layer.id == curve.id and _bokeh(layer, "style")["line_width"] == 3
    assert "title" not in hv.Store.lookup_options("bokeh", layer, "plot").kwargs
    again = plot_style.frame(framed, title="U", xlabel="x", ylabel="y")  # options already given
    assert hv.Store.lookup_options("bokeh", again, "plot").kwargs["title"] == "U"
